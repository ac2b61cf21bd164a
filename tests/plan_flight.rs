//! A planned sortie, with its geofence, uploaded to the simulator, armed and flown: the
//! fence admits the mission, the camera triggers on the sweeps.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{fast_fleet, rig};
use gridpatrol::grid::{Datum, GridMap};
use gridpatrol::link::HubConfig;
use gridpatrol::plan::{plan_coverage, qgc, PlanOptions};
use gridpatrol::vehicle::{MissionType, Px4Mode, VehicleEvent};
use gridpatrol_sim::world::World;
use gridpatrol_sim::SimConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_sortie_is_admitted_by_its_fence_and_takes_photos() {
    let map = GridMap::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("missions/wenqu.geojson"),
        Datum::Wgs84,
    )
    .unwrap();
    let home = map.home.unwrap();
    let plan = plan_coverage(
        &map,
        &["WQ-24".to_string()],
        &PlanOptions {
            battery_min: 60.0,
            ..PlanOptions::default()
        },
    )
    .unwrap();
    let sortie = &plan.sorties[0];
    // The fence as QGroundControl would upload it from the .plan.
    let doc = qgc::plan_json(&sortie.items, home, 8.0, &sortie.fence_items);
    let fence = qgc::fence_from_plan(&doc).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sim = SimConfig {
        speed: 20.0,
        home: (home.lat, home.lon, home.alt_m),
        world: Some(Arc::new(World::sample())),
        image_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let r = rig(sim, fast_fleet(), HubConfig::default(), None).await;
    let v = r
        .fleet
        .wait_vehicle(Some(1), Duration::from_secs(5))
        .await
        .unwrap();
    v.upload_verified(MissionType::Fence, &fence).await.unwrap();
    v.upload_verified(MissionType::Mission, &sortie.items)
        .await
        .unwrap();
    let mut events = v.events();
    v.start_mission_armed(Duration::from_secs(10))
        .await
        .expect("the sortie lies inside its own fence");
    let photos = tokio::time::timeout(Duration::from_secs(60), async {
        let mut n = 0;
        while let Some(e) = events.next().await {
            if let VehicleEvent::ImageCaptured(_) = e {
                n += 1;
                if n == 10 {
                    break;
                }
            }
        }
        n
    })
    .await
    .unwrap_or(0);
    assert_eq!(photos, 10, "the sweeps trigger the camera");
    let t = v.telemetry();
    assert_eq!(
        t.mode,
        Px4Mode::AutoMission,
        "no geofence action on the way"
    );
    assert!(t.position.is_some_and(|p| (p.alt_rel - 60.0).abs() < 2.0));
    v.return_to_launch().await.unwrap();
}
