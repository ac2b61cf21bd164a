//! Watching a run as it happens: the run calls a `RunObserver` with the plan, each
//! vehicle's state, each photo and what was filed from it. The Rerun recorder
//! (`rerun_rec`, cargo feature `rerun`) is one observer; a live map would be another.

use crate::capture::Capture;
use crate::events::store::FileOutcome;
use crate::events::FiledDetection;
use crate::geotag::Intrinsics;
use crate::grid::GridMap;
use crate::vehicle::Telemetry;

use super::SortieJob;

/// Every method has a do-nothing default, so an observer implements what it shows.
pub trait RunObserver: Send + Sync {
    /// The district and the planned sorties, once at the start.
    fn plan(&self, _map: &GridMap, _jobs: &[SortieJob]) {}
    /// A vehicle's latest state (about twice a second).
    fn vehicle(&self, _t: &Telemetry) {}
    /// A photo analysed: its image, camera, ground footprint (lat, lon corners) and what
    /// was found in it, placed on the ground.
    fn photo(
        &self,
        _capture: &Capture,
        _jpeg: &[u8],
        _intrinsics: &Intrinsics,
        _footprint: &[(f64, f64)],
        _found: &[FiledDetection],
    ) {
    }
    /// What filing the photo did (events created, merged, confirmed), with the positions
    /// of the events it touched: (event id, category, lat, lon).
    fn filed(
        &self,
        _capture: &Capture,
        _outcome: &FileOutcome,
        _events: &[(i64, String, f64, f64)],
    ) {
    }
}

/// Keeps a vehicle's trajectory in the run's store while it flies: a point per second of
/// the vehicle's own clock (a SITL at 40× gives 40 a wall-clock second) while it is armed.
/// Runs until dropped or the vehicle is gone.
pub async fn record_track(
    v: crate::vehicle::Vehicle,
    store: std::sync::Arc<crate::events::store::EventStore>,
    run: String,
) {
    let mut w = v.watch();
    let mut last: Option<std::time::Instant> = None;
    while w.changed().await.is_ok() {
        let point = {
            let t = w.borrow_and_update();
            let gap =
                std::time::Duration::from_secs_f64(1.0 / t.clock_rate.unwrap_or(1.0).max(1.0));
            let due = last.is_none_or(|l| l.elapsed() >= gap);
            match (t.armed && due, t.position.as_ref()) {
                (true, Some(p)) => crate::events::store::TrackPoint {
                    sysid: t.sysid,
                    t_us: crate::events::now_us(),
                    lat: p.lat,
                    lon: p.lon,
                    alt_rel: f64::from(p.alt_rel),
                    battery: t.battery.remaining,
                },
                _ => continue,
            }
        };
        last = Some(std::time::Instant::now());
        let s = store.clone();
        let r = run.clone();
        // SQLite off the async workers.
        let res = tokio::task::spawn_blocking(move || s.add_track_point(&r, &point)).await;
        if let Ok(Err(e)) = res {
            tracing::warn!("run {run}: keeping its track: {e}");
        }
    }
}
