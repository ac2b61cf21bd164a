//! The simulated vehicle's side of the wire: rust-mavlink's own reader and writer
//! (never gridpatrol's framing, so each side checks the other), plus fault injection.

use std::net::SocketAddr;

use mavlink::dialects::common::MavMessage;
use mavlink::error::MessageReadError;
use mavlink::{MavHeader, MavlinkReader, SigningData};

use crate::rng::Rng;

/// Per-vehicle faults. Link faults apply to both the GCS and the API link.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Fraction (0..1) of frames from the GCS that are dropped.
    pub loss_in: f64,
    /// Fraction (0..1) of frames to the GCS that are dropped.
    pub loss_out: f64,
    /// Added one-way delay, real seconds, each direction.
    pub latency_s: f64,
    /// Uniform extra delay in [0, jitter_s), real seconds; frames overtake each other.
    pub jitter_s: f64,
    /// Fraction (0..1) of frames sent twice.
    pub duplicate: f64,
    /// Ignore the first N commands (COMMAND_LONG/INT), as if lost.
    pub drop_first_commands: u32,
    /// A link outage: (start, length) in simulated seconds; nothing passes either way.
    pub outage: Option<(f64, f64)>,
    /// The mission server falls silent once an upload has delivered this many items
    /// (a vehicle that stops requesting).
    pub mission_stall_after: Option<u16>,
    /// GPS lost from `start` for `len` simulated seconds.
    pub gps_loss: Option<(f64, f64)>,
    /// The battery fails (reads critical) from this simulated time on.
    pub battery_failure_at: Option<f64>,
    /// The battery drops just below BAT_LOW_THR (a return) once the vehicle has been in the
    /// air this many simulated seconds.
    pub battery_low_after_airborne_s: Option<f64>,
}

impl Faults {
    /// When a frame sent now arrives: `None` if it is lost, else the delay in real seconds
    /// for each copy (two when duplicated).
    pub fn deliver(&self, rng: &mut Rng, loss: f64, sim_t: f64) -> Vec<f64> {
        if !passes(rng, loss, self.outage, sim_t) {
            return Vec::new();
        }
        let copies = if self.duplicate > 0.0 && rng.next_f64() < self.duplicate {
            2
        } else {
            1
        };
        (0..copies)
            .map(|_| {
                self.latency_s
                    + if self.jitter_s > 0.0 {
                        self.jitter_s * rng.next_f64()
                    } else {
                        0.0
                    }
            })
            .collect()
    }
}

/// Decodes every frame in one datagram; what does not decode (or, on a signed link,
/// is not correctly signed) is dropped, as PX4 drops it.
pub fn decode_datagram(
    bytes: &[u8],
    signing: Option<&SigningData>,
) -> Vec<(MavHeader, MavMessage)> {
    let mut reader = MavlinkReader::new(bytes);
    let mut out = Vec::new();
    // Bounded: a non-I/O error has consumed at least one byte, but never trust that forever.
    for _ in 0..4096 {
        match reader.read_any_message_signed::<MavMessage>(signing) {
            Ok(m) => out.push(m),
            Err(MessageReadError::Io(_)) => break,
            Err(_) => continue,
        }
    }
    out
}

/// Encodes one frame from `sysid`/`compid` with sequence `seq`.
pub fn encode(
    sysid: u8,
    compid: u8,
    seq: u8,
    msg: &MavMessage,
    signing: Option<&SigningData>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let header = MavHeader {
        system_id: u32::from(sysid),
        component_id: compid,
        sequence: seq,
    };
    // Writing into a Vec cannot fail.
    let _ = mavlink::write_v2_msg_signed(&mut out, header, msg, signing);
    out
}

/// Whether a frame passes, given the loss fraction and the outage window at time `t`.
pub fn passes(rng: &mut Rng, loss: f64, outage: Option<(f64, f64)>, t: f64) -> bool {
    if let Some((start, len)) = outage {
        if t >= start && t < start + len {
            return false;
        }
    }
    loss <= 0.0 || rng.next_f64() >= loss
}

/// Where a simulated vehicle sends to until it hears from someone.
pub fn default_gcs() -> SocketAddr {
    ([127, 0, 0, 1], 14550).into()
}
