//! `gridpatrol patrols`: check patrol definitions and show when they fire.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use gridpatrol::grid::{Datum, GridMap};
use gridpatrol::schedule::PatrolDef;

#[derive(Subcommand)]
pub enum PatrolsOp {
    /// Validate every patrol definition (*.toml) in DIR, against a district's cells.
    #[command(
        after_help = "Examples:\n  gridpatrol patrols check missions/patrols --grids missions/wenqu.geojson"
    )]
    Check {
        #[arg(default_value = "missions/patrols")]
        dir: PathBuf,
        /// The district (GeoJSON) whose cells the patrols name.
        #[arg(long, default_value = "missions/wenqu.geojson")]
        grids: PathBuf,
        #[arg(long, default_value = "wgs84")]
        datum: Datum,
    },
    /// The next firings of the patrols in DIR, in each one's time zone.
    #[command(after_help = "Examples:\n  gridpatrol patrols next missions/patrols --count 3")]
    Next {
        #[arg(default_value = "missions/patrols")]
        dir: PathBuf,
        /// How many firings per patrol.
        #[arg(long, default_value_t = 5)]
        count: usize,
        /// From this instant (RFC 3339; default now).
        #[arg(long)]
        from: Option<DateTime<Utc>>,
    },
}

pub fn patrols_cmd(op: PatrolsOp) -> Result<()> {
    match op {
        PatrolsOp::Check { dir, grids, datum } => {
            let defs = PatrolDef::load_dir(&dir)?;
            let map = GridMap::load(&grids, datum)
                .with_context(|| format!("loading {}", grids.display()))?;
            let cells: Vec<String> = map.cells.iter().map(|c| c.id.clone()).collect();
            for d in &defs {
                d.validate(Some(&cells))?;
                let timing = d
                    .schedule
                    .compile()
                    .map_err(|(f, p)| anyhow::anyhow!("patrol {:?}: schedule.{f}: {p}", d.name))?;
                let next = timing
                    .next_after(Utc::now())
                    .map(|t| t.with_timezone(&timing.tz).format("%F %R %Z").to_string())
                    .unwrap_or_else(|| "never".into());
                println!(
                    "{:<20} {} cell(s), {}, next {}{}",
                    d.name,
                    if d.cells.is_empty() {
                        cells.len()
                    } else {
                        d.cells.len()
                    },
                    d.pattern,
                    next,
                    if d.enabled { "" } else { " (disabled)" }
                );
            }
            println!("{} patrol(s) valid", defs.len());
        }
        PatrolsOp::Next { dir, count, from } => {
            let defs = PatrolDef::load_dir(&dir)?;
            let from = from.unwrap_or_else(Utc::now);
            for d in defs.iter().filter(|d| d.enabled) {
                let timing = d
                    .schedule
                    .compile()
                    .map_err(|(f, p)| anyhow::anyhow!("patrol {:?}: schedule.{f}: {p}", d.name))?;
                let mut t = from;
                let mut line = Vec::new();
                for _ in 0..count {
                    let Some(n) = timing.next_after(t) else { break };
                    line.push(n.with_timezone(&timing.tz).format("%a %F %R").to_string());
                    t = n;
                }
                println!("{:<20} {}", d.name, line.join(", "));
            }
        }
    }
    Ok(())
}
