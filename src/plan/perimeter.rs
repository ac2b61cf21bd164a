//! Perimeter patrol: fly the cell's boundary offset inward, camera on, so the photos
//! follow the edge of the cell (streets and frontages, where most issues are).

use geo::{Buffer, Centroid, Polygon};

use super::coverage::{Frame, Leg};

/// Camera-on legs around `cell` (WGS-84), `inset_m` metres inside its outer boundary.
/// A cell too thin for the inset is flown along its boundary itself.
pub fn perimeter_legs(cell: &Polygon<f64>, inset_m: f64) -> Vec<Leg> {
    let Some(c) = cell.centroid() else {
        return Vec::new();
    };
    let frame = Frame::new(c.y(), c.x());
    let local = Polygon::new(
        cell.exterior()
            .0
            .iter()
            .map(|p| frame.to_local(p.y, p.x))
            .collect::<Vec<_>>()
            .into(),
        vec![],
    );
    let inset = local.buffer(-inset_m);
    let ring: Vec<(f64, f64)> = match inset
        .0
        .iter()
        .max_by(|a, b| geo::Area::unsigned_area(*a).total_cmp(&geo::Area::unsigned_area(*b)))
    {
        Some(p) => p.exterior().0.iter().map(|c| (c.x, c.y)).collect(),
        None => local.exterior().0.iter().map(|c| (c.x, c.y)).collect(),
    };
    ring.windows(2)
        .map(|w| Leg {
            from: frame.to_geo(w[0].0, w[0].1),
            to: frame.to_geo(w[1].0, w[1].1),
            camera: true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{coord, LineString};

    #[test]
    fn a_square_is_flown_inset_all_round() {
        let f = Frame::new(36.56, 103.68);
        let p = |e: f64, n: f64| {
            let (lat, lon) = f.to_geo(e, n);
            coord! { x: lon, y: lat }
        };
        let sq = Polygon::new(
            LineString::new(vec![
                p(0.0, 0.0),
                p(200.0, 0.0),
                p(200.0, 200.0),
                p(0.0, 200.0),
                p(0.0, 0.0),
            ]),
            vec![],
        );
        let legs = perimeter_legs(&sq, 20.0);
        let total: f64 = legs
            .iter()
            .map(|l| {
                let (a, b) = (f.to_local(l.from.0, l.from.1), f.to_local(l.to.0, l.to.1));
                ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt()
            })
            .sum();
        // A 160 m square inside: 640 m round.
        assert!((total - 640.0).abs() < 2.0, "{total}");
        for l in &legs {
            let (e, n) = f.to_local(l.from.0, l.from.1);
            assert!(
                (19.0..=181.0).contains(&e) && (19.0..=181.0).contains(&n),
                "{e},{n}"
            );
        }
    }
}
