//! The patrol and event commands of the binary.

mod events;
mod patrol;
mod patrols;

pub use events::{events_cmd, EventsOp};
pub use patrol::{demo, fly, DemoArgs, FlyArgs};
pub use patrols::{patrols_cmd, PatrolsOp};
