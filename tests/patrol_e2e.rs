//! A coverage patrol over a simulated world with seeded issues, flown end to end over real
//! UDP, photos fetched over real HTTP, events filed in a real SQLite file, and checked
//! against the world's ground truth.

mod common;

use common::patrol::{fly_square, score};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patrol_finds_geotags_and_files_the_seeded_issues_once_each() {
    // Short sorties spread over three vehicles, each with its own GPS error.
    let f = fly_square(180.0, 40, 3, 3, 40.0, 5.0).await;
    common::patrol::files_the_seeded_issues_once_each(f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detections_from_the_companion_computer_are_filed_like_any_others() {
    use common::patrol::{fly_square_with, SquareRun};
    use gridpatrol::detect::companion::CompanionDetector;
    let f = fly_square_with(SquareRun {
        half_m: 100.0,
        issues: 12,
        seed: 6,
        detector: std::sync::Arc::new(CompanionDetector::new(std::time::Duration::from_secs(5))),
        companion: true,
        ..SquareRun::default()
    })
    .await;
    assert!(f.report.vehicles.iter().all(|v| v.error.is_none()));
    assert_eq!(f.report.pipeline.unusable, 0);
    let events = f.store.list(None, None, None).unwrap();
    let s = score(&f.world, &events, 8.0);
    assert!(
        s.recall >= 0.95 && s.precision >= 0.95 && s.duplicate_events == 0,
        "{s:?}"
    );
    // Each event has the photos as evidence, stored like any other.
    assert!(events
        .iter()
        .all(|e| e.cover_image.is_some() && e.sightings >= 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_served_by_mavlink_ftp_are_fetched_from_the_camera() {
    use common::patrol::{fly_square_with, SquareRun};
    let f = fly_square_with(SquareRun {
        half_m: 60.0,
        issues: 4,
        seed: 8,
        mftp: true,
        ..SquareRun::default()
    })
    .await;
    assert!(f.report.vehicles.iter().all(|v| v.error.is_none()));
    let p = &f.report.pipeline;
    assert_eq!((p.unusable, p.retrying), (0, 0), "{:?}", p.errors);
    assert!(p.processed > 10);
    // Byte for byte the camera's files, EXIF added: every stored image decodes, and each
    // event was found in them.
    let events = f.store.list(None, None, None).unwrap();
    let s = score(&f.world, &events, 8.0);
    assert!(s.recall >= 0.95 && s.duplicate_events == 0, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_outage_mid_patrol_is_shown_and_the_run_carries_on() {
    use common::patrol::{fly_square_with, SquareRun};
    // Five simulated seconds of silence both ways, a minute into the flight, at 4×: 1.25 s
    // real, longer than the 0.3 s link timeout and than a loaded machine's delay in
    // rendering and announcing a photo (at 8× the outage was 0.6 s, and on a loaded CI
    // machine no announcement fell into it), and half the vehicle's own data-link-loss
    // failsafe (10 s), so late heartbeats cannot set it off.
    let f = fly_square_with(SquareRun {
        half_m: 50.0,
        issues: 4,
        seed: 12,
        speed: 4.0,
        faults: vec![gridpatrol_sim::Faults {
            outage: Some((60.0, 5.0)),
            ..Default::default()
        }],
        fleet: gridpatrol::vehicle::FleetConfig {
            link_timeout: std::time::Duration::from_millis(300),
            ..Default::default()
        },
        ..SquareRun::default()
    })
    .await;
    let v = &f.report.vehicles[0];
    assert!(v.error.is_none(), "{:?}", v.error);
    assert!(v.link_losses >= 1, "the outage was noticed: {v:?}");
    assert_eq!(v.sorties_flown, vec![0]);
    // Photos announced during the outage were asked for again and arrived.
    assert!(v.rerequested > 0, "{v:?}");
    assert_eq!(v.missing, Vec::<i32>::new());
    let taken = common::patrol::photos_taken(f.dir.path());
    assert_eq!(v.photos as i64, taken);
    // The link is shown lost from the 0.3 s timeout after the outage began until the
    // first message after it: about the outage less the timeout, plus one heartbeat.
    let outage_s = 5.0 / 4.0;
    common::faults::record(
        "a_link_outage_mid_patrol_is_shown_and_the_run_carries_on",
        "Link outage mid-sortie: 5 s (simulated) of silence both ways (simulator at 4×)",
        &format!("0 of {taken} photos ({} requests for those announced during it)", v.rerequested),
        &format!(
            "link shown lost {:.1} s for a {outage_s:.1} s outage; the sortie flew on and was followed to landing",
            v.link_down_s
        ),
    );
}
