//! The conformance suite: one scripted ground-station session (pymavlink,
//! tests/tools/conformance_session.py) against real PX4 v1.16 SITL and against
//! gridpatrol-sim, and the two transcripts compared fact by fact
//! (tests/tools/conformance_compare.py): connect, streams and their rates, requesting and
//! stopping messages, mission/fence/rally transfers with their error paths, the parameter
//! list (names, types, values, order) with reads and sets, an arm refusal, mode changes, a
//! mission flown to landing, takeoff and RTL, and data-link loss (Hold, then the return). A
//! difference not in tests/conformance/allowed.toml fails it. With GRIDPATROL_UPDATE_DOCS=1
//! the table in docs/simulator.md is rewritten from this run.

mod common;

use std::path::{Path, PathBuf};

use common::px4::{free_udp_port, launcher, Px4, DOCK};
use gridpatrol_sim::{Sim, SimConfig};

const DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Runs the session against whatever sends its GCS link to `port`; the transcript's path.
fn session(python: &Path, port: u16, out: PathBuf) -> PathBuf {
    let port_arg = port.to_string();
    common::run_tool(
        python,
        "conformance_session.py",
        &[port_arg.as_ref(), out.as_os_str()],
    )
    .unwrap_or_else(|e| panic!("session on port {port} failed:\n{e}"));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_answers_a_scripted_session_as_px4_does() {
    let Some(python) = common::python_with(&["pymavlink"]) else {
        return;
    };
    let Some(l) = launcher() else { return };
    // Kept after the run for a look: target/tmp/conformance/{px4,sim}.json and the table.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("conformance");
    std::fs::create_dir_all(&dir).unwrap();
    let (px4_port, sim_port) = (free_udp_port(), free_udp_port());
    let px4 = Px4::start(&l, 0, 4.0, DOCK, px4_port);
    let _sim = Sim::start(SimConfig {
        gcs: ([127, 0, 0, 1], sim_port).into(),
        base_port: None,
        speed: 4.0,
        home: DOCK,
        ..Default::default()
    })
    .await
    .unwrap();
    let (p, out) = (python.clone(), dir.join("px4.json"));
    let on_px4 = tokio::task::spawn_blocking(move || session(&p, px4_port, out));
    let (p, out) = (python.clone(), dir.join("sim.json"));
    let on_sim = tokio::task::spawn_blocking(move || session(&p, sim_port, out));
    let (on_px4, on_sim) = (on_px4.await.unwrap(), on_sim.await.unwrap());
    drop(px4);
    let table = dir.join("conformance.md");
    let allowed = PathBuf::from(DIR).join("tests/conformance/allowed.toml");
    let doc = PathBuf::from(DIR).join("docs/simulator.md");
    let mut args = vec![
        on_px4.as_os_str(),
        on_sim.as_os_str(),
        allowed.as_os_str(),
        table.as_os_str(),
    ];
    if std::env::var_os("GRIDPATROL_UPDATE_DOCS").is_some() {
        args.push(doc.as_os_str());
    }
    match common::run_tool(&python, "conformance_compare.py", &args) {
        Ok(summary) => println!("{summary}"),
        Err(e) => panic!(
            "{e}\n{}",
            std::fs::read_to_string(&table).unwrap_or_default()
        ),
    }
}
