//! A patrol over a small simulated world, and its score against the world's ground truth
//! (read here, by the test, never by gridpatrol).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use gridpatrol::detect::colour::ColourDetector;
use gridpatrol::events::{EventStore, GridEvent};
use gridpatrol::geotag::{distance_m, offset};
use gridpatrol::grid::{Datum, GridMap};
use gridpatrol::link::{Hub, HubConfig, LinkConfig};
use gridpatrol::patrol::{
    jobs_from_plan, pipeline::DataDir, run_id_for, run_patrol, CaptureRecorder, Pipeline,
    RunContext, RunReport,
};
use gridpatrol::plan::{plan_coverage, Camera, PlanOptions};
use gridpatrol::vehicle::{Fleet, FleetConfig};
use gridpatrol_sim::world::World;
use gridpatrol_sim::{Sim, SimConfig};

pub const HOME: (f64, f64, f64) = (36.56, 103.679329, 1800.0);

/// A district of one square cell, `half_m` metres each way around a point 150 m north-east
/// of home, as GeoJSON.
pub fn square_district(half_m: f64) -> String {
    let (clat, clon) = offset(HOME.0, HOME.1, 150.0, 150.0);
    let corner = |n: f64, e: f64| {
        let (la, lo) = offset(clat, clon, n, e);
        format!("[{lo}, {la}]")
    };
    let ring = [
        corner(-half_m, -half_m),
        corner(-half_m, half_m),
        corner(half_m, half_m),
        corner(half_m, -half_m),
        corner(-half_m, -half_m),
    ]
    .join(", ");
    format!(
        r#"{{"type": "FeatureCollection", "features": [
        {{"type": "Feature", "properties": {{"kind": "grid", "grid_id": "T-1", "name": "test cell", "type": "residential"}},
          "geometry": {{"type": "Polygon", "coordinates": [[{ring}]]}}}},
        {{"type": "Feature", "properties": {{"kind": "home", "name": "dock", "alt_m": {alt}}},
          "geometry": {{"type": "Point", "coordinates": [{lon}, {lat}]}}}}]}}"#,
        alt = HOME.2,
        lon = HOME.1,
        lat = HOME.0
    )
}

pub struct Flown {
    pub dir: tempfile::TempDir,
    pub data: DataDir,
    pub world: World,
    pub report: RunReport,
    pub store: Arc<EventStore>,
    pub sim: Sim,
}

/// Plans the square cell at 60 m (75/65 overlap, the simulator's camera), hides `issues`
/// issues in it, flies it on `vehicles` simulated vehicles at `speed`× and files events.
pub async fn fly_square(
    half_m: f64,
    issues: usize,
    seed: u64,
    vehicles: usize,
    speed: f64,
    battery_min: f64,
) -> Flown {
    fly_square_with(SquareRun {
        half_m,
        issues,
        seed,
        vehicles,
        speed,
        battery_min,
        ..SquareRun::default()
    })
    .await
}

/// A patrol of the square cell, every knob.
pub struct SquareRun {
    pub half_m: f64,
    pub issues: usize,
    pub seed: u64,
    pub vehicles: usize,
    pub speed: f64,
    pub battery_min: f64,
    pub observer: Option<Arc<dyn gridpatrol::patrol::observe::RunObserver>>,
    pub detector: Arc<dyn gridpatrol::detect::Detector>,
    /// The simulator publishes onboard detections beside each photo.
    pub companion: bool,
    /// The simulator serves photos by MAVLink FTP (`mftp://` URLs).
    pub mftp: bool,
    /// Link faults per vehicle.
    pub faults: Vec<gridpatrol_sim::Faults>,
    pub fleet: FleetConfig,
    /// The simulator's dock charges landed vehicles at this many percent per minute.
    pub dock_charge_pct_per_min: f64,
    /// The camera model the product plans and geotags with.
    pub camera: &'static str,
    /// The store (default: SQLite in the run's data directory).
    pub db: Option<gridpatrol::store::DbSpec>,
}

impl Default for SquareRun {
    fn default() -> Self {
        Self {
            half_m: 100.0,
            issues: 12,
            seed: 1,
            vehicles: 1,
            speed: 40.0,
            battery_min: 20.0,
            observer: None,
            detector: Arc::new(ColourDetector::default()),
            companion: false,
            mftp: false,
            faults: Vec::new(),
            fleet: FleetConfig::default(),
            dock_charge_pct_per_min: 0.0,
            camera: "sim",
            db: None,
        }
    }
}

pub async fn fly_square_with(run: SquareRun) -> Flown {
    let SquareRun {
        half_m,
        issues,
        seed,
        vehicles,
        speed,
        battery_min,
        observer,
        detector,
        companion,
        mftp,
        faults,
        fleet: fleet_cfg,
        dock_charge_pct_per_min,
        camera,
        db,
    } = run;
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir(dir.path().to_path_buf());
    let map = GridMap::from_geojson(&square_district(half_m), Datum::Wgs84).unwrap();
    let ring = cell_ring(&map);
    let world = World::generate(&[ring], issues, seed, HOME.2).unwrap();
    std::fs::create_dir_all(dir.path().join("sim-images")).unwrap();
    world
        .save(&dir.path().join("sim-images/world.json"))
        .unwrap();
    let camera = Camera::find(camera).unwrap();
    let opts = PlanOptions {
        camera: camera.clone(),
        altitude_m: 60.0,
        speed_mps: 10.0,
        battery_min,
        ..PlanOptions::default()
    };
    let plan = plan_coverage(&map, &[], &opts).unwrap();
    let jobs = jobs_from_plan(&plan);
    let hub = Hub::connect(
        HubConfig {
            ..HubConfig::default()
        },
        &[LinkConfig::new("udpin:127.0.0.1:0".parse().unwrap())],
    )
    .await
    .unwrap();
    let gcs = hub.links()[0].local_addr.unwrap();
    let sim = Sim::start(SimConfig {
        vehicles,
        gcs,
        base_port: None,
        speed,
        seed,
        home: HOME,
        world: Some(Arc::new(world.clone())),
        image_dir: Some(dir.path().join("sim-images")),
        companion_detections: companion,
        mftp_urls: mftp,
        faults,
        dock_charge_pct_per_min,
        ..Default::default()
    })
    .await
    .unwrap();
    let fleet = Fleet::new(hub, fleet_cfg);
    let vs = fleet
        .wait_vehicles(vehicles, Duration::from_secs(10))
        .await
        .unwrap();
    let db = db.unwrap_or_else(|| data.db_spec());
    let mut pipeline =
        Pipeline::open_in(&db, &data.images_spec(), &camera, Arc::new(map), detector).unwrap();
    pipeline.observer = observer.clone();
    pipeline.fleet = Some(fleet.clone());
    let pipeline = Arc::new(pipeline);
    let (_abort_tx, abort) = tokio::sync::watch::channel(false);
    let (run_id, wake) = (run_id_for(&jobs), Arc::new(tokio::sync::Notify::new()));
    let ctx = Arc::new(RunContext {
        recorder: CaptureRecorder::start(pipeline.store.clone(), run_id.clone(), wake.clone()),
        divert: Default::default(),
        detached: Default::default(),
        take_over_airborne: false,
        run_id,
        store: pipeline.store.clone(),
        wake,
        abort,
        min_battery_pct: 50,
        preflight_wait: Duration::from_secs(10),
        battery_wait: Duration::from_secs(60),
        sortie_timeout: Duration::from_secs(300),
        progress: indicatif::MultiProgress::with_draw_target(
            indicatif::ProgressDrawTarget::hidden(),
        ),
        observer,
    });
    let store = pipeline.store.clone();
    let report = run_patrol(vs, jobs, ctx, pipeline).await;
    Flown {
        dir,
        data,
        world,
        report,
        store,
        sim,
    }
}

#[derive(Debug)]
pub struct Score {
    pub objects: usize,
    pub events: usize,
    pub found: usize,
    pub false_events: usize,
    pub duplicate_events: usize,
    pub recall: f64,
    pub precision: f64,
    pub duplicate_rate: f64,
    /// Geotag error of matched events, metres.
    pub median_error_m: f64,
    pub p95_error_m: f64,
    /// Objects no event found: (id, category, lat, lon).
    pub missed: Vec<(u32, String, f64, f64)>,
    /// Events matched to an object that already had one: (event, object, distance m).
    pub duplicates: Vec<(i64, u32, f64)>,
}

/// Matches events to the world's issues: same category, within `radius_m`. An object's
/// first (nearest) event is a hit; further events on it are duplicates; events near no
/// object of their category are false.
pub fn score(world: &World, events: &[GridEvent], radius_m: f64) -> Score {
    let mut hits: std::collections::HashMap<u32, Vec<f64>> = Default::default();
    let mut false_events = 0;
    let mut dups = Vec::new();
    for e in events {
        let best = world
            .objects
            .iter()
            .filter(|o| o.category.to_string_snake() == e.category.as_str())
            .map(|o| (o.id, distance_m(o.lat, o.lon, e.lat, e.lon)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((id, d)) if d <= radius_m => {
                if hits.contains_key(&id) {
                    dups.push((e.id, id, d));
                }
                hits.entry(id).or_default().push(d)
            }
            _ => false_events += 1,
        }
    }
    let mut errors: Vec<f64> = hits
        .values()
        .map(|v| v.iter().copied().fold(f64::MAX, f64::min))
        .collect();
    errors.sort_by(f64::total_cmp);
    let duplicate_events: usize = hits.values().map(|v| v.len() - 1).sum();
    let pct = |q: f64| {
        errors
            .get(((errors.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Score {
        objects: world.objects.len(),
        events: events.len(),
        found: hits.len(),
        false_events,
        duplicate_events,
        recall: hits.len() as f64 / world.objects.len().max(1) as f64,
        precision: (events.len() - false_events) as f64 / events.len().max(1) as f64,
        duplicate_rate: duplicate_events as f64 / events.len().max(1) as f64,
        median_error_m: pct(0.5),
        p95_error_m: pct(0.95),
        missed: world
            .objects
            .iter()
            .filter(|o| !hits.contains_key(&o.id))
            .map(|o| (o.id, o.category.to_string_snake(), o.lat, o.lon))
            .collect(),
        duplicates: dups,
    }
}

/// snake_case name of a simulator category (its serde name).
trait SnakeName {
    fn to_string_snake(&self) -> String;
}

impl SnakeName for gridpatrol_sim::world::Category {
    fn to_string_snake(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }
}

/// The outer ring of the district's first cell, as (lat, lon).
pub fn cell_ring(map: &GridMap) -> Vec<(f64, f64)> {
    map.cells[0]
        .polygon
        .exterior()
        .points()
        .map(|p| (p.y(), p.x()))
        .collect()
}

/// A simulated vehicle over the square district with `issues` issues, for driving the
/// `gridpatrol` binary: the grid file is written to `dir`. The vehicle flies on when the
/// ground station goes quiet (NAV_DLL_ACT 0, PX4's default and the simulator's).
pub async fn sim_for_cli(
    dir: &std::path::Path,
    half_m: f64,
    issues: usize,
    seed: u64,
    speed: f64,
) -> (Sim, std::path::PathBuf, World) {
    let grids = dir.join("grids.geojson");
    std::fs::write(&grids, square_district(half_m)).unwrap();
    let map = GridMap::load(&grids, Datum::Wgs84).unwrap();
    let world = World::generate(&[cell_ring(&map)], issues, seed, HOME.2).unwrap();
    let sim = Sim::start(SimConfig {
        speed,
        base_port: None,
        home: HOME,
        world: Some(Arc::new(world.clone())),
        image_dir: Some(dir.join("sim-images")),
        ..Default::default()
    })
    .await
    .unwrap();
    (sim, grids, world)
}

/// `gridpatrol fly` over the square district at 60 m with the simulator's camera.
pub fn fly_cmd(
    grids: &std::path::Path,
    data: &std::path::Path,
    conn: &str,
) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_gridpatrol"));
    c.args(["fly", "--connect", conn])
        .arg(grids)
        .args([
            "--camera",
            "sim",
            "--alt",
            "60",
            "--battery-min",
            "20",
            "--data",
        ])
        .arg(data);
    c
}

/// Photos the simulated camera writing to `dir/sim-images` has taken so far, by its
/// ground truth (the test's view of the world; 0 before the first).
pub fn photos_taken(dir: &std::path::Path) -> i64 {
    std::fs::read_to_string(dir.join("sim-images/ground_truth.jsonl"))
        .map(|s| s.lines().count() as i64)
        .unwrap_or(0)
}

/// Waits until the database at `db` has recorded `n` captures (while `child` runs).
pub async fn wait_for_captures(db: &std::path::Path, n: i64, child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got: i64 =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .and_then(|c| c.query_row("SELECT count(*) FROM captures", [], |r| r.get(0)))
                .unwrap_or(0);
        if got >= n {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no photos recorded");
        assert!(child.try_wait().unwrap().is_none(), "fly ended early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A nadir photo (JPEG, the simulator's default camera) of `world` from `height_m` above
/// (lat, lon).
pub fn photo_above(world: &World, lat: f64, lon: f64, height_m: f64) -> Vec<u8> {
    use gridpatrol_sim::camera::{to_jpeg, Camera, Pose};
    let cam = Camera::default();
    let pose = Pose {
        lat,
        lon,
        height_m,
        roll: 0.0,
        pitch: 0.0,
        yaw: 0.0,
    };
    let (rgb, _) = cam.render(&pose, world);
    to_jpeg(&rgb, cam.width, cam.height, 90).expect("jpeg")
}

/// The patrol of [`fly_square`] (180 m, 40 issues, seed 3, three vehicles) found, placed
/// and filed every issue once, each with its evidence, cover photo and audit line.
pub fn files_the_seeded_issues_once_each(f: Flown) {
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
