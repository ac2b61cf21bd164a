//! `gridpatrol serve`, measured over HTTP as its clients see it: the API's latency at a
//! steady 500 requests/s while 20 simulated vehicles fly, and the live stream fanned out
//! to 100 subscribers. Each request is timed from the instant it was due (not from when a
//! client got round to it), so a stall shows in the figures instead of hiding.
//! `cargo bench --bench api`; the figures are in the README.

#[path = "../tests/common/serve.rs"]
#[allow(dead_code)]
mod serve;

use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const VEHICLES: usize = 20;
const RATE: u64 = 500;
const LOAD_S: u64 = 20;
const SUBSCRIBERS: usize = 100;

const PATROL: &str = r#"
name = "loop"
cells = ["WQ-01", "WQ-02", "WQ-03"]
pattern = "perimeter"
alt_m = 45.0
speed_m_s = 8.0
[ready]
min_battery_pct = 30
"#;

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    )
}

fn armed(base: &str, token: &str) -> usize {
    let (_, v) = serve::call_as("GET", &format!("{base}/api/v1/vehicles"), Some(token));
    v["vehicles"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|t| t["armed"] == true).count())
}

/// 500 requests/s for LOAD_S seconds over a mix of reads; latencies in ms and errors.
fn load(base: &str, token: &str, run: i64) -> (Vec<f64>, usize) {
    let paths = [
        "/api/v1/vehicles".to_string(),
        "/api/v1/runs?limit=50".to_string(),
        format!("/api/v1/runs/{run}"),
        "/api/v1/events".to_string(),
        "/api/v1/stats".to_string(),
        "/api/v1/patrols".to_string(),
    ];
    let total = RATE * LOAD_S;
    let threads = 32u64;
    let start = Instant::now() + Duration::from_millis(200);
    let out = Arc::new(Mutex::new((Vec::with_capacity(total as usize), 0usize)));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (base, token, paths, out) = (
                base.to_string(),
                token.to_string(),
                paths.clone(),
                out.clone(),
            );
            std::thread::spawn(move || {
                let a = agent();
                let mut mine = Vec::new();
                let mut errors = 0;
                for k in (t..total).step_by(threads as usize) {
                    let due = start + Duration::from_micros(k * 1_000_000 / RATE);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let url = format!("{base}{}", paths[k as usize % paths.len()]);
                    let ok = a
                        .get(&url)
                        .header("Authorization", format!("Bearer {token}"))
                        .call()
                        .map(|mut r| r.status() == 200 && r.body_mut().read_to_vec().is_ok())
                        .unwrap_or(false);
                    mine.push(due.elapsed().as_secs_f64() * 1000.0);
                    errors += usize::from(!ok);
                }
                let mut o = out.lock().unwrap();
                o.0.extend(mine);
                o.1 += errors;
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let o = out.lock().unwrap();
    (o.0.clone(), o.1)
}

/// One subscriber: (run change id → ms from the change's time to its arrival here).
fn subscribe(base: String, token: String, until: Instant, got: Arc<Mutex<Vec<(u64, f64)>>>) {
    let a = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(until - Instant::now() + Duration::from_secs(5)))
            .build(),
    );
    let Ok(mut resp) = a
        .get(format!("{base}/api/v1/stream"))
        .header("Authorization", format!("Bearer {token}"))
        .call()
    else {
        return;
    };
    let reader = std::io::BufReader::new(resp.body_mut().as_reader());
    // An event is its field lines, in any order, ended by a blank line.
    let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
    for line in reader.lines() {
        let Ok(line) = line else { break };
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.to_string();
        } else if let Some(v) = line.strip_prefix("event: ") {
            kind = v.to_string();
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = v.to_string();
        } else if line.is_empty() {
            if kind == "run" {
                let v: Value = serde_json::from_str(&data).unwrap_or_default();
                let now_us = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros() as i64);
                if let (Ok(i), Some(at)) = (id.parse::<u64>(), v["at_us"].as_i64()) {
                    got.lock().unwrap().push((i, (now_us - at) as f64 / 1000.0));
                }
            }
            (id, kind, data) = (String::new(), String::new(), String::new());
        }
        if Instant::now() > until {
            break;
        }
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let pdir = serve::patrols(dir.path(), &[("loop", PATROL)]);
    let token = serve::token(&data, "admin", "bench", "");
    let n = VEHICLES.to_string();
    let s = serve::spawn(&data, &pdir, &["--demo", "--vehicles", &n, "--speed", "5"]);
    let base = s.base.clone();
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = serve::call_as("GET", &format!("{base}/api/v1/vehicles"), Some(&token));
        if v["vehicles"].as_array().map_or(0, |a| a.len()) >= VEHICLES {
            break;
        }
        assert!(Instant::now() < end, "the simulator's vehicles never came");
        std::thread::sleep(Duration::from_millis(200));
    }
    // One run per vehicle: all 20 in the air.
    let mut last_run = 0;
    for _ in 0..VEHICLES {
        let (code, run) = serve::call_as(
            "POST",
            &format!("{base}/api/v1/patrols/loop/runs"),
            Some(&token),
        );
        assert_eq!(code, 201, "{run}");
        last_run = run["id"].as_i64().unwrap_or(0);
    }
    let end = Instant::now() + Duration::from_secs(120);
    while armed(&base, &token) < VEHICLES {
        assert!(
            Instant::now() < end,
            "only {} vehicles armed",
            armed(&base, &token)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (mut ms, errors) = load(&base, &token, last_run);
    let flying = armed(&base, &token);
    ms.sort_by(f64::total_cmp);
    println!(
        "api: {} requests at {RATE}/s over {LOAD_S} s with {flying} of {VEHICLES} vehicles still flying: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {errors} errors",
        ms.len(),
        quantile(&ms, 0.5),
        quantile(&ms, 0.9),
        quantile(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN),
    );
    // The stream to 100 subscribers, while runs change state.
    let until = Instant::now() + Duration::from_secs(15);
    let subs: Vec<_> = (0..SUBSCRIBERS)
        .map(|_| {
            let got = Arc::new(Mutex::new(Vec::new()));
            let h = {
                let (b, t, g) = (base.clone(), token.clone(), got.clone());
                std::thread::spawn(move || subscribe(b, t, until, g))
            };
            (h, got)
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..10 {
        let _ = serve::call_as(
            "POST",
            &format!("{base}/api/v1/patrols/loop/runs"),
            Some(&token),
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut per_sub = Vec::new();
    let mut all = Vec::new();
    for (h, got) in subs {
        let _ = h.join();
        let g = got.lock().unwrap();
        per_sub.push(g.len());
        all.extend(g.iter().map(|(_, ms)| *ms));
    }
    all.sort_by(f64::total_cmp);
    per_sub.sort_unstable();
    println!(
        "stream: {SUBSCRIBERS} subscribers, {} to {} run changes each (p50 {:.0} ms, p99 {:.0} ms from the change to its arrival; the stream reads the store every 500 ms)",
        per_sub.first().copied().unwrap_or(0),
        per_sub.last().copied().unwrap_or(0),
        quantile(&all, 0.5),
        quantile(&all, 0.99),
    );
    drop(s);
}
