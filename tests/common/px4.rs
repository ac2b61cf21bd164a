//! Real PX4 v1.16 SITL from ../shared/px4-sitl: one instance per test, each with its own
//! instance number (0-9, so its own UDP ports and system id N+1) and GCS port.

use gridpatrol_sim::px4_sitl::Px4Instance;
use std::path::PathBuf;

/// The launcher, or `None` (after one line saying so) where it is absent. In CI an absent
/// PX4 fails the test instead: CI must fly it.
pub fn launcher() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/px4-sitl/px4-sitl");
    if p.exists() {
        Some(p)
    } else {
        super::skip(&format!("real PX4 SITL: {} is absent", p.display()));
        None
    }
}

/// A running PX4 SITL instance in its own temporary directory; stopped when dropped.
pub struct Px4 {
    sitl: Px4Instance,
    pub instance: u8,
    pub gcs_port: u16,
    _dir: tempfile::TempDir,
}

/// The sample district's dock, where the instances stand unless told otherwise.
pub const DOCK: (f64, f64, f64) = (36.56, 103.679329, 1800.0);

impl Px4 {
    /// Starts instance `instance` at `speed`× at `home`, sending its GCS link to
    /// 127.0.0.1:`gcs_port`; returns once PX4 says it is ready for takeoff.
    pub fn start(
        launcher: &std::path::Path,
        instance: u8,
        speed: f64,
        home: (f64, f64, f64),
        gcs_port: u16,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let sitl = Px4Instance::start(launcher, instance, speed, home, gcs_port, dir.path())
            .unwrap_or_else(|e| {
                let log = std::fs::read_to_string(dir.path().join("px4.log")).unwrap_or_default();
                panic!("{e:#}\n{log}")
            });
        Self {
            sitl,
            instance,
            gcs_port,
            _dir: dir,
        }
    }

    /// PX4's own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.sitl.dir.join("px4.log")).unwrap_or_default()
    }

    /// Waits (at most `timeout`) for PX4's log to contain `text`.
    pub async fn wait_log(&self, text: &str, timeout: std::time::Duration) -> bool {
        let until = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < until {
            if self.log().contains(text) {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        false
    }

    /// The system id PX4 gives this instance.
    pub fn sysid(&self) -> u8 {
        self.instance + 1
    }
}

/// A UDP port free on 127.0.0.1 now (for a process that binds it itself).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A ground tool's session (`session(port)` gives its transcript for whatever sends its
/// GCS link to `port`) against the simulator at 2×, then, as the control, against real PX4
/// SITL instance 0 at 2×; the second is None where PX4 is absent.
pub async fn on_sim_then_px4<F>(session: F) -> (String, Option<String>)
where
    F: Fn(u16) -> String + Clone + Send + 'static,
{
    let port = free_udp_port();
    let sim = gridpatrol_sim::Sim::start(gridpatrol_sim::SimConfig {
        gcs: ([127, 0, 0, 1], port).into(),
        base_port: None,
        speed: 2.0,
        ..Default::default()
    })
    .await
    .unwrap();
    let s = session.clone();
    let on_sim = tokio::task::spawn_blocking(move || s(port)).await.unwrap();
    drop(sim);
    let Some(l) = launcher() else {
        return (on_sim, None);
    };
    let port = free_udp_port();
    let px4 = Px4::start(&l, 0, 2.0, DOCK, port);
    let on_px4 = tokio::task::spawn_blocking(move || session(port))
        .await
        .unwrap();
    drop(px4);
    (on_sim, Some(on_px4))
}

/// A share of the CPU for PX4 instances flying at `speeds`, held while the test runs.
///
/// PX4 SITL's cost grows with its speed factor (about half a core at 8× here), and
/// several instances at 8× beside their ground stations on two loaded cores stall PX4
/// past its mission-protocol timeout, so transfers fail at random ("Upload rejected ...
/// MAV_MISSION_ERROR"). The tests of one binary share a budget of 16 speed units, about
/// one core of PX4: two instances at 8× fly at once, one at 10× flies beside one at 3×.
pub async fn cpu_share(speeds: &[f64]) -> tokio::sync::SemaphorePermit<'static> {
    const BUDGET: u32 = 16;
    static SHARE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(BUDGET as usize);
    let units = speeds
        .iter()
        .map(|s| s.ceil() as u32)
        .sum::<u32>()
        .clamp(1, BUDGET);
    SHARE
        .acquire_many(units)
        .await
        .expect("the semaphore is never closed")
}
