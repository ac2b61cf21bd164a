//! gridpatrol is killed (SIGKILL) while captures stream in; run again, it re-attaches to
//! the vehicle still flying the mission, asks for the photos announced while it was dead,
//! and files everything: no filed event lost or duplicated, every capture processed once.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::patrol::{score, square_district, HOME};
use gridpatrol::events::EventStore;
use gridpatrol::grid::{Datum, GridMap};
use gridpatrol::link::{Hub, HubConfig, LinkConfig};
use gridpatrol::vehicle::{Fleet, FleetConfig, ParamValue};
use gridpatrol_sim::world::World;
use gridpatrol_sim::{Sim, SimConfig};

fn fly(grids: &std::path::Path, data: &std::path::Path, conn: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_gridpatrol"))
        .args(["fly", "--connect", conn])
        .arg(grids)
        .args([
            "--camera",
            "sim",
            "--alt",
            "60",
            "--speed",
            "10",
            "--battery-min",
            "20",
        ])
        .arg("--data")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gridpatrol fly")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_loses_and_duplicates_nothing_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let grids = dir.path().join("grids.geojson");
    std::fs::write(&grids, square_district(120.0)).unwrap();
    let map = GridMap::load(&grids, Datum::Wgs84).unwrap();
    let ring: Vec<(f64, f64)> = map.cells[0]
        .polygon
        .exterior()
        .points()
        .map(|p| (p.y(), p.x()))
        .collect();
    let world = World::generate(&[ring], 16, 11, HOME.2).unwrap();
    let sim = Sim::start(SimConfig {
        speed: 10.0,
        base_port: None,
        home: HOME,
        world: Some(Arc::new(world.clone())),
        image_dir: Some(dir.path().join("sim-images")),
        ..Default::default()
    })
    .await
    .unwrap();
    let conn = format!("udpout:{}", sim.vehicles()[0].local_addr);
    // PX4's default: the mission goes on when the ground station goes quiet (NAV_DLL_ACT 0).
    {
        let hub = Hub::connect(
            HubConfig::default(),
            &[LinkConfig::new(conn.parse().unwrap())],
        )
        .await
        .unwrap();
        let fleet = Fleet::new(hub, FleetConfig::default());
        let v = fleet
            .wait_vehicle(Some(1), Duration::from_secs(5))
            .await
            .unwrap();
        v.param_set("NAV_DLL_ACT", ParamValue::Int(0))
            .await
            .unwrap();
    }
    let data = dir.path().join("data");
    let db = data.join("gridpatrol.db");
    let mut first = fly(&grids, &data, &conn);
    // Wait for photos to stream in, then kill it mid-run.
    let recorded = |db: &std::path::Path| -> i64 {
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT count(*) FROM captures", [], |r| r.get(0)))
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while recorded(&db) < 25 {
        assert!(std::time::Instant::now() < deadline, "no photos recorded");
        assert!(first.try_wait().unwrap().is_none(), "fly ended early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let store = EventStore::open(&db).unwrap();
    let before = store.list(None, None, None).unwrap();
    let (_, processed_before, _) = store.capture_counts().unwrap();
    assert!(!before.is_empty(), "events were filed before the kill");
    drop(store);
    // Photos keep coming while nobody listens; then the operator runs the same command.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = fly(&grids, &data, &conn);
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
    let taken = std::fs::read_to_string(dir.path().join("sim-images/ground_truth.jsonl"))
        .unwrap()
        .lines()
        .count() as i64;
    assert_eq!(processed, taken, "{stdout}");
    let s = score(&world, &after, 8.0);
    assert_eq!(s.duplicate_events, 0, "{s:?}");
    assert!(s.recall >= 0.95, "{s:?}");
    assert!(stdout.contains("0 never arrived"), "{stdout}");
}
