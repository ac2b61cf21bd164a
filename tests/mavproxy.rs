//! MAVProxy, the console ground station, on the simulator's GCS link as on real PX4's: it
//! finds the autopilot, names its mode, loads all 900 parameters (after its MAVLink FTP probe
//! for `@PARAM/param.pck` is refused), and runs `param show`, `wp list`, `wp load`, a mode
//! change and `fence list`. The two transcripts must be the same.

mod common;

use std::path::Path;

use common::px4::on_sim_then_px4;

/// The script's transcript against whatever sends its GCS link to `port`.
fn session(python: &Path, port: u16) -> String {
    let state = tempfile::tempdir().unwrap();
    let port = port.to_string();
    common::run_tool(
        python,
        "mavproxy_session.py",
        &[port.as_ref(), state.path().as_os_str()],
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mavproxy_sees_the_simulator_as_it_sees_px4() {
    let Some(python) = common::python_with(&["pymavlink", "MAVProxy"]) else {
        return;
    };
    let (on_sim, on_px4) = on_sim_then_px4(move |port| session(&python, port)).await;
    for line in [
        "autopilot detected",
        "mode LOITER",
        "parameters received 900",
        "param show MPC_XY_CRUISE 5.0",
        "wp load ack ACCEPTED",
        "wp list count 4",
        "wp 16 frame 6 north 67 m east 0 m alt 30",
        "DO_SET_MODE AUTO.MISSION ack ACCEPTED",
        "mode MISSION",
        "fence list count 0",
    ] {
        assert!(on_sim.contains(line), "no `{line}` in:\n{on_sim}");
    }
    // The control: the same session against real PX4 says the same, line for line.
    if let Some(on_px4) = on_px4 {
        assert_eq!(on_sim, on_px4, "simulator (left) and PX4 (right) differ");
    }
}
