//! Runs: one instance of a patrol definition, with FlightHub 2's task states (and
//! `skipped`, which FlightHub folds into "failed to start"). Every change is recorded with
//! its reason, e.g. "skipped: wind 11.2 m/s > 10".

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Created, waiting for its time or a vehicle.
    Waiting,
    /// A vehicle is leased; preflight, upload and read-back under way.
    Preparing,
    /// Flying a sortie.
    Executing,
    /// Cut short (battery, weather, link, operator): resumes from its breakpoint.
    Paused,
    /// Every waypoint flown.
    Success,
    /// Preparation failed (preflight, upload, arming).
    FailedToStart,
    /// Not flown: a ready condition failed, or it was missed while `serve` was down.
    Skipped,
    /// Cancelled by an operator.
    Terminated,
    /// Did not finish within its time limit.
    Timeout,
    /// Ended with part of its area flown and no resume left.
    PartiallyDone,
}

impl RunState {
    pub const ALL: [RunState; 10] = [
        RunState::Waiting,
        RunState::Preparing,
        RunState::Executing,
        RunState::Paused,
        RunState::Success,
        RunState::FailedToStart,
        RunState::Skipped,
        RunState::Terminated,
        RunState::Timeout,
        RunState::PartiallyDone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Waiting => "waiting",
            RunState::Preparing => "preparing",
            RunState::Executing => "executing",
            RunState::Paused => "paused",
            RunState::Success => "success",
            RunState::FailedToStart => "failed_to_start",
            RunState::Skipped => "skipped",
            RunState::Terminated => "terminated",
            RunState::Timeout => "timeout",
            RunState::PartiallyDone => "partially_done",
        }
    }

    /// No change leaves this state.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            RunState::Waiting | RunState::Preparing | RunState::Executing | RunState::Paused
        )
    }

    /// The states this one may change to.
    pub fn next(self) -> &'static [RunState] {
        use RunState::*;
        match self {
            // Paused: an operator held it before it started.
            Waiting => &[Preparing, Paused, Skipped, Terminated, Timeout],
            // Back to waiting: the leased vehicle turned out not ready, another may be.
            Preparing => &[Executing, Waiting, FailedToStart, Skipped, Terminated],
            Executing => &[Paused, Success, PartiallyDone, Timeout, Terminated],
            // Back to waiting: it was held before it started and is resumed.
            Paused => &[Preparing, Waiting, PartiallyDone, Timeout, Terminated],
            _ => &[],
        }
    }

    pub fn can_go(self, to: RunState) -> bool {
        self.next().contains(&to)
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RunState::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a run state"))
    }
}

/// How a run came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Its schedule fired.
    Schedule,
    /// Started by hand ("immediate" in FlightHub 2).
    Manual,
    /// A firing missed while `serve` was down, run late.
    Late,
    /// An alert sent a vehicle to a point (`alert-<id>`).
    Alert,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Late => "late",
            Trigger::Alert => "alert",
        }
    }
}

impl std::str::FromStr for Trigger {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "schedule" => Ok(Trigger::Schedule),
            "manual" => Ok(Trigger::Manual),
            "late" => Ok(Trigger::Late),
            "alert" => Ok(Trigger::Alert),
            _ => Err(format!("{s:?} is not a run trigger")),
        }
    }
}

/// One run as stored. Times are µs since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Run {
    pub id: i64,
    pub patrol: String,
    /// The instant its schedule fired (or it was asked for).
    pub planned_us: i64,
    pub trigger: Trigger,
    pub state: RunState,
    /// Why it is in its state.
    pub reason: String,
    /// The vehicle flying it, once one is chosen.
    pub sysid: Option<u8>,
    pub created_us: i64,
    pub updated_us: i64,
    /// Who paused it: a held run waits for an operator to resume it.
    #[serde(default)]
    pub held_by: Option<String>,
}

/// One recorded change of a run's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunChange {
    pub at_us: i64,
    pub from: Option<RunState>,
    pub to: RunState,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finals_go_nowhere_and_names_round_trip() {
        for s in RunState::ALL {
            assert_eq!(s.is_final(), s.next().is_empty(), "{s}");
            assert_eq!(s.as_str().parse::<RunState>(), Ok(s));
        }
        assert!(RunState::Paused.can_go(RunState::Preparing));
        assert!(!RunState::Success.can_go(RunState::Executing));
    }
}
