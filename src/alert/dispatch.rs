//! Which vehicle goes to an alert: the one that can be over the point first, with the
//! battery for the way there round the no-fly zones, an orbit and the way home. A vehicle
//! in its dock climbs first; one flying a routine patrol may be taken off it when the
//! alert's priority allows, as FlightHub 2's operators do by hand.

use serde::Serialize;

use super::Priority;
use crate::plan::avoid::Obstacles;
use crate::plan::coverage::Frame;

/// How alerts are flown (`serve --alert-*`).
#[derive(Clone, Debug)]
pub struct AlertConfig {
    /// Orbit altitude above home, metres.
    pub alt_m: f64,
    /// Orbit radius round the point, metres: a nadir camera at `alt_m` keeps the point in
    /// the frame while it is under about half the altitude. No region of interest is set:
    /// PX4 v1.16 takes a DO_SET_ROI_LOCATION item but cannot send it back
    /// (format_mavlink_mission_item has no case for it), and every mission is read back.
    pub orbit_radius_m: f64,
    /// Hover over the point before the orbit, seconds.
    pub hover_s: f64,
    /// Cruise speed, m/s.
    pub speed_m_s: f64,
    /// Usable battery time of a full battery, minutes.
    pub battery_min: f64,
    /// Battery to land with, percent.
    pub reserve_pct: f64,
    /// From this priority up, a routine patrol gives up its vehicle.
    pub preempt_at: Priority,
    /// Events this close to the point confirm the alert, metres.
    pub link_radius_m: f64,
    /// Camera preset or JSON file of the alert's photos.
    pub camera: String,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            alt_m: 40.0,
            orbit_radius_m: 15.0,
            hover_s: 5.0,
            speed_m_s: 12.0,
            battery_min: 25.0,
            reserve_pct: 20.0,
            preempt_at: Priority::Urgent,
            link_radius_m: 40.0,
            camera: "sim".into(),
        }
    }
}

/// PX4's automatic climb and descent rates (MPC_Z_V_AUTO_UP, MPC_Z_V_AUTO_DN), m/s.
const CLIMB_M_S: f64 = 3.0;
const DESCENT_M_S: f64 = 1.5;
/// From the arm command to the climb: PX4 spins up and checks (COM_SPOOLUP_TIME 1 s) and
/// we upload, read back and arm first, seconds.
const LAUNCH_S: f64 = 8.0;

/// A vehicle that might go.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub sysid: u8,
    /// Where it is (lat, lon degrees) and how high above home (m).
    pub at: (f64, f64),
    pub alt_rel_m: f64,
    pub airborne: bool,
    /// Its home, where it lands after (lat, lon degrees).
    pub home: (f64, f64),
    /// Battery left, percent.
    pub battery_pct: Option<f64>,
    /// The routine run it is flying, which would be paused.
    pub flying_run: Option<i64>,
}

/// What sending one vehicle would take.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Offer {
    pub sysid: u8,
    /// Seconds until it is over the point.
    pub eta_s: f64,
    /// Battery the trip takes, percent: there, the orbit, home, landing.
    pub need_pct: f64,
    pub has_pct: f64,
    /// The routine run it would leave.
    pub preempts: Option<i64>,
}

impl Offer {
    /// Whether the battery covers the trip and the reserve.
    pub fn affordable(&self, cfg: &AlertConfig) -> bool {
        self.has_pct - self.need_pct >= cfg.reserve_pct
    }
}

/// The seconds and battery one candidate needs for the alert at `point`.
pub fn offer(cfg: &AlertConfig, obstacles: &Obstacles, c: &Candidate, point: (f64, f64)) -> Offer {
    let speed = cfg.speed_m_s.max(0.5);
    let (_, there_m) = obstacles.detour(c.at, point);
    let (_, back_m) = obstacles.detour(point, c.home);
    let climb_s = if c.airborne {
        (cfg.alt_m - c.alt_rel_m).abs() / CLIMB_M_S
    } else {
        LAUNCH_S + cfg.alt_m / CLIMB_M_S
    };
    let eta_s = climb_s + there_m / speed;
    let orbit_s = cfg.hover_s + std::f64::consts::TAU * cfg.orbit_radius_m / speed;
    let trip_s = eta_s + orbit_s + back_m / speed + cfg.alt_m / DESCENT_M_S;
    Offer {
        sysid: c.sysid,
        eta_s,
        need_pct: trip_s / (cfg.battery_min * 60.0) * 100.0,
        has_pct: c.battery_pct.unwrap_or(0.0),
        preempts: c.flying_run,
    }
}

/// The vehicle first over the point among those with the battery for it (ties to the
/// one with more left), or why none can go: each vehicle's shortfall.
pub fn choose(cfg: &AlertConfig, offers: &[Offer]) -> Result<Offer, Vec<String>> {
    let best = offers.iter().filter(|o| o.affordable(cfg)).min_by(|a, b| {
        a.eta_s
            .total_cmp(&b.eta_s)
            .then(b.has_pct.total_cmp(&a.has_pct))
    });
    match best {
        Some(o) => Ok(o.clone()),
        None => Err(offers
            .iter()
            .map(|o| {
                format!(
                    "vehicle {} would need {:.0} % of its battery to get there, orbit and come home, and has {:.0} % (keeping {:.0} %)",
                    o.sysid, o.need_pct, o.has_pct, cfg.reserve_pct
                )
            })
            .collect()),
    }
}

/// A local frame for the district round `home` (lat, lon degrees).
pub fn frame(home: (f64, f64)) -> Frame {
    Frame::new(home.0, home.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(sysid: u8, at: (f64, f64), airborne: bool, battery: f64) -> Candidate {
        Candidate {
            sysid,
            at,
            alt_rel_m: if airborne { 40.0 } else { 0.0 },
            airborne,
            home: at,
            battery_pct: Some(battery),
            flying_run: None,
        }
    }

    #[test]
    fn the_first_over_the_point_goes_if_its_battery_allows() {
        let cfg = AlertConfig::default();
        let home = (36.56, 103.68);
        let obstacles = Obstacles::new(frame(home), &[], 10.0);
        let point = (36.565, 103.68); // 556 m north
        let near = offer(
            &cfg,
            &obstacles,
            &cand(1, (36.564, 103.68), false, 90.0),
            point,
        );
        let far = offer(&cfg, &obstacles, &cand(2, home, false, 100.0), point);
        assert!(near.eta_s < far.eta_s);
        assert_eq!(choose(&cfg, &[far.clone(), near.clone()]).unwrap().sysid, 1);
        // 556 m at 12 m/s plus the climb: about a minute.
        assert!((55.0..70.0).contains(&far.eta_s), "{far:?}");
        // Too little battery: the farther one goes.
        let weak = offer(
            &cfg,
            &obstacles,
            &cand(1, (36.564, 103.68), false, 21.0),
            point,
        );
        assert_eq!(choose(&cfg, &[weak.clone(), far]).unwrap().sysid, 2);
        let why = choose(&cfg, &[weak]).unwrap_err();
        assert!(why[0].contains("has 21 %"), "{why:?}");
    }

    #[test]
    fn a_vehicle_in_the_air_skips_the_launch() {
        let cfg = AlertConfig::default();
        let home = (36.56, 103.68);
        let obstacles = Obstacles::new(frame(home), &[], 10.0);
        let point = (36.561, 103.68);
        let docked = offer(&cfg, &obstacles, &cand(1, home, false, 100.0), point);
        let flying = offer(&cfg, &obstacles, &cand(2, home, true, 100.0), point);
        assert!(flying.eta_s + LAUNCH_S <= docked.eta_s + 1e-9);
    }
}
