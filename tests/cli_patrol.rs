//! `gridpatrol fly` and `gridpatrol events …` run as an operator runs them: a patrol
//! flown by the binary against the simulator with a webhook platform listening, then the
//! events worked through the loop at the command line; and Ctrl-C during a patrol.

mod common;

use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use common::patrol::{fly_cmd, sim_for_cli, wait_for_captures, HOME};

fn gridpatrol(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gridpatrol"))
        .args(args)
        .output()
        .expect("run gridpatrol")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fly_files_events_the_webhook_hears_them_and_the_loop_closes_at_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, grids, _) = sim_for_cli(dir.path(), 70.0, 6, 21, 20.0).await;
    let grids = grids.display().to_string();
    // The grid-management platform.
    let heard: Arc<Mutex<Vec<serde_json::Value>>> = Default::default();
    let h = heard.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |body: String| {
            let h = h.clone();
            async move {
                h.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let platform = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let data = dir.path().join("data").display().to_string();
    let conn = format!("udpout:{}", sim.vehicles()[0].local_addr);
    let hook = format!("http://{platform}/events");
    let mut fly = fly_cmd(
        std::path::Path::new(&grids),
        std::path::Path::new(&data),
        &conn,
    );
    fly.args(["--webhook", &hook, "--threshold", "fire_smoke=0.3"]);
    let out = tokio::task::spawn_blocking(move || fly.output().unwrap())
        .await
        .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("new events") && t.contains("delivered"), "{t}");
    let list = gridpatrol(&["events", "--data", &data, "list"]);
    let lines: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert!(lines.len() >= 5, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("reported") && l.contains("T-1")),
        "{lines:?}"
    );
    let created = heard
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "created")
        .count();
    assert_eq!(created, lines.len(), "the platform heard of every event");
    // The loop, at the command line.
    let run = |args: &[&str]| {
        let mut a = vec!["events", "--data", &data];
        a.extend_from_slice(args);
        let o = gridpatrol(&a);
        (o.status.success(), text(&o))
    };
    let (ok, t) = run(&["close", "1", "--by", "中心"]);
    assert!(!ok && t.contains("cannot close it"), "{t}");
    for step in [
        vec!["sign", "1", "--by", "赵艳"],
        vec![
            "dispatch",
            "1",
            "--by",
            "赵艳",
            "--department",
            "城管",
            "--handler",
            "王",
        ],
        vec!["start", "1", "--by", "王"],
        vec![
            "transfer",
            "1",
            "--by",
            "王",
            "--department",
            "环卫所",
            "--handler",
            "李",
        ],
        vec!["start", "1", "--by", "李"],
        vec![
            "resolve",
            "1",
            "--by",
            "李",
            "--feedback",
            "已清理",
            "--photo",
            "after.jpg",
        ],
        vec!["evaluate", "1", "--by", "赵艳", "--rating", "5"],
        vec!["close", "1", "--by", "中心", "--note", "结案"],
    ] {
        let (ok, t) = run(&step);
        assert!(ok, "{step:?}: {t}");
    }
    let (_, show) = run(&["show", "1"]);
    for want in [
        "closed",
        "环卫所",
        "已清理",
        "signed_for → dispatched",
        "cover photo",
        "photo 1/",
    ] {
        assert!(show.contains(want), "{want} not in:\n{show}");
    }
    let (_, stats) = run(&["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["closed"], 1);
    assert_eq!(stats["drone_share"], 1.0);
    // GeoJSON in both datums: GCJ-02 is WGS-84 shifted by a few hundred metres here.
    let (w, g) = (dir.path().join("w.geojson"), dir.path().join("g.geojson"));
    run(&["export", "-o", w.to_str().unwrap()]);
    run(&["export", "--datum", "gcj02", "-o", g.to_str().unwrap()]);
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (w, g) = (read(&w), read(&g));
    assert_eq!(w["features"].as_array().unwrap().len(), lines.len());
    let lon = |v: &serde_json::Value| {
        v["features"][0]["geometry"]["coordinates"][0]
            .as_f64()
            .unwrap()
    };
    let shift_m = (lon(&g) - lon(&w)) * 111_320.0 * HOME.0.to_radians().cos();
    assert!(shift_m.abs() > 100.0 && shift_m.abs() < 1000.0, "{shift_m}");
    // Every change went to the platform too, in order.
    let kinds: Vec<String> = heard
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m["event"]["id"] == 1)
        .map(|m| m["kind"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(kinds[0], "created");
    drop(sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_pauses_the_patrol_and_brings_the_vehicle_home() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, grids, _) = sim_for_cli(dir.path(), 150.0, 4, 21, 10.0).await;
    let data = dir.path().join("data");
    let conn = format!("udpout:{}", sim.vehicles()[0].local_addr);
    let mut child = fly_cmd(&grids, &data, &conn)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let db = data.join("gridpatrol.db");
    wait_for_captures(&db, 5, &mut child).await;
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let t = text(&out);
    assert!(
        t.contains("Ctrl-C: pausing every mission and sending RTL"),
        "{t}"
    );
    assert!(
        t.contains("ABORTED") && t.contains("returned, landed and disarmed"),
        "{t}"
    );
    assert!(
        !out.status.success(),
        "an aborted patrol is not a finished one"
    );
    // What was photographed before the abort was still filed.
    let store = gridpatrol::events::EventStore::open(&db).unwrap();
    let (pending, processed, _) = store.capture_counts().unwrap();
    assert_eq!(pending, 0);
    assert!(processed >= 5);
    drop(sim);
}
