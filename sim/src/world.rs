//! The world: city issues placed at WGS-84 coordinates, each with a category and a size.
//! Only the simulator (and tests and accuracy figures) may read it; gridpatrol never does.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// The issue categories the city cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 占道堆物: road occupation / piled objects.
    PiledObjects,
    /// 跨门经营: out-of-store business.
    OutOfStoreBusiness,
    /// 流动摊点: mobile vendors.
    MobileVendor,
    /// 非机动车乱停放: illegal bike parking.
    BikeParking,
    /// 城市牛皮癣: illegal posters.
    IllegalPoster,
    /// 人员聚集: crowd gathering.
    Crowd,
    /// 环境卫生: garbage / sanitation.
    Garbage,
    /// 火情: fire and smoke.
    FireSmoke,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Self::PiledObjects,
        Self::OutOfStoreBusiness,
        Self::MobileVendor,
        Self::BikeParking,
        Self::IllegalPoster,
        Self::Crowd,
        Self::Garbage,
        Self::FireSmoke,
    ];

    /// Typical footprint range (length of the longer side) in metres.
    pub fn size_range_m(self) -> (f64, f64) {
        match self {
            Self::PiledObjects => (1.5, 3.0),
            Self::OutOfStoreBusiness => (2.5, 4.5),
            Self::MobileVendor => (1.5, 2.5),
            Self::BikeParking => (2.5, 5.0),
            Self::IllegalPoster => (0.8, 1.5),
            Self::Crowd => (4.0, 8.0),
            Self::Garbage => (1.0, 2.5),
            Self::FireSmoke => (2.0, 5.0),
        }
    }
}

/// One issue on the ground.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IssueObject {
    pub id: u32,
    pub category: Category,
    /// Degrees, WGS-84.
    pub lat: f64,
    pub lon: f64,
    /// Footprint length and width in metres.
    pub size_m: (f64, f64),
    /// Orientation of the long side, degrees clockwise from north.
    pub heading_deg: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct World {
    pub name: String,
    /// Ground altitude in metres AMSL (flat ground for now).
    pub ground_alt_m: f64,
    pub objects: Vec<IssueObject>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error("{path}: {problem}")]
    File { path: String, problem: String },
    #[error("grid file has no polygons to place issues in")]
    NoPolygons,
}

impl World {
    /// The sample world shipped in sim/worlds/sample.json: 80 issues in 1.2 km × 1.2 km
    /// around the default home.
    pub fn sample() -> Self {
        serde_json::from_str(include_str!("../worlds/sample.json")).unwrap_or_default()
    }

    pub fn load(path: &Path) -> Result<Self, WorldError> {
        let err = |problem: String| WorldError::File {
            path: path.display().to_string(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| err(e.to_string()))
    }

    pub fn save(&self, path: &Path) -> Result<(), WorldError> {
        let err = |problem: String| WorldError::File {
            path: path.display().to_string(),
            problem,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| err(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| err(e.to_string()))
    }

    /// Places `n` issues uniformly inside `polygons` (each a ring of (lat, lon) degrees),
    /// categories in turn so every category is represented, at least `min_gap_m` apart.
    pub fn generate(
        polygons: &[Vec<(f64, f64)>],
        n: usize,
        seed: u64,
        ground_alt_m: f64,
    ) -> Result<Self, WorldError> {
        let rings: Vec<&Vec<(f64, f64)>> = polygons.iter().filter(|p| p.len() >= 3).collect();
        if rings.is_empty() {
            return Err(WorldError::NoPolygons);
        }
        let (mut lat0, mut lat1, mut lon0, mut lon1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in rings.iter().flat_map(|r| r.iter()) {
            lat0 = lat0.min(p.0);
            lat1 = lat1.max(p.0);
            lon0 = lon0.min(p.1);
            lon1 = lon1.max(p.1);
        }
        let mut rng = Rng::new(seed);
        let mut objects: Vec<IssueObject> = Vec::with_capacity(n);
        let min_gap_m = 15.0;
        let mut tries = 0;
        while objects.len() < n && tries < n * 1000 {
            tries += 1;
            let lat = lat0 + (lat1 - lat0) * rng.next_f64();
            let lon = lon0 + (lon1 - lon0) * rng.next_f64();
            if !rings
                .iter()
                .any(|r| crate::failsafe::point_in_polygon(lat, lon, r))
            {
                continue;
            }
            let close = objects.iter().any(|o| {
                let (dn, de) = crate::vehicle::ne_m(o.lat, o.lon, lat, lon);
                (dn * dn + de * de).sqrt() < min_gap_m
            });
            if close {
                continue;
            }
            let category = Category::ALL[objects.len() % Category::ALL.len()];
            let (lo, hi) = category.size_range_m();
            let length = lo + (hi - lo) * rng.next_f64();
            let width = length * (0.5 + 0.5 * rng.next_f64());
            objects.push(IssueObject {
                id: objects.len() as u32 + 1,
                category,
                lat,
                lon,
                size_m: (length, width),
                heading_deg: 180.0 * rng.next_f64(),
            });
        }
        Ok(Self {
            name: format!("generated, seed {seed}"),
            ground_alt_m,
            objects,
        })
    }

    /// The polygons (outer rings, (lat, lon) degrees) of a GeoJSON file.
    pub fn polygons_from_geojson(path: &Path) -> Result<Vec<Vec<(f64, f64)>>, WorldError> {
        let err = |problem: String| WorldError::File {
            path: path.display().to_string(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let gj: geojson::GeoJson = text
            .parse()
            .map_err(|e: geojson::Error| err(e.to_string()))?;
        let mut out = Vec::new();
        // The outer ring of each polygon, as (lat, lon).
        let outer = |rings: &Vec<Vec<geojson::Position>>| -> Option<Vec<(f64, f64)>> {
            let r = rings.first()?;
            Some(
                r.iter()
                    .filter(|p| p.len() >= 2)
                    .map(|p| (p[1], p[0]))
                    .collect(),
            )
        };
        let mut take = |g: &geojson::Geometry| match &g.value {
            geojson::GeometryValue::Polygon { coordinates } => out.extend(outer(coordinates)),
            geojson::GeometryValue::MultiPolygon { coordinates } => {
                out.extend(coordinates.iter().filter_map(outer))
            }
            _ => {}
        };
        // Grid cells only: no-fly zones and the home point are not places for issues.
        let is_cell = |f: &&geojson::Feature| {
            f.properties
                .as_ref()
                .and_then(|p| p.get("kind"))
                .and_then(|k| k.as_str())
                .is_none_or(|k| k == "grid")
        };
        match &gj {
            geojson::GeoJson::FeatureCollection(fc) => fc
                .features
                .iter()
                .filter(is_cell)
                .filter_map(|f| f.geometry.as_ref())
                .for_each(&mut take),
            geojson::GeoJson::Feature(f) => f.geometry.iter().for_each(&mut take),
            geojson::GeoJson::Geometry(g) => take(g),
        }
        Ok(out)
    }

    /// A square of `half_m` metres around (lat, lon), as a polygon.
    pub fn square(lat: f64, lon: f64, half_m: f64) -> Vec<(f64, f64)> {
        let dlat = half_m / 111_320.0;
        let dlon = half_m / (111_320.0 * lat.to_radians().cos());
        vec![
            (lat - dlat, lon - dlon),
            (lat + dlat, lon - dlon),
            (lat + dlat, lon + dlon),
            (lat - dlat, lon + dlon),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_world_loads() {
        assert_eq!(World::sample().objects.len(), 80);
    }

    #[test]
    fn generation_is_deterministic_inside_and_covers_every_category() {
        let area = vec![World::square(36.56, 103.68, 300.0)];
        let a = World::generate(&area, 40, 9, 1800.0).unwrap();
        let b = World::generate(&area, 40, 9, 1800.0).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.objects.len(), 40);
        for c in Category::ALL {
            assert!(a.objects.iter().any(|o| o.category == c));
        }
        assert!(a
            .objects
            .iter()
            .all(|o| crate::failsafe::point_in_polygon(o.lat, o.lon, &area[0])));
        assert_ne!(a, World::generate(&area, 40, 10, 1800.0).unwrap());
    }
}
