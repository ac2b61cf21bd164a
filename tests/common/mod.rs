//! Shared set-up: a hub listening on 127.0.0.1:0 and a simulated fleet sending to it.
#![allow(dead_code)]

use std::time::Duration;

use gridpatrol::link::{Hub, HubConfig, LinkConfig, SigningKey};
use gridpatrol::vehicle::{Fleet, FleetConfig, Vehicle};
use gridpatrol_sim::{Faults, Sim, SimConfig};

pub struct Rig {
    pub fleet: Fleet,
    pub sim: Sim,
}

/// Fast timeouts so lossy tests finish in seconds; the protocol logic is the same.
pub fn fast_fleet() -> FleetConfig {
    FleetConfig {
        link_timeout: Duration::from_millis(500),
        command_timeout: Duration::from_millis(150),
        command_retries: 5,
        mission_timeout: Duration::from_millis(150),
        mission_retries: 20,
        mission_busy_for: Duration::from_secs(8),
        param_timeout: Duration::from_millis(200),
        param_retries: 5,
    }
}

pub async fn rig(
    sim: SimConfig,
    fleet_cfg: FleetConfig,
    hub_cfg: HubConfig,
    key: Option<SigningKey>,
) -> Rig {
    // The GCS heartbeat is 1 Hz of the vehicle's own clock: the fleet measures it.
    let hub_cfg = HubConfig {
        heartbeat: Some(Duration::from_secs(1)),
        ..hub_cfg
    };
    let hub = Hub::new(hub_cfg).expect("hub");
    let link = hub
        .add_link(LinkConfig {
            addr: "udpin:127.0.0.1:0".parse().unwrap(),
            signing: key,
        })
        .await
        .expect("bind");
    let gcs = link.local_addr.expect("local addr");
    let sim = Sim::start(SimConfig {
        gcs,
        base_port: None,
        ..sim
    })
    .await
    .expect("sim");
    Rig {
        fleet: Fleet::new(hub, fleet_cfg),
        sim,
    }
}

pub async fn simple(sim: SimConfig) -> Rig {
    rig(sim, fast_fleet(), HubConfig::default(), None).await
}

/// One simulated vehicle with these link faults, already heard.
pub async fn with_faults(faults: Faults) -> (Rig, Vehicle) {
    let r = simple(SimConfig {
        faults: vec![faults],
        ..Default::default()
    })
    .await;
    let v = r
        .fleet
        .wait_vehicle(Some(1), Duration::from_secs(5))
        .await
        .expect("vehicle heard");
    (r, v)
}
pub mod faults;
pub mod patrol;
pub mod pg;
pub mod proxy;
pub mod px4;
pub mod serve;

/// Says in one line why a test does nothing here (an outside part is absent). In CI (where
/// `CI` is set) it fails instead: CI must have every part.
pub fn skip(why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") {
        panic!("{why}; CI must have it");
    }
    eprintln!("SKIPPED: {why}");
}

/// A Python interpreter that can import every one of `modules`: `GRIDPATROL_PYTHON` (what
/// `.ci/run` sets up, with its pinned packages) or `python3`. `None`, after one line saying
/// so, where there is none; in CI that fails instead.
pub fn python_with(modules: &[&str]) -> Option<std::path::PathBuf> {
    let python: std::path::PathBuf = std::env::var_os("GRIDPATROL_PYTHON")
        .unwrap_or_else(|| "python3".into())
        .into();
    let imports = format!("import {}", modules.join(", "));
    let ok = std::process::Command::new(&python)
        .args(["-c", &imports])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(python)
    } else {
        skip(&format!(
            "{} cannot `{imports}` (pip install what .ci/run installs, or set GRIDPATROL_PYTHON)",
            python.display()
        ));
        None
    }
}

/// Runs `tests/tools/<script>` with `python` and `args`, with MAVLINK20=1 (pymavlink then
/// speaks MAVLink 2, as PX4 scripts set it). Its stdout when it succeeds; else its stdout
/// and stderr.
pub fn run_tool(
    python: &std::path::Path,
    script: &str,
    args: &[&std::ffi::OsStr],
) -> Result<String, String> {
    let out = std::process::Command::new(python)
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/tools")
                .join(script),
        )
        .args(args)
        .env("MAVLINK20", "1")
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
