//! The gridpatrol command line: a thin layer over the library.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use gridpatrol::link::{Hub, HubConfig, LinkAddr, LinkConfig, SigningKey};
use gridpatrol::vehicle::{
    Fleet, FleetConfig, LinkState, MissionPlan, MissionType, Telemetry, Vehicle,
};

#[derive(Parser)]
#[command(
    name = "gridpatrol",
    version,
    about = "Drone patrol mission controller for city grid governance"
)]
struct Cli {
    /// Log lines on stderr as text, or as JSON objects (one per line, for journald, Loki
    /// or Elasticsearch); the level comes from RUST_LOG.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "GRIDPATROL_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Clone)]
struct Conn {
    /// Link address (repeat for several links): udpin:0.0.0.0:14550, udpout:127.0.0.1:14540, tcpin:…, tcpout:…, serial:/dev/ttyUSB0:57600
    #[arg(long = "connect", short = 'c', required = true)]
    connect: Vec<String>,
    /// MAVLink 2 signing key file (32 bytes, 64 hex digits, or a passphrase) for every link.
    #[arg(long)]
    sign_key: Option<PathBuf>,
    /// Record every frame in and out to this .tlog.
    #[arg(long)]
    tlog: Option<PathBuf>,
    /// How long to wait for a vehicle, in seconds.
    #[arg(long, default_value_t = 10.0)]
    wait: f64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the vehicles heard: mode, armed, position, battery, GPS, link quality.
    Status {
        #[command(flatten)]
        conn: Conn,
        /// Keep refreshing until Ctrl-C.
        #[arg(long)]
        watch: bool,
    },
    /// Upload, download or clear a mission, geofence or rally plan (JSON).
    Mission {
        #[command(subcommand)]
        op: MissionOp,
    },
    /// Plan patrol routes over grid cells and write QGroundControl .plan files.
    Plan(PlanCmd),
    /// Grid cells: validate a district file and summarise it.
    Grids {
        #[command(subcommand)]
        op: GridsOp,
    },
    /// Summarise a .tlog, or print its message stream.
    Replay {
        file: PathBuf,
        /// Print every message.
        #[arg(long)]
        messages: bool,
    },
    /// Run the simulated PX4 fleet (same as the gridpatrol-sim binary).
    Sim(gridpatrol_sim::cli::RunArgs),
    /// Patrol part of the sample district with the simulated fleet: plan, fly, find the
    /// issues in the photos, file them as grid events, and print the summary.
    Demo(DemoArgs),
    /// Fly a patrol: plan (or load a .plan), preflight, upload and read back, arm, fly,
    /// and file the issues found as grid events.
    Fly(Box<FlyArgs>),
    /// Run the service: scheduled patrols flown unattended, the capture → event pipeline,
    /// and the HTTP API (`--demo`: on the simulator and the sample district).
    Serve(Box<ServeArgs>),
    /// API tokens for `serve`: create (with a role), list, revoke.
    Token {
        /// Data directory (gridpatrol.db).
        #[arg(long, default_value = "data", global = true)]
        data: PathBuf,
        #[command(subcommand)]
        op: TokenOp,
    },
    /// Scheduled patrols: check their definitions and show when they fire.
    Patrols {
        #[command(subcommand)]
        op: PatrolsOp,
    },
    /// Grid events: list, show, work them through the closed loop, export, statistics.
    Events {
        /// Data directory (gridpatrol.db, images/).
        #[arg(long, default_value = "data", global = true)]
        data: PathBuf,
        #[command(subcommand)]
        op: EventsOp,
    },
}

mod cli;
use cli::{
    demo, events_cmd, fly, patrols_cmd, serve, token_cmd, DemoArgs, EventsOp, FlyArgs, PatrolsOp,
    ServeArgs, TokenOp,
};

#[derive(clap::Args)]
pub(crate) struct PlanArgs {
    /// The district's grid cells (GeoJSON).
    grids: PathBuf,
    #[arg(long, default_value = "wgs84")]
    datum: gridpatrol::grid::Datum,
    /// Cells to cover, comma separated (default: all).
    #[arg(long, value_delimiter = ',')]
    cells: Vec<String>,
    /// coverage, perimeter, or points (the hotspots in the grid file).
    #[arg(long, default_value = "coverage")]
    pattern: String,
    /// Altitude above home in metres (or give --gsd).
    #[arg(long, conflicts_with = "gsd")]
    alt: Option<f64>,
    /// Target ground sample distance in cm/px.
    #[arg(long)]
    gsd: Option<f64>,
    /// Front/side overlap in percent.
    #[arg(long, default_value = "75/65")]
    overlap: String,
    /// Camera preset or camera JSON file.
    #[arg(long, default_value = "1inch-20mp")]
    camera: String,
    /// Cruise speed in m/s.
    #[arg(long, default_value_t = 8.0)]
    speed: f64,
    /// Usable battery time in minutes (20 % is kept in reserve).
    #[arg(long, default_value_t = 20.0)]
    battery_min: f64,
    /// Sweep direction in degrees from north (default: the shortest).
    #[arg(long)]
    angle: Option<f64>,
    /// Run-out beyond each cell edge in metres (camera off).
    #[arg(long, default_value_t = 0.0)]
    turnaround: f64,
    /// Highest altitude above home any item may have, metres.
    #[arg(long, default_value_t = 120.0)]
    ceiling: f64,
    /// Take off from here, LAT,LON[,ALT_MSL] in the grid file's datum (default: the grid
    /// file's home; `fly` plans from the vehicle's own home).
    #[arg(long, value_parser = parse_home)]
    home: Option<(f64, f64, Option<f64>)>,
    /// Geofence items the vehicle holds (PX4: 64); each sortie's fence is made to fit.
    #[arg(long, default_value_t = gridpatrol::plan::fence::PX4_FENCE_CAPACITY)]
    fence_capacity: usize,
}

/// `gridpatrol plan`: the planner's inputs and where the plan goes.
#[derive(clap::Args)]
struct PlanCmd {
    #[command(flatten)]
    plan: PlanArgs,
    /// Datum of GeoJSON/KML output: wgs84 or gcj02.
    #[arg(long, default_value = "wgs84")]
    out_datum: gridpatrol::grid::Datum,
    /// Output: .plan (several sorties become OUT-1.plan, OUT-2.plan, ...), .geojson or .kml.
    #[arg(short = 'o', long, default_value = "patrol.plan")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum GridsOp {
    /// Validate GRIDS (GeoJSON) and print a summary.
    Check {
        file: PathBuf,
        /// The datum of the file's coordinates: wgs84 or gcj02 (Chinese web maps).
        #[arg(long, default_value = "wgs84")]
        datum: gridpatrol::grid::Datum,
    },
}

#[derive(Subcommand)]
enum MissionOp {
    Upload {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        sysid: Option<u8>,
        file: PathBuf,
    },
    Download {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        sysid: Option<u8>,
        #[arg(long = "type", default_value = "mission")]
        kind: MissionType,
        /// Write here (default: stdout).
        file: Option<PathBuf>,
    },
    Clear {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        sysid: Option<u8>,
        #[arg(long = "type", default_value = "mission")]
        kind: MissionType,
    },
}

async fn open(conn: &Conn) -> Result<Fleet> {
    let key = match &conn.sign_key {
        Some(p) => Some(SigningKey::from_file(p)?),
        None => None,
    };
    let mut links = Vec::new();
    for a in &conn.connect {
        let addr: LinkAddr = a.parse()?;
        links.push(LinkConfig {
            addr,
            signing: key.clone(),
        });
    }
    let hub = Hub::connect(
        HubConfig {
            tlog: conn.tlog.clone(),
            ..HubConfig::default()
        },
        &links,
    )
    .await?;
    Ok(Fleet::new(hub, FleetConfig::default()))
}

async fn one_vehicle(fleet: &Fleet, sysid: Option<u8>, wait: f64) -> Result<Vehicle> {
    Ok(fleet
        .wait_vehicle(sysid, Duration::from_secs_f64(wait))
        .await?)
}

fn status_line(t: &Telemetry) -> String {
    let pos = t.position.map_or("no position".to_string(), |p| {
        format!("{:.7},{:.7} {:.1} m rel", p.lat, p.lon, p.alt_rel)
    });
    let gps = t.gps.map_or("no GPS".into(), |g| {
        format!("fix {} sats {}", g.fix_type, g.satellites)
    });
    let bat = t.battery.remaining.map_or("?".into(), |r| format!("{r} %"));
    let link = match t.link {
        LinkState::Connected => "connected",
        LinkState::Lost => "LOST",
    };
    let clock = t
        .clock_rate
        .filter(|r| (r - 1.0).abs() > 0.05)
        .map_or(String::new(), |r| format!("  clock x{r:.1}"));
    format!(
        "vehicle {:>3}  {:<13} {:<8} {}  battery {}  {}  link {} ({:.1} % of {} frames){clock}",
        t.sysid,
        t.mode.to_string(),
        if t.armed { "ARMED" } else { "disarmed" },
        pos,
        bat,
        gps,
        link,
        t.quality.percent(),
        t.quality.received + t.quality.lost
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    // Like other command-line tools, end quietly when the reader of our output goes away
    // (`gridpatrol events list | head`) instead of panicking on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread writes.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(false).init(),
    }
    match cli.cmd {
        Cmd::Status { conn, watch } => {
            let fleet = open(&conn).await?;
            one_vehicle(&fleet, None, conn.wait).await?;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            loop {
                for id in fleet.sysids() {
                    if let Some(v) = fleet.vehicle(id) {
                        println!("{}", status_line(&v.telemetry()));
                    }
                }
                for l in fleet.hub().links() {
                    if let Some(s) = fleet.hub().link_stats(l.id) {
                        println!(
                            "link {} {}: {} frames in, {} out, {} bad CRC, {} unknown ids, {} bad signatures",
                            l.id, l.addr, s.frames_in, s.frames_out, s.bad_crc, s.unknown_id, s.bad_signature
                        );
                    }
                }
                if !watch {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => println!(),
                    _ = tokio::signal::ctrl_c() => break,
                }
            }
        }
        Cmd::Mission { op } => match op {
            MissionOp::Upload { conn, sysid, file } => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let value: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("{}: not JSON", file.display()))?;
                // A QGroundControl .plan carries a mission and a geofence; ours one list.
                let plans: Vec<MissionPlan> = if value.get("fileType").is_some() {
                    let mission = gridpatrol::plan::qgc::items_from_plan(&value)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                    let fence = gridpatrol::plan::qgc::fence_from_plan(&value)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                    let mut v = vec![MissionPlan {
                        mission_type: MissionType::Mission,
                        items: mission,
                    }];
                    if !fence.is_empty() {
                        v.push(MissionPlan {
                            mission_type: MissionType::Fence,
                            items: fence,
                        });
                    }
                    v
                } else {
                    match serde_json::from_value::<MissionPlan>(value.clone()) {
                        Ok(p) => vec![p],
                        Err(_) => vec![MissionPlan {
                            mission_type: MissionType::Mission,
                            items: serde_json::from_value(value).with_context(|| {
                                format!(
                                    "{}: not a .plan, a mission plan or an item list",
                                    file.display()
                                )
                            })?,
                        }],
                    }
                };
                let fleet = open(&conn).await?;
                let v = one_vehicle(&fleet, sysid, conn.wait).await?;
                for plan in plans {
                    v.upload_verified(plan.mission_type, &plan.items).await?;
                    println!(
                        "uploaded {} {:?} items to vehicle {} and read them back: identical",
                        plan.items.len(),
                        plan.mission_type,
                        v.sysid()
                    );
                }
            }
            MissionOp::Download {
                conn,
                sysid,
                kind,
                file,
            } => {
                let fleet = open(&conn).await?;
                let v = one_vehicle(&fleet, sysid, conn.wait).await?;
                let items = v.download(kind).await?;
                let text = serde_json::to_string_pretty(&MissionPlan {
                    mission_type: kind,
                    items,
                })?;
                match file {
                    Some(f) => std::fs::write(&f, text)
                        .with_context(|| format!("writing {}", f.display()))?,
                    None => println!("{text}"),
                }
            }
            MissionOp::Clear { conn, sysid, kind } => {
                let fleet = open(&conn).await?;
                let v = one_vehicle(&fleet, sysid, conn.wait).await?;
                v.clear(kind).await?;
                println!("cleared the {kind:?} plan of vehicle {}", v.sysid());
            }
        },
        Cmd::Plan(args) => plan_cmd(args)?,
        Cmd::Grids {
            op: GridsOp::Check { file, datum },
        } => {
            let map = gridpatrol::grid::GridMap::load(&file, datum)
                .with_context(|| format!("{} is not a valid grid file", file.display()))?;
            for w in &map.warnings {
                println!("warning: {w}");
            }
            println!(
                "{}: {} grid cells, {:.2} km², {} no-fly zones, {} hotspots, home {}",
                file.display(),
                map.cells.len(),
                map.area_km2(),
                map.no_fly.len(),
                map.hotspots.len(),
                map.home.map_or("not set".into(), |h| format!(
                    "{:.6},{:.6} {:.0} m",
                    h.lat, h.lon, h.alt_m
                ))
            );
            let mut kinds: std::collections::BTreeMap<&str, (usize, f64)> = Default::default();
            for c in &map.cells {
                let e = kinds.entry(c.kind.as_str()).or_default();
                e.0 += 1;
                e.1 += c.area_m2 / 1e6;
            }
            for (k, (n, a)) in kinds {
                println!("  {k:<12} {n:>3} cells {a:>7.2} km²");
            }
            for z in &map.no_fly {
                println!("  no-fly {} {}", z.id, z.name);
            }
        }
        Cmd::Replay { file, messages } => {
            let data =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let summary = gridpatrol::replay::replay(&data, |t, f, m| {
                if messages {
                    println!("{t} {}:{} {m:?}", f.sysid(), f.compid());
                }
            });
            if !messages {
                print!("{summary}");
            }
        }
        Cmd::Sim(args) => gridpatrol_sim::cli::run(args).await?,
        Cmd::Demo(args) => demo(args).await?,
        Cmd::Fly(args) => fly(*args).await?,
        Cmd::Events { data, op } => events_cmd(&data, op)?,
        Cmd::Patrols { op } => patrols_cmd(op)?,
        Cmd::Serve(args) => serve(*args).await?,
        Cmd::Token { data, op } => token_cmd(&data, op)?,
    }
    Ok(())
}

/// `LAT,LON` or `LAT,LON,ALT` in degrees and metres.
fn parse_home(s: &str) -> Result<(f64, f64, Option<f64>), String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{s:?} is not LAT,LON[,ALT]"))?;
    match v[..] {
        [lat, lon] | [lat, lon, _]
            if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
        {
            Ok((lat, lon, v.get(2).copied()))
        }
        _ => Err(format!(
            "{s:?} is not LAT,LON[,ALT] with latitude within ±90 and longitude within ±180"
        )),
    }
}

/// The grid map and planner options an invocation asks for.
fn plan_inputs(
    args: &PlanArgs,
) -> Result<(gridpatrol::grid::GridMap, gridpatrol::plan::PlanOptions)> {
    use gridpatrol::plan::PlanOptions;
    let mut map = gridpatrol::grid::GridMap::load(&args.grids, args.datum)
        .with_context(|| format!("{} is not a valid grid file", args.grids.display()))?;
    if let Some((lat, lon, alt)) = args.home {
        let (lat, lon) = args.datum.to_wgs84(lat, lon);
        let alt_m = alt.or(map.home.map(|h| h.alt_m)).unwrap_or(0.0);
        map.home = Some(gridpatrol::grid::Home { lat, lon, alt_m });
    }
    let opts = PlanOptions::from_words(
        &args.pattern,
        &args.camera,
        &args.overlap,
        args.alt,
        args.gsd,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let opts = PlanOptions {
        speed_mps: args.speed,
        battery_min: args.battery_min,
        angle_deg: args.angle,
        turnaround_m: args.turnaround,
        ceiling_m: args.ceiling,
        fence_capacity: args.fence_capacity,
        ..opts
    };
    Ok((map, opts))
}

fn plan_cmd(args: PlanCmd) -> Result<()> {
    use gridpatrol::plan::{plan_coverage, qgc};
    let (map, opts) = plan_inputs(&args.plan)?;
    let PlanCmd {
        plan: PlanArgs { cells, speed, .. },
        out_datum,
        out,
    } = args;
    let pattern = opts.pattern;
    let started = std::time::Instant::now();
    let plan = plan_coverage(&map, &cells, &opts)?;
    let took = started.elapsed();
    let s = plan.survey;
    println!(
        "altitude {:.1} m above home (terrain taken as flat), GSD {:.2} cm/px, footprint {:.1} x {:.1} m, lines {:.1} m apart, photo every {:.1} m",
        s.altitude_m, s.gsd_cm, s.footprint_side_m, s.footprint_frontal_m, s.line_spacing_m, s.trigger_distance_m
    );
    println!(
        "{:>6} {:>9} {:>9} {:>7} {:>6} {:>6} {:>8}  cells",
        "sortie", "length", "time", "photos", "turns", "items", "battery"
    );
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("plan")
        .to_ascii_lowercase();
    match ext.as_str() {
        "geojson" | "json" => std::fs::write(
            &out,
            serde_json::to_string_pretty(&gridpatrol::plan::export::geojson(&plan, out_datum))?,
        )?,
        "kml" => std::fs::write(&out, gridpatrol::plan::export::kml(&plan, out_datum))?,
        "plan" => {}
        other => bail!("unknown output type .{other}: use .plan, .geojson or .kml"),
    }
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "patrol".into());
    let dir = out.parent().map(PathBuf::from).unwrap_or_default();
    for (i, so) in plan.sorties.iter().enumerate() {
        println!(
            "{:>6} {:>7.0} m {:>6.1} min {:>7} {:>6} {:>6} {:>7.0} %  {}",
            i + 1,
            so.length_m,
            so.flight_time_s / 60.0,
            so.photos,
            so.turns,
            so.items.len(),
            so.battery_pct,
            so.cells.join(",")
        );
        if ext != "plan" {
            continue;
        }
        let doc = qgc::plan_json(&so.items, plan.home, speed, &so.fence_items);
        let path = if plan.sorties.len() == 1 {
            out.clone()
        } else {
            dir.join(format!("{stem}-{}.plan", i + 1))
        };
        std::fs::write(&path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let bound = if matches!(pattern, gridpatrol::plan::Pattern::Coverage) {
        let total: f64 = plan.sorties.iter().map(|s| s.length_m).sum();
        let lb = gridpatrol::plan::route_lower_bound(&map, &cells, &opts, &plan.survey);
        format!(
            " against a lower bound of {:.1} km (area / line spacing); whole route {:.1} km against an estimate of {:.1} km (the bound plus the transit the battery forces; an estimate, not a bound)",
            plan.sweep_lower_bound_m / 1000.0,
            total / 1000.0,
            lb.total_m() / 1000.0
        )
    } else {
        String::new()
    };
    println!(
        "camera-on {:.1} km{bound}; planned in {:.1} ms; {} sortie(s) written from {}",
        plan.sweep_m / 1000.0,
        took.as_secs_f64() * 1000.0,
        plan.sorties.len(),
        out.display()
    );
    Ok(())
}
