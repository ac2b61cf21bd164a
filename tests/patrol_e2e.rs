//! A coverage patrol over a simulated world with seeded issues, flown end to end over real
//! UDP, photos fetched over real HTTP, events filed in a real SQLite file, and checked
//! against the world's ground truth.

mod common;

use common::patrol::{fly_square, score};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patrol_finds_geotags_and_files_the_seeded_issues_once_each() {
    // Short sorties spread over three vehicles, each with its own GPS error.
    let f = fly_square(180.0, 40, 3, 3, 40.0, 5.0).await;
    files_the_seeded_issues_once_each(f);
}

/// The same patrol filed in PostgreSQL: the same events, found the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_the_same_patrol_files_the_same_issues() {
    let Some(db) = common::pg::database("patrol_e2e") else {
        return;
    };
    let f = common::patrol::fly_square_with(common::patrol::SquareRun {
        half_m: 180.0,
        issues: 40,
        seed: 3,
        vehicles: 3,
        speed: 40.0,
        battery_min: 5.0,
        db: Some(db),
        ..Default::default()
    })
    .await;
    assert_eq!(f.store.engine(), gridpatrol::store::Engine::Postgres);
    files_the_seeded_issues_once_each(f);
}

fn files_the_seeded_issues_once_each(f: common::patrol::Flown) {
    let photos: usize = f.report.vehicles.iter().map(|v| v.photos).sum();
    for v in &f.report.vehicles {
        assert!(v.error.is_none(), "{:?}", v.error);
        assert_eq!(v.missing, Vec::<i32>::new(), "every image index arrived");
    }
    assert!(photos > 200, "{photos} photos");
    assert_eq!(f.report.pipeline.unusable, 0);
    let events = f.store.list(None, None, None).unwrap();
    if std::env::var_os("GRIDPATROL_KEEP").is_some() {
        eprintln!("kept {}", f.dir.keep().display());
        return;
    }
    let s = score(&f.world, &events, 8.0);
    eprintln!("{s:?}");
    assert!(s.recall >= 0.95, "recall {s:?}");
    assert!(s.precision >= 0.95, "precision {s:?}");
    assert!(s.duplicate_rate <= 0.02, "duplicates {s:?}");
    assert!(s.median_error_m <= 2.0, "median geotag error {s:?}");
    // Every event is in the one cell, with evidence, a cover photo on disk and an audit line.
    for e in &events {
        assert_eq!(e.cell_id.as_deref(), Some("T-1"), "{e:?}");
        let sha = e.cover_image.as_ref().expect("a cover photo");
        let stored = std::fs::read(f.data.images().join(&sha[..2]).join(format!("{sha}.jpg")))
            .expect("the cover photo is stored");
        // Stored with GPS EXIF tags near the event (the camera was above it).
        let exif = exif::Reader::new()
            .read_from_container(&mut std::io::Cursor::new(&stored))
            .expect("EXIF in the stored photo");
        let field = exif
            .get_field(exif::Tag::GPSLatitude, exif::In::PRIMARY)
            .unwrap();
        let lat = match &field.value {
            exif::Value::Rational(v) => {
                v[0].to_f64() + v[1].to_f64() / 60.0 + v[2].to_f64() / 3600.0
            }
            other => panic!("{other:?}"),
        };
        assert!((lat - e.lat).abs() < 60.0 / 111_000.0, "{lat} vs {}", e.lat);
        assert_eq!(f.store.audit(e.id).unwrap().len(), 1);
        assert_eq!(f.store.evidence(e.id).unwrap().len() as i64, e.sightings);
    }
    let (pending, processed, failed) = f.store.capture_counts().unwrap();
    assert_eq!((pending, failed), (0, 0));
    assert_eq!(processed as usize, photos);
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
    // Five simulated seconds of silence both ways, a minute into the flight, at 8×: 0.6 s
    // real, longer than the 0.3 s link timeout, and half the vehicle's own data-link-loss
    // failsafe (10 s), so a loaded machine's late heartbeats cannot set it off.
    let f = fly_square_with(SquareRun {
        half_m: 50.0,
        issues: 4,
        seed: 12,
        speed: 8.0,
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
    let outage_s = 5.0 / 8.0;
    common::faults::record(
        "a_link_outage_mid_patrol_is_shown_and_the_run_carries_on",
        "Link outage mid-sortie: 5 s (simulated) of silence both ways (simulator at 8×)",
        &format!("0 of {taken} photos ({} requests for those announced during it)", v.rerequested),
        &format!(
            "link shown lost {:.1} s for a {outage_s:.1} s outage; the sortie flew on and was followed to landing",
            v.link_down_s
        ),
    );
}
