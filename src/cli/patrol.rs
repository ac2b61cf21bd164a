//! `gridpatrol fly` and `gridpatrol demo`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use gridpatrol::detect::{colour::ColourDetector, http::HttpDetector, Detector};
use gridpatrol::events::webhook::Webhook;
use gridpatrol::grid::GridMap;
use gridpatrol::link::{Hub, HubConfig, LinkConfig};
use gridpatrol::patrol::{
    jobs_from_plan, pipeline::DataDir, run_id_for, run_patrol, Pipeline, RunContext, RunReport,
    SortieJob,
};
use gridpatrol::plan::{plan_coverage, Camera, PlanOptions};
use gridpatrol::vehicle::{Fleet, FleetConfig};

use super::{open, plan_inputs, Conn, PlanArgs};

#[derive(clap::Args)]
pub struct FlyArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(flatten)]
    plan: PlanArgs,
    /// Fly this QGroundControl .plan instead of planning (one sortie).
    #[arg(long = "plan")]
    plan_file: Option<PathBuf>,
    /// Data directory: gridpatrol.db, images/, runs/.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// The database: sqlite:PATH or postgres://USER@HOST:PORT/DATABASE (default: the
    /// SQLite database in --data).
    #[arg(long)]
    db: Option<gridpatrol::store::DbSpec>,
    /// How many vehicles to fly (sortie i goes to vehicle i mod N).
    #[arg(long, default_value_t = 1)]
    vehicles: usize,
    /// Lowest battery a sortie may start with, percent.
    #[arg(long, default_value_t = 50)]
    min_battery: i8,
    /// Longest a vehicle back from a sortie waits in its dock for a battery swap or charge
    /// before its next one, minutes.
    #[arg(long, default_value_t = 60.0)]
    battery_wait: f64,
    /// Detector: `colour` (simulator images), `companion` (what the drone's companion
    /// computer found, from `<file_url>.json`), `onnx:CONFIG.json` (a YOLO-style model run
    /// in-process; feature `onnx`) or an inference service URL (http://…).
    #[arg(long, default_value = "colour")]
    detector: String,
    /// Record the run for the Rerun viewer (needs the `rerun` cargo feature).
    #[arg(long)]
    rerun: Option<PathBuf>,
    /// POST new and changed events to this grid-management platform URL (durable outbox).
    #[arg(long)]
    webhook: Option<String>,
    /// Lowest detection confidence filed (0..1).
    #[arg(long, default_value_t = 0.5)]
    min_confidence: f32,
    /// A category's own lowest confidence, as CATEGORY=SCORE (repeat), e.g. fire_smoke=0.3.
    #[arg(long = "threshold", value_parser = parse_threshold)]
    thresholds: Vec<(gridpatrol::detect::Category, f32)>,
}

fn parse_threshold(s: &str) -> Result<(gridpatrol::detect::Category, f32), String> {
    let (c, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not CATEGORY=SCORE"))?;
    let v: f32 = v.parse().map_err(|_| format!("{v:?} is not a number"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{v} must be between 0 and 1"));
    }
    Ok((c.parse()?, v))
}

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 40.0)]
    speed: f64,
    /// Data directory: gridpatrol.db, images/, the simulator's images, runs/.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Cells of the sample district to patrol.
    #[arg(long, value_delimiter = ',', default_value = "WQ-25,WQ-R1")]
    cells: Vec<String>,
    /// Simulated vehicles.
    #[arg(long, default_value_t = 2)]
    vehicles: usize,
    /// Issues placed in the patrolled cells.
    #[arg(long, default_value_t = 40)]
    issues: usize,
    /// Seed of the generated world.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Record the run for the Rerun viewer (needs the `rerun` cargo feature).
    #[arg(long)]
    rerun: Option<PathBuf>,
    /// POST new and changed events to this grid-management platform URL (durable outbox).
    #[arg(long)]
    webhook: Option<String>,
    /// Fly real PX4 v1.16 SITL (one instance per vehicle, at most 10× real time) with the
    /// simulator's camera attached to each, instead of the simulated fleet. Takes the
    /// `px4-sitl` launcher, found at $PX4_SITL, ../shared/px4-sitl/px4-sitl or on PATH
    /// when not named.
    #[arg(long, value_name = "LAUNCHER", num_args = 0..=1, default_missing_value = "auto")]
    px4: Option<PathBuf>,
}

/// How a patrol run is set up beyond its plan and vehicles.
struct RunOptions {
    detector: Arc<dyn Detector>,
    /// How long a vehicle may wait in its dock for a battery swap or charge.
    battery_wait: Duration,
    thresholds: gridpatrol::detect::Thresholds,
    min_battery: i8,
    sortie_timeout: Duration,
    rerun: Option<PathBuf>,
    webhook: Option<String>,
    db: gridpatrol::store::DbSpec,
}

pub(crate) fn detector(spec: &str) -> Result<Arc<dyn Detector>> {
    Ok(match spec {
        "colour" | "color" => Arc::new(ColourDetector::default()),
        "companion" => Arc::new(gridpatrol::detect::companion::CompanionDetector::new(
            Duration::from_secs(10),
        )),
        url if url.starts_with("http://") || url.starts_with("https://") => {
            Arc::new(HttpDetector::new(url, Duration::from_secs(30)))
        }
        #[cfg(feature = "onnx")]
        cfg if cfg.starts_with("onnx:") => Arc::new(
            gridpatrol::detect::onnx::OnnxDetector::load(std::path::Path::new(&cfg[5..]))?,
        ),
        #[cfg(not(feature = "onnx"))]
        cfg if cfg.starts_with("onnx:") => bail!(
            "this gridpatrol was built without the ONNX detector: build it with `--features onnx`"
        ),
        other => bail!(
            "unknown detector {other:?}: colour, companion, onnx:CONFIG.json, or an http:// inference service"
        ),
    })
}

/// The Rerun recorder for `--rerun FILE.rrd`.
#[cfg(feature = "rerun")]
fn observer(
    path: &Option<PathBuf>,
) -> Result<Option<Arc<gridpatrol::patrol::rerun_rec::RerunRecorder>>> {
    Ok(match path {
        Some(p) => Some(Arc::new(
            gridpatrol::patrol::rerun_rec::RerunRecorder::to_file(p)?,
        )),
        None => None,
    })
}

/// Without the `rerun` feature, `--rerun` says how to get it.
#[cfg(not(feature = "rerun"))]
fn observer(path: &Option<PathBuf>) -> Result<Option<Arc<NoRecorder>>> {
    if path.is_some() {
        bail!("this gridpatrol was built without Rerun support: build it with `cargo build --release --features rerun`");
    }
    Ok(None)
}

#[cfg(not(feature = "rerun"))]
struct NoRecorder;

#[cfg(not(feature = "rerun"))]
impl NoRecorder {
    fn flush(&self) {}
}

#[cfg(not(feature = "rerun"))]
impl gridpatrol::patrol::observe::RunObserver for NoRecorder {}

fn save_report(data: &DataDir, report: &RunReport) -> Result<PathBuf> {
    std::fs::create_dir_all(data.runs())?;
    let path = data.runs().join(format!("{}.json", report.run_id));
    std::fs::write(&path, serde_json::to_string_pretty(report)?)?;
    Ok(path)
}

/// Ctrl-C turns the abort flag on; the vehicles pause and return to launch.
fn abort_on_ctrl_c() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("Ctrl-C: pausing every mission and sending RTL; waiting for the landings (Ctrl-C again to quit at once)");
            let _ = tx.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    rx
}

/// A planned takeoff may move this far to stand over the vehicle's own home, metres.
const ANCHOR_MAX_M: f64 = 100.0;

pub async fn fly(args: FlyArgs) -> Result<()> {
    let data = DataDir(args.data.clone());
    let db = args.db.clone().unwrap_or_else(|| data.db_spec());
    let (mut map, opts) = plan_inputs(&args.plan)?;
    let fleet = open(&args.conn).await?;
    let mut vehicles = fleet
        .wait_vehicles(args.vehicles, Duration::from_secs_f64(args.conn.wait))
        .await?;
    // The first N heard (by system id) fly; any others are left alone.
    vehicles.truncate(args.vehicles.max(1));
    // Each vehicle's HOME_POSITION, as it stands now.
    let mut homes = Vec::new();
    for v in &vehicles {
        v.wait_for(Duration::from_secs(15), |t| t.home.is_some())
            .await;
        let h = v.telemetry().home.with_context(|| {
            format!(
                "vehicle {} reports no home position (HOME_POSITION)",
                v.sysid()
            )
        })?;
        homes.push((v.sysid(), h));
    }
    // A vehicle already flying a sortie of a run in this data directory (fly was stopped
    // or crashed): carry on that run as it was planned.
    let mut resumed: Option<Vec<SortieJob>> = None;
    if vehicles.iter().any(|v| v.telemetry().armed) {
        let store = gridpatrol::events::EventStore::connect(&db)?;
        for v in vehicles.iter().filter(|v| v.telemetry().armed) {
            let Ok(flying) = v.download(gridpatrol::vehicle::MissionType::Mission).await else {
                continue;
            };
            if let Some((run, jobs)) = gridpatrol::patrol::run_flying(&store, &flying) {
                println!(
                    "vehicle {} is flying a sortie of run {run}: carrying that run on",
                    v.sysid()
                );
                resumed = Some(jobs);
                break;
            }
        }
    }
    let resuming = resumed.is_some();
    let mut jobs: Vec<SortieJob> = match &args.plan_file {
        _ if resuming => resumed.take().unwrap_or_default(),
        Some(f) => {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            let doc: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not JSON", f.display()))?;
            let mission = gridpatrol::plan::qgc::items_from_plan(&doc)
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
            let fence = gridpatrol::plan::qgc::fence_from_plan(&doc)
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
            vec![SortieJob {
                index: 0,
                mission,
                fence,
                cells: Vec::new(),
                flight_time_s: 0.0,
            }]
        }
        None => {
            // Plan from where the first vehicle stands (unless --home says otherwise), so
            // that the route, the battery and the fence start at its home.
            if args.plan.home.is_none() {
                let (sysid, h) = homes[0];
                if let Some(d) = map.home {
                    let off = gridpatrol::geotag::distance_m(d.lat, d.lon, h.lat, h.lon);
                    if off > 1.0 {
                        println!(
                            "planning from vehicle {sysid}'s home, {off:.0} m from the grid file's"
                        );
                    }
                }
                map.home = Some(gridpatrol::grid::Home {
                    lat: h.lat,
                    lon: h.lon,
                    alt_m: f64::from(h.alt_msl),
                });
            }
            let plan = plan_coverage(&map, &args.plan.cells, &opts)?;
            println!(
                "planned {} sortie(s) at {:.0} m above home (terrain taken as flat)",
                plan.sorties.len(),
                opts.altitude_m
            );
            jobs_from_plan(&plan)
        }
    };
    let anchors: Vec<(u8, f64, f64)> = homes.iter().map(|(id, h)| (*id, h.lat, h.lon)).collect();
    if !resuming {
        gridpatrol::patrol::anchor_to_homes(&mut jobs, &anchors, ANCHOR_MAX_M)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    let mut thresholds = gridpatrol::detect::Thresholds {
        default: args.min_confidence,
        ..Default::default()
    };
    thresholds
        .per_category
        .extend(args.thresholds.iter().copied());
    let report = patrol(
        &data,
        map,
        &opts.camera,
        vehicles,
        jobs,
        &fleet,
        RunOptions {
            detector: detector(&args.detector)?,
            battery_wait: Duration::from_secs_f64(args.battery_wait.max(0.0) * 60.0),
            thresholds,
            min_battery: args.min_battery,
            sortie_timeout: Duration::from_secs(3 * 3600),
            rerun: args.rerun.clone(),
            webhook: args.webhook.clone(),
            db: db.clone(),
        },
    )
    .await?;
    print!("{report}");
    println!(
        "report: {}; events: {db}",
        save_report(&data, &report)?.display(),
    );
    if report.vehicles.iter().any(|v| v.error.is_some()) {
        bail!("the patrol did not finish on every vehicle");
    }
    Ok(())
}

async fn patrol(
    data: &DataDir,
    map: GridMap,
    camera: &Camera,
    vehicles: Vec<gridpatrol::vehicle::Vehicle>,
    jobs: Vec<SortieJob>,
    fleet: &Fleet,
    opts: RunOptions,
) -> Result<RunReport> {
    let rerun = &opts.rerun;
    let recorder = observer(rerun)?;
    let obs = recorder
        .clone()
        .map(|r| r as Arc<dyn gridpatrol::patrol::observe::RunObserver>);
    let mut pipeline = Pipeline::open_in(
        &opts.db,
        &data.images_spec(),
        camera,
        Arc::new(map),
        opts.detector,
    )?;
    pipeline.thresholds = opts.thresholds;
    pipeline.observer = obs.clone();
    pipeline.fleet = Some(fleet.clone());
    // Geotag each vehicle's photos with its camera's own model where it gives one.
    let asked: Vec<_> = vehicles
        .iter()
        .map(|v| {
            let v = v.clone();
            tokio::spawn(async move { v.camera_information(Duration::from_secs(3)).await })
        })
        .collect();
    for (v, info) in vehicles.iter().zip(asked) {
        match info.await.ok().flatten() {
            Some(c) => {
                println!(
                    "vehicle {}: camera {} x {} px, {:.1} mm lens on a {:.1} x {:.1} mm sensor (CAMERA_INFORMATION)",
                    v.sysid(), c.width, c.height, c.focal_mm, c.sensor_w_mm, c.sensor_h_mm
                );
                if let Ok(mut m) = pipeline.cameras.write() {
                    m.insert(v.sysid(), gridpatrol::geotag::Intrinsics::from_info(&c));
                }
            }
            None => println!(
                "vehicle {}: its camera did not describe itself; geotagging with the {} model ({} x {} px)",
                v.sysid(),
                camera.name,
                camera.image_width_px,
                camera.image_height_px
            ),
        }
    }
    let pipeline = Arc::new(pipeline);
    let run_id = run_id_for(&jobs);
    println!(
        "run {run_id}: {} sortie(s) on {} vehicle(s); events in {}",
        jobs.len(),
        vehicles.len(),
        opts.db
    );
    let wake = Arc::new(tokio::sync::Notify::new());
    let captures = gridpatrol::patrol::CaptureRecorder::start(
        pipeline.store.clone(),
        run_id.clone(),
        wake.clone(),
    );
    let ctx = Arc::new(RunContext {
        run_id,
        store: pipeline.store.clone(),
        wake,
        recorder: captures,
        divert: Default::default(),
        detached: Default::default(),
        take_over_airborne: false,
        abort: abort_on_ctrl_c(),
        min_battery_pct: opts.min_battery,
        preflight_wait: Duration::from_secs(15),
        battery_wait: opts.battery_wait,
        sortie_timeout: opts.sortie_timeout,
        progress: indicatif::MultiProgress::new(),
        observer: obs,
    });
    // New and changed events go to the platform while the patrol flies; whatever is
    // still queued at the end stays in the outbox for the next run (or daemon).
    let (hook_stop, hook_rx) = tokio::sync::watch::channel(false);
    let hook = opts.webhook.as_ref().map(|url| {
        tokio::spawn(Webhook::new(url, Duration::from_secs(10)).run(
            pipeline.store.clone(),
            pipeline.holder.clone(),
            Duration::from_secs(1),
            hook_rx,
        ))
    });
    let store = pipeline.store.clone();
    let report = run_patrol(vehicles, jobs, ctx, pipeline).await;
    if let (Some(h), Some(url)) = (hook, &opts.webhook) {
        let hook = Webhook::new(url, Duration::from_secs(10));
        let (s, holder) = (store.clone(), gridpatrol::store::default_holder());
        let last = tokio::task::spawn_blocking(move || {
            hook.deliver_held(&s, &holder, gridpatrol::events::now_us())
        })
        .await
        .ok()
        .and_then(|r| r.ok())
        .flatten();
        let _ = hook_stop.send(true);
        let _ = h.await;
        let waiting = store
            .stats(gridpatrol::events::now_us())
            .map(|s| s.outbox_pending)
            .unwrap_or(0);
        match last.and_then(|d| d.last_error) {
            Some(e) => println!("webhook: {e}; {waiting} message(s) kept in the outbox"),
            None => println!("webhook {url}: delivered; {waiting} message(s) waiting"),
        }
    }
    if let (Some(r), Some(p)) = (recorder, rerun) {
        r.flush();
        println!(
            "recorded for Rerun: {} (open it with `rerun {}`)",
            p.display(),
            p.display()
        );
    }
    Ok(report)
}

/// The sample district, compiled in so the demo runs from anywhere.
pub(crate) const SAMPLE_DISTRICT: &str = include_str!("../../missions/wenqu.geojson");

/// The simulated fleet of a demo: `vehicles` drones in their docks at the district's home,
/// photographing `world`, sending to `gcs`.
pub(crate) async fn start_demo_sim(
    vehicles: usize,
    gcs: std::net::SocketAddr,
    speed: f64,
    map: &GridMap,
    world: gridpatrol_sim::world::World,
    data: &DataDir,
) -> Result<gridpatrol_sim::Sim> {
    let home = map.home.context("the district has no home")?;
    Ok(gridpatrol_sim::Sim::start(gridpatrol_sim::SimConfig {
        vehicles,
        gcs,
        base_port: None,
        speed,
        home: (home.lat, home.lon, home.alt_m),
        world: Some(Arc::new(world)),
        image_dir: Some(data.0.join("sim-images")),
        // A dock that charges as DJI Dock 2 does (20 to 90 % in 32 min).
        dock_charge_pct_per_min: 2.2,
        ..Default::default()
    })
    .await?)
}

/// The simulator's world for a demo: `issues` placed at random in `cells` (only the
/// simulator sees it), saved beside its images (`sim-images/world.json`) for scoring.
pub(crate) fn sample_world(
    map: &GridMap,
    cells: &[String],
    issues: usize,
    seed: u64,
    data: &DataDir,
) -> Result<gridpatrol_sim::world::World> {
    let home = map.home.context("the district has no home")?;
    let mut rings = Vec::new();
    for id in cells {
        let cell = map
            .cell(id)
            .with_context(|| format!("no cell {id} in the district"))?;
        rings.push(
            cell.polygon
                .exterior()
                .points()
                .map(|p| (p.y(), p.x()))
                .collect(),
        );
    }
    let world = gridpatrol_sim::world::World::generate(&rings, issues, seed, home.alt_m)?;
    std::fs::create_dir_all(data.0.join("sim-images"))?;
    world.save(&data.0.join("sim-images").join("world.json"))?;
    Ok(world)
}

pub async fn demo(args: DemoArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let data = DataDir(args.data.clone());
    std::fs::create_dir_all(&data.0)?;
    let map = GridMap::from_geojson(SAMPLE_DISTRICT, gridpatrol::grid::Datum::Wgs84)?;
    let home = map.home.context("the sample district has no home")?;
    let world = sample_world(&map, &args.cells, args.issues, args.seed, &data)?;
    let camera = Camera::find("sim")?;
    let opts = PlanOptions {
        camera: camera.clone(),
        altitude_m: 60.0,
        front_overlap_pct: 70.0,
        side_overlap_pct: 50.0,
        speed_mps: 10.0,
        battery_min: 20.0,
        ..PlanOptions::default()
    };
    let plan = plan_coverage(&map, &args.cells, &opts)?;
    let jobs = jobs_from_plan(&plan);
    println!(
        "sample district: {} cells; patrolling {} ({:.2} km²) at {:.0} m with the simulator's camera: {} sortie(s), {} photos planned",
        map.cells.len(),
        args.cells.join(","),
        args.cells.iter().filter_map(|c| map.cell(c)).map(|c| c.area_m2).sum::<f64>() / 1e6,
        opts.altitude_m,
        plan.sorties.len(),
        plan.sorties.iter().map(|s| s.photos).sum::<u32>()
    );
    let tlog = data.0.join("demo.tlog");
    let hub = Hub::connect(
        HubConfig {
            tlog: Some(tlog.clone()),
            // The heartbeat keeps to 1 Hz of the vehicles' clock by itself (Fleet measures it).
            ..HubConfig::default()
        },
        &[LinkConfig::new("udpin:127.0.0.1:0".parse()?)],
    )
    .await?;
    let gcs = hub.links()[0].local_addr.context("no local address")?;
    // Kept alive for the run: the simulated fleet, or PX4 SITL instances with cameras.
    let mut _sim = None;
    let mut _px4 = Vec::new();
    match &args.px4 {
        None => {
            let sim = start_demo_sim(args.vehicles, gcs, args.speed, &map, world, &data).await?;
            println!(
                "simulator: {} vehicle(s) at {}x real time, {} issues hidden in the cells",
                sim.vehicles().len(),
                args.speed,
                args.issues
            );
            _sim = Some(sim);
        }
        Some(given) => {
            let launcher = gridpatrol_sim::px4_sitl::find_launcher(
                (given.as_os_str() != "auto").then_some(given),
            )?;
            // PX4 SITL has flown missions to landing at up to 10× here.
            let speed = args.speed.min(10.0);
            let ids: Vec<u8> = (0..args.vehicles.min(10) as u8).collect();
            // The cameras listen on the payload links before PX4 starts sending there.
            gridpatrol_sim::cli::attach_px4(
                &ids,
                Arc::new(world),
                data.0.join("sim-images"),
                gridpatrol_sim::camera::Camera::default(),
            )
            .await?;
            for &i in &ids {
                // Side by side in the dock, 5 m apart, as the simulated fleet stands.
                let east = f64::from(i) * 5.0 / (111_320.0 * home.lat.to_radians().cos());
                _px4.push(gridpatrol_sim::px4_sitl::Px4Instance::start(
                    &launcher,
                    i,
                    speed,
                    (home.lat, home.lon + east, home.alt_m),
                    gcs.port(),
                    &std::path::absolute(data.0.join(format!("px4-{i}")))?,
                )?);
            }
            println!(
                "PX4 v1.16 SITL: {} instance(s) at {speed}x real time with the simulator's camera on each; {} issues hidden in the cells",
                ids.len(),
                args.issues
            );
        }
    }
    let fleet = Fleet::new(hub.clone(), FleetConfig::default());
    let vehicles = fleet
        .wait_vehicles(args.vehicles, Duration::from_secs(10))
        .await?;
    let report = patrol(
        &data,
        map,
        &camera,
        vehicles,
        jobs,
        &fleet,
        RunOptions {
            detector: Arc::new(ColourDetector::default()),
            battery_wait: Duration::from_secs(600),
            thresholds: Default::default(),
            min_battery: 50,
            sortie_timeout: Duration::from_secs(600),
            rerun: args.rerun.clone(),
            webhook: args.webhook.clone(),
            db: data.db_spec(),
        },
    )
    .await?;
    hub.flush_tlog();
    print!("{report}");
    println!(
        "done in {:.0} s real time. events: {} (try `gridpatrol events --data {} list`, `… stats`); images: {}; run report: {}; tlog: {}",
        started.elapsed().as_secs_f64(),
        data.db().display(),
        data.0.display(),
        data.images().display(),
        save_report(&data, &report)?.display(),
        tlog.display()
    );
    if let Some(e) = report.vehicles.iter().find_map(|v| v.error.clone()) {
        bail!(e);
    }
    Ok(())
}
