//! The run book: runs, their state changes, how far each schedule has been read and the
//! vehicle leases, kept in the event store's database so that a restart (or a crash) of
//! `serve` finds them all. Every write is one transaction.

use crate::args;
use std::sync::Arc;

use crate::store::{DbError, Row, Tx};

use super::run::{Run, RunChange, RunState, Trigger};
use crate::events::store::EventStore;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("no run {0}")]
    NoRun(i64),
    #[error("run {id} is {from}: it cannot become {to} (it can become {allowed})")]
    Illegal {
        id: i64,
        from: RunState,
        to: RunState,
        allowed: String,
    },
    #[error("run {0} is not paused")]
    NotHeld(i64),
    #[error("run {id} has ended ({state}): it cannot be {what}")]
    Ended {
        id: i64,
        state: RunState,
        what: &'static str,
    },
    /// An alert's record could not be kept.
    #[error("{0}")]
    Alert(String),
    #[error("vehicle {sysid} is leased to run {run} by {holder} until {expires_us} µs")]
    Leased {
        sysid: u8,
        run: i64,
        holder: String,
        expires_us: i64,
    },
}

pub type Result<T> = std::result::Result<T, RunError>;

/// One change of a patrol definition through the API.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct PatrolChange {
    pub at_us: i64,
    /// created, replaced or deleted.
    pub action: String,
    /// The token's holder.
    pub holder: String,
}

const RUN_COLUMNS: &str =
    "id, patrol, planned_us, trigger, state, reason, sysid, created_us, updated_us, held_by";

fn run_from_row(r: &Row) -> crate::store::Result<Run> {
    let bad = |i, s: String| DbError::Decode {
        column: i,
        want: "a known name",
        got: s,
    };
    let trigger: String = r.get(3)?;
    let state: String = r.get(4)?;
    Ok(Run {
        id: r.get(0)?,
        patrol: r.get(1)?,
        planned_us: r.get(2)?,
        trigger: trigger.parse().map_err(|e| bad(3, e))?,
        state: state.parse().map_err(|e| bad(4, e))?,
        reason: r.get(5)?,
        sysid: r.get(6)?,
        created_us: r.get(7)?,
        updated_us: r.get(8)?,
        held_by: r.get(9)?,
    })
}

fn get_run(tx: &Tx, id: i64) -> Result<Run> {
    tx.query_opt(
        &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
        args![id],
        run_from_row,
    )?
    .ok_or(RunError::NoRun(id))
}

/// Who holds vehicle `sysid`'s lease: (run, holder, until µs).
fn vehicle_lease(tx: &Tx, sysid: u8) -> crate::store::Result<Option<(i64, String, i64)>> {
    tx.query_opt(
        "SELECT run_id, holder, expires_us FROM leases WHERE sysid = ?1",
        args![sysid],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Leases vehicle `sysid` to run `run` for `holder` until `expires_us`, replacing any lease.
fn put_lease(
    tx: &Tx,
    sysid: u8,
    run: i64,
    holder: &str,
    expires_us: i64,
) -> crate::store::Result<()> {
    tx.execute(
        "INSERT INTO leases (sysid, run_id, holder, expires_us) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (sysid) DO UPDATE SET run_id = excluded.run_id, holder = excluded.holder, expires_us = excluded.expires_us",
        args![sysid, run, holder, expires_us],
    )?;
    Ok(())
}

/// Records run `id`'s change of state, with its reason.
fn record_change(
    tx: &Tx,
    id: i64,
    from: Option<RunState>,
    to: RunState,
    reason: &str,
    now_us: i64,
) -> crate::store::Result<()> {
    tx.execute(
        "INSERT INTO run_changes (run_id, at_us, from_state, to_state, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
        args![id, now_us, from.map(|f| f.as_str()), to.as_str(), reason],
    )?;
    Ok(())
}

/// Which runs to list.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub patrol: Option<String>,
    pub state: Option<RunState>,
    pub sysid: Option<u8>,
    /// Planned at or after, µs.
    pub from_us: Option<i64>,
    /// Planned before, µs.
    pub to_us: Option<i64>,
    pub limit: Option<usize>,
}

#[derive(Clone)]
pub struct RunBook {
    store: Arc<EventStore>,
}

impl RunBook {
    pub fn new(store: Arc<EventStore>) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Arc<EventStore> {
        &self.store
    }

    /// Creates the run of `patrol` planned at `planned_us` in `state` (waiting, or skipped
    /// with its reason); None when that firing already has its run.
    pub fn create(
        &self,
        patrol: &str,
        planned_us: i64,
        trigger: Trigger,
        state: RunState,
        reason: &str,
        now_us: i64,
    ) -> Result<Option<Run>> {
        self.store.transaction(|tx| {
            let Some(id) = tx.query_opt(
                "INSERT INTO runs (patrol, planned_us, trigger, state, reason, created_us, updated_us)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT DO NOTHING RETURNING id",
                args![patrol, planned_us, trigger.as_str(), state.as_str(), reason, now_us],
                |r| r.get::<i64>(0),
            )?
            else {
                return Ok(None);
            };
            record_change(tx, id, None, state, reason, now_us)?;
            get_run(tx, id).map(Some)
        })
    }

    /// Moves run `id` to `to` with its reason (and its vehicle, when given); refuses a
    /// change its state does not allow.
    pub fn transition(
        &self,
        id: i64,
        to: RunState,
        reason: &str,
        sysid: Option<u8>,
        now_us: i64,
    ) -> Result<Run> {
        self.store.transaction(|tx| {
            let run = get_run(tx, id)?;
            if !run.state.can_go(to) {
                return Err(RunError::Illegal {
                    id,
                    from: run.state,
                    to,
                    allowed: run
                        .state
                        .next()
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            tx.execute(
                "UPDATE runs SET state = ?2, reason = ?3, sysid = coalesce(?4, sysid), updated_us = ?5 WHERE id = ?1",
                args![id, to.as_str(), reason, sysid, now_us],
            )?;
            record_change(tx, id, Some(run.state), to, reason, now_us)?;
            if to.is_final() {
                tx.execute("DELETE FROM leases WHERE run_id = ?1", args![id])?;
            }
            get_run(tx, id)
        })
    }

    /// Holds run `id` for `who` (an operator's pause) or, with `None`, lets it go again,
    /// recording the change with `reason`; then, if `to` is given and allowed, moves it
    /// there in the same transaction. An ended run cannot be held or let go.
    pub fn set_hold(
        &self,
        id: i64,
        who: Option<&str>,
        to: Option<RunState>,
        reason: &str,
        now_us: i64,
    ) -> Result<Run> {
        self.store.transaction(|tx| {
            let run = get_run(tx, id)?;
            if run.state.is_final() {
                return Err(RunError::Ended {
                    id,
                    state: run.state,
                    what: if who.is_some() { "paused" } else { "resumed" },
                });
            }
            let to = to.filter(|t| run.state.can_go(*t)).unwrap_or(run.state);
            tx.execute(
                "UPDATE runs SET held_by = ?2, state = ?3, reason = ?4, updated_us = ?5 WHERE id = ?1",
                args![id, who, to.as_str(), reason, now_us],
            )?;
            record_change(tx, id, Some(run.state), to, reason, now_us)?;
            get_run(tx, id)
        })
    }

    pub fn get(&self, id: i64) -> Result<Run> {
        self.store.read(|tx| get_run(tx, id))
    }

    /// Runs matching `f`, oldest planned first.
    pub fn list(&self, f: &RunFilter) -> Result<Vec<Run>> {
        self.store.read(|tx| {
            Ok(tx.query_map(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs
                     WHERE (patrol = ?1 OR ?1 IS NULL) AND (state = ?2 OR ?2 IS NULL)
                       AND (sysid = ?3 OR ?3 IS NULL) AND (planned_us >= ?4 OR ?4 IS NULL)
                       AND (planned_us < ?5 OR ?5 IS NULL)
                     ORDER BY planned_us, id LIMIT ?6"
                ),
                args![
                    f.patrol,
                    f.state.map(|s| s.as_str()),
                    f.sysid,
                    f.from_us,
                    f.to_us,
                    f.limit.map_or(i64::MAX, |l| l as i64)
                ],
                run_from_row,
            )?)
        })
    }

    /// `patrol`'s most recently planned run.
    pub fn latest(&self, patrol: &str) -> Result<Option<Run>> {
        self.store.read(|tx| {
            Ok(tx.query_opt(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE patrol = ?1 ORDER BY planned_us DESC, id DESC LIMIT 1"
                ),
                args![patrol],
                run_from_row,
            )?)
        })
    }

    /// How many runs are in each state (states with none left out).
    pub fn count_by_state(&self) -> Result<Vec<(RunState, usize)>> {
        self.store.read(|tx| {
            let rows = tx.query_map(
                "SELECT state, count(*) FROM runs GROUP BY state",
                args![],
                |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)),
            )?;
            let mut out = Vec::new();
            for (state, n) in rows {
                if let Ok(s) = state.parse() {
                    out.push((s, n as usize));
                }
            }
            Ok(out)
        })
    }

    /// Run `id`'s state changes, oldest first.
    pub fn changes(&self, id: i64) -> Result<Vec<RunChange>> {
        self.store.read(|tx| {
            get_run(tx, id)?;
            let rows = tx.query_map(
                "SELECT at_us, from_state, to_state, reason FROM run_changes WHERE run_id = ?1 ORDER BY rowid",
                args![id],
                |r| {
                    let from: Option<String> = r.get(1)?;
                    let to: String = r.get(2)?;
                    Ok((r.get::<i64>(0)?, from, to, r.get::<String>(3)?))
                },
            )?;
            let mut out = Vec::new();
            for (at_us, from, to, reason) in rows {
                let parse = |s: &str| {
                    s.parse::<RunState>().map_err(|e| DbError::Decode {
                        column: 2,
                        want: "a run state",
                        got: e,
                    })
                };
                out.push(RunChange {
                    at_us,
                    from: from.as_deref().map(parse).transpose()?,
                    to: parse(&to)?,
                    reason,
                });
            }
            Ok(out)
        })
    }

    /// Keeps a patrol definition made through the API (replacing one of its name).
    /// Keeps `def` (made or replaced, as `action` says, by `holder`) and records the change.
    pub fn save_patrol(
        &self,
        def: &super::PatrolDef,
        action: &str,
        holder: &str,
        now_us: i64,
    ) -> Result<()> {
        let json = serde_json::to_string(def).unwrap_or_default();
        self.store.transaction(|tx| {
            tx.execute(
                "INSERT INTO patrols (name, definition, updated_us) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_us = excluded.updated_us",
                args![def.name, json, now_us],
            )?;
            tx.execute(
                "INSERT INTO patrol_changes (name, at_us, action, holder, definition) VALUES (?1, ?2, ?3, ?4, ?5)",
                args![def.name, now_us, action, holder, json],
            )?;
            Ok(())
        })
    }

    /// Deletes patrol `name` for `holder`, recording it.
    pub fn delete_patrol(&self, name: &str, holder: &str, now_us: i64) -> Result<()> {
        self.store.transaction(|tx| {
            tx.execute("DELETE FROM patrols WHERE name = ?1", args![name])?;
            tx.execute(
                "INSERT INTO patrol_changes (name, at_us, action, holder) VALUES (?1, ?2, 'deleted', ?3)",
                args![name, now_us, holder],
            )?;
            Ok(())
        })
    }

    /// Who changed patrol `name` through the API, oldest first.
    pub fn patrol_changes(&self, name: &str) -> Result<Vec<PatrolChange>> {
        self.store.read(|tx| {
            Ok(tx.query_map(
                "SELECT at_us, action, holder FROM patrol_changes WHERE name = ?1 ORDER BY rowid",
                args![name],
                |r| {
                    Ok(PatrolChange {
                        at_us: r.get(0)?,
                        action: r.get(1)?,
                        holder: r.get(2)?,
                    })
                },
            )?)
        })
    }

    /// The patrol definitions made through the API (those that still parse).
    pub fn stored_patrols(&self) -> Result<Vec<super::PatrolDef>> {
        self.store.read(|tx| {
            let rows = tx.query_map(
                "SELECT definition FROM patrols ORDER BY name",
                args![],
                |r| r.get::<String>(0),
            )?;
            let mut out = Vec::new();
            for json in rows {
                match serde_json::from_str(&json) {
                    Ok(d) => out.push(d),
                    Err(e) => tracing::error!("a stored patrol no longer parses: {e}"),
                }
            }
            Ok(out)
        })
    }

    /// How far `patrol`'s schedule has been read, µs; None before its first reading.
    pub fn cursor(&self, patrol: &str) -> Result<Option<i64>> {
        self.store.read(|tx| {
            Ok(tx.query_opt(
                "SELECT until_us FROM schedule_cursor WHERE patrol = ?1",
                args![patrol],
                |r| r.get(0),
            )?)
        })
    }

    pub fn set_cursor(&self, patrol: &str, until_us: i64) -> Result<()> {
        self.store.transaction(|tx| {
            tx.execute(
                "INSERT INTO schedule_cursor (patrol, until_us) VALUES (?1, ?2)
                 ON CONFLICT (patrol) DO UPDATE SET until_us = excluded.until_us",
                args![patrol, until_us],
            )?;
            Ok(())
        })
    }

    /// Leases vehicle `sysid` to run `run` for `holder` until `expires_us`: granted when
    /// the vehicle is free, its lease has expired, or this run holds it already (then it is
    /// renewed). One vehicle, one run, across restarts and controllers.
    pub fn lease(
        &self,
        sysid: u8,
        run: i64,
        holder: &str,
        now_us: i64,
        expires_us: i64,
    ) -> Result<()> {
        self.store.transaction(|tx| {
            let held = vehicle_lease(tx, sysid)?;
            if let Some((other, h, exp)) = held {
                // Another run, or this run under another controller (which took it over).
                if (other != run || h != holder) && exp > now_us {
                    return Err(RunError::Leased {
                        sysid,
                        run: other,
                        holder: h,
                        expires_us: exp,
                    });
                }
            }
            put_lease(tx, sysid, run, holder, expires_us)?;
            Ok(())
        })
    }

    /// Renews run `run`'s lease of `sysid` for `holder` until `expires_us`, if it is still
    /// theirs (even lapsed), or nobody's while the run still prepares or executes (another
    /// of this controller's runs let the vehicle go): `None`. Otherwise who holds the
    /// vehicle now (`Some(None)`: nobody; the run was taken back by another controller).
    /// A renewal never takes a vehicle from another, nor a run back, so a controller that
    /// stalled past its lease learns it lost it.
    pub fn renew(
        &self,
        sysid: u8,
        run: i64,
        holder: &str,
        expires_us: i64,
    ) -> Result<Option<Option<String>>> {
        self.store.transaction(|tx| {
            Ok(match vehicle_lease(tx, sysid)? {
                Some((r, h, _)) if r == run && h == holder => {
                    put_lease(tx, sysid, run, holder, expires_us)?;
                    None
                }
                Some((_, h, _)) => Some(Some(h)),
                None if matches!(
                    get_run(tx, run)?.state,
                    RunState::Preparing | RunState::Executing
                ) =>
                {
                    put_lease(tx, sysid, run, holder, expires_us)?;
                    None
                }
                None => Some(None),
            })
        })
    }

    /// Takes run `id` off the queue for `holder` to fly on vehicle `sysid`, in one
    /// transaction: it must still be in state `from` (as this controller last read it)
    /// and the vehicle free (or leased to this run by this holder, or lapsed). It is
    /// leased until `expires_us` and moved to preparing with `reason`. None when another
    /// controller got there first. Every write runs alone, on either engine, so two
    /// controllers can never both take one run.
    #[allow(clippy::too_many_arguments)]
    pub fn claim(
        &self,
        id: i64,
        from: RunState,
        sysid: u8,
        holder: &str,
        reason: &str,
        now_us: i64,
        expires_us: i64,
    ) -> Result<Option<Run>> {
        self.store.transaction(|tx| {
            let run = get_run(tx, id)?;
            if run.state != from || !run.state.can_go(RunState::Preparing) {
                return Ok(None);
            }
            let held = vehicle_lease(tx, sysid)?;
            if held.is_some_and(|(r, h, exp)| (r != id || h != holder) && exp > now_us) {
                return Ok(None);
            }
            put_lease(tx, sysid, id, holder, expires_us)?;
            tx.execute(
                "UPDATE runs SET state = ?2, reason = ?3, sysid = ?4, updated_us = ?5 WHERE id = ?1",
                args![id, RunState::Preparing.as_str(), reason, sysid, now_us],
            )?;
            record_change(tx, id, Some(run.state), RunState::Preparing, reason, now_us)?;
            get_run(tx, id).map(Some)
        })
    }

    /// Puts run `id` back in the queue if it is preparing or executing and nobody flies
    /// it: its lease lapsed (its controller died or lost the database) or is gone, or it is
    /// `holder`'s own from before a restart (`at_start`). An executing run pauses, so that
    /// it resumes (re-attaching to its vehicle if that is still in the air); a preparing
    /// one waits. Checked and changed in one transaction; the run, when it was put back.
    pub fn take_back(
        &self,
        id: i64,
        holder: &str,
        at_start: bool,
        now_us: i64,
    ) -> Result<Option<Run>> {
        self.store.transaction(|tx| {
            let run = get_run(tx, id)?;
            let to = match run.state {
                RunState::Preparing => RunState::Waiting,
                RunState::Executing => RunState::Paused,
                _ => return Ok(None),
            };
            let lease: Option<(String, i64)> = tx.query_opt(
                "SELECT holder, expires_us FROM leases WHERE run_id = ?1 ORDER BY expires_us DESC",
                args![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let restarted = "the service restarted: re-attaching".to_string();
            let reason = match lease {
                Some((h, _)) if h == holder => {
                    if !at_start {
                        return Ok(None); // this controller is flying it
                    }
                    restarted
                }
                Some((_, exp)) if exp > now_us => return Ok(None),
                Some((h, exp)) => format!(
                    "{h} stopped renewing its lease {:.0} s ago: {holder} takes over, re-attaching",
                    (now_us - exp) as f64 / 1e6
                ),
                None if at_start => restarted,
                None => format!("nobody holds it: {holder} takes over"),
            };
            tx.execute("DELETE FROM leases WHERE run_id = ?1", args![id])?;
            tx.execute(
                "UPDATE runs SET state = ?2, reason = ?3, updated_us = ?4 WHERE id = ?1",
                args![id, to.as_str(), reason, now_us],
            )?;
            record_change(tx, id, Some(run.state), to, &reason, now_us)?;
            get_run(tx, id).map(Some)
        })
    }

    /// Gives up run `run`'s lease of `sysid`, if it holds one.
    pub fn release(&self, sysid: u8, run: i64) -> Result<()> {
        self.store.transaction(|tx| {
            tx.execute(
                "DELETE FROM leases WHERE sysid = ?1 AND run_id = ?2",
                args![sysid, run],
            )?;
            Ok(())
        })
    }

    /// The run holding vehicle `sysid`'s unexpired lease.
    pub fn lease_holder(&self, sysid: u8, now_us: i64) -> Result<Option<i64>> {
        self.store.read(|tx| {
            Ok(tx.query_opt(
                "SELECT run_id FROM leases WHERE sysid = ?1 AND expires_us > ?2",
                args![sysid, now_us],
                |r| r.get(0),
            )?)
        })
    }
}
