//! Planning: from grid cells to patrol routes and MAVLink missions.

pub mod avoid;
pub mod bound;
pub mod camera;
pub mod coverage;
pub mod export;
pub mod fence;
pub mod perimeter;
pub mod qgc;
pub mod route;

pub use bound::{route_lower_bound, RouteBound};
pub use camera::{Camera, CameraError, Survey};
pub use coverage::{coverage_route, CoverageRoute, Leg};
pub use route::{
    order_tour, plan_coverage, Pattern, Plan, PlanError, PlanOptions, Sortie, MAX_ITEMS,
};
