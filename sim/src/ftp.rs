//! MAVLink FTP servers, answering as PX4's MavlinkFTP does: OpenFileRO, ReadFile,
//! BurstReadFile, TerminateSession, ResetSessions; a repeated request (same sequence
//! number) gets the same reply again. The camera component's serves the photos it took
//! (read-only); the autopilot's has no files, which is what a ground station probing PX4
//! for `@PARAM/param.pck` at connect finds too (NAK FileNotFound).

use std::collections::HashMap;
use std::path::PathBuf;

use mavlink::dialects::common::{MavMessage, FILE_TRANSFER_PROTOCOL_DATA};

pub const TERMINATE_SESSION: u8 = 1;
pub const RESET_SESSIONS: u8 = 2;
pub const LIST_DIRECTORY: u8 = 3;
pub const OPEN_FILE_RO: u8 = 4;
pub const READ_FILE: u8 = 5;
pub const BURST_READ_FILE: u8 = 15;
pub const ACK: u8 = 128;
pub const NAK: u8 = 129;
/// NAK error codes.
pub const ERR_INVALID_SESSION: u8 = 4;
pub const ERR_NO_SESSIONS: u8 = 5;
pub const ERR_EOF: u8 = 6;
pub const ERR_UNKNOWN_COMMAND: u8 = 7;
pub const ERR_FILE_NOT_FOUND: u8 = 10;
/// Data bytes per message.
pub const DATA_MAX: usize = 239;

pub struct FtpServer {
    /// Files are served from here; paths are `/images/NNNNNN.jpg`. None: no files at all.
    pub root: Option<PathBuf>,
    sessions: HashMap<u8, Vec<u8>>,
    /// The last request's sequence number and its reply(ies), for repeats.
    last: Option<(u16, Vec<[u8; 251]>)>,
}

fn header(p: &[u8; 251]) -> (u16, u8, u8, u8, u32) {
    (
        u16::from_le_bytes([p[0], p[1]]),
        p[2],
        p[3],
        p[4],
        u32::from_le_bytes([p[8], p[9], p[10], p[11]]),
    )
}

fn reply(seq: u16, session: u8, opcode: u8, req: u8, offset: u32, data: &[u8]) -> [u8; 251] {
    let mut p = [0u8; 251];
    p[0..2].copy_from_slice(&seq.wrapping_add(1).to_le_bytes());
    p[2] = session;
    p[3] = opcode;
    p[4] = data.len().min(DATA_MAX) as u8;
    p[5] = req;
    p[8..12].copy_from_slice(&offset.to_le_bytes());
    let n = data.len().min(DATA_MAX);
    p[12..12 + n].copy_from_slice(&data[..n]);
    p
}

fn nak(seq: u16, session: u8, req: u8, code: u8) -> [u8; 251] {
    reply(seq, session, NAK, req, 0, &[code])
}

impl FtpServer {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root: Some(root),
            sessions: HashMap::new(),
            last: None,
        }
    }

    /// The autopilot's server: every file missing, every directory empty.
    pub fn autopilot() -> Self {
        Self {
            root: None,
            sessions: HashMap::new(),
            last: None,
        }
    }

    /// Answers one request addressed to us; each reply is a full FTP payload.
    pub fn handle(&mut self, req: &FILE_TRANSFER_PROTOCOL_DATA) -> Vec<[u8; 251]> {
        let (seq, session, opcode, size, offset) = header(&req.payload);
        if let Some((s, replies)) = &self.last {
            if *s == seq {
                return replies.clone();
            }
        }
        let out = match opcode {
            OPEN_FILE_RO => {
                let path =
                    String::from_utf8_lossy(&req.payload[12..12 + usize::from(size).min(DATA_MAX)])
                        .trim_end_matches('\0')
                        .to_string();
                // Only our own names, so no path can leave the photo folder.
                let name = path.strip_prefix("/images/").unwrap_or("");
                let ok = name.len() == 10
                    && name.ends_with(".jpg")
                    && name[..6].bytes().all(|b| b.is_ascii_digit());
                let bytes = match &self.root {
                    Some(root) if ok => std::fs::read(root.join(name)).ok(),
                    _ => None,
                };
                match bytes {
                    Some(bytes) => {
                        if self.sessions.len() >= 4 {
                            vec![nak(seq, 0, opcode, ERR_NO_SESSIONS)]
                        } else {
                            let id = (0..=u8::MAX)
                                .find(|i| !self.sessions.contains_key(i))
                                .unwrap_or(0);
                            let len = bytes.len() as u32;
                            self.sessions.insert(id, bytes);
                            vec![reply(seq, id, ACK, opcode, 0, &len.to_le_bytes())]
                        }
                    }
                    _ => vec![nak(seq, session, opcode, ERR_FILE_NOT_FOUND)],
                }
            }
            READ_FILE | BURST_READ_FILE => match self.sessions.get(&session) {
                None => vec![nak(seq, session, opcode, ERR_INVALID_SESSION)],
                Some(bytes) => {
                    let start = offset as usize;
                    if start >= bytes.len() {
                        vec![nak(seq, session, opcode, ERR_EOF)]
                    } else if opcode == READ_FILE {
                        let end = (start + usize::from(size).clamp(1, DATA_MAX)).min(bytes.len());
                        vec![reply(seq, session, ACK, opcode, offset, &bytes[start..end])]
                    } else {
                        // A burst: the rest of the file in consecutive messages, the last
                        // marked burst_complete.
                        let mut v = Vec::new();
                        let mut at = start;
                        let mut s = seq;
                        while at < bytes.len() {
                            let end = (at + DATA_MAX).min(bytes.len());
                            let mut p = reply(s, session, ACK, opcode, at as u32, &bytes[at..end]);
                            if end == bytes.len() {
                                p[6] = 1;
                            }
                            v.push(p);
                            s = s.wrapping_add(1);
                            at = end;
                        }
                        v
                    }
                }
            },
            TERMINATE_SESSION => {
                if self.sessions.remove(&session).is_some() {
                    vec![reply(seq, session, ACK, opcode, 0, &[])]
                } else {
                    vec![nak(seq, session, opcode, ERR_INVALID_SESSION)]
                }
            }
            LIST_DIRECTORY if self.root.is_none() => vec![nak(seq, session, opcode, ERR_EOF)],
            RESET_SESSIONS => {
                self.sessions.clear();
                vec![reply(seq, 0, ACK, opcode, 0, &[])]
            }
            _ => vec![nak(seq, session, opcode, ERR_UNKNOWN_COMMAND)],
        };
        self.last = Some((seq, out.clone()));
        out
    }

    /// The replies as messages to the requester.
    pub fn answer(&mut self, req: &FILE_TRANSFER_PROTOCOL_DATA, to: (u8, u8)) -> Vec<MavMessage> {
        self.handle(req)
            .into_iter()
            .map(|payload| {
                MavMessage::FILE_TRANSFER_PROTOCOL(FILE_TRANSFER_PROTOCOL_DATA {
                    target_network: 0,
                    target_system: to.0,
                    target_component: to.1,
                    payload,
                })
            })
            .collect()
    }
}
