//! Loading a district from GeoJSON (or KML), with errors that name the feature and the
//! problem.

use std::collections::HashMap;
use std::path::Path;

use geo::{BooleanOps, BoundingRect, Centroid, Coord, Intersects, LineString, Polygon};
use serde_json::{Map, Value};

use super::{area_m2, m2_per_deg2, Datum, GridCell, GridMap, Home, Hotspot, NoFlyZone};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GridError {
    #[error("{path}: {problem}")]
    File { path: String, problem: String },
    #[error("not valid GeoJSON: {0}")]
    Parse(String),
    #[error("feature {index} ({id}): {problem}")]
    Feature {
        index: usize,
        id: String,
        problem: String,
    },
    #[error("grid id {id:?} is used by features {first} and {second}")]
    DuplicateId {
        id: String,
        first: usize,
        second: usize,
    },
    #[error("cells {a} and {b} overlap by {m2:.0} m²")]
    Overlap { a: String, b: String, m2: f64 },
    #[error("cell {id} is {km:.1} km from the others: wrong coordinates, or a different datum or projection?")]
    FarAway { id: String, km: f64 },
    #[error("no grid cells in the file")]
    Empty,
}

/// The most two cells may share before they count as overlapping (drawing slack), m².
const OVERLAP_SLACK_M2: f64 = 1.0;
/// A cell farther than this from the district's median is an error, km.
const FAR_KM: f64 = 30.0;

impl GridMap {
    /// Loads a GeoJSON (or, by extension, KML) file in `datum`.
    pub fn load(path: &Path, datum: Datum) -> Result<Self, GridError> {
        let text = std::fs::read_to_string(path).map_err(|e| GridError::File {
            path: path.display().to_string(),
            problem: e.to_string(),
        })?;
        let is_kml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("kml"));
        if is_kml {
            let gj = super::kml_to_geojson(&text)?;
            return Self::from_geojson(&gj.to_string(), datum);
        }
        Self::from_geojson(&text, datum)
    }

    /// Parses and validates a GeoJSON FeatureCollection.
    pub fn from_geojson(text: &str, datum: Datum) -> Result<Self, GridError> {
        let v: Value = serde_json::from_str(text).map_err(|e| GridError::Parse(e.to_string()))?;
        let features = match v.get("type").and_then(Value::as_str) {
            Some("FeatureCollection") => v
                .get("features")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    GridError::Parse("FeatureCollection without a features array".into())
                })?
                .clone(),
            Some("Feature") => vec![v.clone()],
            Some(other) => {
                return Err(GridError::Parse(format!(
                    "expected a FeatureCollection, found {other}"
                )))
            }
            None => return Err(GridError::Parse("no \"type\" member: not GeoJSON".into())),
        };
        let mut cells = Vec::new();
        let mut no_fly = Vec::new();
        let mut home = None;
        let mut hotspots = Vec::new();
        let mut roads = Vec::new();
        let mut warnings = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (index, f) in features.iter().enumerate() {
            let empty = Map::new();
            let props = f
                .get("properties")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let s = |k: &str| {
                props
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let kind = props.get("kind").and_then(Value::as_str).unwrap_or("grid");
            let id = [
                s("grid_id"),
                s("zone_id"),
                s("hotspot_id"),
                s("id"),
                s("name"),
            ]
            .into_iter()
            .find(|x| !x.is_empty())
            .unwrap_or_else(|| format!("#{index}"));
            let err = |problem: String| GridError::Feature {
                index,
                id: id.clone(),
                problem,
            };
            let geom = f
                .get("geometry")
                .filter(|g| !g.is_null())
                .ok_or_else(|| err("has no geometry".into()))?;
            let gtype = geom.get("type").and_then(Value::as_str).unwrap_or("?");
            // A Point feature's (lat, lon) in WGS-84.
            let point = |what: &str| -> Result<(f64, f64), GridError> {
                let c = geom
                    .get("coordinates")
                    .and_then(Value::as_array)
                    .filter(|_| gtype == "Point")
                    .ok_or_else(|| err(format!("{what} must be a Point, found {gtype}")))?;
                let (lon, lat) = position(c).map_err(err)?;
                Ok(datum.to_wgs84(lat, lon))
            };
            if kind == "hotspot" {
                let (lat, lon) = point("hotspot")?;
                hotspots.push(Hotspot {
                    id: id.clone(),
                    name: s("name"),
                    lat,
                    lon,
                    hover_s: props
                        .get("hover_s")
                        .and_then(Value::as_f64)
                        .unwrap_or(10.0)
                        .max(0.0),
                    orbit_radius_m: props
                        .get("orbit_radius_m")
                        .and_then(Value::as_f64)
                        .filter(|r| *r > 0.0),
                });
                continue;
            }
            if kind == "home" {
                let (lat, lon) = point("home")?;
                let alt_m = props.get("alt_m").and_then(Value::as_f64).unwrap_or(0.0);
                home = Some(Home { lat, lon, alt_m });
                continue;
            }
            if kind == "road" {
                let pts = geom
                    .get("coordinates")
                    .and_then(Value::as_array)
                    .filter(|_| gtype == "LineString")
                    .ok_or_else(|| err(format!("road must be a LineString, found {gtype}")))?;
                let mut coords = Vec::with_capacity(pts.len());
                for p in pts {
                    let p = p
                        .as_array()
                        .ok_or_else(|| err("road has a position that is not an array".into()))?;
                    let (lon, lat) = position(p).map_err(err)?;
                    let (lat, lon) = datum.to_wgs84(lat, lon);
                    coords.push(Coord { x: lon, y: lat });
                }
                if coords.len() < 2 {
                    return Err(err("road has fewer than 2 positions".into()));
                }
                roads.push(super::Road {
                    name: s("name"),
                    line: LineString::new(coords),
                });
                continue;
            }
            if gtype != "Polygon" {
                return Err(err(format!("geometry is {gtype}, expected Polygon")));
            }
            let rings = geom
                .get("coordinates")
                .and_then(Value::as_array)
                .ok_or_else(|| err("Polygon without coordinates".into()))?;
            let polygon = polygon(rings, datum, &mut |w| {
                warnings.push(format!("feature {index} ({id}): {w}"))
            })
            .map_err(err)?;
            match kind {
                "no_fly" => no_fly.push(NoFlyZone {
                    id: id.clone(),
                    name: s("name"),
                    polygon,
                }),
                _ => {
                    if let Some(first) = seen.insert(id.clone(), index) {
                        return Err(GridError::DuplicateId {
                            id,
                            first,
                            second: index,
                        });
                    }
                    let area_m2 = area_m2(&polygon);
                    cells.push(GridCell {
                        id: id.clone(),
                        name: s("name"),
                        kind: s("type"),
                        community: s("community"),
                        grid_worker: s("grid_worker"),
                        phone: s("phone"),
                        department: s("department"),
                        polygon,
                        area_m2,
                    });
                }
            }
        }
        if cells.is_empty() {
            return Err(GridError::Empty);
        }
        check_far(&cells)?;
        check_overlaps(&cells)?;
        let mut map = GridMap::new(cells, no_fly, home, hotspots, warnings);
        map.roads = roads;
        Ok(map)
    }
}

/// (lon, lat) of a GeoJSON position, range-checked, with a hint when they look swapped.
fn position(p: &[Value]) -> Result<(f64, f64), String> {
    let (Some(lon), Some(lat)) = (
        p.first().and_then(Value::as_f64),
        p.get(1).and_then(Value::as_f64),
    ) else {
        return Err(format!(
            "position {} is not [longitude, latitude]",
            Value::Array(p.to_vec())
        ));
    };
    if !lon.is_finite() || !lat.is_finite() || lon.abs() > 180.0 || lat.abs() > 90.0 {
        let hint = if lat.abs() > 90.0 && lat.abs() <= 180.0 && lon.abs() <= 90.0 {
            " (latitude and longitude swapped? GeoJSON is [longitude, latitude])"
        } else if lon.abs() > 180.0 || lat.abs() > 180.0 {
            " (projected metres rather than degrees?)"
        } else {
            ""
        };
        return Err(format!("coordinate [{lon}, {lat}] is out of range{hint}"));
    }
    Ok((lon, lat))
}

fn ring(v: &Value, datum: Datum, which: &str) -> Result<LineString<f64>, String> {
    let pts = v
        .as_array()
        .ok_or_else(|| format!("{which} ring is not an array"))?;
    let mut coords = Vec::with_capacity(pts.len());
    for p in pts {
        let p = p
            .as_array()
            .ok_or_else(|| format!("{which} ring has a position that is not an array"))?;
        let (lon, lat) = position(p)?;
        let (lat, lon) = datum.to_wgs84(lat, lon);
        coords.push(Coord { x: lon, y: lat });
    }
    if coords.len() < 4 {
        return Err(format!("{which} ring has {} positions; a ring needs at least 4 (3 corners and the closing one)", coords.len()));
    }
    if coords.first() != coords.last() {
        return Err(format!(
            "{which} ring is not closed: its last position must repeat the first"
        ));
    }
    let ls = LineString::new(coords);
    if let Some((i, j)) = self_intersection(&ls) {
        return Err(format!("{which} ring crosses itself (edges {i} and {j})"));
    }
    Ok(ls)
}

/// Twice the signed area: positive for counter-clockwise.
fn signed2(ls: &LineString<f64>) -> f64 {
    ls.0.windows(2)
        .map(|w| w[0].x * w[1].y - w[1].x * w[0].y)
        .sum()
}

fn polygon(
    rings: &[Value],
    datum: Datum,
    warn: &mut dyn FnMut(String),
) -> Result<Polygon<f64>, String> {
    let first = rings.first().ok_or("Polygon has no rings")?;
    let mut outer = ring(first, datum, "outer")?;
    // RFC 7946: outer rings counter-clockwise, holes clockwise. Fix, and say so.
    if signed2(&outer) < 0.0 {
        outer.0.reverse();
        warn("outer ring was clockwise; reversed (RFC 7946 wants counter-clockwise)".into());
    }
    let mut holes = Vec::new();
    for (k, h) in rings.iter().enumerate().skip(1) {
        let mut h = ring(h, datum, &format!("hole {k}"))?;
        if signed2(&h) > 0.0 {
            h.0.reverse();
            warn(format!("hole {k} was counter-clockwise; reversed"));
        }
        holes.push(h);
    }
    Ok(Polygon::new(outer, holes))
}

/// The first pair of non-adjacent edges that cross, if any.
fn self_intersection(ls: &LineString<f64>) -> Option<(usize, usize)> {
    let lines: Vec<geo::Line<f64>> = ls.lines().collect();
    let n = lines.len();
    for i in 0..n {
        for j in i + 2..n {
            if i == 0 && j == n - 1 {
                continue; // the closing edge meets the first at the start point
            }
            if lines[i].intersects(&lines[j]) {
                return Some((i, j));
            }
        }
    }
    None
}

fn check_far(cells: &[GridCell]) -> Result<(), GridError> {
    let centres: Vec<(f64, f64)> = cells
        .iter()
        .filter_map(|c| c.polygon.centroid().map(|p| (p.y(), p.x())))
        .collect();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mlat = median(centres.iter().map(|c| c.0).collect());
    let mlon = median(centres.iter().map(|c| c.1).collect());
    for (c, (lat, lon)) in cells.iter().zip(&centres) {
        let dn = (lat - mlat) * 111.32;
        let de = (lon - mlon) * 111.32 * mlat.to_radians().cos();
        let km = (dn * dn + de * de).sqrt();
        if km > FAR_KM {
            return Err(GridError::FarAway {
                id: c.id.clone(),
                km,
            });
        }
    }
    Ok(())
}

fn check_overlaps(cells: &[GridCell]) -> Result<(), GridError> {
    let rects: Vec<_> = cells.iter().map(|c| c.polygon.bounding_rect()).collect();
    for i in 0..cells.len() {
        for j in i + 1..cells.len() {
            let (Some(a), Some(b)) = (rects[i], rects[j]) else {
                continue;
            };
            let apart = a.max().x <= b.min().x
                || b.max().x <= a.min().x
                || a.max().y <= b.min().y
                || b.max().y <= a.min().y;
            if apart {
                continue;
            }
            let shared = cells[i].polygon.intersection(&cells[j].polygon);
            let lat = cells[i].polygon.exterior().0[0].y;
            let m2 = geo::Area::unsigned_area(&shared) * m2_per_deg2(lat);
            if m2 > OVERLAP_SLACK_M2 {
                return Err(GridError::Overlap {
                    a: cells[i].id.clone(),
                    b: cells[j].id.clone(),
                    m2,
                });
            }
        }
    }
    Ok(())
}
