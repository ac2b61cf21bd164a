//! Telemetry: the latest known state of one vehicle, and the reducer that builds it from
//! frames. The reducer is pure (no I/O), so it runs the same live and over a tlog.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use mavlink::dialects::common::{
    GpsFixType, MavAutopilot, MavLandedState, MavMessage, MavModeFlag, MavSeverity, MavType,
};
use serde::Serialize;

use super::mode::Px4Mode;
use crate::link::{Frame, LinkId};

/// Whether we hear the vehicle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum LinkState {
    Connected,
    /// No HEARTBEAT for longer than the fleet's link timeout (3 s by default).
    Lost,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Position {
    /// Degrees, WGS-84.
    pub lat: f64,
    pub lon: f64,
    /// Metres above mean sea level.
    pub alt_msl: f32,
    /// Metres above home.
    pub alt_rel: f32,
    /// Ground speed north, east, down in m/s.
    pub vel_ned: [f32; 3],
    /// Heading in degrees, if known.
    pub heading: Option<f32>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Attitude {
    /// Radians.
    pub roll: f32,
    pub pitch: f32,
    pub yaw: f32,
    /// Attitude quaternion (w, x, y, z), when the vehicle sends ATTITUDE_QUATERNION.
    pub q: Option<[f32; 4]>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Gps {
    /// GPS_FIX_TYPE: 0 none .. 3 3D fix .. 6 RTK fixed.
    pub fix_type: u8,
    pub satellites: u8,
    /// Horizontal dilution (HDOP) as sent, unitless; None when unknown.
    pub hdop: Option<f32>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Battery {
    /// Volts, when known.
    pub voltage: Option<f32>,
    /// Amperes, when known.
    pub current: Option<f32>,
    /// Percent remaining, when known.
    pub remaining: Option<i8>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Home {
    /// Degrees, WGS-84.
    pub lat: f64,
    pub lon: f64,
    /// Metres above mean sea level.
    pub alt_msl: f32,
}

/// One CAMERA_IMAGE_CAPTURED, as the vehicle reported it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageCapture {
    pub compid: u8,
    pub index: i32,
    /// Microseconds since the Unix epoch (0 if the camera has no UTC).
    pub time_utc_us: u64,
    pub lat: f64,
    pub lon: f64,
    /// Metres above mean sea level.
    pub alt_msl: f32,
    /// Metres above home.
    pub alt_rel: f32,
    /// Camera attitude quaternion (w, x, y, z), NED frame.
    pub q: [f32; 4],
    pub success: bool,
    pub file_url: String,
}

/// Frames received and lost on one stream, from MAVLink sequence numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkQuality {
    pub received: u64,
    pub lost: u64,
}

impl LinkQuality {
    /// Percentage of frames that arrived, 100 when nothing was expected yet.
    pub fn percent(&self) -> f64 {
        let total = self.received + self.lost;
        if total == 0 {
            100.0
        } else {
            100.0 * self.received as f64 / total as f64
        }
    }
}

/// The latest known state of one vehicle.
#[derive(Clone, Debug, Serialize)]
pub struct Telemetry {
    pub sysid: u8,
    pub link: LinkState,
    /// Links the vehicle has been heard on.
    pub links: BTreeSet<LinkId>,
    pub quality: LinkQuality,
    pub autopilot_px4: bool,
    pub mav_type: u8,
    pub mode: Px4Mode,
    pub armed: bool,
    pub system_status: u8,
    pub position: Option<Position>,
    pub attitude: Option<Attitude>,
    pub gps: Option<Gps>,
    pub battery: Battery,
    pub home: Option<Home>,
    pub landed: Option<u8>,
    pub mission_current: Option<u16>,
    pub mission_total: Option<u16>,
    /// MISSION_CURRENT.mission_state (MISSION_STATE: 1 no mission, 2 not started, 3 active,
    /// 4 paused, 5 complete); PX4 reports "no mission" until its feasibility checks pass.
    pub mission_state: Option<u8>,
    /// MISSION_CURRENT.mission_id: the CRC32 of the plan the vehicle holds (0: none).
    pub mission_id: Option<u32>,
    pub last_reached: Option<u16>,
    pub captures: u64,
    /// SYS_STATUS sensor bits (MAV_SYS_STATUS_SENSOR).
    pub sensors: Option<Sensors>,
    /// The camera as it describes itself (CAMERA_INFORMATION).
    pub camera: Option<CameraInfo>,
    /// A camera component (MAV_COMP_ID_CAMERA, 100) of this system has been heard.
    pub camera_heard: bool,
    /// The camera's image count (CAMERA_CAPTURE_STATUS), and how many such reports came.
    pub camera_images: Option<i32>,
    pub camera_status_reports: u64,
    /// The vehicle's clock rate: its seconds (time_boot_ms) per wall-clock second, measured
    /// over 1 s windows (the first over 250 ms). A SITL at speed factor S runs at S; a real vehicle at 1.
    pub clock_rate: Option<f64>,
    /// Latest STATUSTEXTs, newest last (at most 20).
    pub statustext: VecDeque<(u8, String)>,
    /// Seconds since the last HEARTBEAT.
    pub heartbeat_age_s: f64,
    /// Autopilot HEARTBEATs heard.
    pub heartbeats: u64,
    /// The vehicle's own wind estimate (WIND_COV), when it sends one: PX4 does only while
    /// its EKF estimates the wind (airspeed or drag fusion), not on the ground otherwise.
    pub wind: Option<WindEstimate>,
}

/// A wind estimate from WIND_COV.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindEstimate {
    /// Horizontal speed, m/s.
    pub speed_m_s: f32,
    /// Where it blows from, degrees clockwise from north.
    pub from_deg: f32,
    /// Horizontal variance, (m/s)².
    pub var_horiz: f32,
    /// When it came.
    #[serde(skip)]
    pub at: std::time::Instant,
}

/// A camera's intrinsics from CAMERA_INFORMATION (MAVLink camera protocol).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CameraInfo {
    /// Focal length and sensor size, millimetres.
    pub focal_mm: f32,
    pub sensor_w_mm: f32,
    pub sensor_h_mm: f32,
    /// Image size, pixels.
    pub width: u16,
    pub height: u16,
}

/// SYS_STATUS onboard_control_sensors_{present,enabled,health}.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sensors {
    pub present: u32,
    pub enabled: u32,
    pub health: u32,
    /// SYS_STATUS messages received so far: a fresh report has a higher count.
    pub reports: u64,
}

/// MAV_SYS_STATUS_PREARM_CHECK: the autopilot's own arming checks pass for its current mode.
pub const SENSOR_PREARM_CHECK: u32 = 0x1000_0000;

impl Telemetry {
    /// Whether the autopilot says it may arm now, as MAVSDK's `health().is_armable` reads
    /// it: the PREARM_CHECK bit of SYS_STATUS health. PX4 sets it in health alone (not in
    /// present), so it counts for PX4 and for vehicles that mark it present; `None` for
    /// others.
    pub fn armable(&self) -> Option<bool> {
        self.sensors
            .filter(|s| self.autopilot_px4 || s.present & SENSOR_PREARM_CHECK != 0)
            .map(|s| s.health & SENSOR_PREARM_CHECK != 0)
    }

    fn new(sysid: u8) -> Self {
        Self {
            sysid,
            link: LinkState::Connected,
            links: BTreeSet::new(),
            quality: LinkQuality::default(),
            autopilot_px4: false,
            mav_type: 0,
            mode: Px4Mode::Other { main: 0, sub: 0 },
            armed: false,
            system_status: 0,
            position: None,
            attitude: None,
            gps: None,
            battery: Battery::default(),
            home: None,
            landed: None,
            mission_current: None,
            mission_total: None,
            mission_state: None,
            mission_id: None,
            last_reached: None,
            captures: 0,
            clock_rate: None,
            sensors: None,
            camera: None,
            camera_heard: false,
            camera_images: None,
            camera_status_reports: 0,
            statustext: VecDeque::new(),
            wind: None,
            heartbeat_age_s: 0.0,
            heartbeats: 0,
        }
    }

    pub fn has_3d_fix(&self) -> bool {
        self.gps
            .is_some_and(|g| g.fix_type >= GpsFixType::GPS_FIX_TYPE_3D_FIX as u8)
    }

    pub fn on_ground(&self) -> bool {
        self.landed == Some(MavLandedState::MAV_LANDED_STATE_ON_GROUND as u8)
    }
}

/// What changed, as a stream subscribers can follow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum VehicleEvent {
    /// First HEARTBEAT from this vehicle's autopilot.
    Discovered,
    LinkLost,
    LinkRegained,
    ModeChanged(Px4Mode),
    Armed(bool),
    /// MAV_LANDED_STATE changed (1 on ground, 2 in air, 3 takeoff, 4 landing).
    LandedState(u8),
    /// The active mission item changed.
    MissionCurrent(u16),
    /// A mission item was reached (PX4 repeats these; each is reported once).
    MissionItemReached(u16),
    HomeChanged(Home),
    StatusText {
        severity: u8,
        text: String,
    },
    ImageCaptured(ImageCapture),
}

struct Entry {
    t: Telemetry,
    last_heartbeat: Instant,
    /// Next expected sequence number per (link, component).
    /// Next expected sequence number and last arrival, per (link, component).
    seq: HashMap<(LinkId, u8), (u8, Instant)>,
    /// Start of the clock-rate window: arrival and the vehicle's time_boot_ms.
    clock: Option<(Instant, u32)>,
}

/// Shortest wall-clock window a clock rate is measured over.
const CLOCK_WINDOW: Duration = Duration::from_secs(1);

/// Builds [`Telemetry`] for every vehicle from decoded frames.
#[derive(Default)]
pub struct TelemetryReducer {
    vehicles: HashMap<u8, Entry>,
}

impl TelemetryReducer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, sysid: u8) -> Option<&Telemetry> {
        self.vehicles.get(&sysid).map(|e| &e.t)
    }

    pub fn sysids(&self) -> Vec<u8> {
        let mut v: Vec<u8> = self.vehicles.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Takes one frame; returns the vehicle it concerned and what changed.
    pub fn apply(
        &mut self,
        link: LinkId,
        frame: &Frame,
        msg: &MavMessage,
        now: Instant,
    ) -> Option<(u8, Vec<VehicleEvent>)> {
        let sysid = frame.sysid();
        let compid = frame.compid();
        let mut events = Vec::new();
        let e = match self.vehicles.entry(sysid) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            // A vehicle exists from the first HEARTBEAT of an autopilot; GCSs and
            // companion software are not vehicles.
            std::collections::hash_map::Entry::Vacant(slot) => match msg {
                MavMessage::HEARTBEAT(hb)
                    if hb.autopilot != MavAutopilot::MAV_AUTOPILOT_INVALID
                        && hb.mavtype != MavType::MAV_TYPE_GCS =>
                {
                    events.push(VehicleEvent::Discovered);
                    slot.insert(Entry {
                        t: Telemetry::new(sysid),
                        last_heartbeat: now,
                        seq: HashMap::new(),
                        clock: None,
                    })
                }
                _ => return None,
            },
        };
        let t = &mut e.t;
        t.links.insert(link);
        t.camera_heard |= compid == 100;
        // Sequence numbers count per sender component and per link.
        let expected = e
            .seq
            .insert((link, compid), (frame.seq().wrapping_add(1), now));
        t.quality.received += 1;
        if let Some((exp, last)) = expected {
            let gap = frame.seq().wrapping_sub(exp);
            // A large gap right after the previous frame is reordering or duplication; after
            // a silence it is an outage (counted modulo 256, so a lower bound).
            let silent = now.saturating_duration_since(last) > Duration::from_millis(200);
            if gap < 128 || silent {
                t.quality.lost += u64::from(gap);
            }
        }
        match msg {
            MavMessage::HEARTBEAT(hb) => {
                if hb.autopilot == MavAutopilot::MAV_AUTOPILOT_INVALID {
                    return Some((sysid, events));
                }
                e.last_heartbeat = now;
                t.heartbeat_age_s = 0.0;
                t.heartbeats += 1;
                if t.link == LinkState::Lost {
                    t.link = LinkState::Connected;
                    events.push(VehicleEvent::LinkRegained);
                }
                t.autopilot_px4 = hb.autopilot == MavAutopilot::MAV_AUTOPILOT_PX4;
                t.mav_type = hb.mavtype as u8;
                t.system_status = hb.system_status as u8;
                let mode = Px4Mode::from_custom_mode(hb.custom_mode);
                if mode != t.mode {
                    t.mode = mode;
                    events.push(VehicleEvent::ModeChanged(mode));
                }
                let armed = hb
                    .base_mode
                    .contains(MavModeFlag::MAV_MODE_FLAG_SAFETY_ARMED);
                if armed != t.armed {
                    t.armed = armed;
                    events.push(VehicleEvent::Armed(armed));
                }
            }
            MavMessage::SYS_STATUS(s) => {
                t.sensors = Some(Sensors {
                    present: s.onboard_control_sensors_present.bits(),
                    enabled: s.onboard_control_sensors_enabled.bits(),
                    health: s.onboard_control_sensors_health.bits(),
                    reports: t.sensors.map_or(0, |x| x.reports) + 1,
                });
                if s.voltage_battery != u16::MAX {
                    t.battery.voltage = Some(f32::from(s.voltage_battery) / 1000.0);
                }
                if s.current_battery >= 0 {
                    t.battery.current = Some(f32::from(s.current_battery) / 100.0);
                }
                if s.battery_remaining >= 0 {
                    t.battery.remaining = Some(s.battery_remaining);
                }
            }
            MavMessage::BATTERY_STATUS(b) => {
                if b.battery_remaining >= 0 {
                    t.battery.remaining = Some(b.battery_remaining);
                }
                if b.current_battery >= 0 {
                    t.battery.current = Some(f32::from(b.current_battery) / 100.0);
                }
            }
            MavMessage::GLOBAL_POSITION_INT(p) => {
                t.position = Some(Position {
                    lat: f64::from(p.lat) * 1e-7,
                    lon: f64::from(p.lon) * 1e-7,
                    alt_msl: p.alt as f32 / 1000.0,
                    alt_rel: p.relative_alt as f32 / 1000.0,
                    vel_ned: [
                        f32::from(p.vx) / 100.0,
                        f32::from(p.vy) / 100.0,
                        f32::from(p.vz) / 100.0,
                    ],
                    heading: (p.hdg != u16::MAX).then(|| f32::from(p.hdg) / 100.0),
                });
            }
            MavMessage::ATTITUDE(a) => {
                if compid == 1 {
                    match e.clock {
                        Some((t0, ms0)) if a.time_boot_ms >= ms0 => {
                            let wall = now.saturating_duration_since(t0);
                            // A first estimate soon, so the heartbeat keeps pace early;
                            // longer windows after that, for precision.
                            let window = if t.clock_rate.is_some() {
                                CLOCK_WINDOW
                            } else {
                                CLOCK_WINDOW / 4
                            };
                            if wall >= window {
                                let rate =
                                    f64::from(a.time_boot_ms - ms0) / 1000.0 / wall.as_secs_f64();
                                t.clock_rate = Some(rate);
                                e.clock = Some((now, a.time_boot_ms));
                            }
                        }
                        // First sample, or the vehicle rebooted.
                        _ => e.clock = Some((now, a.time_boot_ms)),
                    }
                }
                let q = t.attitude.and_then(|x| x.q);
                t.attitude = Some(Attitude {
                    roll: a.roll,
                    pitch: a.pitch,
                    yaw: a.yaw,
                    q,
                });
            }
            MavMessage::ATTITUDE_QUATERNION(a) => {
                let mut att = t.attitude.unwrap_or_default();
                att.q = Some([a.q1, a.q2, a.q3, a.q4]);
                t.attitude = Some(att);
            }
            MavMessage::GPS_RAW_INT(g) => {
                t.gps = Some(Gps {
                    fix_type: g.fix_type as u8,
                    satellites: g.satellites_visible,
                    hdop: (g.eph != u16::MAX).then(|| f32::from(g.eph) / 100.0),
                });
            }
            MavMessage::HOME_POSITION(h) => {
                let home = Home {
                    lat: f64::from(h.latitude) * 1e-7,
                    lon: f64::from(h.longitude) * 1e-7,
                    alt_msl: h.altitude as f32 / 1000.0,
                };
                if t.home != Some(home) {
                    t.home = Some(home);
                    events.push(VehicleEvent::HomeChanged(home));
                }
            }
            MavMessage::EXTENDED_SYS_STATE(s) => {
                let st = s.landed_state as u8;
                if t.landed != Some(st) {
                    t.landed = Some(st);
                    events.push(VehicleEvent::LandedState(st));
                }
            }
            MavMessage::MISSION_CURRENT(m) => {
                if m.total != u16::MAX && m.total != 0 {
                    t.mission_total = Some(m.total);
                }
                t.mission_state = Some(m.mission_state as u8);
                t.mission_id = Some(m.mission_id);
                if t.mission_current != Some(m.seq) {
                    t.mission_current = Some(m.seq);
                    events.push(VehicleEvent::MissionCurrent(m.seq));
                }
            }
            // PX4 re-sends the last reached item about once a second: report it once.
            MavMessage::WIND_COV(w) if w.wind_x.is_finite() && w.wind_y.is_finite() => {
                // wind_x/y: the air's velocity north/east (NED), m/s.
                t.wind = Some(WindEstimate {
                    speed_m_s: w.wind_x.hypot(w.wind_y),
                    from_deg: ((-w.wind_y).atan2(-w.wind_x).to_degrees() + 360.0) % 360.0,
                    var_horiz: w.var_horiz,
                    at: std::time::Instant::now(),
                });
            }
            MavMessage::MISSION_ITEM_REACHED(m) if t.last_reached != Some(m.seq) => {
                t.last_reached = Some(m.seq);
                events.push(VehicleEvent::MissionItemReached(m.seq));
            }
            MavMessage::STATUSTEXT(s) => {
                let text = s.text.to_str().unwrap_or("").to_string();
                let severity = s.severity as u8;
                if t.statustext.len() == 20 {
                    t.statustext.pop_front();
                }
                t.statustext.push_back((severity, text.clone()));
                events.push(VehicleEvent::StatusText { severity, text });
            }
            MavMessage::CAMERA_CAPTURE_STATUS(s) => {
                t.camera_images = Some(s.image_count);
                t.camera_status_reports += 1;
            }
            MavMessage::CAMERA_INFORMATION(i)
                if i.focal_length > 0.0
                    && i.sensor_size_h > 0.0
                    && i.sensor_size_v > 0.0
                    && i.resolution_h > 0
                    && i.resolution_v > 0 =>
            {
                t.camera = Some(CameraInfo {
                    focal_mm: i.focal_length,
                    sensor_w_mm: i.sensor_size_h,
                    sensor_h_mm: i.sensor_size_v,
                    width: i.resolution_h,
                    height: i.resolution_v,
                });
            }
            MavMessage::CAMERA_IMAGE_CAPTURED(c) => {
                t.captures += 1;
                events.push(VehicleEvent::ImageCaptured(ImageCapture {
                    compid,
                    index: c.image_index,
                    time_utc_us: c.time_utc,
                    lat: f64::from(c.lat) * 1e-7,
                    lon: f64::from(c.lon) * 1e-7,
                    alt_msl: c.alt as f32 / 1000.0,
                    alt_rel: c.relative_alt as f32 / 1000.0,
                    q: c.q,
                    success: c.capture_result.bits() == 1,
                    file_url: c.file_url.to_str().unwrap_or("").to_string(),
                }));
            }
            _ => {}
        }
        Some((sysid, events))
    }

    /// Marks vehicles lost whose last HEARTBEAT is older than `timeout`.
    pub fn check_links(&mut self, now: Instant, timeout: Duration) -> Vec<(u8, VehicleEvent)> {
        let mut out = Vec::new();
        for (sysid, e) in self.vehicles.iter_mut() {
            let age = now.saturating_duration_since(e.last_heartbeat);
            e.t.heartbeat_age_s = age.as_secs_f64();
            if age > timeout && e.t.link == LinkState::Connected {
                e.t.link = LinkState::Lost;
                out.push((*sysid, VehicleEvent::LinkLost));
            }
        }
        out
    }
}

/// Severity number to the name MAVLink gives it.
pub fn severity_name(sev: u8) -> &'static str {
    use MavSeverity::*;
    let all = [
        (MAV_SEVERITY_EMERGENCY, "EMERGENCY"),
        (MAV_SEVERITY_ALERT, "ALERT"),
        (MAV_SEVERITY_CRITICAL, "CRITICAL"),
        (MAV_SEVERITY_ERROR, "ERROR"),
        (MAV_SEVERITY_WARNING, "WARNING"),
        (MAV_SEVERITY_NOTICE, "NOTICE"),
        (MAV_SEVERITY_INFO, "INFO"),
        (MAV_SEVERITY_DEBUG, "DEBUG"),
    ];
    all.iter()
        .find(|(s, _)| *s as u8 == sev)
        .map(|(_, n)| *n)
        .unwrap_or("?")
}
