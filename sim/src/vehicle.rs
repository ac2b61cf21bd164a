//! One simulated PX4 multicopter: commands, modes, a point-mass flight model and the
//! telemetry PX4 streams on its GCS link.

#![allow(deprecated)]

use mavlink::dialects::common::*;
use mavlink::types::CharArray;

use crate::failsafe::{Action, Geofence};
use crate::mission::{MissionServer, Plans};
use crate::params::Params;
use crate::rng::Rng;
use crate::streams::{id, LinkMode, Streams};

/// PX4 custom_mode main/sub numbers (px4_custom_mode.h).
pub const MAIN_AUTO: u8 = 4;
pub const SUB_READY: u8 = 1;
pub const SUB_TAKEOFF: u8 = 2;
pub const SUB_LOITER: u8 = 3;
pub const SUB_MISSION: u8 = 4;
pub const SUB_RTL: u8 = 5;
pub const SUB_LAND: u8 = 6;
/// PX4 main modes that need manual control: MANUAL, ALTCTL, POSCTL, ACRO, STABILIZED,
/// RATTITUDE.
const MANUAL_MODES: [u8; 6] = [1, 2, 3, 5, 7, 8];

const EARTH_R: f64 = 6_371_000.0;
/// PX4 MPC_XY_CRUISE default, m/s.
const CRUISE: f64 = 5.0;
/// PX4 MPC_Z_VEL_MAX_UP default, m/s.
const CLIMB: f64 = 3.0;
/// PX4 MPC_LAND_SPEED default, m/s.
const LAND_SPEED: f64 = 0.7;
/// PX4 MPC_LAND_ALT1 default, m: below it the descent slows to MPC_LAND_SPEED.
const LAND_ALT1: f64 = 10.0;
/// PX4 NAV_ACC_RAD default, m.
const ACCEPT_RADIUS: f64 = 2.0;
/// PX4 COM_DISARM_LAND default, s.
const DISARM_LAND: f64 = 2.0;
/// Linear drag of a small multicopter, 1/s: 5 m/s of airspeed needs about 4° of tilt.
const DRAG: f64 = 0.15;
/// PX4 MPC_ACC_HOR default, m/s².
const ACC_HOR: f64 = 3.0;
/// PX4 MPC_YAWRAUTO_MAX default, rad/s (45 °/s).
const YAW_RATE: f64 = std::f64::consts::PI / 4.0;
/// SYS_STATUS sensor bits as PX4 v1.16 SITL (SIH quadrotor) reports them, read off it:
/// present, enabled, and health without PREARM_CHECK.
const PX4_SENSORS_PRESENT: u32 = 0x0200_402f;
const PX4_SENSORS_ENABLED: u32 = 0x0201_402f;
const PX4_SENSORS_HEALTH: u32 = 0x0320_c83f;
/// MAV_SYS_STATUS_SENSOR_GPS, _BATTERY and MAV_SYS_STATUS_PREARM_CHECK.
const SENSOR_GPS: u32 = 0x20;
const SENSOR_BATTERY: u32 = 0x0200_0000;
const SENSOR_PREARM_CHECK: u32 = 0x1000_0000;

/// Simulated seconds PX4's navigator takes to check a new mission after its upload.
const MISSION_CHECK_S: f64 = 0.2;
/// Hover endurance on a full battery, s (a 25-minute multicopter).
const ENDURANCE_S: f64 = 1500.0;

/// Per-vehicle sensor and battery faults, in simulated seconds.
#[derive(Clone, Debug, Default)]
pub struct VehicleFaults {
    /// GPS lost from `start` for `len` seconds.
    pub gps_loss: Option<(f64, f64)>,
    /// The battery fails at this time: it reads critical from then on.
    pub battery_failure_at: Option<f64>,
    /// The battery drops just below BAT_LOW_THR (once), as a sagging cell does, when the
    /// vehicle has been in the air this long in all.
    pub battery_low_after_airborne_s: Option<f64>,
}

/// GPS error model: a slowly wandering bias (first-order Gauss–Markov) plus white noise.
#[derive(Clone, Copy, Debug)]
pub struct GpsNoise {
    /// Standard deviation of the bias, m.
    pub bias_sigma_m: f64,
    /// Correlation time of the bias, s.
    pub bias_tau_s: f64,
    /// Standard deviation of the white noise, m.
    pub white_sigma_m: f64,
}

impl Default for GpsNoise {
    fn default() -> Self {
        Self {
            bias_sigma_m: 1.2,
            bias_tau_s: 60.0,
            white_sigma_m: 0.3,
        }
    }
}

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
    /// The mission ran to its end (PX4's mission_result.finished): MISSION_CURRENT says
    /// complete until a new mission or a restart of this one.
    mission_complete: bool,
    landed_since: Option<f64>,
    in_air: bool,
    pub params: Params,
    pub pending_text: Vec<(MavSeverity, String)>,
    pub speed: f64,
    pub gcs: (u8, u8),
    /// Where AUTO.LOITER holds (after DO_REPOSITION or a pause); None: where it is.
    hold_at: Option<(f64, f64, f64)>,
    /// AUTO.RTL has reached home and is landing there.
    rtl_descent: bool,
    /// The altitude AMSL a NAV_TAKEOFF asked for, metres.
    takeoff_amsl: Option<f64>,
    /// Simulated seconds since start.
    pub t: f64,
    /// One stream set per link (0: the GCS link; 1: the API link, if opened).
    pub streams: Vec<Streams>,
    /// The link and sender (system, component) of the message being handled.
    pub inbound: (usize, u8, u8),
    /// PING requests sent (the stream's sequence number).
    pings: u32,
    /// Unix time at boot, µs (SYSTEM_TIME runs on from it at simulated speed).
    epoch_unix_us: u64,
    rng: Rng,
    pub gps_noise: GpsNoise,
    gps_bias: (f64, f64),
    /// Wind north/east, m/s: it only loads the battery (the position controller holds the track).
    pub wind: (f64, f64),
    pub faults: VehicleFaults,
    /// When a GCS HEARTBEAT was last heard (sim time).
    gcs_heard: Option<f64>,
    dl_lost: bool,
    /// A data-link-loss action waiting out COM_FAIL_ACT_T in Hold: (when, what).
    dl_action_due: Option<(f64, Option<Action>)>,
    /// Seconds in the air so far (for the sagging-battery fault).
    airborne_s: f64,
    bat_low: bool,
    bat_crit: bool,
    fence: Geofence,
    fence_breached: bool,
    acc: [f64; 3],
    queued: Vec<MavMessage>,
    trigger: Trigger,
    /// Images taken so far (the next image_index).
    pub images: i32,
    /// Captures due, for the runner to render and announce.
    pub captures: Vec<CaptureRequest>,
    /// Standard deviation of the reported attitude error, degrees.
    pub attitude_noise_deg: f64,
    /// Gimbal pitch in degrees (-90 nadir), reported in the capture's orientation.
    pub gimbal_pitch_deg: f64,
    /// The dock's charging rate, share of a full battery per simulated second, while the
    /// vehicle stands disarmed (0: no dock; a swap is a very fast charge).
    pub dock_charge_per_s: f64,
    /// Sim time from which the last uploaded mission has passed PX4's feasibility check
    /// (PX4's navigator runs it asynchronously after the upload's ACK).
    mission_valid_at: f64,
}

/// How the camera is being triggered.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Trigger {
    Off,
    /// Every `dist` metres travelled horizontally, counted from `from` (north, east).
    Distance {
        dist: f64,
        travelled: f64,
    },
    /// Every `interval` seconds, `left` more images (None: until stopped).
    Time {
        interval: f64,
        next: f64,
        left: Option<u32>,
    },
}

/// One photo to take: the true pose to render from and the pose the vehicle reports.
#[derive(Clone, Debug)]
pub struct CaptureRequest {
    pub index: i32,
    /// Simulated seconds since start.
    pub t: f64,
    /// True position (degrees, metres AMSL) and attitude (radians).
    pub lat: f64,
    pub lon: f64,
    pub alt: f64,
    pub roll: f64,
    pub pitch: f64,
    pub yaw: f64,
    /// Metres above the ground (home altitude: flat ground).
    pub height: f64,
    /// What CAMERA_IMAGE_CAPTURED will say: position with GPS error (degrees, m AMSL, m
    /// above home) and the camera orientation with attitude error.
    pub reported_lat: f64,
    pub reported_lon: f64,
    pub reported_alt: f64,
    pub reported_rel_alt: f64,
    pub reported_q: [f32; 4],
}

fn text50(s: &str) -> CharArray<50> {
    let mut b = [0u8; 50];
    let n = s.len().min(50);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    CharArray::new(b)
}

impl SimVehicle {
    pub fn new(sysid: u8, home: (f64, f64, f64), mission_limit: usize, seed: u64) -> Self {
        let params = Params::px4_sitl(sysid, home);
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
            mission_complete: false,
            landed_since: None,
            in_air: false,
            params,
            pending_text: Vec::new(),
            speed: CRUISE,
            gcs: (255, 190),
            hold_at: None,
            rtl_descent: false,
            takeoff_amsl: None,
            t: 0.0,
            streams: vec![Streams::new(LinkMode::Normal, 1.0)],
            inbound: (0, 255, 190),
            pings: 0,
            epoch_unix_us: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64),
            rng: Rng::new(seed),
            gps_noise: GpsNoise::default(),
            gps_bias: (0.0, 0.0),
            wind: (0.0, 0.0),
            faults: VehicleFaults::default(),
            gcs_heard: None,
            dl_lost: false,
            dl_action_due: None,
            airborne_s: 0.0,
            bat_low: false,
            bat_crit: false,
            fence: Geofence::default(),
            fence_breached: false,
            acc: [0.0; 3],
            queued: Vec::new(),
            trigger: Trigger::Off,
            images: 0,
            captures: Vec::new(),
            attitude_noise_deg: 0.5,
            gimbal_pitch_deg: -90.0,
            mission_valid_at: 0.0,
            dock_charge_per_s: 0.0,
        }
    }

    fn set_trigger_distance(&mut self, dist: f64, now: bool) {
        self.trigger = if dist > 0.0 {
            Trigger::Distance {
                dist,
                travelled: 0.0,
            }
        } else {
            Trigger::Off
        };
        if now || dist > 0.0 {
            // PX4 takes the first photo when distance triggering starts.
            self.capture();
        }
    }

    fn start_capture(&mut self, interval: f64, count: f32) {
        let left = (count >= 1.0).then_some(count as u32);
        if interval <= 0.0 || left == Some(1) {
            self.capture();
            self.trigger = Trigger::Off;
        } else {
            self.trigger = Trigger::Time {
                interval,
                next: self.t,
                left,
            };
        }
    }

    /// Takes a photo now.
    fn capture(&mut self) {
        let (roll, pitch) = self.tilt();
        let (rlat, rlon) = self.reported_position();
        let noise = self.attitude_noise_deg.to_radians();
        let (nr, np, ny) = (
            noise * self.rng.gauss(),
            noise * self.rng.gauss(),
            noise * self.rng.gauss(),
        );
        self.captures.push(CaptureRequest {
            index: self.images,
            t: self.t,
            lat: self.lat,
            lon: self.lon,
            alt: self.alt,
            roll,
            pitch,
            yaw: self.yaw,
            height: self.alt - self.home.2,
            reported_lat: rlat,
            reported_lon: rlon,
            reported_alt: self.alt,
            reported_rel_alt: self.alt - self.home.2,
            reported_q: camera_quaternion(
                roll + nr,
                pitch + np,
                self.yaw + ny,
                self.gimbal_pitch_deg.to_radians(),
            ),
        });
        self.images += 1;
    }

    fn run_trigger(&mut self, moved_m: f64) {
        match &mut self.trigger {
            Trigger::Off => {}
            Trigger::Distance { dist, travelled } => {
                *travelled += moved_m;
                if *travelled >= *dist {
                    *travelled -= *dist;
                    self.capture();
                }
            }
            Trigger::Time {
                interval,
                next,
                left,
            } => {
                if self.t + 1e-9 >= *next {
                    *next += *interval;
                    if let Some(l) = left {
                        *l -= 1;
                        if *l == 0 {
                            self.trigger = Trigger::Off;
                        }
                    }
                    self.capture();
                }
            }
        }
    }

    fn param_i(&self, name: &str) -> i32 {
        self.params.get(name) as i32
    }

    fn param_f(&self, name: &str) -> f64 {
        self.params.get(name)
    }

    pub fn in_air(&self) -> bool {
        self.in_air
    }

    /// Whether the GPS currently has a fix (configured, and not in a GPS-loss fault).
    pub fn has_fix(&self) -> bool {
        self.gps_fix
            && !self
                .faults
                .gps_loss
                .is_some_and(|(start, len)| self.t >= start && self.t < start + len)
    }

    fn say(&mut self, sev: MavSeverity, text: &str) {
        let m = self.statustext(sev, text);
        self.queued.push(m);
    }

    pub fn custom_mode(&self) -> u32 {
        (u32::from(self.main_mode) << 16) | (u32::from(self.sub_mode) << 24)
    }

    fn set_auto(&mut self, sub: u8) {
        self.main_mode = MAIN_AUTO;
        self.sub_mode = sub;
        self.rtl_descent = false;
    }

    /// Coming down to land: AUTO.LAND, or AUTO.RTL over home (PX4 stays in RTL for it).
    fn descending(&self) -> bool {
        self.main_mode == MAIN_AUTO
            && (self.sub_mode == SUB_LAND || (self.sub_mode == SUB_RTL && self.rtl_descent))
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
            MavMessage::HEARTBEAT(hb) if hb.mavtype == MavType::MAV_TYPE_GCS => {
                self.gcs_heard = Some(now);
                vec![]
            }
            // A time-sync request (tc1 = 0) is answered with our clock in ns and the
            // sender's ts1, addressed back to it (PX4's Timesync, MAVLink 2 fields).
            MavMessage::TIMESYNC(ts) if ts.tc1 == 0 => {
                vec![MavMessage::TIMESYNC(TIMESYNC_DATA {
                    tc1: self.boot_us() as i64 * 1000,
                    ts1: ts.ts1,
                    target_system: self.inbound.1,
                    target_component: self.inbound.2,
                })]
            }
            // A ping request (target 0) comes back with its sequence, to its sender.
            MavMessage::PING(pg) if pg.target_system == 0 && pg.target_component == 0 => {
                vec![MavMessage::PING(PING_DATA {
                    time_usec: pg.time_usec,
                    seq: pg.seq,
                    target_system: self.inbound.1,
                    target_component: self.inbound.2,
                })]
            }
            MavMessage::COMMAND_LONG(c) => {
                if !addressed(self.sysid, c.target_system, c.target_component) {
                    return vec![];
                }
                // PX4 acknowledges to whoever sent the command.
                self.gcs = (self.inbound.1, self.inbound.2);
                let p = [
                    c.param1, c.param2, c.param3, c.param4, c.param5, c.param6, c.param7,
                ];
                self.command(c.command, p, now)
            }
            MavMessage::COMMAND_INT(c) => {
                if !addressed(self.sysid, c.target_system, c.target_component) {
                    return vec![];
                }
                self.gcs = (self.inbound.1, self.inbound.2);
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
            MavMessage::PARAM_REQUEST_LIST(r) if r.target_system == self.sysid => {
                self.params.request_list(self.inbound.0);
                vec![]
            }
            MavMessage::PARAM_REQUEST_READ(r) if r.target_system == self.sysid => self
                .params
                .read(r.param_index, r.param_id.to_str().unwrap_or(""))
                .into_iter()
                .collect(),
            MavMessage::PARAM_SET(s) if s.target_system == self.sysid => {
                let name = s.param_id.to_str().unwrap_or("").to_string();
                match self.params.write(self.inbound.0, &name, s.param_value) {
                    Some((m, changed)) => {
                        if changed {
                            // PX4 announces a change on every link.
                            self.queued.push(m.clone());
                        }
                        vec![m]
                    }
                    None => vec![],
                }
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
                self.mission.sender = (self.inbound.1, self.inbound.2);
                let (out, changed) = self.mission.handle(m, &mut self.plans, now);
                if changed {
                    self.current = 0;
                    self.reached = None;
                    self.mission_complete = false;
                    self.mission_valid_at = now + MISSION_CHECK_S;
                }
                self.fence = Geofence::from_items(&self.plans.fence);
                out
            }
        }
    }

    /// SYS_STATUS health as PX4 reports it: GPS and battery bits drop with a lost fix or a
    /// low battery, and PREARM_CHECK is set while its arming checks pass for the current
    /// mode (PX4 sets that bit in health only, not in present or enabled).
    fn sensor_health(&self) -> u32 {
        let mut h = PX4_SENSORS_HEALTH;
        if !self.has_fix() {
            h &= !SENSOR_GPS;
        }
        if self.battery < self.param_f("BAT_LOW_THR") {
            h &= !SENSOR_BATTERY;
        }
        let mission_mode = self.main_mode == MAIN_AUTO && self.sub_mode == SUB_MISSION;
        if self.preflight_failure().is_none()
            && (!mission_mode || self.mission_feasibility().is_none())
        {
            h |= SENSOR_PREARM_CHECK;
        }
        h
    }

    fn preflight_failure(&self) -> Option<&'static str> {
        // Texts as PX4's health and arming checks report them.
        if !self.has_fix() {
            return Some("Preflight Fail: No valid global position");
        }
        if self.battery < self.param_f("BAT_LOW_THR") {
            return Some("Preflight Fail: low battery");
        }
        if self.fence.breached(self.home.0, self.home.1) {
            return Some("Preflight Fail: vehicle outside geofence");
        }
        self.mission_checks()
    }

    /// Whether the mission may start now: PX4 knows nothing of a new mission until its
    /// navigator has checked it, a moment after the upload's ACK.
    fn mission_feasibility(&self) -> Option<&'static str> {
        if self.t < self.mission_valid_at {
            return Some("Mission start denied! No valid mission");
        }
        self.mission_checks()
    }

    /// PX4's mission feasibility checks (navigator's FeasibilityChecker): the first item
    /// with a position, the takeoff included, within MIS_DIST_1WP of home, and no
    /// waypoint outside the geofence.
    fn mission_checks(&self) -> Option<&'static str> {
        let first = self
            .plans
            .mission
            .iter()
            .find(|i| i.frame != MavFrame::MAV_FRAME_MISSION && (i.x != 0 || i.y != 0));
        if let Some(wp) = first {
            let d = dist_m(
                self.home.0,
                self.home.1,
                f64::from(wp.x) * 1e-7,
                f64::from(wp.y) * 1e-7,
            );
            let max = self.param_f("MIS_DIST_1WP");
            if max > 0.0 && d >= max {
                return Some("First waypoint too far away");
            }
        }
        let outside = self.plans.mission.iter().any(|i| {
            (i.command as u32) < 100
                && i.frame != MavFrame::MAV_FRAME_MISSION
                && (i.x != 0 || i.y != 0)
                && self
                    .fence
                    .breached(f64::from(i.x) * 1e-7, f64::from(i.y) * 1e-7)
        });
        if outside {
            return Some("Mission rejected: waypoint outside geofence");
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
                    } else if let Some(why) = self.preflight_failure().or_else(|| {
                        // In mission mode PX4's arming checks include the mission's.
                        (self.main_mode == MAIN_AUTO
                            && self.sub_mode == SUB_MISSION
                            && self.mission_feasibility().is_some())
                        .then_some("Arming denied: Resolve system health failures first")
                    }) {
                        out.push(self.statustext(MavSeverity::MAV_SEVERITY_CRITICAL, why));
                        // PX4 Commander::handle_command: a denied arming transition is
                        // acked VEHICLE_CMD_RESULT_TEMPORARILY_REJECTED.
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
                    // The same Commander path acks a denied disarm alike.
                    MavResult::MAV_RESULT_TEMPORARILY_REJECTED
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
                } else if MANUAL_MODES.contains(&main) {
                    // PX4 SITL has no RC (COM_RC_IN_MODE 1): it accepts the command but a
                    // manual mode's requirements are not met, so it stays where it is
                    // (seen on PX4 v1.16 SITL for POSCTL).
                    MavResult::MAV_RESULT_ACCEPTED
                } else if (1..=10).contains(&main) {
                    self.main_mode = main;
                    self.sub_mode = sub;
                    self.rtl_descent = false;
                    MavResult::MAV_RESULT_ACCEPTED
                } else {
                    MavResult::MAV_RESULT_DENIED
                }
            }
            MAV_CMD_NAV_TAKEOFF => {
                self.set_auto(SUB_TAKEOFF);
                // param7 is the altitude AMSL; PX4 climbs at least MIS_TAKEOFF_ALT above home.
                self.takeoff_amsl = Some(f64::from(p[6])).filter(|a| a.is_finite());
                MavResult::MAV_RESULT_ACCEPTED
            }
            MAV_CMD_MISSION_START => {
                if self.plans.mission.is_empty() {
                    MavResult::MAV_RESULT_DENIED
                } else if let Some(why) = self.mission_feasibility() {
                    out.push(self.statustext(MavSeverity::MAV_SEVERITY_CRITICAL, why));
                    MavResult::MAV_RESULT_DENIED
                } else {
                    self.current = (p[0].max(0.0) as u16).min(self.plans.mission.len() as u16 - 1);
                    self.mission_complete = false;
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
            MAV_CMD_DO_SET_CAM_TRIGG_DIST => {
                self.set_trigger_distance(f64::from(p[0]), p[2] >= 1.0);
                MavResult::MAV_RESULT_ACCEPTED
            }
            MAV_CMD_IMAGE_START_CAPTURE => {
                self.start_capture(f64::from(p[1]), p[2]);
                MavResult::MAV_RESULT_ACCEPTED
            }
            MAV_CMD_IMAGE_STOP_CAPTURE => {
                self.trigger = Trigger::Off;
                MavResult::MAV_RESULT_ACCEPTED
            }
            MAV_CMD_DO_CHANGE_SPEED => {
                if p[1] > 0.0 {
                    self.speed = f64::from(p[1]);
                }
                MavResult::MAV_RESULT_ACCEPTED
            }
            MAV_CMD_SET_MESSAGE_INTERVAL => {
                let link = self.inbound.0.min(self.streams.len().saturating_sub(1));
                if self
                    .streams
                    .get_mut(link)
                    .is_some_and(|s| s.set_interval(p[0] as u32, p[1]))
                {
                    MavResult::MAV_RESULT_ACCEPTED
                } else {
                    MavResult::MAV_RESULT_UNSUPPORTED
                }
            }
            MAV_CMD_DO_REPOSITION => {
                // Go to the point and hold there (PX4: AUTO.LOITER at the new position).
                if self.armed && self.in_air && p[4].is_finite() && p[5].is_finite() {
                    self.hold_at = Some((
                        f64::from(p[4]),
                        f64::from(p[5]),
                        if p[6].is_finite() {
                            f64::from(p[6])
                        } else {
                            self.alt
                        },
                    ));
                    if p[0] > 0.0 {
                        self.speed = f64::from(p[0]);
                    }
                    self.set_auto(SUB_LOITER);
                    MavResult::MAV_RESULT_ACCEPTED
                } else {
                    MavResult::MAV_RESULT_DENIED
                }
            }
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
            // PX4 v1.16 SITL accepts both and sends nothing (seen on it): MESSAGE_INTERVAL
            // and PROTOCOL_VERSION do not come.
            MAV_CMD_GET_MESSAGE_INTERVAL | MAV_CMD_REQUEST_PROTOCOL_VERSION => {
                MavResult::MAV_RESULT_ACCEPTED
            }
            MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES => {
                out.push(self.autopilot_version());
                MavResult::MAV_RESULT_ACCEPTED
            }
            MAV_CMD_REQUEST_MESSAGE => match self.build(p[0] as u32) {
                Some(m) => {
                    out.push(m);
                    MavResult::MAV_RESULT_ACCEPTED
                }
                None => MavResult::MAV_RESULT_UNSUPPORTED,
            },
            _ => MavResult::MAV_RESULT_UNSUPPORTED,
        };
        out.push(self.ack(cmd, result));
        out
    }

    /// Advances the simulation one fixed step of `dt` simulated seconds: flight model,
    /// failsafes, then the telemetry due on each link (`None`: every link). Same inputs at
    /// the same steps, same outputs.
    pub fn tick(&mut self, dt: f64) -> Vec<(Option<usize>, MavMessage)> {
        self.t += dt;
        let now = self.t;
        let (lat0, lon0) = (self.lat, self.lon);
        let mut out = self.step(dt, now);
        let moved = dist_m(lat0, lon0, self.lat, self.lon);
        self.run_trigger(moved);
        self.failsafes(now, dt);
        out.append(&mut self.mission.tick(now));
        out.append(&mut self.queued);
        let mut out: Vec<(Option<usize>, MavMessage)> =
            out.into_iter().map(|m| (None, m)).collect();
        out.extend(self.params.due().into_iter().map(|(l, m)| (Some(l), m)));
        for link in 0..self.streams.len() {
            for msg_id in self.streams[link].due(now) {
                if let Some(m) = self.build(msg_id) {
                    out.push((Some(link), m));
                }
            }
        }
        self.update_gps_bias(dt);
        out
    }

    fn update_gps_bias(&mut self, dt: f64) {
        let n = self.gps_noise;
        if n.bias_tau_s <= 0.0 {
            return;
        }
        // Discrete Gauss–Markov: stationary standard deviation bias_sigma_m.
        let a = (-dt / n.bias_tau_s).exp();
        let q = n.bias_sigma_m * (1.0 - a * a).sqrt();
        self.gps_bias.0 = a * self.gps_bias.0 + q * self.rng.gauss();
        self.gps_bias.1 = a * self.gps_bias.1 + q * self.rng.gauss();
    }

    fn failsafes(&mut self, now: f64, dt: f64) {
        // Battery (BAT_LOW_THR / BAT_CRIT_THR), or a failed battery reading critical.
        if self.faults.battery_failure_at.is_some_and(|t| now >= t) {
            self.battery = self
                .battery
                .min(self.param_f("BAT_CRIT_THR") - 0.01)
                .max(0.0);
        }
        if self.in_air {
            self.airborne_s += dt;
        }
        if self
            .faults
            .battery_low_after_airborne_s
            .is_some_and(|t| self.airborne_s >= t)
        {
            self.faults.battery_low_after_airborne_s = None;
            self.battery = self
                .battery
                .min(self.param_f("BAT_LOW_THR") - 0.01)
                .max(0.0);
        }
        if self.armed && self.in_air {
            if !self.bat_crit && self.battery < self.param_f("BAT_CRIT_THR") {
                self.bat_crit = true;
                self.say(
                    MavSeverity::MAV_SEVERITY_CRITICAL,
                    "Critical battery level! Landing",
                );
                self.set_auto(SUB_LAND);
            } else if !self.bat_low && self.battery < self.param_f("BAT_LOW_THR") {
                self.bat_low = true;
                self.say(
                    MavSeverity::MAV_SEVERITY_WARNING,
                    "Low battery level! Returning",
                );
                if self.sub_mode != SUB_LAND {
                    self.set_auto(SUB_RTL);
                }
            }
        }
        // Data link: no GCS HEARTBEAT for COM_DL_LOSS_T once one has been heard.
        if let Some(heard) = self.gcs_heard {
            let lost = now - heard > self.param_f("COM_DL_LOSS_T");
            if lost && !self.dl_lost {
                self.dl_lost = true;
                self.say(
                    MavSeverity::MAV_SEVERITY_CRITICAL,
                    "Connection to ground station lost",
                );
                if self.armed && self.in_air {
                    let act = self.param_i("NAV_DLL_ACT");
                    let action = Action::from_param(act.max(0) + i32::from(act == 2));
                    // PX4's failsafe framework holds for COM_FAIL_ACT_T first, so the pilot
                    // can take over (seen on PX4 v1.16 SITL: Hold, then the return).
                    let delay = self.param_f("COM_FAIL_ACT_T");
                    if matches!(action, Some(Action::Return | Action::Land)) && delay > 0.0 {
                        self.say(
                            MavSeverity::MAV_SEVERITY_WARNING,
                            &format!("Failsafe activated: entering Hold for {delay:.0} seconds"),
                        );
                        self.apply(Some(Action::Hold));
                        self.dl_action_due = Some((now + delay, action));
                    } else {
                        self.apply(action);
                    }
                }
            } else if !lost && self.dl_lost {
                self.dl_lost = false;
                self.dl_action_due = None;
                self.say(
                    MavSeverity::MAV_SEVERITY_INFO,
                    "Connection to ground station regained",
                );
            }
        }
        if let Some((due, action)) = self.dl_action_due {
            if now >= due {
                self.dl_action_due = None;
                if self.armed && self.in_air {
                    self.apply(action);
                }
            }
        }
        // Geofence (GF_ACTION).
        if !self.fence.is_empty() && self.armed && self.in_air {
            let breached = self.fence.breached(self.lat, self.lon);
            if breached && !self.fence_breached {
                self.say(MavSeverity::MAV_SEVERITY_CRITICAL, "Geofence breached");
                self.apply(Action::from_param(self.param_i("GF_ACTION")));
            }
            self.fence_breached = breached;
        }
    }

    fn apply(&mut self, action: Option<Action>) {
        match action {
            Some(Action::Hold) => {
                self.hold_at = Some((self.lat, self.lon, self.alt));
                self.set_auto(SUB_LOITER);
            }
            Some(Action::Return) => self.set_auto(SUB_RTL),
            Some(Action::Land) => self.set_auto(SUB_LAND),
            Some(Action::Warn) | None => {}
        }
    }

    /// Advances the flight model by `dt` simulated seconds; returns messages it causes.
    fn step(&mut self, dt: f64, now: f64) -> Vec<MavMessage> {
        let mut out = Vec::new();
        let rel = self.alt - self.home.2;
        let airspeed =
            ((self.vel[0] - self.wind.0).powi(2) + (self.vel[1] - self.wind.1).powi(2)).sqrt();
        let drain = if self.in_air {
            // Hover power plus a share growing with airspeed (drag).
            (1.0 + 0.02 * airspeed * airspeed / 25.0) / ENDURANCE_S
        } else if self.armed {
            1.0 / 36_000.0
        } else {
            0.0
        };
        self.battery = (self.battery - dt * drain).max(0.0);
        if !self.armed && !self.in_air {
            self.battery = (self.battery + dt * self.dock_charge_per_s).min(1.0);
        }
        let mut target: Option<(f64, f64, f64)> = None;
        if self.armed && self.main_mode == MAIN_AUTO {
            match self.sub_mode {
                SUB_TAKEOFF => {
                    let min = self.home.2 + self.param_f("MIS_TAKEOFF_ALT");
                    let alt = self.takeoff_amsl.map_or(min, |a| a.max(min));
                    if self.alt >= alt - 0.1 {
                        // PX4 holds after a takeoff.
                        self.hold_at = Some((self.lat, self.lon, alt));
                        self.set_auto(SUB_LOITER);
                    }
                    target = Some((self.lat, self.lon, alt));
                }
                SUB_MISSION => {
                    self.hold_at = None;
                    target = self.mission_target(&mut out);
                }
                SUB_LOITER if self.in_air => {
                    let hold = *self.hold_at.get_or_insert((self.lat, self.lon, self.alt));
                    target = Some(hold);
                }
                SUB_RTL => {
                    let d = dist_m(self.lat, self.lon, self.home.0, self.home.1);
                    let rtl_alt = self.param_f("RTL_RETURN_ALT");
                    target = if d > ACCEPT_RADIUS && rel < rtl_alt - 0.5 && d > 5.0 {
                        Some((self.lat, self.lon, self.home.2 + rtl_alt))
                    } else if d > ACCEPT_RADIUS {
                        Some((self.home.0, self.home.1, self.alt))
                    } else {
                        self.rtl_descent = true;
                        None
                    };
                }
                _ => {}
            }
        }
        let landing = self.armed && self.in_air && self.descending();
        if landing {
            target = Some((self.lat, self.lon, self.home.2 - 1.0));
        }
        match target {
            Some((lat, lon, alt)) => self.move_toward(lat, lon, alt, dt, landing),
            None => {
                self.vel = [0.0; 3];
                self.acc = [0.0; 3];
            }
        }
        // Land detection: on the ground (PX4's land detector) and auto-disarm.
        if self.alt <= self.home.2 + 0.01
            && self.in_air
            && target.is_some_and(|t| t.2 < self.alt + 0.5)
        {
            self.in_air = false;
            self.alt = self.home.2;
            self.vel = [0.0; 3];
            self.landed_since = Some(now);
            // PX4 moves home to where it landed.
            self.home = (self.lat, self.lon, self.home.2);
            self.hold_at = None;
            // PX4 keeps AUTO.RTL or AUTO.LAND until it disarms (seen on v1.16 SITL).
            if !self.descending() {
                self.set_auto(SUB_LOITER);
            }
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
                    self.bat_low = false;
                    self.bat_crit = false;
                    if self.descending() {
                        self.set_auto(SUB_LOITER);
                    }
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
                    self.mission_complete = true;
                    self.set_auto(SUB_RTL);
                    return None;
                }
                MavCmd::MAV_CMD_NAV_LAND => {
                    self.mission_complete = true;
                    self.set_auto(SUB_LAND);
                    return None;
                }
                MavCmd::MAV_CMD_DO_CHANGE_SPEED => {
                    if item.param2 > 0.0 {
                        self.speed = f64::from(item.param2);
                    }
                    true
                }
                MavCmd::MAV_CMD_DO_SET_CAM_TRIGG_DIST => {
                    self.set_trigger_distance(f64::from(item.param1), item.param3 >= 1.0);
                    true
                }
                MavCmd::MAV_CMD_IMAGE_START_CAPTURE => {
                    self.start_capture(f64::from(item.param2), item.param3);
                    true
                }
                MavCmd::MAV_CMD_IMAGE_STOP_CAPTURE => {
                    self.trigger = Trigger::Off;
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
                    self.mission_complete = true;
                    self.set_auto(SUB_LOITER);
                    return None;
                }
                self.current += 1;
            }
        }
    }

    /// Point-mass guidance: toward the target with PX4's speed, acceleration, climb,
    /// descent and yaw-rate limits, slowing down to stop at the target.
    fn move_toward(&mut self, lat: f64, lon: f64, alt: f64, dt: f64, landing: bool) {
        let (n, e) = ne_m(self.lat, self.lon, lat, lon);
        let d = (n * n + e * e).sqrt();
        // Fastest speed from which we can still stop at the target.
        let v_stop = (2.0 * ACC_HOR * d).sqrt();
        let v_want = self.speed.min(v_stop);
        let (dn, de) = if d > 1e-3 {
            (n / d * v_want, e / d * v_want)
        } else {
            (0.0, 0.0)
        };
        let (mut an, mut ae) = ((dn - self.vel[0]) / dt, (de - self.vel[1]) / dt);
        let a = (an * an + ae * ae).sqrt();
        if a > ACC_HOR {
            an *= ACC_HOR / a;
            ae *= ACC_HOR / a;
        }
        self.vel[0] += an * dt;
        self.vel[1] += ae * dt;
        let dz = alt - self.alt;
        let vz_max = if dz > 0.0 {
            CLIMB
        } else if landing && self.alt - self.home.2 < LAND_ALT1 {
            // PX4 slows to MPC_LAND_SPEED near the ground (below MPC_LAND_ALT1).
            LAND_SPEED
        } else {
            // PX4 MPC_Z_VEL_MAX_DN default.
            1.5
        };
        let vz = dz.signum()
            * (dz.abs() / dt)
                .min(vz_max)
                .min((2.0 * ACC_HOR * dz.abs()).sqrt().max(0.3));
        self.acc = [an, ae, -(vz - (-self.vel[2])) / dt];
        self.vel[2] = -vz;
        self.lat += self.vel[0] * dt / EARTH_R * 180.0 / std::f64::consts::PI;
        self.lon += self.vel[1] * dt / (EARTH_R * self.lat.to_radians().cos()) * 180.0
            / std::f64::consts::PI;
        self.alt = (self.alt + vz * dt).max(self.home.2);
        let ground = (self.vel[0].powi(2) + self.vel[1].powi(2)).sqrt();
        if ground > 0.5 {
            let want = self.vel[1].atan2(self.vel[0]);
            let mut dyaw = want - self.yaw;
            while dyaw > std::f64::consts::PI {
                dyaw -= 2.0 * std::f64::consts::PI;
            }
            while dyaw < -std::f64::consts::PI {
                dyaw += 2.0 * std::f64::consts::PI;
            }
            self.yaw += dyaw.clamp(-YAW_RATE * dt, YAW_RATE * dt);
        }
    }

    /// Roll and pitch (rad) that a multicopter needs for its current acceleration.
    fn tilt(&self) -> (f64, f64) {
        let g = 9.81;
        // Thrust must give the acceleration and cancel air drag, which grows with the
        // airspeed (ground velocity minus wind): so a hovering multicopter leans into the wind.
        let (an, ae) = if self.in_air {
            (
                self.acc[0] + DRAG * (self.vel[0] - self.wind.0),
                self.acc[1] + DRAG * (self.vel[1] - self.wind.1),
            )
        } else {
            (0.0, 0.0)
        };
        let (s, c) = self.yaw.sin_cos();
        let forward = an * c + ae * s;
        let right = -an * s + ae * c;
        ((right / g).atan(), (-forward / g).atan())
    }

    /// The reported position: truth plus the GPS error model, (lat, lon) degrees.
    fn reported_position(&mut self) -> (f64, f64) {
        let w = self.gps_noise.white_sigma_m;
        let n = self.gps_bias.0 + w * self.rng.gauss();
        let e = self.gps_bias.1 + w * self.rng.gauss();
        (
            self.lat + (n / EARTH_R).to_degrees(),
            self.lon + (e / (EARTH_R * self.lat.to_radians().cos())).to_degrees(),
        )
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

    /// MISSION_CURRENT with its mission_state, as PX4 (MISSION_CURRENT.hpp) reports it:
    /// no mission, complete once it ran to its end, active in AUTO.MISSION, paused once
    /// begun and left, else not started.
    pub fn mission_current(&self) -> MavMessage {
        use mavlink::dialects::common::MissionState;
        let state = if self.plans.mission.is_empty() {
            MissionState::MISSION_STATE_NO_MISSION
        } else if self.mission_complete {
            MissionState::MISSION_STATE_COMPLETE
        } else if self.main_mode == MAIN_AUTO && self.sub_mode == SUB_MISSION {
            MissionState::MISSION_STATE_ACTIVE
        } else if self.current > 0 || self.reached.is_some() {
            MissionState::MISSION_STATE_PAUSED
        } else {
            MissionState::MISSION_STATE_NOT_STARTED
        };
        MavMessage::MISSION_CURRENT(MISSION_CURRENT_DATA {
            seq: self.current,
            total: self.plans.mission.len() as u16,
            mission_state: state,
            ..Default::default()
        })
    }

    /// One message of a stream (or for MAV_CMD_REQUEST_MESSAGE), built from the state now.
    pub fn build(&mut self, msg_id: u32) -> Option<MavMessage> {
        let ms = (self.t * 1000.0) as u32;
        let fix = self.has_fix();
        Some(match msg_id {
            id::HEARTBEAT => self.heartbeat(),
            id::SYS_STATUS => MavMessage::SYS_STATUS(SYS_STATUS_DATA {
                onboard_control_sensors_present: MavSysStatusSensor::from_bits_truncate(
                    PX4_SENSORS_PRESENT,
                ),
                onboard_control_sensors_enabled: MavSysStatusSensor::from_bits_truncate(
                    PX4_SENSORS_ENABLED,
                ),
                onboard_control_sensors_health: MavSysStatusSensor::from_bits_truncate(
                    self.sensor_health(),
                ),
                voltage_battery: (14_800.0 + 2_000.0 * self.battery) as u16,
                current_battery: if self.in_air { 1500 } else { 50 },
                battery_remaining: (self.battery * 100.0).round() as i8,
                ..Default::default()
            }),
            id::EXTENDED_SYS_STATE => MavMessage::EXTENDED_SYS_STATE(EXTENDED_SYS_STATE_DATA {
                vtol_state: MavVtolState::MAV_VTOL_STATE_UNDEFINED,
                landed_state: if !self.in_air {
                    MavLandedState::MAV_LANDED_STATE_ON_GROUND
                } else if self.descending() {
                    MavLandedState::MAV_LANDED_STATE_LANDING
                } else {
                    MavLandedState::MAV_LANDED_STATE_IN_AIR
                },
            }),
            id::MISSION_CURRENT => self.mission_current(),
            id::MISSION_ITEM_REACHED => {
                MavMessage::MISSION_ITEM_REACHED(MISSION_ITEM_REACHED_DATA { seq: self.reached? })
            }
            id::HOME_POSITION => self.home_position(),
            id::BATTERY_STATUS => MavMessage::BATTERY_STATUS(BATTERY_STATUS_DATA {
                battery_remaining: (self.battery * 100.0).round() as i8,
                current_battery: if self.in_air { 1500 } else { 50 },
                voltages: [4000; 10],
                ..Default::default()
            }),
            id::GPS_RAW_INT => {
                let (lat, lon) = if fix {
                    self.reported_position()
                } else {
                    (0.0, 0.0)
                };
                MavMessage::GPS_RAW_INT(GPS_RAW_INT_DATA {
                    time_usec: u64::from(ms) * 1000,
                    lat: (lat * 1e7) as i32,
                    lon: (lon * 1e7) as i32,
                    alt: (self.alt * 1000.0) as i32,
                    eph: if fix { 80 } else { u16::MAX },
                    epv: if fix { 120 } else { u16::MAX },
                    fix_type: if fix {
                        GpsFixType::GPS_FIX_TYPE_3D_FIX
                    } else {
                        GpsFixType::GPS_FIX_TYPE_NO_FIX
                    },
                    satellites_visible: if fix { 14 } else { 0 },
                    ..Default::default()
                })
            }
            id::GLOBAL_POSITION_INT => {
                let (lat, lon) = self.reported_position();
                MavMessage::GLOBAL_POSITION_INT(GLOBAL_POSITION_INT_DATA {
                    time_boot_ms: ms,
                    lat: (lat * 1e7) as i32,
                    lon: (lon * 1e7) as i32,
                    alt: (self.alt * 1000.0) as i32,
                    relative_alt: ((self.alt - self.home.2) * 1000.0) as i32,
                    vx: (self.vel[0] * 100.0) as i16,
                    vy: (self.vel[1] * 100.0) as i16,
                    vz: (self.vel[2] * 100.0) as i16,
                    hdg: (self.yaw.to_degrees().rem_euclid(360.0) * 100.0) as u16,
                })
            }
            id::ATTITUDE => {
                let (roll, pitch) = self.tilt();
                MavMessage::ATTITUDE(ATTITUDE_DATA {
                    time_boot_ms: ms,
                    roll: roll as f32,
                    pitch: pitch as f32,
                    yaw: self.yaw as f32,
                    ..Default::default()
                })
            }
            id::ATTITUDE_QUATERNION => {
                let (roll, pitch) = self.tilt();
                let q = quaternion(roll, pitch, self.yaw);
                MavMessage::ATTITUDE_QUATERNION(ATTITUDE_QUATERNION_DATA {
                    time_boot_ms: ms,
                    q1: q[0],
                    q2: q[1],
                    q3: q[2],
                    q4: q[3],
                    ..Default::default()
                })
            }
            id::VFR_HUD => {
                let ground = (self.vel[0].powi(2) + self.vel[1].powi(2)).sqrt();
                let air = ((self.vel[0] - self.wind.0).powi(2)
                    + (self.vel[1] - self.wind.1).powi(2))
                .sqrt();
                MavMessage::VFR_HUD(VFR_HUD_DATA {
                    airspeed: air as f32,
                    groundspeed: ground as f32,
                    alt: self.alt as f32,
                    climb: -self.vel[2] as f32,
                    heading: self.yaw.to_degrees().rem_euclid(360.0) as i16,
                    throttle: if self.in_air { 50 } else { 0 },
                })
            }
            id::LOCAL_POSITION_NED => {
                let (x, y, z) = self.local_ned();
                MavMessage::LOCAL_POSITION_NED(LOCAL_POSITION_NED_DATA {
                    time_boot_ms: ms,
                    x,
                    y,
                    z,
                    vx: self.vel[0] as f32,
                    vy: self.vel[1] as f32,
                    vz: self.vel[2] as f32,
                })
            }
            id::ODOMETRY => {
                let (x, y, z) = self.local_ned();
                let (roll, pitch) = self.tilt();
                // PX4 v1.16 reports both frames as MAV_FRAME_LOCAL_NED, velocity in NED.
                MavMessage::ODOMETRY(ODOMETRY_DATA {
                    time_usec: self.boot_us(),
                    x,
                    y,
                    z,
                    q: quaternion(roll, pitch, self.yaw),
                    vx: self.vel[0] as f32,
                    vy: self.vel[1] as f32,
                    vz: self.vel[2] as f32,
                    pose_covariance: [f32::NAN; 21],
                    velocity_covariance: [f32::NAN; 21],
                    frame_id: MavFrame::MAV_FRAME_LOCAL_NED,
                    child_frame_id: MavFrame::MAV_FRAME_LOCAL_NED,
                    estimator_type: MavEstimatorType::MAV_ESTIMATOR_TYPE_AUTOPILOT,
                    quality: if fix { 100 } else { 0 },
                    ..Default::default()
                })
            }
            id::ALTITUDE => {
                let rel = (self.alt - self.home.2) as f32;
                MavMessage::ALTITUDE(ALTITUDE_DATA {
                    time_usec: self.boot_us(),
                    altitude_monotonic: self.alt as f32,
                    altitude_amsl: self.alt as f32,
                    altitude_local: rel,
                    altitude_relative: rel,
                    altitude_terrain: f32::NAN,
                    bottom_clearance: f32::NAN,
                })
            }
            id::HIGHRES_IMU => MavMessage::HIGHRES_IMU(HIGHRES_IMU_DATA {
                time_usec: self.boot_us(),
                xacc: self.acc[0] as f32,
                yacc: self.acc[1] as f32,
                zacc: (self.acc[2] - 9.81) as f32,
                xmag: 0.30,
                ymag: -0.04,
                zmag: 0.42,
                abs_pressure: pressure_pa(self.alt) as f32,
                pressure_alt: self.alt as f32,
                temperature: 15.0,
                // Accelerometer, gyro, magnetometer and pressure altitude, as PX4 sends.
                fields_updated: HighresImuUpdatedFlags::from_bits_truncate(511),
                ..Default::default()
            }),
            id::SCALED_PRESSURE => MavMessage::SCALED_PRESSURE(SCALED_PRESSURE_DATA {
                time_boot_ms: ms,
                press_abs: (pressure_pa(self.alt) / 100.0) as f32,
                temperature: 330,
                ..Default::default()
            }),
            id::ESTIMATOR_STATUS => MavMessage::ESTIMATOR_STATUS(ESTIMATOR_STATUS_DATA {
                time_usec: self.boot_us(),
                // PX4's EKF with GPS: attitude, velocity, relative and absolute position,
                // constant-position mode off (1023); the horizontal parts drop without a fix.
                flags: EstimatorStatusFlags::from_bits_truncate(if fix { 1023 } else { 0x0f }),
                vel_ratio: 0.05,
                pos_horiz_ratio: 0.02,
                pos_vert_ratio: 0.03,
                mag_ratio: 0.1,
                tas_ratio: f32::NAN,
                pos_horiz_accuracy: 0.3,
                pos_vert_accuracy: 0.3,
                ..Default::default()
            }),
            // PX4 streams it only while its estimator estimates the wind (not on the
            // ground without drag fusion): here, only when the simulation has some.
            id::WIND_COV if self.wind != (0.0, 0.0) => MavMessage::WIND_COV(WIND_COV_DATA {
                time_usec: self.boot_us(),
                wind_x: self.wind.0 as f32,
                wind_y: self.wind.1 as f32,
                wind_z: 0.0,
                var_horiz: 0.1,
                var_vert: 0.1,
                wind_alt: self.alt as f32,
                horiz_accuracy: 0.0,
                vert_accuracy: 0.0,
            }),
            id::VIBRATION => MavMessage::VIBRATION(VIBRATION_DATA {
                time_usec: self.boot_us(),
                vibration_y: 0.01,
                vibration_z: 0.1,
                ..Default::default()
            }),
            id::ATTITUDE_TARGET => {
                let (roll, pitch) = self.tilt();
                MavMessage::ATTITUDE_TARGET(ATTITUDE_TARGET_DATA {
                    time_boot_ms: ms,
                    q: quaternion(roll, pitch, self.yaw),
                    thrust: if self.armed { 0.5 } else { 0.0 },
                    ..Default::default()
                })
            }
            id::POSITION_TARGET_LOCAL_NED => {
                let (x, y, z) = self.local_ned();
                MavMessage::POSITION_TARGET_LOCAL_NED(POSITION_TARGET_LOCAL_NED_DATA {
                    time_boot_ms: ms,
                    coordinate_frame: MavFrame::MAV_FRAME_LOCAL_NED,
                    x,
                    y,
                    z,
                    yaw: self.yaw as f32,
                    ..Default::default()
                })
            }
            id::CURRENT_MODE => MavMessage::CURRENT_MODE(CURRENT_MODE_DATA {
                custom_mode: self.custom_mode(),
                intended_custom_mode: self.custom_mode(),
                standard_mode: MavStandardMode::MAV_STANDARD_MODE_NON_STANDARD,
            }),
            id::SYSTEM_TIME => MavMessage::SYSTEM_TIME(SYSTEM_TIME_DATA {
                time_unix_usec: self.epoch_unix_us + self.boot_us(),
                time_boot_ms: ms,
            }),
            // PX4's own requests, which a ground station answers.
            id::TIMESYNC => MavMessage::TIMESYNC(TIMESYNC_DATA {
                tc1: 0,
                ts1: self.boot_us() as i64 * 1000,
                ..Default::default()
            }),
            id::PING => {
                self.pings = self.pings.wrapping_add(1);
                MavMessage::PING(PING_DATA {
                    time_usec: self.boot_us(),
                    seq: self.pings,
                    target_system: 0,
                    target_component: 0,
                })
            }
            id::AUTOPILOT_VERSION => self.autopilot_version(),
            _ => return None,
        })
    }

    /// Microseconds since boot, simulated.
    fn boot_us(&self) -> u64 {
        (self.t * 1e6) as u64
    }

    /// North, east, down from home, metres (PX4's local frame has its origin there).
    fn local_ned(&self) -> (f32, f32, f32) {
        let (n, e) = ne_m(self.home.0, self.home.1, self.lat, self.lon);
        (n as f32, e as f32, (self.home.2 - self.alt) as f32)
    }

    /// AUTOPILOT_VERSION as PX4 v1.16.0 SITL sends it, read off it: its capabilities
    /// (MISSION_FLOAT, PARAM_FLOAT, MISSION_INT, COMMAND_INT, PARAM_ENCODE_BYTEWISE, FTP,
    /// SET_ATTITUDE_TARGET, SET_POSITION_TARGET_LOCAL_NED, MAVLINK2, MISSION_FENCE,
    /// MISSION_RALLY, PARAM_ENCODE_C_CAST, and more) and version 1.16.0 release; a uid of
    /// our own per vehicle.
    fn autopilot_version(&self) -> MavMessage {
        MavMessage::AUTOPILOT_VERSION(AUTOPILOT_VERSION_DATA {
            capabilities: MavProtocolCapability::from_bits_truncate(59647),
            flight_sw_version: 0x0110_00ff,
            middleware_sw_version: 0x0110_00ff,
            os_sw_version: 101_854_463,
            board_version: 1,
            uid: 0x4752_4944_0000_0000 | u64::from(self.sysid),
            ..Default::default()
        })
    }
}

/// Static pressure of the standard atmosphere at `alt_m` metres, Pa.
fn pressure_pa(alt_m: f64) -> f64 {
    101_325.0 * (1.0 - 2.255_77e-5 * alt_m).powf(5.255_88)
}

fn addressed(sysid: u8, target_system: u8, target_component: u8) -> bool {
    // The autopilot (1) answers for its camera (100) too, as PX4's camera trigger does.
    (target_system == sysid || target_system == 0) && matches!(target_component, 0 | 1 | 100)
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

/// ZYX Euler angles (rad) to a (w, x, y, z) quaternion.
pub fn quaternion(roll: f64, pitch: f64, yaw: f64) -> [f32; 4] {
    let (sr, cr) = (roll / 2.0).sin_cos();
    let (sp, cp) = (pitch / 2.0).sin_cos();
    let (sy, cy) = (yaw / 2.0).sin_cos();
    [
        (cr * cp * cy + sr * sp * sy) as f32,
        (sr * cp * cy - cr * sp * sy) as f32,
        (cr * sp * cy + sr * cp * sy) as f32,
        (cr * cp * sy - sr * sp * cy) as f32,
    ]
}

/// The camera's orientation as MAVLink gimbal quaternions give it: a forward-right-down
/// frame whose zero is level and facing north, so a nadir camera on a level vehicle
/// facing north is a pitch of -90°. (w, x, y, z).
pub fn camera_quaternion(roll: f64, pitch: f64, yaw: f64, gimbal_pitch: f64) -> [f32; 4] {
    let v = quaternion(roll, pitch, yaw);
    let (s, c) = (gimbal_pitch / 2.0).sin_cos();
    let g = [c as f32, 0.0, s as f32, 0.0];
    // Hamilton product v ⊗ g: the gimbal rotates in the vehicle's frame.
    [
        v[0] * g[0] - v[1] * g[1] - v[2] * g[2] - v[3] * g[3],
        v[0] * g[1] + v[1] * g[0] + v[2] * g[3] - v[3] * g[2],
        v[0] * g[2] - v[1] * g[3] + v[2] * g[0] + v[3] * g[1],
        v[0] * g[3] + v[1] * g[2] - v[2] * g[1] + v[3] * g[0],
    ]
}
