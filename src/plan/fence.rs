//! A sortie's geofence as the vehicle can hold it: an inclusion polygon with at most as
//! many vertices as the vehicle has room for, and only the no-fly zones the sortie can
//! reach, round ones as circles.
//!
//! PX4 v1.16 holds 64 fence items (`DM_KEY_FENCE_POINTS_MAX`; a 65-item MISSION_COUNT is
//! answered MAV_MISSION_NO_SPACE, checked on its SITL) and 32 rally points. Every
//! simplification here only ever grows the inclusion polygon and the exclusion zones,
//! so the fence never cuts into the planned route or lets the vehicle nearer a zone.

use geo::{ConvexHull, Intersects};

use super::coverage::Frame;
use crate::grid::NoFlyZone;
use crate::vehicle::MissionItem;

/// PX4's geofence capacity (items), the default for planning.
pub const PX4_FENCE_CAPACITY: usize = 64;

/// PX4's rally point capacity.
pub const PX4_RALLY_CAPACITY: usize = 32;

/// MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION / _EXCLUSION, MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION.
const POLYGON_INCLUSION: u16 = 5001;
const POLYGON_EXCLUSION: u16 = 5002;
const CIRCLE_EXCLUSION: u16 = 5004;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FenceError {
    #[error("the geofence needs {needed} items (the inclusion polygon at least 3, the no-fly zones {exclusions}) but the vehicle holds {capacity}")]
    TooBig {
        needed: usize,
        exclusions: usize,
        capacity: usize,
    },
    #[error("the inclusion fence has fewer than 3 distinct vertices")]
    Degenerate,
}

/// The fence items of one sortie: `inclusion` (x = lon, y = lat, degrees) simplified
/// outward to fit, then every no-fly zone it touches, round zones as one circle each
/// (grown by at most `round_tolerance_m`), in at most `capacity` items.
pub fn fence_items(
    inclusion: &geo::Polygon<f64>,
    no_fly: &[NoFlyZone],
    capacity: usize,
    round_tolerance_m: f64,
) -> Result<Vec<MissionItem>, FenceError> {
    let hull = inclusion.convex_hull();
    let Some(c) = hull.exterior().0.first() else {
        return Err(FenceError::Degenerate);
    };
    let frame = Frame::new(c.y, c.x);
    let ring = local_ring(&frame, &hull);
    if ring.len() < 3 {
        return Err(FenceError::Degenerate);
    }
    // The zones the vehicle can reach are those touching the (unsimplified) hull: the
    // simplified polygon is larger, so check again against it below.
    let mut exclusions = exclusion_items(&frame, &hull, no_fly, round_tolerance_m);
    let mut room = capacity.saturating_sub(exclusions.len());
    let mut simplified = simplify_outward(&ring, room.max(3));
    loop {
        let poly = geo_polygon(&frame, &simplified);
        let now = exclusion_items(&frame, &poly, no_fly, round_tolerance_m);
        if now.len() == exclusions.len() {
            break;
        }
        // Growing the polygon brought another zone in: make room for it too.
        exclusions = now;
        room = capacity.saturating_sub(exclusions.len());
        simplified = simplify_outward(&ring, room.max(3));
    }
    if simplified.len() > room || simplified.len() < 3 {
        return Err(FenceError::TooBig {
            needed: exclusions.len() + 3,
            exclusions: exclusions.len(),
            capacity,
        });
    }
    let n = simplified.len() as f32;
    let mut items: Vec<MissionItem> = simplified
        .iter()
        .map(|&(e, north)| {
            let (lat, lon) = frame.to_geo(e, north);
            vertex(POLYGON_INCLUSION, lat, lon, n)
        })
        .collect();
    items.extend(exclusions);
    Ok(items)
}

fn vertex(command: u16, lat: f64, lon: f64, param1: f32) -> MissionItem {
    let mut it = MissionItem::waypoint(lat, lon, 0.0);
    it.command = command;
    it.params = [param1, 0.0, 0.0, 0.0];
    it
}

/// The exterior ring in local metres, counter-clockwise, without the closing repeat.
fn local_ring(frame: &Frame, p: &geo::Polygon<f64>) -> Vec<(f64, f64)> {
    let pts = &p.exterior().0;
    let mut ring: Vec<(f64, f64)> = pts[..pts.len().saturating_sub(1)]
        .iter()
        .map(|c| frame.to_local(c.y, c.x))
        .collect();
    ring.dedup_by(|a, b| (a.0 - b.0).hypot(a.1 - b.1) < 1e-6);
    if signed_area(&ring) < 0.0 {
        ring.reverse();
    }
    ring
}

fn geo_polygon(frame: &Frame, ring: &[(f64, f64)]) -> geo::Polygon<f64> {
    let mut coords: Vec<geo::Coord<f64>> = ring
        .iter()
        .map(|&(e, n)| {
            let (lat, lon) = frame.to_geo(e, n);
            geo::Coord { x: lon, y: lat }
        })
        .collect();
    if let Some(&c) = coords.first() {
        coords.push(c);
    }
    geo::Polygon::new(coords.into(), vec![])
}

fn signed_area(ring: &[(f64, f64)]) -> f64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum::<f64>()
        / 2.0
}

/// Where the lines through a→b and c→d meet, if they are not parallel.
fn meet(a: (f64, f64), b: (f64, f64), c: (f64, f64), d: (f64, f64)) -> Option<(f64, f64)> {
    let r = (b.0 - a.0, b.1 - a.1);
    let s = (d.0 - c.0, d.1 - c.1);
    let den = r.0 * s.1 - r.1 * s.0;
    if den.abs() < 1e-12 {
        return None;
    }
    let t = ((c.0 - a.0) * s.1 - (c.1 - a.1) * s.0) / den;
    Some((a.0 + t * r.0, a.1 + t * r.1))
}

/// A convex counter-clockwise ring (metres) with at most `max` vertices that contains
/// `ring`: edges are removed one at a time, the cheapest first, by extending the two
/// neighbouring edges until they meet, which only ever adds area outside.
pub fn simplify_outward(ring: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    let mut r = ring.to_vec();
    while r.len() > max.max(3) {
        let n = r.len();
        let mut best: Option<(f64, usize, (f64, f64))> = None;
        for i in 0..n {
            // Remove edge (v_i, v_i+1): extend (v_i-1 → v_i) and (v_i+2 → v_i+1).
            let (prev, a, b, next) = (r[(i + n - 1) % n], r[i], r[(i + 1) % n], r[(i + 2) % n]);
            let Some(p) = meet(prev, a, next, b) else {
                continue;
            };
            // The meeting point must lie ahead of a along prev→a and ahead of b along
            // next→b, else the edges diverge and removing this edge would cut inward.
            let ahead_a = (p.0 - a.0) * (a.0 - prev.0) + (p.1 - a.1) * (a.1 - prev.1);
            let ahead_b = (p.0 - b.0) * (b.0 - next.0) + (p.1 - b.1) * (b.1 - next.1);
            if ahead_a < 0.0 || ahead_b < 0.0 {
                continue;
            }
            let added = ((b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0)).abs() / 2.0;
            if best.is_none_or(|(c, _, _)| added < c) {
                best = Some((added, i, p));
            }
        }
        let Some((_, i, p)) = best else { break };
        r[i] = p;
        r.remove((i + 1) % n);
    }
    r
}

/// A no-fly zone as one circle (centre lat/lon, radius m) holding it, when its outline is
/// round: at least 8 vertices and the circle is no more than `tolerance_m` wider than the
/// polygon anywhere.
fn as_circle(
    frame: &Frame,
    zone: &geo::Polygon<f64>,
    tolerance_m: f64,
) -> Option<((f64, f64), f64)> {
    let ring = local_ring(frame, zone);
    if ring.len() < 8 {
        return None;
    }
    let n = ring.len() as f64;
    let c = ring
        .iter()
        .fold((0.0, 0.0), |s, p| (s.0 + p.0 / n, s.1 + p.1 / n));
    let radius = ring
        .iter()
        .map(|p| (p.0 - c.0).hypot(p.1 - c.1))
        .fold(0.0, f64::max);
    // The polygon's nearest approach to the centre: its edges' distances.
    let inner = (0..ring.len())
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % ring.len()]);
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let len2 = dx * dx + dy * dy;
            let t = if len2 > 0.0 {
                (((c.0 - a.0) * dx + (c.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            (a.0 + t * dx - c.0).hypot(a.1 + t * dy - c.1)
        })
        .fold(f64::INFINITY, f64::min);
    (radius - inner <= tolerance_m).then(|| (frame.to_geo(c.0, c.1), radius))
}

/// The exclusion items for every zone that touches `area`.
fn exclusion_items(
    frame: &Frame,
    area: &geo::Polygon<f64>,
    no_fly: &[NoFlyZone],
    round_tolerance_m: f64,
) -> Vec<MissionItem> {
    // Polygons before circles, the order QGroundControl's .plan (and so our .plan files)
    // lists them in.
    let (mut out, mut circles) = (Vec::new(), Vec::new());
    for z in no_fly.iter().filter(|z| z.polygon.intersects(area)) {
        match as_circle(frame, &z.polygon, round_tolerance_m) {
            Some(((lat, lon), r)) => circles.push(vertex(CIRCLE_EXCLUSION, lat, lon, r as f32)),
            None => {
                let ring = local_ring(frame, &z.polygon);
                let n = ring.len() as f32;
                out.extend(ring.iter().map(|&(e, north)| {
                    let (lat, lon) = frame.to_geo(e, north);
                    vertex(POLYGON_EXCLUSION, lat, lon, n)
                }));
            }
        }
    }
    out.extend(circles);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::Contains;

    fn circle(c: (f64, f64), r: f64, n: usize) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| {
                let a = std::f64::consts::TAU * i as f64 / n as f64;
                (c.0 + r * a.cos(), c.1 + r * a.sin())
            })
            .collect()
    }

    #[test]
    fn simplified_ring_holds_the_original_and_fits() {
        let ring = circle((0.0, 0.0), 100.0, 72);
        for max in [3, 4, 8, 20, 71] {
            let s = simplify_outward(&ring, max);
            assert!(s.len() <= max, "{max}: {}", s.len());
            let frame = Frame::new(36.56, 103.68);
            let big = geo_polygon(&frame, &s);
            for p in &ring {
                let (lat, lon) = frame.to_geo(p.0 * 0.999_999, p.1 * 0.999_999);
                assert!(big.contains(&geo::Point::new(lon, lat)), "{max}: {p:?}");
            }
        }
    }

    #[test]
    fn round_zone_becomes_one_circle_and_far_zones_are_left_out() {
        let frame = Frame::new(36.56, 103.68);
        let zone = |c: (f64, f64), sides: usize, id: &str| NoFlyZone {
            id: id.into(),
            name: id.into(),
            polygon: geo_polygon(&frame, &circle(c, 80.0, sides)),
        };
        let near_round = zone((300.0, 0.0), 24, "round");
        let near_square = zone((0.0, 300.0), 4, "square");
        let far = zone((5000.0, 0.0), 24, "far");
        let inclusion = geo_polygon(&frame, &circle((0.0, 0.0), 400.0, 60));
        let items = fence_items(&inclusion, &[near_round, near_square, far], 64, 5.0).unwrap();
        let circles: Vec<_> = items.iter().filter(|i| i.command == 5004).collect();
        assert_eq!(circles.len(), 1);
        assert!(circles[0].params[0] >= 80.0 && circles[0].params[0] < 81.0);
        assert_eq!(items.iter().filter(|i| i.command == 5002).count(), 4);
        let inc = items.iter().filter(|i| i.command == 5001).count();
        assert_eq!(inc, 64 - 5);
        assert!(items.len() <= 64);
        // Too little room even for a triangle.
        let small = fence_items(&inclusion, &[zone((0.0, 300.0), 4, "square")], 6, 5.0);
        assert!(matches!(
            small,
            Err(FenceError::TooBig {
                exclusions: 4,
                capacity: 6,
                ..
            })
        ));
    }
}
