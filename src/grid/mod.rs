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

#[derive(Debug)]
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
#[derive(Debug)]
pub struct GridMap {
    pub cells: Vec<GridCell>,
    pub no_fly: Vec<NoFlyZone>,
    pub home: Option<Home>,
    pub hotspots: Vec<Hotspot>,
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
pub fn area_m2_of(p: &Polygon<f64>) -> f64 {
    area_m2(p)
}

pub(crate) fn area_m2(p: &Polygon<f64>) -> f64 {
    let lat = p.exterior().0.first().map_or(0.0, |c| c.y);
    p.unsigned_area() * m2_per_deg2(lat)
}
