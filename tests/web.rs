//! The command centre's page (一张图) in a real browser: Debian's headless Chromium driven
//! over WebDriver (chromedriver), against `gridpatrol serve` with a simulated drone
//! flying a patrol. Skipped with one line where Chromium or chromedriver is absent (fails
//! in CI, whose `.ci/run` installs them). A screenshot of the map mid-patrol is written to
//! `target/test-output/map-mid-patrol.png`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::px4::free_udp_port;
use common::serve::{
    call_as, on_sim, patrols, send_body, start_run, token, wq25_sim, Serve, COVER_25,
};
use fantoccini::{Client, ClientBuilder, Locator};
use gridpatrol_sim::SimConfig;
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Option<Driver> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        common::skip(&format!(
            "browser test: {CHROMIUM} or {CHROMEDRIVER} is absent (apt-get install chromium chromium-driver)"
        ));
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver");
    let until = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

/// A headless Chromium session with its own profile.
async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            // The flags this machine needs: no sandbox as root, and no background
            // networking (the closed network refuses it).
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-quic", "--window-size=1280,900",
                     format!("--user-data-dir={}", profile.display())],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session")
}

/// Waits (at most `limit`) until `script` returns true in the page.
async fn wait_js(c: &Client, script: &str, limit: Duration, what: &str) {
    let until = Instant::now() + limit;
    loop {
        let v = c.execute(script, vec![]).await.unwrap_or(Value::Null);
        if v.as_bool() == Some(true) {
            return;
        }
        if Instant::now() > until {
            let shot = c.screenshot().await.unwrap_or_default();
            let path = output_dir().join(format!("failed-{}.png", what.replace(' ', "-")));
            let _ = std::fs::write(&path, shot);
            panic!(
                "waited {limit:?} for {what} (`{script}`); screenshot {}",
                path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (at most 20 s) for the element `css` and clicks it; again when the page redrew
/// it between the finding and the click (lists are redrawn as the stream updates them).
async fn click(c: &Client, css: &str) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let found = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        match found.click().await {
            Ok(()) => return,
            Err(e) if Instant::now() < until && e.to_string().contains("stale element") => {}
            Err(e) => panic!("click {css}: {e}"),
        }
    }
}

/// Takes the browser off the network or puts it back (chromedriver's network conditions).
async fn network(driver: &Driver, c: &Client, offline: bool) {
    let sid = c.session_id().await.unwrap().expect("a session");
    let url = format!("{}/session/{sid}/chromium/network_conditions", driver.url);
    let body = json!({"network_conditions": {"offline": offline, "latency": 0,
        "download_throughput": -1, "upload_throughput": -1}})
    .to_string();
    let (code, v) = tokio::task::spawn_blocking(move || send_body("POST", &url, "", &body))
        .await
        .unwrap();
    assert_eq!(code, 200, "network conditions: {v}");
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.expect(script)
}

/// Where CI keeps test output: target/test-output/.
fn output_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../test-output");
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/")).await.unwrap();
    c.execute("localStorage.clear()", vec![]).await.unwrap();
    c.goto(&format!("{base}/")).await.unwrap();
    let input = c.wait().for_element(Locator::Id("token")).await.unwrap();
    input.send_keys(token).await.unwrap();
    click(c, "#signin-go").await;
    wait_js(
        c,
        "return document.body.getAttribute('data-ready') === '1'",
        Duration::from_secs(30),
        "the page to load the district",
    )
    .await;
}

/// GET `/api/v1{path}` as `token` (off the async workers), asserting a 200; the body.
async fn api(base: &str, path: &str, token: &str) -> Value {
    let (url, token) = (format!("{base}/api/v1{path}"), token.to_string());
    tokio::task::spawn_blocking(move || {
        let (code, v) = call_as("GET", &url, Some(&token));
        assert_eq!(code, 200, "{url}: {v}");
        v
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_shows_the_patrol_live_and_a_grid_worker_signs_from_it() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_udp_port();
    // One simulated drone at 20x in the district's dock.
    let config = SimConfig {
        vehicles: 1,
        speed: 20.0,
        ..Default::default()
    };
    let _sim = wq25_sim(port, dir.path(), 20, config).await;
    let op = token(&data, "operator", "值班员", "");
    let worker = token(&data, "grid_worker", "赵艳", "WQ-25,WQ-24");
    let viewer = token(&data, "viewer", "指挥中心", "");
    let pdir = patrols(dir.path(), &[("cover-25", COVER_25)]);
    let serve: Serve = on_sim(port, &data, &pdir, &["--telemetry-hz", "5"]);
    let base = serve.base.clone();

    let c = browser(&driver, &dir.path().join("profile")).await;
    sign_in(&c, &base, &worker).await;

    // The district: every cell and both no-fly zones drawn; the worker's cells first.
    let cells = js(&c, "return document.querySelectorAll('path.cell').length").await;
    assert_eq!(cells, json!(52), "cells drawn");
    let zones = js(&c, "return document.querySelectorAll('path.no-fly').length").await;
    assert_eq!(zones, json!(2), "no-fly zones drawn");
    let streets = js(&c, "return document.querySelectorAll('path.road').length").await;
    assert_eq!(streets, json!(10), "the district's streets drawn");
    let centre = js(
        &c,
        "const b = gp.map.getBounds(); return [b.contains(gp.cells['WQ-25'].getBounds()), b.contains(gp.cells['WQ-01'].getBounds())]",
    )
    .await;
    assert_eq!(
        centre[0],
        json!(true),
        "the worker's cell WQ-25 is in view first"
    );
    // The page's own weight, as the browser loaded it.
    let weight = js(
        &c,
        "return performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation')).filter(e => !e.name.includes('/api/')).reduce((s, e) => s + (e.encodedBodySize || 0), 0)",
    )
    .await;
    eprintln!("page weight (HTML, JS, CSS, images; before API calls): {weight} bytes");

    // A vehicle is drawn, and moves once the patrol flies.
    wait_js(
        &c,
        "return document.querySelectorAll('.vehicle').length === 1",
        Duration::from_secs(30),
        "the vehicle marker",
    )
    .await;
    let start = js(
        &c,
        "const p = gp.vehicles[1].marker.getLatLng(); return [p.lat, p.lng]",
    )
    .await;
    let run = tokio::task::spawn_blocking({
        let (base, op) = (base.clone(), op.clone());
        move || start_run(&base, &op, "cover-25")
    })
    .await
    .unwrap();
    let moved = format!(
        "const p = gp.vehicles[1].marker.getLatLng(); return gp.map.distance(p, L.latLng({}, {})) > 50",
        start[0], start[1]
    );
    wait_js(
        &c,
        &moved,
        Duration::from_secs(240),
        "the vehicle marker to move",
    )
    .await;
    // Smooth: the marker glides between samples, so it sits between positions received.
    let samples = js(&c, "return gp.vehicles[1].samples").await;
    assert!(
        samples.as_u64().unwrap_or(0) > 5,
        "telemetry samples {samples}"
    );

    // An event appears on the page when its photo is filed.
    wait_js(
        &c,
        "return document.querySelectorAll('#events li[data-event-id]').length > 0",
        Duration::from_secs(300),
        "an event on the page",
    )
    .await;
    let shown_ms: Value = js(&c, "return Object.fromEntries(Object.entries(gp.seenAt))").await;
    let events = api(&base, "/events", &worker).await;
    let mut lat_ms: Vec<f64> = Vec::new();
    for e in events["events"].as_array().unwrap() {
        let id = e["id"].to_string();
        if let Some(seen) = shown_ms.get(&id).and_then(Value::as_f64) {
            lat_ms.push(seen - e["created_us"].as_f64().unwrap() / 1000.0);
        }
    }
    assert!(!lat_ms.is_empty(), "events {events}\nseen {shown_ms}");
    // From the photo reaching the ground station to its event on the page.
    let run_id = run["id"].as_i64().unwrap();
    let media = api(&base, &format!("/runs/{run_id}/media"), &op).await;
    let mut photo_ms: Vec<f64> = Vec::new();
    for (id, seen) in shown_ms.as_object().unwrap() {
        let id: i64 = id.parse().unwrap();
        let first = media["photos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| {
                p["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e.as_i64() == Some(id))
            })
            .filter_map(|p| p["received_us"].as_f64())
            .fold(f64::INFINITY, f64::min);
        if first.is_finite() {
            photo_ms.push(seen.as_f64().unwrap() - first / 1000.0);
        }
    }
    photo_ms.sort_by(f64::total_cmp);
    assert!(!photo_ms.is_empty(), "{media}");
    eprintln!(
        "photo received -> its event on the page: {} events, median {:.0} ms, max {:.0} ms",
        photo_ms.len(),
        photo_ms[photo_ms.len() / 2],
        photo_ms[photo_ms.len() - 1]
    );
    lat_ms.sort_by(f64::total_cmp);
    eprintln!(
        "event filed -> on the page: {} events, median {:.0} ms, max {:.0} ms",
        lat_ms.len(),
        lat_ms[lat_ms.len() / 2],
        lat_ms[lat_ms.len() - 1]
    );

    // Mid-patrol: the screenshot CI keeps.
    let shot = c.screenshot().await.unwrap();
    let png = output_dir().join("map-mid-patrol.png");
    std::fs::write(&png, &shot).unwrap();
    eprintln!("screenshot: {}", png.display());

    // On a grid worker's phone the panel goes under the map.
    c.set_window_size(390, 844).await.unwrap();
    wait_js(
        &c,
        "const m = document.getElementById('map').getBoundingClientRect(), p = document.getElementById('panel').getBoundingClientRect(); return p.top >= m.bottom - 1 && m.width <= 390",
        Duration::from_secs(10),
        "the phone layout",
    )
    .await;
    std::fs::write(
        output_dir().join("map-phone.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    c.set_window_size(1280, 900).await.unwrap();

    // Chinese and English.
    click(&c, "#lang").await;
    let title1 = js(
        &c,
        "return document.querySelector('header strong').textContent",
    )
    .await;
    click(&c, "#lang").await;
    let title2 = js(
        &c,
        "return document.querySelector('header strong').textContent",
    )
    .await;
    assert_ne!(title1, title2, "the language switch changes the words");
    let titles = [title1.as_str().unwrap_or(""), title2.as_str().unwrap_or("")];
    assert!(titles.contains(&"网格巡查 · 一张图"), "{titles:?}");

    // The grid worker signs the first event from the page.
    let first = js(
        &c,
        "return Number(document.querySelector('#events li[data-event-id]').getAttribute('data-event-id'))",
    )
    .await;
    let id = first.as_i64().unwrap();
    click(&c, &format!("#events li[data-event-id='{id}']")).await;
    // The cover photo is shown with its detection box, and the worker may sign.
    wait_js(
        &c,
        "return !!document.querySelector('#cover img') && !!document.querySelector('#cover .box')",
        Duration::from_secs(20),
        "the cover photo with its box",
    )
    .await;
    click(&c, "#actions button.action[data-action='sign']").await;
    wait_js(
        &c,
        &format!("return gp.events[{id}] && gp.events[{id}].state === 'signed_for' && !!document.querySelector(\"#actions button.action[data-action='dispatch']\")"),
        Duration::from_secs(20),
        "the page to show the event signed for",
    )
    .await;
    let detail = api(&base, &format!("/events/{id}"), &op).await;
    assert_eq!(detail["event"]["state"], json!("signed_for"), "{detail}");
    let last = detail["audit"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["to"], json!("signed_for"), "{detail}");
    assert_eq!(last["actor"], json!("赵艳"), "{detail}");

    // The link drops: what changed meanwhile reaches the page when it is back
    // (Last-Event-ID), though the page itself never asks for the event again.
    network(&driver, &c, true).await;
    js(&c, "gp.streamAbort.abort(); return true").await;
    wait_js(
        &c,
        "return gp.connected === false",
        Duration::from_secs(10),
        "the stream to drop",
    )
    .await;
    let (code, v) = tokio::task::spawn_blocking({
        let (base, op) = (base.clone(), op.clone());
        move || {
            send_body(
                "POST",
                &format!("{base}/api/v1/events/{id}/actions"),
                &op,
                r#"{"action": "dispatch", "department": "环卫所", "handler": "李师傅"}"#,
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 200, "{v}");
    // Let the stream's store poll (every 0.5 s) publish it while the page is away; were
    // it later, it would arrive live, and the check below would still hold.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        js(&c, &format!("return gp.events[{id}].state")).await,
        json!("signed_for")
    );
    network(&driver, &c, false).await;
    wait_js(
        &c,
        &format!("return gp.connected && gp.events[{id}].state === 'dispatched'"),
        Duration::from_secs(30),
        "the change made while offline",
    )
    .await;

    // A viewer sees the event but no lifecycle buttons.
    sign_in(&c, &base, &viewer).await;
    click(&c, &format!("#events li[data-event-id='{id}']")).await;
    wait_js(
        &c,
        "return !!document.querySelector('#detail-state')",
        Duration::from_secs(20),
        "the event detail for the viewer",
    )
    .await;
    let buttons = js(
        &c,
        "return document.querySelectorAll('#actions button.action').length",
    )
    .await;
    assert_eq!(buttons, json!(0), "a viewer gets no lifecycle buttons");
    let run_buttons = js(
        &c,
        "return document.querySelectorAll(\"#patrols button, #runs button[data-op='pause'], #runs button[data-op='resume'], #runs button[data-op='cancel']\").length",
    )
    .await;
    assert_eq!(run_buttons, json!(0), "a viewer gets no run controls");

    // An operator: the run's track and photo footprints on demand, and the run paused
    // from the page.
    sign_in(&c, &base, &op).await;
    click(&c, "nav button[data-tab='runs']").await;
    click(
        &c,
        &format!("#runs li[data-run='{run_id}'] button[data-op='photos']"),
    )
    .await;
    wait_js(
        &c,
        "return gp.layers.footprints.getLayers().length > 0 && gp.layers.footprints.getLayers().every(l => l.getLatLngs && l.getLatLngs()[0].length === 4)",
        Duration::from_secs(20),
        "photo footprints",
    )
    .await;
    wait_js(
        &c,
        "return !!gp.runTrack && gp.runTrack.getLayers().some(l => l.getLatLngs().length > 5)",
        Duration::from_secs(20),
        "the run's recorded track",
    )
    .await;
    click(
        &c,
        &format!("#runs li[data-run='{run_id}'] button[data-op='pause']"),
    )
    .await;
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let r = api(&base, &format!("/runs/{run_id}"), &op).await;
        if r["run"]["held_by"] == json!("值班员") {
            break;
        }
        assert!(
            Instant::now() < until,
            "the pause from the page did not reach the run: {r}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // An alert shows on the map at its point, with where it stands.
    let body = json!({
        "lat": 36.559_101_7, "lon": 103.685_591_8, "category": "fire_smoke", "priority": "routine",
        "source": {"kind": "camera", "id": "CAM-7"},
    });
    let (b, o) = (base.clone(), op.clone());
    let (code, alert) = tokio::task::spawn_blocking(move || {
        send_body("POST", &format!("{b}/api/v1/alerts"), &o, &body.to_string())
    })
    .await
    .unwrap();
    assert_eq!(code, 201, "{alert}");
    wait_js(
        &c,
        &format!(
            "const m = document.querySelector(\"path.incident[data-incident='{}']\"); return !!m && !!m.getAttribute('data-state')",
            alert["id"]
        ),
        Duration::from_secs(20),
        "the alert on the map",
    )
    .await;

    // The page's GCJ-02 shift is the library's, for Chinese base maps.
    let (glat, glon) = gridpatrol::grid::wgs84_to_gcj02(36.56, 103.68);
    let page = js(&c, "return gcj02(36.56, 103.68)").await;
    assert!(
        (page[0].as_f64().unwrap() - glat).abs() < 1e-9
            && (page[1].as_f64().unwrap() - glon).abs() < 1e-9,
        "page {page} against ({glat}, {glon})"
    );
    c.close().await.unwrap();
    drop(serve);
}
