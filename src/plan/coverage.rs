//! Area coverage (boustrophedon): parallel sweep lines across a cell, flown back and
//! forth, the sweep angle chosen to make the route shortest. Concave cells and holes are
//! split by a boustrophedon cellular decomposition into regions flown one after another,
//! joined camera-off.
//!
//! Works in a local east/north frame in metres around the cell (equirectangular: under
//! 0.1 % error across a few kilometres); returns WGS-84 degrees.

use geo::{Centroid, Polygon};
use serde::Serialize;

/// One straight piece of route: (lat, lon) degrees at both ends.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Leg {
    pub from: (f64, f64),
    pub to: (f64, f64),
    /// Whether photos are taken along it (a sweep) or not (a transit or turnaround).
    pub camera: bool,
}

/// A coverage route over one cell.
#[derive(Clone, Debug, Serialize)]
pub struct CoverageRoute {
    pub legs: Vec<Leg>,
    /// Sweep direction, degrees clockwise from north.
    pub angle_deg: f64,
    /// Metres of sweep (camera on) and in all.
    pub sweep_m: f64,
    pub length_m: f64,
    /// Number of sweep lines flown.
    pub lines: usize,
}

/// Local metric frame around a reference point.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    lat0: f64,
    lon0: f64,
    mx: f64,
    my: f64,
}

impl Frame {
    pub fn new(lat0: f64, lon0: f64) -> Self {
        Self {
            lat0,
            lon0,
            mx: 111_320.0 * lat0.to_radians().cos(),
            my: 111_320.0,
        }
    }

    /// (lat, lon) degrees to (east, north) metres.
    pub fn to_local(&self, lat: f64, lon: f64) -> (f64, f64) {
        ((lon - self.lon0) * self.mx, (lat - self.lat0) * self.my)
    }

    /// (east, north) metres to (lat, lon) degrees.
    pub fn to_geo(&self, e: f64, n: f64) -> (f64, f64) {
        (self.lat0 + n / self.my, self.lon0 + e / self.mx)
    }
}

/// A leg in the local (rotated) frame: from, to, camera on.
type RawLeg = ((f64, f64), (f64, f64), bool);

fn rotate((x, y): (f64, f64), s: f64, c: f64) -> (f64, f64) {
    (x * c - y * s, x * s + y * c)
}

/// The x-intervals where the horizontal line `y` is inside the rings (even-odd rule).
fn intervals(rings: &[Vec<(f64, f64)>], y: f64) -> Vec<(f64, f64)> {
    let mut xs = Vec::new();
    for r in rings {
        for w in r.windows(2) {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            // Half-open: a vertex on the line counts for one of its two edges only.
            if (y0 <= y) != (y1 <= y) {
                xs.push(x0 + (y - y0) * (x1 - x0) / (y1 - y0));
            }
        }
    }
    xs.sort_by(f64::total_cmp);
    xs.chunks_exact(2)
        .map(|p| (p[0], p[1]))
        .filter(|(a, b)| b - a > 1e-6)
        .collect()
}

/// One region of a boustrophedon decomposition: consecutive sweep lines with one interval
/// each, (y, x0, x1) in the rotated frame, where no line splits or merges.
type Region = Vec<(f64, f64, f64)>;

/// Boustrophedon cellular decomposition on the sweep lines (Choset's, sampled at the
/// lines): an interval continues the region of the interval before it when each is the
/// other's only overlapping neighbour; a split or merge (a concave vertex or a hole) starts
/// new regions. Each region is then flown back and forth on its own, so a U-shaped cell is
/// swept arm by arm instead of hopping across the gap on every line.
fn regions(lines: &[(f64, Vec<(f64, f64)>)]) -> Vec<Region> {
    let overlaps = |a: (f64, f64), b: (f64, f64)| a.0.max(b.0) < a.1.min(b.1);
    let mut out: Vec<Region> = Vec::new();
    // The region each interval of the previous line belongs to.
    let mut prev_region: Vec<usize> = Vec::new();
    for (i, (y, iv)) in lines.iter().enumerate() {
        let mut this_region = Vec::with_capacity(iv.len());
        for &cur in iv {
            let preds: Vec<usize> = match i {
                0 => Vec::new(),
                _ => (0..lines[i - 1].1.len())
                    .filter(|&k| overlaps(lines[i - 1].1[k], cur))
                    .collect(),
            };
            let continues = match preds.as_slice() {
                [k] => {
                    let succs = iv
                        .iter()
                        .filter(|&&o| overlaps(lines[i - 1].1[*k], o))
                        .count();
                    (succs == 1).then(|| prev_region[*k])
                }
                _ => None,
            };
            let r = continues.unwrap_or_else(|| {
                out.push(Vec::new());
                out.len() - 1
            });
            out[r].push((*y, cur.0, cur.1));
            this_region.push(r);
        }
        prev_region = this_region;
    }
    out
}

/// Sweeps the rotated rings: lines `spacing` apart (at most), regions of the decomposition
/// flown one after another (each entered at whichever corner is nearest), each interval
/// extended by `turnaround` metres both ends with the camera off. Returns legs in the
/// rotated frame.
fn sweep(rings: &[Vec<(f64, f64)>], spacing: f64, turnaround: f64) -> (Vec<RawLeg>, usize) {
    let (ymin, ymax) = rings
        .iter()
        .flatten()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let n = ((ymax - ymin) / spacing).ceil().max(1.0) as usize;
    let step = (ymax - ymin) / n as f64;
    let lines: Vec<(f64, Vec<(f64, f64)>)> = (0..n)
        .map(|i| {
            let y = ymin + (i as f64 + 0.5) * step;
            (y, intervals(rings, y))
        })
        .filter(|(_, iv)| !iv.is_empty())
        .collect();
    let count = lines.len();
    let mut todo = regions(&lines);
    let mut legs = Vec::new();
    let mut at: Option<(f64, f64)> = None;
    while !todo.is_empty() {
        // The region and entry (from its first or last line, leftwards or rightwards)
        // nearest to where the route is; the first region starts at its first line's left.
        let mut best = (0, false, true, f64::MAX);
        for (r, reg) in todo.iter().enumerate() {
            for from_top in [false, true] {
                let line = if from_top { reg[reg.len() - 1] } else { reg[0] };
                for rightwards in [true, false] {
                    let x = if rightwards { line.1 } else { line.2 };
                    let d = at.map_or(if from_top || !rightwards { 1.0 } else { 0.0 }, |p| {
                        (p.0 - x).hypot(p.1 - line.0)
                    });
                    if d < best.3 {
                        best = (r, from_top, rightwards, d);
                    }
                }
            }
        }
        let (r, from_top, mut forward, _) = best;
        let mut reg = todo.swap_remove(r);
        if from_top {
            reg.reverse();
        }
        for (y, a0, b0) in reg {
            let (a, b) = if forward { (a0, b0) } else { (b0, a0) };
            let dir = if forward { 1.0 } else { -1.0 };
            if turnaround > 0.0 {
                legs.push(((a - dir * turnaround, y), (a, y), false));
            }
            legs.push(((a, y), (b, y), true));
            if turnaround > 0.0 {
                legs.push(((b, y), (b + dir * turnaround, y), false));
            }
            at = Some((
                b + if turnaround > 0.0 {
                    dir * turnaround
                } else {
                    0.0
                },
                y,
            ));
            forward = !forward;
        }
    }
    // Join consecutive legs with camera-off transits.
    let mut joined = Vec::with_capacity(legs.len() * 2);
    for leg in legs {
        if let Some(&(_, end, _)) = joined.last() {
            let end: (f64, f64) = end;
            if (end.0 - leg.0 .0).abs() > 1e-9 || (end.1 - leg.0 .1).abs() > 1e-9 {
                joined.push((end, leg.0, false));
            }
        }
        joined.push(leg);
    }
    (joined, count)
}

fn length(legs: &[RawLeg]) -> (f64, f64) {
    legs.iter().fold((0.0, 0.0), |(all, cam), (a, b, c)| {
        let d = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        (all + d, if *c { cam + d } else { cam })
    })
}

/// Covers `cell` (WGS-84, x = lon, y = lat) with sweep lines at most `spacing_m` apart.
/// `angle_deg`: a fixed sweep direction (clockwise from north), or `None` to choose the
/// one giving the shortest route. `turnaround_m`: run-out beyond each edge.
pub fn coverage_route(
    cell: &Polygon<f64>,
    spacing_m: f64,
    angle_deg: Option<f64>,
    turnaround_m: f64,
) -> Option<CoverageRoute> {
    if !super::camera::positive(spacing_m) {
        return None;
    }
    let c = cell.centroid()?;
    let frame = Frame::new(c.y(), c.x());
    let local: Vec<Vec<(f64, f64)>> = std::iter::once(cell.exterior())
        .chain(cell.interiors())
        .map(|r| r.0.iter().map(|p| frame.to_local(p.y, p.x)).collect())
        .collect();
    let evaluate = |deg: f64| {
        // Sweep lines run along `deg` (clockwise from north); rotate so they are horizontal.
        let th = (90.0 - deg).to_radians();
        let (s, co) = (-th).sin_cos();
        let rot: Vec<Vec<(f64, f64)>> = local
            .iter()
            .map(|r| r.iter().map(|&p| rotate(p, s, co)).collect())
            .collect();
        let (legs, lines) = sweep(&rot, spacing_m, turnaround_m);
        let (len, cam) = length(&legs);
        (len, cam, legs, lines, th)
    };
    let best = match angle_deg {
        Some(a) => evaluate(a.rem_euclid(180.0)),
        None => (0..180)
            .map(|d| evaluate(d as f64))
            .min_by(|a, b| a.0.total_cmp(&b.0))?,
    };
    let (len, cam, legs, lines, th) = best;
    let (s, co) = th.sin_cos();
    let back = |p: (f64, f64)| {
        let (e, n) = rotate(p, s, co);
        frame.to_geo(e, n)
    };
    Some(CoverageRoute {
        legs: legs
            .into_iter()
            .map(|(a, b, camera)| Leg {
                from: back(a),
                to: back(b),
                camera,
            })
            .collect(),
        angle_deg: (90.0 - th.to_degrees()).rem_euclid(180.0),
        sweep_m: cam,
        length_m: len,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{coord, LineString};

    fn rect(w_m: f64, h_m: f64) -> Polygon<f64> {
        let f = Frame::new(36.56, 103.68);
        let p = |e, n| {
            let (lat, lon) = f.to_geo(e, n);
            coord! { x: lon, y: lat }
        };
        Polygon::new(
            LineString::new(vec![
                p(0.0, 0.0),
                p(w_m, 0.0),
                p(w_m, h_m),
                p(0.0, h_m),
                p(0.0, 0.0),
            ]),
            vec![],
        )
    }

    #[test]
    fn a_long_rectangle_is_swept_along_its_length() {
        // 600 m east-west by 100 m: the shortest sweep runs (nearly) east-west.
        let r = coverage_route(&rect(600.0, 100.0), 30.0, None, 0.0).unwrap();
        assert!((r.angle_deg - 90.0).abs() <= 10.0, "{}", r.angle_deg);
        // Never less sweep than the lower bound area / spacing = 2000 m; at exactly 90° it
        // would be 4 lines of 600 m.
        assert!(
            r.sweep_m >= 2000.0 - 1.0 && r.sweep_m <= 2400.0 + 1.0,
            "{}",
            r.sweep_m
        );
        let east = coverage_route(&rect(600.0, 100.0), 30.0, Some(90.0), 0.0).unwrap();
        assert_eq!(east.lines, 4);
        assert!((east.sweep_m - 2400.0).abs() < 5.0, "{}", east.sweep_m);
        // Three 25 m steps between the four lines.
        assert!(
            (east.length_m - (east.sweep_m + 75.0)).abs() < 5.0,
            "{}",
            east.length_m
        );
        assert!(r.length_m <= east.length_m + 1e-6);
        let fixed = coverage_route(&rect(600.0, 100.0), 30.0, Some(0.0), 0.0).unwrap();
        assert_eq!(fixed.lines, 20);
        assert!(fixed.length_m > r.length_m);
    }

    #[test]
    fn a_u_shaped_cell_is_swept_arm_by_arm() {
        // 300 m square with a 100 m wide notch cut 200 m down from the north side.
        let f = Frame::new(36.56, 103.68);
        let p = |e, n| {
            let (lat, lon) = f.to_geo(e, n);
            coord! { x: lon, y: lat }
        };
        let u = Polygon::new(
            LineString::new(vec![
                p(0.0, 0.0),
                p(300.0, 0.0),
                p(300.0, 300.0),
                p(200.0, 300.0),
                p(200.0, 100.0),
                p(100.0, 100.0),
                p(100.0, 300.0),
                p(0.0, 300.0),
                p(0.0, 0.0),
            ]),
            vec![],
        );
        // East-west lines 20 m apart: 15 lines, ten of them cut in two by the notch.
        let r = coverage_route(&u, 20.0, Some(90.0), 0.0).unwrap();
        let off = r.length_m - r.sweep_m;
        // Three regions (the base, then each arm): 22 line changes of 20 m and the hops
        // between regions, under one crossing of the cell (300 m). Flying line by line
        // would cross the 100 m gap on all ten split lines instead (over 1,000 m).
        assert!(off <= 22.0 * 20.0 + 300.0, "{off} m camera off");
        assert!(
            (r.sweep_m - (5.0 * 300.0 + 10.0 * 200.0)).abs() < 5.0,
            "{}",
            r.sweep_m
        );
    }

    #[test]
    fn a_hole_splits_lines_and_is_not_photographed() {
        let f = Frame::new(36.56, 103.68);
        let p = |e, n| {
            let (lat, lon) = f.to_geo(e, n);
            coord! { x: lon, y: lat }
        };
        let outer = LineString::new(vec![
            p(0.0, 0.0),
            p(300.0, 0.0),
            p(300.0, 300.0),
            p(0.0, 300.0),
            p(0.0, 0.0),
        ]);
        let hole = LineString::new(vec![
            p(100.0, 100.0),
            p(100.0, 200.0),
            p(200.0, 200.0),
            p(200.0, 100.0),
            p(100.0, 100.0),
        ]);
        let r = coverage_route(&Polygon::new(outer, vec![hole]), 20.0, Some(90.0), 0.0).unwrap();
        // 15 lines of 300 m less the 100 m hole on the 5 lines through it.
        assert!(
            (r.sweep_m - (15.0 * 300.0 - 5.0 * 100.0)).abs() < 5.0,
            "{}",
            r.sweep_m
        );
        for leg in r.legs.iter().filter(|l| l.camera) {
            let mid = f.to_local((leg.from.0 + leg.to.0) / 2.0, (leg.from.1 + leg.to.1) / 2.0);
            assert!(
                !(mid.0 > 101.0 && mid.0 < 199.0 && mid.1 > 101.0 && mid.1 < 199.0),
                "photographing the hole at {mid:?}"
            );
        }
    }
}
