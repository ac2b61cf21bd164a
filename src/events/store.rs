//! The event store: SQLite in WAL mode, one transaction per change, schema migrations by
//! `PRAGMA user_version`. Captures are recorded the moment they are announced and
//! processed later, so a crash loses nothing that was acknowledged: an unprocessed
//! capture is processed after restart, a processed one never twice.

use crate::args;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{default_deadline_hours, Action, EventState, GridEvent};
use crate::capture::Capture;
use crate::detect::{Category, Detection};
use crate::geotag::{distance_m, GroundFix};
use crate::store::{Db, DbError, DbSpec, Engine, Row, Tx};

/// Schema versions, applied in order, in SQLite's SQL (PostgreSQL's is derived from it:
/// [`crate::store::dialect`]); the database records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: captures, events, their evidence, the audit trail and the outbox.
    "CREATE TABLE captures (
        id INTEGER PRIMARY KEY,
        run TEXT NOT NULL,
        sysid INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        time_utc_us INTEGER NOT NULL,
        lat REAL NOT NULL, lon REAL NOT NULL, alt_msl REAL NOT NULL, alt_rel REAL NOT NULL,
        q TEXT NOT NULL,
        file_url TEXT NOT NULL,
        image_sha TEXT,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_try_us INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        received_us INTEGER NOT NULL,
        UNIQUE (run, sysid, idx)
    );
    CREATE INDEX captures_state ON captures (state, next_try_us);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        category TEXT NOT NULL,
        state TEXT NOT NULL,
        lat REAL NOT NULL, lon REAL NOT NULL, uncertainty_m REAL NOT NULL,
        cell_id TEXT,
        source TEXT NOT NULL,
        sightings INTEGER NOT NULL DEFAULT 0,
        cover_detection INTEGER, cover_score REAL NOT NULL DEFAULT 0,
        department TEXT, handler TEXT,
        created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL,
        first_seen_us INTEGER NOT NULL, last_seen_us INTEGER NOT NULL,
        deadline_us INTEGER, closed_us INTEGER,
        confirmed INTEGER NOT NULL DEFAULT 0,
        feedback TEXT, rating INTEGER
    );
    CREATE INDEX events_place ON events (category, lat, lon);
    CREATE TABLE detections (
        id INTEGER PRIMARY KEY,
        capture_id INTEGER NOT NULL REFERENCES captures (id),
        event_id INTEGER NOT NULL REFERENCES events (id),
        category TEXT NOT NULL,
        confidence REAL NOT NULL,
        bbox TEXT NOT NULL,
        lat REAL NOT NULL, lon REAL NOT NULL, uncertainty_m REAL NOT NULL,
        at_edge INTEGER NOT NULL
    );
    CREATE INDEX detections_event ON detections (event_id);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL REFERENCES events (id),
        from_state TEXT, to_state TEXT NOT NULL,
        actor TEXT NOT NULL, note TEXT NOT NULL, at_us INTEGER NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_try_us INTEGER NOT NULL DEFAULT 0,
        delivered_us INTEGER,
        last_error TEXT,
        created_us INTEGER NOT NULL
    );",
    // 2: which sorties of a run each vehicle has finished, for re-attaching after a restart.
    "CREATE TABLE run_sorties (
        run TEXT NOT NULL,
        sysid INTEGER NOT NULL,
        sortie INTEGER NOT NULL,
        finished_us INTEGER NOT NULL,
        PRIMARY KEY (run, sysid, sortie)
    );",
    // 3: when each capture was filed, for the capture-to-event latency.
    "ALTER TABLE captures ADD COLUMN processed_us INTEGER;",
    // 4: an event found to be the same object as an older one is folded into it.
    "ALTER TABLE events ADD COLUMN merged_into INTEGER;",
    // 5: each run's sorties as flown (missions and fences, JSON), so that a restarted
    // `fly` carries on the run a vehicle is flying instead of planning afresh.
    "CREATE TABLE run_plans (
        run TEXT PRIMARY KEY,
        jobs TEXT NOT NULL,
        created_us INTEGER NOT NULL
    );",
    // 6: the scheduler's (src/schedule): patrol definitions made through the API, runs
    // (one per firing: the UNIQUE key is what keeps a restart from creating one twice),
    // their state changes, how far each schedule has been read, and vehicle leases.
    "CREATE TABLE patrols (
        name TEXT PRIMARY KEY,
        definition TEXT NOT NULL,
        updated_us INTEGER NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        patrol TEXT NOT NULL,
        planned_us INTEGER NOT NULL,
        trigger TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT NOT NULL,
        sysid INTEGER,
        created_us INTEGER NOT NULL,
        updated_us INTEGER NOT NULL,
        UNIQUE (patrol, planned_us)
    );
    CREATE INDEX runs_state ON runs (state, planned_us);
    CREATE TABLE run_changes (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        at_us INTEGER NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX run_changes_run ON run_changes (run_id);
    CREATE TABLE schedule_cursor (
        patrol TEXT PRIMARY KEY,
        until_us INTEGER NOT NULL
    );
    CREATE TABLE leases (
        sysid INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        holder TEXT NOT NULL,
        expires_us INTEGER NOT NULL
    );",
    // 7: API tokens (src/api/auth.rs), kept as SHA-256 hashes only.
    "CREATE TABLE tokens (
        id INTEGER PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        holder TEXT NOT NULL,
        role TEXT NOT NULL,
        cells TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        revoked_us INTEGER
    );",
    // 8: where each sortie cut short stopped (its last mission item reached, in the
    // sortie as planned), so that it resumes there.
    "CREATE TABLE run_breakpoints (
        run TEXT NOT NULL,
        sortie INTEGER NOT NULL,
        reached INTEGER,
        at_us INTEGER NOT NULL,
        PRIMARY KEY (run, sortie)
    );",
    // 9: a run an operator paused is held, by whom, until resumed: the scheduler leaves it.
    "ALTER TABLE runs ADD COLUMN held_by TEXT;",
    // 10: each run's trajectory: where its vehicles flew, about once a second.
    "CREATE TABLE run_track (
        run TEXT NOT NULL,
        sysid INTEGER NOT NULL,
        t_us INTEGER NOT NULL,
        lat REAL NOT NULL, lon REAL NOT NULL, alt_rel REAL NOT NULL,
        battery INTEGER,
        PRIMARY KEY (run, sysid, t_us)
    );",
    // 11: who made, replaced or deleted each patrol through the API, and what it said.
    "CREATE TABLE patrol_changes (
        name TEXT NOT NULL,
        at_us INTEGER NOT NULL,
        action TEXT NOT NULL,
        holder TEXT NOT NULL,
        definition TEXT
    );
    CREATE INDEX patrol_changes_name ON patrol_changes (name);",
    // 12: alerts, and the events their flights found (src/alert).
    crate::alert::MIGRATION,
    // 13: several controllers on one database: a capture claimed by one controller's
    // worker until a time, and duties held by one controller at a time (the outbox).
    "ALTER TABLE captures ADD COLUMN claimed_by TEXT;
    ALTER TABLE captures ADD COLUMN claimed_until_us INTEGER;
    CREATE TABLE holds (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_us INTEGER NOT NULL
    );",
    // 14: the camera's image count when a run first took a vehicle: its photos start
    // there, so a controller taking the run over knows its first ones too.
    "CREATE TABLE run_cameras (
        run TEXT NOT NULL,
        sysid INTEGER NOT NULL,
        first_index INTEGER NOT NULL,
        PRIMARY KEY (run, sysid)
    );",
];

/// One point of a run's trajectory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrackPoint {
    pub sysid: u8,
    /// µs since the Unix epoch.
    pub t_us: i64,
    /// WGS-84 degrees.
    pub lat: f64,
    pub lon: f64,
    /// Metres above home.
    pub alt_rel: f64,
    /// Percent.
    pub battery: Option<i8>,
}

/// A photo of a run, with the events it showed.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RunPhoto {
    pub capture_id: i64,
    pub sysid: u8,
    /// The camera's image index.
    pub index: i32,
    /// µs since the Unix epoch.
    pub time_utc_us: i64,
    /// Where it was taken: WGS-84 degrees, metres above home.
    pub lat: f64,
    pub lon: f64,
    pub alt_rel: f64,
    /// Its bytes' SHA-256, once fetched (GET /api/v1/images/{capture_id}).
    pub image_sha: Option<String>,
    /// pending, processed or failed.
    pub state: String,
    pub events: Vec<i64>,
    /// When the ground station heard of it, µs since the Unix epoch (wall clock).
    pub received_us: i64,
    /// Camera orientation (w, x, y, z), NED, as CAMERA_IMAGE_CAPTURED gave it.
    pub q: [f64; 4],
    /// The ground it covers: its four corners (lat, lon), WGS-84 degrees, where they
    /// meet the ground (filled by the API from the camera model).
    pub footprint: Option<Vec<[f64; 2]>>,
}

/// Places an event (?1): the mean of its sightings weighted by 1/σ², whole boxes only
/// when there are any; its uncertainty is the best single sighting's (GPS bias is shared
/// between photos close in time, so averaging does not shrink it much).
const PLACE_EVENT: &str = "UPDATE events SET
   lat = (SELECT sum(lat / (u * u)) / sum(1 / (u * u)) FROM (SELECT lat, uncertainty_m AS u FROM detections WHERE event_id = ?1 AND at_edge = (SELECT min(at_edge) FROM detections WHERE event_id = ?1)) AS s),
   lon = (SELECT sum(lon / (u * u)) / sum(1 / (u * u)) FROM (SELECT lon, uncertainty_m AS u FROM detections WHERE event_id = ?1 AND at_edge = (SELECT min(at_edge) FROM detections WHERE event_id = ?1)) AS s),
   uncertainty_m = (SELECT min(uncertainty_m) FROM detections WHERE event_id = ?1)
 WHERE id = ?1";

/// When a capture that failed is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// 2 s doubling to 10 min: the camera or the network may be gone for a while.
    Backoff,
    /// The same, but at most every [`RETRY_SOON_MAX_US`]: a local fault (a full disk)
    /// the operator is fixing.
    Soon,
    /// Failed for good: kept, not filed.
    Never,
}

/// The longest wait between retries of a capture that failed locally, µs (5 s).
pub const RETRY_SOON_MAX_US: i64 = 5_000_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("no event {0}")]
    NoEvent(i64),
    #[error("event {id} is {state}: cannot {action} it (allowed from {allowed})")]
    IllegalTransition {
        id: i64,
        state: EventState,
        action: &'static str,
        allowed: String,
    },
    #[error("{0}")]
    Invalid(String),
}

type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// The same write may succeed later ([`DbError::is_transient`]): the database is
    /// held by another connection, unreachable, or out of disk until someone frees space.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Db(e) if e.is_transient())
    }
}

/// A detection placed on the ground, ready to file.
#[derive(Clone, Debug)]
pub struct FiledDetection {
    pub detection: Detection,
    pub fix: GroundFix,
    /// The box touches the image border: the object may reach beyond it, so its centre
    /// may be off by up to the category's typical size.
    pub at_edge: bool,
    /// Half the ground size of the box, metres.
    pub extent_m: f64,
}

/// What filing one capture did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FileOutcome {
    /// Events created.
    pub new_events: Vec<i64>,
    /// Existing events seen again.
    pub merged: Vec<i64>,
    /// Resolved events in view and no longer there.
    pub confirmed: Vec<i64>,
    /// The capture had been filed before (after a restart): nothing done.
    pub already: bool,
    /// Detections filed from this capture.
    pub detections: usize,
    /// Events found to be the same object as an older one and folded into it.
    pub folded: Vec<i64>,
}

/// How duplicates are merged.
#[derive(Clone, Copy, Debug)]
pub struct MergePolicy {
    /// Smallest merge distance, metres.
    pub min_gate_m: f64,
    /// The gate is this many times the two 2σ uncertainties combined: 1.5 makes it 3σ of
    /// the distance between two sightings, which holds 99 % of same-object pairs in 2-D.
    pub gate_factor: f64,
    /// Sightings further apart in time than this are separate events, microseconds.
    pub window_us: i64,
}

impl MergePolicy {
    /// How far apart (metres) two sightings with these 2σ radii may be and still be one
    /// object; `cut`: one of them is a box cut by the image border, off by up to `slack`.
    pub fn gate(&self, u1: f64, u2: f64, cut: bool, slack: f64) -> f64 {
        (self.gate_factor * u1.hypot(u2)).max(self.min_gate_m) + if cut { slack } else { 0.0 }
    }
}

impl Default for MergePolicy {
    fn default() -> Self {
        Self {
            min_gate_m: 3.0,
            gate_factor: 1.5,
            window_us: 7 * 24 * 3600 * 1_000_000,
        }
    }
}

/// A capture waiting to be fetched or filed.
#[derive(Clone, Debug)]
pub struct PendingCapture {
    pub id: i64,
    pub run: String,
    pub capture: Capture,
    pub image_sha: Option<String>,
    pub attempts: i64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub from: Option<String>,
    pub to: String,
    pub actor: String,
    pub note: String,
    pub at_us: i64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Evidence {
    pub detection_id: i64,
    pub capture_id: i64,
    pub sysid: i64,
    pub index: i64,
    pub image_sha: Option<String>,
    pub confidence: f64,
    pub bbox: [f32; 4],
    pub lat: f64,
    pub lon: f64,
    pub uncertainty_m: f64,
    pub at_edge: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct OutboxItem {
    pub id: i64,
    pub event_id: i64,
    pub kind: String,
    pub payload: String,
    pub idempotency_key: String,
    pub attempts: i64,
}

/// Figures as the city reports them.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Stats {
    pub total: i64,
    pub by_category: Vec<(String, i64)>,
    pub by_cell: Vec<(String, i64)>,
    pub by_state: Vec<(String, i64)>,
    pub closed: i64,
    /// closed / total, 0..1.
    pub closure_rate: f64,
    /// Median hours from report to close, over closed events.
    pub median_hours_to_close: Option<f64>,
    pub overdue: i64,
    /// Events found by drones / all events, 0..1.
    pub drone_share: f64,
    pub outside_cells: i64,
    pub confirmed_fixed: i64,
    pub captures_pending: i64,
    pub captures_failed: i64,
    pub outbox_pending: i64,
}

pub struct EventStore {
    db: Db,
}

const EVENT_COLUMNS: &str = "id, category, state, lat, lon, uncertainty_m, cell_id, source, sightings,
    (SELECT c.image_sha FROM detections d JOIN captures c ON c.id = d.capture_id WHERE d.id = events.cover_detection),
    department, handler, created_us, updated_us, first_seen_us, last_seen_us, deadline_us, closed_us,
    confirmed, feedback, rating, merged_into";

fn event_from_row(r: &Row) -> crate::store::Result<GridEvent> {
    let cat: String = r.get(1)?;
    let state: String = r.get(2)?;
    let bad = |i, s: String| DbError::Decode {
        column: i,
        want: "a known name",
        got: s,
    };
    Ok(GridEvent {
        id: r.get(0)?,
        category: cat.parse().map_err(|e| bad(1, e))?,
        state: state.parse().map_err(|e| bad(2, e))?,
        lat: r.get(3)?,
        lon: r.get(4)?,
        uncertainty_m: r.get(5)?,
        cell_id: r.get(6)?,
        source: r.get(7)?,
        sightings: r.get(8)?,
        cover_image: r.get(9)?,
        department: r.get(10)?,
        handler: r.get(11)?,
        created_us: r.get(12)?,
        updated_us: r.get(13)?,
        first_seen_us: r.get(14)?,
        last_seen_us: r.get(15)?,
        deadline_us: r.get(16)?,
        closed_us: r.get(17)?,
        confirmed: r.get(18)?,
        feedback: r.get(19)?,
        rating: r.get(20)?,
        merged_into: r.get(21)?,
    })
}

fn get_event(tx: &Tx, id: i64) -> Result<GridEvent> {
    tx.query_opt(
        &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"),
        args![id],
        event_from_row,
    )?
    .ok_or(StoreError::NoEvent(id))
}

/// Records a transition and queues it for the grid platform, in the caller's transaction.
fn audit_and_queue(
    tx: &Tx,
    id: i64,
    from: Option<EventState>,
    kind: &str,
    actor: &str,
    note: &str,
    now: i64,
) -> Result<()> {
    let ev = get_event(tx, id)?;
    let audit_id: i64 = tx.query_value(
        "INSERT INTO audit (event_id, from_state, to_state, actor, note, at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        args![id, from.map(|s| s.as_str()), ev.state.as_str(), actor, note, now],
    )?;
    let payload = serde_json::json!({ "kind": kind, "event": ev, "actor": actor, "note": note });
    tx.execute(
        "INSERT INTO outbox (event_id, kind, payload, idempotency_key, created_us) VALUES (?1, ?2, ?3, ?4, ?5)",
        args![id, kind, payload.to_string(), format!("gridpatrol-event-{id}-{audit_id}"), now],
    )?;
    Ok(())
}

/// An open event of a category near a point, as the merge rule needs it.
struct Nearby {
    id: i64,
    lat: f64,
    lon: f64,
    /// Metres (2σ).
    uncertainty_m: f64,
    /// Every sighting so far is a box cut by the image border.
    edge_only: bool,
}

/// Open (not closed, not folded) events of `category` within 30 m of (lat, lon), last seen
/// at or after `since_us`, other than `except`.
fn open_events_near(
    tx: &Tx,
    category: &str,
    lat: f64,
    lon: f64,
    since_us: i64,
    except: i64,
) -> Result<Vec<Nearby>> {
    let reach = 30.0 / 111_000.0;
    let lon_reach = reach / lat.to_radians().cos().max(0.1);
    let near = tx.query_map(
        "SELECT id, lat, lon, uncertainty_m,
           (SELECT min(at_edge) FROM detections WHERE event_id = events.id) FROM events
         WHERE category = ?1 AND state != 'closed' AND merged_into IS NULL AND last_seen_us >= ?2
         AND id != ?3 AND lat BETWEEN ?4 AND ?5 AND lon BETWEEN ?6 AND ?7",
        args![
            category,
            since_us,
            except,
            lat - reach,
            lat + reach,
            lon - lon_reach,
            lon + lon_reach
        ],
        |r| {
            Ok(Nearby {
                id: r.get(0)?,
                lat: r.get(1)?,
                lon: r.get(2)?,
                uncertainty_m: r.get(3)?,
                edge_only: r.get::<Option<bool>>(4)?.unwrap_or(false),
            })
        },
    )?;
    Ok(near)
}

/// After an event's position moved, it may have come within the merge gate of another
/// open event of its category: the same object seen first from two places (two vehicles'
/// GPS errors, a box cut by the border). The newer is folded into the older, evidence and
/// all, while nobody has started working on it; it stays in the database, marked, and
/// the platform is told.
fn fold_duplicate(
    tx: &Tx,
    event_id: i64,
    policy: MergePolicy,
    now: i64,
) -> Result<Option<(i64, i64)>> {
    let (cat, lat, lon, u): (String, f64, f64, f64) = tx.query_row(
        "SELECT category, lat, lon, uncertainty_m FROM events WHERE id = ?1",
        args![event_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let slack = cat
        .parse::<Category>()
        .map(|c| c.typical_max_size_m())
        .unwrap_or(0.0);
    let mine_cut = tx
        .query_value::<Option<bool>>(
            "SELECT min(at_edge) FROM detections WHERE event_id = ?1",
            args![event_id],
        )?
        .unwrap_or(false);
    let state_of = |id: i64| -> Result<String> {
        Ok(tx.query_value("SELECT state FROM events WHERE id = ?1", args![id])?)
    };
    for o in open_events_near(tx, &cat, lat, lon, i64::MIN, event_id)? {
        let cut = mine_cut || o.edge_only;
        if distance_m(lat, lon, o.lat, o.lon) > policy.gate(u, o.uncertainty_m, cut, slack) {
            continue;
        }
        let other = o.id;
        let (kept, folded) = (other.min(event_id), other.max(event_id));
        if state_of(folded)? != "reported" {
            continue; // somebody is working on it: leave both for a person to judge
        }
        tx.execute(
            "UPDATE detections SET event_id = ?1 WHERE event_id = ?2",
            args![kept, folded],
        )?;
        tx.execute(
            "UPDATE events SET
               sightings = (SELECT count(*) FROM detections WHERE event_id = ?1),
               first_seen_us = least(first_seen_us, (SELECT first_seen_us FROM events WHERE id = ?2)),
               last_seen_us = greatest(last_seen_us, (SELECT last_seen_us FROM events WHERE id = ?2)),
               cover_detection = CASE WHEN (SELECT cover_score FROM events WHERE id = ?2) > cover_score
                 THEN (SELECT cover_detection FROM events WHERE id = ?2) ELSE cover_detection END,
               cover_score = greatest(cover_score, (SELECT cover_score FROM events WHERE id = ?2)),
               updated_us = ?3
             WHERE id = ?1",
            args![kept, folded, now],
        )?;
        tx.execute(PLACE_EVENT, args![kept])?;
        tx.execute(
            "UPDATE events SET merged_into = ?2, sightings = 0, updated_us = ?3 WHERE id = ?1",
            args![folded, kept, now],
        )?;
        audit_and_queue(
            tx,
            folded,
            Some(EventState::Reported),
            "merged",
            "gridpatrol",
            &format!("the same object as event {kept}: its photos moved there"),
            now,
        )?;
        return Ok(Some((kept, folded)));
    }
    Ok(None)
}

const PENDING_COLUMNS: &str =
    "id, run, sysid, idx, time_utc_us, lat, lon, alt_msl, alt_rel, q, file_url, image_sha, attempts";

fn pending_from_row(r: &Row) -> crate::store::Result<PendingCapture> {
    let q: String = r.get(9)?;
    Ok(PendingCapture {
        id: r.get(0)?,
        run: r.get(1)?,
        capture: Capture {
            sysid: r.get(2)?,
            index: r.get(3)?,
            time_utc_us: r.get::<i64>(4)? as u64,
            lat: r.get(5)?,
            lon: r.get(6)?,
            alt_msl: r.get(7)?,
            alt_rel: r.get(8)?,
            q: serde_json::from_str(&q).unwrap_or([f64::NAN; 4]),
            file_url: r.get(10)?,
        },
        image_sha: r.get(11)?,
        attempts: r.get(12)?,
    })
}

/// Holds (`holds`): a named duty one controller does at a time, such as draining the
/// outbox, held until `expires_us` and renewed by its holder.
const HOLD: &str = "INSERT INTO holds (name, holder, expires_us) VALUES (?1, ?2, ?3)
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_us = excluded.expires_us
     WHERE holds.holder = excluded.holder OR holds.expires_us <= ?4";

impl EventStore {
    /// Opens (creating and migrating) the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::connect(&DbSpec::Sqlite(path.to_path_buf()))
    }

    /// Opens (migrating) the database `spec` names: SQLite or PostgreSQL.
    pub fn connect(spec: &DbSpec) -> Result<Self> {
        Ok(Self {
            db: Db::open(spec, MIGRATIONS)?,
        })
    }

    pub fn engine(&self) -> Engine {
        self.db.engine()
    }

    /// Runs `f` in one writing transaction, for the other modules that keep their tables
    /// here (the scheduler's runs and leases): committed when `f` returns Ok, rolled back
    /// otherwise.
    pub fn transaction<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Tx) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.db.transaction(f)
    }

    /// Runs `f` in a transaction that only reads.
    pub fn read<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Tx) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.db.read(f)
    }

    /// Runs one writing statement in a transaction of its own.
    fn write(&self, sql: &str, args: &[crate::store::Value]) -> Result<u64> {
        Ok(self.db.transaction(|tx| tx.execute(sql, args))?)
    }

    /// Records an announced capture; false when it was already recorded (a duplicate).
    pub fn record_capture(&self, run: &str, c: &Capture, now: i64) -> Result<bool> {
        let n = self.write(
            "INSERT INTO captures (run, sysid, idx, time_utc_us, lat, lon, alt_msl, alt_rel, q, file_url, received_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
            args![
                run,
                c.sysid,
                c.index,
                c.time_utc_us as i64,
                c.lat,
                c.lon,
                c.alt_msl,
                c.alt_rel,
                serde_json::to_string(&c.q).unwrap_or_default(),
                c.file_url,
                now
            ],
        )?;
        Ok(n == 1)
    }

    /// Image indices recorded for a vehicle in a run.
    pub fn capture_indices(&self, run: &str, sysid: u8) -> Result<Vec<i32>> {
        Ok(self.db.read(|tx| {
            tx.query_map(
                "SELECT idx FROM captures WHERE run = ?1 AND sysid = ?2",
                args![run, sysid],
                |r| r.get(0),
            )
        })?)
    }

    /// Keeps the camera's image count when `run` first took vehicle `sysid` (the index of
    /// the run's first photo on it); a later call keeps the first.
    pub fn set_first_image(&self, run: &str, sysid: u8, first_index: i32) -> Result<()> {
        self.write(
            "INSERT INTO run_cameras (run, sysid, first_index) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            args![run, sysid, first_index],
        )?;
        Ok(())
    }

    /// The index of `run`'s first photo on vehicle `sysid`, if it was kept (-1: the run
    /// took the vehicle, but its camera did not say its count).
    pub fn first_image(&self, run: &str, sysid: u8) -> Result<Option<i32>> {
        Ok(self.db.read(|tx| {
            tx.query_opt(
                "SELECT first_index FROM run_cameras WHERE run = ?1 AND sysid = ?2",
                args![run, sysid],
                |r| r.get(0),
            )
        })?)
    }

    /// Captures not yet filed whose next attempt is due, oldest first.
    pub fn due_captures(&self, now: i64, limit: usize) -> Result<Vec<PendingCapture>> {
        Ok(self.db.read(|tx| {
            tx.query_map(
                &format!(
                    "SELECT {PENDING_COLUMNS} FROM captures WHERE state = 'pending' AND next_try_us <= ?1
                     ORDER BY id LIMIT ?2"
                ),
                args![now, limit as i64],
                pending_from_row,
            )
        })?)
    }

    /// Claims for `holder`, until `until_us`, up to `limit` due captures whose id is
    /// `part` modulo `parts` (one share for each of a controller's workers), oldest first.
    /// Those another holder has claimed are skipped until its claim lapses, so two
    /// controllers never fetch and detect the same photo; a holder's own claims (left by
    /// a crash) are taken again at once.
    pub fn claim_captures(
        &self,
        holder: &str,
        now: i64,
        until_us: i64,
        limit: usize,
        part: u32,
        parts: u32,
    ) -> Result<Vec<PendingCapture>> {
        let mut rows = self.db.transaction(|tx| {
            tx.query_map(
                &format!(
                    "UPDATE captures SET claimed_by = ?5, claimed_until_us = ?6 WHERE id IN (
                       SELECT id FROM captures WHERE state = 'pending' AND next_try_us <= ?1 AND id % ?3 = ?4
                       AND (claimed_until_us IS NULL OR claimed_until_us <= ?1 OR claimed_by = ?5)
                       ORDER BY id LIMIT ?2)
                     RETURNING {PENDING_COLUMNS}"
                ),
                args![now, limit as i64, parts.max(1), part, holder, until_us],
                pending_from_row,
            )
        })?;
        rows.sort_by_key(|p| p.id);
        Ok(rows)
    }

    /// Captures of run `run` not yet filed (still to fetch, or retrying).
    pub fn pending_captures(&self, run: &str) -> Result<i64> {
        Ok(self.db.read(|tx| {
            tx.query_value(
                "SELECT count(*) FROM captures WHERE run = ?1 AND state = 'pending'",
                args![run],
            )
        })?)
    }

    /// The image is stored: remember its hash so a retry does not fetch it again.
    pub fn capture_fetched(&self, id: i64, sha: &str) -> Result<()> {
        self.write(
            "UPDATE captures SET image_sha = ?2 WHERE id = ?1",
            args![id, sha],
        )?;
        Ok(())
    }

    /// A fetch or processing attempt failed: when to try again, or never (a corrupt
    /// image: kept, not filed).
    pub fn capture_failed(&self, id: i64, error: &str, retry: Retry, now: i64) -> Result<()> {
        self.db.transaction(|tx| {
            let attempts: i64 =
                tx.query_value("SELECT attempts FROM captures WHERE id = ?1", args![id])?;
            let backoff_us = (2_000_000i64 << attempts.min(9)).min(600_000_000);
            let (delay_us, give_up) = match retry {
                Retry::Backoff => (backoff_us, false),
                Retry::Soon => (backoff_us.min(RETRY_SOON_MAX_US), false),
                Retry::Never => (0, true),
            };
            tx.execute(
                "UPDATE captures SET attempts = attempts + 1, last_error = ?2, next_try_us = ?3,
                 state = CASE WHEN ?4 = 1 THEN 'failed' ELSE state END,
                 claimed_by = NULL, claimed_until_us = NULL WHERE id = ?1",
                args![id, error, now + delay_us, give_up],
            )?;
            Ok(())
        })
    }

    /// Files the detections of one capture in one transaction: each merges into an open
    /// event of its category nearby or opens a new one; resolved events in `view` (centre
    /// lat, lon and radius m) that nothing matched are confirmed fixed; the capture is
    /// marked processed. Filing a capture twice does nothing the second time.
    pub fn file_capture(
        &self,
        capture_id: i64,
        found: &[FiledDetection],
        view: Option<(f64, f64, f64)>,
        cell_of: &dyn Fn(f64, f64, f64) -> Option<String>,
        policy: MergePolicy,
        now: i64,
    ) -> Result<FileOutcome> {
        self.db.transaction(|tx| {
        let (state, t_us): (String, i64) = tx.query_row(
            "SELECT state, time_utc_us FROM captures WHERE id = ?1",
            args![capture_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut out = FileOutcome::default();
        if state == "processed" {
            out.already = true;
            return Ok(out);
        }
        let seen_at = if t_us > 0 { t_us } else { now };
        out.detections = found.len();
        for f in found {
            if !(f.fix.lat.is_finite() && f.fix.lon.is_finite()) {
                return Err(StoreError::Invalid("a detection with no position".into()));
            }
            let cat = f.detection.category.as_str();
            let near = open_events_near(
                tx,
                cat,
                f.fix.lat,
                f.fix.lon,
                seen_at - policy.window_us,
                0,
            )?;
            // The nearest event within the gate: the two uncertainties combined, plus
            // the slack of a box cut off by the image border.
            let best = near
                .iter()
                .map(|o| {
                    let d = distance_m(o.lat, o.lon, f.fix.lat, f.fix.lon);
                    // A box cut by the border may sit off the object's centre by up to the
                    // object's size: on either side, the new sighting or the event so far.
                    let cut = f.at_edge || o.edge_only;
                    let slack = f.extent_m.max(f.detection.category.typical_max_size_m());
                    let gate = policy.gate(o.uncertainty_m, f.fix.uncertainty_m, cut, slack);
                    (o.id, d, gate)
                })
                .filter(|(_, d, gate)| d <= gate)
                .min_by(|a, b| a.1.total_cmp(&b.1));
            let score = f64::from(f.detection.confidence) * if f.at_edge { 0.3 } else { 1.0 }
                - f.fix.range_m / 1000.0;
            let bbox = serde_json::to_string(&f.detection.bbox).unwrap_or_default();
            let event_id = match best {
                Some((id, _, _)) => {
                    out.merged.push(id);
                    id
                }
                None => {
                    let id: i64 = tx.query_value(
                        // The cell is set below, once this photo's sightings have placed it.
                        "INSERT INTO events (category, state, lat, lon, uncertainty_m, source, created_us, updated_us, first_seen_us, last_seen_us)
                         VALUES (?1, 'reported', ?2, ?3, ?4, 'drone', ?5, ?5, ?6, ?6) RETURNING id",
                        args![cat, f.fix.lat, f.fix.lon, f.fix.uncertainty_m, now, seen_at],
                    )?;
                    out.new_events.push(id);
                    id
                }
            };
            let det_id: i64 = tx.query_value(
                "INSERT INTO detections (capture_id, event_id, category, confidence, bbox, lat, lon, uncertainty_m, at_edge)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
                args![capture_id, event_id, cat, f.detection.confidence, bbox, f.fix.lat, f.fix.lon, f.fix.uncertainty_m, f.at_edge],
            )?;
            tx.execute(
                "UPDATE events SET sightings = sightings + 1, last_seen_us = greatest(last_seen_us, ?2),
                 cover_detection = CASE WHEN cover_detection IS NULL OR ?3 > cover_score THEN ?4 ELSE cover_detection END,
                 cover_score = greatest(cover_score, ?3) WHERE id = ?1",
                args![event_id, seen_at, score, det_id],
            )?;
            // Position: the mean of the sightings weighted by 1/σ², whole boxes only when
            // there are any. Uncertainty: the best single sighting's (GPS bias is shared
            // between photos close in time, so averaging does not shrink it much).
            tx.execute(PLACE_EVENT, args![event_id])?;
            if !out.new_events.contains(&event_id) {
                if let Some((kept, folded)) = fold_duplicate(tx, event_id, policy, now)? {
                    out.merged.retain(|&m| m != folded);
                    out.merged.push(kept);
                    out.folded.push(folded);
                }
            }
        }
        for &id in &out.new_events {
            let (lat, lon, u): (f64, f64, f64) = tx.query_row(
                "SELECT lat, lon, uncertainty_m FROM events WHERE id = ?1",
                args![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let cell = cell_of(lat, lon, u);
            tx.execute(
                "UPDATE events SET cell_id = ?2 WHERE id = ?1",
                args![id, cell],
            )?;
            let note = match cell {
                Some(c) => format!("found by drone in cell {c}"),
                None => "found by drone outside every grid cell".to_string(),
            };
            audit_and_queue(tx, id, None, "created", "gridpatrol", &note, now)?;
        }
        if let Some((clat, clon, radius)) = view {
            let done: Vec<(i64, f64, f64)> = tx.query_map(
                "SELECT id, lat, lon FROM events WHERE state IN ('resolved', 'evaluated', 'closed') AND merged_into IS NULL
                 AND confirmed = 0 AND last_seen_us < ?1",
                args![seen_at],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            for (id, lat, lon) in done {
                if distance_m(clat, clon, lat, lon) <= radius && !out.merged.contains(&id) {
                    tx.execute(
                        "UPDATE events SET confirmed = 1, updated_us = ?2 WHERE id = ?1",
                        args![id, now],
                    )?;
                    let state = get_event(tx, id)?.state;
                    audit_and_queue(
                        tx,
                        id,
                        Some(state),
                        "confirmed",
                        "gridpatrol",
                        "a later patrol no longer sees it: fix confirmed",
                        now,
                    )?;
                    out.confirmed.push(id);
                }
            }
        }
        tx.execute(
            "UPDATE captures SET state = 'processed', last_error = NULL, processed_us = ?2 WHERE id = ?1",
            args![capture_id, now],
        )?;
        out.merged.sort_unstable();
        out.merged.dedup();
        Ok(out)
        })
    }

    /// Takes an action on an event: refused with a clear error when the loop does not
    /// allow it from the event's state; audited and queued for the platform when it does.
    pub fn apply(
        &self,
        id: i64,
        action: &Action,
        actor: &str,
        note: &str,
        now: i64,
    ) -> Result<GridEvent> {
        self.db.transaction(|tx| {
        let ev = get_event(tx, id)?;
        if let Some(into) = ev.merged_into {
            return Err(StoreError::Invalid(format!(
                "event {id} was the same object as event {into} and was merged into it: act on {into}"
            )));
        }
        let Some(next) = action.next(ev.state) else {
            return Err(StoreError::IllegalTransition {
                id,
                state: ev.state,
                action: action.name(),
                allowed: action
                    .allowed_from()
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
            });
        };
        if actor.trim().is_empty() {
            return Err(StoreError::Invalid("who is acting? (--by NAME)".into()));
        }
        tx.execute(
            "UPDATE events SET state = ?2, updated_us = ?3 WHERE id = ?1",
            args![id, next.as_str(), now],
        )?;
        match action {
            Action::Dispatch {
                department,
                handler,
                deadline_hours,
            } => {
                let h = deadline_hours.unwrap_or_else(|| default_deadline_hours(ev.category));
                if h.is_nan() || h <= 0.0 {
                    return Err(StoreError::Invalid(format!(
                        "deadline {h} h must be positive"
                    )));
                }
                tx.execute(
                    "UPDATE events SET department = ?2, handler = ?3, deadline_us = ?4 WHERE id = ?1",
                    args![id, department, handler, now + (h * 3.6e9) as i64],
                )?;
            }
            Action::Transfer {
                department,
                handler,
            } => {
                tx.execute(
                    "UPDATE events SET department = ?2, handler = ?3 WHERE id = ?1",
                    args![id, department, handler],
                )?;
            }
            Action::Resolve { feedback, photos } => {
                let text = if photos.is_empty() {
                    feedback.clone()
                } else {
                    format!("{feedback} [photos: {}]", photos.join(", "))
                };
                tx.execute(
                    "UPDATE events SET feedback = ?2 WHERE id = ?1",
                    args![id, text],
                )?;
            }
            Action::Evaluate { rating } => {
                if !(1..=5).contains(rating) {
                    return Err(StoreError::Invalid(format!(
                        "rating {rating} must be 1 to 5"
                    )));
                }
                tx.execute(
                    "UPDATE events SET rating = ?2 WHERE id = ?1",
                    args![id, rating],
                )?;
            }
            Action::Close => {
                tx.execute(
                    "UPDATE events SET closed_us = ?2 WHERE id = ?1",
                    args![id, now],
                )?;
            }
            Action::Sign | Action::Start => {}
        }
        audit_and_queue(tx, id, Some(ev.state), action.name(), actor, note, now)?;
        get_event(tx, id)
        })
    }

    /// Files an event reported by a person (a grid worker on foot, a citizen's call).
    pub fn report_manual(
        &self,
        category: Category,
        lat: f64,
        lon: f64,
        cell_id: Option<String>,
        source: &str,
        now: i64,
    ) -> Result<GridEvent> {
        if !(lat.is_finite() && lon.is_finite()) || lat.abs() > 90.0 || lon.abs() > 180.0 {
            return Err(StoreError::Invalid(format!(
                "position {lat},{lon} is not a WGS-84 latitude,longitude"
            )));
        }
        self.db.transaction(|tx| {
            let id: i64 = tx.query_value(
                "INSERT INTO events (category, state, lat, lon, uncertainty_m, cell_id, source, created_us, updated_us, first_seen_us, last_seen_us)
                 VALUES (?1, 'reported', ?2, ?3, 10.0, ?4, ?5, ?6, ?6, ?6, ?6) RETURNING id",
                args![category.as_str(), lat, lon, cell_id, source, now],
            )?;
            audit_and_queue(tx, id, None, "created", source, "reported by hand", now)?;
            get_event(tx, id)
        })
    }

    pub fn get(&self, id: i64) -> Result<GridEvent> {
        self.db.read(|tx| get_event(tx, id))
    }

    /// Events, newest first, optionally of one state, category or cell.
    pub fn list(
        &self,
        state: Option<EventState>,
        category: Option<Category>,
        cell: Option<&str>,
    ) -> Result<Vec<GridEvent>> {
        Ok(self.db.read(|tx| {
            tx.query_map(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE merged_into IS NULL AND (state = ?1 OR ?1 IS NULL)
                     AND (category = ?2 OR ?2 IS NULL) AND (cell_id = ?3 OR ?3 IS NULL) ORDER BY id"
                ),
                args![state.map(|s| s.as_str()), category.map(|c| c.as_str()), cell],
                event_from_row,
            )
        })?)
    }

    pub fn audit(&self, id: i64) -> Result<Vec<AuditEntry>> {
        Ok(self.db.read(|tx| {
            tx.query_map(
                "SELECT from_state, to_state, actor, note, at_us FROM audit WHERE event_id = ?1 ORDER BY id",
                args![id],
                |r| {
                    Ok(AuditEntry {
                        from: r.get(0)?,
                        to: r.get(1)?,
                        actor: r.get(2)?,
                        note: r.get(3)?,
                        at_us: r.get(4)?,
                    })
                },
            )
        })?)
    }

    /// Every photo that showed the event.
    pub fn evidence(&self, id: i64) -> Result<Vec<Evidence>> {
        Ok(self.db.read(|tx| {
            tx.query_map(
                "SELECT d.id, d.capture_id, c.sysid, c.idx, c.image_sha, d.confidence, d.bbox, d.lat, d.lon, d.uncertainty_m, d.at_edge
                 FROM detections d JOIN captures c ON c.id = d.capture_id WHERE d.event_id = ?1 ORDER BY d.id",
                args![id],
                |r| {
                    let bbox: String = r.get(6)?;
                    Ok(Evidence {
                        detection_id: r.get(0)?,
                        capture_id: r.get(1)?,
                        sysid: r.get(2)?,
                        index: r.get(3)?,
                        image_sha: r.get(4)?,
                        confidence: r.get(5)?,
                        bbox: serde_json::from_str(&bbox).unwrap_or([0.0; 4]),
                        lat: r.get(7)?,
                        lon: r.get(8)?,
                        uncertainty_m: r.get(9)?,
                        at_edge: r.get(10)?,
                    })
                },
            )
        })?)
    }

    pub fn stats(&self, now: i64) -> Result<Stats> {
        let events = self.list(None, None, None)?;
        let (captures_pending, captures_failed, outbox_pending) = self.db.read(|tx| {
            let count = |sql: &str| tx.query_value::<i64>(sql, args![]);
            Ok::<_, DbError>((
                count("SELECT count(*) FROM captures WHERE state = 'pending'")?,
                count("SELECT count(*) FROM captures WHERE state = 'failed'")?,
                count("SELECT count(*) FROM outbox WHERE delivered_us IS NULL")?,
            ))
        })?;
        let mut s = Stats {
            total: events.len() as i64,
            captures_pending,
            captures_failed,
            outbox_pending,
            ..Stats::default()
        };
        let tally = |key: &dyn Fn(&GridEvent) -> String| {
            let mut m = std::collections::BTreeMap::<String, i64>::new();
            for e in &events {
                *m.entry(key(e)).or_default() += 1;
            }
            m.into_iter().collect::<Vec<_>>()
        };
        s.by_category = tally(&|e| e.category.as_str().to_string());
        s.by_cell = tally(&|e| e.cell_id.clone().unwrap_or_else(|| "(outside)".into()));
        s.by_state = tally(&|e| e.state.as_str().to_string());
        s.closed = events
            .iter()
            .filter(|e| e.state == EventState::Closed)
            .count() as i64;
        s.overdue = events.iter().filter(|e| e.overdue(now)).count() as i64;
        s.outside_cells = events.iter().filter(|e| e.cell_id.is_none()).count() as i64;
        s.confirmed_fixed = events.iter().filter(|e| e.confirmed).count() as i64;
        if s.total > 0 {
            s.closure_rate = s.closed as f64 / s.total as f64;
            s.drone_share =
                events.iter().filter(|e| e.source == "drone").count() as f64 / s.total as f64;
        }
        let mut hours: Vec<f64> = events
            .iter()
            .filter_map(|e| e.closed_us.map(|c| (c - e.created_us) as f64 / 3.6e9))
            .collect();
        hours.sort_by(f64::total_cmp);
        if !hours.is_empty() {
            let m = hours.len() / 2;
            s.median_hours_to_close = Some(if hours.len() % 2 == 1 {
                hours[m]
            } else {
                (hours[m - 1] + hours[m]) / 2.0
            });
        }
        Ok(s)
    }

    /// Takes or renews duty `name` for `holder` until `until_us`: true when `holder` has
    /// it (it was free, lapsed, or already `holder`'s), false when another holds it.
    pub fn hold(&self, name: &str, holder: &str, now: i64, until_us: i64) -> Result<bool> {
        Ok(self.db.transaction(|tx| {
            tx.execute(HOLD, args![name, holder, until_us, now])?;
            let h: String =
                tx.query_value("SELECT holder FROM holds WHERE name = ?1", args![name])?;
            Ok::<_, DbError>(h == holder)
        })?)
    }

    /// Outbox messages due for delivery, oldest first, stopping at the first not yet due.
    pub fn outbox_due(&self, now: i64, limit: usize) -> Result<Vec<OutboxItem>> {
        // In order: while the oldest waits for its retry, the ones behind it wait too, so
        // the platform never sees an event's changes out of order.
        let v = self.db.read(|tx| {
            tx.query_map(
                "SELECT id, event_id, kind, payload, idempotency_key, attempts, next_try_us FROM outbox
                 WHERE delivered_us IS NULL ORDER BY id LIMIT ?1",
                args![limit as i64],
                |r| {
                    Ok((
                        r.get::<i64>(6)?,
                        OutboxItem {
                            id: r.get(0)?,
                            event_id: r.get(1)?,
                            kind: r.get(2)?,
                            payload: r.get(3)?,
                            idempotency_key: r.get(4)?,
                            attempts: r.get(5)?,
                        },
                    ))
                },
            )
        })?;
        Ok(v.into_iter()
            .take_while(|(due, _)| *due <= now)
            .map(|(_, item)| item)
            .collect())
    }

    pub fn outbox_delivered(&self, id: i64, now: i64) -> Result<()> {
        self.write(
            "UPDATE outbox SET delivered_us = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            args![id, now],
        )?;
        Ok(())
    }

    /// A delivery failed: retry after `delay_us`.
    pub fn outbox_failed(&self, id: i64, error: &str, delay_us: i64, now: i64) -> Result<()> {
        self.write(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_try_us = ?3 WHERE id = ?1",
            args![id, error, now + delay_us],
        )?;
        Ok(())
    }

    /// Microseconds from each capture's announcement to its filing, for filed captures.
    pub fn capture_latencies_us(&self) -> Result<Vec<i64>> {
        Ok(self.db.read(|tx| {
            tx.query_map(
                "SELECT processed_us - received_us FROM captures WHERE processed_us IS NOT NULL ORDER BY 1",
                args![],
                |r| r.get(0),
            )
        })?)
    }

    /// Records that a vehicle finished a sortie of a run.
    pub fn sortie_finished(&self, run: &str, sysid: u8, sortie: usize, now: i64) -> Result<()> {
        self.write(
            "INSERT INTO run_sorties (run, sysid, sortie, finished_us) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            args![run, sysid, sortie as i64, now],
        )?;
        Ok(())
    }

    /// Keeps a run's sorties (JSON) the first time the run starts.
    pub fn save_run_plan(&self, run: &str, jobs_json: &str, now: i64) -> Result<()> {
        self.write(
            "INSERT INTO run_plans (run, jobs, created_us) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            args![run, jobs_json, now],
        )?;
        Ok(())
    }

    /// The newest `limit` runs' sorties (run id, JSON), newest first.
    pub fn recent_run_plans(&self, limit: usize) -> Result<Vec<(String, String)>> {
        Ok(self.db.read(|tx| {
            tx.query_map(
                "SELECT run, jobs FROM run_plans ORDER BY created_us DESC LIMIT ?1",
                args![limit as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })?)
    }

    /// The sorties of `run` kept by [`EventStore::save_run_plan`] (JSON), if any.
    pub fn run_plan(&self, run: &str) -> Result<Option<String>> {
        Ok(self.db.read(|tx| {
            tx.query_opt(
                "SELECT jobs FROM run_plans WHERE run = ?1",
                args![run],
                |r| r.get(0),
            )
        })?)
    }

    /// Records where sortie `sortie` of `run` was cut short (the last item of its planned
    /// mission reached; None: none), replacing an earlier breakpoint only with a later one.
    pub fn set_breakpoint(
        &self,
        run: &str,
        sortie: usize,
        reached: Option<u16>,
        now: i64,
    ) -> Result<()> {
        self.write(
            "INSERT INTO run_breakpoints (run, sortie, reached, at_us) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (run, sortie) DO UPDATE SET
               reached = greatest(coalesce(run_breakpoints.reached, -1), coalesce(excluded.reached, -1)),
               at_us = excluded.at_us",
            args![run, sortie as i64, reached.map(i64::from), now],
        )?;
        Ok(())
    }

    /// The breakpoints of `run`'s sorties: (sortie, last item reached).
    pub fn breakpoints(&self, run: &str) -> Result<Vec<(usize, Option<u16>)>> {
        Ok(self.db.read(|tx| {
            tx.query_map(
                "SELECT sortie, reached FROM run_breakpoints WHERE run = ?1",
                args![run],
                |r| {
                    let reached: Option<i64> = r.get(1)?;
                    Ok((
                        r.get::<usize>(0)?,
                        reached.filter(|x| *x >= 0).map(|x| x as u16),
                    ))
                },
            )
        })?)
    }

    /// The sorties of `run` that vehicle `sysid` (None: any vehicle) has finished.
    pub fn sorties_finished(&self, run: &str, sysid: Option<u8>) -> Result<Vec<usize>> {
        Ok(self.db.read(|tx| {
            tx.query_map(
                "SELECT DISTINCT sortie FROM run_sorties WHERE run = ?1 AND (sysid = ?2 OR ?2 IS NULL)",
                args![run, sysid],
                |r| r.get(0),
            )
        })?)
    }

    /// Adds a point to `run`'s trajectory.
    pub fn add_track_point(&self, run: &str, p: &TrackPoint) -> Result<()> {
        self.write(
            "INSERT INTO run_track (run, sysid, t_us, lat, lon, alt_rel, battery)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            args![run, p.sysid, p.t_us, p.lat, p.lon, p.alt_rel, p.battery],
        )?;
        Ok(())
    }

    /// `run`'s trajectory, by vehicle then time.
    pub fn track(&self, run: &str) -> Result<Vec<TrackPoint>> {
        Ok(self.db.read(|tx| {
            tx.query_map(
                "SELECT sysid, t_us, lat, lon, alt_rel, battery FROM run_track WHERE run = ?1 ORDER BY sysid, t_us",
                args![run],
                |r| {
                    Ok(TrackPoint {
                        sysid: r.get(0)?,
                        t_us: r.get(1)?,
                        lat: r.get(2)?,
                        lon: r.get(3)?,
                        alt_rel: r.get(4)?,
                        battery: r.get(5)?,
                    })
                },
            )
        })?)
    }

    /// The photos `run` took, in the order they were taken, with the events each showed.
    pub fn run_media(&self, run: &str) -> Result<Vec<RunPhoto>> {
        let (mut photos, shown) = self.db.read(|tx| {
            let photos = tx.query_map(
                "SELECT c.id, c.sysid, c.idx, c.time_utc_us, c.lat, c.lon, c.alt_rel, c.image_sha, c.state,
                        c.received_us, c.q
                 FROM captures c WHERE c.run = ?1 ORDER BY c.sysid, c.idx",
                args![run],
                |r| {
                    Ok(RunPhoto {
                        capture_id: r.get(0)?,
                        sysid: r.get(1)?,
                        index: r.get(2)?,
                        time_utc_us: r.get(3)?,
                        lat: r.get(4)?,
                        lon: r.get(5)?,
                        alt_rel: r.get(6)?,
                        image_sha: r.get(7)?,
                        state: r.get(8)?,
                        events: Vec::new(),
                        received_us: r.get(9)?,
                        q: serde_json::from_str(&r.get::<String>(10)?).unwrap_or([f64::NAN; 4]),
                        footprint: None,
                    })
                },
            )?;
            let shown = tx.query_map(
                "SELECT DISTINCT d.capture_id, d.event_id FROM detections d
                 JOIN captures c ON c.id = d.capture_id WHERE c.run = ?1 ORDER BY d.capture_id, d.event_id",
                args![run],
                |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?)),
            )?;
            Ok::<_, DbError>((photos, shown))
        })?;
        let mut by_capture = std::collections::HashMap::<i64, Vec<i64>>::new();
        for (c, e) in shown {
            by_capture.entry(c).or_default().push(e);
        }
        for p in &mut photos {
            p.events = by_capture.remove(&p.capture_id).unwrap_or_default();
        }
        Ok(photos)
    }

    /// The image hash of capture `id`, once its image is stored.
    pub fn capture_image(&self, id: i64) -> Result<Option<String>> {
        Ok(self
            .db
            .read(|tx| {
                tx.query_opt(
                    "SELECT image_sha FROM captures WHERE id = ?1",
                    args![id],
                    |r| r.get::<Option<String>>(0),
                )
            })?
            .flatten())
    }

    /// Number of captures by state: (pending, processed, failed).
    pub fn capture_counts(&self) -> Result<(i64, i64, i64)> {
        Ok(self.db.read(|tx| {
            let n = |s: &str| {
                tx.query_value::<i64>("SELECT count(*) FROM captures WHERE state = ?1", args![s])
            };
            Ok::<_, DbError>((n("pending")?, n("processed")?, n("failed")?))
        })?)
    }
}
