//! Real PX4 SITL through its `px4-sitl` launcher (PX4 v1.16 with its SIH quadrotor, see
//! `../shared/px4-sitl/README.md`): for `gridpatrol demo --px4` and the tests that fly it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Where `px4-sitl` is looked for when `--px4` names none: `$PX4_SITL`, then
/// `../shared/px4-sitl/px4-sitl` (the project's shared folder), then `px4-sitl` on PATH.
pub fn find_launcher(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        if p.exists() {
            return Ok(p.to_path_buf());
        }
        bail!("{}: no such PX4 SITL launcher", p.display());
    }
    let mut tried = Vec::new();
    if let Some(p) = std::env::var_os("PX4_SITL") {
        tried.push(PathBuf::from(p));
    }
    tried.push(PathBuf::from("../shared/px4-sitl/px4-sitl"));
    if let Some(path) = std::env::var_os("PATH") {
        tried.extend(std::env::split_paths(&path).map(|d| d.join("px4-sitl")));
    }
    tried.iter().find(|p| p.is_file()).cloned().context(
        "px4-sitl not found (looked at $PX4_SITL, ../shared/px4-sitl/px4-sitl and PATH); name it: --px4 PATH",
    )
}

/// A running PX4 SITL instance, stopped when dropped.
pub struct Px4Instance {
    launcher: PathBuf,
    pub instance: u8,
    pub dir: PathBuf,
}

impl Px4Instance {
    /// Starts instance `instance` (system id instance + 1) at `speed`× at `home`
    /// (lat, lon, alt m AMSL), its GCS link sending to 127.0.0.1:`gcs_port`, its files in
    /// `dir`; returns once PX4 is ready for takeoff.
    pub fn start(
        launcher: &Path,
        instance: u8,
        speed: f64,
        home: (f64, f64, f64),
        gcs_port: u16,
        dir: &Path,
    ) -> Result<Self> {
        // A leftover of an earlier run in `dir` would hold the instance's ports.
        stop(launcher, instance, dir);
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
                &dir.display().to_string(),
            ])
            .output()
            .with_context(|| format!("running {}", launcher.display()))?;
        if !out.status.success() {
            bail!(
                "PX4 SITL instance {instance} did not start: {}{} (its log: {})",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                dir.join("px4.log").display()
            );
        }
        Ok(Self {
            launcher: launcher.to_path_buf(),
            instance,
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for Px4Instance {
    fn drop(&mut self) {
        stop(&self.launcher, self.instance, &self.dir);
    }
}

fn stop(launcher: &Path, instance: u8, dir: &Path) {
    let _ = Command::new(launcher)
        .args([
            "stop",
            "-i",
            &instance.to_string(),
            "--dir",
            &dir.display().to_string(),
        ])
        .output();
}
