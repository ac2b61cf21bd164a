//! What a coverage patrol's length is judged against, in metres.
//!
//! - Sweep, a true lower bound: the covered area divided by the line spacing (no route
//!   photographs the area with less camera-on flight).
//! - Transit the battery forces, an *estimate*, not a bound: a sortie whose farthest
//!   point is d away has at most B − 2d/v seconds left for sweeping (B: usable time, v:
//!   speed), so a bit needing t seconds of sweeping at distance d is charged
//!   t · 2d / (B − 2d/v) metres of transit. A sweep that itself runs outward flies part
//!   of that distance with the camera on, so a plan can beat the estimate (WQ-24 with an
//!   8-minute battery: 17.4 km against 18.1 km). The area is taken in 25 m squares, each
//!   at the distance of its nearest point.

use geo::{BooleanOps, Contains, MultiPolygon, Point};

use super::coverage::Frame;
use super::route::{budget_and_vertical, PlanOptions};
use super::Survey;
use crate::grid::GridMap;

/// Raster step, metres.
const STEP_M: f64 = 25.0;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RouteBound {
    /// Camera-on flight, metres.
    pub sweep_m: f64,
    /// Out-and-back flight the battery forces, metres: an estimate, not a bound.
    pub transit_m: f64,
}

impl RouteBound {
    pub fn total_m(&self) -> f64 {
        self.sweep_m + self.transit_m
    }
}

/// The bounds for covering `cell_ids` (all cells when empty) of `map` from its home.
pub fn route_lower_bound(
    map: &GridMap,
    cell_ids: &[String],
    opts: &PlanOptions,
    survey: &Survey,
) -> RouteBound {
    let Some(home) = map.home else {
        return RouteBound::default();
    };
    let frame = Frame::new(home.lat, home.lon);
    let no_fly = MultiPolygon::new(map.no_fly.iter().map(|z| z.polygon.clone()).collect());
    let (budget, vertical) = budget_and_vertical(opts);
    let horizontal = (budget - vertical).max(1.0);
    let v = opts.speed_mps.max(0.1);
    let mut b = RouteBound::default();
    for cell in map
        .cells
        .iter()
        .filter(|c| cell_ids.is_empty() || cell_ids.contains(&c.id))
    {
        let flyable = if no_fly.0.is_empty() {
            MultiPolygon::new(vec![cell.polygon.clone()])
        } else {
            cell.polygon.difference(&no_fly)
        };
        for part in &flyable.0 {
            let area = crate::grid::area_m2_of(part);
            b.sweep_m += area / survey.line_spacing_m;
            // The part's squares: local bounding box, centres inside the part.
            let local: Vec<(f64, f64)> = part
                .exterior()
                .points()
                .map(|p| frame.to_local(p.y(), p.x()))
                .collect();
            let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
            for (x, y) in &local {
                (x0, y0, x1, y1) = (x0.min(*x), y0.min(*y), x1.max(*x), y1.max(*y));
            }
            let mut squares: Vec<f64> = Vec::new();
            let mut y = y0 + STEP_M / 2.0;
            while y < y1 {
                let mut x = x0 + STEP_M / 2.0;
                while x < x1 {
                    let (lat, lon) = frame.to_geo(x, y);
                    if part.contains(&Point::new(lon, lat)) {
                        let dx = (x.abs() - STEP_M / 2.0).max(0.0);
                        let dy = (y.abs() - STEP_M / 2.0).max(0.0);
                        squares.push(dx.hypot(dy));
                    }
                    x += STEP_M;
                }
                y += STEP_M;
            }
            if squares.is_empty() {
                continue;
            }
            // Spread the part's exact sweep time over its squares.
            let t_each = area / survey.line_spacing_m / v / squares.len() as f64;
            for d in squares {
                let left = horizontal - 2.0 * d / v;
                if left > 0.0 {
                    b.transit_m += t_each * 2.0 * d / left;
                }
            }
        }
    }
    b
}
