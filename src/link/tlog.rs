//! The telemetry log (.tlog) as pymavlink, MAVProxy and QGroundControl write it:
//! every frame preceded by its receive time as an 8-byte big-endian count of
//! microseconds since the Unix epoch.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::frame::{parse_one_keep_unknown, Parsed, Skip};

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Appends frames to a .tlog file. Shared by every link of a hub.
pub struct TlogWriter {
    path: PathBuf,
    out: Mutex<BufWriter<File>>,
}

impl TlogWriter {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            out: Mutex::new(BufWriter::with_capacity(1 << 16, File::create(path)?)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one raw frame with the current time.
    pub fn record(&self, frame: &[u8]) {
        self.record_at(now_us(), frame);
    }

    pub fn record_at(&self, time_us: u64, frame: &[u8]) {
        if let Ok(mut w) = self.out.lock() {
            // A full disk must not take the link down; the log is best effort.
            let _ = w.write_all(&time_us.to_be_bytes());
            let _ = w.write_all(frame);
        }
    }

    pub fn flush(&self) {
        if let Ok(mut w) = self.out.lock() {
            let _ = w.flush();
        }
    }
}

impl Drop for TlogWriter {
    fn drop(&mut self) {
        self.flush();
    }
}

/// One entry of a tlog: a frame with its time, or something skipped.
#[derive(Debug, PartialEq, Eq)]
pub struct TlogEntry {
    pub time_us: u64,
    pub item: Parsed,
}

/// Iterates a tlog held in memory. Truncated or corrupt parts are reported, never panic.
pub struct TlogReader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> TlogReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }
}

impl Iterator for TlogReader<'_> {
    type Item = TlogEntry;

    fn next(&mut self) -> Option<TlogEntry> {
        let rest = &self.data[self.at..];
        if rest.is_empty() {
            return None;
        }
        if rest.len() < 8 {
            self.at = self.data.len();
            return Some(TlogEntry {
                time_us: 0,
                item: Parsed::Skipped(Skip::Truncated),
            });
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&rest[..8]);
        let time_us = u64::from_be_bytes(ts);
        let body = &rest[8..];
        match parse_one_keep_unknown(body) {
            Some((Parsed::Frame(f), n)) => {
                self.at += 8 + n;
                Some(TlogEntry {
                    time_us,
                    item: Parsed::Frame(f),
                })
            }
            Some((Parsed::Skipped(s), _)) => {
                // Not a frame after the timestamp: resync one byte further on.
                self.at += 1;
                Some(TlogEntry {
                    time_us,
                    item: Parsed::Skipped(s),
                })
            }
            None => {
                self.at = self.data.len();
                Some(TlogEntry {
                    time_us,
                    item: Parsed::Skipped(Skip::Truncated),
                })
            }
        }
    }
}
