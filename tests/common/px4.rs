//! Real PX4 v1.16 SITL from ../shared/px4-sitl: one instance per test, each with its own
//! instance number (0-9, so its own UDP ports and system id N+1) and GCS port.

use std::path::PathBuf;
use std::process::Command;

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

/// A running PX4 SITL instance; stopped when dropped.
pub struct Px4 {
    launcher: PathBuf,
    pub instance: u8,
    pub gcs_port: u16,
    dir: tempfile::TempDir,
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
        let px4 = Self {
            launcher: launcher.to_path_buf(),
            instance,
            gcs_port,
            dir,
        };
        // A leftover of an earlier run would hold the ports.
        px4.stop();
        let out = Command::new(launcher)
            .args([
                "start",
                "-i",
                &instance.to_string(),
                "--speed",
                &speed.to_string(),
                "--home",
                &format!("{},{},{}", home.0, home.1, home.2),
                "--gcs-port",
                &gcs_port.to_string(),
                "--dir",
                &px4.dir.path().display().to_string(),
            ])
            .output()
            .expect("run px4-sitl");
        assert!(
            out.status.success(),
            "px4-sitl start -i {instance}: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            px4.log()
        );
        px4
    }

    /// PX4's own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("px4.log")).unwrap_or_default()
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

    fn stop(&self) {
        let _ = Command::new(&self.launcher)
            .args([
                "stop",
                "-i",
                &self.instance.to_string(),
                "--dir",
                &self.dir.path().display().to_string(),
            ])
            .output();
    }
}

impl Drop for Px4 {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A UDP port free on 127.0.0.1 now (for a process that binds it itself).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
