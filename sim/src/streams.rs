//! Telemetry streams: which messages a vehicle sends unasked on each link, and how often.
//!
//! PX4 runs one MAVLink instance per link, each in a mode with its own stream set. The
//! rates are those measured on PX4 v1.16 SITL (SIH quadrotor, speed 1, idle on the
//! ground), in Hz of its own clock: its GCS link (mode Normal, with the SITL start-up
//! script's 50 Hz overrides) and its API link (mode Onboard). MAV_CMD_SET_MESSAGE_INTERVAL
//! changes them per link as PX4 does: interval in µs, 0 restores the default, -1 stops.

/// Message ids the simulator streams or sends on request.
pub mod id {
    pub const HEARTBEAT: u32 = 0;
    pub const SYS_STATUS: u32 = 1;
    pub const SYSTEM_TIME: u32 = 2;
    pub const PING: u32 = 4;
    pub const GPS_RAW_INT: u32 = 24;
    pub const SCALED_PRESSURE: u32 = 29;
    pub const ATTITUDE: u32 = 30;
    pub const ATTITUDE_QUATERNION: u32 = 31;
    pub const LOCAL_POSITION_NED: u32 = 32;
    pub const GLOBAL_POSITION_INT: u32 = 33;
    pub const MISSION_CURRENT: u32 = 42;
    pub const MISSION_ITEM_REACHED: u32 = 46;
    pub const VFR_HUD: u32 = 74;
    pub const ATTITUDE_TARGET: u32 = 83;
    pub const POSITION_TARGET_LOCAL_NED: u32 = 85;
    pub const HIGHRES_IMU: u32 = 105;
    pub const TIMESYNC: u32 = 111;
    pub const ALTITUDE: u32 = 141;
    pub const BATTERY_STATUS: u32 = 147;
    pub const AUTOPILOT_VERSION: u32 = 148;
    pub const ESTIMATOR_STATUS: u32 = 230;
    pub const VIBRATION: u32 = 241;
    pub const WIND_COV: u32 = 231;
    pub const HOME_POSITION: u32 = 242;
    pub const EXTENDED_SYS_STATE: u32 = 245;
    pub const ODOMETRY: u32 = 331;
    pub const CURRENT_MODE: u32 = 436;
}

/// A PX4 MAVLink instance's mode, which picks its default streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkMode {
    /// The GCS link (`mavlink start -u 18570 ... ` in SITL).
    Normal,
    /// The API / offboard link (`-m onboard`, 14580 → 14540).
    Onboard,
}

/// PX4 v1.16 SITL's GCS link, Hz. Not simulated: DISTANCE_SENSOR (SIH's fake range
/// finder), SERVO_OUTPUT_RAW, OPEN_DRONE_ID_LOCATION and _SYSTEM (see the conformance
/// suite's allowed differences).
pub const NORMAL_RATES: &[(u32, f64)] = &[
    (id::HEARTBEAT, 1.0),
    (id::SYS_STATUS, 1.0),
    (id::EXTENDED_SYS_STATE, 1.0),
    (id::MISSION_CURRENT, 1.0),
    // PX4 keeps re-sending the last reached item.
    (id::MISSION_ITEM_REACHED, 1.0),
    (id::GPS_RAW_INT, 5.0),
    (id::VFR_HUD, 4.0),
    (id::GLOBAL_POSITION_INT, 50.0),
    (id::LOCAL_POSITION_NED, 50.0),
    (id::ATTITUDE, 50.0),
    (id::ATTITUDE_QUATERNION, 50.0),
    (id::ATTITUDE_TARGET, 50.0),
    (id::POSITION_TARGET_LOCAL_NED, 50.0),
    (id::ALTITUDE, 1.0),
    (id::SCALED_PRESSURE, 1.0),
    (id::BATTERY_STATUS, 0.5),
    (id::HOME_POSITION, 0.5),
    (id::CURRENT_MODE, 0.5),
    (id::ESTIMATOR_STATUS, 0.5),
    (id::PING, 0.1),
    (id::VIBRATION, 0.1),
];

/// PX4 v1.16 SITL's API link, Hz. PX4 sends ATTITUDE at 100 Hz there; the simulator steps
/// at 50 Hz and sends it at 50.
pub const ONBOARD_RATES: &[(u32, f64)] = &[
    (id::HEARTBEAT, 1.0),
    (id::TIMESYNC, 10.0),
    (id::HIGHRES_IMU, 50.0),
    (id::LOCAL_POSITION_NED, 30.0),
    (id::ODOMETRY, 30.0),
    (id::ATTITUDE, 100.0),
    (id::ATTITUDE_QUATERNION, 50.0),
    (id::ATTITUDE_TARGET, 10.0),
    (id::POSITION_TARGET_LOCAL_NED, 10.0),
    (id::GLOBAL_POSITION_INT, 50.0),
    (id::GPS_RAW_INT, 8.0),
    (id::ALTITUDE, 10.0),
    (id::VFR_HUD, 10.0),
    (id::SYS_STATUS, 5.0),
    (id::EXTENDED_SYS_STATE, 5.0),
    (id::ESTIMATOR_STATUS, 1.0),
    (id::SYSTEM_TIME, 1.0),
    (id::PING, 1.0),
    (id::SCALED_PRESSURE, 1.0),
    (id::MISSION_CURRENT, 1.0),
    (id::MISSION_ITEM_REACHED, 1.0),
    (id::BATTERY_STATUS, 0.5),
    (id::HOME_POSITION, 0.5),
    (id::CURRENT_MODE, 0.5),
    (id::VIBRATION, 0.5),
];

/// Messages a GCS may start streaming with SET_MESSAGE_INTERVAL on any link.
pub const STREAMABLE: &[u32] = &[
    id::HEARTBEAT,
    id::SYS_STATUS,
    id::SYSTEM_TIME,
    id::PING,
    id::GPS_RAW_INT,
    id::SCALED_PRESSURE,
    id::ATTITUDE,
    id::ATTITUDE_QUATERNION,
    id::LOCAL_POSITION_NED,
    id::GLOBAL_POSITION_INT,
    id::MISSION_CURRENT,
    id::MISSION_ITEM_REACHED,
    id::VFR_HUD,
    id::ATTITUDE_TARGET,
    id::POSITION_TARGET_LOCAL_NED,
    id::HIGHRES_IMU,
    id::TIMESYNC,
    id::ALTITUDE,
    id::BATTERY_STATUS,
    id::ESTIMATOR_STATUS,
    id::VIBRATION,
    id::WIND_COV,
    id::HOME_POSITION,
    id::EXTENDED_SYS_STATE,
    id::ODOMETRY,
    id::CURRENT_MODE,
];

#[derive(Clone, Debug)]
struct Stream {
    id: u32,
    /// Seconds between messages; `None` when stopped.
    interval: Option<f64>,
    /// The mode's default; `None` for a stream the mode does not send.
    default: Option<f64>,
    next: f64,
}

#[derive(Clone, Debug)]
pub struct Streams {
    streams: Vec<Stream>,
}

impl Default for Streams {
    fn default() -> Self {
        Self::new(LinkMode::Normal, 1.0)
    }
}

impl Streams {
    /// PX4's default streams for a link in `mode`, every rate multiplied by `scale`.
    pub fn new(mode: LinkMode, scale: f64) -> Self {
        let rates = match mode {
            LinkMode::Normal => NORMAL_RATES,
            LinkMode::Onboard => ONBOARD_RATES,
        };
        Self {
            streams: rates
                .iter()
                .map(|&(id, hz)| {
                    let interval = 1.0 / (hz * scale);
                    Stream {
                        id,
                        interval: Some(interval),
                        default: Some(interval),
                        next: 0.0,
                    }
                })
                .collect(),
        }
    }

    /// MAV_CMD_SET_MESSAGE_INTERVAL: `interval_us` > 0 sets, 0 restores the default,
    /// -1 stops. Returns false for a message this vehicle cannot stream.
    pub fn set_interval(&mut self, msg_id: u32, interval_us: f32) -> bool {
        let i = match self.streams.iter().position(|s| s.id == msg_id) {
            Some(i) => i,
            None if STREAMABLE.contains(&msg_id) => {
                self.streams.push(Stream {
                    id: msg_id,
                    interval: None,
                    default: None,
                    next: 0.0,
                });
                self.streams.len() - 1
            }
            None => return false,
        };
        let s = &mut self.streams[i];
        s.interval = if interval_us < 0.0 {
            None
        } else if interval_us == 0.0 {
            s.default
        } else {
            Some(f64::from(interval_us) * 1e-6)
        };
        true
    }

    /// The interval in µs as MESSAGE_INTERVAL reports it (-1 stopped, 0 unknown id).
    pub fn interval_us(&self, msg_id: u32) -> i32 {
        match self.streams.iter().find(|s| s.id == msg_id) {
            Some(Stream {
                interval: Some(i), ..
            }) => (i * 1e6).round() as i32,
            Some(_) => -1,
            None => 0,
        }
    }

    /// The messages due at simulated time `now`, in a fixed order.
    pub fn due(&mut self, now: f64) -> Vec<u32> {
        let mut out = Vec::new();
        for s in &mut self.streams {
            let Some(interval) = s.interval else { continue };
            if now + 1e-9 >= s.next {
                out.push(s.id);
                // Keep the phase; skip what a long step missed rather than bursting.
                s.next += interval;
                if s.next <= now {
                    s.next = now + interval;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_set_message_interval() {
        let mut s = Streams::default();
        let count = |s: &mut Streams, id: u32| {
            (0..1000)
                .filter(|i| s.due(*i as f64 * 0.01).contains(&id))
                .count()
        };
        assert_eq!(
            count(&mut s, id::GLOBAL_POSITION_INT),
            500,
            "50 Hz over 10 s at 100 Hz steps"
        );
        let mut s = Streams::default();
        assert_eq!(count(&mut s, id::GPS_RAW_INT), 50);
        let mut s = Streams::default();
        assert!(s.set_interval(id::GPS_RAW_INT, 1_000_000.0));
        assert_eq!(count(&mut s, id::GPS_RAW_INT), 10);
        assert!(s.set_interval(id::GPS_RAW_INT, -1.0));
        assert_eq!(s.interval_us(id::GPS_RAW_INT), -1);
        assert!(!s.set_interval(9999, 1.0));
        // A message the mode does not send can be started, and 0 stops it again.
        assert_eq!(count(&mut s, id::HIGHRES_IMU), 0);
        assert!(s.set_interval(id::HIGHRES_IMU, 100_000.0));
        assert_eq!(count(&mut Streams::default(), id::HIGHRES_IMU), 0);
        assert_eq!(s.interval_us(id::HIGHRES_IMU), 100_000);
        assert!(s.set_interval(id::HIGHRES_IMU, 0.0));
        assert_eq!(s.interval_us(id::HIGHRES_IMU), -1);
        // The API link streams the onboard set.
        let mut s = Streams::new(LinkMode::Onboard, 1.0);
        assert_eq!(count(&mut s, id::SYS_STATUS), 50, "5 Hz");
        let mut s = Streams::new(LinkMode::Onboard, 1.0);
        assert_eq!(count(&mut s, id::TIMESYNC), 100, "10 Hz");
    }
}
