//! The gridpatrol command line: a thin layer over the library.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gridpatrol",
    version,
    about = "Drone patrol mission controller for city grid governance",
    after_help = "Examples:\n  gridpatrol demo\n  gridpatrol status --connect udpin:0.0.0.0:14550\n  gridpatrol fly --connect udpin:0.0.0.0:14550 missions/wenqu.geojson --cells WQ-24 --alt 60 --vehicles 2 --tlog flight.tlog"
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

#[derive(Subcommand)]
enum Cmd {
    /// Show the vehicles heard: mode, armed, position, battery, GPS, link quality.
    #[command(after_help = "Examples:\n  gridpatrol status --connect udpin:0.0.0.0:14550")]
    Status {
        #[command(flatten)]
        conn: Conn,
        /// Keep refreshing until Ctrl-C.
        #[arg(long)]
        watch: bool,
    },
    /// Upload, download or clear a mission, geofence or rally plan (JSON).
    #[command(
        after_help = "Examples:\n  gridpatrol mission upload --connect udpin:0.0.0.0:14540 missions/box.json\n  gridpatrol mission clear --connect udpin:0.0.0.0:14540"
    )]
    Mission {
        #[command(subcommand)]
        op: MissionOp,
    },
    /// Plan patrol routes over grid cells and write QGroundControl .plan files.
    #[command(
        after_help = "Examples:\n  gridpatrol plan missions/wenqu.geojson --cells WQ-24,WQ-25 --gsd 2 --overlap 75/65 --camera 1inch-20mp --speed 8 --battery-min 20 -o patrol.plan\n  gridpatrol plan missions/wenqu.geojson --cells WQ-24 --pattern perimeter --alt 60 --home 36.56,103.68 -o perimeter.kml"
    )]
    Plan(PlanCmd),
    /// Grid cells: validate a district file and summarise it.
    #[command(after_help = "Examples:\n  gridpatrol grids check missions/wenqu.geojson")]
    Grids {
        #[command(subcommand)]
        op: GridsOp,
    },
    /// Summarise a .tlog, or print its message stream.
    #[command(
        after_help = "Examples:\n  gridpatrol replay flight.tlog\n  gridpatrol replay flight.tlog --messages"
    )]
    Replay {
        file: PathBuf,
        /// Print every message.
        #[arg(long)]
        messages: bool,
    },
    /// Run the simulated PX4 fleet (same as the gridpatrol-sim binary).
    #[command(
        after_help = "Examples:\n  gridpatrol sim --vehicles 3 --speed 10 --world sim/worlds/wenqu.json"
    )]
    Sim(gridpatrol_sim::cli::RunArgs),
    /// Patrol part of the sample district with the simulated fleet: plan, fly, find the
    /// issues in the photos, file them as grid events, and print the summary.
    #[command(after_help = "Examples:\n  gridpatrol demo")]
    Demo(DemoArgs),
    /// Fly a patrol: plan (or load a .plan), preflight, upload and read back, arm, fly,
    /// and file the issues found as grid events.
    #[command(
        after_help = "Examples:\n  gridpatrol fly --connect udpin:0.0.0.0:14550 missions/wenqu.geojson --cells WQ-24 --alt 60 --vehicles 2 --tlog flight.tlog"
    )]
    Fly(Box<FlyArgs>),
    /// Run the service: scheduled patrols flown unattended, the capture → event pipeline,
    /// and the HTTP API (`--demo`: on the simulator and the sample district).
    #[command(after_help = "Examples:\n  gridpatrol serve --demo --listen 127.0.0.1:8080")]
    Serve(Box<ServeArgs>),
    /// API tokens for `serve`: create (with a role), list, revoke.
    #[command(
        after_help = "Examples:\n  gridpatrol token create --role operator --holder 飞手\n  gridpatrol token list"
    )]
    Token {
        /// Data directory (gridpatrol.db).
        #[arg(long, default_value = "data", global = true)]
        data: PathBuf,
        /// The database: sqlite:PATH or postgres://… (default: the SQLite one in --data).
        #[arg(long, global = true)]
        db: Option<gridpatrol::store::DbSpec>,
        #[command(subcommand)]
        op: TokenOp,
    },
    /// Scheduled patrols: check their definitions and show when they fire.
    #[command(
        after_help = "Examples:\n  gridpatrol patrols check missions/patrols --grids missions/wenqu.geojson"
    )]
    Patrols {
        #[command(subcommand)]
        op: PatrolsOp,
    },
    /// Raise an alert with the running service: the nearest ready drone flies to the
    /// point, orbits it with the camera on it, and the events its photos show are linked.
    #[command(
        after_help = "Examples:\n  gridpatrol alert 36.5591,103.6856 --category fire_smoke --source hotline:12345-0001 --token $TOKEN --wait"
    )]
    Alert(AlertArgs),
    /// Grid events: list, show, work them through the closed loop, export, statistics.
    #[command(
        after_help = "Examples:\n  gridpatrol events list --cell WQ-24\n  gridpatrol events sign 1 --by 赵艳\n  gridpatrol events stats"
    )]
    Events {
        /// Data directory (gridpatrol.db, images/).
        #[arg(long, default_value = "data", global = true)]
        data: PathBuf,
        /// The database: sqlite:PATH or postgres://… (default: the SQLite one in --data).
        #[arg(long, global = true)]
        db: Option<gridpatrol::store::DbSpec>,
        #[command(subcommand)]
        op: EventsOp,
    },
}

mod cli;
use cli::{
    alert, demo, events_cmd, fly, grids_cmd, mission_cmd, patrols_cmd, plan_cmd, replay_cmd, serve,
    status, token_cmd, AlertArgs, Conn, DemoArgs, EventsOp, FlyArgs, GridsOp, MissionOp, PatrolsOp,
    PlanCmd, ServeArgs, TokenOp,
};

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
        Cmd::Status { conn, watch } => status(conn, watch).await?,
        Cmd::Mission { op } => mission_cmd(op).await?,
        Cmd::Plan(args) => plan_cmd(args)?,
        Cmd::Grids { op } => grids_cmd(op)?,
        Cmd::Replay { file, messages } => replay_cmd(file, messages)?,
        Cmd::Sim(args) => gridpatrol_sim::cli::run(args).await?,
        Cmd::Demo(args) => demo(args).await?,
        Cmd::Fly(args) => fly(*args).await?,
        Cmd::Alert(args) => alert(args).await?,
        Cmd::Events { data, db, op } => events_cmd(&data, db, op)?,
        Cmd::Patrols { op } => patrols_cmd(op)?,
        Cmd::Serve(args) => serve(*args).await?,
        Cmd::Token { data, db, op } => token_cmd(&data, db, op)?,
    }
    Ok(())
}
