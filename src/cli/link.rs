//! The link commands: `status`, `mission upload|download|clear` and `replay`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use gridpatrol::link::{Hub, HubConfig, LinkAddr, LinkConfig, SigningKey};
use gridpatrol::vehicle::{
    Fleet, FleetConfig, LinkState, MissionPlan, MissionType, Telemetry, Vehicle,
};

#[derive(clap::Args, Clone)]
pub struct Conn {
    /// Link address (repeat for several links): udpin:0.0.0.0:14550, udpout:127.0.0.1:14540, tcpin:…, tcpout:…, serial:/dev/ttyUSB0:57600
    #[arg(long = "connect", short = 'c', required = true)]
    pub connect: Vec<String>,
    /// MAVLink 2 signing key file (32 bytes, 64 hex digits, or a passphrase) for every link.
    #[arg(long)]
    pub sign_key: Option<PathBuf>,
    /// Record every frame in and out to this .tlog.
    #[arg(long)]
    pub tlog: Option<PathBuf>,
    /// How long to wait for a vehicle, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub wait: f64,
}

#[derive(Subcommand)]
pub enum MissionOp {
    /// Upload a mission, geofence or rally file (JSON or QGroundControl .plan), then read it
    /// back and compare.
    #[command(
        after_help = "Examples:\n  gridpatrol mission upload --connect udpin:0.0.0.0:14540 missions/box.json"
    )]
    Upload {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        sysid: Option<u8>,
        file: PathBuf,
    },
    /// Download a vehicle's mission, geofence or rally points as JSON.
    #[command(
        after_help = "Examples:\n  gridpatrol mission download --connect udpin:0.0.0.0:14540 box-back.json\n  gridpatrol mission download --connect udpin:0.0.0.0:14550 --sysid 2 --type fence"
    )]
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
    /// Clear a vehicle's mission, geofence or rally points.
    #[command(after_help = "Examples:\n  gridpatrol mission clear --connect udpin:0.0.0.0:14540")]
    Clear {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        sysid: Option<u8>,
        #[arg(long = "type", default_value = "mission")]
        kind: MissionType,
    },
}

pub async fn open(conn: &Conn) -> Result<Fleet> {
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

pub async fn one_vehicle(fleet: &Fleet, sysid: Option<u8>, wait: f64) -> Result<Vehicle> {
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

/// `gridpatrol status`: each vehicle heard and each link's counters, once or every second.
pub async fn status(conn: Conn, watch: bool) -> Result<()> {
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
    Ok(())
}

/// `gridpatrol mission …`: every upload read back and compared before it counts.
pub async fn mission_cmd(op: MissionOp) -> Result<()> {
    match op {
        MissionOp::Upload { conn, sysid, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let plans = gridpatrol::plan::qgc::mission_file(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
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
            let n = items.len();
            let text = serde_json::to_string_pretty(&MissionPlan {
                mission_type: kind,
                items,
            })?;
            match file {
                Some(f) => {
                    std::fs::write(&f, text).with_context(|| format!("writing {}", f.display()))?;
                    println!(
                        "downloaded {n} {kind:?} items from vehicle {} to {}",
                        v.sysid(),
                        f.display()
                    );
                }
                None => println!("{text}"),
            }
        }
        MissionOp::Clear { conn, sysid, kind } => {
            let fleet = open(&conn).await?;
            let v = one_vehicle(&fleet, sysid, conn.wait).await?;
            v.clear(kind).await?;
            println!("cleared the {kind:?} plan of vehicle {}", v.sysid());
        }
    }
    Ok(())
}

/// `gridpatrol replay`: a .tlog summarised, or its messages printed.
pub fn replay_cmd(file: PathBuf, messages: bool) -> Result<()> {
    let data = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let summary = gridpatrol::replay::replay(&data, |t, f, m| {
        if messages {
            println!("{t} {}:{} {m:?}", f.sysid(), f.compid());
        }
    });
    if !messages {
        print!("{summary}");
    }
    Ok(())
}
