//! The patrol and event commands of the binary.

mod events;
mod patrol;
mod patrols;
mod serve;
mod token;

pub use events::{events_cmd, EventsOp};
pub use patrol::{demo, fly, DemoArgs, FlyArgs};
pub use patrols::{patrols_cmd, PatrolsOp};
pub use serve::{serve, ServeArgs};
pub use token::{token_cmd, TokenOp};
