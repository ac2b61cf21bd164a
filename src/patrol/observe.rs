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
