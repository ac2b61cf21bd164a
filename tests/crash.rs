//! gridpatrol is killed (SIGKILL) while captures stream in; run again, it re-attaches to
//! the vehicle still flying the mission, asks for the photos announced while it was dead,
//! and files everything: no filed event lost or duplicated, every capture processed once.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::patrol::{fly_cmd, photos_taken, score, sim_for_cli, wait_for_captures};
use gridpatrol::events::EventStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_loses_and_duplicates_nothing_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, grids, world) = sim_for_cli(dir.path(), 120.0, 16, 11, 10.0).await;
    let conn = format!("udpout:{}", sim.vehicles()[0].local_addr);
    let data = dir.path().join("data");
    let db = data.join("gridpatrol.db");
    let spawn = || {
        fly_cmd(&grids, &data, &conn)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gridpatrol fly")
    };
    let mut first = spawn();
    // Wait for photos to stream in, then kill it mid-run.
    wait_for_captures(&db, 25, &mut first).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let store = EventStore::open(&db).unwrap();
    let before = store.list(None, None, None).unwrap();
    let (_, processed_before, _) = store.capture_counts().unwrap();
    assert!(!before.is_empty(), "events were filed before the kill");
    drop(store);
    // Photos keep coming while nobody listens; then the operator runs the same command.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let recorded_before: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM captures", [], |r| r.get(0))
        .unwrap();
    let restarted = std::time::Instant::now();
    let mut second = spawn();
    // Recovery: photos are recorded again.
    wait_for_captures(&db, recorded_before + 1, &mut second).await;
    let recovery = restarted.elapsed();
    let out = tokio::task::spawn_blocking(move || second.wait_with_output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("re-attached"), "{stdout}\n{stderr}");
    let store = EventStore::open(&db).unwrap();
    let after = store.list(None, None, None).unwrap();
    // Every event filed before the kill is still there, unchanged but for new sightings.
    for e in &before {
        let now = after.iter().find(|a| a.id == e.id).expect("event lost");
        assert_eq!((now.category, now.created_us), (e.category, e.created_us));
        assert!(now.sightings >= e.sightings);
    }
    // Every photo the camera took was recorded and processed exactly once.
    let (pending, processed, failed) = store.capture_counts().unwrap();
    assert_eq!((pending, failed), (0, 0));
    assert!(processed > processed_before);
    let taken = photos_taken(dir.path());
    assert_eq!(processed, taken, "{stdout}");
    let s = score(&world, &after, 8.0);
    assert_eq!(s.duplicate_events, 0, "{s:?}");
    assert!(s.recall >= 0.95, "{s:?}");
    assert!(stdout.contains("0 never arrived"), "{stdout}");
    common::faults::record(
        "a_killed_run_loses_and_duplicates_nothing_after_restart",
        "SIGKILL of `fly` mid-sortie (simulator), run again",
        &format!(
            "0 of {taken} photos, 0 of {} events; none filed twice",
            after.len()
        ),
        &format!(
            "{} from the restart until photos were recorded again (re-attached in flight)",
            common::faults::secs(recovery)
        ),
    );
}
