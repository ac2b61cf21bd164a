//! PX4-like failsafes: battery, data-link loss and geofence.
//!
//! PX4 parameters and their defaults: BAT_LOW_THR 0.15 and BAT_CRIT_THR 0.07 with
//! COM_LOW_BAT_ACT "return at low, land at critical" (as configured here); COM_DL_LOSS_T
//! (10 s × the speed factor, as PX4 SITL sets it) with NAV_DLL_ACT (0 = no action, as PX4
//! ships; 2 = return), acted on after COM_FAIL_ACT_T (5 s) in Hold; GF_ACTION 2 = hold (1
//! warn, 3 return, 5 land).

#![allow(deprecated)]

use mavlink::dialects::common::{MavCmd, MISSION_ITEM_INT_DATA};

use crate::vehicle::ne_m;

/// What a failsafe asks the vehicle to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Warn,
    Hold,
    Return,
    Land,
}

impl Action {
    /// From GF_ACTION / NAV_DLL_ACT style numbers.
    pub fn from_param(v: i32) -> Option<Self> {
        match v {
            1 => Some(Self::Warn),
            2 => Some(Self::Hold),
            3 => Some(Self::Return),
            5 => Some(Self::Land),
            _ => None,
        }
    }
}

/// One geofence region from the uploaded fence plan.
#[derive(Clone, Debug)]
enum Region {
    Polygon {
        inclusion: bool,
        vertices: Vec<(f64, f64)>,
    },
    Circle {
        inclusion: bool,
        center: (f64, f64),
        radius_m: f64,
    },
}

/// The geofence as PX4 builds it from MAV_CMD_NAV_FENCE_* items.
#[derive(Clone, Debug, Default)]
pub struct Geofence {
    regions: Vec<Region>,
}

impl Geofence {
    pub fn from_items(items: &[MISSION_ITEM_INT_DATA]) -> Self {
        let mut regions = Vec::new();
        let mut i = 0;
        while i < items.len() {
            let it = &items[i];
            let deg = |x: i32| f64::from(x) * 1e-7;
            match it.command {
                MavCmd::MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION
                | MavCmd::MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION => {
                    // param1 is the vertex count of this polygon.
                    let n = (it.param1.max(1.0) as usize).min(items.len() - i);
                    let vertices = items[i..i + n]
                        .iter()
                        .map(|v| (deg(v.x), deg(v.y)))
                        .collect();
                    regions.push(Region::Polygon {
                        inclusion: it.command == MavCmd::MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
                        vertices,
                    });
                    i += n;
                    continue;
                }
                MavCmd::MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION
                | MavCmd::MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION => {
                    regions.push(Region::Circle {
                        inclusion: it.command == MavCmd::MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION,
                        center: (deg(it.x), deg(it.y)),
                        radius_m: f64::from(it.param1),
                    });
                }
                _ => {}
            }
            i += 1;
        }
        Self { regions }
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// Whether (lat, lon) in degrees breaks the fence: outside every inclusion (when
    /// there are any) or inside an exclusion.
    pub fn breached(&self, lat: f64, lon: f64) -> bool {
        let mut any_inclusion = false;
        let mut inside_inclusion = false;
        for r in &self.regions {
            let (inclusion, inside) = match r {
                Region::Polygon {
                    inclusion,
                    vertices,
                } => (*inclusion, point_in_polygon(lat, lon, vertices)),
                Region::Circle {
                    inclusion,
                    center,
                    radius_m,
                } => {
                    let (n, e) = ne_m(center.0, center.1, lat, lon);
                    (*inclusion, (n * n + e * e).sqrt() <= *radius_m)
                }
            };
            if inclusion {
                any_inclusion = true;
                inside_inclusion |= inside;
            } else if inside {
                return true;
            }
        }
        any_inclusion && !inside_inclusion
    }
}

/// Whether (lat, lon) lies inside the ring `v` of (lat, lon) vertices (even-odd rule).
pub(crate) fn point_in_polygon(lat: f64, lon: f64, v: &[(f64, f64)]) -> bool {
    let mut inside = false;
    let mut j = v.len().wrapping_sub(1);
    for i in 0..v.len() {
        let (yi, xi) = v[i];
        let (yj, xj) = v[j];
        if (yi > lat) != (yj > lat) && lon < (xj - xi) * (lat - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;
    use mavlink::dialects::common::MavCmd;

    fn vertex(lat: f64, lon: f64, cmd: MavCmd, n: f32) -> MISSION_ITEM_INT_DATA {
        MISSION_ITEM_INT_DATA {
            param1: n,
            x: (lat * 1e7) as i32,
            y: (lon * 1e7) as i32,
            command: cmd,
            ..Default::default()
        }
    }

    #[test]
    fn inclusion_polygon_and_exclusion_circle() {
        let inc = MavCmd::MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION;
        let mut items: Vec<_> = [
            (36.55, 103.67),
            (36.57, 103.67),
            (36.57, 103.69),
            (36.55, 103.69),
        ]
        .iter()
        .map(|&(a, b)| vertex(a, b, inc, 4.0))
        .collect();
        items.push(vertex(
            36.56,
            103.68,
            MavCmd::MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION,
            100.0,
        ));
        let f = Geofence::from_items(&items);
        assert!(!f.breached(36.565, 103.675));
        assert!(f.breached(36.58, 103.68), "outside the inclusion");
        assert!(f.breached(36.5601, 103.6801), "inside the exclusion circle");
    }
}
