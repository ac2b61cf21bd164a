//! gridpatrol: drone patrol mission controller for city grid governance.
//!
//! Modules follow the data: `link` (MAVLink transports, hub, tlog) → `vehicle`
//! (telemetry, commands, missions, parameters).

pub mod alert;
pub mod api;
pub mod capture;
pub mod detect;
pub mod events;
pub mod geotag;
pub mod grid;
pub mod link;
pub mod patrol;
pub mod plan;
pub mod replay;
pub mod schedule;
pub mod store;
pub mod vehicle;
