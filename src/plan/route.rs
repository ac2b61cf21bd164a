//! From cells to sorties: order the cells (nearest neighbour, then 2-opt), cover each,
//! split into battery-sized sorties that start and end at home, and emit MAVLink items.

use geo::{BooleanOps, Buffer, Centroid, MultiPolygon};
use serde::Serialize;

use super::avoid::Obstacles;
use super::camera::{Camera, CameraError, Survey};
use super::coverage::{coverage_route, Frame, Leg};
use crate::grid::{GridCell, GridMap, Home};
use crate::vehicle::MissionItem;

/// Distance kept from every no-fly zone, metres: GPS error and wind gusts must not
/// carry the vehicle in.
pub const NO_FLY_MARGIN_M: f64 = 10.0;

/// The largest mission PX4 flight controllers hold.
pub const MAX_ITEMS: usize = 500;

#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub camera: Camera,
    /// Altitude above home, metres.
    pub altitude_m: f64,
    pub front_overlap_pct: f64,
    pub side_overlap_pct: f64,
    /// Cruise speed, m/s.
    pub speed_mps: f64,
    /// Usable flight time of a full battery, minutes.
    pub battery_min: f64,
    /// Share of the battery kept in reserve at landing, percent.
    pub reserve_pct: f64,
    /// Highest altitude above home any item may have, metres (PX4/China rules: 120 m).
    pub ceiling_m: f64,
    /// Fixed sweep direction (degrees from north) or the shortest.
    pub angle_deg: Option<f64>,
    /// Run-out beyond each cell edge, metres.
    pub turnaround_m: f64,
    pub pattern: Pattern,
    /// Geofence items the vehicle holds (PX4: 64).
    pub fence_capacity: usize,
}

/// What to fly over each cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pattern {
    /// Photograph all of it (boustrophedon).
    Coverage,
    /// Fly its boundary this many metres inside (None: half an image footprint).
    Perimeter { inset_m: Option<f64> },
    /// Visit the district's hotspots in the chosen cells: hover, photograph, orbit.
    Points,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            camera: Camera::presets().remove(0),
            altitude_m: 60.0,
            front_overlap_pct: 75.0,
            side_overlap_pct: 65.0,
            speed_mps: 8.0,
            battery_min: 20.0,
            reserve_pct: 20.0,
            ceiling_m: 120.0,
            angle_deg: None,
            turnaround_m: 0.0,
            pattern: Pattern::Coverage,
            fence_capacity: super::fence::PX4_FENCE_CAPACITY,
        }
    }
}

impl PlanOptions {
    /// Options from the words a user writes (`gridpatrol plan`'s flags, a patrol
    /// definition): the pattern (`coverage`, `perimeter` or `points`), a camera preset or
    /// camera JSON file, the overlap as "FRONT/SIDE" percent, and the altitude above home in
    /// metres or the ground sample distance in cm/px (default 60 m). The rest as default.
    pub fn from_words(
        pattern: &str,
        camera: &str,
        overlap: &str,
        alt_m: Option<f64>,
        gsd_cm: Option<f64>,
    ) -> Result<Self, String> {
        let pattern = match pattern {
            "coverage" => Pattern::Coverage,
            "perimeter" => Pattern::Perimeter { inset_m: None },
            "points" => Pattern::Points,
            other => {
                return Err(format!(
                    "unknown pattern {other:?}: coverage, perimeter or points"
                ))
            }
        };
        let camera = Camera::find(camera).map_err(|e| e.to_string())?;
        let (front, side) = overlap
            .split_once('/')
            .and_then(|(f, s)| Some((f.trim().parse::<f64>().ok()?, s.trim().parse::<f64>().ok()?)))
            .ok_or_else(|| format!("overlap {overlap:?} is not FRONT/SIDE, e.g. 75/65"))?;
        let altitude_m = match (alt_m, gsd_cm) {
            (Some(a), _) => a,
            (None, Some(g)) => camera.altitude_for_gsd(g),
            (None, None) => 60.0,
        };
        Ok(Self {
            camera,
            altitude_m,
            front_overlap_pct: front,
            side_overlap_pct: side,
            pattern,
            ..Self::default()
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error(transparent)]
    Camera(#[from] CameraError),
    #[error("altitude {alt} m is above the ceiling of {ceiling} m above home")]
    AboveCeiling { alt: f64, ceiling: f64 },
    #[error("the grid file sets no home; give one")]
    NoHome,
    #[error("unknown cell {0:?}")]
    UnknownCell(String),
    #[error("cell {0} is entirely inside no-fly zones")]
    AllNoFly(String),
    #[error("home lies in no-fly zone {0}")]
    HomeInNoFly(String),
    #[error("hotspot {0} lies in a no-fly zone")]
    HotspotInNoFly(String),
    #[error("the battery budget ({0:.0} s) does not even reach the first sweep and back")]
    BatteryTooSmall(f64),
    #[error("sortie {sortie}: {source}")]
    Fence {
        sortie: usize,
        source: super::fence::FenceError,
    },
}

/// One flight from home and back.
#[derive(Clone, Debug, Serialize)]
pub struct Sortie {
    pub cells: Vec<String>,
    #[serde(skip)]
    pub items: Vec<MissionItem>,
    pub length_m: f64,
    pub flight_time_s: f64,
    pub photos: u32,
    pub turns: u32,
    /// Battery used, percent of a full one.
    pub battery_pct: f64,
    /// An inclusion geofence holding the whole flight: its cells, home and every
    /// waypoint, FENCE_MARGIN_M around their convex hull (WGS-84, x = lon).
    #[serde(skip)]
    pub fence: geo::Polygon<f64>,
    /// The geofence as uploaded: `fence` simplified outward to fit the vehicle, and the
    /// no-fly zones the sortie can reach (see [`super::fence`]).
    #[serde(skip)]
    pub fence_items: Vec<MissionItem>,
}

/// Room left between a sortie's route and its inclusion fence, metres.
pub const FENCE_MARGIN_M: f64 = 30.0;

/// The convex hull of `points` ((lat, lon) degrees) grown by `margin_m`.
fn fence_around(frame: &Frame, points: &[(f64, f64)], margin_m: f64) -> geo::Polygon<f64> {
    use geo::ConvexHull;
    let local: geo::MultiPoint<f64> = points
        .iter()
        .map(|p| geo::Point::from(frame.to_local(p.0, p.1)))
        .collect();
    let hull = local.convex_hull().buffer(margin_m);
    let ring: Vec<geo::Coord<f64>> = hull
        .0
        .first()
        .map(|p| p.exterior().0.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let (lat, lon) = frame.to_geo(c.x, c.y);
            geo::Coord { x: lon, y: lat }
        })
        .collect();
    geo::Polygon::new(ring.into(), vec![])
}

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub survey: Survey,
    pub home: Home,
    pub sorties: Vec<Sortie>,
    /// Lower bound of sweep length: covered area / line spacing, metres.
    pub sweep_lower_bound_m: f64,
    pub sweep_m: f64,
}

/// Seconds a multicopter loses per 180° turn (decelerate, turn, accelerate at 3 m/s²).
fn turn_time(speed: f64) -> f64 {
    2.0 * speed / 3.0
}

fn dist(frame: &Frame, a: (f64, f64), b: (f64, f64)) -> f64 {
    let (x0, y0) = frame.to_local(a.0, a.1);
    let (x1, y1) = frame.to_local(b.0, b.1);
    ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt()
}

/// Orders points to make a short closed tour from `start`: nearest neighbour, then 2-opt.
pub fn order_tour(frame: &Frame, start: (f64, f64), points: &[(f64, f64)]) -> Vec<usize> {
    let mut left: Vec<usize> = (0..points.len()).collect();
    let mut tour = Vec::with_capacity(points.len());
    let mut at = start;
    while !left.is_empty() {
        let (k, _) = left
            .iter()
            .enumerate()
            .map(|(k, &i)| (k, dist(frame, at, points[i])))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        let i = left.swap_remove(k);
        at = points[i];
        tour.push(i);
    }
    // 2-opt on the closed tour home → tour → home.
    let p = |k: usize, tour: &[usize]| {
        if k == 0 || k == tour.len() + 1 {
            start
        } else {
            points[tour[k - 1]]
        }
    };
    let mut improved = true;
    while improved {
        improved = false;
        for i in 1..tour.len() {
            for j in i + 1..=tour.len() {
                let (a, b, c, d) = (p(i - 1, &tour), p(i, &tour), p(j, &tour), p(j + 1, &tour));
                if dist(frame, a, c) + dist(frame, b, d) + 1e-9
                    < dist(frame, a, b) + dist(frame, c, d)
                {
                    tour[i - 1..j].reverse();
                    improved = true;
                }
            }
        }
    }
    tour
}

struct CellRoute<'a> {
    cell: &'a GridCell,
    legs: Vec<Leg>,
}

/// Plans coverage of `cell_ids` (all cells when empty).
pub fn plan_coverage(
    map: &GridMap,
    cell_ids: &[String],
    opts: &PlanOptions,
) -> Result<Plan, PlanError> {
    let home = map.home.ok_or(PlanError::NoHome)?;
    if let Some(z) = map.in_no_fly(home.lat, home.lon) {
        return Err(PlanError::HomeInNoFly(z.id.clone()));
    }
    under_ceiling(opts)?;
    let survey = opts.camera.survey(
        opts.altitude_m,
        opts.front_overlap_pct,
        opts.side_overlap_pct,
    )?;
    let cells: Vec<&GridCell> = if cell_ids.is_empty() {
        map.cells.iter().collect()
    } else {
        cell_ids
            .iter()
            .map(|id| {
                map.cell(id)
                    .ok_or_else(|| PlanError::UnknownCell(id.clone()))
            })
            .collect::<Result<_, _>>()?
    };
    let frame = Frame::new(home.lat, home.lon);
    let centres: Vec<(f64, f64)> = cells
        .iter()
        .map(|c| {
            c.polygon
                .centroid()
                .map_or((home.lat, home.lon), |p| (p.y(), p.x()))
        })
        .collect();
    let order = order_tour(&frame, (home.lat, home.lon), &centres);
    // No-fly zones grow by a safety margin (in degrees of longitude, the shorter ones, so at
    // least NO_FLY_MARGIN_M in every direction) before they are cut out of the cells.
    let margin_deg = NO_FLY_MARGIN_M / (111_320.0 * home.lat.to_radians().cos());
    let no_fly = MultiPolygon::new(
        map.no_fly
            .iter()
            .flat_map(|z| z.polygon.buffer(margin_deg).0)
            .collect(),
    );
    let mut routes = Vec::new();
    let mut area = 0.0;
    let sweep_order = if opts.pattern == Pattern::Points {
        Vec::new()
    } else {
        order
    };
    let mut at = (home.lat, home.lon);
    for i in sweep_order {
        let cell = cells[i];
        // No-fly zones are cut out of the cell before it is swept.
        let flyable = if no_fly.0.is_empty() {
            MultiPolygon::new(vec![cell.polygon.clone()])
        } else {
            cell.polygon.difference(&no_fly)
        };
        if flyable.0.is_empty() {
            return Err(PlanError::AllNoFly(cell.id.clone()));
        }
        let mut legs = Vec::new();
        for part in &flyable.0 {
            area += crate::grid::area_m2_of(part);
            match opts.pattern {
                Pattern::Coverage => {
                    if let Some(r) = coverage_route(
                        part,
                        survey.line_spacing_m,
                        opts.angle_deg,
                        opts.turnaround_m,
                    ) {
                        legs.extend(r.legs);
                    }
                }
                Pattern::Perimeter { inset_m } => {
                    let inset = inset_m.unwrap_or(survey.footprint_side_m / 2.0);
                    legs.extend(super::perimeter::perimeter_legs(part, inset));
                }
                Pattern::Points => {}
            }
        }
        // Enter the cell at the end of its route nearer to where the last one finished.
        if let (Some(first), Some(last)) = (legs.first(), legs.last()) {
            if dist(&frame, at, last.to) < dist(&frame, at, first.from) {
                legs.reverse();
                for l in &mut legs {
                    std::mem::swap(&mut l.from, &mut l.to);
                }
            }
        }
        if let Some(l) = legs.last() {
            at = l.to;
        }
        routes.push(CellRoute { cell, legs });
    }
    let zones: Vec<_> = map.no_fly.iter().map(|z| z.polygon.clone()).collect();
    let obstacles = Obstacles::new(frame, &zones, NO_FLY_MARGIN_M);
    let (budget, vertical) = budget_and_vertical(opts);
    let max_sweep = (opts.speed_mps * (budget - vertical) / 3.0).max(1.0);
    let (sweeps, names) = if opts.pattern == Pattern::Points {
        hotspot_visits(map, &cells, &frame, home, opts)?
    } else {
        line_sweeps(&frame, &routes, max_sweep, opts.turnaround_m)
    };
    // Each sweep's cell by index: its id and its outline (for the sortie's fence).
    let named: Vec<(String, geo::Polygon<f64>)> = names
        .into_iter()
        .filter_map(|id| map.cell(&id).map(|c| (id, c.polygon.clone())))
        .collect();
    let mut sorties = split_sorties(&frame, &obstacles, home, sweeps, &named, &survey, opts)?;
    for (i, s) in sorties.iter_mut().enumerate() {
        // A zone drawn round may become one circle if that grows it by under half the
        // margin the route keeps from it.
        s.fence_items = super::fence::fence_items(
            &s.fence,
            &map.no_fly,
            opts.fence_capacity,
            NO_FLY_MARGIN_M / 2.0,
        )
        .map_err(|source| PlanError::Fence {
            sortie: i + 1,
            source,
        })?;
    }
    let sweep_m = routes
        .iter()
        .flat_map(|r| r.legs.iter())
        .filter(|l| l.camera)
        .map(|l| dist(&frame, l.from, l.to))
        .sum::<f64>();
    Ok(Plan {
        survey,
        home,
        sorties,
        sweep_lower_bound_m: area / survey.line_spacing_m,
        sweep_m,
    })
}

/// A sweep line with the camera on: start, end.
#[derive(Clone, Copy)]
struct Sweep {
    /// Index into the names of cells.
    cell: usize,
    from: (f64, f64),
    to: (f64, f64),
    /// For a hotspot (from == to): seconds to hover, and an orbit radius (0: none), m.
    hover_s: f64,
    orbit_m: f64,
    /// Run-out flown before and after a sweep with the camera off, metres.
    run_m: f64,
}

impl Sweep {
    /// Where the vehicle enters and leaves the sweep, run-outs included.
    fn ends(&self, frame: &Frame) -> ((f64, f64), (f64, f64)) {
        if self.run_m <= 0.0 || self.from == self.to {
            return (self.from, self.to);
        }
        let (a, b) = (
            frame.to_local(self.from.0, self.from.1),
            frame.to_local(self.to.0, self.to.1),
        );
        let l = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt().max(1e-9);
        let (dx, dy) = ((b.0 - a.0) / l * self.run_m, (b.1 - a.1) / l * self.run_m);
        (
            frame.to_geo(a.0 - dx, a.1 - dy),
            frame.to_geo(b.0 + dx, b.1 + dy),
        )
    }
}

/// The usable flight time in seconds, and the seconds spent climbing and descending.
pub(crate) fn budget_and_vertical(opts: &PlanOptions) -> (f64, f64) {
    // Climb and descent at PX4's 3 m/s up and 1.5 m/s down.
    (
        opts.battery_min * 60.0 * (1.0 - opts.reserve_pct / 100.0),
        opts.altitude_m / 3.0 + opts.altitude_m / 1.5,
    )
}

/// The camera-on legs of every cell, a sweep longer than `max_sweep` metres cut into
/// pieces so that a long road cell still fits in sorties.
fn line_sweeps(
    frame: &Frame,
    routes: &[CellRoute],
    max_sweep: f64,
    run_m: f64,
) -> (Vec<Sweep>, Vec<String>) {
    let mut sweeps = Vec::new();
    for (ci, r) in routes.iter().enumerate() {
        for l in r.legs.iter().filter(|l| l.camera) {
            let n = (dist(frame, l.from, l.to) / max_sweep).ceil().max(1.0) as usize;
            let at = |f: f64| {
                (
                    l.from.0 + (l.to.0 - l.from.0) * f,
                    l.from.1 + (l.to.1 - l.from.1) * f,
                )
            };
            for k in 0..n {
                sweeps.push(Sweep {
                    cell: ci,
                    from: at(k as f64 / n as f64),
                    to: at((k + 1) as f64 / n as f64),
                    hover_s: 0.0,
                    orbit_m: 0.0,
                    // Pieces of one long sweep join up: run-outs only at its true ends.
                    run_m: if n == 1 { run_m } else { 0.0 },
                });
            }
        }
    }
    (sweeps, routes.iter().map(|r| r.cell.id.clone()).collect())
}

/// The hotspots inside the chosen cells, in a short tour from home.
fn hotspot_visits(
    map: &GridMap,
    cells: &[&GridCell],
    frame: &Frame,
    home: Home,
    _opts: &PlanOptions,
) -> Result<(Vec<Sweep>, Vec<String>), PlanError> {
    let mut names: Vec<String> = Vec::new();
    let mut spots = Vec::new();
    for h in &map.hotspots {
        let Some(cell) = map.cell_at(h.lat, h.lon) else {
            continue;
        };
        if !cells.iter().any(|c| c.id == cell.id) {
            continue;
        }
        if map.in_no_fly(h.lat, h.lon).is_some() {
            return Err(PlanError::HotspotInNoFly(h.id.clone()));
        }
        let ci = match names.iter().position(|n| *n == cell.id) {
            Some(i) => i,
            None => {
                names.push(cell.id.clone());
                names.len() - 1
            }
        };
        spots.push((ci, h));
    }
    let points: Vec<(f64, f64)> = spots.iter().map(|(_, h)| (h.lat, h.lon)).collect();
    let order = order_tour(frame, (home.lat, home.lon), &points);
    let sweeps = order
        .into_iter()
        .map(|i| {
            let (ci, h) = spots[i];
            Sweep {
                cell: ci,
                from: (h.lat, h.lon),
                to: (h.lat, h.lon),
                hover_s: h.hover_s,
                orbit_m: h.orbit_radius_m.unwrap_or(0.0),
                run_m: 0.0,
            }
        })
        .collect();
    Ok((sweeps, names))
}

fn split_sorties(
    frame: &Frame,
    obstacles: &Obstacles,
    home: Home,
    mut sweeps: Vec<Sweep>,
    named: &[(String, geo::Polygon<f64>)],
    survey: &Survey,
    opts: &PlanOptions,
) -> Result<Vec<Sortie>, PlanError> {
    let (budget, vertical) = budget_and_vertical(opts);
    let h = (home.lat, home.lon);
    let mut sorties = Vec::new();
    let mut i = 0;
    while i < sweeps.len() {
        let mut time = vertical;
        let mut at = h;
        let mut length = 0.0;
        // Each taken sweep with the detour that leads to it.
        let mut taken: Vec<(usize, Vec<(f64, f64)>)> = Vec::new();
        let mut items_needed = 3; // takeoff, speed, return
                                  // The way home from the last sweep taken, and its length (m).
        let mut home_detour: Vec<(f64, f64)> = Vec::new();
        let mut home_back = 0.0;
        while i < sweeps.len() {
            let s = &sweeps[i];
            let (entry, exit) = s.ends(frame);
            let (via, to_start) = obstacles.detour(at, entry);
            let orbit = 2.0 * std::f64::consts::PI * s.orbit_m;
            let sweep = dist(frame, entry, exit) + orbit;
            let (back_via, back) = obstacles.detour(exit, h);
            let add = (to_start + sweep) / opts.speed_mps + turn_time(opts.speed_mps) + s.hover_s;
            // Items: detour waypoints, then a sweep's two waypoints and trigger on/off, or a
            // hotspot's waypoint and photo (and an orbit's ring with trigger on/off).
            let own = item_count(s);
            let needed = items_needed + via.len() + own + back_via.len();
            // An unreachable sweep (infinite detour) never fits.
            let fits = time + add + back / opts.speed_mps <= budget;
            if !fits || needed > MAX_ITEMS {
                break;
            }
            items_needed += via.len() + own;
            time += add;
            length += to_start + sweep;
            at = exit;
            home_detour = back_via;
            home_back = back;
            taken.push((i, via));
            i += 1;
        }
        if taken.is_empty() {
            // Not even this one sweep fits: fly it in halves (down to 10 m pieces).
            let s = &sweeps[i];
            if s.from == s.to || dist(frame, s.from, s.to) < 20.0 {
                return Err(PlanError::BatteryTooSmall(budget));
            }
            let mid = ((s.from.0 + s.to.0) / 2.0, (s.from.1 + s.to.1) / 2.0);
            let (first, second) = (Sweep { to: mid, ..*s }, Sweep { from: mid, ..*s });
            sweeps.splice(i..=i, [first, second]);
            continue;
        }
        length += home_back;
        time += home_back / opts.speed_mps;
        let alt = opts.altitude_m as f32;
        let mut items = vec![MissionItem::takeoff(home.lat, home.lon, alt)];
        // DO_CHANGE_SPEED: ground speed.
        items.push(MissionItem::action(
            178,
            [1.0, opts.speed_mps as f32, -1.0, 0.0],
        ));
        let mut photos = 0u32;
        let mut cells: Vec<String> = Vec::new();
        for (k, via) in &taken {
            let s = &sweeps[*k];
            let id = &named[s.cell].0;
            if cells.last() != Some(id) {
                cells.push(id.clone());
            }
            items.extend(via.iter().map(|p| MissionItem::waypoint(p.0, p.1, alt)));
            if s.from == s.to {
                photos += hotspot_items(frame, s, alt, survey, &mut items);
                continue;
            }
            let (entry, exit) = s.ends(frame);
            if entry != s.from {
                items.push(MissionItem::waypoint(entry.0, entry.1, alt));
            }
            items.push(MissionItem::waypoint(s.from.0, s.from.1, alt));
            items.push(trigger(survey.trigger_distance_m));
            items.push(MissionItem::waypoint(s.to.0, s.to.1, alt));
            items.push(trigger(0.0));
            if exit != s.to {
                items.push(MissionItem::waypoint(exit.0, exit.1, alt));
            }
            photos += (dist(frame, s.from, s.to) / survey.trigger_distance_m).floor() as u32 + 1;
        }
        // PX4's RTL flies straight home: go round any zone in the way first.
        items.extend(
            home_detour
                .iter()
                .map(|p| MissionItem::waypoint(p.0, p.1, alt)),
        );
        items.push(MissionItem::return_to_launch());
        let mut corners = vec![h];
        corners.extend(
            items
                .iter()
                .filter(|i| i.command == 16)
                .map(|i| (i.lat(), i.lon())),
        );
        for id in &cells {
            if let Some((_, poly)) = named.iter().find(|(n, _)| n == id) {
                corners.extend(poly.exterior().0.iter().map(|p| (p.y, p.x)));
            }
        }
        let fence = fence_around(frame, &corners, FENCE_MARGIN_M);
        sorties.push(Sortie {
            fence,
            fence_items: Vec::new(),
            cells,
            items,
            length_m: length,
            flight_time_s: time,
            photos,
            turns: taken.len() as u32,
            battery_pct: 100.0 * time / (opts.battery_min * 60.0),
        });
    }
    Ok(sorties)
}

/// Every item flies at the plan's altitude: it must not be above the ceiling.
fn under_ceiling(opts: &PlanOptions) -> Result<(), PlanError> {
    if opts.altitude_m > opts.ceiling_m {
        return Err(PlanError::AboveCeiling {
            alt: opts.altitude_m,
            ceiling: opts.ceiling_m,
        });
    }
    Ok(())
}

/// A hotspot's items: hover over it (NAV_WAYPOINT param1 is the hold time), one photo,
/// and an orbit's ring with the camera triggering by distance; the photos planned.
fn hotspot_items(
    frame: &Frame,
    s: &Sweep,
    alt: f32,
    survey: &Survey,
    items: &mut Vec<MissionItem>,
) -> u32 {
    let mut wp = MissionItem::waypoint(s.from.0, s.from.1, alt);
    wp.params[0] = s.hover_s as f32;
    items.push(wp);
    items.push(single_photo());
    let mut photos = 1;
    if s.orbit_m > 0.0 {
        let (e0, n0) = frame.to_local(s.from.0, s.from.1);
        items.push(trigger(survey.trigger_distance_m));
        for k in 0..=ORBIT_POINTS {
            let a = 2.0 * std::f64::consts::PI * k as f64 / ORBIT_POINTS as f64;
            let (lat, lon) = frame.to_geo(e0 + s.orbit_m * a.sin(), n0 + s.orbit_m * a.cos());
            items.push(MissionItem::waypoint(lat, lon, alt));
        }
        items.push(trigger(0.0));
        photos += (2.0 * std::f64::consts::PI * s.orbit_m / survey.trigger_distance_m) as u32 + 1;
    }
    photos
}

/// One hotspot visited by a vehicle already in the air at `at` ((lat, lon) degrees): round
/// the no-fly zones to it, its hover, photo and orbit, round them again to home, and
/// RTL. No takeoff: the mission starts where the vehicle is. Its fence holds `at`, home,
/// the route and the hotspot's cell.
pub fn plan_visit_from_air(
    map: &GridMap,
    spot: &crate::grid::Hotspot,
    at: (f64, f64),
    opts: &PlanOptions,
) -> Result<Sortie, PlanError> {
    let home = map.home.ok_or(PlanError::NoHome)?;
    under_ceiling(opts)?;
    if map.in_no_fly(spot.lat, spot.lon).is_some() {
        return Err(PlanError::HotspotInNoFly(spot.id.clone()));
    }
    let survey = opts.camera.survey(
        opts.altitude_m,
        opts.front_overlap_pct,
        opts.side_overlap_pct,
    )?;
    let frame = Frame::new(home.lat, home.lon);
    let zones: Vec<_> = map.no_fly.iter().map(|z| z.polygon.clone()).collect();
    let obstacles = Obstacles::new(frame, &zones, NO_FLY_MARGIN_M);
    let point = (spot.lat, spot.lon);
    let (there, there_m) = obstacles.detour(at, point);
    let (back, back_m) = obstacles.detour(point, (home.lat, home.lon));
    let alt = opts.altitude_m as f32;
    let mut items = vec![MissionItem::action(
        178,
        [1.0, opts.speed_mps as f32, -1.0, 0.0],
    )];
    items.extend(there.iter().map(|p| MissionItem::waypoint(p.0, p.1, alt)));
    let visit = Sweep {
        cell: 0,
        from: point,
        to: point,
        hover_s: spot.hover_s,
        orbit_m: spot.orbit_radius_m.unwrap_or(0.0),
        run_m: 0.0,
    };
    let photos = hotspot_items(&frame, &visit, alt, &survey, &mut items);
    items.extend(back.iter().map(|p| MissionItem::waypoint(p.0, p.1, alt)));
    items.push(MissionItem::return_to_launch());
    let orbit_m = 2.0 * std::f64::consts::PI * visit.orbit_m;
    let length = there_m + orbit_m + back_m;
    let time = length / opts.speed_mps + visit.hover_s + opts.altitude_m / 1.5;
    let mut corners = vec![at, (home.lat, home.lon)];
    corners.extend(
        items
            .iter()
            .filter(|i| i.command == 16)
            .map(|i| (i.lat(), i.lon())),
    );
    let cell = map.cell_at(spot.lat, spot.lon);
    if let Some(c) = cell {
        corners.extend(c.polygon.exterior().0.iter().map(|p| (p.y, p.x)));
    }
    let fence = fence_around(&frame, &corners, FENCE_MARGIN_M);
    let fence_items = super::fence::fence_items(
        &fence,
        &map.no_fly,
        opts.fence_capacity,
        NO_FLY_MARGIN_M / 2.0,
    )
    .map_err(|source| PlanError::Fence { sortie: 1, source })?;
    Ok(Sortie {
        cells: cell.map(|c| vec![c.id.clone()]).unwrap_or_default(),
        items,
        length_m: length,
        flight_time_s: time,
        photos,
        turns: 1,
        battery_pct: 100.0 * time / (opts.battery_min * 60.0),
        fence,
        fence_items,
    })
}

/// Waypoints on an orbit around a hotspot (plus one to close it).
const ORBIT_POINTS: usize = 12;

/// How many mission items a sweep or hotspot visit takes.
fn item_count(s: &Sweep) -> usize {
    if s.from != s.to {
        if s.run_m > 0.0 {
            6
        } else {
            4
        }
    } else if s.orbit_m > 0.0 {
        2 + 2 + ORBIT_POINTS + 1
    } else {
        2
    }
}

/// MAV_CMD_IMAGE_START_CAPTURE for one photo.
fn single_photo() -> MissionItem {
    MissionItem::action(2000, [0.0, 0.0, 1.0, 0.0])
}

/// MAV_CMD_DO_SET_CAM_TRIGG_DIST: photos every `metres` (0 stops).
fn trigger(metres: f64) -> MissionItem {
    MissionItem::action(206, [metres as f32, 0.0, 1.0, 0.0])
}
