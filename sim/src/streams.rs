//! Telemetry streams: which messages a vehicle sends unasked, and how often.
//!
//! Default rates are those of PX4 v1.16 SITL's GCS link as recorded in
//! `shared/px4-sitl/px4_sih_mission_flight.tlog` (50 Hz position and attitude, 5 Hz GPS,
//! ~8 Hz VFR_HUD, 1 Hz status, 0.5 Hz battery and home). MAV_CMD_SET_MESSAGE_INTERVAL
//! changes them as PX4 does: interval in µs, 0 restores the default, -1 stops the stream.

/// Message ids the simulator streams.
pub mod id {
    pub const HEARTBEAT: u32 = 0;
    pub const SYS_STATUS: u32 = 1;
    pub const GPS_RAW_INT: u32 = 24;
    pub const ATTITUDE: u32 = 30;
    pub const ATTITUDE_QUATERNION: u32 = 31;
    pub const GLOBAL_POSITION_INT: u32 = 33;
    pub const MISSION_CURRENT: u32 = 42;
    pub const MISSION_ITEM_REACHED: u32 = 46;
    pub const VFR_HUD: u32 = 74;
    pub const BATTERY_STATUS: u32 = 147;
    pub const HOME_POSITION: u32 = 242;
    pub const EXTENDED_SYS_STATE: u32 = 245;
}

/// PX4 SITL's default rate in Hz per streamed message.
pub const DEFAULT_RATES: [(u32, f64); 12] = [
    (id::HEARTBEAT, 1.0),
    (id::SYS_STATUS, 1.0),
    (id::EXTENDED_SYS_STATE, 1.0),
    (id::MISSION_CURRENT, 1.0),
    // PX4 keeps re-sending the last reached item (issue text: about once a second).
    (id::MISSION_ITEM_REACHED, 1.0),
    (id::GPS_RAW_INT, 5.0),
    (id::VFR_HUD, 8.0),
    (id::GLOBAL_POSITION_INT, 50.0),
    (id::ATTITUDE, 50.0),
    (id::ATTITUDE_QUATERNION, 50.0),
    (id::BATTERY_STATUS, 0.5),
    (id::HOME_POSITION, 0.5),
];

#[derive(Clone, Debug)]
struct Stream {
    id: u32,
    /// Seconds between messages; `None` when stopped.
    interval: Option<f64>,
    default: f64,
    next: f64,
}

#[derive(Clone, Debug)]
pub struct Streams {
    streams: Vec<Stream>,
}

impl Default for Streams {
    fn default() -> Self {
        Self::with_rate_scale(1.0)
    }
}

impl Streams {
    /// PX4's default streams with every rate multiplied by `scale`.
    pub fn with_rate_scale(scale: f64) -> Self {
        Self {
            streams: DEFAULT_RATES
                .iter()
                .map(|&(id, hz)| Stream {
                    id,
                    interval: Some(1.0 / (hz * scale)),
                    default: 1.0 / (hz * scale),
                    next: 0.0,
                })
                .collect(),
        }
    }

    /// MAV_CMD_SET_MESSAGE_INTERVAL: `interval_us` > 0 sets, 0 restores the default,
    /// -1 stops. Returns false for a message this vehicle does not stream.
    pub fn set_interval(&mut self, msg_id: u32, interval_us: f32) -> bool {
        let Some(s) = self.streams.iter_mut().find(|s| s.id == msg_id) else {
            return false;
        };
        s.interval = if interval_us < 0.0 {
            None
        } else if interval_us == 0.0 {
            Some(s.default)
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
            }) => (i * 1e6) as i32,
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
    }
}
