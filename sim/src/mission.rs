//! The mission protocol, vehicle side, as PX4's `mavlink_mission.cpp` runs it: one
//! transfer at a time, the vehicle re-requests on its own retry timer, and a finished
//! upload whose last item arrives again is answered with the ACK again.

#![allow(deprecated)]

use mavlink::dialects::common::{
    MavCmd, MavFrame, MavMessage, MavMissionResult, MavMissionType, MavSeverity, MISSION_ACK_DATA,
    MISSION_COUNT_DATA, MISSION_ITEM_DATA, MISSION_ITEM_INT_DATA, MISSION_REQUEST_DATA,
    MISSION_REQUEST_INT_DATA, STATUSTEXT_DATA,
};

/// PX4 v1.16's geofence capacity, items (DM_KEY_FENCE_POINTS_MAX).
pub const FENCE_CAPACITY: usize = 64;
/// PX4 v1.16's rally point capacity.
pub const RALLY_CAPACITY: usize = 32;

/// The three stored plans.
#[derive(Clone, Debug, Default)]
pub struct Plans {
    pub mission: Vec<MISSION_ITEM_INT_DATA>,
    pub fence: Vec<MISSION_ITEM_INT_DATA>,
    pub rally: Vec<MISSION_ITEM_INT_DATA>,
}

impl Plans {
    pub fn get(&self, t: MavMissionType) -> &Vec<MISSION_ITEM_INT_DATA> {
        match t {
            MavMissionType::MAV_MISSION_TYPE_FENCE => &self.fence,
            MavMissionType::MAV_MISSION_TYPE_RALLY => &self.rally,
            _ => &self.mission,
        }
    }

    fn get_mut(&mut self, t: MavMissionType) -> &mut Vec<MISSION_ITEM_INT_DATA> {
        match t {
            MavMissionType::MAV_MISSION_TYPE_FENCE => &mut self.fence,
            MavMissionType::MAV_MISSION_TYPE_RALLY => &mut self.rally,
            _ => &mut self.mission,
        }
    }
}

enum State {
    Idle,
    Receiving {
        kind: MavMissionType,
        count: u16,
        items: Vec<MISSION_ITEM_INT_DATA>,
        last_request: f64,
        last_heard: f64,
    },
    /// A download in progress: PX4 answers a MISSION_COUNT with MAV_MISSION_ERROR
    /// ("WPM: IGN MISSION_COUNT: Busy") until the GCS's ACK or its protocol timeout.
    Sending {
        kind: MavMissionType,
        /// The next item PX4 expects to be asked for (its `_transfer_seq`).
        seq: u16,
        count: u16,
        last_heard: f64,
    },
}

/// Vehicle-side mission protocol state.
pub struct MissionServer {
    state: State,
    /// Most items one plan may hold (PX4 on flight controllers: 500; SITL far more).
    pub limit: usize,
    /// Re-request period (PX4: MAVLINK_MISSION_RETRY_TIMEOUT_DEFAULT, 250 ms).
    pub retry_s: f64,
    /// Give up a transfer after this long without hearing from the GCS
    /// (PX4: MAVLINK_MISSION_PROTOCOL_TIMEOUT_DEFAULT, 5 s).
    pub abort_s: f64,
    /// PX4 asks for item 0 with the legacy MISSION_REQUEST until it has seen a MISSION_ITEM_INT.
    seen_int: bool,
    /// The last completed upload, to re-ack a repeated last item.
    completed: Option<(MavMissionType, u16)>,
    /// The transfer partner (system, component), where replies go.
    pub target: (u8, u8),
    /// Who sent the message being handled.
    pub sender: (u8, u8),
    /// Fault: fall silent once an upload has delivered this many items.
    pub stall_after: Option<u16>,
}

impl MissionServer {
    pub fn new(limit: usize) -> Self {
        Self {
            state: State::Idle,
            limit,
            retry_s: 0.25,
            abort_s: 5.0,
            seen_int: false,
            completed: None,
            target: (255, 190),
            sender: (255, 190),
            stall_after: None,
        }
    }

    fn stalled(&self) -> bool {
        match (&self.state, self.stall_after) {
            (State::Receiving { items, .. }, Some(n)) => items.len() >= n as usize,
            _ => false,
        }
    }

    fn ack(&self, kind: MavMissionType, r: MavMissionResult) -> MavMessage {
        MavMessage::MISSION_ACK(MISSION_ACK_DATA {
            target_system: self.target.0,
            target_component: self.target.1,
            mavtype: r,
            mission_type: kind,
            opaque_id: 0,
        })
    }

    fn request(&self, kind: MavMissionType, seq: u16) -> MavMessage {
        if self.seen_int {
            MavMessage::MISSION_REQUEST_INT(MISSION_REQUEST_INT_DATA {
                seq,
                target_system: self.target.0,
                target_component: self.target.1,
                mission_type: kind,
            })
        } else {
            MavMessage::MISSION_REQUEST(MISSION_REQUEST_DATA {
                seq,
                target_system: self.target.0,
                target_component: self.target.1,
                mission_type: kind,
            })
        }
    }

    /// Handles one message; returns replies, and whether the mission plan changed.
    pub fn handle(
        &mut self,
        msg: &MavMessage,
        plans: &mut Plans,
        now: f64,
    ) -> (Vec<MavMessage>, bool) {
        let mut out = Vec::new();
        if self.stalled() {
            return (out, false);
        }
        let mut changed = false;
        // A transfer's partner is whoever starts it, as PX4 takes msg->sysid/compid.
        if matches!(self.state, State::Idle)
            && matches!(
                msg,
                MavMessage::MISSION_COUNT(_)
                    | MavMessage::MISSION_REQUEST_LIST(_)
                    | MavMessage::MISSION_CLEAR_ALL(_)
            )
        {
            self.target = self.sender;
        }
        match msg {
            MavMessage::MISSION_COUNT(c) if matches!(self.state, State::Sending { .. }) => {
                out.push(statustext(
                    MavSeverity::MAV_SEVERITY_CRITICAL,
                    "WPM: IGN MISSION_COUNT: Busy",
                ));
                out.push(self.ack(c.mission_type, MavMissionResult::MAV_MISSION_ERROR));
            }
            // PX4 takes a repeated MISSION_COUNT as its first request lost, and refuses
            // one that comes after items have arrived.
            MavMessage::MISSION_COUNT(c) if matches!(self.state, State::Receiving { .. }) => {
                if let State::Receiving {
                    kind,
                    items,
                    last_request,
                    last_heard,
                    ..
                } = &mut self.state
                {
                    *last_heard = now;
                    if items.is_empty() {
                        *last_request = now;
                        let k = *kind;
                        out.push(self.request(k, 0));
                    } else {
                        out.push(statustext(
                            MavSeverity::MAV_SEVERITY_CRITICAL,
                            "WPM: REJ. CMD: Busy",
                        ));
                        out.push(self.ack(c.mission_type, MavMissionResult::MAV_MISSION_ERROR));
                    }
                }
            }
            MavMessage::MISSION_COUNT(c) => {
                self.completed = None;
                // PX4 v1.16 holds 64 fence items and 32 rally points (its dataman sizes; a
                // larger MISSION_COUNT is answered NO_SPACE, as seen on its SITL).
                let capacity = match c.mission_type {
                    MavMissionType::MAV_MISSION_TYPE_FENCE => FENCE_CAPACITY.min(self.limit),
                    MavMissionType::MAV_MISSION_TYPE_RALLY => RALLY_CAPACITY.min(self.limit),
                    _ => self.limit,
                };
                if c.count as usize > capacity {
                    out.push(self.ack(c.mission_type, MavMissionResult::MAV_MISSION_NO_SPACE));
                    self.state = State::Idle;
                } else if c.count == 0 {
                    plans.get_mut(c.mission_type).clear();
                    changed = c.mission_type == MavMissionType::MAV_MISSION_TYPE_MISSION;
                    out.push(self.ack(c.mission_type, MavMissionResult::MAV_MISSION_ACCEPTED));
                    self.state = State::Idle;
                } else {
                    self.state = State::Receiving {
                        kind: c.mission_type,
                        count: c.count,
                        items: Vec::with_capacity(c.count as usize),
                        last_request: now,
                        last_heard: now,
                    };
                    out.push(self.request(c.mission_type, 0));
                }
            }
            MavMessage::MISSION_ITEM_INT(item) => {
                self.seen_int = true;
                changed = self.take_item(item.clone(), plans, now, &mut out);
            }
            MavMessage::MISSION_ITEM(i) => {
                let global = matches!(i.frame as u8, 0 | 3 | 10);
                let conv = |v: f32| {
                    if global {
                        (f64::from(v) * 1e7).round() as i32
                    } else {
                        v as i32
                    }
                };
                let item = MISSION_ITEM_INT_DATA {
                    param1: i.param1,
                    param2: i.param2,
                    param3: i.param3,
                    param4: i.param4,
                    x: conv(i.x),
                    y: conv(i.y),
                    z: i.z,
                    seq: i.seq,
                    command: i.command,
                    target_system: i.target_system,
                    target_component: i.target_component,
                    frame: i.frame,
                    current: i.current,
                    autocontinue: i.autocontinue,
                    mission_type: i.mission_type,
                };
                changed = self.take_item(item, plans, now, &mut out);
            }
            MavMessage::MISSION_REQUEST_LIST(r) => {
                // A download that sent everything ends here even without the GCS's ACK.
                if let State::Sending { seq, count, .. } = self.state {
                    if seq == count {
                        self.state = State::Idle;
                    }
                }
                let restart =
                    matches!(self.state, State::Sending { kind, .. } if kind == r.mission_type);
                if matches!(self.state, State::Idle) || restart {
                    let n = plans.get(r.mission_type).len() as u16;
                    out.push(MavMessage::MISSION_COUNT(MISSION_COUNT_DATA {
                        count: n,
                        target_system: self.target.0,
                        target_component: self.target.1,
                        mission_type: r.mission_type,
                        opaque_id: 0,
                    }));
                    self.state = State::Sending {
                        kind: r.mission_type,
                        seq: 0,
                        count: n,
                        last_heard: now,
                    };
                } else {
                    out.push(statustext(
                        MavSeverity::MAV_SEVERITY_INFO,
                        "Mission download request ignored, already active",
                    ));
                }
            }
            MavMessage::MISSION_REQUEST_INT(r) => {
                self.serve_request(r.seq, r.mission_type, true, plans, now, &mut out)
            }
            MavMessage::MISSION_REQUEST(r) => {
                self.serve_request(r.seq, r.mission_type, false, plans, now, &mut out)
            }
            MavMessage::MISSION_ACK(a) => {
                if matches!(self.state, State::Sending { kind, .. } if kind == a.mission_type) {
                    self.state = State::Idle;
                } else if let State::Receiving {
                    kind,
                    items,
                    last_request,
                    last_heard,
                    ..
                } = &mut self.state
                {
                    *last_heard = now;
                    match a.mavtype {
                        // A GCS that takes only one kind of request (MAVSDK: the _INT one)
                        // answers the other UNSUPPORTED: PX4 switches kind and asks again.
                        MavMissionResult::MAV_MISSION_UNSUPPORTED => {
                            *last_request = now;
                            let (k, n) = (*kind, items.len() as u16);
                            self.seen_int = !self.seen_int;
                            out.push(self.request(k, n));
                        }
                        MavMissionResult::MAV_MISSION_OPERATION_CANCELLED => {
                            self.state = State::Idle;
                        }
                        _ => {}
                    }
                }
            }
            MavMessage::MISSION_CLEAR_ALL(c) => {
                let kinds: &[MavMissionType] =
                    if c.mission_type == MavMissionType::MAV_MISSION_TYPE_ALL {
                        &[
                            MavMissionType::MAV_MISSION_TYPE_MISSION,
                            MavMissionType::MAV_MISSION_TYPE_FENCE,
                            MavMissionType::MAV_MISSION_TYPE_RALLY,
                        ]
                    } else {
                        std::slice::from_ref(&c.mission_type)
                    };
                for k in kinds {
                    plans.get_mut(*k).clear();
                }
                changed = true;
                self.state = State::Idle;
                out.push(self.ack(c.mission_type, MavMissionResult::MAV_MISSION_ACCEPTED));
            }
            _ => {}
        }
        (out, changed)
    }

    /// A request during a download, as PX4 answers it: the next item or the last one
    /// again; anything else aborts the transfer, and without one it is ignored. The item
    /// goes out in the request's kind (`int`: MISSION_REQUEST_INT), formatted by
    /// [`as_px4_sends`].
    fn serve_request(
        &mut self,
        want: u16,
        mission_type: MavMissionType,
        int: bool,
        plans: &Plans,
        now: f64,
        out: &mut Vec<MavMessage>,
    ) {
        let State::Sending {
            kind,
            seq,
            count,
            last_heard,
        } = &mut self.state
        else {
            if matches!(self.state, State::Receiving { .. }) {
                out.push(statustext(
                    MavSeverity::MAV_SEVERITY_CRITICAL,
                    "WPM: REJ. CMD: Busy",
                ));
            }
            // Idle: PX4 ignores it silently ("some OSDs have buggy implementations").
            return;
        };
        if *kind != mission_type {
            return;
        }
        *last_heard = now;
        let item = if want == *seq && *seq < *count {
            *seq += 1;
            plans.get(mission_type).get(want as usize)
        } else if want.checked_add(1) == Some(*seq) {
            plans.get(mission_type).get(want as usize)
        } else {
            None
        };
        let Some(item) = item else {
            self.state = State::Idle;
            out.push(self.ack(mission_type, MavMissionResult::MAV_MISSION_ERROR));
            out.push(statustext(
                MavSeverity::MAV_SEVERITY_CRITICAL,
                "WPM: REJ. CMD: Req. WP was unexpected",
            ));
            return;
        };
        let mut item = as_px4_sends(item, mission_type);
        item.target_system = self.target.0;
        item.target_component = self.target.1;
        out.push(if int {
            MavMessage::MISSION_ITEM_INT(item)
        } else {
            MavMessage::MISSION_ITEM(legacy(&item))
        });
    }

    fn take_item(
        &mut self,
        item: MISSION_ITEM_INT_DATA,
        plans: &mut Plans,
        now: f64,
        out: &mut Vec<MavMessage>,
    ) -> bool {
        let State::Receiving {
            kind,
            count,
            items,
            last_request,
            last_heard,
        } = &mut self.state
        else {
            // PX4 re-acks a repeated last item of the upload it just finished, and
            // refuses any other item outside an upload.
            let k = item.mission_type;
            match self.completed {
                Some((done, n)) if done == k && item.seq + 1 == n => {
                    out.push(self.ack(k, MavMissionResult::MAV_MISSION_ACCEPTED));
                }
                _ => {
                    let text = if matches!(self.state, State::Sending { .. }) {
                        "IGN MISSION_ITEM: Busy"
                    } else {
                        "IGN MISSION_ITEM: No transfer"
                    };
                    out.push(statustext(MavSeverity::MAV_SEVERITY_CRITICAL, text));
                    out.push(self.ack(k, MavMissionResult::MAV_MISSION_ERROR));
                }
            }
            return false;
        };
        if item.mission_type != *kind {
            return false;
        }
        *last_heard = now;
        let next = items.len() as u16;
        if item.seq != next {
            // PX4 ignores an item out of sequence; its retry timer asks again.
            return false;
        }
        if let Some(problem) = check_item(&item) {
            let k = *kind;
            self.state = State::Idle;
            out.push(self.ack(k, problem));
            return false;
        }
        items.push(item);
        if items.len() as u16 == *count {
            let (k, n) = (*kind, *count);
            let done = std::mem::take(items);
            *plans.get_mut(k) = done;
            self.state = State::Idle;
            self.completed = Some((k, n));
            out.push(self.ack(k, MavMissionResult::MAV_MISSION_ACCEPTED));
            return k == MavMissionType::MAV_MISSION_TYPE_MISSION;
        }
        let k = *kind;
        *last_request = now;
        out.push(self.request(k, next + 1));
        false
    }

    /// Re-requests on PX4's retry timer; gives up a transfer after its protocol timeout,
    /// saying only "Operation timeout" (PX4 sends no MISSION_ACK then).
    pub fn tick(&mut self, now: f64) -> Vec<MavMessage> {
        let mut out = Vec::new();
        if self.stalled() {
            return out;
        }
        let last_heard = match &self.state {
            State::Idle => return out,
            State::Receiving { last_heard, .. } | State::Sending { last_heard, .. } => *last_heard,
        };
        if now - last_heard > self.abort_s {
            self.state = State::Idle;
            out.push(statustext(
                MavSeverity::MAV_SEVERITY_CRITICAL,
                "Operation timeout",
            ));
        } else if let State::Receiving {
            kind,
            items,
            last_request,
            ..
        } = &mut self.state
        {
            if now - *last_request >= self.retry_s {
                *last_request = now;
                let (k, n) = (*kind, items.len() as u16);
                out.push(self.request(k, n));
            }
        }
        out
    }
}

/// A STATUSTEXT as PX4's mission manager words it.
fn statustext(severity: MavSeverity, text: &str) -> MavMessage {
    let mut b = [0u8; 50];
    let n = text.len().min(50);
    b[..n].copy_from_slice(&text.as_bytes()[..n]);
    MavMessage::STATUSTEXT(STATUSTEXT_DATA {
        severity,
        text: b.into(),
        id: 0,
        chunk_seq: 0,
    })
}

/// An item as PX4 sends it back (mavlink_mission.cpp, format_mavlink_mission_item): it keeps
/// a position item's fields, not the message, so the frame is rebuilt from "altitude
/// relative or not" (the _INT frames here; [`legacy`] turns them back) and only the params
/// its command uses survive. A fence point is kept absolute (PX4's geofence stores AMSL).
fn as_px4_sends(stored: &MISSION_ITEM_INT_DATA, kind: MavMissionType) -> MISSION_ITEM_INT_DATA {
    use MavCmd::*;
    let mut item = stored.clone();
    if item.frame == MavFrame::MAV_FRAME_MISSION {
        return item;
    }
    let relative = matches!(
        item.frame,
        MavFrame::MAV_FRAME_GLOBAL_RELATIVE_ALT | MavFrame::MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
    ) && kind != MavMissionType::MAV_MISSION_TYPE_FENCE;
    item.frame = if relative {
        MavFrame::MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
    } else {
        MavFrame::MAV_FRAME_GLOBAL_INT
    };
    let p = [item.param1, item.param2, item.param3, item.param4];
    let keep: [bool; 4] = match item.command {
        MAV_CMD_NAV_WAYPOINT => [true, true, false, true],
        MAV_CMD_NAV_LOITER_UNLIM => [false, false, true, true],
        MAV_CMD_NAV_LOITER_TIME => [true, true, true, true],
        MAV_CMD_NAV_LAND => [false, true, false, true],
        MAV_CMD_NAV_TAKEOFF | MAV_CMD_NAV_VTOL_TAKEOFF | MAV_CMD_NAV_VTOL_LAND => {
            [false, false, false, true]
        }
        MAV_CMD_NAV_LOITER_TO_ALT => [true, true, false, true],
        MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION
        | MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION
        | MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION
        | MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION => [true, false, false, false],
        _ => [false; 4],
    };
    let [a, b, c, d] = std::array::from_fn(|i| if keep[i] { p[i] } else { 0.0 });
    (item.param1, item.param2, item.param3, item.param4) = (a, b, c, d);
    item
}

/// The legacy MISSION_ITEM for an item as PX4 formats it: degrees as floats and the
/// non-_INT frames.
fn legacy(i: &MISSION_ITEM_INT_DATA) -> MISSION_ITEM_DATA {
    let (frame, scale) = match i.frame {
        MavFrame::MAV_FRAME_GLOBAL_INT => (MavFrame::MAV_FRAME_GLOBAL, 1e-7),
        MavFrame::MAV_FRAME_GLOBAL_RELATIVE_ALT_INT => {
            (MavFrame::MAV_FRAME_GLOBAL_RELATIVE_ALT, 1e-7)
        }
        f => (f, 1.0),
    };
    MISSION_ITEM_DATA {
        param1: i.param1,
        param2: i.param2,
        param3: i.param3,
        param4: i.param4,
        x: (f64::from(i.x) * scale) as f32,
        y: (f64::from(i.y) * scale) as f32,
        z: i.z,
        seq: i.seq,
        command: i.command,
        target_system: i.target_system,
        target_component: i.target_component,
        frame,
        current: i.current,
        autocontinue: i.autocontinue,
        mission_type: i.mission_type,
    }
}

/// What PX4 refuses in a mission item, as a MAV_MISSION_RESULT.
fn check_item(item: &MISSION_ITEM_INT_DATA) -> Option<MavMissionResult> {
    let cmd = item.command as u32;
    let positional = cmd < 100 || (5000..=5100).contains(&cmd);
    if positional {
        let ok_frame = matches!(
            item.frame,
            MavFrame::MAV_FRAME_GLOBAL
                | MavFrame::MAV_FRAME_GLOBAL_INT
                | MavFrame::MAV_FRAME_GLOBAL_RELATIVE_ALT
                | MavFrame::MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
                | MavFrame::MAV_FRAME_MISSION
        );
        if !ok_frame {
            return Some(MavMissionResult::MAV_MISSION_UNSUPPORTED_FRAME);
        }
        let has_xy = !matches!(
            item.command,
            MavCmd::MAV_CMD_NAV_RETURN_TO_LAUNCH
                | MavCmd::MAV_CMD_NAV_LAND
                | MavCmd::MAV_CMD_NAV_TAKEOFF
        ) && item.frame != MavFrame::MAV_FRAME_MISSION;
        if has_xy && !(-900_000_000..=900_000_000).contains(&item.x) {
            return Some(MavMissionResult::MAV_MISSION_INVALID_PARAM5_X);
        }
        if has_xy && !(-1_800_000_000..=1_800_000_000).contains(&item.y) {
            return Some(MavMissionResult::MAV_MISSION_INVALID_PARAM6_Y);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(n: u16) -> MavMessage {
        MavMessage::MISSION_COUNT(MISSION_COUNT_DATA {
            count: n,
            target_system: 1,
            target_component: 1,
            ..Default::default()
        })
    }

    fn item(seq: u16) -> MavMessage {
        MavMessage::MISSION_ITEM_INT(MISSION_ITEM_INT_DATA {
            seq,
            x: 365_600_000,
            y: 1_036_800_000,
            z: 30.0,
            command: MavCmd::MAV_CMD_NAV_WAYPOINT,
            frame: MavFrame::MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
            ..Default::default()
        })
    }

    #[test]
    fn first_request_is_legacy_then_int_and_a_repeated_last_item_is_re_acked() {
        let mut s = MissionServer::new(500);
        let mut plans = Plans::default();
        let (out, _) = s.handle(&count(2), &mut plans, 0.0);
        assert!(matches!(out[0], MavMessage::MISSION_REQUEST(ref r) if r.seq == 0));
        let (out, _) = s.handle(&item(0), &mut plans, 0.1);
        assert!(matches!(out[0], MavMessage::MISSION_REQUEST_INT(ref r) if r.seq == 1));
        let (out, changed) = s.handle(&item(1), &mut plans, 0.2);
        assert!(changed);
        assert!(
            matches!(out[0], MavMessage::MISSION_ACK(ref a) if a.mavtype == MavMissionResult::MAV_MISSION_ACCEPTED)
        );
        assert_eq!(plans.mission.len(), 2);
        let (out, _) = s.handle(&item(1), &mut plans, 0.3);
        assert!(
            matches!(out[0], MavMessage::MISSION_ACK(ref a) if a.mavtype == MavMissionResult::MAV_MISSION_ACCEPTED)
        );
    }

    #[test]
    fn re_requests_on_the_retry_timer_and_gives_up_after_the_protocol_timeout() {
        let mut s = MissionServer::new(500);
        let mut plans = Plans::default();
        s.handle(&count(3), &mut plans, 0.0);
        assert!(s.tick(0.1).is_empty());
        assert!(matches!(s.tick(0.3)[..], [MavMessage::MISSION_REQUEST(ref r)] if r.seq == 0));
        let out = s.tick(5.1);
        assert!(
            matches!(out[..], [MavMessage::STATUSTEXT(ref t)] if t.text.to_str().unwrap() == "Operation timeout"),
            "PX4 says so, with no MISSION_ACK: {out:?}"
        );
        assert!(plans.mission.is_empty());
        // A late item finds no transfer.
        let (out, _) = s.handle(&item(0), &mut plans, 5.2);
        assert!(
            matches!(out[..], [_, MavMessage::MISSION_ACK(ref a)] if a.mavtype == MavMissionResult::MAV_MISSION_ERROR),
            "{out:?}"
        );
        assert!(plans.mission.is_empty());
    }

    fn request_list() -> MavMessage {
        MavMessage::MISSION_REQUEST_LIST(mavlink::dialects::common::MISSION_REQUEST_LIST_DATA {
            target_system: 1,
            target_component: 1,
            ..Default::default()
        })
    }

    fn request(seq: u16) -> MavMessage {
        MavMessage::MISSION_REQUEST_INT(MISSION_REQUEST_INT_DATA {
            seq,
            target_system: 1,
            target_component: 1,
            ..Default::default()
        })
    }

    fn served(out: &[MavMessage]) -> Option<u16> {
        match out {
            [MavMessage::MISSION_ITEM_INT(i)] => Some(i.seq),
            _ => None,
        }
    }

    #[test]
    fn a_download_serves_the_next_item_or_the_last_again_and_nothing_without_a_transfer() {
        let mut plans = Plans {
            mission: (0..4)
                .map(|seq| MISSION_ITEM_INT_DATA {
                    seq,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let mut s = MissionServer::new(500);
        // Idle: a request is ignored, as PX4 does.
        assert!(s.handle(&request(0), &mut plans, 0.0).0.is_empty());
        let (out, _) = s.handle(&request_list(), &mut plans, 0.1);
        assert!(matches!(out[..], [MavMessage::MISSION_COUNT(ref c)] if c.count == 4));
        assert_eq!(served(&s.handle(&request(0), &mut plans, 0.2).0), Some(0));
        assert_eq!(served(&s.handle(&request(1), &mut plans, 0.3).0), Some(1));
        assert_eq!(served(&s.handle(&request(1), &mut plans, 0.4).0), Some(1));
        // Busy for an upload meanwhile.
        let (out, _) = s.handle(&count(2), &mut plans, 0.5);
        assert!(
            matches!(out.last(), Some(MavMessage::MISSION_ACK(a)) if a.mavtype == MavMissionResult::MAV_MISSION_ERROR)
        );
        // The same GCS may start the download over.
        s.handle(&request_list(), &mut plans, 0.6);
        assert_eq!(served(&s.handle(&request(0), &mut plans, 0.7).0), Some(0));
        // Skipping ahead aborts the transfer.
        let (out, _) = s.handle(&request(3), &mut plans, 0.8);
        assert!(
            matches!(out[0], MavMessage::MISSION_ACK(ref a) if a.mavtype == MavMissionResult::MAV_MISSION_ERROR)
        );
        assert!(s.handle(&request(1), &mut plans, 0.9).0.is_empty());
        // After 5 s without a request PX4 drops the download and says so.
        s.handle(&request_list(), &mut plans, 1.0);
        s.handle(&request(0), &mut plans, 1.1);
        let out = s.tick(6.2);
        assert!(
            matches!(out[..], [MavMessage::STATUSTEXT(ref t)] if t.text.to_str().unwrap() == "Operation timeout")
        );
        assert!(s.handle(&request(1), &mut plans, 6.3).0.is_empty());
    }

    #[test]
    fn too_many_items_is_no_space() {
        let mut s = MissionServer::new(500);
        let (out, _) = s.handle(&count(501), &mut Plans::default(), 0.0);
        assert!(
            matches!(out[0], MavMessage::MISSION_ACK(ref a) if a.mavtype == MavMissionResult::MAV_MISSION_NO_SPACE)
        );
    }
}
