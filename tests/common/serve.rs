//! `gridpatrol serve` as a child process, and its HTTP API called as a client would.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `serve`; killed when dropped.
pub struct Serve {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub data: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the gridpatrol binary with `args` and `--data data`; its stdout (it must succeed).
pub fn gridpatrol(data: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gridpatrol"))
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gridpatrol {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `gridpatrol token create` on `data`: the secret it prints once.
pub fn token(data: &Path, role: &str, holder: &str, cells: &str) -> String {
    let mut args = vec!["token", "create", "--role", role, "--holder", holder];
    if !cells.is_empty() {
        args.extend(["--cells", cells]);
    }
    gridpatrol(data, &args).trim().to_string()
}

/// Starts `gridpatrol serve ARGS --patrols patrols --data data --listen 127.0.0.1:0` and
/// waits for the address it prints. Its log goes to `data/serve.log` (appended).
pub fn spawn(data: &Path, patrols: &Path, args: &[&str]) -> Serve {
    spawn_with_env(data, patrols, args, &[])
}

/// As [`spawn`], with `env` (name, value) set for the process.
pub fn spawn_with_env(data: &Path, patrols: &Path, args: &[&str], env: &[(&str, &str)]) -> Serve {
    std::fs::create_dir_all(data).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join("serve.log"))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gridpatrol"))
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .arg("--patrols")
        .arg(patrols)
        .arg("--data")
        .arg(data)
        // GRIDPATROL_SERVE_LOG: a filter for the child's log while debugging a test.
        .env(
            "RUST_LOG",
            std::env::var("GRIDPATROL_SERVE_LOG").unwrap_or_else(|_| "info".into()),
        )
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let base = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(a) = line.strip_prefix("api: ") {
            break a.to_string();
        }
    };
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Serve {
        child,
        base,
        data: data.to_path_buf(),
    }
}

/// `serve` over the sample district with the simulator's camera, its fleet on the UDP
/// `port` the simulator sends to, and `extra` arguments.
pub fn on_sim(port: u16, data: &Path, patrols: &Path, extra: &[&str]) -> Serve {
    let connect = format!("udpin:127.0.0.1:{port}");
    let mut args = vec![
        "--connect",
        &connect,
        "--grids",
        DISTRICT,
        "--camera",
        "sim",
    ];
    args.extend(extra);
    spawn(data, patrols, &args)
}

/// Writes each (name, TOML) patrol definition into `dir/patrols`; that folder.
pub fn patrols(dir: &Path, defs: &[(&str, &str)]) -> PathBuf {
    let p = dir.join("patrols");
    std::fs::create_dir_all(&p).unwrap();
    for (name, toml) in defs {
        std::fs::write(p.join(format!("{name}.toml")), toml).unwrap();
    }
    p
}

/// One request, with `token` as the bearer when given: the status and the JSON body.
pub fn call_as(method: &str, url: &str, token: Option<&str>) -> (u16, Value) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    );
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut resp = match (method, &auth) {
        ("POST", Some(a)) => agent.post(url).header("Authorization", a).send_empty(),
        ("POST", None) => agent.post(url).send_empty(),
        (_, Some(a)) => agent.get(url).header("Authorization", a).call(),
        (_, None) => agent.get(url).call(),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// Starts a run of `patrol` now (`POST /api/v1/patrols/{patrol}/runs` as `token`),
/// asserting it was booked; the run.
pub fn start_run(base: &str, token: &str, patrol: &str) -> Value {
    let (code, run) = call_as(
        "POST",
        &format!("{base}/api/v1/patrols/{patrol}/runs"),
        Some(token),
    );
    assert_eq!(code, 201, "{run}");
    run
}

/// Polls run `id` until it is in a final state, or `limit` of wall time passes (a bound
/// far above what the flight needs); the run with its changes.
pub fn wait_final(base: &str, token: &str, id: i64, limit: Duration) -> Value {
    let end = Instant::now() + limit;
    loop {
        let (_, v) = call_as("GET", &format!("{base}/api/v1/runs/{id}"), Some(token));
        let state = v["run"]["state"].as_str().unwrap_or("").to_string();
        let open = ["waiting", "preparing", "executing", "paused"].contains(&state.as_str());
        if !open || Instant::now() > end {
            return v;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The states run `v` (as `wait_final` gives it) went through.
pub fn states(v: &Value) -> Vec<String> {
    v["changes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["to"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Run `v` (as `wait_final` gives it) without the pauses of a mission or geofence
/// transfer that failed and was tried again (each a `paused` and the `preparing` after
/// it): a simulator starved by the tests around it may drop a transfer, which the
/// scheduler retries, and a test of something else should not fail for it. Each one
/// dropped is printed.
pub fn without_transfer_retries(v: &Value) -> Value {
    let mut v = v.clone();
    let Some(changes) = v["changes"].as_array().cloned() else {
        return v;
    };
    let mut kept = Vec::with_capacity(changes.len());
    let mut skip_next_preparing = false;
    for c in changes {
        let reason = c["reason"].as_str().unwrap_or("");
        if c["to"] == "paused"
            && (reason.starts_with("geofence upload:") || reason.starts_with("mission upload:"))
        {
            eprintln!("a transfer failed and was tried again: {reason}");
            skip_next_preparing = true;
            continue;
        }
        if skip_next_preparing && c["to"] == "preparing" {
            skip_next_preparing = false;
            continue;
        }
        skip_next_preparing = false;
        kept.push(c);
    }
    v["changes"] = Value::Array(kept);
    v
}

/// A request with a JSON (or not) body `body` and `token` as the bearer.
pub fn send_body(method: &str, url: &str, token: &str, body: &str) -> (u16, Value) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    );
    let auth = format!("Bearer {token}");
    let req = match method {
        "PUT" => agent.put(url),
        _ => agent.post(url),
    };
    let mut resp = req
        .header("Authorization", &auth)
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A DELETE with `token` as the bearer: the status.
pub fn delete(url: &str, token: &str) -> u16 {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    agent
        .delete(url)
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The sample district, as the serve tests fly it.
pub const DISTRICT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/missions/wenqu.geojson");

/// The perimeter of cell WQ-25 at 40 m with the simulator's camera.
/// A short perimeter patrol of WQ-25, ready with 30 % battery.
pub const SHORT: &str = r#"
name = "short"
cells = ["WQ-25"]
pattern = "perimeter"
alt_m = 40.0
speed_m_s = 10.0
[ready]
min_battery_pct = 30
"#;

pub const AROUND_25: &str = r#"
name = "around-25"
cells = ["WQ-25"]
pattern = "perimeter"
alt_m = 40.0
camera = "sim"
speed_m_s = 10.0
"#;

/// A coverage patrol of cell WQ-25 with the simulator's camera.
pub const COVER_25: &str = r#"
name = "cover-25"
cells = ["WQ-25"]
pattern = "coverage"
alt_m = 60.0
camera = "sim"
overlap = "70/50"
speed_m_s = 10.0
[ready]
min_battery_pct = 30
"#;

/// The simulator in the district's dock sending its GCS link to `port`, with `issues`
/// hidden in WQ-25 and its photos in `dir/sim-images`; `config` sets the rest (vehicles,
/// speed, faults, wind).
pub async fn wq25_sim(
    port: u16,
    dir: &Path,
    issues: usize,
    config: gridpatrol_sim::SimConfig,
) -> gridpatrol_sim::Sim {
    use gridpatrol::grid::{Datum, GridMap};
    let map = GridMap::load(Path::new(DISTRICT), Datum::Wgs84).unwrap();
    let home = map.home.unwrap();
    let ring = map
        .cell("WQ-25")
        .unwrap()
        .polygon
        .exterior()
        .points()
        .map(|p| (p.y(), p.x()))
        .collect();
    let world = gridpatrol_sim::world::World::generate(&[ring], issues, 3, home.alt_m).unwrap();
    gridpatrol_sim::Sim::start(gridpatrol_sim::SimConfig {
        gcs: ([127, 0, 0, 1], port).into(),
        base_port: None,
        home: (home.lat, home.lon, home.alt_m),
        world: Some(std::sync::Arc::new(world)),
        image_dir: Some(dir.join("sim-images")),
        ..config
    })
    .await
    .unwrap()
}
