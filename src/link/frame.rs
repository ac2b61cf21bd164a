//! MAVLink framing: finding frames in a byte stream, checking them, and encoding ours.
//!
//! We frame by hand rather than through rust-mavlink's connection types because the
//! ground side must *count* what it skips (bad CRC, unknown message ids, truncation)
//! per link, and must keep the raw bytes of every frame for the tlog and for signing.
//! Message (de)serialisation itself is rust-mavlink's `common` dialect.

use std::sync::OnceLock;

use mavlink::dialects::common::MavMessage;
use mavlink::{MavHeader, MavlinkVersion, Message};

/// MAVLink 1 start byte.
pub const STX_V1: u8 = 0xFE;
/// MAVLink 2 start byte.
pub const STX_V2: u8 = 0xFD;
/// MAVLink 2 incompatibility flag: the frame carries a 13-byte signature.
pub const IFLAG_SIGNED: u8 = 0x01;
const V2_HEADER: usize = 10;
const V1_HEADER: usize = 6;
const SIGNATURE_LEN: usize = 13;
/// Largest possible MAVLink 2 frame in bytes (255-byte payload, signed).
pub const MAX_FRAME_LEN: usize = V2_HEADER + 255 + 2 + SIGNATURE_LEN;

/// One complete, CRC-checked (or unknown-id) MAVLink frame, with its raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    bytes: Vec<u8>,
    /// Whether this frame's id is in the `common` dialect (so its CRC was checked).
    known: bool,
}

impl Frame {
    /// The raw frame bytes, start byte to the end of the checksum or signature.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn version(&self) -> MavlinkVersion {
        if self.bytes[0] == STX_V2 {
            MavlinkVersion::V2
        } else {
            MavlinkVersion::V1
        }
    }

    pub fn is_v2(&self) -> bool {
        self.bytes[0] == STX_V2
    }

    pub fn signed(&self) -> bool {
        self.is_v2() && self.bytes[2] & IFLAG_SIGNED != 0
    }

    /// Whether the id belongs to the `common` dialect (its CRC could be checked).
    pub fn known(&self) -> bool {
        self.known
    }

    pub fn seq(&self) -> u8 {
        if self.is_v2() {
            self.bytes[4]
        } else {
            self.bytes[2]
        }
    }

    pub fn sysid(&self) -> u8 {
        if self.is_v2() {
            self.bytes[5]
        } else {
            self.bytes[3]
        }
    }

    pub fn compid(&self) -> u8 {
        if self.is_v2() {
            self.bytes[6]
        } else {
            self.bytes[4]
        }
    }

    pub fn msgid(&self) -> u32 {
        if self.is_v2() {
            u32::from_le_bytes([self.bytes[7], self.bytes[8], self.bytes[9], 0])
        } else {
            u32::from(self.bytes[5])
        }
    }

    pub fn header(&self) -> MavHeader {
        MavHeader {
            system_id: u32::from(self.sysid()),
            component_id: self.compid(),
            sequence: self.seq(),
        }
    }

    pub fn payload(&self) -> &[u8] {
        let (start, len) = if self.is_v2() {
            (V2_HEADER, self.bytes[1] as usize)
        } else {
            (V1_HEADER, self.bytes[1] as usize)
        };
        &self.bytes[start..start + len]
    }

    /// Decodes the payload with the `common` dialect.
    pub fn decode(&self) -> Result<MavMessage, DecodeError> {
        if !self.known {
            return Err(DecodeError::UnknownId(self.msgid()));
        }
        MavMessage::parse(self.version(), self.msgid(), self.payload())
            .map_err(|e| DecodeError::Payload(self.msgid(), e.to_string()))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("message id {0} is not in the common dialect")]
    UnknownId(u32),
    #[error("message id {0}: bad payload: {1}")]
    Payload(u32, String),
}

/// What the parser met, besides good frames. Counted per link, never fatal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// A frame whose checksum did not match (one start byte is skipped to resync).
    BadCrc,
    /// A whole frame with an id outside `common` (e.g. PX4's development dialect).
    UnknownId(u32),
    /// Bytes that were not the start of any frame.
    Garbage(usize),
    /// A frame cut short by the end of a datagram or file.
    Truncated,
    /// A MAVLink 2 frame with incompatibility flags we do not understand.
    BadFlags,
}

/// One step of parsing.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Frame(Frame),
    Skipped(Skip),
}

/// `extra_crc + 1` per id below 65536, or 0 where the id is not in `common`.
fn crc_table() -> &'static [u16] {
    static TABLE: OnceLock<Vec<u16>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0u32..65536)
            .map(|id| {
                let crc = MavMessage::extra_crc(id);
                if crc != 0 || MavMessage::default_message_from_id(id).is_some() {
                    u16::from(crc) + 1
                } else {
                    0
                }
            })
            .collect()
    })
}

/// The CRC_EXTRA byte of a `common` message id, or `None` for an unknown id.
pub fn extra_crc(msgid: u32) -> Option<u8> {
    match crc_table().get(msgid as usize) {
        Some(&v) if v != 0 => Some((v - 1) as u8),
        _ => None,
    }
}

/// X.25 (CRC-16/MCRF4XX) as MAVLink uses it, table driven because it runs on every byte.
fn crc16(data: &[u8], extra: u8) -> u16 {
    static TABLE: OnceLock<[u16; 256]> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u16; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut crc = i as u16;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x8408
                } else {
                    crc >> 1
                };
            }
            *slot = crc;
        }
        t
    });
    let mut crc: u16 = 0xFFFF;
    for &b in data.iter().chain(std::iter::once(&extra)) {
        crc = (crc >> 8) ^ table[((crc ^ u16::from(b)) & 0xFF) as usize];
    }
    crc
}

/// Parses one frame from the front of `buf`.
///
/// Returns `None` when `buf` holds only the beginning of a frame (more bytes needed),
/// otherwise the result and how many bytes it consumed.
pub fn parse_one(buf: &[u8]) -> Option<(Parsed, usize)> {
    let start = buf.iter().position(|&b| b == STX_V2 || b == STX_V1)?;
    if start > 0 {
        return Some((Parsed::Skipped(Skip::Garbage(start)), start));
    }
    let v2 = buf[0] == STX_V2;
    let header = if v2 { V2_HEADER } else { V1_HEADER };
    if buf.len() < header {
        return None;
    }
    let len = buf[1] as usize;
    let mut total = header + len + 2;
    let msgid = if v2 {
        let iflags = buf[2];
        if iflags & !IFLAG_SIGNED != 0 {
            return Some((Parsed::Skipped(Skip::BadFlags), 1));
        }
        if iflags & IFLAG_SIGNED != 0 {
            total += SIGNATURE_LEN;
        }
        u32::from_le_bytes([buf[7], buf[8], buf[9], 0])
    } else {
        u32::from(buf[5])
    };
    if buf.len() < total {
        return None;
    }
    let Some(extra) = extra_crc(msgid) else {
        // The spec lets a receiver skip a frame it cannot check by its length field.
        return Some((Parsed::Skipped(Skip::UnknownId(msgid)), total));
    };
    let crc_at = header + len;
    let got = u16::from_le_bytes([buf[crc_at], buf[crc_at + 1]]);
    if crc16(&buf[1..crc_at], extra) != got {
        return Some((Parsed::Skipped(Skip::BadCrc), 1));
    }
    Some((
        Parsed::Frame(Frame {
            bytes: buf[..total].to_vec(),
            known: true,
        }),
        total,
    ))
}

/// Like [`parse_one`], but keeps unknown-id frames as frames (for tlogs and routing).
pub fn parse_one_keep_unknown(buf: &[u8]) -> Option<(Parsed, usize)> {
    match parse_one(buf)? {
        (Parsed::Skipped(Skip::UnknownId(_)), n) => Some((
            Parsed::Frame(Frame {
                bytes: buf[..n].to_vec(),
                known: false,
            }),
            n,
        )),
        other => Some(other),
    }
}

/// A streaming parser for byte streams (TCP, serial) and datagrams (UDP).
#[derive(Default)]
pub struct FrameParser {
    buf: Vec<u8>,
}

impl FrameParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes and returns everything now complete, in order.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Parsed>) {
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        while let Some((p, n)) = parse_one_keep_unknown(&self.buf[at..]) {
            out.push(p);
            at += n;
        }
        // No start byte at all in the rest: it is garbage.
        let rest = &self.buf[at..];
        if !rest.is_empty() && !rest.iter().any(|&b| b == STX_V1 || b == STX_V2) {
            out.push(Parsed::Skipped(Skip::Garbage(rest.len())));
            at = self.buf.len();
        }
        self.buf.drain(..at);
    }

    /// Ends a datagram: a frame never spans two UDP datagrams, so leftovers are truncated.
    pub fn end_datagram(&mut self, out: &mut Vec<Parsed>) {
        if !self.buf.is_empty() {
            out.push(Parsed::Skipped(Skip::Truncated));
            self.buf.clear();
        }
    }
}

/// Encodes `msg` as a MAVLink 2 frame (unsigned) into `out`, returning its length.
pub fn encode_v2(header: MavHeader, msg: &MavMessage, out: &mut Vec<u8>) -> usize {
    let mut payload = [0u8; 255];
    let full = msg.ser(MavlinkVersion::V2, &mut payload);
    // MAVLink 2 truncates trailing zero bytes of the payload (but keeps at least one).
    let mut len = full;
    while len > 1 && payload[len - 1] == 0 {
        len -= 1;
    }
    let id = msg.message_id();
    let start = out.len();
    out.extend_from_slice(&[
        STX_V2,
        len as u8,
        0,
        0,
        header.sequence,
        header.system_id as u8,
        header.component_id,
        (id & 0xFF) as u8,
        ((id >> 8) & 0xFF) as u8,
        ((id >> 16) & 0xFF) as u8,
    ]);
    out.extend_from_slice(&payload[..len]);
    let crc = crc16(&out[start + 1..], MavMessage::extra_crc(id));
    out.extend_from_slice(&crc.to_le_bytes());
    out.len() - start
}

#[cfg(test)]
mod tests {
    use super::*;
    use mavlink::dialects::common::{MavAutopilot, MavModeFlag, MavState, MavType, HEARTBEAT_DATA};

    fn heartbeat() -> MavMessage {
        MavMessage::HEARTBEAT(HEARTBEAT_DATA {
            custom_mode: 0x0404_0000,
            mavtype: MavType::MAV_TYPE_QUADROTOR,
            autopilot: MavAutopilot::MAV_AUTOPILOT_PX4,
            base_mode: MavModeFlag::MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
            system_status: MavState::MAV_STATE_STANDBY,
            mavlink_version: 3,
        })
    }

    #[test]
    fn our_encoding_matches_rust_mavlink_and_round_trips() {
        let h = MavHeader {
            system_id: 7,
            component_id: 1,
            sequence: 42,
        };
        let mut ours = Vec::new();
        encode_v2(h, &heartbeat(), &mut ours);
        let mut theirs = Vec::new();
        mavlink::write_v2_msg(&mut theirs, h, &heartbeat()).unwrap();
        assert_eq!(ours, theirs);
        let (p, n) = parse_one(&ours).unwrap();
        assert_eq!(n, ours.len());
        let Parsed::Frame(f) = p else { panic!("{p:?}") };
        assert_eq!((f.sysid(), f.compid(), f.seq(), f.msgid()), (7, 1, 42, 0));
        assert_eq!(f.decode().unwrap(), heartbeat());
    }

    #[test]
    fn corrupted_byte_is_a_crc_error_and_the_parser_resyncs() {
        let mut bytes = Vec::new();
        encode_v2(MavHeader::default(), &heartbeat(), &mut bytes);
        let good = bytes.clone();
        bytes[12] ^= 0x55;
        bytes.extend_from_slice(&good);
        let mut p = FrameParser::new();
        let mut out = Vec::new();
        p.push(&bytes, &mut out);
        assert_eq!(out[0], Parsed::Skipped(Skip::BadCrc));
        assert!(matches!(out.last(), Some(Parsed::Frame(_))));
    }

    #[test]
    fn split_stream_is_reassembled() {
        let mut bytes = Vec::new();
        for _ in 0..3 {
            encode_v2(MavHeader::default(), &heartbeat(), &mut bytes);
        }
        let mut p = FrameParser::new();
        let mut out = Vec::new();
        for chunk in bytes.chunks(5) {
            p.push(chunk, &mut out);
        }
        assert_eq!(
            out.iter().filter(|x| matches!(x, Parsed::Frame(_))).count(),
            3
        );
    }

    #[test]
    fn unknown_id_is_skipped_whole() {
        let mut bytes = vec![STX_V2, 2, 0, 0, 0, 1, 1, 0x60, 0xEA, 0, 9, 9, 0, 0];
        encode_v2(MavHeader::default(), &heartbeat(), &mut bytes);
        let mut out = Vec::new();
        FrameParser::new().push(&bytes, &mut out);
        let Parsed::Frame(f) = &out[0] else { panic!() };
        assert!(!f.known());
        assert_eq!(f.msgid(), 60000);
        assert!(matches!(&out[1], Parsed::Frame(f) if f.known()));
    }
}
