//! `gridpatrol events …`: the closed loop at the command line.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Subcommand;
use gridpatrol::detect::Category;
use gridpatrol::events::{now_us, Action, EventState, EventStore, GridEvent};
use gridpatrol::grid::Datum;
use gridpatrol::store::DbSpec;

#[derive(Subcommand)]
pub enum EventsOp {
    /// List events (optionally of one state, category or cell).
    #[command(
        after_help = "Examples:\n  gridpatrol events list --cell WQ-24\n  gridpatrol events list --state reported --overdue"
    )]
    List {
        #[arg(long)]
        state: Option<EventState>,
        #[arg(long)]
        category: Option<Category>,
        #[arg(long)]
        cell: Option<String>,
        /// Only those past their deadline.
        #[arg(long)]
        overdue: bool,
    },
    /// One event with its evidence and audit trail.
    #[command(after_help = "Examples:\n  gridpatrol events show 1")]
    Show { id: i64 },
    /// 签收: accept an event.
    #[command(after_help = "Examples:\n  gridpatrol events sign 1 --by 赵艳")]
    Sign(Who),
    /// 派遣: send it to a department and handler.
    #[command(
        after_help = "Examples:\n  gridpatrol events dispatch 1 --by 赵艳 --department 环卫所 --handler 李师傅 --deadline-hours 24"
    )]
    Dispatch {
        #[command(flatten)]
        who: Who,
        #[arg(long)]
        department: String,
        #[arg(long)]
        handler: String,
        /// Hours to fix it (default: per category).
        #[arg(long)]
        deadline_hours: Option<f64>,
    },
    /// 处置: work starts.
    #[command(after_help = "Examples:\n  gridpatrol events start 1 --by 王队长")]
    Start(Who),
    /// 流转: hand it to another department.
    #[command(
        after_help = "Examples:\n  gridpatrol events transfer 1 --by 李师傅 --department 城管中队 --handler 王队长 --note 占道经营归城管"
    )]
    Transfer {
        #[command(flatten)]
        who: Who,
        #[arg(long)]
        department: String,
        #[arg(long)]
        handler: String,
    },
    /// 反馈: fixed, with feedback and photos.
    #[command(
        after_help = "Examples:\n  gridpatrol events resolve 1 --by 王队长 --feedback 已清理"
    )]
    Resolve {
        #[command(flatten)]
        who: Who,
        #[arg(long)]
        feedback: String,
        #[arg(long = "photo")]
        photos: Vec<String>,
    },
    /// 评价: rate the fix, 1 to 5.
    #[command(after_help = "Examples:\n  gridpatrol events evaluate 1 --by 赵艳 --rating 5")]
    Evaluate {
        #[command(flatten)]
        who: Who,
        #[arg(long)]
        rating: u8,
    },
    /// 结案: close it.
    #[command(after_help = "Examples:\n  gridpatrol events close 1 --by 赵艳")]
    Close(Who),
    /// Write every event as GeoJSON.
    #[command(
        after_help = "Examples:\n  gridpatrol events export --datum gcj02 -o events.geojson"
    )]
    Export {
        #[arg(long, default_value = "wgs84")]
        datum: Datum,
        /// Output file (default: stdout).
        #[arg(short = 'o', long)]
        out: Option<std::path::PathBuf>,
    },
    /// Figures as the city reports them.
    #[command(after_help = "Examples:\n  gridpatrol events stats")]
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct Who {
    /// The event.
    id: i64,
    /// Who acts (recorded in the audit trail).
    #[arg(long)]
    by: String,
    #[arg(long, default_value = "")]
    note: String,
}

fn time(us: i64) -> String {
    let s = us / 1_000_000;
    let (days, rem) = (s.div_euclid(86_400), s.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn line(e: &GridEvent, now: i64) -> String {
    format!(
        "{:>5}  {:<22} {:<12} {:<8} {:.6},{:.6} ±{:.1} m  {} sightings{}{}",
        e.id,
        e.category.as_str(),
        e.state.as_str(),
        e.cell_id.as_deref().unwrap_or("OUTSIDE"),
        e.lat,
        e.lon,
        e.uncertainty_m,
        e.sightings,
        if e.overdue(now) { "  OVERDUE" } else { "" },
        if e.confirmed { "  fix confirmed" } else { "" },
    )
}

fn act(store: &EventStore, who: &Who, action: Action) -> Result<()> {
    let e = store.apply(who.id, &action, &who.by, &who.note, now_us())?;
    println!("{}", line(&e, now_us()));
    Ok(())
}

pub fn events_cmd(data: &Path, db: Option<DbSpec>, op: EventsOp) -> Result<()> {
    let db = db.unwrap_or_else(|| DbSpec::in_dir(data));
    if let DbSpec::Sqlite(path) = &db {
        if !path.exists() {
            anyhow::bail!(
                "no event database at {} (run a patrol first, or give --data DIR or --db)",
                path.display()
            );
        }
    }
    let store = EventStore::connect(&db).with_context(|| format!("opening {db}"))?;
    let now = now_us();
    match op {
        EventsOp::List {
            state,
            category,
            cell,
            overdue,
        } => {
            for e in store.list(state, category, cell.as_deref())? {
                if !overdue || e.overdue(now) {
                    println!("{}", line(&e, now));
                }
            }
        }
        EventsOp::Show { id } => {
            let e = store.get(id)?;
            println!("{}", line(&e, now));
            if let Some(into) = e.merged_into {
                println!(
                    "  the same object as event {into}, merged into it (see `events show {into}`)"
                );
            }
            println!(
                "  {} ({}), found by {}, first seen {}, last seen {}",
                e.category.chinese(),
                e.category,
                e.source,
                time(e.first_seen_us),
                time(e.last_seen_us)
            );
            if let (Some(d), Some(h)) = (&e.department, &e.handler) {
                println!(
                    "  department {d}, handler {h}, due {}",
                    e.deadline_us.map_or("-".into(), time)
                );
            }
            if let Some(f) = &e.feedback {
                println!("  feedback: {f}");
            }
            if let Some(c) = &e.cover_image {
                println!(
                    "  cover photo: {}",
                    data.join("images")
                        .join(&c[..2])
                        .join(format!("{c}.jpg"))
                        .display()
                );
            }
            for ev in store.evidence(id)? {
                println!(
                    "  photo {}/{} conf {:.2} box {:?} at {:.6},{:.6}{}",
                    ev.sysid,
                    ev.index,
                    ev.confidence,
                    ev.bbox,
                    ev.lat,
                    ev.lon,
                    if ev.at_edge {
                        " (at the image edge)"
                    } else {
                        ""
                    }
                );
            }
            for a in store.audit(id)? {
                println!(
                    "  {} {} → {} by {}: {}",
                    time(a.at_us),
                    a.from.as_deref().unwrap_or("-"),
                    a.to,
                    a.actor,
                    a.note
                );
            }
        }
        EventsOp::Sign(who) => act(&store, &who, Action::Sign)?,
        EventsOp::Dispatch {
            who,
            department,
            handler,
            deadline_hours,
        } => act(
            &store,
            &who,
            Action::Dispatch {
                department,
                handler,
                deadline_hours,
            },
        )?,
        EventsOp::Start(who) => act(&store, &who, Action::Start)?,
        EventsOp::Transfer {
            who,
            department,
            handler,
        } => act(
            &store,
            &who,
            Action::Transfer {
                department,
                handler,
            },
        )?,
        EventsOp::Resolve {
            who,
            feedback,
            photos,
        } => act(&store, &who, Action::Resolve { feedback, photos })?,
        EventsOp::Evaluate { who, rating } => act(&store, &who, Action::Evaluate { rating })?,
        EventsOp::Close(who) => act(&store, &who, Action::Close)?,
        EventsOp::Export { datum, out } => {
            let doc =
                gridpatrol::events::export_geojson(&store.list(None, None, None)?, datum, now);
            let text = serde_json::to_string_pretty(&doc)?;
            match out {
                Some(p) => {
                    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?
                }
                None => println!("{text}"),
            }
        }
        EventsOp::Stats { json } => {
            let s = store.stats(now)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!(
                    "{} events, {} closed ({:.1} %), median time to close {}, {} overdue, {:.0} % found by drones, {} outside every cell, {} fixes confirmed by a later patrol",
                    s.total,
                    s.closed,
                    s.closure_rate * 100.0,
                    s.median_hours_to_close.map_or("-".into(), |h| format!("{h:.1} h")),
                    s.overdue,
                    s.drone_share * 100.0,
                    s.outside_cells,
                    s.confirmed_fixed
                );
                for (title, rows) in [
                    ("by category", &s.by_category),
                    ("by state", &s.by_state),
                    ("by cell", &s.by_cell),
                ] {
                    println!("{title}:");
                    for (k, n) in rows {
                        println!("  {k:<24} {n:>5}");
                    }
                }
                println!(
                    "captures waiting {}, unusable {}; webhook messages waiting {}",
                    s.captures_pending, s.captures_failed, s.outbox_pending
                );
            }
        }
    }
    Ok(())
}
