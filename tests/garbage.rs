//! Garbage on a link is counted and skipped, never a panic.

// PING is a handy small message for framing tests.
#![allow(deprecated)]

use gridpatrol::link::{frame::encode_v2, FrameParser, Parsed, TlogReader};
use mavlink::dialects::common::{MavMessage, PING_DATA};
use mavlink::MavHeader;
use proptest::prelude::*;

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), split in 1usize..64) {
        let mut p = FrameParser::new();
        let mut out = Vec::new();
        for c in bytes.chunks(split) {
            p.push(c, &mut out);
        }
        p.end_datagram(&mut out);
        for f in out.iter().filter_map(|x| match x { Parsed::Frame(f) => Some(f), _ => None }) {
            let _ = f.decode();
        }
        let _ = TlogReader::new(&bytes).count();
    }

    #[test]
    fn frames_survive_surrounding_garbage(pre in proptest::collection::vec(any::<u8>(), 0..300), seq in any::<u8>()) {
        let msg = MavMessage::PING(PING_DATA { time_usec: 42, seq: 7, target_system: 1, target_component: 1 });
        let mut bytes: Vec<u8> = pre.iter().map(|b| if *b == 0xFD || *b == 0xFE { 0 } else { *b }).collect();
        encode_v2(MavHeader { system_id: 3, component_id: 1, sequence: seq }, &msg, &mut bytes);
        let mut out = Vec::new();
        FrameParser::new().push(&bytes, &mut out);
        let frames: Vec<_> = out.iter().filter_map(|x| match x { Parsed::Frame(f) => Some(f), _ => None }).collect();
        prop_assert_eq!(frames.len(), 1);
        prop_assert_eq!(frames[0].decode().unwrap(), msg);
    }
}
