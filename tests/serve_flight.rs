//! `gridpatrol serve` flying the simulator, which runs here in the test (so it outlives a
//! killed `serve`): a run cut by a low battery resumes at its breakpoint and covers the
//! whole cell; `serve` killed with SIGKILL mid-run and started again re-attaches, flies
//! nothing twice and loses no photo; two runs on one vehicle are queued, never flown at
//! once.

mod common;

use std::path::Path;
use std::time::Duration;

use common::px4::free_udp_port;
use common::serve::{
    call_as, on_sim, patrols, start_run, states, token, wait_final, without_transfer_retries,
    wq25_sim, Serve, AROUND_25, COVER_25,
};
use gridpatrol_sim::{Faults, Sim, SimConfig};
use serde_json::Value;

/// The simulator (one vehicle per fault given) sending its GCS link to `port`, with
/// issues in WQ-25, its photos in `dir/sim-images`, and a fast dock charger.
async fn sim(port: u16, dir: &Path, faults: Vec<Faults>) -> Sim {
    windy_sim(port, dir, faults, (0.0, 0.0)).await
}

/// As [`sim`], with the wind blowing (north, east m/s): the simulated vehicles then
/// stream their wind estimate (WIND_COV) when asked, as PX4 does while it estimates one.
async fn windy_sim(port: u16, dir: &Path, faults: Vec<Faults>, wind: (f64, f64)) -> Sim {
    let config = SimConfig {
        vehicles: faults.len(),
        speed: 40.0,
        // A quick swap: the resumed sortie need not wait half an hour of charging.
        dock_charge_pct_per_min: 60.0,
        faults,
        wind,
        ..Default::default()
    };
    wq25_sim(port, dir, 20, config).await
}

fn serve_for(port: u16, data: &Path, pdir: &Path) -> Serve {
    on_sim(port, data, pdir, &[])
}

/// The states of a run flown, paused once and resumed to the end.
const RESUMED: [&str; 7] = [
    "waiting",
    "preparing",
    "executing",
    "paused",
    "preparing",
    "executing",
    "success",
];

/// The run's captures (index, lat, lon), from the store.
fn captures(data: &Path, run_key: &str) -> Vec<(i64, f64, f64)> {
    let db = rusqlite::Connection::open(data.join("gridpatrol.db")).unwrap();
    let mut st = db
        .prepare("SELECT idx, lat, lon FROM captures WHERE run = ?1 ORDER BY idx")
        .unwrap();
    st.query_map([run_key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The run's sorties as planned (missions as JSON items), from the store.
fn planned(data: &Path, run_key: &str) -> Vec<Value> {
    let db = rusqlite::Connection::open(data.join("gridpatrol.db")).unwrap();
    let json: String = db
        .query_row(
            "SELECT jobs FROM run_plans WHERE run = ?1",
            [run_key],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&json).unwrap()
}

fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    let dy = (a.0 - b.0) * 111_320.0;
    let dx = (a.1 - b.1) * 111_320.0 * a.0.to_radians().cos();
    dx.hypot(dy)
}

/// Points every 5 m along the legs the camera was meant to photograph (after a
/// DO_SET_CAM_TRIGG_DIST with a positive distance), with that distance (m).
fn photo_legs(jobs: &[Value]) -> Vec<((f64, f64), f64)> {
    let mut out = Vec::new();
    for job in jobs {
        let mut trig = 0.0;
        let mut last: Option<(f64, f64)> = None;
        for it in job["mission"].as_array().unwrap() {
            let cmd = it["command"].as_u64().unwrap();
            if cmd == 206 {
                trig = it["params"][0].as_f64().unwrap();
                continue;
            }
            if cmd != 16 {
                continue;
            }
            // Items are stored as QGroundControl writes them: params 5 and 6 in degrees.
            let p = (
                it["params"][4].as_f64().unwrap(),
                it["params"][5].as_f64().unwrap(),
            );
            if let (Some(a), true) = (last, trig > 0.0) {
                let n = (metres(a, p) / 5.0).ceil().max(1.0) as usize;
                for k in 0..=n {
                    let f = k as f64 / n as f64;
                    out.push(((a.0 + (p.0 - a.0) * f, a.1 + (p.1 - a.1) * f), trig));
                }
            }
            last = Some(p);
        }
    }
    out
}

/// The points of `legs` with no photo of `caps` within the trigger distance (plus 5 m of
/// GPS error): where the cell was not covered.
fn gaps<'a>(legs: &'a [((f64, f64), f64)], caps: &[(i64, f64, f64)]) -> Vec<&'a ((f64, f64), f64)> {
    legs.iter()
        .filter(|(p, trig)| {
            !caps
                .iter()
                .any(|(_, lat, lon)| metres(*p, (*lat, *lon)) <= trig + 5.0)
        })
        .collect()
}

/// About how many photos one pass over `legs` takes (one per trigger distance; the legs'
/// points are 5 m apart).
fn one_pass(legs: &[((f64, f64), f64)]) -> f64 {
    legs.iter().map(|(_, trig)| 5.0 / trig).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_by_a_low_battery_resumes_at_its_breakpoint_and_covers_the_cell() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    // The battery sags below BAT_LOW_THR after 500 s in the air, halfway through the
    // patrol: PX4 returns and lands.
    let _sim = sim(
        port,
        dir.path(),
        vec![Faults {
            battery_low_after_airborne_s: Some(500.0),
            ..Default::default()
        }],
    )
    .await;
    let data = dir.path().join("data");
    let op = token(&data, "operator", "飞手", "");
    let pdir = patrols(dir.path(), &[("cover-25", COVER_25)]);
    let s = serve_for(port, &data, &pdir);
    let base = s.base.clone();
    let done = tokio::task::spawn_blocking(move || {
        let run = start_run(&base, &op, "cover-25");
        wait_final(
            &base,
            &op,
            run["id"].as_i64().unwrap(),
            Duration::from_secs(600),
        )
    })
    .await
    .unwrap();
    assert_eq!(done["run"]["state"], "success", "{done}");
    let done = without_transfer_retries(&done);
    let st = states(&done);
    assert_eq!(st, RESUMED, "{done}");
    let paused = &done["changes"][3]["reason"];
    assert!(
        paused
            .as_str()
            .unwrap()
            .starts_with("cut short: landed before"),
        "{paused}"
    );
    // It resumed where it stopped: the breakpoint is past the takeoff.
    let key = format!("cover-25-{}", done["run"]["id"]);
    let db = rusqlite::Connection::open(data.join("gridpatrol.db")).unwrap();
    let reached: Option<i64> = db
        .query_row(
            "SELECT reached FROM run_breakpoints WHERE run = ?1",
            [&key],
            |r| r.get(0),
        )
        .unwrap();
    assert!(reached.is_some_and(|r| r > 2), "{reached:?}");
    // And the cell is covered: every point of every photo leg has a photo within the
    // trigger distance (plus GPS error).
    let caps = captures(&data, &key);
    let legs = photo_legs(&planned(&data, &key));
    assert!(!legs.is_empty());
    let gaps = gaps(&legs, &caps);
    assert!(
        gaps.is_empty(),
        "{} of {} leg points without a photo near, e.g. {:?}; {} photos",
        gaps.len(),
        legs.len(),
        gaps.first(),
        caps.len()
    );
    // Resumed, not started over: about one photo per trigger distance of leg (and the cut
    // leg again, and some on the way home), not all the photos before the cut again.
    let one_pass = one_pass(&legs);
    assert!(
        (caps.len() as f64) < one_pass * 1.4,
        "{} photos for a pass of about {one_pass:.0}: flown again from the start?",
        caps.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_mid_run_reattaches_flies_nothing_twice_and_loses_no_photo() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let _sim = sim(port, dir.path(), vec![Faults::default()]).await;
    let data = dir.path().join("data");
    let op = token(&data, "operator", "飞手", "");
    let pdir = patrols(dir.path(), &[("cover-25", COVER_25)]);
    let first = serve_for(port, &data, &pdir);
    let base = first.base.clone();
    let (op2, data2) = (op.clone(), data.clone());
    let id = tokio::task::spawn_blocking(move || {
        let run = start_run(&base, &op2, "cover-25");
        let id = run["id"].as_i64().unwrap();
        // Wait until it flies and has taken some photos.
        let key = format!("cover-25-{id}");
        let end = std::time::Instant::now() + Duration::from_secs(120);
        while captures(&data2, &key).len() < 5 {
            assert!(std::time::Instant::now() < end, "no photos came");
            std::thread::sleep(Duration::from_millis(200));
        }
        id
    })
    .await
    .unwrap();
    // SIGKILL: no chance to tidy up.
    drop(first);
    let key = format!("cover-25-{id}");
    let recorded = captures(&data, &key).len();
    let restarted = std::time::Instant::now();
    let again = serve_for(port, &data, &pdir);
    // Recovery: photos are recorded again.
    let (data2, key2) = (data.clone(), key.clone());
    let recovery = tokio::task::spawn_blocking(move || {
        while captures(&data2, &key2).len() <= recorded {
            if restarted.elapsed() > Duration::from_secs(120) {
                let keep = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                    .join("serve-killed-no-photos.log");
                let _ = std::fs::copy(data2.join("serve.log"), &keep);
                panic!(
                    "no photos after the restart; serve's log: {}",
                    keep.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        restarted.elapsed()
    })
    .await
    .unwrap();
    let base = again.base.clone();
    let done =
        tokio::task::spawn_blocking(move || wait_final(&base, &op, id, Duration::from_secs(600)))
            .await
            .unwrap();
    assert_eq!(done["run"]["state"], "success", "{done}");
    let done = without_transfer_retries(&done);
    let st = states(&done);
    if st.len() != 7 {
        let log = std::fs::read_to_string(data.join("serve.log")).unwrap_or_default();
        let keep = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-killed.log");
        let _ = std::fs::write(&keep, &log);
    }
    assert_eq!(st, RESUMED, "{done}");
    assert_eq!(
        done["changes"][3]["reason"], "the service restarted: re-attaching",
        "{done}"
    );
    let caps = captures(&data, &key);
    // No photo lost: every image the camera took is on record, each index once.
    let mut taken: Vec<i64> = std::fs::read_dir(dir.path().join("sim-images").join("1"))
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "jpg").then_some(())?;
            p.file_stem()?.to_str()?.parse().ok()
        })
        .collect();
    taken.sort();
    let idx: Vec<i64> = caps.iter().map(|c| c.0).collect();
    let lost: Vec<&i64> = taken.iter().filter(|t| !idx.contains(t)).collect();
    assert!(
        lost.is_empty(),
        "photos taken but not on record: {lost:?} of {}",
        taken.len()
    );
    assert_eq!(idx.len(), taken.len());
    assert_eq!(idx, (idx[0]..idx[0] + idx.len() as i64).collect::<Vec<_>>());
    // Nothing flown twice: no place photographed in two passes (adjacent lines are tens
    // of metres apart; a re-flown line would put photos within a few metres of others
    // taken long before).
    for (i, a) in caps.iter().enumerate() {
        for b in &caps[i + 1..] {
            if b.0 - a.0 > 3 {
                assert!(
                    metres((a.1, a.2), (b.1, b.2)) > 3.0,
                    "photos {} and {} at the same spot: flown twice",
                    a.0,
                    b.0
                );
            }
        }
    }
    // The sortie finished once.
    let db = rusqlite::Connection::open(data.join("gridpatrol.db")).unwrap();
    let sorties: i64 = db
        .query_row(
            "SELECT count(*) FROM run_sorties WHERE run = ?1",
            [&key],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sorties as usize, planned(&data, &key).len());
    common::faults::record(
        "serve_killed_mid_run_reattaches_flies_nothing_twice_and_loses_no_photo",
        "SIGKILL of `serve` mid-run (simulator), service restarted",
        &format!("0 of {} photos; nothing flown twice", taken.len()),
        &format!(
            "{} from the restart until photos were recorded again (run re-attached)",
            common::faults::secs(recovery)
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_on_one_vehicle_are_queued_never_flown_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let _sim = sim(port, dir.path(), vec![Faults::default()]).await;
    let data = dir.path().join("data");
    let op = token(&data, "operator", "飞手", "");
    let pdir = patrols(
        dir.path(),
        &[("around-25", AROUND_25), ("cover-25", COVER_25)],
    );
    let s = serve_for(port, &data, &pdir);
    let base = s.base.clone();
    let runs = tokio::task::spawn_blocking(move || {
        let ids: Vec<i64> = ["around-25", "cover-25"]
            .iter()
            .map(|p| {
                let run = start_run(&base, &op, p);
                run["id"].as_i64().unwrap()
            })
            .collect();
        ids.iter()
            .map(|id| wait_final(&base, &op, *id, Duration::from_secs(600)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    // Each flew, one after the other: the second was prepared only once the first ended.
    let span = |v: &Value| {
        let changes = v["changes"].as_array().unwrap();
        let at = |to: &str| {
            changes
                .iter()
                .find(|c| c["to"] == to)
                .and_then(|c| c["at_us"].as_i64())
                .unwrap_or_else(|| panic!("no {to} in {v}"))
        };
        (at("preparing"), at("success"))
    };
    for r in &runs {
        assert_eq!(r["run"]["state"], "success", "{r}");
        assert_eq!(r["run"]["sysid"], 1);
    }
    let (a, b) = (span(&runs[0]), span(&runs[1]));
    assert!(
        b.0 >= a.1 || a.0 >= b.1,
        "flown at once on one vehicle: {a:?} and {b:?}"
    );
}

/// Polls run `id` until `ok` holds of it (at most `limit`); the run with its changes.
fn wait_run(
    base: &str,
    token: &str,
    id: i64,
    limit: Duration,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let end = std::time::Instant::now() + limit;
    loop {
        let (_, v) = call_as("GET", &format!("{base}/api/v1/runs/{id}"), Some(token));
        if ok(&v) {
            return v;
        }
        assert!(
            std::time::Instant::now() < end,
            "run {id} never got there: {v}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// GET `url` with `token`: the status and the raw body.
fn get_bytes(url: &str, token: &str) -> (u16, Vec<u8>) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let mut r = agent
        .get(url)
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    let code = r.status().as_u16();
    (code, r.body_mut().read_to_vec().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_pauses_a_run_in_the_air_and_resumes_it_to_full_coverage() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let _sim = sim(port, dir.path(), vec![Faults::default()]).await;
    let data = dir.path().join("data");
    let op = token(&data, "operator", "飞手", "");
    let pdir = patrols(dir.path(), &[("cover-25", COVER_25)]);
    let s = serve_for(port, &data, &pdir);
    let base = s.base.clone();
    let data2 = data.clone();
    let done = tokio::task::spawn_blocking(move || {
        let run = start_run(&base, &op, "cover-25");
        let id = run["id"].as_i64().unwrap();
        let key = format!("cover-25-{id}");
        // In the air with some photos taken: pause.
        let long = Duration::from_secs(300);
        wait_run(&base, &op, id, long, |v| {
            v["run"]["state"] == "executing" && captures(&data2, &key).len() >= 10
        });
        let (code, v) = call_as("POST", &format!("{base}/api/v1/runs/{id}/pause"), Some(&op));
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["held_by"], "飞手", "{v}");
        let paused = wait_run(&base, &op, id, long, |v| v["run"]["state"] == "paused");
        assert!(
            paused["run"]["reason"]
                .as_str()
                .unwrap()
                .starts_with("paused by 飞手: returned and landed"),
            "{paused}"
        );
        let (_, fleet) = call_as("GET", &format!("{base}/api/v1/vehicles"), Some(&op));
        assert_eq!(
            fleet["vehicles"][0]["armed"], false,
            "down in the dock: {fleet}"
        );
        // Held: the scheduler, ticking every second, leaves it while the vehicle is ready.
        std::thread::sleep(Duration::from_secs(3));
        let held = wait_run(&base, &op, id, long, |_| true);
        assert_eq!(held["run"]["state"], "paused", "{held}");
        assert_eq!(
            held["changes"].as_array().unwrap().len(),
            paused["changes"].as_array().unwrap().len()
        );
        let (code, v) = call_as(
            "POST",
            &format!("{base}/api/v1/runs/{id}/resume"),
            Some(&op),
        );
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["held_by"], Value::Null);
        let (code, v) = call_as(
            "POST",
            &format!("{base}/api/v1/runs/{id}/resume"),
            Some(&op),
        );
        assert_eq!((code, v["code"].as_str()), (409, Some("not_paused")), "{v}");
        let done = wait_final(&base, &op, id, Duration::from_secs(600));
        // Media and track, per run.
        let (code, media) = call_as("GET", &format!("{base}/api/v1/runs/{id}/media"), Some(&op));
        assert_eq!(code, 200);
        let (code, track) = call_as("GET", &format!("{base}/api/v1/runs/{id}/track"), Some(&op));
        assert_eq!(code, 200);
        let fetched = media["photos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["image_sha"].is_string())
            .map(|p| get_bytes(&format!("{base}/api/v1/images/{}", p["capture_id"]), &op));
        (done, media, track, fetched)
    })
    .await
    .unwrap();
    let (done, media, track, fetched) = done;
    assert_eq!(done["run"]["state"], "success", "{done}");
    assert_eq!(
        states(&done),
        [
            "waiting",
            "preparing",
            "executing",
            "executing", // the pause asked
            "paused",
            "paused", // resumed
            "preparing",
            "executing",
            "success"
        ],
        "{done}"
    );
    // Resumed where it stopped, and the cell is covered.
    let key = format!("cover-25-{}", done["run"]["id"]);
    let caps = captures(&data, &key);
    let legs = photo_legs(&planned(&data, &key));
    let gaps = gaps(&legs, &caps).len();
    assert_eq!(
        gaps,
        0,
        "{gaps} of {} leg points without a photo near",
        legs.len()
    );
    let one_pass = one_pass(&legs);
    assert!(
        (caps.len() as f64) < one_pass * 1.4,
        "{} photos: started over?",
        caps.len()
    );
    assert_eq!(
        media["photos"].as_array().unwrap().len(),
        caps.len(),
        "{media}"
    );
    let points = track["points"].as_array().unwrap();
    assert!(points.len() >= 20, "{track}");
    assert!(points.iter().all(|p| p["sysid"] == 1));
    let (code, jpeg) = fetched.expect("a photo with its image fetched");
    assert_eq!(code, 200);
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_weather_source_the_vehicles_own_wind_estimate_decides() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    // 9 m/s from the south and 6 from the west: 10.8 m/s.
    let _sim = windy_sim(port, dir.path(), vec![Faults::default()], (9.0, 6.0)).await;
    let data = dir.path().join("data");
    let op = token(&data, "operator", "飞手", "");
    let def = "name = \"calm-only\"\ncells = [\"WQ-25\"]\n[ready]\nmax_wind_m_s = 10.0\n";
    let pdir = patrols(dir.path(), &[("calm-only", def)]);
    let s = serve_for(port, &data, &pdir);
    let base = s.base.clone();
    let (done, fleet) = tokio::task::spawn_blocking(move || {
        let run = start_run(&base, &op, "calm-only");
        let done = wait_final(
            &base,
            &op,
            run["id"].as_i64().unwrap(),
            Duration::from_secs(60),
        );
        let (_, fleet) = call_as("GET", &format!("{base}/api/v1/vehicles"), Some(&op));
        (done, fleet)
    })
    .await
    .unwrap();
    assert_eq!(done["run"]["state"], "skipped", "{done}");
    assert_eq!(
        done["run"]["reason"], "skipped: vehicle 1: wind 10.8 m/s > 10 (its own estimate)",
        "{done}"
    );
    let wind = &fleet["vehicles"][0]["wind"];
    // Blowing towards the north-east, so from the south-west: 180 + atan(6/9) = 213.7°.
    assert!(
        (wind["from_deg"].as_f64().unwrap() - 213.7).abs() < 0.5,
        "{wind}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_on_stop_return_brings_the_vehicle_home_and_the_run_resumes_after() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let _sim = sim(port, dir.path(), vec![Faults::default()]).await;
    let data = dir.path().join("data");
    let op = token(&data, "operator", "飞手", "");
    let pdir = patrols(dir.path(), &[("cover-25", COVER_25)]);
    let mut s = on_sim(port, &data, &pdir, &["--on-stop", "return"]);
    let base = s.base.clone();
    let (op2, data2) = (op.clone(), data.clone());
    let id = tokio::task::spawn_blocking(move || {
        let run = start_run(&base, &op2, "cover-25");
        let id = run["id"].as_i64().unwrap();
        let key = format!("cover-25-{id}");
        wait_run(&base, &op2, id, Duration::from_secs(300), |v| {
            v["run"]["state"] == "executing" && captures(&data2, &key).len() >= 10
        });
        id
    })
    .await
    .unwrap();
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(s.child.id() as i32, libc::SIGTERM);
    }
    let status = tokio::task::spawn_blocking(move || {
        let end = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(st) = s.child.try_wait().unwrap() {
                break st;
            }
            assert!(std::time::Instant::now() < end, "serve did not stop");
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
    // Down before serve left: the run paused at its breakpoint, not held.
    let db = rusqlite::Connection::open(data.join("gridpatrol.db")).unwrap();
    let (state, reason): (String, String) = db
        .query_row("SELECT state, reason FROM runs WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(state, "paused", "{reason}");
    assert!(
        reason.starts_with("the service stopped: returned and landed"),
        "{reason}"
    );
    drop(db);
    // Back up: it resumes by itself and finishes, the cell covered.
    let s = serve_for(port, &data, &pdir);
    let base = s.base.clone();
    let done =
        tokio::task::spawn_blocking(move || wait_final(&base, &op, id, Duration::from_secs(600)))
            .await
            .unwrap();
    assert_eq!(done["run"]["state"], "success", "{done}");
    let key = format!("cover-25-{id}");
    let caps = captures(&data, &key);
    let legs = photo_legs(&planned(&data, &key));
    let gaps = gaps(&legs, &caps).len();
    assert_eq!(
        gaps,
        0,
        "{gaps} of {} leg points without a photo near",
        legs.len()
    );
}
