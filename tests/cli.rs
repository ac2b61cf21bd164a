//! The gridpatrol binary, run as an operator runs it, against the simulator.

use std::process::Command;

use gridpatrol_sim::{Sim, SimConfig};

fn gridpatrol(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gridpatrol"))
        .args(args)
        .output()
        .expect("run gridpatrol");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_address_lists_the_accepted_forms() {
    let (ok, _, err) = gridpatrol(&["status", "--connect", "udp-in:1.2.3.4", "--wait", "1"]);
    assert!(!ok);
    assert!(
        err.contains("udpin:HOST:PORT") && err.contains("serial:DEVICE:BAUD"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_mission_upload_download_clear_over_udpout() {
    // The simulated vehicle answers whoever talks to it, as PX4 does on its UDP links.
    let sim = Sim::start(SimConfig {
        gcs: "127.0.0.1:9".parse().unwrap(),
        base_port: None,
        ..Default::default()
    })
    .await
    .unwrap();
    let conn = format!("udpout:{}", sim.vehicles()[0].local_addr);
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(
        &plan,
        r#"{"mission_type":"mission","items":[
            {"command":22,"frame":3,"params":[0,0,0,null,36.56,103.68,30]},
            {"command":16,"frame":3,"params":[0,0,0,null,36.561,103.68,30]},
            {"command":20,"frame":2,"params":[0,0,0,0,0,0,0]}]}"#,
    )
    .unwrap();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            gridpatrol(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let (ok, out, err) = run(vec![
        "status".into(),
        "--connect".into(),
        conn.clone(),
        "--wait".into(),
        "5".into(),
    ])
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(
        out.contains("vehicle   1") && out.contains("AUTO.LOITER"),
        "{out}"
    );
    let (ok, out, err) = run(vec![
        "mission".into(),
        "upload".into(),
        "--connect".into(),
        conn.clone(),
        plan.display().to_string(),
    ])
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("uploaded 3"), "{out}");
    let back = dir.path().join("back.json");
    let (ok, _, err) = run(vec![
        "mission".into(),
        "download".into(),
        "--connect".into(),
        conn.clone(),
        back.display().to_string(),
    ])
    .await
    .unwrap();
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&back).unwrap();
    assert!(text.contains("36.561"), "{text}");
    // A QGroundControl .plan from the planner: its mission and its geofence go up.
    let qgc = dir.path().join("cell.plan");
    let grids = concat!(env!("CARGO_MANIFEST_DIR"), "/missions/wenqu.geojson");
    let (ok, out, err) = run(vec![
        "plan".into(),
        grids.into(),
        "--cells".into(),
        "WQ-24".into(),
        "--battery-min".into(),
        "60".into(),
        "-o".into(),
        qgc.display().to_string(),
    ])
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("1 sortie(s)"), "{out}");
    let (ok, out, err) = run(vec![
        "mission".into(),
        "upload".into(),
        "--connect".into(),
        conn.clone(),
        qgc.display().to_string(),
    ])
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(
        out.contains("Mission items") && out.contains("Fence items"),
        "{out}"
    );
    let (ok, _, err) = run(vec![
        "mission".into(),
        "clear".into(),
        "--connect".into(),
        conn.clone(),
    ])
    .await
    .unwrap();
    assert!(ok, "{err}");
    drop(sim);
}
