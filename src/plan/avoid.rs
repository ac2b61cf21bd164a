//! Transits that never cross a no-fly zone: the shortest path around the zones through a
//! visibility graph of their (slightly enlarged) corners.

use geo::{Buffer, Polygon};

use super::coverage::Frame;

type P = (f64, f64);

/// No-fly zones as obstacles in a local metric frame.
pub struct Obstacles {
    frame: Frame,
    /// The zones grown by the safety margin: a transit may not cut into these.
    walls: Vec<Vec<P>>,
    /// Corners a little farther out: where detours turn.
    corners: Vec<P>,
}

fn cross(o: P, a: P, b: P) -> f64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

/// Whether segments ab and cd cross at a single interior point.
fn proper_cross(a: P, b: P, c: P, d: P) -> bool {
    let (d1, d2) = (cross(c, d, a), cross(c, d, b));
    let (d3, d4) = (cross(a, b, c), cross(a, b, d));
    d1 * d2 < 0.0 && d3 * d4 < 0.0
}

fn inside(p: P, ring: &[P]) -> bool {
    let mut c = false;
    let mut j = ring.len() - 1;
    for i in 0..ring.len() {
        let (a, b) = (ring[i], ring[j]);
        if (a.1 > p.1) != (b.1 > p.1) && p.0 < (b.0 - a.0) * (p.1 - a.1) / (b.1 - a.1) + a.0 {
            c = !c;
        }
        j = i;
    }
    c
}

fn len(a: P, b: P) -> f64 {
    ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt()
}

impl Obstacles {
    /// `zones` in WGS-84 (x = lon, y = lat); `margin_m` is kept from each.
    pub fn new(frame: Frame, zones: &[Polygon<f64>], margin_m: f64) -> Self {
        let local = |poly: &Polygon<f64>| -> Polygon<f64> {
            let ring: Vec<(f64, f64)> = poly
                .exterior()
                .0
                .iter()
                .map(|c| frame.to_local(c.y, c.x))
                .collect();
            Polygon::new(ring.into(), vec![])
        };
        let ring_of =
            |p: &Polygon<f64>| -> Vec<P> { p.exterior().0.iter().map(|c| (c.x, c.y)).collect() };
        let mut walls = Vec::new();
        let mut corners = Vec::new();
        for z in zones {
            let l = local(z);
            for w in l.buffer(margin_m).0 {
                walls.push(ring_of(&w));
            }
            // Detour corners sit 5 m outside the wall so that legs between them clear it.
            for w in l.buffer(margin_m + 5.0).0 {
                let r = ring_of(&w);
                corners.extend_from_slice(&r[..r.len().saturating_sub(1)]);
            }
        }
        Self {
            frame,
            walls,
            corners,
        }
    }

    fn clear(&self, a: P, b: P) -> bool {
        for w in &self.walls {
            for e in w.windows(2) {
                if proper_cross(a, b, e[0], e[1]) {
                    return false;
                }
            }
            let mid = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
            if inside(mid, w) {
                return false;
            }
        }
        true
    }

    /// The shortest clear path from `a` to `b` ((lat, lon) degrees): the points to fly
    /// through in between (empty when the straight line is clear), and its length in metres.
    pub fn detour(&self, a: (f64, f64), b: (f64, f64)) -> (Vec<(f64, f64)>, f64) {
        let (pa, pb) = (self.frame.to_local(a.0, a.1), self.frame.to_local(b.0, b.1));
        if self.clear(pa, pb) {
            return (Vec::new(), len(pa, pb));
        }
        // Dijkstra over a, b and the corners (dense graph, a few dozen nodes).
        let mut nodes = vec![pa, pb];
        nodes.extend_from_slice(&self.corners);
        let n = nodes.len();
        let mut best = vec![f64::INFINITY; n];
        let mut prev = vec![usize::MAX; n];
        let mut done = vec![false; n];
        best[0] = 0.0;
        for _ in 0..n {
            let Some(u) = (0..n)
                .filter(|&i| !done[i] && best[i].is_finite())
                .min_by(|&i, &j| best[i].total_cmp(&best[j]))
            else {
                break;
            };
            done[u] = true;
            if u == 1 {
                break;
            }
            for v in 0..n {
                if done[v] || v == u {
                    continue;
                }
                let d = best[u] + len(nodes[u], nodes[v]);
                if d < best[v] && self.clear(nodes[u], nodes[v]) {
                    best[v] = d;
                    prev[v] = u;
                }
            }
        }
        if !best[1].is_finite() {
            // No clear way round (a or b inside a zone): say so by an infinite length.
            return (Vec::new(), f64::INFINITY);
        }
        let mut path = Vec::new();
        let mut at = prev[1];
        while at != 0 && at != usize::MAX {
            path.push(self.frame.to_geo(nodes[at].0, nodes[at].1));
            at = prev[at];
        }
        path.reverse();
        (path, best[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{coord, LineString};

    #[test]
    fn a_transit_through_a_zone_goes_round_it_and_a_clear_one_does_not() {
        let f = Frame::new(36.56, 103.68);
        // A 100 m square zone centred 500 m north.
        let p = |e: f64, n: f64| {
            let (lat, lon) = f.to_geo(e, n);
            coord! { x: lon, y: lat }
        };
        let zone = Polygon::new(
            LineString::new(vec![
                p(-50.0, 450.0),
                p(50.0, 450.0),
                p(50.0, 550.0),
                p(-50.0, 550.0),
                p(-50.0, 450.0),
            ]),
            vec![],
        );
        let obs = Obstacles::new(f, &[zone], 10.0);
        let (via, d) = obs.detour(f.to_geo(0.0, 0.0), f.to_geo(0.0, 1000.0));
        assert!(!via.is_empty());
        assert!(d > 1000.0 && d < 1030.0, "{d}");
        for w in via {
            let (e, n) = f.to_local(w.0, w.1);
            assert!(
                e.abs() >= 60.0 || !(440.0..=560.0).contains(&n),
                "turn point inside the margin: {e},{n}"
            );
        }
        let (via, d) = obs.detour(f.to_geo(200.0, 0.0), f.to_geo(200.0, 1000.0));
        assert!(via.is_empty());
        assert!((d - 1000.0).abs() < 1e-6);
    }
}
