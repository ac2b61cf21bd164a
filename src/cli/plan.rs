//! The district commands: `plan` and `grids check`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

#[derive(clap::Args)]
pub struct PlanArgs {
    /// The district's grid cells (GeoJSON).
    pub grids: PathBuf,
    #[arg(long, default_value = "wgs84")]
    pub datum: gridpatrol::grid::Datum,
    /// Cells to cover, comma separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub cells: Vec<String>,
    /// coverage, perimeter, or points (the hotspots in the grid file).
    #[arg(long, default_value = "coverage")]
    pub pattern: String,
    /// Altitude above home in metres (or give --gsd).
    #[arg(long, conflicts_with = "gsd")]
    pub alt: Option<f64>,
    /// Target ground sample distance in cm/px.
    #[arg(long)]
    pub gsd: Option<f64>,
    /// Front/side overlap in percent.
    #[arg(long, default_value = "75/65")]
    pub overlap: String,
    /// Camera preset or camera JSON file.
    #[arg(long, default_value = "1inch-20mp")]
    pub camera: String,
    /// Cruise speed in m/s.
    #[arg(long, default_value_t = 8.0)]
    pub speed: f64,
    /// Usable battery time in minutes (20 % is kept in reserve).
    #[arg(long, default_value_t = 20.0)]
    pub battery_min: f64,
    /// Sweep direction in degrees from north (default: the shortest).
    #[arg(long)]
    pub angle: Option<f64>,
    /// Run-out beyond each cell edge in metres (camera off).
    #[arg(long, default_value_t = 0.0)]
    pub turnaround: f64,
    /// Highest altitude above home any item may have, metres.
    #[arg(long, default_value_t = 120.0)]
    pub ceiling: f64,
    /// Take off from here, LAT,LON[,ALT_MSL] in the grid file's datum (default: the grid
    /// file's home; `fly` plans from the vehicle's own home).
    #[arg(long, value_parser = parse_home)]
    pub home: Option<(f64, f64, Option<f64>)>,
    /// Geofence items the vehicle holds (PX4: 64); each sortie's fence is made to fit.
    #[arg(long, default_value_t = gridpatrol::plan::fence::PX4_FENCE_CAPACITY)]
    pub fence_capacity: usize,
}

/// `gridpatrol plan`: the planner's inputs and where the plan goes.
#[derive(clap::Args)]
pub struct PlanCmd {
    #[command(flatten)]
    plan: PlanArgs,
    /// Datum of GeoJSON/KML output: wgs84 or gcj02.
    #[arg(long, default_value = "wgs84")]
    out_datum: gridpatrol::grid::Datum,
    /// Output: .plan (several sorties become OUT-1.plan, OUT-2.plan, ...), .geojson or .kml.
    #[arg(short = 'o', long, default_value = "patrol.plan")]
    out: PathBuf,
}

#[derive(Subcommand)]
pub enum GridsOp {
    /// Validate GRIDS (GeoJSON) and print a summary.
    #[command(after_help = "Examples:\n  gridpatrol grids check missions/wenqu.geojson")]
    Check {
        file: PathBuf,
        /// The datum of the file's coordinates: wgs84 or gcj02 (Chinese web maps).
        #[arg(long, default_value = "wgs84")]
        datum: gridpatrol::grid::Datum,
    },
}

/// `gridpatrol grids check`: the file validated and summarised.
pub fn grids_cmd(op: GridsOp) -> Result<()> {
    let GridsOp::Check { file, datum } = op;
    let map = gridpatrol::grid::GridMap::load(&file, datum)
        .with_context(|| format!("{} is not a valid grid file", file.display()))?;
    for w in &map.warnings {
        println!("warning: {w}");
    }
    println!(
        "{}: {} grid cells, {:.2} km², {} no-fly zones, {} hotspots, {} streets, home {}",
        file.display(),
        map.cells.len(),
        map.area_km2(),
        map.no_fly.len(),
        map.hotspots.len(),
        map.roads.len(),
        map.home.map_or("not set".into(), |h| format!(
            "{:.6},{:.6} {:.0} m",
            h.lat, h.lon, h.alt_m
        ))
    );
    let mut kinds: std::collections::BTreeMap<&str, (usize, f64)> = Default::default();
    for c in &map.cells {
        let e = kinds.entry(c.kind.as_str()).or_default();
        e.0 += 1;
        e.1 += c.area_m2 / 1e6;
    }
    for (k, (n, a)) in kinds {
        println!("  {k:<12} {n:>3} cells {a:>7.2} km²");
    }
    for z in &map.no_fly {
        println!("  no-fly {} {}", z.id, z.name);
    }
    Ok(())
}

/// `LAT,LON` or `LAT,LON,ALT` in degrees and metres.
fn parse_home(s: &str) -> Result<(f64, f64, Option<f64>), String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{s:?} is not LAT,LON[,ALT]"))?;
    match v[..] {
        [lat, lon] | [lat, lon, _]
            if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
        {
            Ok((lat, lon, v.get(2).copied()))
        }
        _ => Err(format!(
            "{s:?} is not LAT,LON[,ALT] with latitude within ±90 and longitude within ±180"
        )),
    }
}

/// The grid map and planner options an invocation asks for.
pub fn plan_inputs(
    args: &PlanArgs,
) -> Result<(gridpatrol::grid::GridMap, gridpatrol::plan::PlanOptions)> {
    use gridpatrol::plan::PlanOptions;
    let mut map = gridpatrol::grid::GridMap::load(&args.grids, args.datum)
        .with_context(|| format!("{} is not a valid grid file", args.grids.display()))?;
    if let Some((lat, lon, alt)) = args.home {
        let (lat, lon) = args.datum.to_wgs84(lat, lon);
        let alt_m = alt.or(map.home.map(|h| h.alt_m)).unwrap_or(0.0);
        map.home = Some(gridpatrol::grid::Home { lat, lon, alt_m });
    }
    let opts = PlanOptions::from_words(
        &args.pattern,
        &args.camera,
        &args.overlap,
        args.alt,
        args.gsd,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let opts = PlanOptions {
        speed_mps: args.speed,
        battery_min: args.battery_min,
        angle_deg: args.angle,
        turnaround_m: args.turnaround,
        ceiling_m: args.ceiling,
        fence_capacity: args.fence_capacity,
        ..opts
    };
    Ok((map, opts))
}

pub fn plan_cmd(args: PlanCmd) -> Result<()> {
    use gridpatrol::plan::{plan_coverage, qgc};
    let (map, opts) = plan_inputs(&args.plan)?;
    let PlanCmd {
        plan: PlanArgs { cells, speed, .. },
        out_datum,
        out,
    } = args;
    let pattern = opts.pattern;
    let started = std::time::Instant::now();
    let plan = plan_coverage(&map, &cells, &opts)?;
    let took = started.elapsed();
    let s = plan.survey;
    println!(
        "altitude {:.1} m above home (terrain taken as flat), GSD {:.2} cm/px, footprint {:.1} x {:.1} m, lines {:.1} m apart, photo every {:.1} m",
        s.altitude_m, s.gsd_cm, s.footprint_side_m, s.footprint_frontal_m, s.line_spacing_m, s.trigger_distance_m
    );
    println!(
        "{:>6} {:>9} {:>9} {:>7} {:>6} {:>6} {:>8}  cells",
        "sortie", "length", "time", "photos", "turns", "items", "battery"
    );
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("plan")
        .to_ascii_lowercase();
    match ext.as_str() {
        "geojson" | "json" => std::fs::write(
            &out,
            serde_json::to_string_pretty(&gridpatrol::plan::export::geojson(&plan, out_datum))?,
        )?,
        "kml" => std::fs::write(&out, gridpatrol::plan::export::kml(&plan, out_datum))?,
        "plan" => {}
        other => bail!("unknown output type .{other}: use .plan, .geojson or .kml"),
    }
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "patrol".into());
    let dir = out.parent().map(PathBuf::from).unwrap_or_default();
    for (i, so) in plan.sorties.iter().enumerate() {
        println!(
            "{:>6} {:>7.0} m {:>6.1} min {:>7} {:>6} {:>6} {:>7.0} %  {}",
            i + 1,
            so.length_m,
            so.flight_time_s / 60.0,
            so.photos,
            so.turns,
            so.items.len(),
            so.battery_pct,
            so.cells.join(",")
        );
        if ext != "plan" {
            continue;
        }
        let doc = qgc::plan_json(&so.items, plan.home, speed, &so.fence_items);
        let path = if plan.sorties.len() == 1 {
            out.clone()
        } else {
            dir.join(format!("{stem}-{}.plan", i + 1))
        };
        std::fs::write(&path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let bound = if matches!(pattern, gridpatrol::plan::Pattern::Coverage) {
        let total: f64 = plan.sorties.iter().map(|s| s.length_m).sum();
        let lb = gridpatrol::plan::route_lower_bound(&map, &cells, &opts, &plan.survey);
        format!(
            " against a lower bound of {:.1} km (area / line spacing); whole route {:.1} km against an estimate of {:.1} km (the bound plus the transit the battery forces; an estimate, not a bound)",
            plan.sweep_lower_bound_m / 1000.0,
            total / 1000.0,
            lb.total_m() / 1000.0
        )
    } else {
        String::new()
    };
    let written = if ext == "plan" && plan.sorties.len() > 1 {
        format!(
            "{} … {}",
            dir.join(format!("{stem}-1.plan")).display(),
            dir.join(format!("{stem}-{}.plan", plan.sorties.len()))
                .display()
        )
    } else {
        out.display().to_string()
    };
    println!(
        "camera-on {:.1} km{bound}; planned in {:.1} ms; {} sortie(s) written to {written}",
        plan.sweep_m / 1000.0,
        took.as_secs_f64() * 1000.0,
        plan.sorties.len(),
    );
    Ok(())
}
