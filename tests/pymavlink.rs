//! pymavlink, the library most PX4 scripts are written with, on the simulator's GCS link
//! as on real PX4's: the heartbeat and mode name, a mission written and read back
//! ("wp list"), and a mode change by name. The two transcripts must be the same.

mod common;

use std::path::Path;

use common::px4::on_sim_then_px4;

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
    let (on_sim, on_px4) = on_sim_then_px4(move |port| session(&python, port)).await;
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
    if let Some(on_px4) = on_px4 {
        assert_eq!(on_sim, on_px4, "simulator (left) and PX4 (right) differ");
    }
}
