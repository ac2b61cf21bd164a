//! Patrol definitions: the template a run is made from, as a TOML file under `missions/`
//! or a JSON body of the API. What to fly (the planner's inputs, as `gridpatrol fly` takes
//! them), when (see [`super::timing`]), on which vehicles, and what must hold before a
//! launch.
//!
//! ```toml
//! name = "morning-east"
//! cells = ["WQ-01", "WQ-02"]
//! pattern = "coverage"          # coverage | perimeter | points
//! alt_m = 60.0                  # or gsd_cm = 2.0
//! vehicles = [1, 2]             # system ids allowed (empty: any)
//!
//! [schedule]
//! timezone = "Asia/Shanghai"
//! cron = ["0 7 * * 1-5", "30 9 * * 6,0"]   # weekdays 07:00, weekends 09:30
//! windows = ["06:00-19:00"]
//! blackout = ["2026-12-25"]
//! missed = "late"               # skip | late
//! late_within_min = 30
//!
//! [ready]
//! min_battery_pct = 30
//! max_wind_m_s = 10.0
//! min_sun_elevation_deg = 0.0
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::timing::Timing;

/// A patrol definition was refused; the message names the patrol and the field.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("patrol {patrol:?}: {field}: {problem}")]
pub struct DefinitionError {
    pub patrol: String,
    pub field: String,
    pub problem: String,
}

/// What to fly: the planner's inputs, with `gridpatrol fly`'s defaults.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatrolDef {
    pub name: String,
    /// Cell ids to cover (empty: all of the district).
    #[serde(default)]
    pub cells: Vec<String>,
    /// `coverage`, `perimeter` or `points`.
    #[serde(default = "default_pattern")]
    pub pattern: String,
    /// Altitude above home, metres (or `gsd_cm`).
    #[serde(default)]
    pub alt_m: Option<f64>,
    /// Target ground sample distance, cm/px.
    #[serde(default)]
    pub gsd_cm: Option<f64>,
    /// Front/side overlap, percent, as "75/65".
    #[serde(default = "default_overlap")]
    pub overlap: String,
    /// Camera preset or camera JSON file.
    #[serde(default = "default_camera")]
    pub camera: String,
    /// Cruise speed, m/s.
    #[serde(default = "default_speed")]
    pub speed_m_s: f64,
    /// Usable battery time per sortie, minutes.
    #[serde(default = "default_battery_min")]
    pub battery_min: f64,
    /// Highest altitude above home any item may have, metres.
    #[serde(default = "default_ceiling")]
    pub ceiling_m: f64,
    /// System ids allowed to fly it (empty: any vehicle of the fleet).
    #[serde(default)]
    pub vehicles: Vec<u8>,
    #[serde(default)]
    pub schedule: Timing,
    #[serde(default)]
    pub ready: ReadyConditions,
    /// False: kept, but nothing is scheduled.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// What must hold before a sortie launches; a run whose conditions fail is skipped with
/// the reason, as FlightHub 2 reports "failed to start".
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadyConditions {
    /// Battery left after the sortie's need, percent.
    #[serde(default = "default_min_battery")]
    pub min_battery_pct: f64,
    /// Highest wind, m/s: the vehicle's own estimate, or the weather source's.
    #[serde(default)]
    pub max_wind_m_s: Option<f64>,
    /// A weather source URL answering JSON `{"wind_m_s": …}` (else the vehicle's estimate).
    #[serde(default)]
    pub weather_url: Option<String>,
    /// Lowest sun elevation over the district, degrees (daylight: 0; civil dusk: -6).
    #[serde(default)]
    pub min_sun_elevation_deg: Option<f64>,
    /// A 3D GPS fix (PX4's own pre-arm check needs one anyway).
    #[serde(default = "yes")]
    pub require_gps_fix: bool,
    /// No failsafe active on the vehicle.
    #[serde(default = "yes")]
    pub no_failsafe: bool,
    /// Each sortie's fence fits the vehicle (its capacity, home inside).
    #[serde(default = "yes")]
    pub fence_fits: bool,
}

impl Default for ReadyConditions {
    fn default() -> Self {
        Self {
            min_battery_pct: default_min_battery(),
            max_wind_m_s: None,
            weather_url: None,
            min_sun_elevation_deg: None,
            require_gps_fix: true,
            no_failsafe: true,
            fence_fits: true,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_pattern() -> String {
    "coverage".into()
}
fn default_overlap() -> String {
    "75/65".into()
}
fn default_camera() -> String {
    "1inch-20mp".into()
}
fn default_speed() -> f64 {
    8.0
}
fn default_battery_min() -> f64 {
    20.0
}
fn default_ceiling() -> f64 {
    120.0
}
fn default_min_battery() -> f64 {
    30.0
}

impl PatrolDef {
    /// Parses a TOML definition; `origin` (the file name) names it in errors until its
    /// own name is known.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, DefinitionError> {
        let def: PatrolDef = toml::from_str(text).map_err(|e| DefinitionError {
            patrol: origin.to_string(),
            field: e
                .span()
                .map(|s| format!("at byte {}", s.start))
                .unwrap_or_else(|| "file".into()),
            problem: e.message().to_string(),
        })?;
        def.validate(None)?;
        Ok(def)
    }

    /// The planner's options for this patrol.
    pub fn plan_options(&self) -> Result<crate::plan::PlanOptions, DefinitionError> {
        let o = crate::plan::PlanOptions::from_words(
            &self.pattern,
            &self.camera,
            &self.overlap,
            self.alt_m,
            self.gsd_cm,
        )
        .map_err(|problem| DefinitionError {
            patrol: self.name.clone(),
            field: "camera, overlap or pattern".into(),
            problem,
        })?;
        Ok(crate::plan::PlanOptions {
            speed_mps: self.speed_m_s,
            battery_min: self.battery_min,
            ceiling_m: self.ceiling_m,
            ..o
        })
    }

    /// Reads one definition file.
    pub fn load(path: &Path) -> Result<Self, DefinitionError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| DefinitionError {
            patrol: origin.clone(),
            field: "file".into(),
            problem: e.to_string(),
        })?;
        Self::from_toml(&text, &origin)
    }

    /// Every `*.toml` in `dir`, in name order; the first bad one fails the lot, so a
    /// typo never silently drops a patrol.
    pub fn load_dir(dir: &Path) -> Result<Vec<Self>, DefinitionError> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| DefinitionError {
                patrol: dir.display().to_string(),
                field: "directory".into(),
                problem: e.to_string(),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Self::load(p)).collect()
    }

    /// Checks the fields the types cannot; with `known_cells`, that every cell exists.
    pub fn validate(&self, known_cells: Option<&[String]>) -> Result<(), DefinitionError> {
        let bad = |field: &str, problem: String| DefinitionError {
            patrol: self.name.clone(),
            field: field.to_string(),
            problem,
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(bad(
                "name",
                "must be 1 to 64 letters, digits, '-' or '_'".into(),
            ));
        }
        if !["coverage", "perimeter", "points"].contains(&self.pattern.as_str()) {
            return Err(bad(
                "pattern",
                format!("{:?} is not coverage, perimeter or points", self.pattern),
            ));
        }
        match (self.alt_m, self.gsd_cm) {
            (Some(_), Some(_)) => {
                return Err(bad("alt_m", "give alt_m or gsd_cm, not both".into()))
            }
            (Some(a), None) if !(a > 0.0 && a <= self.ceiling_m) => {
                return Err(bad(
                    "alt_m",
                    format!(
                        "{a} m is not above 0 and at most the ceiling {} m",
                        self.ceiling_m
                    ),
                ))
            }
            (None, Some(g)) if !(g > 0.0 && g.is_finite()) => {
                return Err(bad("gsd_cm", format!("{g} is not a positive number")))
            }
            _ => {}
        }
        if !(self.ceiling_m > 0.0 && self.ceiling_m <= 500.0) {
            return Err(bad(
                "ceiling_m",
                format!("{} m is not in (0, 500]", self.ceiling_m),
            ));
        }
        if !(self.speed_m_s > 0.0 && self.speed_m_s <= 25.0) {
            return Err(bad(
                "speed_m_s",
                format!("{} m/s is not in (0, 25]", self.speed_m_s),
            ));
        }
        if !(self.battery_min > 0.0 && self.battery_min.is_finite()) {
            return Err(bad(
                "battery_min",
                format!("{} is not a positive number of minutes", self.battery_min),
            ));
        }
        let r = &self.ready;
        if !(0.0..=100.0).contains(&r.min_battery_pct) {
            return Err(bad(
                "ready.min_battery_pct",
                format!("{} is not a percentage", r.min_battery_pct),
            ));
        }
        if let Some(w) = r.max_wind_m_s {
            if !(w > 0.0 && w.is_finite()) {
                return Err(bad(
                    "ready.max_wind_m_s",
                    format!("{w} is not a positive speed"),
                ));
            }
        }
        if let Some(e) = r.min_sun_elevation_deg {
            if !(-90.0..=90.0).contains(&e) {
                return Err(bad(
                    "ready.min_sun_elevation_deg",
                    format!("{e} is not an elevation in degrees"),
                ));
            }
        }
        if let Some(url) = &r.weather_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad(
                    "ready.weather_url",
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
        }
        self.schedule
            .compile()
            .map_err(|(field, problem)| bad(&format!("schedule.{field}"), problem))?;
        if let Some(known) = known_cells {
            if let Some(c) = self.cells.iter().find(|c| !known.contains(c)) {
                return Err(bad("cells", format!("{c:?} is not a cell of the district")));
            }
        }
        Ok(())
    }
}
