//! The whole patrol on PX4's real flight stack: `gridpatrol demo --px4` starts PX4 v1.16
//! SITL (../shared/px4-sitl; skipped with one line where absent, failed in CI) with the
//! simulator's camera on its payload link, plans, uploads, lets PX4 fly and trigger the
//! camera, and files what the photos show. Scored against the world's ground truth as
//! the patrol benchmark scores (same category within 8 m).

mod common;

use std::process::Command;

use common::patrol::score;
use gridpatrol::events::EventStore;
use gridpatrol_sim::world::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_px4_patrol_with_the_camera_attached_files_its_events() {
    let Some(launcher) = common::px4::launcher() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = tokio::task::spawn_blocking({
        let data = data.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_gridpatrol"))
                .args([
                    "demo",
                    "--px4",
                    &launcher.display().to_string(),
                    "--cells",
                    "WQ-25",
                    "--vehicles",
                    "1",
                    "--issues",
                    "16",
                    "--seed",
                    "11",
                    "--data",
                    &data.display().to_string(),
                ])
                .env("RUST_BACKTRACE", "0")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("PX4 v1.16 SITL"), "{text}");
    // The simulator's truth, which the product never reads, against what it filed.
    let world = World::load(&data.join("sim-images/world.json")).unwrap();
    let store = EventStore::open(&data.join("gridpatrol.db")).unwrap();
    let events = store.list(None, None, None).unwrap();
    let s = score(&world, &events, 8.0);
    eprintln!("{s:?}");
    assert!(s.recall >= 0.95, "recall {s:?}\n{text}");
    assert!(s.precision >= 0.95, "precision {s:?}\n{text}");
    assert!(s.duplicate_rate <= 0.02, "duplicates {s:?}");
    assert!(s.median_error_m <= 2.0, "median geotag error {s:?}");
    // Every photo PX4 triggered reached the ground station and was analysed.
    let (pending, processed, failed) = store.capture_counts().unwrap();
    assert_eq!((pending, failed), (0, 0), "{text}");
    assert!(processed > 100, "{processed} photos\n{text}");
}
