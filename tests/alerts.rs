//! Alerts through `gridpatrol serve` flying the simulator: the nearest ready drone is sent
//! to the point, orbits it, and the events its photos show are linked (or the alert is not
//! confirmed); duplicates share one flight; a point behind a no-fly zone is reached round
//! it; one no vehicle can reach on its battery is refused with the reason; an urgent one
//! takes the drone off a routine patrol in the air, which resumes from its breakpoint
//! after. The same on real PX4 SITL where ../shared/px4-sitl is present.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::px4::free_udp_port;
use common::serve::{
    call_as, on_sim, patrols, send_body, start_run, states, token, wait_final, Serve, AROUND_25,
    COVER_25, DISTRICT,
};
use gridpatrol::grid::{Datum, GridMap};
use gridpatrol_sim::world::{Category, IssueObject, World};
use gridpatrol_sim::{Sim, SimConfig};
use serde_json::{json, Value};

/// 文曲夜市, a hotspot 570 m east of the dock: a fire there in the first test.
const MARKET: (f64, f64) = (36.559_101_7, 103.685_591_8);
/// 文曲苑广场, a square 1.4 km south-east: nothing there.
const SQUARE: (f64, f64) = (36.549_220_3, 103.690_065_3);
/// Beyond the 西岔派出所 no-fly zone, seen from the dock.
const BEHIND_ZONE: (f64, f64) = (36.546_28, 103.670_86);

/// The simulator in the district's dock with `vehicles` drones (at 40×) and `objects` on
/// the ground, sending its GCS link to `port`.
async fn sim(port: u16, dir: &Path, vehicles: usize, objects: Vec<IssueObject>) -> Sim {
    let map = GridMap::load(Path::new(DISTRICT), Datum::Wgs84).unwrap();
    let home = map.home.unwrap();
    let world = World {
        name: "alerts".into(),
        ground_alt_m: home.alt_m,
        objects,
    };
    Sim::start(SimConfig {
        gcs: ([127, 0, 0, 1], port).into(),
        base_port: None,
        vehicles,
        speed: 40.0,
        dock_charge_pct_per_min: 60.0,
        home: (home.lat, home.lon, home.alt_m),
        world: Some(std::sync::Arc::new(world)),
        image_dir: Some(dir.join("sim-images")),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn fire_at(p: (f64, f64)) -> IssueObject {
    IssueObject {
        id: 1,
        category: Category::FireSmoke,
        lat: p.0,
        lon: p.1,
        size_m: (4.0, 3.0),
        heading_deg: 30.0,
    }
}

fn serve(port: u16, dir: &Path, defs: &[(&str, &str)], extra: &[&str]) -> (Serve, String) {
    let data = dir.join("data");
    let op = token(&data, "operator", "指挥中心", "");
    (on_sim(port, &data, &patrols(dir, defs), extra), op)
}

fn raise(base: &str, op: &str, body: Value) -> (u16, Value) {
    send_body(
        "POST",
        &format!("{base}/api/v1/alerts"),
        op,
        &body.to_string(),
    )
}

fn alert_at(p: (f64, f64), category: &str, source: &str) -> Value {
    json!({
        "lat": p.0, "lon": p.1, "category": category, "priority": "urgent",
        "source": {"kind": "hotline", "id": source},
    })
}

/// Polls alert `id` until it is concluded (confirmed, not confirmed or refused).
fn wait_concluded(base: &str, op: &str, id: i64) -> Value {
    let end = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, a) = call_as("GET", &format!("{base}/api/v1/alerts/{id}"), Some(op));
        let state = a["state"].as_str().unwrap_or("").to_string();
        if !["dispatching", "en_route", "on_scene"].contains(&state.as_str()) {
            return a;
        }
        assert!(Instant::now() < end, "alert {id} still {state}: {a}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Waits until the vehicles are heard (the alert is dispatched among them).
fn wait_vehicles(base: &str, op: &str, n: usize) {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = call_as("GET", &format!("{base}/api/v1/vehicles"), Some(op));
        let ready = v["vehicles"]
            .as_array()
            .map(|a| a.iter().filter(|v| v["home"].is_object()).count())
            .unwrap_or(0);
        if ready >= n {
            return;
        }
        assert!(Instant::now() < end, "vehicles not heard: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_from_the_docks_confirm_a_fire_find_nothing_elsewhere_and_merge_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let _sim = sim(port, dir.path(), 2, vec![fire_at(MARKET)]).await;
    let (s, op) = serve(port, dir.path(), &[], &[]);
    let base = s.base.clone();
    tokio::task::spawn_blocking(move || {
        wait_vehicles(&base, &op, 2);
        let (code, fire) = raise(&base, &op, alert_at(MARKET, "fire_smoke", "12345-0001"));
        assert_eq!(code, 201, "{fire}");
        assert_eq!(fire["state"], "en_route", "{fire}");
        assert!(
            fire["reason"]
                .as_str()
                .unwrap()
                .contains("over the point in about"),
            "{fire}"
        );
        // The same fire called in again, 40 m off, a moment later: one flight.
        let near = (MARKET.0 + 0.000_36, MARKET.1);
        let (code, again) = raise(&base, &op, alert_at(near, "fire_smoke", "110-0002"));
        assert_eq!(code, 201, "{again}");
        assert_eq!(again["state"], "merged", "{again}");
        assert_eq!(again["merged_into"], fire["id"]);
        assert_eq!(again["run_id"], fire["run_id"]);
        // Somewhere else, nothing there: the other drone goes.
        let (code, empty) = raise(&base, &op, alert_at(SQUARE, "crowd", "12345-0003"));
        assert_eq!(code, 201, "{empty}");
        assert_eq!(empty["state"], "en_route", "{empty}");
        assert_ne!(empty["sysid"], fire["sysid"], "one drone each");

        let fire = wait_concluded(&base, &op, fire["id"].as_i64().unwrap());
        assert_eq!(fire["state"], "confirmed", "{fire}");
        let linked = fire["events"].as_array().unwrap();
        assert!(!linked.is_empty(), "{fire}");
        for e in linked {
            let (_, ev) = call_as("GET", &format!("{base}/api/v1/events/{e}"), Some(&op));
            let ev = &ev["event"];
            assert_eq!(ev["category"], "fire_smoke", "{ev}");
            let d = gridpatrol::geotag::distance_m(
                ev["lat"].as_f64().unwrap(),
                ev["lon"].as_f64().unwrap(),
                MARKET.0,
                MARKET.1,
            );
            assert!(d < 10.0, "the fire's event is {d:.1} m from it");
        }
        let t = &fire["times"];
        let total = t["total_s"].as_f64().expect("time to scene");
        let parts: f64 = ["decision_s", "upload_s", "takeoff_s", "transit_s"]
            .iter()
            .map(|k| t[*k].as_f64().unwrap_or_else(|| panic!("{k}: {t}")))
            .sum();
        assert!((parts - total).abs() < 0.01, "the parts add up: {t}");
        // The run is the alert's, and it flew to its end.
        let (_, run) = call_as(
            "GET",
            &format!("{base}/api/v1/runs/{}", fire["run_id"]),
            Some(&op),
        );
        assert_eq!(run["run"]["trigger"], "alert", "{run}");
        assert_eq!(run["run"]["state"], "success", "{run}");
        // The duplicate shares the outcome's events.
        let (_, again) = call_as(
            "GET",
            &format!("{base}/api/v1/alerts/{}", again["id"]),
            Some(&op),
        );
        assert_eq!(again["events"], fire["events"], "{again}");

        let empty = wait_concluded(&base, &op, empty["id"].as_i64().unwrap());
        assert_eq!(empty["state"], "not_confirmed", "{empty}");
        assert!(empty["events"].as_array().unwrap().is_empty());
        let reason = empty["reason"].as_str().unwrap();
        assert!(reason.contains("photos showed nothing"), "{reason}");
        let (_, media) = call_as(
            "GET",
            &format!("{base}/api/v1/runs/{}/media", empty["run_id"]),
            Some(&op),
        );
        assert!(
            media["photos"].as_array().is_some_and(|p| !p.is_empty()),
            "its photos are kept: {media}"
        );

        let (_, stats) = call_as("GET", &format!("{base}/api/v1/stats"), Some(&op));
        let a = &stats["alerts"];
        assert_eq!(
            (
                a["total"].as_i64(),
                a["confirmed"].as_i64(),
                a["not_confirmed"].as_i64(),
                a["merged"].as_i64()
            ),
            (Some(3), Some(1), Some(1), Some(1)),
            "{stats}"
        );
        assert!(a["time_to_scene_median_s"].as_f64().is_some(), "{stats}");
    })
    .await
    .unwrap();
}

/// Bad points refused with the reason, a GCJ-02 point taken back to WGS-84, and an alert
/// beyond what a two-minute battery reaches refused with each vehicle's shortfall (the
/// service runs with `--alert-battery-min 2`).
fn refusals(base: &str, op: &str) {
    wait_vehicles(base, op, 1);
    let refused = |body: Value, says: &str| {
        let (code, e) = raise(base, op, body);
        assert_eq!(code, 400, "{e}");
        let m = e["message"].as_str().unwrap();
        assert!(m.contains(says), "{m}");
    };
    refused(
        alert_at((36.60, 103.679), "fire_smoke", "x"),
        "outside the district",
    );
    refused(alert_at((f64::NAN, 0.0), "fire_smoke", "x"), "expected");
    refused(alert_at(MARKET, "dragons", "x"), "category");
    refused(
        alert_at((36.568_14, 103.694_52), "fire_smoke", "x"),
        "no-fly zone",
    );
    let mut camera = alert_at(MARKET, "fire_smoke", "x");
    camera["source"] = json!({"kind": "pigeon", "id": "7"});
    refused(camera, "source kind");
    // The market given as a Chinese web map shows it (GCJ-02) is the same place.
    let (glat, glon) = Datum::Gcj02.from_wgs84(MARKET.0, MARKET.1);
    let mut gcj = alert_at((glat, glon), "garbage", "platform-1");
    gcj["datum"] = json!("gcj02");
    let (code, a) = raise(base, op, gcj);
    assert_eq!(code, 201, "{a}");
    let d = gridpatrol::geotag::distance_m(
        a["lat"].as_f64().unwrap(),
        a["lon"].as_f64().unwrap(),
        MARKET.0,
        MARKET.1,
    );
    assert!(d < 5.0, "GCJ-02 taken back to WGS-84: {d:.1} m off");
    // Two minutes of battery do not reach the square and back.
    let (code, far) = raise(base, op, alert_at(SQUARE, "crowd", "12345-9"));
    assert_eq!(code, 201, "{far}");
    assert_eq!(far["state"], "refused", "{far}");
    let why = far["reason"].as_str().unwrap();
    assert!(
        why.contains("would need") && why.contains("% of its battery"),
        "{why}"
    );
    let (_, run) = call_as(
        "GET",
        &format!("{base}/api/v1/runs/{}", far["run_id"]),
        Some(op),
    );
    assert_eq!(run["run"]["state"], "skipped", "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_points_are_refused_and_so_is_an_alert_no_battery_can_reach() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let _sim = sim(port, dir.path(), 1, Vec::new()).await;
    // A battery that lasts two minutes: the square, 1.4 km away and back, is out of reach.
    let (s, op) = serve(port, dir.path(), &[], &["--alert-battery-min", "2"]);
    let base = s.base.clone();
    tokio::task::spawn_blocking(move || refusals(&base, &op))
        .await
        .unwrap();
}

/// An alert behind the 西岔派出所 zone, followed to its end: it got over the point, and
/// its recorded track keeps out of every no-fly zone. The alert.
fn reached_round_the_zone(base: &str, op: &str) -> Value {
    wait_vehicles(base, op, 1);
    let (code, a) = raise(base, op, alert_at(BEHIND_ZONE, "crowd", "12345-7"));
    assert_eq!(code, 201, "{a}");
    let a = wait_concluded(base, op, a["id"].as_i64().unwrap());
    assert!(a["over_us"].is_i64(), "it got there: {a}");
    let track = run_track(base, op, &a["run_id"]);
    let map = GridMap::load(Path::new(DISTRICT), Datum::Wgs84).unwrap();
    let points = track["points"].as_array().unwrap();
    assert!(points.len() > 20, "{track}");
    for p in points {
        let (lat, lon) = (p["lat"].as_f64().unwrap(), p["lon"].as_f64().unwrap());
        assert!(
            map.in_no_fly(lat, lon).is_none(),
            "through a no-fly zone at {lat}, {lon}"
        );
    }
    a
}

/// Run `run`'s recorded track (`GET /runs/{id}/track`).
fn run_track(base: &str, op: &str, run: &Value) -> Value {
    call_as("GET", &format!("{base}/api/v1/runs/{run}/track"), Some(op)).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_behind_a_no_fly_zone_is_reached_round_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let _sim = sim(port, dir.path(), 1, Vec::new()).await;
    let (s, op) = serve(port, dir.path(), &[], &[]);
    let base = s.base.clone();
    tokio::task::spawn_blocking(move || reached_round_the_zone(&base, &op))
        .await
        .unwrap();
}

/// A run of `patrol` flown to its altitude (over 50 m), then an urgent alert at the
/// market's fire: the drone leaves the patrol in the air, the fire is confirmed, and the
/// patrol resumes from its breakpoint after and ends in success.
fn diverted_patrol_resumes(base: &str, op: &str, patrol: &str) {
    wait_vehicles(base, op, 1);
    let run = start_run(base, op, patrol);
    let id = run["id"].as_i64().unwrap();
    // Once the patrol is up at its 60 m, the alert.
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, v) = call_as("GET", &format!("{base}/api/v1/vehicles"), Some(op));
        let alt = v["vehicles"][0]["position"]["alt_rel"]
            .as_f64()
            .unwrap_or(0.0);
        if alt > 50.0 {
            break;
        }
        assert!(Instant::now() < end, "the patrol never flew: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, a) = raise(base, op, alert_at(MARKET, "fire_smoke", "12345-0001"));
    assert_eq!(code, 201, "{a}");
    assert_eq!(a["state"], "dispatching", "{a}");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("leaves run {id} in the air")),
        "{a}"
    );
    let a = wait_concluded(base, op, a["id"].as_i64().unwrap());
    assert_eq!(a["state"], "confirmed", "{a}");
    let done = wait_final(base, op, id, Duration::from_secs(600));
    assert_eq!(done["run"]["state"], "success", "{done}");
    let st = states(&done);
    assert!(st.contains(&"paused".to_string()), "{st:?}");
    let pre = done["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["to"] == "paused")
        .unwrap();
    let why = pre["reason"].as_str().unwrap();
    assert!(
        why.contains("pre-empted by alert") && why.contains("held in the air and handed over"),
        "{pre}"
    );
    // The alert took the drone in the air: its track starts aloft, not in the dock.
    let track = run_track(base, op, &a["run_id"]);
    let first = &track["points"][0];
    assert!(first["alt_rel"].as_f64().unwrap() > 30.0, "{first}");
    // The alert flew between the patrol's two parts.
    let (_, ar) = call_as(
        "GET",
        &format!("{base}/api/v1/runs/{}", a["run_id"]),
        Some(op),
    );
    assert_eq!(ar["run"]["state"], "success", "{ar}");
    let resumed_at = done["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["to"] == "preparing")
        .nth(1)
        .map(|c| c["at_us"].as_i64().unwrap())
        .expect("the patrol was prepared again");
    assert!(
        resumed_at >= a["over_us"].as_i64().unwrap(),
        "the patrol resumed after the alert was over its point"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_alert_diverts_the_drone_from_a_patrol_which_resumes_after() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let _sim = sim(port, dir.path(), 1, vec![fire_at(MARKET)]).await;
    let (s, op) = serve(port, dir.path(), &[("cover-25", COVER_25)], &[]);
    let base = s.base.clone();
    tokio::task::spawn_blocking(move || {
        wait_vehicles(&base, &op, 1);
        diverted_patrol_resumes(&base, &op, "cover-25");
    })
    .await
    .unwrap();
}

/// PX4's speed factor in these tests.
const PX4_SPEED: f64 = 8.0;

/// PX4 v1.16 SITL instance `instance` at 8× in the dock with the simulator's camera on its
/// payload link (its photos of `objects`), and `serve` flying it; None where PX4 is absent.
async fn px4_and_serve(
    instance: u8,
    dir: &Path,
    objects: Vec<IssueObject>,
    defs: &[(&str, &str)],
    extra: &[&str],
) -> Option<(common::px4::Px4, Serve, String)> {
    let launcher = common::px4::launcher()?;
    let port = free_udp_port();
    let world = World {
        name: "alerts".into(),
        ground_alt_m: common::px4::DOCK.2,
        objects,
    };
    gridpatrol_sim::cli::attach_px4(
        &[instance],
        std::sync::Arc::new(world),
        dir.join("sim-images"),
        gridpatrol_sim::camera::Camera::default(),
    )
    .await
    .unwrap();
    let px4 = common::px4::Px4::start(&launcher, instance, PX4_SPEED, common::px4::DOCK, port);
    let (s, op) = serve(port, dir, defs, extra);
    Some((px4, s, op))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn px4_flies_an_alert_from_its_dock_and_the_fire_is_confirmed() {
    let _cpu = common::px4::cpu_share(&[PX4_SPEED]).await;
    let dir = tempfile::tempdir().unwrap();
    let Some((px4, s, op)) = px4_and_serve(5, dir.path(), vec![fire_at(MARKET)], &[], &[]).await
    else {
        return;
    };
    let base = s.base.clone();
    let a = tokio::task::spawn_blocking(move || {
        wait_vehicles(&base, &op, 1);
        let (code, fire) = raise(&base, &op, alert_at(MARKET, "fire_smoke", "12345-0001"));
        assert_eq!(code, 201, "{fire}");
        assert_eq!(fire["state"], "en_route", "{fire}");
        let (_, again) = raise(&base, &op, alert_at(MARKET, "fire_smoke", "110-0002"));
        assert_eq!(again["state"], "merged", "{again}");
        let fire = wait_concluded(&base, &op, fire["id"].as_i64().unwrap());
        let (_, run) = call_as(
            "GET",
            &format!("{base}/api/v1/runs/{}", fire["run_id"]),
            Some(&op),
        );
        (fire, run)
    })
    .await
    .unwrap();
    let (fire, run) = a;
    let log = px4.log();
    assert_eq!(fire["state"], "confirmed", "{fire}\n{run}\n{log}");
    assert_eq!(run["run"]["state"], "success", "{run}");
    assert!(fire["times"]["total_s"].as_f64().is_some(), "{fire}");
    assert_eq!(log.matches("Armed by external command").count(), 1, "{log}");
    assert!(log.contains("Disarmed by landing"), "it came home: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn px4_reaches_an_alert_behind_a_no_fly_zone_round_it() {
    let _cpu = common::px4::cpu_share(&[PX4_SPEED]).await;
    let dir = tempfile::tempdir().unwrap();
    let Some((px4, s, op)) = px4_and_serve(6, dir.path(), Vec::new(), &[], &[]).await else {
        return;
    };
    let base = s.base.clone();
    let a = tokio::task::spawn_blocking(move || reached_round_the_zone(&base, &op))
        .await
        .unwrap();
    let log = px4.log();
    assert_eq!(a["state"], "not_confirmed", "{a}\n{log}");
    assert!(log.contains("Disarmed by landing"), "it came home: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn px4_is_diverted_from_its_patrol_to_an_alert_and_the_patrol_resumes_after() {
    let _cpu = common::px4::cpu_share(&[PX4_SPEED]).await;
    let dir = tempfile::tempdir().unwrap();
    // The perimeter of WQ-25 at 60 m: a short patrol for PX4 to be taken off.
    let around = AROUND_25.replace("alt_m = 40.0", "alt_m = 60.0");
    let defs = [("around-25", around.as_str())];
    let Some((px4, s, op)) = px4_and_serve(7, dir.path(), vec![fire_at(MARKET)], &defs, &[]).await
    else {
        return;
    };
    let base = s.base.clone();
    let done = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(|| diverted_patrol_resumes(&base, &op, "around-25"))
    })
    .await
    .unwrap();
    let log = px4.log();
    if let Err(e) = done {
        let why = e.downcast_ref::<String>().cloned().unwrap_or_default();
        panic!("{why}\n{}", &log[log.len().saturating_sub(4000)..]);
    }
    // Taken over in the air: armed twice (the patrol, its resumption), never for the alert.
    assert_eq!(log.matches("Armed by external command").count(), 2, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn px4_bad_points_are_refused_and_so_is_an_alert_its_battery_cannot_reach() {
    let _cpu = common::px4::cpu_share(&[PX4_SPEED]).await;
    let dir = tempfile::tempdir().unwrap();
    let Some((_px4, s, op)) = px4_and_serve(
        8,
        dir.path(),
        Vec::new(),
        &[],
        &["--alert-battery-min", "2"],
    )
    .await
    else {
        return;
    };
    let base = s.base.clone();
    tokio::task::spawn_blocking(move || refusals(&base, &op))
        .await
        .unwrap();
}
