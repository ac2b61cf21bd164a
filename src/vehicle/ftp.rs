//! MAVLink FTP, read side: fetching a file from a vehicle component (the camera's photos),
//! as QGroundControl's FTPManager does: OpenFileRO, then BurstReadFile, filling any gap a
//! lost burst message leaves with ReadFile, then TerminateSession. Each request is retried
//! on timeout; a repeated request is answered again by the server (same sequence number).
//! It runs beside the vehicle's command and mission transactions, not under their lock.

use std::collections::BTreeMap;
use std::sync::Arc;

use mavlink::dialects::common::{MavMessage, FILE_TRANSFER_PROTOCOL_DATA};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::Vehicle;
use crate::link::Inbound;

const TERMINATE_SESSION: u8 = 1;
const OPEN_FILE_RO: u8 = 4;
const READ_FILE: u8 = 5;
const BURST_READ_FILE: u8 = 15;
const ACK: u8 = 128;
const NAK: u8 = 129;
const ERR_EOF: u8 = 6;
const DATA_MAX: usize = 239;
/// Largest file accepted, bytes.
const MAX_FILE: u32 = 64 << 20;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FtpError {
    #[error("FTP {op}: no answer after {attempts} attempts")]
    Timeout { op: &'static str, attempts: u32 },
    #[error("FTP {op} refused: {meaning} (error {code})")]
    Nak {
        op: &'static str,
        code: u8,
        meaning: &'static str,
    },
    #[error("FTP: {0}")]
    Protocol(String),
    #[error("{0}: not an mftp:// URL (mftp://[;comp=N]/path)")]
    BadUrl(String),
}

fn nak_meaning(code: u8) -> &'static str {
    match code {
        1 => "failed",
        2 => "failed with an errno",
        3 => "invalid data size",
        4 => "invalid session",
        5 => "no sessions available",
        6 => "end of file",
        7 => "unknown command",
        8 => "file exists",
        9 => "file protected",
        10 => "file not found",
        _ => "unknown error",
    }
}

/// The component and path of an `mftp://[;comp=N]/path` URL (QGroundControl's form).
pub fn parse_mftp(url: &str) -> Result<(u8, String), FtpError> {
    let bad = || FtpError::BadUrl(url.to_string());
    let rest = url.strip_prefix("mftp://").ok_or_else(bad)?;
    let (comp, path) = match rest.strip_prefix("[;comp=") {
        Some(r) => {
            let (n, p) = r.split_once(']').ok_or_else(bad)?;
            (n.parse::<u8>().map_err(|_| bad())?, p)
        }
        None => (1, rest),
    };
    if !path.starts_with('/') || path.len() > DATA_MAX {
        return Err(bad());
    }
    Ok((comp, path.to_string()))
}

struct Header {
    seq: u16,
    session: u8,
    opcode: u8,
    size: u8,
    req_opcode: u8,
    burst_complete: bool,
    offset: u32,
}

fn header(p: &[u8; 251]) -> Header {
    Header {
        seq: u16::from_le_bytes([p[0], p[1]]),
        session: p[2],
        opcode: p[3],
        size: p[4],
        req_opcode: p[5],
        burst_complete: p[6] != 0,
        offset: u32::from_le_bytes([p[8], p[9], p[10], p[11]]),
    }
}

struct Session<'a> {
    v: &'a Vehicle,
    compid: u8,
    rx: broadcast::Receiver<Arc<Inbound>>,
    seq: u16,
}

impl Session<'_> {
    fn send(&mut self, session: u8, opcode: u8, offset: u32, data: &[u8], size: u8) -> u16 {
        self.seq = self.seq.wrapping_add(1);
        let mut p = [0u8; 251];
        p[0..2].copy_from_slice(&self.seq.to_le_bytes());
        p[2] = session;
        p[3] = opcode;
        p[4] = size;
        p[8..12].copy_from_slice(&offset.to_le_bytes());
        let n = data.len().min(DATA_MAX);
        p[12..12 + n].copy_from_slice(&data[..n]);
        self.v.send(MavMessage::FILE_TRANSFER_PROTOCOL(
            FILE_TRANSFER_PROTOCOL_DATA {
                target_network: 0,
                target_system: self.v.sysid,
                target_component: self.compid,
                payload: p,
            },
        ));
        self.seq
    }

    /// The next FTP payload from our component before `deadline`.
    async fn recv(&mut self, deadline: Instant) -> Option<[u8; 251]> {
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => return None,
                Ok(Ok(inb)) => {
                    if inb.frame.sysid() != self.v.sysid || inb.frame.compid() != self.compid {
                        continue;
                    }
                    if let MavMessage::FILE_TRANSFER_PROTOCOL(f) = &inb.msg {
                        return Some(f.payload);
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            }
        }
    }

    /// One request and its reply (the one answering this sequence number), with retries.
    async fn request(
        &mut self,
        op: &'static str,
        session: u8,
        opcode: u8,
        offset: u32,
        data: &[u8],
        size: u8,
    ) -> Result<([u8; 251], Header), FtpError> {
        let cfg = self.v.cfg().clone();
        let attempts = cfg.mission_retries.max(1);
        // The same sequence number on every retry, so the server can answer a repeat.
        let seq = self.send(session, opcode, offset, data, size);
        for attempt in 0..attempts {
            if attempt > 0 {
                self.seq = seq.wrapping_sub(1);
                self.send(session, opcode, offset, data, size);
            }
            let deadline = Instant::now() + cfg.mission_timeout;
            while let Some(p) = self.recv(deadline).await {
                let h = header(&p);
                if h.seq != seq.wrapping_add(1) || h.req_opcode != opcode {
                    continue; // a late answer to an earlier request
                }
                if h.opcode == NAK {
                    let code = p[12];
                    return Err(FtpError::Nak {
                        op,
                        code,
                        meaning: nak_meaning(code),
                    });
                }
                if h.opcode != ACK {
                    return Err(FtpError::Protocol(format!(
                        "{op}: opcode {} in reply",
                        h.opcode
                    )));
                }
                return Ok((p, h));
            }
        }
        Err(FtpError::Timeout { op, attempts })
    }
}

impl Vehicle {
    /// Reads a whole file from component `compid` over MAVLink FTP.
    pub async fn ftp_read(&self, compid: u8, path: &str) -> Result<Vec<u8>, FtpError> {
        let mut last_seq = self.slot.ftp.clone().lock_owned().await;
        let mut s = Session {
            v: self,
            compid,
            rx: self.shared.hub.subscribe(),
            seq: *last_seq,
        };
        let result = self.ftp_read_in(&mut s, path).await;
        *last_seq = s.seq;
        result
    }

    async fn ftp_read_in(&self, s: &mut Session<'_>, path: &str) -> Result<Vec<u8>, FtpError> {
        let (p, h) = s
            .request(
                "OpenFileRO",
                0,
                OPEN_FILE_RO,
                0,
                path.as_bytes(),
                path.len() as u8,
            )
            .await?;
        if h.size < 4 {
            return Err(FtpError::Protocol("OpenFileRO: no file size".into()));
        }
        let len = u32::from_le_bytes([p[12], p[13], p[14], p[15]]);
        if len > MAX_FILE {
            return Err(FtpError::Protocol(format!(
                "{path}: {len} bytes is too large"
            )));
        }
        let session = h.session;
        let result = read_all(s, session, len).await;
        // Always close the session, even after an error, so the server's slot is free.
        let _ = s
            .request("TerminateSession", session, TERMINATE_SESSION, 0, &[], 0)
            .await;
        result
    }
}

async fn read_all(s: &mut Session<'_>, session: u8, len: u32) -> Result<Vec<u8>, FtpError> {
    let mut chunks: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    // One burst for the whole file: the server streams it, the last message flagged.
    if len > 0 {
        let cfg = s.v.cfg().clone();
        let seq = s.send(session, BURST_READ_FILE, 0, &[], DATA_MAX as u8);
        // Burst messages stream back to back: a short silence means the rest was lost.
        let gap = (cfg.mission_timeout / 5).max(std::time::Duration::from_millis(50));
        let mut deadline = Instant::now() + cfg.mission_timeout;
        let mut received = 0usize;
        let mut expect = seq.wrapping_add(1);
        while let Some(p) = s.recv(deadline).await {
            let h = header(&p);
            if h.req_opcode != BURST_READ_FILE || h.session != session {
                continue;
            }
            if h.opcode == NAK {
                break; // EOF or refused: ReadFile fills what is missing
            }
            if h.seq.wrapping_sub(expect) > 0x8000 {
                continue; // older than this burst
            }
            expect = h.seq.wrapping_add(1);
            let n = usize::from(h.size).min(DATA_MAX);
            if chunks.insert(h.offset, p[12..12 + n].to_vec()).is_none() {
                received += n;
            }
            deadline = Instant::now() + gap;
            if h.burst_complete || received >= len as usize {
                break;
            }
        }
    }
    // Fill the gaps one ReadFile at a time.
    let mut at = 0u32;
    let mut out = Vec::with_capacity(len as usize);
    while at < len {
        let chunk = match chunks.remove(&at) {
            Some(c) if !c.is_empty() => c,
            _ => {
                let want = (len - at).min(DATA_MAX as u32) as u8;
                match s
                    .request("ReadFile", session, READ_FILE, at, &[], want)
                    .await
                {
                    Ok((p, h)) => p[12..12 + usize::from(h.size).min(DATA_MAX)].to_vec(),
                    Err(FtpError::Nak { code: ERR_EOF, .. }) => {
                        return Err(FtpError::Protocol(format!(
                            "end of file at byte {at} of {len}"
                        )))
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if chunk.is_empty() {
            return Err(FtpError::Protocol(format!("empty read at byte {at}")));
        }
        at += chunk.len() as u32;
        out.extend_from_slice(&chunk);
    }
    out.truncate(len as usize);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mftp_urls_name_the_component_and_the_path() {
        assert_eq!(
            parse_mftp("mftp://[;comp=100]/images/000012.jpg"),
            Ok((100, "/images/000012.jpg".to_string()))
        );
        assert_eq!(
            parse_mftp("mftp:///fs/microsd/a.jpg"),
            Ok((1, "/fs/microsd/a.jpg".into()))
        );
        assert!(parse_mftp("http://x/y").is_err());
        assert!(parse_mftp("mftp://[;comp=999]/a").is_err());
    }
}
