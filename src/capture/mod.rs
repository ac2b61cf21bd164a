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

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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

/// Images stored by the SHA-256 of their bytes: `DIR/ab/abcdef….jpg`. Storing the same
/// image twice is a no-op, and a stored file never changes.
#[derive(Clone, Debug)]
pub struct ImageStore {
    dir: PathBuf,
}

impl ImageStore {
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where an image with this hash lives.
    pub fn path_of(&self, sha: &str) -> PathBuf {
        self.dir
            .join(sha.get(..2).unwrap_or("00"))
            .join(format!("{sha}.jpg"))
    }

    /// Stores `bytes`, returning their hex SHA-256. Written to a temporary file and renamed,
    /// so a crash never leaves half an image under its hash.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let sha = hex(&Sha256::digest(bytes));
        let path = self.path_of(&sha);
        if path.exists() {
            return Ok(sha);
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = (|| {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            // On disk before its hash is recorded: a power cut must not leave the store
            // pointing at an empty file.
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if written.is_err() {
            // A full disk leaves half a file: give its space back for the retry.
            let _ = std::fs::remove_file(&tmp);
        }
        written.map(|()| sha)
    }

    pub fn get(&self, sha: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path_of(sha))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    fn the_store_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let a = s.put(b"one image").unwrap();
        let b = s.put(b"one image").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(s.get(&a).unwrap(), b"one image");
        assert_ne!(s.put(b"another").unwrap(), a);
    }

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
