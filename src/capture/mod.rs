//! Captures: what CAMERA_IMAGE_CAPTURED announced, the image fetched from where it
//! says, stored content-addressed with GPS EXIF tags, and the bookkeeping that notices
//! missing image indices so they can be asked for again.

pub mod exif;

/// A JPEG's pixel size from its header (None if it has none that can be read).
pub fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    let mut d = jpeg_decoder::Decoder::new(std::io::Cursor::new(jpeg));
    d.read_info().ok()?;
    d.info().map(|i| (u32::from(i.width), u32::from(i.height)))
}
pub mod fetch;
pub mod images;

pub use images::{ImageSpec, ImageStore};

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::vehicle::ImageCapture;

/// One photo as the vehicle announced it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capture {
    pub sysid: u8,
    pub index: i32,
    /// Microseconds since the Unix epoch.
    pub time_utc_us: u64,
    /// Degrees, WGS-84.
    pub lat: f64,
    pub lon: f64,
    /// Metres above mean sea level and above home.
    pub alt_msl: f64,
    pub alt_rel: f64,
    /// Camera orientation (w, x, y, z), NED.
    pub q: [f64; 4],
    pub file_url: String,
}

impl Capture {
    pub fn from_mavlink(sysid: u8, c: &ImageCapture) -> Self {
        Self {
            sysid,
            index: c.index,
            time_utc_us: c.time_utc_us,
            lat: c.lat,
            lon: c.lon,
            alt_msl: f64::from(c.alt_msl),
            alt_rel: f64::from(c.alt_rel),
            q: c.q.map(f64::from),
            file_url: c.file_url.clone(),
        }
    }
}

/// Which image indices of one camera have been seen, to find the ones that were not.
#[derive(Clone, Debug, Default)]
pub struct IndexTracker {
    seen: BTreeSet<i32>,
    /// The camera's image count when the run began: lower indices are not ours.
    floor: Option<i32>,
    /// The highest index the camera says it has taken.
    ceiling: Option<i32>,
}

impl IndexTracker {
    /// Records an index; false when it was seen before (a duplicate).
    pub fn see(&mut self, index: i32) -> bool {
        self.seen.insert(index)
    }

    /// The camera had taken `count` images when this run began (CAMERA_CAPTURE_STATUS):
    /// the run's own start at index `count`.
    pub fn set_floor(&mut self, count: i32) {
        self.floor = Some(count);
    }

    /// The camera says it has taken `count` images (CAMERA_CAPTURE_STATUS): any index up
    /// to `count - 1` not seen is missing, the last ones too.
    pub fn expect_count(&mut self, count: i32) {
        self.ceiling = Some(count - 1);
    }

    /// Indices of this run that never arrived: from the floor (or the lowest seen) to the
    /// highest seen or said taken.
    pub fn missing(&self) -> Vec<i32> {
        let Some(lo) = self.floor.or(self.seen.first().copied()) else {
            return Vec::new();
        };
        let hi = self
            .seen
            .last()
            .copied()
            .max(self.ceiling)
            .unwrap_or(lo - 1);
        (lo..=hi).filter(|i| !self.seen.contains(i)).collect()
    }

    pub fn count(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_and_a_count_bound_the_missing() {
        let mut t = IndexTracker::default();
        t.set_floor(10);
        assert!(t.missing().is_empty(), "nothing seen, nothing said taken");
        t.see(12);
        assert_eq!(t.missing(), vec![10, 11]);
        t.expect_count(15);
        assert_eq!(t.missing(), vec![10, 11, 13, 14]);
    }

    #[test]
    fn missing_indices_are_the_gaps_below_the_highest() {
        let mut t = IndexTracker::default();
        for i in [0, 1, 4, 2, 7] {
            assert!(t.see(i));
        }
        assert!(!t.see(4), "a duplicate");
        assert_eq!(t.missing(), vec![3, 5, 6]);
    }
}
