//! Grid cells (网格): loading and validating a district's boundaries, datums, and the
//! spatial index that answers "which cell is this point in".
//!
//! Input is a GeoJSON FeatureCollection. Features with `"kind": "grid"` (or no kind) are
//! cells, `"no_fly"` are no-fly zones, a Point with `"kind": "home"` is the dock. Cells
//! are stored in WGS-84 with x = longitude and y = latitude, in degrees.

mod datum;
mod kml;
mod load;

use geo::{Area, BoundingRect, Contains, Point, Polygon};
use rstar::{RTree, RTreeObject, AABB};
use serde::Serialize;

pub use datum::{gcj02_to_wgs84, wgs84_to_gcj02, Datum};
pub use kml::kml_to_geojson;
pub use load::GridError;

/// One grid cell and who answers for it.
#[derive(Clone, Debug, Serialize)]
pub struct GridCell {
    pub id: String,
    pub name: String,
    /// campus, residential, commercial, park, road, ...
    pub kind: String,
    pub community: String,
    pub grid_worker: String,
    pub phone: String,
    pub department: String,
    /// WGS-84, x = longitude, y = latitude (degrees); outer ring counter-clockwise.
    #[serde(skip)]
    pub polygon: Polygon<f64>,
    /// Area in square metres.
    pub area_m2: f64,
}

/// Airspace nobody may enter.
#[derive(Clone, Debug, Serialize)]
pub struct NoFlyZone {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub polygon: Polygon<f64>,
}

/// A street, drawn on the map as the district's own base layer (nothing flies by it).
#[derive(Clone, Debug, Serialize)]
pub struct Road {
    pub name: String,
    #[serde(skip)]
    pub line: geo::LineString<f64>,
}

/// A place to look at closely on a points patrol (a school gate, a market, a bus hub).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hotspot {
    pub id: String,
    pub name: String,
    /// WGS-84 degrees.
    pub lat: f64,
    pub lon: f64,
    /// Seconds to hover there.
    pub hover_s: f64,
    /// Radius of an orbit around it, metres, if one is wanted.
    pub orbit_radius_m: Option<f64>,
}

/// Where the drones take off and land (the dock), WGS-84 degrees and metres AMSL.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Home {
    pub lat: f64,
    pub lon: f64,
    pub alt_m: f64,
}

#[derive(Clone, Debug)]
struct Indexed {
    cell: usize,
    envelope: AABB<[f64; 2]>,
}

impl RTreeObject for Indexed {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.envelope
    }
}

/// A validated district.
#[derive(Clone, Debug)]
pub struct GridMap {
    pub cells: Vec<GridCell>,
    pub no_fly: Vec<NoFlyZone>,
    pub home: Option<Home>,
    pub hotspots: Vec<Hotspot>,
    /// Streets (`"kind": "road"` LineStrings), for the map only.
    pub roads: Vec<Road>,
    /// What was fixed while loading (e.g. a ring turned the right way round).
    pub warnings: Vec<String>,
    index: RTree<Indexed>,
}

/// Square metres per square degree at latitude `lat` (degrees).
pub(crate) fn m2_per_deg2(lat: f64) -> f64 {
    let m = 111_320.0;
    m * m * lat.to_radians().cos()
}

impl GridMap {
    pub(crate) fn new(
        cells: Vec<GridCell>,
        no_fly: Vec<NoFlyZone>,
        home: Option<Home>,
        hotspots: Vec<Hotspot>,
        warnings: Vec<String>,
    ) -> Self {
        let index = RTree::bulk_load(
            cells
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let r = c.polygon.bounding_rect()?;
                    Some(Indexed {
                        cell: i,
                        envelope: AABB::from_corners(
                            [r.min().x, r.min().y],
                            [r.max().x, r.max().y],
                        ),
                    })
                })
                .collect(),
        );
        Self {
            cells,
            no_fly,
            home,
            hotspots,
            roads: Vec::new(),
            warnings,
            index,
        }
    }

    /// The cell containing (lat, lon) WGS-84 degrees, if any.
    pub fn cell_at(&self, lat: f64, lon: f64) -> Option<&GridCell> {
        let p = Point::new(lon, lat);
        self.index
            .locate_in_envelope_intersecting(AABB::from_point([lon, lat]))
            .map(|i| &self.cells[i.cell])
            .find(|c| c.polygon.contains(&p))
    }

    /// The cell containing (lat, lon), or else the nearest cell whose boundary is within
    /// `radius_m` metres: a point placed just outside its cell by a geotag error of that
    /// size still belongs to it.
    pub fn cell_near(&self, lat: f64, lon: f64, radius_m: f64) -> Option<&GridCell> {
        if let Some(c) = self.cell_at(lat, lon) {
            return Some(c);
        }
        let m_per_deg_lat = 111_320.0;
        let m_per_deg_lon = 111_320.0 * lat.to_radians().cos();
        let (dlat, dlon) = (radius_m / m_per_deg_lat, radius_m / m_per_deg_lon.max(1.0));
        let env = AABB::from_corners([lon - dlon, lat - dlat], [lon + dlon, lat + dlat]);
        let to_ring = |c: &GridCell| distance_to_ring_m(lat, lon, c.polygon.exterior());
        self.index
            .locate_in_envelope_intersecting(env)
            .map(|i| &self.cells[i.cell])
            .map(|c| (c, to_ring(c)))
            .filter(|(_, d)| *d <= radius_m)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(c, _)| c)
    }

    pub fn cell(&self, id: &str) -> Option<&GridCell> {
        self.cells.iter().find(|c| c.id == id)
    }

    /// Total area of the cells in km².
    pub fn area_km2(&self) -> f64 {
        self.cells.iter().map(|c| c.area_m2).sum::<f64>() / 1e6
    }

    /// Whether (lat, lon) lies in a no-fly zone.
    pub fn in_no_fly(&self, lat: f64, lon: f64) -> Option<&NoFlyZone> {
        let p = Point::new(lon, lat);
        self.no_fly.iter().find(|z| z.polygon.contains(&p))
    }
}

/// Area of a WGS-84 polygon in square metres.
/// Distance in metres from (lat, lon) degrees to the nearest point of a ring (x = lon),
/// segment by segment in a local equirectangular frame (fine over a district).
pub fn distance_to_ring_m(lat: f64, lon: f64, ring: &geo::LineString<f64>) -> f64 {
    let m_per_deg_lat = 111_320.0;
    let m_per_deg_lon = 111_320.0 * lat.to_radians().cos();
    let pts: Vec<(f64, f64)> = ring
        .points()
        .map(|p| ((p.x() - lon) * m_per_deg_lon, (p.y() - lat) * m_per_deg_lat))
        .collect();
    pts.windows(2)
        .map(|w| {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            let (dx, dy) = (x1 - x0, y1 - y0);
            let len2 = dx * dx + dy * dy;
            let t = if len2 > 0.0 {
                (-(x0 * dx + y0 * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            (x0 + t * dx).hypot(y0 + t * dy)
        })
        .fold(f64::INFINITY, f64::min)
}

pub fn area_m2_of(p: &Polygon<f64>) -> f64 {
    area_m2(p)
}

pub(crate) fn area_m2(p: &Polygon<f64>) -> f64 {
    let lat = p.exterior().0.first().map_or(0.0, |c| c.y);
    p.unsigned_area() * m2_per_deg2(lat)
}
