//! `gridpatrol serve`: the long-running service. It owns the links to the fleet, the
//! scheduler and its run book, the capture → event pipeline and the HTTP API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use gridpatrol::grid::{Datum, GridMap};
use gridpatrol::link::{Hub, HubConfig, LinkConfig};
use gridpatrol::patrol::{pipeline::DataDir, Pipeline};
use gridpatrol::plan::Camera;
use gridpatrol::schedule::service::{Service, ServiceConfig};
use gridpatrol::schedule::{PatrolDef, RunBook, Scheduler, SystemClock};
use gridpatrol::vehicle::{Fleet, FleetConfig};

use super::patrol::{detector, sample_world, start_demo_sim, SAMPLE_DISTRICT};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Link addresses of the fleet (repeat), as for `fly`; not with --demo.
    #[arg(long = "connect", short = 'c')]
    connect: Vec<String>,
    /// Fly the simulator: the sample district, `--vehicles` simulated drones in their docks
    /// and issues hidden in the patrols' cells (in every cell when there are no patrols).
    #[arg(long)]
    demo: bool,
    /// Simulated drones with --demo.
    #[arg(long, default_value_t = 2)]
    vehicles: usize,
    /// Simulated seconds per real second with --demo.
    #[arg(long, default_value_t = 20.0)]
    speed: f64,
    /// Patrol definitions (*.toml).
    #[arg(long, default_value = "missions/patrols")]
    patrols: PathBuf,
    /// The district (GeoJSON); --demo uses the sample district built in.
    #[arg(long, default_value = "missions/wenqu.geojson")]
    grids: PathBuf,
    #[arg(long, default_value = "wgs84")]
    datum: Datum,
    /// Data directory: gridpatrol.db, images/.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// The database: sqlite:PATH or postgres://USER@HOST:PORT/DATABASE, shared by several
    /// `serve` processes (default: the SQLite database in --data).
    #[arg(long)]
    db: Option<gridpatrol::store::DbSpec>,
    /// Where the photos are kept: a directory (shared by several `serve` processes on NFS),
    /// or s3://BUCKET/PREFIX, an S3-compatible store, its endpoint and credentials in the
    /// AWS_* variables (default: images/ in --data).
    #[arg(long)]
    images: Option<gridpatrol::capture::ImageSpec>,
    /// Where the HTTP API listens (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Detector, as for `fly`.
    #[arg(long, default_value = "colour")]
    detector: String,
    /// Camera model for geotagging photos of vehicles whose camera does not describe
    /// itself.
    #[arg(long, default_value = "1inch-20mp")]
    camera: String,
    /// On SIGTERM, let the sorties in the air finish, or bring them home now (their runs
    /// resume from their breakpoints when the service is back).
    #[arg(long, value_enum, default_value = "finish")]
    on_stop: gridpatrol::schedule::service::OnStop,
    /// Vehicle telemetry samples per second on the live stream and the map (at most 10).
    #[arg(long, default_value_t = 2.0)]
    telemetry_hz: f64,
    /// A base map for the page at `/`: a tile URL template such as
    /// `https://tiles.example/{z}/{x}/{y}.png`. Without it the page draws the district
    /// alone, offline.
    #[arg(long)]
    tiles: Option<String>,
    /// The datum of those tiles; Chinese web maps (Gaode, Tencent) are in gcj02, and the
    /// page shifts what it draws to sit right on them.
    #[arg(long, default_value = "wgs84")]
    tiles_datum: Datum,
    /// The tiles' attribution, shown on the map.
    #[arg(long, default_value = "")]
    tiles_attribution: String,
    /// Alerts: orbit altitude above home, metres.
    #[arg(long, default_value_t = 40.0)]
    alert_alt: f64,
    /// Alerts: orbit radius round the point, metres (under half the altitude keeps the
    /// point in a nadir camera's frame).
    #[arg(long, default_value_t = 15.0)]
    alert_orbit_radius: f64,
    /// Alerts: cruise speed, m/s.
    #[arg(long, default_value_t = 12.0)]
    alert_speed: f64,
    /// Alerts: usable minutes of a full battery.
    #[arg(long, default_value_t = 25.0)]
    alert_battery_min: f64,
    /// Alerts: battery to land with, percent.
    #[arg(long, default_value_t = 20.0)]
    alert_reserve: f64,
    /// Alerts of this priority and above take a vehicle off a routine patrol.
    #[arg(long, value_enum, default_value = "urgent")]
    alert_preempt_at: gridpatrol::alert::Priority,
    /// This controller's name in vehicle leases, run claims and capture claims; unique
    /// among the controllers sharing a database (default: the host name, so that a
    /// controller restarted on its machine takes back its runs at once).
    #[arg(long)]
    controller: Option<String>,
    /// How long a controller's vehicle lease lasts unless renewed (every second while it
    /// flies), seconds: another controller takes over a dead one's runs after this.
    #[arg(long, default_value_t = 60.0)]
    lease_ttl: f64,
    /// POST new and changed events to this grid platform URL (with Idempotency-Key); one
    /// controller drains the outbox at a time.
    #[arg(long)]
    webhook: Option<String>,
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let data = DataDir(args.data.clone());
    std::fs::create_dir_all(&data.0)?;
    let map = if args.demo {
        GridMap::from_geojson(SAMPLE_DISTRICT, Datum::Wgs84)?
    } else {
        GridMap::load(&args.grids, args.datum)
            .with_context(|| format!("{} is not a valid grid file", args.grids.display()))?
    };
    let defs = PatrolDef::load_dir(&args.patrols)?;
    let cells: Vec<String> = map.cells.iter().map(|c| c.id.clone()).collect();
    for d in &defs {
        d.validate(Some(&cells))?;
    }
    let hub = if args.demo {
        if !args.connect.is_empty() {
            bail!("--demo flies the simulator: leave out --connect");
        }
        Hub::connect(
            HubConfig::default(),
            &[LinkConfig::new("udpin:127.0.0.1:0".parse()?)],
        )
        .await?
    } else {
        if args.connect.is_empty() {
            bail!("give the fleet's links with --connect (or --demo for the simulator)");
        }
        let mut links = Vec::new();
        for a in &args.connect {
            links.push(LinkConfig::new(a.parse()?));
        }
        Hub::connect(HubConfig::default(), &links).await?
    };
    let mut _sim = None;
    let camera = if args.demo {
        let mut patrolled: Vec<String> = defs.iter().flat_map(|d| d.cells.clone()).collect();
        patrolled.sort();
        patrolled.dedup();
        // No patrols (an alerts-only service): issues across the whole district.
        let world = if patrolled.is_empty() {
            let all: Vec<String> = map.cells.iter().map(|c| c.id.clone()).collect();
            sample_world(&map, &all, 2 * all.len(), 7, &data)?
        } else {
            sample_world(&map, &patrolled, 8 * patrolled.len(), 7, &data)?
        };
        let gcs = hub.links()[0].local_addr.context("no local address")?;
        _sim = Some(start_demo_sim(args.vehicles, gcs, args.speed, &map, world, &data).await?);
        println!(
            "simulator: {} vehicle(s) at {}x real time",
            args.vehicles, args.speed
        );
        Camera::find("sim")?
    } else {
        Camera::find(&args.camera)?
    };
    let fleet = Fleet::new(hub.clone(), FleetConfig::default());
    let db = args.db.clone().unwrap_or_else(|| data.db_spec());
    let images = args.images.clone().unwrap_or_else(|| data.images_spec());
    let mut pipeline = Pipeline::open_in(
        &db,
        &images,
        &camera,
        Arc::new(map),
        detector(&args.detector)?,
    )?;
    pipeline.fleet = Some(fleet.clone());
    let holder = args
        .controller
        .clone()
        .unwrap_or_else(gridpatrol::store::default_holder);
    pipeline.holder = holder.clone();
    tracing::info!(
        "controller {holder} on {db}, images in {}",
        pipeline.images.spec()
    );
    let pipeline = Arc::new(pipeline);
    let book = RunBook::new(pipeline.store.clone());
    // Patrols made through the API are kept in the store; they win over a file's of the
    // same name (the newer edit).
    let stored = book.stored_patrols()?;
    let mut defs: Vec<PatrolDef> = defs
        .into_iter()
        .filter(|d| !stored.iter().any(|s| s.name == d.name))
        .collect();
    defs.extend(stored);
    let scheduler = Scheduler::new(book, defs)?;
    for (name, next) in scheduler.upcoming(chrono::Utc::now()) {
        println!(
            "patrol {name}: next {}",
            next.map_or("never".into(), |t| t.to_rfc3339())
        );
    }
    let service = Service::new(
        scheduler,
        Arc::new(SystemClock),
        fleet,
        pipeline,
        ServiceConfig {
            holder: holder.clone(),
            lease_ttl: Duration::from_secs_f64(args.lease_ttl.clamp(2.0, 3600.0)),
            on_stop: args.on_stop,
            alert: gridpatrol::alert::dispatch::AlertConfig {
                alt_m: args.alert_alt,
                orbit_radius_m: args.alert_orbit_radius,
                speed_m_s: args.alert_speed,
                battery_min: args.alert_battery_min,
                reserve_pct: args.alert_reserve,
                preempt_at: args.alert_preempt_at,
                camera: args.camera.clone(),
                ..Default::default()
            },
            ..ServiceConfig::default()
        },
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(url) = &args.webhook {
        tokio::spawn(
            gridpatrol::events::webhook::Webhook::new(url, Duration::from_secs(10)).run(
                service.book().store().clone(),
                holder.clone(),
                Duration::from_secs(1),
                stop_rx.clone(),
            ),
        );
    }
    let worker = tokio::spawn(service.clone().run(stop_rx));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let at = listener.local_addr()?;
    println!("api: http://{at}");
    println!("map: http://{at}/");
    let live = gridpatrol::api::stream::LiveStream::new();
    live.clone().feed(
        service.fleet().clone(),
        service.book().store().clone(),
        Duration::from_millis(500),
        args.telemetry_hz,
    );
    let web = gridpatrol::api::web::WebConfig {
        tiles: args.tiles.clone(),
        tiles_datum: args.tiles_datum,
        tiles_attribution: args.tiles_attribution.clone(),
        telemetry_hz: args.telemetry_hz,
    };
    let app = gridpatrol::api::router(service, live, web);
    let shutdown = async move {
        terminated().await;
        tracing::info!("stopping: no new runs; sorties in the air finish first");
        let _ = stop_tx.send(true);
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    let _ = tokio::time::timeout(Duration::from_secs(3600), worker).await;
    Ok(())
}

/// SIGTERM (systemd's stop) or Ctrl-C.
async fn terminated() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
