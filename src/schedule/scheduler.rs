//! The scheduler's clockwork: on each tick it reads every patrol's schedule from where it
//! last stopped to now and books a run for each firing. A firing found late (the service
//! was down when it passed) is skipped or run late, as the patrol says; nothing is booked
//! twice, because a firing's run is keyed by its instant and the reading position is
//! stored. It takes the time from a [`Clock`], so tests drive a simulated day in
//! milliseconds.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use super::book::{Result, RunBook};
use super::definition::PatrolDef;
use super::run::{Run, RunState, Trigger};
use super::timing::{Compiled, Missed};

/// Where the scheduler gets the time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(t: DateTime<Utc>) -> Self {
        Self(Mutex::new(t))
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }

    pub fn advance(&self, d: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_us(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t).unwrap_or_default()
}

/// A firing noticed at most this late was on time (the service ticks every few seconds);
/// one older was missed while the service was down.
pub const ON_TIME: Duration = Duration::minutes(2);

/// A definition's schedule, compiled, or the error naming the patrol and field.
fn compile(d: &PatrolDef) -> std::result::Result<Compiled, super::DefinitionError> {
    d.schedule
        .compile()
        .map_err(|(field, problem)| super::DefinitionError {
            patrol: d.name.clone(),
            field: format!("schedule.{field}"),
            problem,
        })
}

pub struct Scheduler {
    book: RunBook,
    patrols: std::sync::RwLock<Vec<(PatrolDef, Compiled)>>,
    on_time: Duration,
}

impl Scheduler {
    /// A scheduler for these (already validated) definitions.
    pub fn new(
        book: RunBook,
        defs: Vec<PatrolDef>,
    ) -> std::result::Result<Self, super::DefinitionError> {
        let mut patrols = Vec::new();
        for d in defs {
            let c = compile(&d)?;
            patrols.push((d, c));
        }
        Ok(Self {
            book,
            patrols: std::sync::RwLock::new(patrols),
            on_time: ON_TIME,
        })
    }

    /// How late a firing may be noticed and still count as on time (default [`ON_TIME`]);
    /// at least the tick interval.
    pub fn with_on_time(mut self, d: Duration) -> Self {
        self.on_time = d;
        self
    }

    pub fn book(&self) -> &RunBook {
        &self.book
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<(PatrolDef, Compiled)>> {
        self.patrols.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The patrol definitions, in the order given.
    pub fn patrols(&self) -> Vec<PatrolDef> {
        self.read().iter().map(|(d, _)| d.clone()).collect()
    }

    pub fn patrol(&self, name: &str) -> Option<PatrolDef> {
        self.read()
            .iter()
            .find(|(d, _)| d.name == name)
            .map(|(d, _)| d.clone())
    }

    /// Adds `def`, or replaces the patrol of its name; true when it replaced one. Its
    /// schedule is read from now on.
    pub fn put(&self, def: PatrolDef) -> std::result::Result<bool, super::DefinitionError> {
        let c = compile(&def)?;
        let mut w = self.patrols.write().unwrap_or_else(|p| p.into_inner());
        match w.iter_mut().find(|(d, _)| d.name == def.name) {
            Some(slot) => {
                *slot = (def, c);
                Ok(true)
            }
            None => {
                w.push((def, c));
                Ok(false)
            }
        }
    }

    /// Removes patrol `name`; false when there is none.
    pub fn remove(&self, name: &str) -> bool {
        let mut w = self.patrols.write().unwrap_or_else(|p| p.into_inner());
        let before = w.len();
        w.retain(|(d, _)| d.name != name);
        w.len() != before
    }

    /// Reads every enabled schedule up to `now` and books the runs it fires; the runs
    /// booked by this tick.
    pub fn tick(&self, now: DateTime<Utc>) -> Result<Vec<Run>> {
        let mut booked = Vec::new();
        let patrols = self.read().clone();
        for (def, timing) in patrols.iter().filter(|(d, _)| d.enabled) {
            // The first reading starts now: a new patrol does not fire for its past.
            let from = self.book.cursor(&def.name)?.map_or(now, from_us);
            if from >= now {
                self.book.set_cursor(&def.name, us(now))?;
                continue;
            }
            let fires = timing.between(from, now);
            // The latest missed firing is the one a `late` patrol still runs.
            let latest_missed = fires
                .iter()
                .rev()
                .find(|f| now - **f > self.on_time)
                .copied();
            // The reading position moves only past firings (a commit per tick would cost
            // an fsync each); re-reading a quiet stretch books nothing.
            let moved = !fires.is_empty();
            for f in fires {
                let (state, trigger, reason) = if now - f <= self.on_time {
                    (
                        RunState::Waiting,
                        Trigger::Schedule,
                        "scheduled".to_string(),
                    )
                } else if timing.missed == Missed::Late
                    && Some(f) == latest_missed
                    && now - f <= timing.late_within
                {
                    (
                        RunState::Waiting,
                        Trigger::Late,
                        format!(
                            "late: fired at {} while the service was down",
                            f.with_timezone(&timing.tz).format("%F %R")
                        ),
                    )
                } else {
                    (
                        RunState::Skipped,
                        Trigger::Schedule,
                        format!(
                            "skipped: fired at {} while the service was down (missed = {})",
                            f.with_timezone(&timing.tz).format("%F %R"),
                            match timing.missed {
                                Missed::Skip => "skip",
                                Missed::Late =>
                                    "late, but older than late_within_min or not the latest",
                            }
                        ),
                    )
                };
                if let Some(run) =
                    self.book
                        .create(&def.name, us(f), trigger, state, &reason, us(now))?
                {
                    booked.push(run);
                }
            }
            if timing.continuous {
                booked.extend(self.continue_continuous(def, timing, from, now)?);
            }
            if moved {
                self.book.set_cursor(&def.name, us(now))?;
            }
        }
        Ok(booked)
    }

    /// A continuous patrol with nothing under way is booked again from the end of its last
    /// run (or from where the reading started).
    fn continue_continuous(
        &self,
        def: &PatrolDef,
        timing: &Compiled,
        from: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Run>> {
        // A continuous patrol books a run only when none is open, so its latest run is the
        // only one that can be open, and the last to end.
        let latest = self.book.latest(&def.name)?;
        if latest.as_ref().is_some_and(|r| !r.state.is_final()) {
            return Ok(Vec::new());
        }
        let ended = latest.map_or(from, |r| from_us(r.updated_us));
        match timing.next_continuous(ended) {
            Some(t) if t <= now => Ok(self
                .book
                .create(
                    &def.name,
                    us(t),
                    Trigger::Schedule,
                    RunState::Waiting,
                    "scheduled: continuous",
                    us(now),
                )?
                .into_iter()
                .collect()),
            _ => Ok(Vec::new()),
        }
    }

    /// Books a run of `patrol` now, by hand ("immediate") for `who`; None for an unknown
    /// patrol.
    pub fn start_now(&self, patrol: &str, who: &str, now: DateTime<Utc>) -> Result<Option<Run>> {
        if !self.read().iter().any(|(d, _)| d.name == patrol) {
            return Ok(None);
        }
        self.book.create(
            patrol,
            us(now),
            Trigger::Manual,
            RunState::Waiting,
            &format!("started by {who}"),
            us(now),
        )
    }

    /// The next firing of each enabled patrol after `now`.
    pub fn upcoming(&self, now: DateTime<Utc>) -> Vec<(String, Option<DateTime<Utc>>)> {
        self.read()
            .iter()
            .filter(|(d, _)| d.enabled)
            .map(|(d, t)| (d.name.clone(), t.next_after(now)))
            .collect()
    }
}
