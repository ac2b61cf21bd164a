//! Ready conditions: what must hold before a run launches on a vehicle. Each failure is a
//! sentence that becomes the run's reason, e.g. "skipped: wind 11.2 m/s > 10".

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::definition::ReadyConditions;
use crate::vehicle::{LinkState, Telemetry};

/// The sun's elevation above the horizon at (`lat`, `lon`) in degrees, at `t`: the NOAA
/// solar position approximation (declination and equation of time from the fractional
/// year), good to a fraction of a degree, ignoring refraction.
pub fn sun_elevation_deg(lat: f64, lon: f64, t: DateTime<Utc>) -> f64 {
    let day = f64::from(t.ordinal0());
    let hour = f64::from(t.hour()) + f64::from(t.minute()) / 60.0 + f64::from(t.second()) / 3600.0;
    let g = 2.0 * std::f64::consts::PI / 365.0 * (day + (hour - 12.0) / 24.0);
    let eqtime = 229.18
        * (0.000075 + 0.001868 * g.cos()
            - 0.032077 * g.sin()
            - 0.014615 * (2.0 * g).cos()
            - 0.040849 * (2.0 * g).sin());
    let decl = 0.006918 - 0.399912 * g.cos() + 0.070257 * g.sin() - 0.006758 * (2.0 * g).cos()
        + 0.000907 * (2.0 * g).sin()
        - 0.002697 * (3.0 * g).cos()
        + 0.00148 * (3.0 * g).sin();
    let true_solar_min = hour * 60.0 + eqtime + 4.0 * lon;
    let hour_angle = (true_solar_min / 4.0 - 180.0).to_radians();
    let phi = lat.to_radians();
    let cos_zenith = phi.sin() * decl.sin() + phi.cos() * decl.cos() * hour_angle.cos();
    90.0 - cos_zenith.clamp(-1.0, 1.0).acos().to_degrees()
}

/// What the vehicle-independent conditions say at `t` over `(lat, lon)`, with the wind
/// when one is known (m/s).
pub fn site_failures(
    r: &ReadyConditions,
    lat: f64,
    lon: f64,
    t: DateTime<Utc>,
    wind_m_s: Option<f64>,
) -> Vec<String> {
    let mut f = Vec::new();
    if let Some(min) = r.min_sun_elevation_deg {
        let e = sun_elevation_deg(lat, lon, t);
        if e < min {
            f.push(format!("sun {e:.1}° < {min}° above the horizon"));
        }
    }
    // Without a weather source the vehicles' own estimates decide (vehicle_failures).
    if let (Some(max), Some(_)) = (r.max_wind_m_s, &r.weather_url) {
        match wind_m_s {
            Some(w) if w > max => f.push(format!("wind {w:.1} m/s > {max}")),
            Some(_) => {}
            None => f.push("wind unknown (no weather source answered)".into()),
        }
    }
    f
}

/// Whether each of `jobs` can fly from `home` (lat, lon degrees) as PX4 would take it:
/// its geofence within PX4's capacity and holding the home (else PX4 will not arm), its
/// first waypoint within MIS_DIST_1WP; one sentence per sortie that cannot.
pub fn fence_failures(jobs: &[crate::patrol::SortieJob], home: (f64, f64)) -> Vec<String> {
    let cap = crate::plan::fence::PX4_FENCE_CAPACITY;
    jobs.iter()
        .filter_map(|j| {
            if j.fence.len() > cap {
                return Some(format!(
                    "sortie {}: its geofence has {} items; the vehicle holds {cap}",
                    j.index + 1,
                    j.fence.len()
                ));
            }
            crate::patrol::check_sortie_from_home(j, home, crate::patrol::PX4_MIS_DIST_1WP_M).err()
        })
        .collect()
}

/// How old a vehicle's wind estimate may be and still count.
pub const WIND_FRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// What one vehicle fails of `r`, given the battery share (percent) its first sortie
/// needs.
pub fn vehicle_failures(r: &ReadyConditions, t: &Telemetry, need_pct: f64) -> Vec<String> {
    let mut f = Vec::new();
    if t.link != LinkState::Connected {
        f.push(format!("vehicle {}: link lost", t.sysid));
    }
    if t.armed || !t.on_ground() {
        f.push(format!(
            "vehicle {}: not on the ground and disarmed",
            t.sysid
        ));
    }
    if t.home.is_none() {
        f.push(format!(
            "vehicle {}: no home position (HOME_POSITION)",
            t.sysid
        ));
    }
    if r.require_gps_fix && t.gps.is_none_or(|g| g.fix_type < 3) {
        f.push(format!("vehicle {}: no 3D GPS fix", t.sysid));
    }
    if r.no_failsafe && t.system_status >= 5 {
        // MAV_STATE_CRITICAL (5) or worse: PX4 reports an active failsafe so.
        f.push(format!(
            "vehicle {}: failsafe active (system status {})",
            t.sysid, t.system_status
        ));
    }
    if let (Some(max), None) = (r.max_wind_m_s, &r.weather_url) {
        match t.wind.as_ref().filter(|w| w.at.elapsed() < WIND_FRESH) {
            Some(w) if f64::from(w.speed_m_s) > max => f.push(format!(
                "vehicle {}: wind {:.1} m/s > {max} (its own estimate)",
                t.sysid, w.speed_m_s
            )),
            Some(_) => {}
            None => f.push(format!(
                "vehicle {}: wind unknown (it sends no WIND_COV; give the patrol a weather_url)",
                t.sysid
            )),
        }
    }
    match t.battery.remaining {
        Some(b) => {
            let left = f64::from(b) - need_pct;
            if left < r.min_battery_pct {
                f.push(format!(
                    "vehicle {}: battery {b} % − {need_pct:.0} % for the sortie = {left:.0} % < {} %",
                    t.sysid, r.min_battery_pct
                ));
            }
        }
        None => f.push(format!("vehicle {}: battery unknown", t.sysid)),
    }
    f
}

/// Weather sources' answers, fetched off the scheduler's thread and kept for a minute:
/// dispatch reads them without waiting on the network.
#[derive(Default)]
pub struct WeatherCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, WeatherEntry>>,
}

#[derive(Default)]
struct WeatherEntry {
    at: Option<std::time::Instant>,
    wind: Option<Result<f64, String>>,
    fetching: bool,
}

/// How long a weather source's answer holds.
const WEATHER_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl WeatherCache {
    /// The wind `url` last reported (m/s), or why it did not; `None` until its first
    /// answer. A stale or missing answer is fetched again in the background.
    pub fn wind(self: &std::sync::Arc<Self>, url: &str) -> Option<Result<f64, String>> {
        let mut g = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = g.entry(url.to_string()).or_default();
        let stale = e.at.is_none_or(|t| t.elapsed() > WEATHER_TTL);
        if stale && !e.fetching {
            e.fetching = true;
            let (me, key) = (self.clone(), url.to_string());
            let fetch = move || {
                let wind = wind_from(&key);
                let mut g = me.entries.lock().unwrap_or_else(|p| p.into_inner());
                let e = g.entry(key).or_default();
                *e = WeatherEntry {
                    at: Some(std::time::Instant::now()),
                    wind: Some(wind),
                    fetching: false,
                };
            };
            match tokio::runtime::Handle::try_current() {
                Ok(h) => drop(h.spawn_blocking(fetch)),
                // No runtime (a test driving the service by hand): fetch here.
                Err(_) => {
                    drop(g);
                    fetch();
                    let g = self.entries.lock().unwrap_or_else(|p| p.into_inner());
                    return g.get(url).and_then(|e| e.wind.clone());
                }
            }
        }
        e.wind.clone()
    }
}

/// The wind a weather source reports: GET `url` → JSON `{"wind_m_s": …}`, given up after
/// 10 s (an unanswering source must not hold the scheduler).
pub fn wind_from(url: &str) -> Result<f64, String> {
    let body = crate::capture::fetch::http_agent(std::time::Duration::from_secs(10))
        .get(url)
        .call()
        .map_err(|e| format!("{url}: {e}"))?
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{url}: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("{url}: not JSON: {e}"))?;
    v.get("wind_m_s")
        .and_then(|w| w.as_f64())
        .ok_or_else(|| format!("{url}: no number wind_m_s in {body:.100}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_sun_over_lanzhou() {
        let (lat, lon) = (36.56, 103.68);
        let at = |h, m| {
            chrono_tz::Asia::Shanghai
                .with_ymd_and_hms(2026, 6, 21, h, m, 0)
                .unwrap()
                .with_timezone(&Utc)
        };
        // Solar noon there is about 13:05 Beijing time; at the June solstice the sun
        // stands 90 − 36.56 + 23.44 ≈ 76.9° high.
        let noon = sun_elevation_deg(lat, lon, at(13, 5));
        assert!((noon - 76.9).abs() < 0.7, "{noon}");
        assert!(sun_elevation_deg(lat, lon, at(2, 0)) < -20.0);
        // Sunrise about 06:00 Beijing time in June there.
        let dawn = sun_elevation_deg(lat, lon, at(6, 0));
        assert!(dawn.abs() < 3.0, "{dawn}");
    }

    #[test]
    fn a_fence_that_leaves_home_outside_does_not_fit() {
        use crate::vehicle::MissionItem;
        // A 200 m square fence 1 km north of home.
        let (lat, lon) = (36.569, 103.68);
        let d = 0.001;
        let corners = [
            (lat - d, lon - d),
            (lat - d, lon + d),
            (lat + d, lon + d),
            (lat + d, lon - d),
        ];
        let fence: Vec<MissionItem> = corners
            .iter()
            .map(|&(a, o)| MissionItem {
                command: 5001,
                params: [4.0, 0.0, 0.0, 0.0],
                ..MissionItem::waypoint(a, o, 0.0)
            })
            .collect();
        let job = crate::patrol::SortieJob {
            index: 1,
            mission: vec![MissionItem::takeoff(lat, lon, 30.0)],
            fence,
            cells: vec![],
            flight_time_s: 60.0,
        };
        assert!(fence_failures(std::slice::from_ref(&job), (lat, lon)).is_empty());
        let f = fence_failures(&[job], (36.56, 103.68));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].starts_with("sortie 2: the vehicle's home is") && f[0].contains("outside"),
            "{f:?}"
        );
    }

    #[test]
    fn site_failures_give_reasons() {
        let r = ReadyConditions {
            max_wind_m_s: Some(10.0),
            weather_url: Some("http://127.0.0.1:9/now".into()),
            min_sun_elevation_deg: Some(0.0),
            ..Default::default()
        };
        let night = chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(2026, 12, 4, 23, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let f = site_failures(&r, 36.56, 103.68, night, Some(11.2));
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].starts_with("sun -"), "{f:?}");
        assert_eq!(f[1], "wind 11.2 m/s > 10");
    }
}
