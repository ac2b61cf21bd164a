//! PX4's own SDK flies the simulator: MAVSDK (the gRPC Python wrapper, mavsdk_server 4.0.5)
//! connects on the API link, waits for health all OK, uploads four waypoints, arms, starts
//! the mission and sees it finished and landed. The same script against real PX4 v1.16
//! SITL is the control: if it fails there, the script is wrong, not the simulator.

mod common;

use std::path::Path;
use std::time::Duration;

use common::px4::{free_udp_port, launcher, Px4, DOCK};
use gridpatrol_sim::{Sim, SimConfig};

/// Runs the script against a vehicle whose API link sends to `port`; its stdout.
fn fly(python: &Path, port: u16, timeout: Duration) -> String {
    let grpc = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let address = format!("udpin://127.0.0.1:{port}");
    let (grpc, timeout) = (grpc.to_string(), timeout.as_secs().to_string());
    common::run_tool(
        python,
        "mavsdk_fly.py",
        &[address.as_ref(), grpc.as_ref(), timeout.as_ref()],
    )
    .unwrap_or_else(|e| panic!("MAVSDK did not fly it:\n{e}"))
}

fn assert_flown(out: &str) {
    for stage in [
        "connected",
        "health ok",
        "uploaded",
        "armed",
        "started",
        "finished 4 4",
        "landed",
    ] {
        assert!(out.contains(stage), "no `{stage}` in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mavsdk_flies_the_simulator_on_its_api_link() {
    let Some(python) = common::python_with(&["mavsdk_grpc"]) else {
        return;
    };
    let port = free_udp_port();
    let _sim = Sim::start(SimConfig {
        base_port: None,
        api_link: Some((0, port)),
        speed: 4.0,
        ..Default::default()
    })
    .await
    .unwrap();
    let out = tokio::task::spawn_blocking(move || fly(&python, port, Duration::from_secs(120)))
        .await
        .unwrap();
    assert_flown(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mavsdk_flies_real_px4_the_control() {
    let Some(python) = common::python_with(&["mavsdk_grpc"]) else {
        return;
    };
    let Some(l) = launcher() else { return };
    // Instance 0's API link sends to 14540; its GCS link goes to a port nobody reads.
    let px4 = Px4::start(&l, 0, 4.0, DOCK, free_udp_port());
    let out = tokio::task::spawn_blocking(move || fly(&python, 14540, Duration::from_secs(120)))
        .await
        .unwrap();
    // MAVSDK saw it land and disarm (PX4's own log is block-buffered, so not yet there).
    assert_flown(&out);
    drop(px4);
}
