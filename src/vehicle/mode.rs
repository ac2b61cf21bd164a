//! PX4 flight modes as carried in HEARTBEAT.custom_mode and set with MAV_CMD_DO_SET_MODE.
//!
//! PX4 packs the mode as `{ u16 reserved; u8 main_mode; u8 sub_mode }` (little endian),
//! see PX4-Autopilot `src/modules/commander/px4_custom_mode.h`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// PX4 main modes (PX4_CUSTOM_MAIN_MODE_*).
pub mod main_mode {
    pub const MANUAL: u8 = 1;
    pub const ALTCTL: u8 = 2;
    pub const POSCTL: u8 = 3;
    pub const AUTO: u8 = 4;
    pub const ACRO: u8 = 5;
    pub const OFFBOARD: u8 = 6;
    pub const STABILIZED: u8 = 7;
    pub const TERMINATION: u8 = 10;
}

/// PX4 AUTO sub modes (PX4_CUSTOM_SUB_MODE_AUTO_*).
pub mod auto_sub_mode {
    pub const READY: u8 = 1;
    pub const TAKEOFF: u8 = 2;
    pub const LOITER: u8 = 3;
    pub const MISSION: u8 = 4;
    pub const RTL: u8 = 5;
    pub const LAND: u8 = 6;
    pub const FOLLOW_TARGET: u8 = 8;
    pub const PRECLAND: u8 = 9;
}

/// A PX4 flight mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Px4Mode {
    Manual,
    Altctl,
    Posctl,
    Acro,
    Offboard,
    Stabilized,
    Termination,
    AutoReady,
    AutoTakeoff,
    AutoLoiter,
    AutoMission,
    AutoRtl,
    AutoLand,
    AutoFollowTarget,
    AutoPrecland,
    /// A combination we do not name.
    Other {
        main: u8,
        sub: u8,
    },
}

impl Px4Mode {
    pub fn from_main_sub(main: u8, sub: u8) -> Self {
        use auto_sub_mode as a;
        use main_mode as m;
        match (main, sub) {
            (m::MANUAL, _) => Self::Manual,
            (m::ALTCTL, _) => Self::Altctl,
            (m::POSCTL, _) => Self::Posctl,
            (m::ACRO, _) => Self::Acro,
            (m::OFFBOARD, _) => Self::Offboard,
            (m::STABILIZED, _) => Self::Stabilized,
            (m::TERMINATION, _) => Self::Termination,
            (m::AUTO, a::READY) => Self::AutoReady,
            (m::AUTO, a::TAKEOFF) => Self::AutoTakeoff,
            (m::AUTO, a::LOITER) => Self::AutoLoiter,
            (m::AUTO, a::MISSION) => Self::AutoMission,
            (m::AUTO, a::RTL) => Self::AutoRtl,
            (m::AUTO, a::LAND) => Self::AutoLand,
            (m::AUTO, a::FOLLOW_TARGET) => Self::AutoFollowTarget,
            (m::AUTO, a::PRECLAND) => Self::AutoPrecland,
            (main, sub) => Self::Other { main, sub },
        }
    }

    /// (main mode, sub mode) as PX4 numbers them.
    pub fn main_sub(self) -> (u8, u8) {
        use auto_sub_mode as a;
        use main_mode as m;
        match self {
            Self::Manual => (m::MANUAL, 0),
            Self::Altctl => (m::ALTCTL, 0),
            Self::Posctl => (m::POSCTL, 0),
            Self::Acro => (m::ACRO, 0),
            Self::Offboard => (m::OFFBOARD, 0),
            Self::Stabilized => (m::STABILIZED, 0),
            Self::Termination => (m::TERMINATION, 0),
            Self::AutoReady => (m::AUTO, a::READY),
            Self::AutoTakeoff => (m::AUTO, a::TAKEOFF),
            Self::AutoLoiter => (m::AUTO, a::LOITER),
            Self::AutoMission => (m::AUTO, a::MISSION),
            Self::AutoRtl => (m::AUTO, a::RTL),
            Self::AutoLand => (m::AUTO, a::LAND),
            Self::AutoFollowTarget => (m::AUTO, a::FOLLOW_TARGET),
            Self::AutoPrecland => (m::AUTO, a::PRECLAND),
            Self::Other { main, sub } => (main, sub),
        }
    }

    /// Decodes HEARTBEAT.custom_mode.
    pub fn from_custom_mode(custom_mode: u32) -> Self {
        Self::from_main_sub(
            ((custom_mode >> 16) & 0xFF) as u8,
            (custom_mode >> 24) as u8,
        )
    }

    pub fn custom_mode(self) -> u32 {
        let (main, sub) = self.main_sub();
        (u32::from(main) << 16) | (u32::from(sub) << 24)
    }

    /// Whether the vehicle flies itself in this mode (no RC needed).
    pub fn is_auto(self) -> bool {
        self.main_sub().0 == main_mode::AUTO || self == Self::Offboard
    }

    const NAMES: [(&'static str, Px4Mode); 15] = [
        ("MANUAL", Self::Manual),
        ("ALTCTL", Self::Altctl),
        ("POSCTL", Self::Posctl),
        ("ACRO", Self::Acro),
        ("OFFBOARD", Self::Offboard),
        ("STABILIZED", Self::Stabilized),
        ("TERMINATION", Self::Termination),
        ("AUTO.READY", Self::AutoReady),
        ("AUTO.TAKEOFF", Self::AutoTakeoff),
        ("AUTO.LOITER", Self::AutoLoiter),
        ("AUTO.MISSION", Self::AutoMission),
        ("AUTO.RTL", Self::AutoRtl),
        ("AUTO.LAND", Self::AutoLand),
        ("AUTO.FOLLOW_TARGET", Self::AutoFollowTarget),
        ("AUTO.PRECLAND", Self::AutoPrecland),
    ];
}

impl fmt::Display for Px4Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Self::NAMES.iter().find(|(_, m)| m == self) {
            Some((n, _)) => f.write_str(n),
            None => {
                let (main, sub) = self.main_sub();
                write!(f, "MODE({main}.{sub})")
            }
        }
    }
}

impl FromStr for Px4Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let up = s.to_ascii_uppercase();
        let alias = match up.as_str() {
            "MISSION" => "AUTO.MISSION",
            "RTL" => "AUTO.RTL",
            "LAND" => "AUTO.LAND",
            "LOITER" | "HOLD" => "AUTO.LOITER",
            "TAKEOFF" => "AUTO.TAKEOFF",
            "POSITION" => "POSCTL",
            "ALTITUDE" => "ALTCTL",
            other => other,
        };
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == alias)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                let names: Vec<_> = Self::NAMES.iter().map(|(n, _)| *n).collect();
                format!("unknown PX4 mode {s:?}; known: {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_mode_round_trip_and_px4_values() {
        // AUTO.MISSION as PX4 v1.16 SITL reports it in the reference tlog.
        assert_eq!(Px4Mode::AutoMission.custom_mode(), 0x0404_0000);
        assert_eq!(Px4Mode::from_custom_mode(0x0304_0000), Px4Mode::AutoLoiter);
        for (_, m) in Px4Mode::NAMES {
            assert_eq!(Px4Mode::from_custom_mode(m.custom_mode()), m);
            assert_eq!(m.to_string().parse::<Px4Mode>().unwrap(), m);
        }
        assert!("FLY"
            .parse::<Px4Mode>()
            .unwrap_err()
            .contains("AUTO.MISSION"));
    }
}
