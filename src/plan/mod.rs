//! Planning: from grid cells to patrol routes and MAVLink missions.

pub mod camera;
pub mod coverage;

pub use camera::{Camera, CameraError, Survey};
pub use coverage::{coverage_route, CoverageRoute, Leg};
