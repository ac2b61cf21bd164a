//! One simulated PX4 multicopter: commands, modes, a point-mass flight model and the
//! telemetry PX4 streams on its GCS link.

#![allow(deprecated)]

use mavlink::dialects::common::*;
use mavlink::types::CharArray;

use crate::mission::{MissionServer, Plans};

/// PX4 custom_mode main/sub numbers (px4_custom_mode.h).
pub const MAIN_AUTO: u8 = 4;
pub const SUB_READY: u8 = 1;
pub const SUB_TAKEOFF: u8 = 2;
pub const SUB_LOITER: u8 = 3;
pub const SUB_MISSION: u8 = 4;
pub const SUB_RTL: u8 = 5;
pub const SUB_LAND: u8 = 6;

const EARTH_R: f64 = 6_371_000.0;
/// PX4 MPC_XY_CRUISE default, m/s.
const CRUISE: f64 = 5.0;
/// PX4 MPC_Z_VEL_MAX_UP default, m/s.
const CLIMB: f64 = 3.0;
/// PX4 MPC_LAND_SPEED default, m/s.
const LAND_SPEED: f64 = 0.7;
/// PX4 NAV_ACC_RAD default, m.
const ACCEPT_RADIUS: f64 = 2.0;
/// PX4 RTL_RETURN_ALT default, m above home.
const RTL_ALT: f64 = 60.0;
/// PX4 COM_DISARM_LAND default, s.
const DISARM_LAND: f64 = 2.0;

pub struct SimVehicle {
    pub sysid: u8,
    pub main_mode: u8,
    pub sub_mode: u8,
    pub armed: bool,
    /// Degrees and metres AMSL.
    pub lat: f64,
    pub lon: f64,
    pub alt: f64,
    pub home: (f64, f64, f64),
    pub vel: [f64; 3],
    pub yaw: f64,
    pub battery: f64,
    pub gps_fix: bool,
    pub plans: Plans,
    pub mission: MissionServer,
    pub current: u16,
    reached: Option<u16>,
    landed_since: Option<f64>,
    in_air: bool,
    pub params: Vec<(String, ParamValueKind)>,
    pub pending_text: Vec<(MavSeverity, String)>,
    pub speed: f64,
    pub gcs: (u8, u8),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamValueKind {
    Int(i32),
    Float(f32),
}

fn default_params() -> Vec<(String, ParamValueKind)> {
    use ParamValueKind::*;
    // A few PX4 parameters with their PX4 defaults.
    [
        ("COM_DL_LOSS_T", Int(10)),
        ("COM_DISARM_LAND", Float(2.0)),
        ("MIS_TAKEOFF_ALT", Float(2.5)),
        ("MPC_XY_CRUISE", Float(5.0)),
        ("MPC_Z_VEL_MAX_UP", Float(3.0)),
        ("MPC_LAND_SPEED", Float(0.7)),
        ("NAV_ACC_RAD", Float(2.0)),
        ("RTL_RETURN_ALT", Float(60.0)),
        ("BAT_LOW_THR", Float(0.15)),
        ("BAT_CRIT_THR", Float(0.07)),
        ("GF_ACTION", Int(2)),
        ("NAV_DLL_ACT", Int(2)),
        ("SYS_AUTOSTART", Int(10040)),
        ("MAV_SYS_ID", Int(1)),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect()
}

fn text50(s: &str) -> CharArray<50> {
    let mut b = [0u8; 50];
    let n = s.len().min(50);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    CharArray::new(b)
}

fn name16(s: &str) -> CharArray<16> {
    let mut b = [0u8; 16];
    let n = s.len().min(16);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    CharArray::new(b)
}

impl SimVehicle {
    pub fn new(sysid: u8, home: (f64, f64, f64), mission_limit: usize) -> Self {
        let mut params = default_params();
        if let Some(p) = params.iter_mut().find(|p| p.0 == "MAV_SYS_ID") {
            p.1 = ParamValueKind::Int(i32::from(sysid));
        }
        Self {
            sysid,
            main_mode: MAIN_AUTO,
            sub_mode: SUB_LOITER,
            armed: false,
            lat: home.0,
            lon: home.1,
            alt: home.2,
            home,
            vel: [0.0; 3],
            yaw: 0.0,
            battery: 1.0,
            gps_fix: true,
            plans: Plans::default(),
            mission: MissionServer::new(mission_limit),
            current: 0,
            reached: None,
            landed_since: None,
            in_air: false,
            params,
            pending_text: Vec::new(),
            speed: CRUISE,
            gcs: (255, 190),
        }
    }

    pub fn custom_mode(&self) -> u32 {
        (u32::from(self.main_mode) << 16) | (u32::from(self.sub_mode) << 24)
    }

    fn set_auto(&mut self, sub: u8) {
        self.main_mode = MAIN_AUTO;
        self.sub_mode = sub;
    }

    fn ack(&self, command: MavCmd, result: MavResult) -> MavMessage {
        MavMessage::COMMAND_ACK(COMMAND_ACK_DATA {
            command,
            result,
            progress: 0,
            result_param2: 0,
            target_system: self.gcs.0,
            target_component: self.gcs.1,
        })
    }

    fn statustext(&self, sev: MavSeverity, text: &str) -> MavMessage {
        MavMessage::STATUSTEXT(STATUSTEXT_DATA {
            severity: sev,
            text: text50(text),
            id: 0,
            chunk_seq: 0,
        })
    }

    /// Handles one message addressed to this vehicle; returns replies.
    pub fn handle(&mut self, msg: &MavMessage, now: f64) -> Vec<MavMessage> {
        match msg {
            MavMessage::COMMAND_LONG(c) => {
                if !addressed(self.sysid, c.target_system, c.target_component) {
                    return vec![];
                }
                let p = [
                    c.param1, c.param2, c.param3, c.param4, c.param5, c.param6, c.param7,
                ];
                self.command(c.command, p, now)
            }
            MavMessage::COMMAND_INT(c) => {
                if !addressed(self.sysid, c.target_system, c.target_component) {
                    return vec![];
                }
                let p = [
                    c.param1,
                    c.param2,
                    c.param3,
                    c.param4,
                    c.x as f32 * 1e-7,
                    c.y as f32 * 1e-7,
                    c.z,
                ];
                self.command(c.command, p, now)
            }
            MavMessage::PARAM_REQUEST_LIST(_) => (0..self.params.len())
                .map(|i| self.param_value(i))
                .collect(),
            MavMessage::PARAM_REQUEST_READ(r) if r.target_system == self.sysid => {
                let idx = if r.param_index >= 0 {
                    Some(r.param_index as usize).filter(|i| *i < self.params.len())
                } else {
                    let name = r.param_id.to_str().unwrap_or("");
                    self.params.iter().position(|p| p.0 == name)
                };
                idx.map(|i| vec![self.param_value(i)]).unwrap_or_default()
            }
            MavMessage::PARAM_SET(s) if s.target_system == self.sysid => {
                let name = s.param_id.to_str().unwrap_or("").to_string();
                let Some(i) = self.params.iter().position(|p| p.0 == name) else {
                    return vec![];
                };
                self.params[i].1 = match self.params[i].1 {
                    ParamValueKind::Int(_) => ParamValueKind::Int(s.param_value.to_bits() as i32),
                    ParamValueKind::Float(_) => ParamValueKind::Float(s.param_value),
                };
                vec![self.param_value(i)]
            }
            MavMessage::MISSION_SET_CURRENT(s) if s.target_system == self.sysid => {
                if (s.seq as usize) < self.plans.mission.len() {
                    self.current = s.seq;
                }
                vec![self.mission_current()]
            }
            m => {
                let targeted = match m {
                    MavMessage::MISSION_COUNT(x) => x.target_system,
                    MavMessage::MISSION_ITEM_INT(x) => x.target_system,
                    MavMessage::MISSION_ITEM(x) => x.target_system,
                    MavMessage::MISSION_REQUEST_LIST(x) => x.target_system,
                    MavMessage::MISSION_REQUEST_INT(x) => x.target_system,
                    MavMessage::MISSION_REQUEST(x) => x.target_system,
                    MavMessage::MISSION_ACK(x) => x.target_system,
                    MavMessage::MISSION_CLEAR_ALL(x) => x.target_system,
                    _ => return vec![],
                };
                if targeted != self.sysid {
                    return vec![];
                }
                let (out, changed) = self.mission.handle(m, &mut self.plans, now);
                if changed {
                    self.current = 0;
                    self.reached = None;
                }
                out
            }
        }
    }

    fn param_value(&self, i: usize) -> MavMessage {
        let (name, v) = &self.params[i];
        let (value, t) = match v {
            ParamValueKind::Int(x) => (
                f32::from_bits(*x as u32),
                MavParamType::MAV_PARAM_TYPE_INT32,
            ),
            ParamValueKind::Float(x) => (*x, MavParamType::MAV_PARAM_TYPE_REAL32),
        };
        MavMessage::PARAM_VALUE(PARAM_VALUE_DATA {
            param_value: value,
            param_count: self.params.len() as u16,
            param_index: i as u16,
            param_id: name16(name),
            param_type: t,
        })
    }

    fn preflight_failure(&self) -> Option<&'static str> {
        // Texts as PX4's health and arming checks report them.
        if !self.gps_fix {
            return Some("Preflight Fail: No valid global position");
        }
        if self.battery < 0.15 {
            return Some("Preflight Fail: low battery");
        }
        None
    }

    fn command(&mut self, cmd: MavCmd, p: [f32; 7], now: f64) -> Vec<MavMessage> {
        use MavCmd::*;
        let mut out = Vec::new();
        let result = match cmd {
            MAV_CMD_COMPONENT_ARM_DISARM => {
                if p[0] >= 0.5 {
                    if self.armed {
                        MavResult::MAV_RESULT_ACCEPTED
                    } else if let Some(why) = self.preflight_failure() {
                        out.push(self.statustext(MavSeverity::MAV_SEVERITY_CRITICAL, why));
                        // PX4 answers a refused arm with TEMPORARILY_REJECTED.
                        MavResult::MAV_RESULT_TEMPORARILY_REJECTED
                    } else {
                        self.armed = true;
                        self.landed_since = Some(now);
                        MavResult::MAV_RESULT_ACCEPTED
                    }
                } else if self.in_air && p[1] != 21196.0 {
                    out.push(self.statustext(
                        MavSeverity::MAV_SEVERITY_CRITICAL,
                        "Disarming denied: not landed",
                    ));
                    MavResult::MAV_RESULT_DENIED
                } else {
                    self.armed = false;
                    MavResult::MAV_RESULT_ACCEPTED
                }
            }
            MAV_CMD_DO_SET_MODE => {
                let (main, sub) = (p[1] as u8, p[2] as u8);
                if main == MAIN_AUTO && sub == SUB_MISSION && self.plans.mission.is_empty() {
                    out.push(self.statustext(
                        MavSeverity::MAV_SEVERITY_CRITICAL,
                        "Mission rejected: no mission",
                    ));
                    MavResult::MAV_RESULT_DENIED
                } else if (1..=10).contains(&main) {
                    self.main_mode = main;
                    self.sub_mode = sub;
                    MavResult::MAV_RESULT_ACCEPTED
                } else {
                    MavResult::MAV_RESULT_DENIED
                }
            }
            MAV_CMD_NAV_TAKEOFF => {
                self.set_auto(SUB_TAKEOFF);
                MavResult::MAV_RESULT_ACCEPTED
            }
            MAV_CMD_MISSION_START => {
                if self.plans.mission.is_empty() {
                    MavResult::MAV_RESULT_DENIED
                } else {
                    self.current = (p[0].max(0.0) as u16).min(self.plans.mission.len() as u16 - 1);
                    self.set_auto(SUB_MISSION);
                    MavResult::MAV_RESULT_ACCEPTED
                }
            }
            MAV_CMD_DO_PAUSE_CONTINUE => {
                if p[0] == 0.0 {
                    self.set_auto(SUB_LOITER);
                } else {
                    self.set_auto(SUB_MISSION);
                }
                MavResult::MAV_RESULT_ACCEPTED
            }
            MAV_CMD_NAV_RETURN_TO_LAUNCH => {
                self.set_auto(SUB_RTL);
                MavResult::MAV_RESULT_ACCEPTED
            }
            MAV_CMD_NAV_LAND => {
                self.set_auto(SUB_LAND);
                MavResult::MAV_RESULT_ACCEPTED
            }
            MAV_CMD_DO_CHANGE_SPEED => {
                if p[1] > 0.0 {
                    self.speed = f64::from(p[1]);
                }
                MavResult::MAV_RESULT_ACCEPTED
            }
            MAV_CMD_SET_MESSAGE_INTERVAL => MavResult::MAV_RESULT_ACCEPTED,
            MAV_CMD_PREFLIGHT_CALIBRATION => {
                if self.armed {
                    MavResult::MAV_RESULT_TEMPORARILY_REJECTED
                } else {
                    // PX4 reports a long-running command with IN_PROGRESS acks first.
                    for progress in [0, 50] {
                        out.push(MavMessage::COMMAND_ACK(COMMAND_ACK_DATA {
                            command: cmd,
                            result: MavResult::MAV_RESULT_IN_PROGRESS,
                            progress,
                            result_param2: 0,
                            target_system: self.gcs.0,
                            target_component: self.gcs.1,
                        }));
                    }
                    MavResult::MAV_RESULT_ACCEPTED
                }
            }
            MAV_CMD_REQUEST_MESSAGE => match p[0] as u32 {
                242 => {
                    out.push(self.home_position());
                    MavResult::MAV_RESULT_ACCEPTED
                }
                0 => {
                    out.push(self.heartbeat());
                    MavResult::MAV_RESULT_ACCEPTED
                }
                _ => MavResult::MAV_RESULT_UNSUPPORTED,
            },
            _ => MavResult::MAV_RESULT_UNSUPPORTED,
        };
        out.push(self.ack(cmd, result));
        out
    }

    /// Advances the flight model by `dt` simulated seconds; returns messages it causes.
    pub fn step(&mut self, dt: f64, now: f64) -> Vec<MavMessage> {
        let mut out = Vec::new();
        let rel = self.alt - self.home.2;
        self.battery = (self.battery
            - dt * if self.in_air {
                1.0 / 1500.0
            } else {
                1.0 / 36000.0
            })
        .max(0.0);
        let mut target: Option<(f64, f64, f64)> = None;
        if self.armed && self.main_mode == MAIN_AUTO {
            match self.sub_mode {
                SUB_TAKEOFF => target = Some((self.lat, self.lon, self.home.2 + 2.5)),
                SUB_MISSION => target = self.mission_target(&mut out),
                SUB_RTL => {
                    let d = dist_m(self.lat, self.lon, self.home.0, self.home.1);
                    target = if d > ACCEPT_RADIUS && rel < RTL_ALT - 0.5 && d > 5.0 {
                        Some((self.lat, self.lon, self.home.2 + RTL_ALT))
                    } else if d > ACCEPT_RADIUS {
                        Some((self.home.0, self.home.1, self.alt))
                    } else {
                        self.set_auto(SUB_LAND);
                        None
                    };
                }
                _ => {}
            }
        }
        let landing = self.armed && self.main_mode == MAIN_AUTO && self.sub_mode == SUB_LAND;
        if landing {
            target = Some((self.lat, self.lon, self.home.2 - 1.0));
        }
        match target {
            Some((lat, lon, alt)) => self.move_toward(lat, lon, alt, dt, landing),
            None => self.vel = [0.0; 3],
        }
        // Land detection: on the ground (PX4's land detector) and auto-disarm.
        if self.alt <= self.home.2 + 0.01
            && self.in_air
            && self.vel[2] >= 0.0
            && target.is_some_and(|t| t.2 < self.alt + 0.5)
        {
            self.in_air = false;
            self.alt = self.home.2;
            self.landed_since = Some(now);
            // PX4 moves home to where it landed.
            self.home = (self.lat, self.lon, self.home.2);
            self.set_auto(SUB_LOITER);
        }
        if self.alt > self.home.2 + 0.3 {
            self.in_air = true;
            self.landed_since = None;
        }
        if self.armed && !self.in_air {
            if let Some(t0) = self.landed_since {
                if now - t0 > DISARM_LAND
                    && self.sub_mode != SUB_TAKEOFF
                    && self.sub_mode != SUB_MISSION
                {
                    self.armed = false;
                }
            }
        }
        out
    }

    fn mission_target(&mut self, out: &mut Vec<MavMessage>) -> Option<(f64, f64, f64)> {
        loop {
            let item = self.plans.mission.get(self.current as usize)?.clone();
            let alt = |z: f32| self.home.2 + f64::from(z);
            let (lat, lon) = (f64::from(item.x) * 1e-7, f64::from(item.y) * 1e-7);
            let done = match item.command {
                MavCmd::MAV_CMD_NAV_TAKEOFF => {
                    if self.alt >= alt(item.z) - 0.5 {
                        true
                    } else {
                        return Some((self.lat, self.lon, alt(item.z)));
                    }
                }
                MavCmd::MAV_CMD_NAV_WAYPOINT | MavCmd::MAV_CMD_NAV_LOITER_TIME => {
                    let d = dist_m(self.lat, self.lon, lat, lon);
                    if d <= ACCEPT_RADIUS && (self.alt - alt(item.z)).abs() < 1.0 {
                        true
                    } else {
                        return Some((lat, lon, alt(item.z)));
                    }
                }
                MavCmd::MAV_CMD_NAV_RETURN_TO_LAUNCH => {
                    self.set_auto(SUB_RTL);
                    return None;
                }
                MavCmd::MAV_CMD_NAV_LAND => {
                    self.set_auto(SUB_LAND);
                    return None;
                }
                MavCmd::MAV_CMD_DO_CHANGE_SPEED => {
                    if item.param2 > 0.0 {
                        self.speed = f64::from(item.param2);
                    }
                    true
                }
                _ => true,
            };
            if done {
                if self.reached != Some(self.current) {
                    self.reached = Some(self.current);
                    out.push(MavMessage::MISSION_ITEM_REACHED(
                        MISSION_ITEM_REACHED_DATA { seq: self.current },
                    ));
                }
                if self.current as usize + 1 >= self.plans.mission.len() {
                    self.set_auto(SUB_LOITER);
                    return None;
                }
                self.current += 1;
            }
        }
    }

    fn move_toward(&mut self, lat: f64, lon: f64, alt: f64, dt: f64, landing: bool) {
        let (n, e) = ne_m(self.lat, self.lon, lat, lon);
        let d = (n * n + e * e).sqrt();
        let step = (self.speed * dt).min(d);
        let (vn, ve) = if d > 1e-6 {
            (n / d * step / dt, e / d * step / dt)
        } else {
            (0.0, 0.0)
        };
        let dz = alt - self.alt;
        let vz_max = if dz > 0.0 {
            CLIMB
        } else if landing {
            LAND_SPEED
        } else {
            1.5
        };
        let vz = dz.signum() * (dz.abs() / dt).min(vz_max);
        self.lat += vn * dt / EARTH_R * 180.0 / std::f64::consts::PI;
        self.lon +=
            ve * dt / (EARTH_R * self.lat.to_radians().cos()) * 180.0 / std::f64::consts::PI;
        self.alt = (self.alt + vz * dt).max(self.home.2);
        self.vel = [vn, ve, -vz];
        if d > 0.5 {
            self.yaw = e.atan2(n);
        }
    }

    pub fn heartbeat(&self) -> MavMessage {
        let mut base = MavModeFlag::MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
            | MavModeFlag::MAV_MODE_FLAG_AUTO_ENABLED
            | MavModeFlag::MAV_MODE_FLAG_GUIDED_ENABLED
            | MavModeFlag::MAV_MODE_FLAG_STABILIZE_ENABLED;
        if self.armed {
            base |= MavModeFlag::MAV_MODE_FLAG_SAFETY_ARMED;
        }
        MavMessage::HEARTBEAT(HEARTBEAT_DATA {
            custom_mode: self.custom_mode(),
            mavtype: MavType::MAV_TYPE_QUADROTOR,
            autopilot: MavAutopilot::MAV_AUTOPILOT_PX4,
            base_mode: base,
            system_status: if self.armed {
                MavState::MAV_STATE_ACTIVE
            } else {
                MavState::MAV_STATE_STANDBY
            },
            mavlink_version: 3,
        })
    }

    pub fn home_position(&self) -> MavMessage {
        MavMessage::HOME_POSITION(HOME_POSITION_DATA {
            latitude: (self.home.0 * 1e7) as i32,
            longitude: (self.home.1 * 1e7) as i32,
            altitude: (self.home.2 * 1000.0) as i32,
            q: [1.0, 0.0, 0.0, 0.0],
            ..Default::default()
        })
    }

    pub fn mission_current(&self) -> MavMessage {
        MavMessage::MISSION_CURRENT(MISSION_CURRENT_DATA {
            seq: self.current,
            total: self.plans.mission.len() as u16,
            ..Default::default()
        })
    }

    /// The telemetry due at simulated time `now`, given the last tick at `prev`.
    pub fn telemetry(&self, prev: f64, now: f64, boot: f64) -> Vec<MavMessage> {
        let due = |hz: f64| (now * hz).floor() > (prev * hz).floor() || prev < 0.0;
        let ms = ((now - boot) * 1000.0) as u32;
        let mut out = Vec::new();
        if due(1.0) {
            out.push(self.heartbeat());
            out.push(MavMessage::SYS_STATUS(SYS_STATUS_DATA {
                voltage_battery: (14_800.0 + 2_000.0 * self.battery) as u16,
                current_battery: if self.in_air { 1500 } else { 50 },
                battery_remaining: (self.battery * 100.0).round() as i8,
                ..Default::default()
            }));
            out.push(MavMessage::EXTENDED_SYS_STATE(EXTENDED_SYS_STATE_DATA {
                vtol_state: MavVtolState::MAV_VTOL_STATE_UNDEFINED,
                landed_state: if self.in_air {
                    MavLandedState::MAV_LANDED_STATE_IN_AIR
                } else {
                    MavLandedState::MAV_LANDED_STATE_ON_GROUND
                },
            }));
            out.push(self.mission_current());
            if let Some(r) = self.reached {
                // PX4 keeps re-sending the last reached item.
                out.push(MavMessage::MISSION_ITEM_REACHED(
                    MISSION_ITEM_REACHED_DATA { seq: r },
                ));
            }
        }
        if due(0.5) {
            out.push(self.home_position());
            out.push(MavMessage::BATTERY_STATUS(BATTERY_STATUS_DATA {
                battery_remaining: (self.battery * 100.0).round() as i8,
                current_battery: if self.in_air { 1500 } else { 50 },
                voltages: [4000; 10],
                ..Default::default()
            }));
        }
        if due(5.0) {
            out.push(MavMessage::GPS_RAW_INT(GPS_RAW_INT_DATA {
                time_usec: u64::from(ms) * 1000,
                lat: (self.lat * 1e7) as i32,
                lon: (self.lon * 1e7) as i32,
                alt: (self.alt * 1000.0) as i32,
                eph: 80,
                epv: 120,
                fix_type: if self.gps_fix {
                    GpsFixType::GPS_FIX_TYPE_3D_FIX
                } else {
                    GpsFixType::GPS_FIX_TYPE_NO_FIX
                },
                satellites_visible: if self.gps_fix { 14 } else { 0 },
                ..Default::default()
            }));
        }
        if due(10.0) {
            out.push(MavMessage::GLOBAL_POSITION_INT(GLOBAL_POSITION_INT_DATA {
                time_boot_ms: ms,
                lat: (self.lat * 1e7) as i32,
                lon: (self.lon * 1e7) as i32,
                alt: (self.alt * 1000.0) as i32,
                relative_alt: ((self.alt - self.home.2) * 1000.0) as i32,
                vx: (self.vel[0] * 100.0) as i16,
                vy: (self.vel[1] * 100.0) as i16,
                vz: (self.vel[2] * 100.0) as i16,
                hdg: ((self.yaw.to_degrees().rem_euclid(360.0)) * 100.0) as u16,
            }));
            out.push(MavMessage::ATTITUDE(ATTITUDE_DATA {
                time_boot_ms: ms,
                yaw: self.yaw as f32,
                ..Default::default()
            }));
        }
        out
    }
}

fn addressed(sysid: u8, target_system: u8, target_component: u8) -> bool {
    (target_system == sysid || target_system == 0)
        && (target_component == 1 || target_component == 0)
}

/// North and east offsets in metres from (lat0, lon0) to (lat1, lon1), degrees in.
pub fn ne_m(lat0: f64, lon0: f64, lat1: f64, lon1: f64) -> (f64, f64) {
    let n = (lat1 - lat0).to_radians() * EARTH_R;
    let e = (lon1 - lon0).to_radians() * EARTH_R * lat0.to_radians().cos();
    (n, e)
}

/// Horizontal distance in metres between two points given in degrees.
pub fn dist_m(lat0: f64, lon0: f64, lat1: f64, lon1: f64) -> f64 {
    let (n, e) = ne_m(lat0, lon0, lat1, lon1);
    (n * n + e * e).sqrt()
}
