//! When a patrol fires: cron expressions in a time zone (default Asia/Shanghai), one-off
//! instants, a repeat interval, or back to back ("continuous", FlightHub 2's task type),
//! kept inside daily time windows and off blackout dates.
//!
//! Cron is five fields (minute hour day-of-month month day-of-week, Vixie cron with the
//! `L`, `#` and `W` extensions and names), read by the `croner` crate. A local time that a
//! daylight-saving change skips or repeats fires as croner resolves it; Asia/Shanghai has
//! no such changes.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// What to do with a firing that passed while `serve` was down.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Missed {
    /// Record it as skipped (the default: a patrol flown hours late is seldom wanted).
    #[default]
    Skip,
    /// Run the latest one late, if it is at most `late_within_min` old.
    Late,
}

/// A patrol's schedule as written.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// IANA time zone of the cron fields, windows and dates.
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// Cron expressions; each fires on its own.
    #[serde(default)]
    pub cron: Vec<String>,
    /// One-off instants: RFC 3339 (`2026-12-02T10:00:00+08:00`) or local
    /// `2026-12-02 10:00`.
    #[serde(default)]
    pub at: Vec<String>,
    /// Repeat every this many minutes, counted from `start` (default: local midnight).
    #[serde(default)]
    pub every_min: Option<f64>,
    /// Start of the repeats, as `at`.
    #[serde(default)]
    pub start: Option<String>,
    /// Fly again as soon as the last run ends (inside the windows).
    #[serde(default)]
    pub continuous: bool,
    /// Daily local windows a firing must fall in, `HH:MM-HH:MM` (may span midnight).
    #[serde(default)]
    pub windows: Vec<String>,
    /// Local dates on which nothing fires, `YYYY-MM-DD`.
    #[serde(default)]
    pub blackout: Vec<String>,
    #[serde(default)]
    pub missed: Missed,
    /// With `missed = "late"`: the oldest firing still run late, minutes.
    #[serde(default = "default_late")]
    pub late_within_min: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            timezone: default_tz(),
            cron: Vec::new(),
            at: Vec::new(),
            every_min: None,
            start: None,
            continuous: false,
            windows: Vec::new(),
            blackout: Vec::new(),
            missed: Missed::Skip,
            late_within_min: default_late(),
        }
    }
}

fn default_tz() -> String {
    "Asia/Shanghai".into()
}
fn default_late() -> f64 {
    30.0
}

/// A schedule ready to answer "when next".
#[derive(Clone, Debug)]
pub struct Compiled {
    pub tz: Tz,
    crons: Vec<croner::Cron>,
    at: Vec<DateTime<Utc>>,
    every: Option<(DateTime<Utc>, Duration)>,
    pub continuous: bool,
    windows: Vec<(NaiveTime, NaiveTime)>,
    blackout: Vec<NaiveDate>,
    pub missed: Missed,
    pub late_within: Duration,
}

/// An instant as `at` takes it, in `tz` when it has no offset.
fn parse_instant(s: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
        .ok_or_else(|| {
            format!("{s:?} is not an instant (2026-12-02T10:00:00+08:00 or 2026-12-02 10:00)")
        })?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{s:?} does not exist in {tz}"))
}

fn parse_window(s: &str) -> Result<(NaiveTime, NaiveTime), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not a window HH:MM-HH:MM"))?;
    let t = |x: &str| {
        NaiveTime::parse_from_str(x.trim(), "%H:%M")
            .map_err(|_| format!("{x:?} in {s:?} is not a time HH:MM"))
    };
    Ok((t(a)?, t(b)?))
}

impl Timing {
    /// Parses every field; the error names the field and the problem.
    pub fn compile(&self) -> Result<Compiled, (String, String)> {
        let tz: Tz = self.timezone.parse().map_err(|_| {
            (
                "timezone".to_string(),
                format!(
                    "{:?} is not an IANA time zone (e.g. Asia/Shanghai)",
                    self.timezone
                ),
            )
        })?;
        let mut crons = Vec::new();
        for (i, c) in self.cron.iter().enumerate() {
            let parsed = c.parse::<croner::Cron>().map_err(|e| {
                (
                    format!("cron[{i}]"),
                    format!("{c:?} is not a cron expression (minute hour day month weekday): {e}"),
                )
            })?;
            if c.split_whitespace().count() != 5 && !c.trim_start().starts_with('@') {
                return Err((
                    format!("cron[{i}]"),
                    format!("{c:?} must have five fields: minute hour day month weekday"),
                ));
            }
            crons.push(parsed);
        }
        let at = self
            .at
            .iter()
            .enumerate()
            .map(|(i, s)| parse_instant(s, tz).map_err(|e| (format!("at[{i}]"), e)))
            .collect::<Result<Vec<_>, _>>()?;
        let every = match self.every_min {
            None => None,
            Some(m) if !(m >= 1.0 && m.is_finite()) => {
                return Err((
                    "every_min".into(),
                    format!("{m} is not a number of minutes of at least 1"),
                ))
            }
            Some(m) => {
                let anchor = match &self.start {
                    Some(s) => parse_instant(s, tz).map_err(|e| ("start".to_string(), e))?,
                    None => tz
                        .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
                        .earliest()
                        .map(|t| t.with_timezone(&Utc))
                        .unwrap_or_default(),
                };
                Some((
                    anchor,
                    Duration::milliseconds((m * 60_000.0).round() as i64),
                ))
            }
        };
        let windows = self
            .windows
            .iter()
            .enumerate()
            .map(|(i, w)| parse_window(w).map_err(|e| (format!("windows[{i}]"), e)))
            .collect::<Result<Vec<_>, _>>()?;
        let blackout = self
            .blackout
            .iter()
            .enumerate()
            .map(|(i, d)| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                    (
                        format!("blackout[{i}]"),
                        format!("{d:?} is not a date YYYY-MM-DD"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !(self.late_within_min >= 0.0 && self.late_within_min.is_finite()) {
            return Err((
                "late_within_min".into(),
                format!("{} is not a number of minutes", self.late_within_min),
            ));
        }
        Ok(Compiled {
            tz,
            crons,
            at,
            every,
            continuous: self.continuous,
            windows,
            blackout,
            missed: self.missed,
            late_within: Duration::milliseconds((self.late_within_min * 60_000.0).round() as i64),
        })
    }
}

impl Compiled {
    /// Whether a firing at `t` is allowed: inside a window (if any) and not on a blackout
    /// date, both in local time.
    pub fn allowed(&self, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&self.tz);
        if self.blackout.contains(&local.date_naive()) {
            return false;
        }
        if self.windows.is_empty() {
            return true;
        }
        let now = local.time();
        self.windows.iter().any(|&(a, b)| {
            if a <= b {
                a <= now && now < b
            } else {
                now >= a || now < b
            }
        })
    }

    /// The first firing strictly after `t` (cron, one-offs and repeats; windows and
    /// blackouts applied), looking at most a year ahead. Continuous patrols fire on the
    /// end of their last run instead, see [`Compiled::next_continuous`].
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let horizon = t + Duration::days(366);
        let mut cursor = t;
        loop {
            let next = self.next_raw(cursor)?;
            if next > horizon {
                return None;
            }
            if self.allowed(next) {
                return Some(next);
            }
            cursor = next;
        }
    }

    /// Every firing in (`from`, `to`].
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = from;
        while let Some(n) = self.next_after(t) {
            if n > to {
                break;
            }
            out.push(n);
            t = n;
        }
        out
    }

    /// A continuous patrol's next firing once its last run ended at `ended`: then, or
    /// the next allowed minute.
    pub fn next_continuous(&self, ended: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.continuous {
            return None;
        }
        let mut t = ended;
        for _ in 0..(366 * 24 * 60) {
            if self.allowed(t) {
                return Some(t);
            }
            t += Duration::minutes(1);
        }
        None
    }

    fn next_raw(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz);
        let cron = self
            .crons
            .iter()
            .filter_map(|c| c.find_next_occurrence(&local, false).ok())
            .map(|x| x.with_timezone(&Utc))
            .min();
        let once = self.at.iter().copied().filter(|a| *a > t).min();
        let every = self.every.map(|(anchor, step)| {
            let step_ms = step.num_milliseconds().max(1);
            let since = (t - anchor).num_milliseconds();
            let k = if since < 0 { 0 } else { since / step_ms + 1 };
            anchor + Duration::milliseconds(k * step_ms)
        });
        [cron, once, every].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shanghai(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn cron_fires_in_local_time_with_different_times_on_different_days() {
        let t = Timing {
            cron: vec!["0 7 * * 1-5".into(), "30 9 * * 6,0".into()],
            ..Default::default()
        }
        .compile()
        .unwrap();
        // Friday 2026-12-04 and the weekend after.
        let fires = t.between(shanghai(2026, 12, 4, 0, 0), shanghai(2026, 12, 7, 23, 59));
        assert_eq!(
            fires,
            vec![
                shanghai(2026, 12, 4, 7, 0),
                shanghai(2026, 12, 5, 9, 30),
                shanghai(2026, 12, 6, 9, 30),
                shanghai(2026, 12, 7, 7, 0),
            ]
        );
        // 07:00 in Shanghai is 23:00 UTC the day before.
        assert_eq!(fires[0].format("%F %R").to_string(), "2026-12-03 23:00");
    }

    #[test]
    fn windows_and_blackouts_drop_firings() {
        let t = Timing {
            every_min: Some(180.0),
            windows: vec!["06:00-19:00".into()],
            blackout: vec!["2026-12-25".into()],
            ..Default::default()
        }
        .compile()
        .unwrap();
        let day = t.between(shanghai(2026, 12, 24, 0, 0), shanghai(2026, 12, 26, 0, 0));
        // 06, 09, 12, 15, 18 on the 24th; nothing on the 25th.
        assert_eq!(day.len(), 5, "{day:?}");
        assert_eq!(day[0], shanghai(2026, 12, 24, 6, 0));
        assert_eq!(day[4], shanghai(2026, 12, 24, 18, 0));
        let night = Timing {
            every_min: Some(60.0),
            windows: vec!["22:00-02:00".into()],
            ..Default::default()
        }
        .compile()
        .unwrap();
        let n = night.between(shanghai(2026, 12, 24, 12, 0), shanghai(2026, 12, 25, 12, 0));
        assert_eq!(n.len(), 4, "22, 23, 00, 01: {n:?}");
    }

    #[test]
    fn one_offs_in_local_time_or_with_an_offset() {
        let t = Timing {
            at: vec!["2026-12-02 10:00".into(), "2026-12-02T03:00:00Z".into()],
            ..Default::default()
        }
        .compile()
        .unwrap();
        assert_eq!(
            t.between(shanghai(2026, 12, 1, 0, 0), shanghai(2026, 12, 3, 0, 0)),
            vec![shanghai(2026, 12, 2, 10, 0), shanghai(2026, 12, 2, 11, 0)]
        );
        assert_eq!(t.next_after(shanghai(2026, 12, 2, 11, 0)), None);
    }

    #[test]
    fn bad_fields_are_named() {
        let bad = |t: Timing| t.compile().unwrap_err().0;
        let cron = |c: &str| Timing {
            cron: vec!["0 7 * * *".into(), c.into()],
            ..Default::default()
        };
        assert_eq!(bad(cron("61 7 * * *")), "cron[1]");
        assert_eq!(bad(cron("0 7 * *")), "cron[1]");
        assert_eq!(bad(cron("every morning")), "cron[1]");
        let tz = Timing {
            timezone: "Mars/Olympus".into(),
            ..Default::default()
        };
        assert_eq!(bad(tz), "timezone");
        let w = Timing {
            windows: vec!["6-19".into()],
            ..Default::default()
        };
        assert_eq!(bad(w), "windows[0]");
        let e = Timing {
            every_min: Some(0.0),
            ..Default::default()
        };
        assert_eq!(bad(e), "every_min");
    }

    #[test]
    fn continuous_fires_when_the_last_run_ends_inside_a_window() {
        let t = Timing {
            continuous: true,
            windows: vec!["06:00-19:00".into()],
            ..Default::default()
        }
        .compile()
        .unwrap();
        let end = shanghai(2026, 12, 2, 10, 17);
        assert_eq!(t.next_continuous(end), Some(end));
        assert_eq!(
            t.next_continuous(shanghai(2026, 12, 2, 19, 30)),
            Some(shanghai(2026, 12, 3, 6, 0))
        );
    }
}
