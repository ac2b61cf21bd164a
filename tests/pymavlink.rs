//! pymavlink, the library most PX4 scripts are written with, on the simulator's GCS link
//! as on real PX4's: the heartbeat and mode name, a mission written and read back
//! ("wp list"), and a mode change by name. The two transcripts must be the same.

mod common;

use std::path::Path;

use common::px4::{free_udp_port, launcher, Px4, DOCK};
use gridpatrol_sim::{Sim, SimConfig};

/// The script's transcript against whatever sends its GCS link to `port`.
fn session(python: &Path, port: u16) -> String {
    let port = port.to_string();
    common::run_tool(python, "pymavlink_session.py", &[port.as_ref()])
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymavlink_sees_the_simulator_as_it_sees_px4() {
    let Some(python) = common::python_with(&["pymavlink"]) else {
        return;
    };
    let port = free_udp_port();
    let sim = Sim::start(SimConfig {
        gcs: ([127, 0, 0, 1], port).into(),
        base_port: None,
        speed: 2.0,
        ..Default::default()
    })
    .await
    .unwrap();
    let p = python.clone();
    let on_sim = tokio::task::spawn_blocking(move || session(&p, port))
        .await
        .unwrap();
    drop(sim);
    for line in [
        "heartbeat type 2 autopilot 12",
        "mode LOITER",
        "upload ack 0",
        "wp list count 3",
        "set_mode MISSION ack 176 0",
        "mode MISSION",
    ] {
        assert!(on_sim.contains(line), "no `{line}` in:\n{on_sim}");
    }
    // The control: the same script against real PX4 says the same, line for line.
    let Some(l) = launcher() else { return };
    let port = free_udp_port();
    let px4 = Px4::start(&l, 0, 2.0, DOCK, port);
    let on_px4 = tokio::task::spawn_blocking(move || session(&python, port))
        .await
        .unwrap();
    drop(px4);
    assert_eq!(on_sim, on_px4, "simulator (left) and PX4 (right) differ");
}
