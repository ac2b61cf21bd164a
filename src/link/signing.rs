//! MAVLink 2 message signing per link (https://mavlink.io/en/guide/message_signing.html).

use std::path::Path;

use mavlink::dialects::common::MavMessage;
use mavlink::{MAVLinkV2MessageRaw, MavHeader, SigningConfig, SigningData};
use sha2::{Digest, Sha256};

use super::frame::Frame;
use super::LinkError;

/// A 32-byte secret key.
#[derive(Clone)]
pub struct SigningKey(pub [u8; 32]);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// Reads a key file: 32 raw bytes, 64 hex digits, or else a passphrase whose SHA-256
    /// is the key (as MAVProxy's `signing setup` and QGroundControl derive it).
    pub fn from_file(path: &Path) -> Result<Self, LinkError> {
        let bytes = std::fs::read(path).map_err(|e| LinkError::KeyFile {
            path: path.display().to_string(),
            problem: e.to_string(),
        })?;
        Self::from_bytes(&bytes).ok_or_else(|| LinkError::KeyFile {
            path: path.display().to_string(),
            problem: "empty key file".to_string(),
        })
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() == 32 {
            return Some(Self(bytes.try_into().ok()?));
        }
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            let mut key = [0u8; 32];
            for (i, k) in key.iter_mut().enumerate() {
                *k = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
            }
            return Some(Self(key));
        }
        Some(Self::from_passphrase(text))
    }

    pub fn from_passphrase(p: &str) -> Self {
        Self(Sha256::digest(p.as_bytes()).into())
    }
}

/// The signing state of one link: signs what we send, rejects unsigned or badly signed input.
pub struct LinkSigning {
    data: SigningData,
}

impl LinkSigning {
    pub fn new(key: &SigningKey, link_id: u8) -> Self {
        Self {
            data: SigningData::from_config(SigningConfig::new(key.0, link_id, true, false)),
        }
    }

    /// Checks a received frame: unsigned frames and MAVLink 1 frames are refused.
    pub fn accept(&self, frame: &Frame) -> bool {
        if !frame.signed() {
            return false;
        }
        let mut raw = MAVLinkV2MessageRaw::new();
        raw.as_mut_slice()[..frame.bytes().len()].copy_from_slice(frame.bytes());
        self.data.verify_signature(&raw)
    }

    /// Encodes and signs `msg`, appending the frame to `out`.
    pub fn encode(&self, header: MavHeader, msg: &MavMessage, out: &mut Vec<u8>) {
        let mut raw = MAVLinkV2MessageRaw::new();
        raw.serialize_message_for_signing(header, msg);
        self.data.sign_message(&mut raw);
        out.extend_from_slice(raw.raw_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_forms() {
        assert_eq!(SigningKey::from_bytes(&[7u8; 32]).unwrap().0, [7u8; 32]);
        let hex = "00".repeat(31) + "ff\n";
        assert_eq!(SigningKey::from_bytes(hex.as_bytes()).unwrap().0[31], 0xff);
        let a = SigningKey::from_bytes(b"correct horse\n").unwrap();
        assert_eq!(a.0, SigningKey::from_passphrase("correct horse").0);
        assert!(SigningKey::from_bytes(b"  \n").is_none());
    }
}
