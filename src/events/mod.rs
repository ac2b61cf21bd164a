//! Grid events: each issue found, placed in its grid cell, merged with earlier sightings,
//! and worked through the city's closed loop, stored durably in SQLite with an audit
//! trail and an outbox for the grid-management platform.
//!
//! The loop (as the Wenqu platform runs it): reported → signed-for (签收) → dispatched
//! (派遣) → in progress (处置) → transferred (流转) → resolved (反馈) → evaluated (评价)
//! → closed (结案).

pub mod store;
pub mod webhook;

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::detect::Category;

pub use store::{EventStore, FiledDetection, StoreError};

/// Where an event is in the closed loop.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    Reported,
    SignedFor,
    Dispatched,
    InProgress,
    Transferred,
    Resolved,
    Evaluated,
    Closed,
}

impl EventState {
    pub const ALL: [EventState; 8] = [
        Self::Reported,
        Self::SignedFor,
        Self::Dispatched,
        Self::InProgress,
        Self::Transferred,
        Self::Resolved,
        Self::Evaluated,
        Self::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reported => "reported",
            Self::SignedFor => "signed_for",
            Self::Dispatched => "dispatched",
            Self::InProgress => "in_progress",
            Self::Transferred => "transferred",
            Self::Resolved => "resolved",
            Self::Evaluated => "evaluated",
            Self::Closed => "closed",
        }
    }

    /// Still waiting for someone to fix it (the deadline runs).
    pub fn is_open(self) -> bool {
        !matches!(self, Self::Resolved | Self::Evaluated | Self::Closed)
    }
}

impl std::fmt::Display for EventState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown event state {s:?}"))
    }
}

/// What a person does to an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// 签收: the grid worker accepts the event.
    Sign,
    /// 派遣: sent to a department and handler, due by a deadline (default per category).
    Dispatch {
        department: String,
        handler: String,
        deadline_hours: Option<f64>,
    },
    /// 处置: the handler starts work.
    Start,
    /// 流转: handed to another department.
    Transfer { department: String, handler: String },
    /// 反馈: fixed, with feedback and photos.
    Resolve {
        feedback: String,
        photos: Vec<String>,
    },
    /// 评价: the reporter or supervisor rates the fix, 1–5.
    Evaluate { rating: u8 },
    /// 结案: closed.
    Close,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sign => "sign",
            Self::Dispatch { .. } => "dispatch",
            Self::Start => "start",
            Self::Transfer { .. } => "transfer",
            Self::Resolve { .. } => "resolve",
            Self::Evaluate { .. } => "evaluate",
            Self::Close => "close",
        }
    }

    /// The state this action leads to from `from`, or None when it is not allowed there.
    pub fn next(&self, from: EventState) -> Option<EventState> {
        use EventState::*;
        Some(match (self, from) {
            (Self::Sign, Reported) => SignedFor,
            (Self::Dispatch { .. }, SignedFor | Transferred) => Dispatched,
            (Self::Start, Dispatched | Transferred) => InProgress,
            (Self::Transfer { .. }, Dispatched | InProgress) => Transferred,
            (Self::Resolve { .. }, InProgress) => Resolved,
            (Self::Evaluate { .. }, Resolved) => Evaluated,
            (Self::Close, Evaluated) => Closed,
            _ => return None,
        })
    }

    /// The states this action may be taken from, for error messages.
    pub fn allowed_from(&self) -> Vec<EventState> {
        EventState::ALL
            .into_iter()
            .filter(|s| self.next(*s).is_some())
            .collect()
    }
}

/// Hours to fix an event of a category once dispatched: fire at once, crowds and vendors
/// within the shift, the rest the next day; posters within three days.
pub fn default_deadline_hours(c: Category) -> f64 {
    match c {
        Category::FireSmoke => 1.0,
        Category::Crowd => 2.0,
        Category::MobileVendor => 4.0,
        Category::OutOfStoreBusiness
        | Category::PiledObjects
        | Category::BikeParking
        | Category::Garbage => 24.0,
        Category::IllegalPoster => 72.0,
    }
}

/// One grid event as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GridEvent {
    pub id: i64,
    pub category: Category,
    pub state: EventState,
    /// Degrees, WGS-84.
    pub lat: f64,
    pub lon: f64,
    /// Metres (about 95 %).
    pub uncertainty_m: f64,
    /// The grid cell it lies in; None: outside every cell (kept and flagged).
    pub cell_id: Option<String>,
    /// drone, or who reported it otherwise.
    pub source: String,
    /// Photos that showed it.
    pub sightings: i64,
    /// The best photo's image hash.
    pub cover_image: Option<String>,
    pub department: Option<String>,
    pub handler: Option<String>,
    /// Microseconds since the Unix epoch.
    pub created_us: i64,
    pub updated_us: i64,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    pub deadline_us: Option<i64>,
    pub closed_us: Option<i64>,
    /// A later patrol no longer saw it after it was resolved.
    pub confirmed: bool,
    pub feedback: Option<String>,
    pub rating: Option<i64>,
    /// Found to be the same object as this (older) event, which now holds its photos.
    pub merged_into: Option<i64>,
}

impl GridEvent {
    pub fn overdue(&self, now_us: i64) -> bool {
        self.state.is_open() && self.deadline_us.is_some_and(|d| now_us > d)
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Events as a GeoJSON FeatureCollection of points, in WGS-84 or GCJ-02.
pub fn export_geojson(
    events: &[GridEvent],
    datum: crate::grid::Datum,
    now: i64,
) -> serde_json::Value {
    let features: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            let (lat, lon) = datum.from_wgs84(e.lat, e.lon);
            serde_json::json!({
                "type": "Feature",
                "geometry": { "type": "Point", "coordinates": [lon, lat] },
                "properties": {
                    "id": e.id,
                    "category": e.category.as_str(),
                    "category_zh": e.category.chinese(),
                    "state": e.state.as_str(),
                    "cell": e.cell_id,
                    "uncertainty_m": e.uncertainty_m,
                    "source": e.source,
                    "sightings": e.sightings,
                    "department": e.department,
                    "handler": e.handler,
                    "overdue": e.overdue(now),
                    "confirmed": e.confirmed,
                    "created_us": e.created_us,
                }
            })
        })
        .collect();
    serde_json::json!({
        "type": "FeatureCollection",
        "datum": format!("{datum:?}"),
        "features": features,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_goes_round_and_nothing_skips_a_step() {
        let d = Action::Dispatch {
            department: "城管".into(),
            handler: "王".into(),
            deadline_hours: None,
        };
        let path = [
            Action::Sign,
            d.clone(),
            Action::Start,
            Action::Transfer {
                department: "环卫".into(),
                handler: "李".into(),
            },
            Action::Start,
            Action::Resolve {
                feedback: "cleared".into(),
                photos: vec![],
            },
            Action::Evaluate { rating: 5 },
            Action::Close,
        ];
        let mut s = EventState::Reported;
        for a in &path {
            s = a.next(s).unwrap_or_else(|| panic!("{} from {s}", a.name()));
        }
        assert_eq!(s, EventState::Closed);
        assert_eq!(Action::Close.next(EventState::Reported), None);
        assert_eq!(
            Action::Resolve {
                feedback: String::new(),
                photos: vec![]
            }
            .next(EventState::Reported),
            None
        );
        assert_eq!(d.next(EventState::Reported), None, "dispatch before sign");
        assert_eq!(Action::Sign.next(EventState::Closed), None);
        assert_eq!(
            Action::Start.allowed_from(),
            vec![EventState::Dispatched, EventState::Transferred]
        );
    }
}
