//! Time to scene for alerts across the sample district: `gridpatrol serve --demo` with two
//! simulated drones in the dock, one alert at a time at cells from the nearest to the
//! farthest (and one behind a no-fly zone), each followed to its conclusion. Decision and
//! upload are the ground station's work over the link, in wall-clock seconds; takeoff and
//! transit are flight, in the vehicle's seconds (wall-clock × the simulator's speed).
//! `cargo bench --bench alerts`; the table is in the README.

#[path = "../tests/common/serve.rs"]
#[allow(dead_code)]
mod serve;

use std::time::{Duration, Instant};

use gridpatrol::grid::{Datum, GridMap};
use serde_json::json;

const SPEED: f64 = 20.0;
/// Beyond the 西岔派出所 no-fly zone, seen from the dock.
const BEHIND_ZONE: (f64, f64) = (36.546_28, 103.670_86);

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let op = serve::token(&data, "operator", "bench", "");
    let pdir = serve::patrols(dir.path(), &[]);
    let speed = SPEED.to_string();
    let s = serve::spawn(
        &data,
        &pdir,
        &["--demo", "--vehicles", "2", "--speed", &speed],
    );
    let base = s.base.clone();
    let map = GridMap::load(std::path::Path::new(serve::DISTRICT), Datum::Wgs84).unwrap();
    let home = map.home.unwrap();
    // Cells by distance from the dock: every seventh, nearest to farthest.
    let mut cells: Vec<(String, f64, f64, f64)> = map
        .cells
        .iter()
        .filter_map(|c| {
            use geo::Centroid;
            let p = c.polygon.centroid()?;
            (map.in_no_fly(p.y(), p.x()).is_none()).then(|| {
                let d = gridpatrol::geotag::distance_m(home.lat, home.lon, p.y(), p.x());
                (c.id.clone(), p.y(), p.x(), d)
            })
        })
        .collect();
    cells.sort_by(|a, b| a.3.total_cmp(&b.3));
    let mut points: Vec<(String, f64, f64)> = cells
        .iter()
        .step_by(7)
        .chain(cells.last())
        .map(|(id, lat, lon, _)| (id.clone(), *lat, *lon))
        .collect();
    points.dedup_by(|a, b| a.0 == b.0);
    points.push(("behind 西岔派出所".into(), BEHIND_ZONE.0, BEHIND_ZONE.1));
    // Both drones heard.
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        let (_, v) = serve::call_as("GET", &format!("{base}/api/v1/vehicles"), Some(&op));
        if v["vehicles"]
            .as_array()
            .is_some_and(|a| a.iter().filter(|v| v["home"].is_object()).count() >= 2)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("| where | from the dock | decision | upload | takeoff | transit | time to scene | outcome |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut totals = Vec::new();
    for (k, (name, lat, lon)) in points.iter().enumerate() {
        let body = json!({
            "lat": lat, "lon": lon, "category": "crowd", "priority": "urgent",
            "source": {"kind": "hotline", "id": format!("bench-{k}")},
        });
        let (code, a) = serve::send_body(
            "POST",
            &format!("{base}/api/v1/alerts"),
            &op,
            &body.to_string(),
        );
        assert_eq!(code, 201, "{a}");
        let id = a["id"].as_i64().unwrap();
        let a = loop {
            let (_, a) = serve::call_as("GET", &format!("{base}/api/v1/alerts/{id}"), Some(&op));
            let st = a["state"].as_str().unwrap_or("").to_string();
            if !["dispatching", "en_route", "on_scene"].contains(&st.as_str()) {
                break a;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let t = &a["times"];
        let f = |k: &str| t[k].as_f64().unwrap_or(f64::NAN);
        let (decision, upload) = (f("decision_s"), f("upload_s"));
        let (takeoff, transit) = (f("takeoff_s") * SPEED, f("transit_s") * SPEED);
        let total = decision + upload + takeoff + transit;
        let d = gridpatrol::geotag::distance_m(home.lat, home.lon, *lat, *lon);
        if total.is_finite() {
            totals.push(total);
        }
        println!(
            "| {name} | {d:.0} m | {:.0} ms | {upload:.2} s | {takeoff:.0} s | {transit:.0} s | {total:.0} s | {} |",
            decision * 1000.0,
            a["state"].as_str().unwrap_or("?")
        );
        // The drones come home and their batteries are swapped before the next.
        wait_docked(&base, &op);
    }
    totals.sort_by(f64::total_cmp);
    let median = totals.get(totals.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "\n{} alerts, median time to scene {median:.0} s (vehicle seconds; simulator at {SPEED}x)",
        totals.len()
    );
}

/// Waits until no drone is armed.
fn wait_docked(base: &str, op: &str) {
    let end = Instant::now() + Duration::from_secs(120);
    while Instant::now() < end {
        let (_, v) = serve::call_as("GET", &format!("{base}/api/v1/vehicles"), Some(op));
        if v["vehicles"]
            .as_array()
            .is_some_and(|a| a.iter().all(|v| v["armed"] != true))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
