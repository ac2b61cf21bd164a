//! The commands of the binary, one file per group; `main.rs` only parses and dispatches.

mod alert;
mod events;
mod link;
mod patrol;
mod patrols;
mod plan;
mod serve;
mod token;

pub use alert::{alert, AlertArgs};
pub use events::{events_cmd, EventsOp};
pub use link::{mission_cmd, open, replay_cmd, status, Conn, MissionOp};
pub use patrol::{demo, fly, DemoArgs, FlyArgs};
pub use patrols::{patrols_cmd, PatrolsOp};
pub use plan::{grids_cmd, plan_cmd, plan_inputs, GridsOp, PlanArgs, PlanCmd};
pub use serve::{serve, ServeArgs};
pub use token::{token_cmd, TokenOp};
