//! The store's throughput on each engine: events filed per second and photos processed
//! per second, with one controller on SQLite, and one and two controllers on PostgreSQL
//! (`GRIDPATROL_PG_URL`, as the tests use; without it those rows are left out). Two
//! controllers are two pipelines, each with its own connection pool and workers, sharing
//! one database, as two `serve` processes do.
//!
//! - Events filed: `file_capture` for captures each showing one new object (a new event:
//!   the merge search, the insert, its placement, audit and outbox rows), from one thread
//!   per controller.
//! - Photos processed: captures of rendered photos (1280×853 JPEG on disk, `file://`
//!   URLs) drained by each controller's two workers: claim, fetch, store, detect, geotag
//!   and file.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use gridpatrol::capture::Capture;
use gridpatrol::detect::colour::ColourDetector;
use gridpatrol::detect::{Category, Detection};
use gridpatrol::events::store::{EventStore, FiledDetection, MergePolicy};
use gridpatrol::geotag::GroundFix;
use gridpatrol::grid::{Datum, GridMap};
use gridpatrol::patrol::pipeline::{DataDir, Pipeline};
use gridpatrol::store::DbSpec;

const EVENTS: usize = 600;
const PHOTOS: usize = 240;

fn capture(index: i32, lat: f64, lon: f64, url: String) -> Capture {
    Capture {
        sysid: 1,
        index,
        time_utc_us: 1_800_000_000_000_000 + i64::from(index) as u64 * 1_000_000,
        lat,
        lon,
        alt_msl: common::patrol::HOME.2 + 60.0,
        alt_rel: 60.0,
        // Level, facing north, the gimbal at nadir: the photos were rendered so.
        q: nadir(),
        file_url: url,
    }
}

fn nadir() -> [f64; 4] {
    gridpatrol::geotag::camera_quaternion(0.0, 0.0, 0.0, -std::f64::consts::FRAC_PI_2)
}

/// Events filed per second by `controllers` threads on `db`.
fn events_per_s(db: &DbSpec, controllers: usize) -> f64 {
    let stores: Vec<Arc<EventStore>> = (0..controllers)
        .map(|_| Arc::new(EventStore::connect(db).expect("store")))
        .collect();
    let per = EVENTS / controllers;
    // The captures first (not timed): one per event.
    let mut ids = vec![Vec::new(); controllers];
    for (k, s) in stores.iter().enumerate() {
        for i in 0..per {
            let n = (k * per + i) as i32;
            s.record_capture(
                "bench",
                &capture(n, 36.56, 103.68, format!("file:///x/{n}.jpg")),
                0,
            )
            .expect("record");
        }
        ids[k] = s
            .due_captures(i64::MAX, usize::MAX >> 1)
            .expect("due")
            .into_iter()
            .filter(|p| (p.capture.index as usize) / per == k)
            .map(|p| (p.id, p.capture.index))
            .collect();
    }
    let t = Instant::now();
    std::thread::scope(|scope| {
        for (s, mine) in stores.iter().zip(&ids) {
            scope.spawn(move || {
                for &(id, n) in mine {
                    // 20 m apart on a line: each a new event, with neighbours to consider.
                    let f = FiledDetection {
                        detection: Detection {
                            category: Category::Garbage,
                            confidence: 0.9,
                            bbox: [600.0, 400.0, 640.0, 440.0],
                        },
                        fix: GroundFix {
                            lat: 36.56 + f64::from(n) * 20.0 / 111_195.0,
                            lon: 103.68,
                            uncertainty_m: 3.0,
                            range_m: 60.0,
                        },
                        at_edge: false,
                        extent_m: 1.0,
                    };
                    let cell = |_: f64, _: f64, _: f64| Some("T-1".to_string());
                    s.file_capture(id, &[f], None, &cell, MergePolicy::default(), 1)
                        .expect("file");
                }
            });
        }
    });
    let dt = t.elapsed().as_secs_f64();
    let filed = stores[0].list(None, None, None).expect("events").len();
    assert_eq!(filed, per * controllers, "every capture filed once");
    filed as f64 / dt
}

/// Photos processed per second by `controllers` pipelines (two workers each) on `db`.
fn photos_per_s(db: &DbSpec, controllers: usize, photos: &[(std::path::PathBuf, f64, f64)]) -> f64 {
    let dir = tempfile::tempdir().expect("dir");
    let map = Arc::new(
        GridMap::from_geojson(&common::patrol::square_district(400.0), Datum::Wgs84).expect("map"),
    );
    let camera = gridpatrol::plan::Camera::find("sim").expect("camera");
    let pipes: Vec<Arc<Pipeline>> = (0..controllers)
        .map(|k| {
            let mut p = Pipeline::open_in(
                db,
                &DataDir(dir.path().to_path_buf()).images_spec(),
                &camera,
                map.clone(),
                Arc::new(ColourDetector::default()),
            )
            .expect("pipeline");
            p.holder = format!("bench-{k}");
            Arc::new(p)
        })
        .collect();
    for i in 0..PHOTOS {
        let (path, lat, lon) = &photos[i % photos.len()];
        let url = format!("file://{}", path.display());
        pipes[0]
            .store
            .record_capture("bench", &capture(i as i32, *lat, *lon, url), 0)
            .expect("record");
    }
    let t = Instant::now();
    let errors: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = pipes
            .iter()
            .flat_map(|p| {
                (0..2u32).map(move |part| {
                    scope.spawn(move || p.drain_part(gridpatrol::events::now_us(), part, 2))
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| match w.join().expect("worker") {
                Ok(s) => s.errors,
                Err(e) => vec![e.to_string()],
            })
            .collect()
    });
    let dt = t.elapsed().as_secs_f64();
    let (pending, processed, failed) = pipes[0].store.capture_counts().expect("counts");
    assert_eq!((pending, failed), (0, 0), "{:?}", errors.first());
    processed as f64 / dt
}

/// Renders the photos once: the sample world seen from 60 m above each of its objects.
fn render(dir: &std::path::Path) -> Vec<(std::path::PathBuf, f64, f64)> {
    let world = gridpatrol_sim::world::World::sample();
    world
        .objects
        .iter()
        .take(24)
        .enumerate()
        .map(|(i, o)| {
            let path = dir.join(format!("{i:04}.jpg"));
            std::fs::write(
                &path,
                common::patrol::photo_above(&world, o.lat, o.lon, 60.0),
            )
            .expect("write");
            (path, o.lat, o.lon)
        })
        .collect()
}

fn main() {
    // `cargo test --benches` runs each bench once as a test: nothing to measure then.
    if std::env::args().any(|a| a == "--test") || std::env::args().all(|a| a != "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let photos = render(dir.path());
    let sqlite = |name: &str| DbSpec::Sqlite(dir.path().join(format!("{name}.db")));
    let pg = std::env::var("GRIDPATROL_PG_URL").is_ok();
    if !pg {
        println!("store: GRIDPATROL_PG_URL is not set: the PostgreSQL rows are left out");
    }
    println!("| Store | Events filed /s | Photos processed /s |");
    println!("|---|---|---|");
    let mut rows = vec![("SQLite, one controller".to_string(), 1usize, None)];
    if pg {
        rows.push(("PostgreSQL, one controller".into(), 1, Some(())));
        rows.push(("PostgreSQL, two controllers".into(), 2, Some(())));
    }
    for (name, n, on_pg) in rows {
        let mut ev = Vec::new();
        let mut ph = Vec::new();
        for round in 0..3 {
            let db = |what: &str| match on_pg {
                Some(()) => {
                    common::pg::database(&format!("bench_{what}_{n}_{round}")).expect("PostgreSQL")
                }
                None => sqlite(&format!("{what}-{round}")),
            };
            ev.push(events_per_s(&db("events"), n));
            ph.push(photos_per_s(&db("photos"), n, &photos));
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "| {name} | {:.0} | {:.1} |",
            median(&mut ev),
            median(&mut ph)
        );
    }
}
