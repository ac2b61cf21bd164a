//! More sorties than vehicles: between sorties the vehicle waits in the simulator's dock
//! for its battery to charge, as a dock-based patrol does, and flies on.

mod common;

use common::patrol::{fly_square_with, SquareRun};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vehicle_waits_for_its_dock_to_charge_and_flies_every_sortie() {
    // Sorties of about 14 simulated minutes on a 25-minute battery: each leaves it near
    // 45 %, below the 50 % a sortie must start with.
    let f = fly_square_with(SquareRun {
        half_m: 260.0,
        issues: 6,
        seed: 4,
        vehicles: 1,
        speed: 40.0,
        battery_min: 18.0,
        dock_charge_pct_per_min: 60.0,
        ..SquareRun::default()
    })
    .await;
    let v = &f.report.vehicles[0];
    assert!(v.error.is_none(), "{:?}", v.error);
    let planned = f
        .store
        .recent_run_plans(1)
        .map(|p| {
            serde_json::from_str::<Vec<serde_json::Value>>(&p[0].1)
                .unwrap()
                .len()
        })
        .unwrap();
    assert!(
        planned >= 2,
        "{planned} sorties: the test needs more than one"
    );
    assert_eq!(v.sorties_flown.len(), planned, "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_of_another_size_than_the_camera_model_are_refused_naming_both() {
    // Planned and geotagged with a 5472-px survey camera, photographed by the simulator's
    // 1280-px one, which is not asked to describe itself here.
    let f = fly_square_with(SquareRun {
        half_m: 60.0,
        issues: 4,
        seed: 8,
        camera: "1inch-20mp",
        ..SquareRun::default()
    })
    .await;
    let p = &f.report.pipeline;
    assert!(p.processed == 0 && p.new_events == 0, "{p:?}");
    assert!(p.unusable > 0, "{p:?}");
    let conn = rusqlite::Connection::open(f.data.db()).unwrap();
    let why: String = conn
        .query_row(
            "SELECT last_error FROM captures WHERE state = 'failed' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        why.contains("1280 x 853") && why.contains("5472 x 3648"),
        "{why}"
    );
}
