//! Scheduled, unattended patrols: patrol definitions (the templates, [`PatrolDef`]), when
//! they fire ([`timing`]), the runs they make and their states ([`run`]), the run book that
//! keeps runs, schedule positions and vehicle leases across restarts ([`book`]), and the
//! clockwork that books runs as schedules fire ([`scheduler`]). It decides *when* and *on
//! which vehicle*; `patrol` does the flying, exactly as for `gridpatrol fly`.
//!
//! The reference is DJI FlightHub 2 with its Dock: immediate, timed, repeating and
//! continuous tasks; battery and time-window ready conditions; the task states waiting,
//! preparing, executing, paused, success, failed to start, terminated, timeout and
//! partially done; and breakpoint resume (断点续飞).

pub mod book;
pub mod definition;
pub mod ready;
pub mod run;
pub mod scheduler;
pub mod service;
pub mod timing;

pub use book::{RunBook, RunError, RunFilter};
pub use definition::{DefinitionError, PatrolDef, ReadyConditions};
pub use run::{Run, RunChange, RunState, Trigger};
pub use scheduler::{Clock, ManualClock, Scheduler, SystemClock};
pub use timing::{Missed, Timing};
