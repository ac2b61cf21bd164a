//! `gridpatrol serve --demo` as a user runs it: a real process, real HTTP, real SQLite and
//! the simulator. A run started through the API is flown to success by the same code as
//! `fly`, its state changes recorded with reasons; a run whose ready conditions fail is
//! skipped with the reason; bad requests get the one error shape; SIGTERM stops it.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::serve::{call_as, gridpatrol, patrols, spawn, states, token, wait_final, SHORT};
use serde_json::Value;

struct Serve {
    s: common::serve::Serve,
    base: String,
    /// A token per role: viewer, grid_worker (WQ-25), grid_worker_elsewhere (WQ-01),
    /// operator, admin.
    tokens: HashMap<&'static str, String>,
    _dir: tempfile::TempDir,
}

/// Starts `serve --demo` with `defs` (name, TOML) as its only patrols, and a token per role.
fn serve(defs: &[(&str, &str)]) -> Serve {
    let dir = tempfile::tempdir().unwrap();
    let pdir = patrols(dir.path(), defs);
    let data = dir.path().join("data");
    let tokens = [
        ("viewer", "viewer", "值班员", ""),
        ("grid_worker", "grid_worker", "赵艳", "WQ-25"),
        ("grid_worker_elsewhere", "grid_worker", "胡芳", "WQ-01"),
        ("operator", "operator", "飞手", ""),
        ("admin", "admin", "管理员", ""),
    ]
    .into_iter()
    .map(|(k, role, holder, cells)| (k, token(&data, role, holder, cells)))
    .collect();
    let s = spawn(
        &data,
        &pdir,
        &["--demo", "--speed", "40", "--log-format", "json"],
    );
    Serve {
        base: s.base.clone(),
        s,
        tokens,
        _dir: dir,
    }
}

/// A call with the operator's token.
fn call(s: &Serve, method: &str, path: &str) -> (u16, Value) {
    call_as(
        method,
        &format!("{}{path}", s.base),
        Some(&s.tokens["operator"]),
    )
}

const NIGHT_ONLY: &str = r#"
name = "needs-the-sun-below"
cells = ["WQ-25"]
[ready]
min_sun_elevation_deg = 89.9
"#;

#[test]
fn a_run_started_through_the_api_is_flown_to_success_with_its_changes_recorded() {
    let s = serve(&[("short", SHORT), ("night", NIGHT_ONLY)]);
    let (code, v) = call(&s, "GET", "/healthz");
    assert_eq!((code, v), (200, Value::String("ok".into())));
    let (code, v) = call(&s, "GET", "/api/v1/patrols");
    assert_eq!(code, 200);
    assert_eq!(v["patrols"].as_array().map(|a| a.len()), Some(2), "{v}");
    let (code, run) = call(&s, "POST", "/api/v1/patrols/short/runs");
    assert_eq!(code, 201, "{run}");
    assert_eq!(run["state"], "waiting");
    let id = run["id"].as_i64().unwrap();
    let done = wait_final(&s.base, &s.tokens["operator"], id, Duration::from_secs(300));
    assert_eq!(done["run"]["state"], "success", "{done}");
    assert_eq!(
        states(&done),
        ["waiting", "preparing", "executing", "success"],
        "{done}"
    );
    assert!(done["run"]["sysid"].as_u64().is_some());
    // The sun is never 89.9° up over Lanzhou: skipped, with the reason.
    let (_, run) = call(&s, "POST", "/api/v1/patrols/needs-the-sun-below/runs");
    let skipped = wait_final(
        &s.base,
        &s.tokens["operator"],
        run["id"].as_i64().unwrap(),
        Duration::from_secs(30),
    );
    assert_eq!(skipped["run"]["state"], "skipped", "{skipped}");
    let reason = skipped["run"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("skipped: sun ") && reason.contains("< 89.9°"),
        "{reason}"
    );
    let (code, v) = call(&s, "GET", "/api/v1/runs?state=skipped");
    assert_eq!(code, 200);
    assert_eq!(v["runs"].as_array().map(|a| a.len()), Some(1), "{v}");
    assert_eq!(
        done["changes"][0]["reason"], "started by 飞手",
        "the token's holder is on the record"
    );
    // The photos became events in the same store; a grid worker sees their cells' only.
    let events = |who: &str| -> Vec<Value> {
        let (code, v) = call_as(
            "GET",
            &format!("{}/api/v1/events", s.base),
            Some(&s.tokens[who]),
        );
        assert_eq!(code, 200, "{v}");
        v["events"].as_array().cloned().unwrap_or_default()
    };
    let all = events("viewer");
    let in_25: Vec<&Value> = all.iter().filter(|e| e["cell_id"] == "WQ-25").collect();
    assert_eq!(events("grid_worker").len(), in_25.len(), "{all:?}");
    assert!(events("grid_worker_elsewhere")
        .iter()
        .all(|e| e["cell_id"] == "WQ-01"));
    if let Some(e) = in_25.first() {
        let id = e["id"].as_i64().unwrap();
        let (code, _) = call_as(
            "GET",
            &format!("{}/api/v1/events/{id}", s.base),
            Some(&s.tokens["grid_worker_elsewhere"]),
        );
        assert_eq!(code, 403, "another cell's event is not theirs to see");
    }
}

#[test]
fn the_role_matrix_every_endpoint_by_every_role() {
    let s = serve(&[("night", NIGHT_ONLY)]);
    let endpoints: [(&str, &str, &str); 21] = [
        ("GET", "/api/v1/openapi.json", "viewer"),
        ("GET", "/api/v1/grids", "viewer"),
        ("GET", "/api/v1/grids/WQ-25", "viewer"),
        ("POST", "/api/v1/plans/preview", "viewer"),
        ("GET", "/api/v1/stats", "viewer"),
        ("GET", "/api/v1/images/1", "viewer"),
        ("GET", "/api/v1/runs/1/media", "viewer"),
        ("GET", "/api/v1/runs/1/track", "viewer"),
        ("POST", "/api/v1/runs/1/pause", "operator"),
        ("POST", "/api/v1/runs/1/resume", "operator"),
        ("POST", "/api/v1/events", "grid_worker"),
        ("POST", "/api/v1/events/1/actions", "grid_worker"),
        ("GET", "/api/v1/patrols", "viewer"),
        ("GET", "/api/v1/patrols/needs-the-sun-below", "viewer"),
        (
            "POST",
            "/api/v1/patrols/needs-the-sun-below/runs",
            "operator",
        ),
        ("GET", "/api/v1/runs", "viewer"),
        ("GET", "/api/v1/runs/1", "viewer"),
        ("POST", "/api/v1/runs/1/cancel", "operator"),
        ("GET", "/api/v1/vehicles", "viewer"),
        ("GET", "/api/v1/events", "viewer"),
        ("GET", "/api/v1/events/1", "viewer"),
    ];
    // A run to read and cancel.
    let (code, _) = call_as(
        "POST",
        &format!("{}/api/v1/patrols/needs-the-sun-below/runs", s.base),
        Some(&s.tokens["admin"]),
    );
    assert_eq!(code, 201);
    let rank = |r: &str| match r {
        "viewer" => 0,
        "grid_worker" => 1,
        "operator" => 2,
        _ => 3,
    };
    for (method, path, needs) in endpoints {
        let url = format!("{}{path}", s.base);
        let (code, v) = call_as(method, &url, None);
        assert_eq!(code, 401, "{method} {path} without a token: {v}");
        assert_eq!(v["code"], "unauthorized");
        for role in ["viewer", "grid_worker", "operator", "admin"] {
            let (code, v) = call_as(method, &url, Some(&s.tokens[role]));
            if rank(role) >= rank(needs) {
                assert!(
                    ![401, 403].contains(&code),
                    "{role} may {method} {path}: {code} {v}"
                );
            } else {
                assert_eq!(code, 403, "{role} may not {method} {path}: {v}");
                assert_eq!(v["code"], "forbidden");
            }
        }
    }
    // Health needs no token.
    assert_eq!(call_as("GET", &format!("{}/healthz", s.base), None).0, 200);
    assert_eq!(call_as("GET", &format!("{}/readyz", s.base), None).0, 200);
    // Tokens are listed without their secrets; a revoked one opens nothing.
    let data = s.s.data.clone();
    let cli = |args: &[&str]| gridpatrol(&data, args);
    let listed = cli(&["token", "list"]);
    assert_eq!(listed.lines().count(), 5, "{listed}");
    assert!(
        !listed.contains("gp_"),
        "secrets are never listed: {listed}"
    );
    let url = format!("{}/api/v1/runs", s.base);
    assert_eq!(call_as("GET", &url, Some(&s.tokens["viewer"])).0, 200);
    let viewer_id = listed
        .lines()
        .find(|l| l.contains("viewer"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    cli(&["token", "revoke", &viewer_id]);
    assert_eq!(call_as("GET", &url, Some(&s.tokens["viewer"])).0, 401);
    // Bad tokens are refused, then rate-limited (the revoked one above was the first).
    for _ in 0..9 {
        let (code, _) = call_as("GET", &url, Some("gp_0000"));
        assert_eq!(code, 401);
    }
    let (code, v) = call_as("GET", &url, Some(&s.tokens["admin"]));
    assert_eq!(
        code, 429,
        "even a good token waits once the address is throttled: {v}"
    );
    assert_eq!(v["code"], "too_many_bad_tokens");
}

#[test]
fn bad_requests_get_one_error_shape_and_sigterm_stops_the_service() {
    let mut s = serve(&[("short", SHORT)]);
    for (method, path, status, code) in [
        ("GET", "/api/v1/runs?state=flying", 400, "bad_request"),
        ("GET", "/api/v1/runs?colour=red", 400, ""),
        ("GET", "/api/v1/runs/abc", 400, "bad_request"),
        ("GET", "/api/v1/runs/999", 404, "not_found"),
        ("POST", "/api/v1/patrols/nope/runs", 404, "not_found"),
        ("POST", "/api/v1/runs/999/cancel", 404, "not_found"),
        ("GET", "/api/v1/events?state=lost", 400, "bad_request"),
        ("GET", "/api/v1/nothing-here", 404, "not_found"),
    ] {
        let (got, v) = call(&s, method, path);
        assert_eq!(got, status, "{method} {path}: {v}");
        if !code.is_empty() {
            assert_eq!(v["code"], code, "{method} {path}: {v}");
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        }
    }
    // Nothing was written by any of them.
    let (_, v) = call(&s, "GET", "/api/v1/runs");
    assert_eq!(v["runs"].as_array().map(|a| a.len()), Some(0), "{v}");
    #[cfg(unix)]
    {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(s.s.child.id() as i32, libc::SIGTERM);
        }
        let end = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = s.s.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < end, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "{status:?}");
        // Structured logs: one JSON object per line, the stop among them.
        let log = std::fs::read_to_string(s.s.data.join("serve.log")).unwrap();
        let lines: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert!(lines
            .iter()
            .all(|l| l["level"].is_string() && l["target"].is_string()));
        assert!(
            lines.iter().any(|l| l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("stopping"))),
            "{log}"
        );
    }
}

/// Reads Server-Sent Events from `path` (with `token` and an optional Last-Event-ID) until
/// `enough` says so; the (id, event, data) read.
fn sse_until(
    s: &Serve,
    last_id: Option<&str>,
    enough: impl Fn(&[(String, String, Value)]) -> bool,
) -> Vec<(String, String, Value)> {
    use std::io::BufRead;
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    );
    let mut req = agent
        .get(format!("{}/api/v1/stream", s.base))
        .header("Authorization", format!("Bearer {}", s.tokens["operator"]));
    if let Some(id) = last_id {
        req = req.header("Last-Event-ID", id);
    }
    let mut resp = req.call().unwrap();
    let reader = std::io::BufReader::new(resp.body_mut().as_reader());
    // An event is its field lines, in any order, ended by a blank line.
    let (mut out, mut id, mut kind, mut data) =
        (Vec::new(), String::new(), String::new(), None::<Value>);
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.to_string();
        } else if let Some(v) = line.strip_prefix("event: ") {
            kind = v.to_string();
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str(v).unwrap());
        } else if line.is_empty() {
            if let Some(d) = data.take() {
                out.push((std::mem::take(&mut id), std::mem::take(&mut kind), d));
                if enough(&out) {
                    break;
                }
            }
        }
    }
    out
}

#[test]
fn the_live_stream_carries_telemetry_and_run_changes_and_resumes_from_last_event_id() {
    let s = serve(&[("night", NIGHT_ONLY)]);
    assert_eq!(
        call_as("GET", &format!("{}/api/v1/stream", s.base), None).0,
        401
    );
    let base = s.base.clone();
    let op = s.tokens["operator"].clone();
    // Start a run once the stream is open (it is skipped at once: the sun is too low).
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        call_as(
            "POST",
            &format!("{base}/api/v1/patrols/needs-the-sun-below/runs"),
            Some(&op),
        )
    });
    let seen = sse_until(&s, None, |got| {
        got.iter()
            .any(|(_, k, d)| k == "run" && d["to"] == "skipped")
            && got.iter().any(|(_, k, _)| k == "telemetry")
    });
    assert_eq!(starter.join().unwrap().0, 201);
    let runs: Vec<&Value> = seen
        .iter()
        .filter(|(_, k, _)| k == "run")
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(runs[0]["to"], "waiting", "{runs:?}");
    assert_eq!(runs.last().unwrap()["to"], "skipped");
    assert!(runs.last().unwrap()["reason"]
        .as_str()
        .unwrap()
        .starts_with("skipped: sun"));
    let t = seen.iter().find(|(_, k, _)| k == "telemetry").unwrap();
    assert_eq!(t.2["sysid"], 1, "{t:?}");
    assert!(
        seen.iter()
            .all(|(id, k, _)| (k == "telemetry") == id.is_empty()),
        "changes carry ids, telemetry none: {seen:?}"
    );
    // Reconnecting with the id of the first run change replays what came after it.
    let first = seen.iter().find(|(_, k, _)| k == "run").unwrap().0.clone();
    let again = sse_until(&s, Some(&first), |got| {
        got.iter()
            .any(|(_, k, d)| k == "run" && d["to"] == "skipped")
    });
    let ids: Vec<u64> = again
        .iter()
        .filter(|(i, _, _)| !i.is_empty())
        .map(|(i, _, _)| i.parse().unwrap())
        .collect();
    assert!(
        ids[0] == first.parse::<u64>().unwrap() + 1,
        "{ids:?} after {first}"
    );
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, none lost: {ids:?}"
    );
    // Prometheus metrics, with a token as everything else.
    let url = format!("{}/metrics", s.base);
    assert_eq!(call_as("GET", &url, None).0, 401);
    let (code, text) = call_as("GET", &url, Some(&s.tokens["viewer"]));
    assert_eq!(code, 200);
    let text = text.as_str().unwrap_or_default().to_string();
    for line in [
        "# TYPE gridpatrol_runs gauge",
        "gridpatrol_runs{state=\"skipped\"} 1",
        "gridpatrol_runs{state=\"success\"} 0",
        "gridpatrol_vehicle_battery_percent{sysid=\"1\"} 100",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("gridpatrol_link_frames_total{") && l.contains("kind=\"in\"")),
        "{text}"
    );
}

#[test]
fn patrols_are_made_through_the_api_and_bad_input_writes_nothing() {
    use common::serve::{delete, send_body};
    let s = serve(&[("night", NIGHT_ONLY)]);
    let url = format!("{}/api/v1/patrols", s.base);
    let admin = s.tokens["admin"].clone();
    let count = || {
        call_as("GET", &url, Some(&s.tokens["viewer"])).1["patrols"]
            .as_array()
            .map_or(0, |a| a.len())
    };
    assert_eq!(count(), 1);
    for (body, names) in [
        ("{\"name\": \"x\", \"cells\": [\"WQ-25\"", "EOF"),
        ("[1, 2]", "invalid type"),
        ("{\"name\": \"x\", \"altitude\": 60}", "altitude"),
        (
            "{\"name\": \"x\", \"schedule\": {\"cron\": [\"0 25 * * *\"]}}",
            "schedule.cron[0]",
        ),
        (
            "{\"name\": \"x\", \"schedule\": {\"timezone\": \"Mars/Olympus\"}}",
            "schedule.timezone",
        ),
        (
            "{\"name\": \"x\", \"cells\": [\"WQ-25\", \"ZZ-99\"]}",
            "ZZ-99",
        ),
        ("{\"name\": \"x\", \"alt_m\": 500}", "ceiling"),
    ] {
        let (code, v) = send_body("POST", &url, &admin, body);
        assert_eq!(code, 400, "{body}: {v}");
        assert_eq!(v["code"], "bad_request", "{v}");
        let m = v["message"].as_str().unwrap_or_default();
        assert!(
            m.contains(names),
            "{body}: the message names {names:?}: {m}"
        );
    }
    assert_eq!(count(), 1, "nothing was written");
    // An operator may not; an admin may, and it is kept across a restart.
    let good = r#"{"name": "evening", "cells": ["WQ-25"], "pattern": "perimeter",
                   "schedule": {"cron": ["30 18 * * *"]}}"#;
    let (code, v) = send_body("POST", &url, &s.tokens["operator"], good);
    assert_eq!(code, 403, "{v}");
    let (code, v) = send_body("POST", &url, &admin, good);
    assert_eq!(code, 201, "{v}");
    let (code, _) = send_body("POST", &url, &admin, good);
    assert_eq!(code, 409, "made twice");
    let (code, v) = send_body(
        "PUT",
        &format!("{url}/evening"),
        &admin,
        &good.replace("18", "19"),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["definition"]["schedule"]["cron"][0], "30 19 * * *");
    assert_eq!(count(), 2);
    let restarted = common::serve::spawn(
        &s.s.data,
        &s._dir.path().join("patrols"),
        &["--demo", "--speed", "40"],
    );
    let (_, v) = call_as(
        "GET",
        &format!("{}/api/v1/patrols/evening", restarted.base),
        Some(&s.tokens["viewer"]),
    );
    assert_eq!(v["definition"]["schedule"]["cron"][0], "30 19 * * *", "{v}");
    // Each write is on record with the token's holder.
    let who: Vec<(&str, &str)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["action"].as_str().unwrap(), c["holder"].as_str().unwrap()))
        .collect();
    assert_eq!(who, [("created", "管理员"), ("replaced", "管理员")], "{v}");
    assert_eq!(delete(&format!("{url}/evening"), &admin), 204);
    assert_eq!(delete(&format!("{url}/evening"), &admin), 404);
    assert_eq!(count(), 1);
}

/// The first ring of a GeoJSON Polygon feature: its vertices' mean (lat, lon).
fn centre(feature: &Value) -> (f64, f64) {
    let ring = feature["geometry"]["coordinates"][0].as_array().unwrap();
    let n = ring.len() as f64 - 1.0; // closed: the last repeats the first
    let (mut lat, mut lon) = (0.0, 0.0);
    for p in &ring[..ring.len() - 1] {
        lon += p[0].as_f64().unwrap() / n;
        lat += p[1].as_f64().unwrap() / n;
    }
    (lat, lon)
}

#[test]
fn the_openapi_document_covers_the_routes_and_the_district_and_a_plan_preview_are_served() {
    let s = serve(&[("short", SHORT)]);
    let viewer = Some(s.tokens["viewer"].as_str());
    let get = |path: &str| call_as("GET", &format!("{}{path}", s.base), viewer);
    let (code, doc) = get("/api/v1/openapi.json");
    assert_eq!(code, 200, "{doc}");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/grids",
        "/api/v1/grids/{id}",
        "/api/v1/plans/preview",
        "/api/v1/patrols",
        "/api/v1/patrols/{name}",
        "/api/v1/patrols/{name}/runs",
        "/api/v1/runs",
        "/api/v1/runs/{id}",
        "/api/v1/runs/{id}/cancel",
        "/api/v1/runs/{id}/pause",
        "/api/v1/runs/{id}/resume",
        "/api/v1/runs/{id}/media",
        "/api/v1/runs/{id}/track",
        "/api/v1/vehicles",
        "/api/v1/events",
        "/api/v1/events/{id}",
        "/api/v1/events/{id}/actions",
        "/api/v1/images/{capture_id}",
        "/api/v1/stats",
        "/api/v1/stream",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "{p} is not in the OpenAPI document");
    }
    // Every documented GET without parameters answers (the stream never ends: left out).
    for (p, ops) in paths {
        if p.contains('{') || p.ends_with("/stream") || ops.get("get").is_none() {
            continue;
        }
        let (code, v) = get(p);
        assert_eq!(code, 200, "GET {p}: {v}");
    }
    // The district as GeoJSON, in either datum.
    let (code, wgs) = get("/api/v1/grids");
    assert_eq!(code, 200);
    assert_eq!(wgs["type"], "FeatureCollection");
    let features = wgs["features"].as_array().unwrap();
    let cells = features
        .iter()
        .filter(|f| f["properties"]["layer"] == "cell")
        .count();
    assert!(cells > 40, "{cells} cells");
    assert!(features
        .iter()
        .any(|f| f["properties"]["layer"] == "no_fly"));
    let (code, cell) = get("/api/v1/grids/WQ-25");
    assert_eq!(code, 200);
    assert_eq!(cell["id"], "WQ-25");
    assert_eq!(
        cell["properties"]["cell"]["grid_worker"]
            .as_str()
            .map(str::is_empty),
        Some(false)
    );
    let (_, gcj) = get("/api/v1/grids/WQ-25?datum=gcj02");
    let (a, b) = (centre(&cell), centre(&gcj));
    let shift_m = ((a.0 - b.0) * 111_320.0).hypot((a.1 - b.1) * 111_320.0 * a.0.to_radians().cos());
    assert!(
        (100.0..1000.0).contains(&shift_m),
        "GCJ-02 lies a few hundred metres off WGS-84 in China: {shift_m:.0} m"
    );
    assert_eq!(get("/api/v1/grids?datum=bd09").0, 400);
    assert_eq!(get("/api/v1/grids/WQ-99").0, 404);
    // A plan previewed: checked like a patrol, planned from the dock, nothing stored.
    let preview = |body: &str| {
        common::serve::send_body(
            "POST",
            &format!("{}/api/v1/plans/preview", s.base),
            &s.tokens["viewer"],
            body,
        )
    };
    let (code, plan) = preview(
        r#"{"name": "try", "cells": ["WQ-25"], "pattern": "coverage", "alt_m": 60, "camera": "sim"}"#,
    );
    assert_eq!(code, 200, "{plan}");
    let sorties = plan["sorties"].as_array().unwrap().len();
    assert!(sorties >= 1);
    assert!(plan["photos"].as_u64().unwrap() > 10, "{plan}");
    assert!(plan["length_m"].as_f64().unwrap() > 100.0);
    let lines = plan["geojson"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["geometry"]["type"] == "LineString")
        .count();
    assert_eq!(lines, sorties, "one line per sortie");
    for (body, says) in [
        (r#"{"name": "try", "cells": ["WQ-99"]}"#, "WQ-99"),
        (
            r#"{"name": "try", "cells": ["WQ-25"], "alt_m": 300}"#,
            "ceiling",
        ),
        (
            r#"{"name": "try", "cells": ["WQ-25"], "colour": "red"}"#,
            "colour",
        ),
        (r#"{"name": "try", "cells": "#, "EOF"),
    ] {
        let (code, v) = preview(body);
        assert_eq!(code, 400, "{body}: {v}");
        assert!(v["message"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let (_, v) = get("/api/v1/runs");
    assert_eq!(v["runs"].as_array().map(|a| a.len()), Some(0), "{v}");
}

#[test]
fn an_event_goes_round_its_loop_through_the_api_with_every_step_audited() {
    let s = serve(&[("short", SHORT)]);
    let tok = |who: &str| s.tokens[who].clone();
    let post = |who: &str, path: &str, body: &str| {
        common::serve::send_body("POST", &format!("{}{path}", s.base), &tok(who), body)
    };
    let (_, cell) = call_as(
        "GET",
        &format!("{}/api/v1/grids/WQ-25", s.base),
        Some(&tok("viewer")),
    );
    let (lat, lon) = centre(&cell);
    let report = format!(r#"{{"category": "garbage", "lat": {lat}, "lon": {lon}}}"#);
    // Only someone with WQ-25 may report there.
    assert_eq!(post("viewer", "/api/v1/events", &report).0, 403);
    assert_eq!(
        post("grid_worker_elsewhere", "/api/v1/events", &report).0,
        403
    );
    let (code, ev) = post("grid_worker", "/api/v1/events", &report);
    assert_eq!(code, 201, "{ev}");
    assert_eq!(
        (ev["state"].as_str(), ev["cell_id"].as_str()),
        (Some("reported"), Some("WQ-25"))
    );
    let id = ev["id"].as_i64().unwrap();
    let act = |who: &str, body: &str| post(who, &format!("/api/v1/events/{id}/actions"), body);
    assert_eq!(act("viewer", r#"{"action": "sign"}"#).0, 403);
    assert_eq!(act("grid_worker_elsewhere", r#"{"action": "sign"}"#).0, 403);
    let (code, v) = act("grid_worker", r#"{"action": "close"}"#);
    assert_eq!(
        (code, v["code"].as_str()),
        (409, Some("illegal_transition")),
        "{v}"
    );
    for (who, body, state) in [
        (
            "grid_worker",
            r#"{"action": "sign", "note": "on my way"}"#,
            "signed_for",
        ),
        (
            "operator",
            r#"{"action": "dispatch", "department": "环卫所", "handler": "李师傅", "deadline_hours": 4}"#,
            "dispatched",
        ),
        ("operator", r#"{"action": "start"}"#, "in_progress"),
        (
            "operator",
            r#"{"action": "resolve", "feedback": "cleared", "photos": []}"#,
            "resolved",
        ),
        (
            "grid_worker",
            r#"{"action": "evaluate", "rating": 5}"#,
            "evaluated",
        ),
        ("grid_worker", r#"{"action": "close"}"#, "closed"),
    ] {
        let (code, v) = act(who, body);
        assert_eq!(code, 200, "{who} {body}: {v}");
        assert_eq!(v["state"], state, "{v}");
    }
    assert_eq!(act("operator", r#"{"action": "fly"}"#).0, 400);
    let (code, detail) = call_as(
        "GET",
        &format!("{}/api/v1/events/{id}", s.base),
        Some(&tok("viewer")),
    );
    assert_eq!(code, 200);
    let audit = detail["audit"].as_array().unwrap();
    let who: Vec<&str> = audit.iter().map(|a| a["actor"].as_str().unwrap()).collect();
    assert_eq!(
        who,
        ["赵艳", "赵艳", "飞手", "飞手", "飞手", "赵艳", "赵艳"],
        "{detail}"
    );
    assert_eq!(audit[1]["note"], "on my way");
    let (_, stats) = call_as(
        "GET",
        &format!("{}/api/v1/stats", s.base),
        Some(&tok("viewer")),
    );
    assert_eq!(stats["events"]["total"], 1, "{stats}");
    assert_eq!(stats["events"]["closed"], 1, "{stats}");
}

/// A weather source on 127.0.0.1:0 answering every GET with `body`; its URL.
fn weather_source(body: &'static str) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/now", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn a_windy_weather_source_skips_a_run_with_its_reason() {
    let url = weather_source(r#"{"wind_m_s": 11.2}"#);
    let def = format!(
        "name = \"windy\"\ncells = [\"WQ-25\"]\n[ready]\nmax_wind_m_s = 10.0\nweather_url = \"{url}\"\n"
    );
    let s = serve(&[("windy", def.as_str())]);
    let (code, run) = call(&s, "POST", "/api/v1/patrols/windy/runs");
    assert_eq!(code, 201, "{run}");
    let done = wait_final(
        &s.base,
        &s.tokens["operator"],
        run["id"].as_i64().unwrap(),
        Duration::from_secs(60),
    );
    assert_eq!(done["run"]["state"], "skipped", "{done}");
    assert_eq!(
        done["run"]["reason"], "skipped: wind 11.2 m/s > 10",
        "{done}"
    );
}
