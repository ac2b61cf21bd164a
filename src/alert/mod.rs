//! Alerts: something happened at a point (a camera saw smoke, a 110/12345 call reported a
//! crowd), and the nearest ready drone is sent to look. An alert is checked against the
//! district, merged with one for the same place moments before, and flown as a run of its
//! own (`alert-<id>`): there, an orbit with the camera on the point, and home. Its photos
//! go through the normal pipeline; the events found near the point are linked to it, or
//! it closes "not confirmed" with its photos. Its times (received, dispatched, armed,
//! climbed to orbit height, over the point) give the time to scene and its parts.

pub mod dispatch;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::args;
use crate::detect::Category;
use crate::events::{EventStore, StoreError};
use crate::grid::{Datum, GridMap};
use crate::store::{DbError, Row};

/// How urgent an alert is: `urgent` and above may pre-empt a routine patrol.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Routine,
    #[default]
    Urgent,
    Critical,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Routine => "routine",
            Priority::Urgent => "urgent",
            Priority::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "routine" => Ok(Priority::Routine),
            "urgent" => Ok(Priority::Urgent),
            "critical" => Ok(Priority::Critical),
            _ => Err(format!(
                "priority {s:?}: expected routine, urgent or critical"
            )),
        }
    }
}

/// Where an alert came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct AlertSource {
    /// `camera` (a fixed camera's id), `hotline` (a 110/12345 ticket) or `platform` (a
    /// webhook from the grid platform).
    pub kind: String,
    /// The camera id, ticket number or platform reference.
    pub id: String,
}

const SOURCE_KINDS: [&str; 3] = ["camera", "hotline", "platform"];

/// An alert as it is raised (the body of `POST /api/v1/alerts`).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRequest {
    /// Degrees, in `datum`.
    pub lat: f64,
    pub lon: f64,
    /// `wgs84` (the default) or `gcj02` (Chinese web maps).
    #[serde(default)]
    pub datum: Option<String>,
    /// One of the city's categories (fire_smoke, crowd, …).
    pub category: String,
    #[serde(default)]
    pub priority: Priority,
    pub source: AlertSource,
}

/// An alert refused, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("{0}")]
    Invalid(String),
    #[error("no alert {0}")]
    NoAlert(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DbError> for AlertError {
    fn from(e: DbError) -> Self {
        AlertError::Store(StoreError::Db(e))
    }
}

/// A checked alert: in WGS-84, inside a cell, outside every no-fly zone.
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    pub lat: f64,
    pub lon: f64,
    pub cell_id: String,
    pub category: Category,
}

impl AlertRequest {
    /// Checks the alert against the district: a real point, in one of its cells, not in a
    /// no-fly zone; a known category and source.
    pub fn locate(&self, map: &GridMap) -> Result<Located, AlertError> {
        let bad = |m: String| Err(AlertError::Invalid(m));
        if !(self.lat.is_finite() && self.lon.is_finite())
            || self.lat.abs() > 90.0
            || self.lon.abs() > 180.0
        {
            return bad(format!(
                "the point ({}, {}) is not a latitude and longitude in degrees",
                self.lat, self.lon
            ));
        }
        let datum: Datum = match self.datum.as_deref().unwrap_or("wgs84") {
            "wgs84" | "WGS84" => Datum::Wgs84,
            "gcj02" | "GCJ02" => Datum::Gcj02,
            d => return bad(format!("datum {d:?}: expected wgs84 or gcj02")),
        };
        let category: Category = self
            .category
            .parse()
            .map_err(|e: String| AlertError::Invalid(format!("category: {e}")))?;
        if !SOURCE_KINDS.contains(&self.source.kind.as_str()) {
            return bad(format!(
                "source kind {:?}: expected one of {}",
                self.source.kind,
                SOURCE_KINDS.join(", ")
            ));
        }
        if self.source.id.trim().is_empty() || self.source.id.len() > 200 {
            return bad(
                "source id: give the camera id, ticket or reference (1 to 200 characters)".into(),
            );
        }
        let (lat, lon) = datum.to_wgs84(self.lat, self.lon);
        let Some(cell) = map.cell_at(lat, lon) else {
            let near = map
                .cells
                .iter()
                .filter_map(|c| {
                    use geo::{Centroid, Distance, Haversine};
                    let p = c.polygon.centroid()?;
                    Some((
                        c.id.clone(),
                        Haversine.distance(p, geo::Point::new(lon, lat)),
                    ))
                })
                .min_by(|a, b| a.1.total_cmp(&b.1));
            return bad(match near {
                Some((id, d)) => format!(
                    "the point ({:.6}, {:.6}) WGS-84 is outside the district (the nearest cell, {id}, has its centre {:.0} m away); was it given in {}?",
                    lat,
                    lon,
                    d,
                    if datum == Datum::Wgs84 { "GCJ-02 (say datum: gcj02)" } else { "WGS-84 (say datum: wgs84)" }
                ),
                None => "the district has no cells".into(),
            });
        };
        if let Some(z) = map.in_no_fly(lat, lon) {
            return bad(format!(
                "the point is inside no-fly zone {} ({}): no drone may go there",
                z.id, z.name
            ));
        }
        Ok(Located {
            lat,
            lon,
            cell_id: cell.id.clone(),
            category,
        })
    }
}

/// Where an alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Waiting for a vehicle.
    Dispatching,
    /// A vehicle is on its way.
    EnRoute,
    /// The vehicle is over the point, orbiting.
    OnScene,
    /// Photos showed an event near the point; linked.
    Confirmed,
    /// The photos showed nothing near the point.
    NotConfirmed,
    /// No vehicle could go, or the flight failed; the reason says why.
    Refused,
    /// Another alert for the same place moments before: its flight is this one's.
    Merged,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Dispatching => "dispatching",
            AlertState::EnRoute => "en_route",
            AlertState::OnScene => "on_scene",
            AlertState::Confirmed => "confirmed",
            AlertState::NotConfirmed => "not_confirmed",
            AlertState::Refused => "refused",
            AlertState::Merged => "merged",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "en_route" => AlertState::EnRoute,
            "on_scene" => AlertState::OnScene,
            "confirmed" => AlertState::Confirmed,
            "not_confirmed" => AlertState::NotConfirmed,
            "refused" => AlertState::Refused,
            "merged" => AlertState::Merged,
            _ => AlertState::Dispatching,
        }
    }

    /// Still to be flown or being flown: a new alert nearby merges into it.
    pub fn open(self) -> bool {
        matches!(
            self,
            AlertState::Dispatching | AlertState::EnRoute | AlertState::OnScene
        )
    }
}

/// An alert on record.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Alert {
    pub id: i64,
    /// WGS-84 degrees.
    pub lat: f64,
    pub lon: f64,
    pub cell_id: String,
    pub category: String,
    pub priority: Priority,
    pub source: AlertSource,
    pub reported_by: String,
    pub state: AlertState,
    pub reason: String,
    /// The run that flies it (a merged alert: the run of the one it merged into).
    pub run_id: Option<i64>,
    pub merged_into: Option<i64>,
    pub sysid: Option<u8>,
    /// µs since the epoch: received, a vehicle chosen, armed, climbed to orbit height
    /// (less 5 m), over the point, concluded.
    pub received_us: i64,
    pub dispatched_us: Option<i64>,
    pub armed_us: Option<i64>,
    pub climbed_us: Option<i64>,
    pub over_us: Option<i64>,
    pub closed_us: Option<i64>,
    /// Events found near the point by its flight.
    pub events: Vec<i64>,
}

impl Alert {
    /// Received → over the point, seconds.
    pub fn time_to_scene_s(&self) -> Option<f64> {
        self.over_us.map(|o| (o - self.received_us) as f64 / 1e6)
    }
}

/// Time to scene and its parts, seconds (for one alert, or medians).
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SceneTimes {
    /// Received → a vehicle chosen and leased.
    pub decision_s: Option<f64>,
    /// Chosen → armed: planning, upload and read-back, preflight.
    pub upload_s: Option<f64>,
    /// Armed → at orbit height (less 5 m): spin-up and climb.
    pub takeoff_s: Option<f64>,
    /// At orbit height → over the point.
    pub transit_s: Option<f64>,
    /// Received → over the point.
    pub total_s: Option<f64>,
}

impl Alert {
    pub fn scene_times(&self) -> SceneTimes {
        let d = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(a), Some(b)) if b >= a => Some((b - a) as f64 / 1e6),
            _ => None,
        };
        SceneTimes {
            decision_s: d(Some(self.received_us), self.dispatched_us),
            upload_s: d(self.dispatched_us, self.armed_us),
            takeoff_s: d(self.armed_us, self.climbed_us),
            transit_s: d(self.climbed_us, self.over_us),
            total_s: self.time_to_scene_s(),
        }
    }
}

/// The alerts' figures for `GET /stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AlertStats {
    pub total: usize,
    pub confirmed: usize,
    pub not_confirmed: usize,
    pub refused: usize,
    pub merged: usize,
    pub open: usize,
    /// Median received → over the point, seconds, of the alerts that got there.
    pub time_to_scene_median_s: Option<f64>,
    /// 90th percentile of the same.
    pub time_to_scene_p90_s: Option<f64>,
}

/// Alerts with the same category within this distance and time of an open one merge
/// into it (m, µs: 150 m, 10 min).
pub const MERGE_RADIUS_M: f64 = 150.0;
pub const MERGE_WINDOW_US: i64 = 600_000_000;

/// The alerts table, in the event store's database.
#[derive(Clone)]
pub struct AlertBook {
    store: Arc<EventStore>,
}

const COLUMNS: &str = "id, lat, lon, cell_id, category, priority, source_kind, source_id, reported_by, state, reason, run_id, merged_into, sysid, received_us, dispatched_us, armed_us, climbed_us, over_us, closed_us";

fn row(r: &Row) -> crate::store::Result<Alert> {
    Ok(Alert {
        id: r.get(0)?,
        lat: r.get(1)?,
        lon: r.get(2)?,
        cell_id: r.get(3)?,
        category: r.get(4)?,
        priority: r.get::<String>(5)?.parse().unwrap_or_default(),
        source: AlertSource {
            kind: r.get(6)?,
            id: r.get(7)?,
        },
        reported_by: r.get(8)?,
        state: AlertState::parse(&r.get::<String>(9)?),
        reason: r.get(10)?,
        run_id: r.get(11)?,
        merged_into: r.get(12)?,
        sysid: r.get(13)?,
        received_us: r.get(14)?,
        dispatched_us: r.get(15)?,
        armed_us: r.get(16)?,
        climbed_us: r.get(17)?,
        over_us: r.get(18)?,
        closed_us: r.get(19)?,
        events: Vec::new(),
    })
}

/// Which of an alert's times to set.
#[derive(Clone, Copy, Debug)]
pub enum Moment {
    Dispatched,
    Armed,
    Climbed,
    Over,
}

impl AlertBook {
    pub fn new(store: Arc<EventStore>) -> Self {
        Self { store }
    }

    /// Records a checked alert. One for the same category within [`MERGE_RADIUS_M`] of
    /// an open alert received in the last [`MERGE_WINDOW_US`] is merged into it (the
    /// second of the pair is returned, in state `merged`); otherwise it is new, waiting
    /// for its run (`dispatching`).
    pub fn raise(
        &self,
        req: &AlertRequest,
        at: &Located,
        who: &str,
        now: i64,
    ) -> Result<Alert, AlertError> {
        let id = self.store.transaction(|tx| {
            let open: Vec<Alert> = tx.query_map(
                &format!(
                    "SELECT {COLUMNS} FROM alerts WHERE category = ?1 AND received_us >= ?2
                     AND state IN ('dispatching', 'en_route', 'on_scene') ORDER BY id"
                ),
                args![at.category.as_str(), now - MERGE_WINDOW_US],
                row,
            )?;
            let into = open.iter().find(|a| {
                crate::geotag::distance_m(a.lat, a.lon, at.lat, at.lon) <= MERGE_RADIUS_M
            });
            let (state, reason, run, merged) = match into {
                Some(a) => (
                    AlertState::Merged,
                    format!("the same place as alert {} moments before: its flight is this one's", a.id),
                    a.run_id,
                    Some(a.id),
                ),
                None => (AlertState::Dispatching, "waiting for a vehicle".to_string(), None, None),
            };
            tx.query_value::<i64>(
                "INSERT INTO alerts (lat, lon, cell_id, category, priority, source_kind, source_id, reported_by, state, reason, run_id, merged_into, received_us)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) RETURNING id",
                args![
                    at.lat,
                    at.lon,
                    at.cell_id,
                    at.category.as_str(),
                    req.priority.as_str(),
                    req.source.kind,
                    req.source.id,
                    who,
                    state.as_str(),
                    reason,
                    run,
                    merged,
                    now
                ],
            )
        })?;
        self.get(id)
    }

    pub fn get(&self, id: i64) -> Result<Alert, AlertError> {
        let a = self
            .select("WHERE id = ?1", args![id])?
            .pop()
            .ok_or(AlertError::NoAlert(id))?;
        self.with_events(a)
    }

    /// The alerts `clause` picks, without their linked events.
    fn select(&self, clause: &str, p: &[crate::store::Value]) -> Result<Vec<Alert>, AlertError> {
        Ok(self
            .store
            .read(|tx| tx.query_map(&format!("SELECT {COLUMNS} FROM alerts {clause}"), p, row))?)
    }

    /// `a` with the events its flight linked (a merged alert: those of the one it merged
    /// into).
    fn with_events(&self, mut a: Alert) -> Result<Alert, AlertError> {
        let id = a.merged_into.unwrap_or(a.id);
        a.events = self.store.read(|tx| {
            tx.query_map(
                "SELECT event_id FROM alert_events WHERE alert_id = ?1 ORDER BY event_id",
                args![id],
                |r| r.get(0),
            )
        })?;
        Ok(a)
    }

    /// The newest `limit` alerts, newest first.
    pub fn list(&self, limit: usize) -> Result<Vec<Alert>, AlertError> {
        self.select("ORDER BY id DESC LIMIT ?1", args![limit as i64])?
            .into_iter()
            .map(|a| self.with_events(a))
            .collect()
    }

    /// Moves alert `id` (and those merged into it) to `state`, with the reason.
    pub fn set_state(
        &self,
        id: i64,
        state: AlertState,
        reason: &str,
        now: i64,
    ) -> Result<(), AlertError> {
        let closed = (!state.open()).then_some(now);
        self.store.transaction(|tx| {
            tx.execute(
                "UPDATE alerts SET state = ?2, reason = ?3, closed_us = coalesce(?4, closed_us) WHERE id = ?1",
                args![id, state.as_str(), reason, closed],
            )?;
            // A merged alert keeps its state, and shares the closing time.
            match closed {
                Some(t) => tx.execute(
                    "UPDATE alerts SET closed_us = ?2 WHERE merged_into = ?1",
                    args![id, t],
                ),
                None => Ok(0),
            }
        })?;
        Ok(())
    }

    /// Gives alert `id` (and those merged into it) its run.
    pub fn set_run(&self, id: i64, run: i64) -> Result<(), AlertError> {
        self.store.transaction(|tx| {
            tx.execute(
                "UPDATE alerts SET run_id = ?2 WHERE id = ?1 OR merged_into = ?1",
                args![id, run],
            )
        })?;
        Ok(())
    }

    /// Records when something happened to alert `id`'s flight (the first time only).
    pub fn mark(&self, id: i64, m: Moment, sysid: Option<u8>, now: i64) -> Result<(), AlertError> {
        let col = match m {
            Moment::Dispatched => "dispatched_us",
            Moment::Armed => "armed_us",
            Moment::Climbed => "climbed_us",
            Moment::Over => "over_us",
        };
        self.store.transaction(|tx| {
            tx.execute(
                &format!(
                    "UPDATE alerts SET {col} = coalesce({col}, ?2), sysid = coalesce(?3, sysid) WHERE id = ?1"
                ),
                args![id, now, sysid],
            )
        })?;
        Ok(())
    }

    /// Links alert `id` to the events its run `run_key` found within `radius_m` of the
    /// point; confirmed when there is one, else not confirmed. The outcome.
    pub fn conclude(
        &self,
        id: i64,
        run_key: &str,
        radius_m: f64,
        now: i64,
    ) -> Result<Alert, AlertError> {
        let a = self.get(id)?;
        let near: Vec<i64> = self
            .store
            .read(|tx| {
                tx.query_map(
                    "SELECT DISTINCT e.id, e.lat, e.lon FROM events e
                     JOIN detections d ON d.event_id = e.id
                     JOIN captures c ON c.id = d.capture_id
                     WHERE c.run = ?1 ORDER BY e.id",
                    args![run_key],
                    |r| Ok((r.get::<i64>(0)?, r.get::<f64>(1)?, r.get::<f64>(2)?)),
                )
            })?
            .into_iter()
            .filter(|(_, lat, lon)| crate::geotag::distance_m(*lat, *lon, a.lat, a.lon) <= radius_m)
            .map(|(id, _, _)| id)
            .collect();
        let photos: i64 = self.store.read(|tx| {
            tx.query_value(
                "SELECT count(*) FROM captures WHERE run = ?1",
                args![run_key],
            )
        })?;
        self.store.transaction(|tx| {
            for e in &near {
                tx.execute(
                    "INSERT INTO alert_events (alert_id, event_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    args![id, e],
                )?;
            }
            Ok::<_, DbError>(())
        })?;
        let (state, reason) = if near.is_empty() {
            (
                AlertState::NotConfirmed,
                format!("not confirmed: {photos} photos showed nothing within {radius_m:.0} m of the point"),
            )
        } else {
            (
                AlertState::Confirmed,
                format!(
                    "confirmed: event{} {} within {radius_m:.0} m of the point ({photos} photos)",
                    if near.len() == 1 { "" } else { "s" },
                    near.iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        };
        self.set_state(id, state, &reason, now)?;
        self.get(id)
    }

    /// The figures for `GET /stats`.
    pub fn stats(&self) -> Result<AlertStats, AlertError> {
        let all = self.select("", args![])?;
        let mut s = AlertStats {
            total: all.len(),
            ..Default::default()
        };
        let mut times: Vec<f64> = Vec::new();
        for a in &all {
            match a.state {
                AlertState::Confirmed => s.confirmed += 1,
                AlertState::NotConfirmed => s.not_confirmed += 1,
                AlertState::Refused => s.refused += 1,
                AlertState::Merged => s.merged += 1,
                _ => s.open += 1,
            }
            if a.merged_into.is_none() {
                times.extend(a.time_to_scene_s());
            }
        }
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            (!times.is_empty()).then(|| times[((times.len() - 1) as f64 * p).round() as usize])
        };
        s.time_to_scene_median_s = pct(0.5);
        s.time_to_scene_p90_s = pct(0.9);
        Ok(s)
    }
}

/// The alerts tables (migration 12 of the event store).
pub const MIGRATION: &str = "CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        lat REAL NOT NULL, lon REAL NOT NULL,
        cell_id TEXT NOT NULL,
        category TEXT NOT NULL,
        priority TEXT NOT NULL,
        source_kind TEXT NOT NULL, source_id TEXT NOT NULL,
        reported_by TEXT NOT NULL,
        state TEXT NOT NULL, reason TEXT NOT NULL,
        run_id INTEGER REFERENCES runs (id),
        merged_into INTEGER REFERENCES alerts (id),
        sysid INTEGER,
        received_us INTEGER NOT NULL,
        dispatched_us INTEGER, armed_us INTEGER, climbed_us INTEGER, over_us INTEGER,
        closed_us INTEGER
    );
    CREATE INDEX alerts_open ON alerts (category, state, received_us);
    CREATE TABLE alert_events (
        alert_id INTEGER NOT NULL REFERENCES alerts (id),
        event_id INTEGER NOT NULL REFERENCES events (id),
        PRIMARY KEY (alert_id, event_id)
    );";
