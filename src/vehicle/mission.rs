//! The mission protocol, ground side (https://mavlink.io/en/services/mission.html):
//! upload, download, clear and set-current for missions, geofences and rally points.
//!
//! Each operation is a small state machine driven by the vehicle's replies and by
//! timeouts, with one [`MissionError`] per way it can end badly, as MAVSDK structures
//! its mission transfer. Upload is only "done" once read back and compared.

// PX4 v1.16 still sends the legacy MISSION_REQUEST and answers MISSION_SET_CURRENT.
#![allow(deprecated)]

use mavlink::dialects::common::{
    MavCmd, MavFrame, MavMessage, MavMissionResult, MavMissionType, MISSION_ACK_DATA,
    MISSION_CLEAR_ALL_DATA, MISSION_COUNT_DATA, MISSION_ITEM_INT_DATA, MISSION_REQUEST_INT_DATA,
    MISSION_REQUEST_LIST_DATA, MISSION_SET_CURRENT_DATA,
};
use num_traits::FromPrimitive;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::Vehicle;

/// Which of the vehicle's three plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MissionType {
    #[default]
    Mission,
    Fence,
    Rally,
}

impl MissionType {
    pub fn mav(self) -> MavMissionType {
        match self {
            Self::Mission => MavMissionType::MAV_MISSION_TYPE_MISSION,
            Self::Fence => MavMissionType::MAV_MISSION_TYPE_FENCE,
            Self::Rally => MavMissionType::MAV_MISSION_TYPE_RALLY,
        }
    }
}

impl std::str::FromStr for MissionType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mission" => Ok(Self::Mission),
            "fence" | "geofence" => Ok(Self::Fence),
            "rally" => Ok(Self::Rally),
            _ => Err(format!(
                "unknown mission type {s:?} (mission, fence, rally)"
            )),
        }
    }
}

/// One mission item in its wire form. For global frames `x`/`y` are degrees × 1e7.
#[derive(Clone, Debug, PartialEq)]
pub struct MissionItem {
    /// MAV_CMD number.
    pub command: u16,
    /// MAV_FRAME number.
    pub frame: u8,
    pub params: [f32; 4],
    pub x: i32,
    pub y: i32,
    /// Altitude in metres (relative to home in the RELATIVE_ALT frames) or param7.
    pub z: f32,
    pub autocontinue: bool,
}

/// MAV_FRAME numbers whose x/y are latitude/longitude.
fn is_global(frame: u8) -> bool {
    matches!(frame, 0 | 3 | 5 | 6 | 10 | 11)
}

/// The float/int variants of a frame name the same frame (MAV_FRAME_GLOBAL_INT ≡ GLOBAL).
fn canonical_frame(frame: u8) -> u8 {
    match frame {
        5 => 0,
        6 => 3,
        11 => 10,
        f => f,
    }
}

/// Commands whose x/y/z are a position (NAV commands below 100 and a few others).
fn has_position(command: u16) -> bool {
    command < 100 || matches!(command, 189 | 5000..=5004 | 5100 | 5101)
}

/// Geofence items (MAV_CMD_NAV_FENCE_*). PX4 keeps only their command, latitude,
/// longitude, altitude and vertex count or radius (`mission_fence_point_s`), and reports
/// the frame as absolute (MAV_FRAME_GLOBAL_INT) whatever was sent: its geofence ignores a
/// vertex's altitude frame and params 2-4 (mavlink_mission.cpp, format_mavlink_mission_item).
fn is_fence_item(command: u16) -> bool {
    (5000..=5004).contains(&command)
}

/// MAV_CMD_NAV_RALLY_POINT: PX4 keeps its position and altitude only (params read back 0).
const RALLY_POINT: u16 = 5100;

impl MissionItem {
    /// NAV_WAYPOINT at `lat`/`lon` degrees, `alt` metres above home.
    pub fn waypoint(lat: f64, lon: f64, alt: f32) -> Self {
        Self {
            command: MavCmd::MAV_CMD_NAV_WAYPOINT as u16,
            frame: MavFrame::MAV_FRAME_GLOBAL_RELATIVE_ALT as u8,
            params: [0.0, 0.0, 0.0, f32::NAN],
            x: (lat * 1e7).round() as i32,
            y: (lon * 1e7).round() as i32,
            z: alt,
            autocontinue: true,
        }
    }

    /// NAV_TAKEOFF to `alt` metres above home at `lat`/`lon` degrees.
    pub fn takeoff(lat: f64, lon: f64, alt: f32) -> Self {
        Self {
            command: MavCmd::MAV_CMD_NAV_TAKEOFF as u16,
            ..Self::waypoint(lat, lon, alt)
        }
    }

    pub fn return_to_launch() -> Self {
        Self::action(MavCmd::MAV_CMD_NAV_RETURN_TO_LAUNCH as u16, [0.0; 4])
    }

    /// An item without a position (a DO command, RTL), in MAV_FRAME_MISSION.
    pub fn action(command: u16, params: [f32; 4]) -> Self {
        Self {
            command,
            frame: MavFrame::MAV_FRAME_MISSION as u8,
            params,
            x: 0,
            y: 0,
            z: 0.0,
            autocontinue: true,
        }
    }

    /// Latitude in degrees, for global frames.
    pub fn lat(&self) -> f64 {
        f64::from(self.x) * 1e-7
    }

    pub fn lon(&self) -> f64 {
        f64::from(self.y) * 1e-7
    }

    fn to_wire(&self, seq: u16, target: (u8, u8), kind: MissionType) -> Result<MavMessage, String> {
        let command = MavCmd::from_u16(self.command).ok_or_else(|| {
            format!(
                "command {} is not a MAV_CMD of the common dialect",
                self.command
            )
        })?;
        let frame = MavFrame::from_u8(self.frame)
            .ok_or_else(|| format!("frame {} is not a MAV_FRAME", self.frame))?;
        Ok(MavMessage::MISSION_ITEM_INT(MISSION_ITEM_INT_DATA {
            param1: self.params[0],
            param2: self.params[1],
            param3: self.params[2],
            param4: self.params[3],
            x: self.x,
            y: self.y,
            z: self.z,
            seq,
            command,
            target_system: target.0,
            target_component: target.1,
            frame,
            current: u8::from(seq == 0 && kind == MissionType::Mission),
            autocontinue: u8::from(self.autocontinue),
            mission_type: kind.mav(),
        }))
    }

    fn from_wire(m: &MavMessage) -> Option<(u16, MavMissionType, Self)> {
        match m {
            MavMessage::MISSION_ITEM_INT(i) => Some((
                i.seq,
                i.mission_type,
                Self {
                    command: i.command as u16,
                    frame: i.frame as u8,
                    params: [i.param1, i.param2, i.param3, i.param4],
                    x: i.x,
                    y: i.y,
                    z: i.z,
                    autocontinue: i.autocontinue != 0,
                },
            )),
            // Legacy float items, from vehicles that answer MISSION_REQUEST_INT with them.
            MavMessage::MISSION_ITEM(i) => {
                let global = is_global(i.frame as u8);
                let conv = |v: f32| {
                    if global {
                        (f64::from(v) * 1e7).round() as i32
                    } else {
                        v as i32
                    }
                };
                Some((
                    i.seq,
                    i.mission_type,
                    Self {
                        command: i.command as u16,
                        frame: i.frame as u8,
                        params: [i.param1, i.param2, i.param3, i.param4],
                        x: conv(i.x),
                        y: conv(i.y),
                        z: i.z,
                        autocontinue: i.autocontinue != 0,
                    },
                ))
            }
            _ => None,
        }
    }
}

/// The JSON form: QGroundControl's .plan `SimpleItem` shape, params 5–7 being x, y, z
/// (degrees for global frames), NaN written as null.
#[derive(Serialize, Deserialize)]
struct ItemJson {
    command: u16,
    frame: u8,
    params: [Option<f64>; 7],
    #[serde(default = "yes", rename = "autoContinue")]
    autocontinue: bool,
}

fn yes() -> bool {
    true
}

impl Serialize for MissionItem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = |v: f32| (!v.is_nan()).then_some(f64::from(v));
        let xy = |v: i32| {
            Some(if is_global(self.frame) {
                f64::from(v) * 1e-7
            } else {
                f64::from(v)
            })
        };
        ItemJson {
            command: self.command,
            frame: self.frame,
            params: [
                f(self.params[0]),
                f(self.params[1]),
                f(self.params[2]),
                f(self.params[3]),
                xy(self.x),
                xy(self.y),
                f(self.z),
            ],
            autocontinue: self.autocontinue,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for MissionItem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = ItemJson::deserialize(d)?;
        let f = |v: Option<f64>| v.map_or(f32::NAN, |v| v as f32);
        let global = is_global(j.frame);
        let xy = |v: Option<f64>| -> Result<i32, D::Error> {
            let v = v.unwrap_or(0.0);
            let (v, lim) = if global { (v * 1e7, 1.8e9) } else { (v, 2.1e9) };
            if !v.is_finite() || v.abs() > lim {
                return Err(serde::de::Error::custom(format!(
                    "x/y value {v} out of range"
                )));
            }
            Ok(v.round() as i32)
        };
        Ok(Self {
            command: j.command,
            frame: j.frame,
            params: [
                f(j.params[0]),
                f(j.params[1]),
                f(j.params[2]),
                f(j.params[3]),
            ],
            x: xy(j.params[4])?,
            y: xy(j.params[5])?,
            z: f(j.params[6]),
            autocontinue: j.autocontinue,
        })
    }
}

/// A mission file: the items of one mission type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MissionPlan {
    #[serde(default)]
    pub mission_type: MissionType,
    pub items: Vec<MissionItem>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum MissionStage {
    Upload,
    Download,
    Clear,
    SetCurrent,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MissionError {
    #[error("{stage:?} rejected by the vehicle{}: {result:?}", item_suffix(.item))]
    Rejected {
        stage: MissionStage,
        item: Option<u16>,
        result: MavMissionResult,
    },
    #[error("{stage:?} timed out{} after {attempts} attempts", item_suffix(.item))]
    Timeout {
        stage: MissionStage,
        item: Option<u16>,
        attempts: u32,
    },
    #[error("read-back differs at item {item}: {field} sent {sent}, read {read}")]
    Mismatch {
        item: u16,
        field: &'static str,
        sent: String,
        read: String,
    },
    #[error("read-back has {read} items, {sent} were sent")]
    CountMismatch { sent: usize, read: usize },
    #[error("item {item}: {problem}")]
    BadItem { item: usize, problem: String },
    #[error("{0} items is more than the mission protocol can carry (65535)")]
    TooMany(usize),
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// How often in a row a transfer may start over without getting further than before...
const MAX_RESTARTS: u32 = 5;
/// ...or for how long: a SITL at 40× drops a transfer after 125 ms of silence, shorter
/// than a loaded machine may keep us off the CPU, so a count alone can run out in a
/// second.
const RESTART_WINDOW: std::time::Duration = std::time::Duration::from_secs(20);

/// The restarts of one transfer since it last got further.
struct Restarts {
    count: u32,
    since: Instant,
}

impl Restarts {
    fn new() -> Self {
        Self {
            count: 0,
            since: Instant::now(),
        }
    }

    /// Whether one more start-over is allowed.
    fn allowed(&self) -> bool {
        self.count < MAX_RESTARTS || self.since.elapsed() < RESTART_WINDOW
    }

    /// The transfer got further than ever before.
    fn progress(&mut self) {
        *self = Self::new();
    }
}

/// PX4 drops a transfer after this long (of its clock) without hearing from the ground
/// (MAVLINK_MISSION_PROTOCOL_TIMEOUT_DEFAULT in mavlink_mission.h).
const PX4_PROTOCOL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The wait before the n-th MISSION_COUNT to a busy mission manager: 250 ms doubling
/// to 2 s, so a manager that frees itself soon is not kept waiting and one that stays
/// busy for its whole 5 s timeout is not flooded.
fn busy_backoff(n: u32) -> std::time::Duration {
    std::time::Duration::from_millis(250u64 << n.saturating_sub(1).min(3))
}

/// Whether a STATUSTEXT is PX4's word that it dropped a mission transfer.
fn operation_timeout(t: &mavlink::dialects::common::STATUSTEXT_DATA) -> bool {
    t.text
        .to_str()
        .is_ok_and(|t| t.starts_with("Operation timeout"))
}

fn item_suffix(i: &Option<u16>) -> String {
    i.map(|i| format!(" at item {i}")).unwrap_or_default()
}

fn float_eq(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-4 * a.abs().max(b.abs()).max(1.0)
}

/// Compares what was sent with what was read back, item by item.
///
/// Frames are compared up to their float/int twins, and position fields only for
/// commands that carry a position: PX4 reports MAV_FRAME_MISSION and zero x/y/z for
/// the others, whatever was uploaded.
pub fn compare_missions(sent: &[MissionItem], read: &[MissionItem]) -> Result<(), MissionError> {
    if sent.len() != read.len() {
        return Err(MissionError::CountMismatch {
            sent: sent.len(),
            read: read.len(),
        });
    }
    for (i, (s, r)) in sent.iter().zip(read).enumerate() {
        let item = i as u16;
        let mismatch = |field: &'static str, a: String, b: String| MissionError::Mismatch {
            item,
            field,
            sent: a,
            read: b,
        };
        if s.command != r.command {
            return Err(mismatch(
                "command",
                s.command.to_string(),
                r.command.to_string(),
            ));
        }
        const NAMES: [&str; 4] = ["param1", "param2", "param3", "param4"];
        // A fence vertex carries its count (a circle its radius) in param1 and nothing
        // else; a rally point no parameters at all.
        let fence = is_fence_item(s.command);
        let params = match s.command {
            _ if fence => 1,
            RALLY_POINT => 0,
            _ => 4,
        };
        for ((name, a), b) in NAMES.iter().zip(s.params).zip(r.params).take(params) {
            if !float_eq(a, b) {
                return Err(mismatch(name, a.to_string(), b.to_string()));
            }
        }
        if has_position(s.command) {
            let same_frame = if fence {
                is_global(s.frame) && is_global(r.frame)
            } else {
                canonical_frame(s.frame) == canonical_frame(r.frame)
            };
            if !same_frame {
                return Err(mismatch("frame", s.frame.to_string(), r.frame.to_string()));
            }
            if (i64::from(s.x) - i64::from(r.x)).abs() > 1 {
                return Err(mismatch("x", s.x.to_string(), r.x.to_string()));
            }
            if (i64::from(s.y) - i64::from(r.y)).abs() > 1 {
                return Err(mismatch("y", s.y.to_string(), r.y.to_string()));
            }
            if !fence && !float_eq(s.z, r.z) {
                return Err(mismatch("z", s.z.to_string(), r.z.to_string()));
            }
        }
    }
    Ok(())
}

impl Vehicle {
    fn target(&self) -> (u8, u8) {
        (self.sysid(), 1)
    }

    /// The vehicle's seconds per wall-clock second, at least 1 (1 until measured).
    fn clock_rate(&self) -> f64 {
        self.telemetry().clock_rate.unwrap_or(1.0).max(1.0)
    }

    /// The fleet's settings with the mission timeout in the vehicle's own time: PX4 drops
    /// a transfer after 5 s of its clock without hearing from us, which a SITL at speed S
    /// reaches in 5/S s, so our re-requests must come S times sooner (and S times as
    /// many of them).
    async fn mission_cfg(&self) -> super::FleetConfig {
        // The first estimate of the clock comes a quarter second after its first ATTITUDE;
        // a vehicle that sends none is taken at 1×.
        if self.telemetry().attitude.is_some() {
            self.wait_for(std::time::Duration::from_millis(400), |t| {
                t.clock_rate.is_some()
            })
            .await;
        }
        let mut cfg = self.cfg().clone();
        let rate = self.clock_rate();
        // At most a fifth of PX4's protocol timeout between re-sends, so PX4 drops a
        // transfer only when five in a row are lost (0.2 % at 30 % loss), not three (3 %):
        // a dropped download starts over from item 0.
        let interval = cfg.mission_timeout.min(PX4_PROTOCOL_TIMEOUT / 5);
        let budget = cfg.mission_timeout * cfg.mission_retries;
        cfg.mission_timeout = interval.div_f64(rate);
        // As many more tries, so a burst of loss gets as long to pass as at 1×.
        cfg.mission_retries = (budget.as_secs_f64() / interval.as_secs_f64() * rate).ceil() as u32;
        cfg
    }

    /// Uploads `items` (MISSION_COUNT → requests → items → MISSION_ACK).
    pub async fn upload(
        &self,
        kind: MissionType,
        items: &[MissionItem],
    ) -> Result<(), MissionError> {
        let count = u16::try_from(items.len()).map_err(|_| MissionError::TooMany(items.len()))?;
        let wire: Vec<MavMessage> = items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                it.to_wire(i as u16, self.target(), kind)
                    .map_err(|problem| MissionError::BadItem { item: i, problem })
            })
            .collect::<Result<_, _>>()?;
        let cfg = self.mission_cfg().await;
        let stage = MissionStage::Upload;
        let mut txn = self.txn().await;
        let send_count = || {
            MavMessage::MISSION_COUNT(MISSION_COUNT_DATA {
                count,
                target_system: self.sysid(),
                target_component: 1,
                mission_type: kind.mav(),
                opaque_id: 0,
            })
        };
        txn.send(send_count());
        let mut attempts = 0;
        // Since our latest MISSION_COUNT: an ERROR before the first request is a busy
        // manager (or a stale reply to what we sent before it) for this long.
        let mut busy_since = Instant::now();
        let mut busy_retries = 0u32;
        // Backing off from a busy manager until `deadline`, then MISSION_COUNT again.
        // Meanwhile the loop goes on reading, so a request from a transfer PX4 still has
        // open is answered rather than thrown away.
        let mut backing_off = false;
        // Restarts in a row that got no further than the furthest item asked for: under
        // load PX4 may drop a long transfer more than once, but never fails one that moves.
        let mut restarts = Restarts::new();
        let mut furthest: Option<u16> = None;
        let mut refused: Option<MavMissionResult> = None;
        let mut last_sent: Option<u16> = None;
        // The deadline runs from our last send: telemetry arriving meanwhile must not extend it.
        let mut deadline = Instant::now() + cfg.mission_timeout;
        loop {
            let start_over = match txn.recv_until(deadline).await {
                None if std::mem::take(&mut backing_off) => {
                    txn.send(send_count());
                    attempts = 0;
                    deadline = Instant::now() + cfg.mission_timeout;
                    false
                }
                None => {
                    attempts += 1;
                    // The vehicle said MISSION_ERROR mid-upload and then asked for nothing
                    // more: it dropped the transfer, so start it over.
                    if let Some(result) = refused.take() {
                        if !restarts.allowed() {
                            return Err(MissionError::Rejected {
                                stage,
                                item: last_sent,
                                result,
                            });
                        }
                        true
                    } else {
                        if attempts > cfg.mission_retries {
                            return Err(MissionError::Timeout {
                                stage,
                                item: last_sent,
                                attempts,
                            });
                        }
                        // Nudge the vehicle: our last message may have been the one lost.
                        match last_sent {
                            None => txn.send(send_count()),
                            Some(s) => txn.send(wire[s as usize].clone()),
                        }
                        deadline = Instant::now() + cfg.mission_timeout;
                        false
                    }
                }
                Some(inb) => match &inb.msg {
                    // The vehicle dropped the upload ("Operation timeout": PX4 heard nothing
                    // for 5 s of its clock): start it over rather than send items it will
                    // refuse.
                    MavMessage::STATUSTEXT(t) if restarts.allowed() && operation_timeout(t) => true,
                    MavMessage::MISSION_REQUEST_INT(MISSION_REQUEST_INT_DATA {
                        seq,
                        target_system,
                        mission_type,
                        ..
                    })
                    | MavMessage::MISSION_REQUEST(
                        mavlink::dialects::common::MISSION_REQUEST_DATA {
                            seq,
                            target_system,
                            mission_type,
                            ..
                        },
                    ) if txn.for_us(*target_system) && *mission_type == kind.mav() => {
                        let Some(item) = wire.get(*seq as usize) else {
                            return Err(MissionError::Protocol(format!(
                                "vehicle requested item {seq} of a {count}-item upload"
                            )));
                        };
                        txn.send(item.clone());
                        backing_off = false;
                        deadline = Instant::now() + cfg.mission_timeout;
                        if last_sent != Some(*seq) {
                            attempts = 0;
                        }
                        last_sent = Some(*seq);
                        refused = None;
                        false
                    }
                    MavMessage::MISSION_ACK(a)
                        if txn.for_us(a.target_system) && a.mission_type == kind.mav() =>
                    {
                        if a.mavtype == MavMissionResult::MAV_MISSION_ACCEPTED {
                            // An early ACCEPTED is a stale ack from an earlier transfer.
                            if count == 0 || last_sent == Some(count - 1) {
                                return Ok(());
                            }
                        } else if backing_off {
                            // Errors while backing off answer earlier sends (a flood of
                            // them follows items PX4 ignored after dropping the transfer).
                        } else if a.mavtype == MavMissionResult::MAV_MISSION_ERROR
                            && last_sent.is_none()
                            && busy_since.elapsed() < cfg.mission_busy_for
                        {
                            // PX4 answers MISSION_COUNT with a plain ERROR while another
                            // transfer holds its mission manager ("WPM: IGN MISSION_COUNT:
                            // Busy"): it frees itself within its protocol timeout, so try
                            // again, backing off.
                            busy_retries += 1;
                            let wait = busy_backoff(busy_retries);
                            tracing::debug!(
                                "vehicle {}: mission manager busy; MISSION_COUNT again in {wait:?}",
                                self.sysid()
                            );
                            backing_off = true;
                            deadline = Instant::now() + wait;
                        } else if a.mavtype == MavMissionResult::MAV_MISSION_ERROR
                            && last_sent.is_some()
                        {
                            // PX4 answers a repeat of our MISSION_COUNT that reached it after
                            // its first request with a plain ERROR ("WPM: REJ. CMD: Busy") and
                            // goes on receiving; an item it did not expect any more gets the
                            // same. Carry on while it asks for items; start over if it falls
                            // silent.
                            refused = Some(a.mavtype);
                            deadline = Instant::now() + cfg.mission_timeout;
                        } else {
                            return Err(MissionError::Rejected {
                                stage,
                                item: last_sent,
                                result: a.mavtype,
                            });
                        }
                        false
                    }
                    _ => false,
                },
            };
            if start_over {
                if last_sent > furthest {
                    furthest = last_sent;
                    restarts.progress();
                }
                restarts.count += 1;
                tracing::debug!(
                    "vehicle {}: {kind:?} upload starts over (restart {}, had reached item {last_sent:?})",
                    self.sysid(),
                    restarts.count
                );
                last_sent = None;
                attempts = 0;
                busy_since = Instant::now();
                busy_retries = 0;
                backing_off = false;
                txn.send(send_count());
                deadline = Instant::now() + cfg.mission_timeout;
            }
        }
    }

    /// Downloads the vehicle's plan of one type.
    pub async fn download(&self, kind: MissionType) -> Result<Vec<MissionItem>, MissionError> {
        let cfg = self.mission_cfg().await;
        let stage = MissionStage::Download;
        let mut txn = self.txn().await;
        let (sys, comp) = self.target();
        let request_list = MavMessage::MISSION_REQUEST_LIST(MISSION_REQUEST_LIST_DATA {
            target_system: sys,
            target_component: comp,
            mission_type: kind.mav(),
        });
        let request = |seq: u16| {
            MavMessage::MISSION_REQUEST_INT(MISSION_REQUEST_INT_DATA {
                seq,
                target_system: sys,
                target_component: comp,
                mission_type: kind.mav(),
            })
        };
        txn.send(request_list.clone());
        let mut attempts = 0;
        let mut restarts = Restarts::new();
        // The most items any pass got: a restart that gets further is not counted, so
        // heavy loss on a long plan costs time but never fails a transfer that moves.
        let mut furthest = 0;
        let rate = self.clock_rate();
        let mut last_reply = Instant::now();
        let mut count: Option<u16> = None;
        let mut items: Vec<MissionItem> = Vec::new();
        let mut deadline = Instant::now() + cfg.mission_timeout;
        loop {
            let next = items.len() as u16;
            if count == Some(next) {
                break;
            }
            let start_over = match txn.recv_until(deadline).await {
                None => {
                    attempts += 1;
                    // PX4 re-sends the item last asked for, so a silent timeout asks again.
                    // Only once the vehicle has likely dropped the transfer (PX4 then
                    // ignores requests) does the download start over, which PX4 always
                    // answers. PX4 drops it when none of our requests reach it for
                    // PX4_PROTOCOL_TIMEOUT of its clock (five re-sends lost in a row: 0.2 %
                    // at 30 % loss), but five round trips failing either way is 3.5 %: a
                    // restart after one timeout threw away a transfer still open every few
                    // dozen items. So wait two (its "Operation timeout" usually comes
                    // first), or one when the tries have run out.
                    let silent = last_reply.elapsed().mul_f64(rate);
                    let out_of_tries = attempts > cfg.mission_retries;
                    let dropped = silent >= 2 * PX4_PROTOCOL_TIMEOUT
                        || (out_of_tries && silent >= PX4_PROTOCOL_TIMEOUT);
                    if count.is_some() && dropped && restarts.allowed() {
                        true
                    } else if out_of_tries {
                        return Err(MissionError::Timeout {
                            stage,
                            item: count.map(|_| next),
                            attempts,
                        });
                    } else {
                        match count {
                            None => txn.send(request_list.clone()),
                            Some(_) => txn.send(request(next)),
                        }
                        deadline = Instant::now() + cfg.mission_timeout;
                        false
                    }
                }
                Some(inb) => match &inb.msg {
                    // PX4's word that it dropped the transfer ("Operation timeout"): start
                    // over now rather than ask for items it will ignore.
                    MavMessage::STATUSTEXT(t)
                        if count.is_some() && restarts.allowed() && operation_timeout(t) =>
                    {
                        true
                    }
                    MavMessage::MISSION_COUNT(c)
                        if count.is_none()
                            && txn.for_us(c.target_system)
                            && c.mission_type == kind.mav() =>
                    {
                        count = Some(c.count);
                        attempts = 0;
                        last_reply = Instant::now();
                        if c.count > 0 {
                            txn.send(request(0));
                            deadline = Instant::now() + cfg.mission_timeout;
                        }
                        false
                    }
                    MavMessage::MISSION_ACK(a)
                        if txn.for_us(a.target_system)
                            && a.mission_type == kind.mav()
                            && a.mavtype != MavMissionResult::MAV_MISSION_ACCEPTED =>
                    {
                        return Err(MissionError::Rejected {
                            stage,
                            item: count.map(|_| next),
                            result: a.mavtype,
                        });
                    }
                    m => {
                        if let Some((seq, mt, item)) = MissionItem::from_wire(m) {
                            if count.is_some() && seq == next && mt == kind.mav() {
                                items.push(item);
                                attempts = 0;
                                last_reply = Instant::now();
                                if items.len() > furthest {
                                    furthest = items.len();
                                    restarts.progress();
                                }
                                if count != Some(next + 1) {
                                    txn.send(request(next + 1));
                                    deadline = Instant::now() + cfg.mission_timeout;
                                }
                            }
                        }
                        false
                    }
                },
            };
            if start_over {
                restarts.count += 1;
                attempts = 0;
                count = None;
                items.clear();
                last_reply = Instant::now();
                txn.send(request_list.clone());
                deadline = Instant::now() + cfg.mission_timeout;
            }
        }
        txn.send(MavMessage::MISSION_ACK(MISSION_ACK_DATA {
            target_system: sys,
            target_component: comp,
            mavtype: MavMissionResult::MAV_MISSION_ACCEPTED,
            mission_type: kind.mav(),
            opaque_id: 0,
        }));
        Ok(items)
    }

    /// Uploads, reads back and compares item by item. Only then is the plan on board.
    pub async fn upload_verified(
        &self,
        kind: MissionType,
        items: &[MissionItem],
    ) -> Result<(), MissionError> {
        self.upload(kind, items).await?;
        let read = self.download(kind).await?;
        compare_missions(items, &read)
    }

    /// MISSION_CLEAR_ALL for one plan type.
    pub async fn clear(&self, kind: MissionType) -> Result<(), MissionError> {
        let cfg = self.mission_cfg().await;
        let mut txn = self.txn().await;
        let (sys, comp) = self.target();
        let msg = MavMessage::MISSION_CLEAR_ALL(MISSION_CLEAR_ALL_DATA {
            target_system: sys,
            target_component: comp,
            mission_type: kind.mav(),
        });
        for _ in 0..=cfg.mission_retries {
            txn.send(msg.clone());
            let deadline = Instant::now() + cfg.mission_timeout;
            while let Some(inb) = txn.recv_until(deadline).await {
                if let MavMessage::MISSION_ACK(a) = &inb.msg {
                    if txn.for_us(a.target_system) && a.mission_type == kind.mav() {
                        return match a.mavtype {
                            MavMissionResult::MAV_MISSION_ACCEPTED => Ok(()),
                            r => Err(MissionError::Rejected {
                                stage: MissionStage::Clear,
                                item: None,
                                result: r,
                            }),
                        };
                    }
                }
            }
        }
        Err(MissionError::Timeout {
            stage: MissionStage::Clear,
            item: None,
            attempts: cfg.mission_retries + 1,
        })
    }

    /// Makes `seq` the current mission item; confirmed by MISSION_CURRENT.
    pub async fn set_current(&self, seq: u16) -> Result<(), MissionError> {
        let cfg = self.mission_cfg().await;
        let mut txn = self.txn().await;
        let (sys, comp) = self.target();
        let msg = MavMessage::MISSION_SET_CURRENT(MISSION_SET_CURRENT_DATA {
            seq,
            target_system: sys,
            target_component: comp,
        });
        for _ in 0..=cfg.mission_retries {
            txn.send(msg.clone());
            let deadline = Instant::now() + cfg.mission_timeout;
            while let Some(inb) = txn.recv_until(deadline).await {
                match &inb.msg {
                    MavMessage::MISSION_CURRENT(c) if c.seq == seq => return Ok(()),
                    MavMessage::MISSION_ACK(a)
                        if txn.for_us(a.target_system)
                            && a.mavtype != MavMissionResult::MAV_MISSION_ACCEPTED =>
                    {
                        return Err(MissionError::Rejected {
                            stage: MissionStage::SetCurrent,
                            item: Some(seq),
                            result: a.mavtype,
                        })
                    }
                    _ => {}
                }
            }
        }
        Err(MissionError::Timeout {
            stage: MissionStage::SetCurrent,
            item: Some(seq),
            attempts: cfg.mission_retries + 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_nan_and_degrees() {
        let items = vec![
            MissionItem::takeoff(36.56, 103.68, 30.0),
            MissionItem::waypoint(36.561, 103.681, 30.0),
            MissionItem::return_to_launch(),
        ];
        let plan = MissionPlan {
            mission_type: MissionType::Mission,
            items: items.clone(),
        };
        let text = serde_json::to_string(&plan).unwrap();
        assert!(text.contains("36.561"), "{text}");
        assert!(text.contains("null"), "{text}");
        let back: MissionPlan = serde_json::from_str(&text).unwrap();
        compare_missions(&items, &back.items).unwrap();
    }

    #[test]
    fn compare_names_the_item_and_field() {
        let a = vec![MissionItem::waypoint(36.56, 103.68, 30.0); 3];
        let mut b = a.clone();
        b[2].z = 31.0;
        assert_eq!(
            compare_missions(&a, &b).unwrap_err(),
            MissionError::Mismatch {
                item: 2,
                field: "z",
                sent: "30".into(),
                read: "31".into()
            }
        );
        let mut c = a.clone();
        c[1].frame = 6; // the _INT twin of GLOBAL_RELATIVE_ALT is the same frame
        compare_missions(&a, &c).unwrap();
        assert!(matches!(
            compare_missions(&a, &a[..2]),
            Err(MissionError::CountMismatch { sent: 3, read: 2 })
        ));
    }

    #[test]
    fn fence_vertices_compare_as_px4_stores_them() {
        // Sent relative, read back absolute with params 2-4 and altitude dropped: the same
        // vertex to PX4.
        let mut sent = MissionItem::waypoint(36.56, 103.68, 0.0);
        sent.command = 5001;
        sent.params = [4.0, 0.0, 0.0, 0.0];
        let mut read = sent.clone();
        read.frame = 5;
        read.params = [4.0, 0.0, 0.0, 0.0];
        read.z = 1800.0;
        compare_missions(&[sent.clone()], &[read.clone()]).unwrap();
        // The vertex count and the position still count.
        read.params[0] = 5.0;
        assert!(compare_missions(&[sent.clone()], &[read.clone()]).is_err());
        read.params[0] = 4.0;
        read.x += 10;
        assert!(compare_missions(&[sent], &[read]).is_err());
        // A mission waypoint gains nothing from this: relative and absolute differ.
        let wp = MissionItem::waypoint(36.56, 103.68, 30.0);
        let mut abs = wp.clone();
        abs.frame = 5;
        assert!(matches!(
            compare_missions(&[wp], &[abs]),
            Err(MissionError::Mismatch { field: "frame", .. })
        ));
    }
}
