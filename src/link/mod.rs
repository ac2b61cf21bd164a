//! Links to vehicles: address strings, transports, framing, signing, the hub that fans
//! frames out to subscribers and routes ours back, the GCS heartbeat, and the tlog.

mod addr;
pub mod frame;
mod hub;
mod signing;
pub mod tlog;
pub mod transport;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use mavlink::dialects::common::MavMessage;
use serde::Serialize;

pub use addr::{AddrError, LinkAddr, ACCEPTED_FORMS};
pub use frame::{Frame, FrameParser, Parsed, Skip};
pub use hub::{gcs_heartbeat, Hub, HubConfig, LinkConfig, LinkInfo, GCS_COMPID, GCS_SYSID};
pub use signing::{LinkSigning, SigningKey};
pub use tlog::{TlogReader, TlogWriter};

/// Index of a link within its hub.
pub type LinkId = usize;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Addr(#[from] AddrError),
    #[error("cannot open {addr}: {source}")]
    Open {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "serial device {0} does not exist (is the radio plugged in? `ls /dev/tty*` lists devices)"
    )]
    NoSerialDevice(String),
    #[error("signing key file {path}: {problem}")]
    KeyFile { path: String, problem: String },
    #[error("cannot write tlog {path}: {source}")]
    Tlog {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A decoded frame as the hub hands it to subscribers.
#[derive(Debug)]
pub struct Inbound {
    pub link: LinkId,
    pub frame: Frame,
    pub msg: MavMessage,
    pub at: Instant,
}

/// Counters of one link. Everything skipped is counted here, nothing is fatal.
#[derive(Default, Debug)]
pub struct LinkStats {
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bad_crc: AtomicU64,
    pub unknown_id: AtomicU64,
    pub garbage_bytes: AtomicU64,
    pub truncated: AtomicU64,
    pub bad_flags: AtomicU64,
    pub bad_signature: AtomicU64,
    pub decode_errors: AtomicU64,
    unknown_ids: Mutex<BTreeMap<u32, u64>>,
}

/// A copy of [`LinkStats`] at one moment.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct LinkStatsSnapshot {
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bad_crc: u64,
    pub unknown_id: u64,
    pub garbage_bytes: u64,
    pub truncated: u64,
    pub bad_flags: u64,
    pub bad_signature: u64,
    pub decode_errors: u64,
    /// Unknown message ids seen, with their counts.
    pub unknown_ids: BTreeMap<u32, u64>,
}

impl LinkStats {
    pub fn count_skip(&self, skip: Skip) {
        let c = match skip {
            Skip::BadCrc => &self.bad_crc,
            Skip::UnknownId(id) => {
                if let Ok(mut m) = self.unknown_ids.lock() {
                    *m.entry(id).or_default() += 1;
                }
                &self.unknown_id
            }
            Skip::Garbage(n) => {
                self.garbage_bytes.fetch_add(n as u64, Ordering::Relaxed);
                return;
            }
            Skip::Truncated => &self.truncated,
            Skip::BadFlags => &self.bad_flags,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LinkStatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LinkStatsSnapshot {
            frames_in: g(&self.frames_in),
            frames_out: g(&self.frames_out),
            bytes_in: g(&self.bytes_in),
            bad_crc: g(&self.bad_crc),
            unknown_id: g(&self.unknown_id),
            garbage_bytes: g(&self.garbage_bytes),
            truncated: g(&self.truncated),
            bad_flags: g(&self.bad_flags),
            bad_signature: g(&self.bad_signature),
            decode_errors: g(&self.decode_errors),
            unknown_ids: self
                .unknown_ids
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default(),
        }
    }
}
