//! A patrol run, end to end: each vehicle flies its sorties (preflight, fence and mission
//! uploaded and read back, arm, start), every photo it announces is recorded at once and
//! handed to the capture → event pipeline, and the run ends with a report. A restarted
//! run re-attaches to vehicles already flying its missions.

pub mod observe;
pub mod pipeline;
mod recorder;
#[cfg(feature = "rerun")]
pub mod rerun_rec;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{watch, Notify};

use crate::capture::{Capture, IndexTracker};
use crate::events::EventStore;
use crate::vehicle::{
    compare_missions, MissionItem, MissionType, Px4Mode, Telemetry, Vehicle, VehicleEvent,
};
pub use recorder::CaptureRecorder;

pub use pipeline::{PassSummary, Pipeline};

/// One sortie as a vehicle flies it.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct SortieJob {
    /// Position in the run's plan.
    pub index: usize,
    pub mission: Vec<MissionItem>,
    pub fence: Vec<MissionItem>,
    pub cells: Vec<String>,
    /// Planned flight time, seconds.
    pub flight_time_s: f64,
}

impl SortieJob {
    /// Planned for a vehicle already in the air: no takeoff item.
    pub fn starts_in_the_air(&self) -> bool {
        !self.mission.is_empty() && !self.mission.iter().any(|i| i.command == 22)
    }
}

/// What every vehicle of a run shares.
pub struct RunContext {
    pub run_id: String,
    pub store: Arc<EventStore>,
    /// Notified when a capture is recorded.
    pub wake: Arc<Notify>,
    /// Turns true on Ctrl-C: pause, return to launch, land.
    pub abort: watch::Receiver<bool>,
    /// Lowest battery (percent) a sortie may start with.
    pub min_battery_pct: i8,
    /// How long preflight waits for GPS, home and the link.
    pub preflight_wait: Duration,
    /// How long a vehicle back from a sortie may wait in its dock for a battery swap or
    /// charge before its next sortie.
    pub battery_wait: Duration,
    /// Longest a sortie may take, real time.
    pub sortie_timeout: Duration,
    /// Progress bars; hidden when stderr is not a terminal.
    pub progress: indicatif::MultiProgress,
    /// Told about the plan and each vehicle's state (e.g. the Rerun recorder).
    pub observer: Option<Arc<dyn observe::RunObserver>>,
    /// Writes the announced captures to `store` (start it with the same store and wake).
    pub recorder: CaptureRecorder,
    /// Set before an abort: the vehicle holds where it is instead of returning, for
    /// another run (an alert) to take it from there.
    pub divert: Arc<std::sync::atomic::AtomicBool>,
    /// Set before an abort: another controller holds the vehicle's lease now (this one
    /// stalled past it), so the vehicle is left alone: not one more command.
    pub detached: Arc<std::sync::atomic::AtomicBool>,
    /// A vehicle in the air flying another run's mission (one diverted to this run) is
    /// taken over: its mission replaced by this run's, which starts without a takeoff.
    pub take_over_airborne: bool,
}

/// A preflight check that did not pass: the vehicle is not armed.
#[derive(Debug, thiserror::Error)]
#[error("vehicle {sysid} failed preflight: {}", failed.join("; "))]
pub struct PreflightError {
    pub sysid: u8,
    pub failed: Vec<String>,
}

/// The failed checks of a vehicle's state (empty: ready). QGroundControl's and MAVSDK's
/// health checks: link, global position (3D fix), home, battery.
pub fn preflight_failures(t: &Telemetry, min_battery_pct: i8) -> Vec<String> {
    let mut f = Vec::new();
    if t.link != crate::vehicle::LinkState::Connected {
        f.push("no heartbeat".to_string());
    }
    if !t.has_3d_fix() {
        f.push(match t.gps {
            Some(g) => format!("GPS fix type {} (3D needed)", g.fix_type),
            None => "no GPS".to_string(),
        });
    }
    if t.home.is_none() {
        f.push("home position not set".to_string());
    }
    // The GCS heartbeat keeps to the vehicle's own clock only once it is measured (from
    // its ATTITUDE); a SITL running fast would otherwise see the ground station go quiet
    // in flight. A vehicle that sends no ATTITUDE cannot be measured and is taken at 1×.
    if t.clock_rate.is_none() && t.attitude.is_some() {
        f.push("vehicle clock not measured yet".to_string());
    }
    match t.battery.remaining {
        Some(r) if r >= min_battery_pct => {}
        Some(r) => f.push(format!("battery {r} % < {min_battery_pct} %")),
        None => f.push("battery level unknown".to_string()),
    }
    f
}

/// How one vehicle's part of the run went.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VehicleReport {
    pub sysid: u8,
    pub sorties_flown: Vec<usize>,
    pub reattached: bool,
    pub photos: usize,
    /// Image indices never received, even after asking again.
    pub missing: Vec<i32>,
    pub rerequested: usize,
    pub aborted: bool,
    pub link_losses: usize,
    /// How long the link was shown lost in all, s (ground-station clock).
    pub link_down_s: f64,
    pub error: Option<String>,
    /// A sortie cut short: (its index, the last mission item reached, if any).
    pub breakpoint: Option<(usize, Option<u16>)>,
}

/// The rest of a sortie cut short after item `reached` (the last waypoint it reached), for
/// breakpoint resume (断点续飞): everything up to the takeoff, the speed in force there, the
/// breakpoint waypoint (flown to with the camera off), the camera as it was there, then
/// the items after it; so photos start again where they stopped. With the resumed
/// mission, the index in `job.mission` each of its items comes from (None: re-issued
/// state). Nothing reached, or nothing past the takeoff: the whole sortie again.
pub fn resume_job(job: &SortieJob, reached: Option<u16>) -> (SortieJob, Vec<Option<usize>>) {
    let m = &job.mission;
    let whole = || (job.clone(), (0..m.len()).map(Some).collect());
    let Some(t) = m.iter().position(|i| i.command == 22) else {
        return whole();
    };
    // The last item with a position at or before the one reached: PX4 reports commands
    // (camera, speed) as reached too, but the vehicle stood at the waypoint before them.
    let Some(k) = reached
        .map(usize::from)
        .filter(|k| *k < m.len())
        .and_then(|r| {
            (t + 1..=r)
                .rev()
                .find(|&i| m[i].command < 100 && (m[i].x != 0 || m[i].y != 0))
        })
    else {
        return whole();
    };
    let mut items: Vec<MissionItem> = m[..=t].to_vec();
    let mut origin: Vec<Option<usize>> = (0..=t).map(Some).collect();
    // MAV_CMD_DO_CHANGE_SPEED in force at the breakpoint.
    if let Some(s) = m[t..k].iter().rev().find(|i| i.command == 178) {
        items.push(s.clone());
        origin.push(None);
    }
    items.push(m[k].clone());
    origin.push(Some(k));
    // The camera (DO_SET_CAM_TRIGG_DIST, IMAGE_START/STOP_CAPTURE) as it was there.
    if let Some(c) = m[..k]
        .iter()
        .rev()
        .find(|i| matches!(i.command, 206 | 2000 | 2001))
    {
        items.push(c.clone());
        origin.push(None);
    }
    items.extend(m[k + 1..].iter().cloned());
    origin.extend((k + 1..m.len()).map(Some));
    (
        SortieJob {
            mission: items,
            ..job.clone()
        },
        origin,
    )
}

/// Waits for the vehicle to pass preflight, at most `wait`.
pub async fn preflight(
    v: &Vehicle,
    min_battery_pct: i8,
    wait: Duration,
) -> Result<(), PreflightError> {
    v.wait_for(wait, |t| preflight_failures(t, min_battery_pct).is_empty())
        .await;
    let failed = preflight_failures(&v.telemetry(), min_battery_pct);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(PreflightError {
            sysid: v.sysid(),
            failed,
        })
    }
}

fn bar_for(ctx: &RunContext, sysid: u8, len: u64) -> indicatif::ProgressBar {
    let bar = ctx.progress.add(indicatif::ProgressBar::new(len));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "vehicle {prefix:>3} [{bar:30}] item {pos}/{len} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(sysid.to_string());
    bar
}

/// Why a vehicle's flight ended for a controller that lost its lease.
pub const DETACHED: &str = "another controller holds the vehicle's lease now: left to it";

/// MISSION_CURRENT.mission_state when the mission ran to its end (MISSION_STATE_COMPLETE).
pub const MISSION_STATE_COMPLETE: u8 = 5;

/// Flies `jobs` on one vehicle, one after another, recording every capture.
pub async fn fly_vehicle(v: Vehicle, jobs: Vec<SortieJob>, ctx: Arc<RunContext>) -> VehicleReport {
    let sysid = v.sysid();
    let mut rep = VehicleReport {
        sysid,
        ..Default::default()
    };
    let mut tracker = IndexTracker::default();
    for i in while_busy(|| ctx.store.capture_indices(&ctx.run_id, sysid))
        .await
        .unwrap_or_default()
    {
        tracker.see(i);
    }
    // A fresh run's photos start at the camera's count now: earlier ones are another
    // run's, and must not be asked for again as "missing". The count is kept, so a
    // controller taking the run over asks for its first photos too, had they never come.
    let first = while_busy(|| ctx.store.first_image(&ctx.run_id, sysid)).await;
    let had_it = matches!(first, Ok(Some(_)));
    match first {
        Ok(Some(first)) if first >= 0 => tracker.set_floor(first),
        // Taken before, its camera's count unknown then.
        Ok(Some(_)) => {}
        _ if tracker.count() == 0 && !v.telemetry().armed => {
            // A run without its floor could not tell a controller taking it over which
            // photos are its own.
            let count = camera_count(&v).await;
            if let Some(n) = count {
                tracker.set_floor(n);
            } else {
                tracing::warn!(
                    sysid,
                    "the camera did not say its image count: photos that never arrive cannot be asked for"
                );
            }
            // Kept either way (-1: unknown): that this run took the vehicle tells a
            // controller taking it over that a sortie complete on board may be its own.
            let first = count.unwrap_or(-1);
            if let Err(e) =
                while_busy(|| ctx.store.set_first_image(&ctx.run_id, sysid, first)).await
            {
                tracing::warn!(sysid, "keeping the run's first image index: {e}");
            }
        }
        _ => {}
    }
    let done = match while_busy(|| ctx.store.sorties_finished(&ctx.run_id, Some(sysid))).await {
        Ok(done) => done,
        Err(e) => {
            // Not knowing which sorties were flown, flying any could fly one twice.
            rep.error = Some(format!("reading the run's flown sorties: {e}"));
            return rep;
        }
    };
    let mut done = done;
    // A vehicle on the ground holding one of our sorties, complete (MISSION_CURRENT's
    // mission_state, as PX4 reports it): it flew that sortie to its end while no
    // controller watched (the one flying it died before recording it). It is recorded
    // now, its photos are asked for, and it is not flown again.
    let landed = v.telemetry();
    // Only a vehicle this run took before (its first image index or photos on record)
    // can hold one of its sorties, and only a sortie of the length on board: otherwise no
    // read-back is spent on it (a fresh run finds the last run's identical sortie there).
    let could_be_ours = (had_it || tracker.count() > 0)
        && jobs.iter().any(|j| {
            !done.contains(&j.index) && landed.mission_total == Some(j.mission.len() as u16)
        });
    if could_be_ours && !landed.armed && landed.mission_state == Some(MISSION_STATE_COMPLETE) {
        if let Ok(items) = v.download(MissionType::Mission).await {
            let flown = jobs
                .iter()
                .find(|j| !done.contains(&j.index) && compare_missions(&j.mission, &items).is_ok());
            if let Some(job) = flown {
                tracing::info!(
                    sysid,
                    sortie = job.index,
                    "flown to its end unwatched: recorded, not flown again"
                );
                ask_for_missing(&v, &ctx, &mut tracker, &mut rep).await;
                if let Err(e) = record_flown(&ctx, sysid, job.index).await {
                    rep.error = Some(e);
                    return rep;
                }
                done.push(job.index);
                rep.sorties_flown.push(job.index);
            }
        }
    }
    // Re-attach: a vehicle already flying one of our missions is not disturbed.
    let mut attached: Option<usize> = None;
    let now = v.telemetry();
    tracing::info!(sysid, armed = now.armed, landed = ?now.landed, run = %ctx.run_id, "taking the vehicle");
    if now.armed {
        match v.download(MissionType::Mission).await {
            Ok(items) => {
                attached = jobs
                    .iter()
                    .position(|j| compare_missions(&j.mission, &items).is_ok());
                if attached.is_none() && ctx.take_over_airborne && !now.on_ground() {
                    tracing::info!(sysid, "taking over the vehicle in the air");
                } else if attached.is_none() {
                    rep.error = Some(format!(
                        "vehicle {sysid} is flying a mission of {} items this run did not plan; not touching it",
                        items.len()
                    ));
                    return rep;
                }
                rep.reattached = attached.is_some();
                if attached.is_some() {
                    tracing::info!(sysid, sortie = ?attached, "re-attached to the sortie in flight");
                }
            }
            Err(e) => {
                rep.error = Some(format!(
                    "vehicle {sysid} is armed and its mission could not be read back: {e}"
                ));
                return rep;
            }
        }
    }
    for (k, job) in jobs.iter().enumerate() {
        if *ctx.abort.borrow() {
            rep.aborted = true;
            break;
        }
        if attached.is_some_and(|a| k < a) || (attached.is_none() && done.contains(&job.index)) {
            continue;
        }
        let bar = bar_for(&ctx, sysid, job.mission.len() as u64);
        let reattaching = attached == Some(k);
        // Listening before the start: a controller held up between the arm and the
        // follow (a loaded machine) must not miss what the vehicle reported meanwhile.
        let listening = Listening::to(&v);
        let result = if reattaching {
            bar.println(format!(
                "vehicle {sysid}: re-attached to sortie {} in flight (mission read back: identical)",
                job.index + 1
            ));
            attached = None;
            Ok(())
        } else if v.telemetry().armed && !v.telemetry().on_ground() && job.starts_in_the_air() {
            tracing::info!(sysid, sortie = job.index, "taking over in the air");
            start_in_the_air(&v, job).await
        } else {
            wait_for_battery(&v, &ctx, &bar).await;
            tracing::info!(sysid, sortie = job.index, "starting the sortie");
            start_sortie(&v, job, &ctx).await
        };
        if let Err(e) = result {
            bar.abandon_with_message(format!("sortie {}: {e}", job.index + 1));
            rep.error = Some(e);
            break;
        }
        // A sortie re-attached to in flight has reached items before we listened: what
        // the vehicle last reported (it repeats MISSION_ITEM_REACHED) and where it is.
        let joined = if reattaching {
            let t = v.telemetry();
            Joined::Reattached {
                reached: t
                    .last_reached
                    .max(t.mission_current.and_then(|c| c.checked_sub(1))),
            }
        } else {
            Joined::Started
        };
        let outcome = follow_sortie(
            &v,
            listening,
            job,
            &ctx,
            &bar,
            &mut tracker,
            &mut rep,
            joined,
        )
        .await;
        if ctx.detached.load(std::sync::atomic::Ordering::SeqCst) {
            // The controller that holds the vehicle now asks for the photos and records.
            rep.error = Some(DETACHED.into());
            break;
        }
        ask_for_missing(&v, &ctx, &mut tracker, &mut rep).await;
        match outcome {
            Ok(()) => {
                if let Err(e) = record_flown(&ctx, sysid, job.index).await {
                    tracing::error!("{e}");
                }
                rep.sorties_flown.push(job.index);
                bar.finish_with_message(format!(
                    "sortie {} flown, landed, disarmed",
                    job.index + 1
                ));
            }
            Err(e) => {
                bar.abandon_with_message(e.clone());
                rep.error = Some(e);
                break;
            }
        }
    }
    let unrecorded = ctx.recorder.flushed(STORE_BUSY_LIMIT).await;
    if unrecorded > 0 && rep.error.is_none() {
        rep.error = Some(format!(
            "{unrecorded} photos not recorded: the database stayed busy for {} s (a re-run asks the camera for them again)",
            STORE_BUSY_LIMIT.as_secs()
        ));
    }
    rep.photos = tracker.count();
    rep.missing = tracker.missing();
    rep
}

/// How long PX4 may take to accept a new mission (its feasibility check runs in the
/// navigator, milliseconds on an idle vehicle).
const MISSION_CHECK_WAIT: Duration = Duration::from_secs(10);

/// PX4 v1.16's default MIS_DIST_1WP, metres (as its SITL answers it): the first item with a
/// position may be at most this far from home (navigator's
/// FeasibilityChecker::checkDistanceToFirstWaypoint).
pub const PX4_MIS_DIST_1WP_M: f64 = 10_000.0;

/// Why a sortie cannot fly from where the vehicle stands, checked before anything is
/// uploaded, with the distances PX4 would only refuse without: the first item with a
/// position must be within `max_first_wp_m` of home (PX4's MIS_DIST_1WP), and home must
/// lie inside the sortie's inclusion fence (else PX4 refuses to arm).
pub fn check_sortie_from_home(
    job: &SortieJob,
    home: (f64, f64),
    max_first_wp_m: f64,
) -> Result<(), String> {
    use crate::geotag::distance_m;
    if let Some(first) = job.mission.iter().find(|i| i.x != 0 || i.y != 0) {
        let d = distance_m(home.0, home.1, first.lat(), first.lon());
        if max_first_wp_m > 0.0 && d >= max_first_wp_m {
            return Err(format!(
                "sortie {}: its first waypoint is {d:.0} m from the vehicle's home; the vehicle allows {max_first_wp_m:.0} m (MIS_DIST_1WP)",
                job.index + 1
            ));
        }
    }
    let ring: Vec<geo::Coord<f64>> = job
        .fence
        .iter()
        .filter(|i| i.command == 5001)
        .map(|i| geo::Coord {
            x: i.lon(),
            y: i.lat(),
        })
        .collect();
    if ring.len() >= 3 {
        use geo::{Contains, Distance, Haversine};
        let poly = geo::Polygon::new(ring.into(), vec![]);
        let p = geo::Point::new(home.1, home.0);
        if !poly.contains(&p) {
            let d = poly
                .exterior()
                .lines()
                .map(|l| {
                    let c = geo::ClosestPoint::closest_point(&l, &p);
                    match c {
                        geo::Closest::Intersection(q) | geo::Closest::SinglePoint(q) => {
                            Haversine.distance(p, q)
                        }
                        geo::Closest::Indeterminate => f64::INFINITY,
                    }
                })
                .fold(f64::INFINITY, f64::min);
            return Err(format!(
                "sortie {}: the vehicle's home is {d:.0} m outside the sortie's geofence; plan from the vehicle's home or move it",
                job.index + 1
            ));
        }
    }
    Ok(())
}

/// Moves each sortie's takeoff over the home of the vehicle that will fly it (sortie i on
/// vehicle i mod n, as [`run_patrol`] deals them), so that it climbs where it stands.
/// A home more than `max_m` from the planned takeoff is refused, naming the distance: the
/// route, battery and fence were planned from elsewhere.
pub fn anchor_to_homes(
    jobs: &mut [SortieJob],
    homes: &[(u8, f64, f64)],
    max_m: f64,
) -> Result<(), String> {
    if homes.is_empty() {
        return Ok(());
    }
    for job in jobs.iter_mut() {
        let (sysid, lat, lon) = homes[job.index % homes.len()];
        let Some(takeoff) = job.mission.iter_mut().find(|i| i.command == 22) else {
            continue;
        };
        let d = crate::geotag::distance_m(lat, lon, takeoff.lat(), takeoff.lon());
        if d > max_m {
            return Err(format!(
                "vehicle {sysid}'s home is {d:.0} m from the takeoff point planned for sortie {}; more than {max_m:.0} m: plan from that vehicle's home",
                job.index + 1
            ));
        }
        takeoff.x = (lat * 1e7).round() as i32;
        takeoff.y = (lon * 1e7).round() as i32;
    }
    Ok(())
}

/// Waits for a battery swap or charge when the battery is all that keeps the vehicle on
/// the ground, as a dock operator would, saying so once.
async fn wait_for_battery(v: &Vehicle, ctx: &RunContext, bar: &indicatif::ProgressBar) {
    let low = |t: &Telemetry| {
        let f = preflight_failures(t, ctx.min_battery_pct);
        !f.is_empty() && f.iter().all(|s| s.starts_with("battery"))
    };
    if !low(&v.telemetry()) {
        return;
    }
    bar.println(format!(
        "vehicle {}: battery {} below {} %: waiting for a swap or charge in the dock (at most {:?})",
        v.sysid(),
        v.telemetry()
            .battery
            .remaining
            .map_or("unknown".into(), |b| format!("{b} %")),
        ctx.min_battery_pct,
        ctx.battery_wait
    ));
    bar.set_message("waiting for a battery swap or charge");
    v.wait_for(ctx.battery_wait, |t| !low(t)).await;
}

/// Preflight, fence and mission up and read back, mission mode, arm.
/// The sortie's geofence (when it has one) and mission, each uploaded, read back and
/// compared.
async fn upload_plan(v: &Vehicle, job: &SortieJob) -> Result<(), String> {
    if !job.fence.is_empty() {
        v.upload_verified(MissionType::Fence, &job.fence)
            .await
            .map_err(|e| format!("geofence upload: {e}"))?;
    }
    v.upload_verified(MissionType::Mission, &job.mission)
        .await
        .map_err(|e| format!("mission upload: {e}"))
}

/// A sortie planned from where a vehicle already flying is (no takeoff): its fence and
/// mission uploaded and read back, then flown from its first item (PX4 flies a mission
/// uploaded in the air from MISSION_SET_CURRENT on switching to AUTO.MISSION).
async fn start_in_the_air(v: &Vehicle, job: &SortieJob) -> Result<(), String> {
    // Holding while the plan changes under it.
    if v.telemetry().mode != Px4Mode::AutoLoiter {
        v.set_mode(Px4Mode::AutoLoiter)
            .await
            .map_err(|e| format!("holding before the new mission: {e}"))?;
    }
    upload_plan(v, job).await?;
    v.set_current(0)
        .await
        .map_err(|e| format!("setting the first item: {e}"))?;
    v.set_mode(Px4Mode::AutoMission)
        .await
        .map_err(|e| format!("starting the mission in the air: {e}"))?;
    Ok(())
}

async fn start_sortie(v: &Vehicle, job: &SortieJob, ctx: &RunContext) -> Result<(), String> {
    preflight(v, ctx.min_battery_pct, ctx.preflight_wait)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(h) = v.telemetry().home {
        // PX4 publishes its limit as MIS_DIST_1WP; a vehicle without it gets PX4's default.
        let max_first = match v.param_get("MIS_DIST_1WP").await {
            Ok(p) => p.as_f64(),
            Err(_) => PX4_MIS_DIST_1WP_M,
        };
        check_sortie_from_home(job, (h.lat, h.lon), max_first)?;
    }
    upload_plan(v, job).await?;
    // The state may have changed while uploading: check again right before starting.
    let failed = preflight_failures(&v.telemetry(), ctx.min_battery_pct);
    if !failed.is_empty() {
        return Err(PreflightError {
            sysid: v.sysid(),
            failed,
        }
        .to_string());
    }
    v.start_mission_armed(MISSION_CHECK_WAIT)
        .await
        .map_err(|e| format!("starting the mission: {e}"))?;
    Ok(())
}

/// How long a store write waits out another process holding the database (s).
const STORE_BUSY_LIMIT: Duration = Duration::from_secs(120);

/// Runs `op` until the database is free, up to [`STORE_BUSY_LIMIT`]: another process (a
/// backup, an `events` command, the sqlite3 shell) may hold it past SQLite's busy timeout,
/// or its disk may be full.
async fn while_busy<T>(
    mut op: impl FnMut() -> Result<T, crate::events::StoreError>,
) -> Result<T, crate::events::StoreError> {
    let until = tokio::time::Instant::now() + STORE_BUSY_LIMIT;
    loop {
        match op() {
            Err(e) if e.is_transient() && tokio::time::Instant::now() < until => {
                tracing::warn!("{e}: waiting for the database");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            r => return r,
        }
    }
}

fn record(
    ctx: &RunContext,
    sysid: u8,
    c: &crate::vehicle::ImageCapture,
    tracker: &mut IndexTracker,
) -> bool {
    if !tracker.see(c.index) {
        return false; // a duplicate announcement
    }
    ctx.recorder
        .record(Capture::from_mavlink(sysid, c), crate::events::now_us());
    true
}

/// Follows a sortie until the vehicle disarms, recording captures and drawing progress.
/// How this controller came to follow a sortie.
enum Joined {
    /// It started the sortie (or took it over in the air) itself.
    Started,
    /// It found the vehicle armed and flying the sortie, and re-attached; `reached` is
    /// the last item the vehicle reported reached before.
    Reattached { reached: Option<u16> },
}

/// A vehicle's events, subscribed to before its sortie started.
struct Listening {
    events: crate::vehicle::VehicleEvents,
    /// Armed when subscribed: a vehicle on the ground is not, and what it reports of
    /// mission items before it arms is its last mission's, not this sortie's.
    armed: bool,
}

impl Listening {
    fn to(v: &Vehicle) -> Self {
        Self {
            events: v.events(),
            armed: v.telemetry().armed,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn follow_sortie(
    v: &Vehicle,
    listening: Listening,
    job: &SortieJob,
    ctx: &RunContext,
    bar: &indicatif::ProgressBar,
    tracker: &mut IndexTracker,
    rep: &mut VehicleReport,
    joined: Joined,
) -> Result<(), String> {
    let sysid = v.sysid();
    let Listening {
        mut events,
        armed: mut this_sortie,
    } = listening;
    let mut abort = ctx.abort.clone();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let deadline = tokio::time::Instant::now() + ctx.sortie_timeout;
    let mut airborne = !v.telemetry().on_ground();
    // Armed when this loop began or since, or when re-attached (the read-back of a long
    // mission over a busy link may outlast the sortie's end): a disarm on the ground then
    // ends the sortie, even one whose disarm event came before this loop listened.
    let (mut armed_seen, reached_before) = match joined {
        Joined::Started => (v.telemetry().armed, None),
        Joined::Reattached { reached } => (true, reached),
    };
    let (mut aborting, mut abort_open) = (false, true);
    let mut lost: Option<std::time::Instant> = None;
    let total = job.mission.len().max(1) as f64;
    let mut reached: Option<u16> = reached_before;
    let mut warning: Option<String> = None;
    // The last item with a position: reaching it means the patrol part was flown.
    let last_nav = job
        .mission
        .iter()
        .rposition(|i| i.x != 0 || i.y != 0)
        .map(|i| i as u16);
    loop {
        // Biased: every event queued is taken before the tick reads the telemetry, which
        // runs ahead of them. A controller starved for a while (a loaded machine) wakes
        // to the landing in the telemetry and the items reached still queued; deciding
        // on the first alone called a flown sortie cut short.
        tokio::select! {
            biased;
            changed = abort.changed(), if !aborting && abort_open => {
                if changed.is_err() {
                    // No one can abort any more; a closed channel is always ready.
                    abort_open = false;
                    continue;
                }
                if *abort.borrow() && ctx.detached.load(std::sync::atomic::Ordering::SeqCst) {
                    rep.aborted = true;
                    return Err(DETACHED.into());
                }
                let in_the_air = airborne || !v.telemetry().on_ground();
                if *abort.borrow() && ctx.divert.load(std::sync::atomic::Ordering::SeqCst) && in_the_air {
                    rep.aborted = true;
                    bar.println(format!("vehicle {sysid}: diverted: holding in the air for another run"));
                    if let Err(e) = v.set_mode(Px4Mode::AutoLoiter).await {
                        bar.println(format!("vehicle {sysid}: hold refused: {e}"));
                    }
                    rep.breakpoint = Some((job.index, reached));
                    return Err("diverted: holding in the air for another run".into());
                }
                if *abort.borrow() {
                    aborting = true;
                    rep.aborted = true;
                    bar.println(format!("vehicle {sysid}: Ctrl-C: pausing the mission and returning to launch"));
                    let _ = v.pause().await;
                    if let Err(e) = v.return_to_launch().await {
                        bar.println(format!("vehicle {sysid}: RTL refused: {e}; switch it by hand"));
                    }
                }
            }
            e = events.next() => {
                let Some(e) = e else { return Err("the fleet stopped".into()) };
                match e {
                    VehicleEvent::ImageCaptured(c) => {
                        record(ctx, sysid, &c, tracker);
                    }
                    VehicleEvent::Armed(true) => this_sortie = true,
                    VehicleEvent::MissionCurrent(s) if this_sortie => {
                        bar.set_position(u64::from(s).max(bar.position()));
                        // Heading for item s means the items before it were passed. PX4
                        // repeats MISSION_CURRENT at 1 Hz but MISSION_ITEM_REACHED only a
                        // few times, so a busy or lossy link may miss the last reached.
                        if s > 0 && usize::from(s) < job.mission.len() {
                            reached = reached.max(Some(s - 1));
                        }
                    }
                    VehicleEvent::MissionItemReached(s) if this_sortie => {
                        reached = reached.max(Some(s));
                        bar.set_position(u64::from(s).max(bar.position()));
                    }
                    VehicleEvent::LinkLost => {
                        lost = Some(std::time::Instant::now());
                        rep.link_losses += 1;
                        bar.println(format!("vehicle {sysid}: LINK LOST; waiting for it to return"));
                    }
                    VehicleEvent::LinkRegained => {
                        if let Some(at) = lost.take() {
                            rep.link_down_s += at.elapsed().as_secs_f64();
                            bar.println(format!("vehicle {sysid}: link back; carrying on"));
                        }
                    }
                    VehicleEvent::LandedState(2) => airborne = true,
                    VehicleEvent::Armed(false) => {
                        return ended_at(job, rep, aborting, reached, last_nav, &warning)
                    }
                    VehicleEvent::StatusText { severity, text } if severity <= 4 => {
                        bar.println(format!("vehicle {sysid}: {text}"));
                        warning = Some(text);
                    }
                    _ => {}
                }
            }
            _ = tick.tick() => {
                let t = v.telemetry();
                // The change to "in the air" may have come before this loop listened.
                airborne |= t.landed == Some(2);
                armed_seen |= t.armed;
                if let Some(o) = &ctx.observer {
                    o.vehicle(&t);
                }
                let frac = f64::from(t.mission_current.unwrap_or(0)) / total;
                let eta = job.flight_time_s * (1.0 - frac).max(0.0);
                bar.set_message(format!(
                    "photos {} battery {} {} ETA {:.0} min{}",
                    tracker.count(),
                    t.battery.remaining.map_or("?".into(), |b| format!("{b} %")),
                    t.mode,
                    eta / 60.0,
                    if lost.is_some() { " LINK LOST" } else { "" },
                ));
                if !t.armed && (airborne || armed_seen) && t.on_ground() {
                    return ended_at(job, rep, aborting, reached, last_nav, &warning);
                }
                if t.mode == Px4Mode::AutoRtl && !aborting && airborne {
                    bar.set_message(format!("returning to launch, photos {}", tracker.count()));
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(format!("sortie {} did not end within {:?}", job.index + 1, ctx.sortie_timeout));
                }
            }
        }
    }
}

/// As [`ended`], keeping where a sortie cut short stopped as its breakpoint.
fn ended_at(
    job: &SortieJob,
    rep: &mut VehicleReport,
    aborting: bool,
    reached: Option<u16>,
    last_nav: Option<u16>,
    warning: &Option<String>,
) -> Result<(), String> {
    let end = ended(aborting, reached, last_nav, warning);
    // An operator's abort keeps it too: a paused run resumes there.
    if end.is_err() {
        rep.breakpoint = Some((job.index, reached));
    }
    end
}

/// How a sortie that ended in a landing went: flown, aborted, or cut short (a failsafe).
fn ended(
    aborting: bool,
    reached: Option<u16>,
    last_nav: Option<u16>,
    warning: &Option<String>,
) -> Result<(), String> {
    if aborting {
        return Err("aborted by the operator: returned, landed and disarmed".into());
    }
    if reached < last_nav {
        return Err(format!(
            "landed before the mission was flown (last item reached: {}, patrol ends at {}){}",
            reached.map_or("none".into(), |r| r.to_string()),
            last_nav.unwrap_or(0),
            warning
                .as_ref()
                .map_or(String::new(), |w| format!("; vehicle said: {w}"))
        ));
    }
    Ok(())
}

/// Records sortie `index` of the run as flown by `sysid`, waiting out a busy store: kept,
/// or a restart would fly it again. Its photos are recorded first: a sortie on record as
/// flown is never flown again, so a crash between the two must not leave photos that
/// were only queued.
async fn record_flown(ctx: &RunContext, sysid: u8, index: usize) -> Result<(), String> {
    let unrecorded = ctx.recorder.flushed(STORE_BUSY_LIMIT).await;
    if unrecorded > 0 {
        return Err(format!(
            "sortie {}: {unrecorded} photos not recorded, so it is not recorded as flown either",
            index + 1
        ));
    }
    while_busy(|| {
        ctx.store
            .sortie_finished(&ctx.run_id, sysid, index, crate::events::now_us())
    })
    .await
    .map_err(|e| format!("recording sortie {} as flown: {e}", index + 1))
}

/// The camera's image count (CAMERA_CAPTURE_STATUS), asked up to three times of a camera
/// that is there: one lost request or reply must not leave a run without it.
async fn camera_count(v: &Vehicle) -> Option<i32> {
    for _ in 0..3 {
        if let Some(n) = v.camera_image_count(Duration::from_secs(2)).await {
            return Some(n);
        }
        if !v.telemetry().camera_heard {
            break;
        }
    }
    None
}

/// Asks the camera again for every image index that never arrived, as MAVSDK does with
/// MAV_CMD_REQUEST_MESSAGE(CAMERA_IMAGE_CAPTURED, index).
async fn ask_for_missing(
    v: &Vehicle,
    ctx: &RunContext,
    tracker: &mut IndexTracker,
    rep: &mut VehicleReport,
) {
    // The camera's count finds the last photos too, which no later one reveals.
    if let Some(n) = camera_count(v).await {
        tracker.expect_count(n);
    }
    // Rounds while they bring photos in; three in a row that bring none end it.
    let mut fruitless = 0;
    while fruitless < 3 {
        let missing = tracker.missing();
        if missing.is_empty() {
            return;
        }
        let mut events = v.events();
        let before = missing.len();
        for i in missing {
            rep.rerequested += 1;
            // MAV_COMP_ID_CAMERA: the camera, not the autopilot, keeps its photos.
            let _ = v.request_message(100, 263, i as f32).await;
        }
        // The answers arrive as ordinary CAMERA_IMAGE_CAPTURED messages.
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Some(e)) = tokio::time::timeout_at(until, events.next()).await {
            if let VehicleEvent::ImageCaptured(c) = e {
                record(ctx, v.sysid(), &c, tracker);
                if tracker.missing().is_empty() {
                    return;
                }
            }
        }
        if tracker.missing().len() >= before {
            fruitless += 1;
        } else {
            fruitless = 0;
        }
    }
}

/// The run's summary.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub vehicles: Vec<VehicleReport>,
    pub pipeline: PassSummary,
    pub stats: crate::events::store::Stats,
}

impl std::fmt::Display for RunReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "run {}", self.run_id)?;
        for v in &self.vehicles {
            writeln!(
                f,
                "  vehicle {}: sorties {:?}{}, {} photos ({} asked for again, {} never arrived){}{}",
                v.sysid,
                v.sorties_flown.iter().map(|s| s + 1).collect::<Vec<_>>(),
                if v.reattached { " (re-attached)" } else { "" },
                v.photos,
                v.rerequested,
                v.missing.len(),
                if v.aborted { ", ABORTED" } else { "" },
                v.error.as_ref().map_or(String::new(), |e| format!(", error: {e}")),
            )?;
        }
        let p = &self.pipeline;
        writeln!(
            f,
            "  photos analysed {}: {} new events, {} sightings merged into known ones, {} waiting for retry, {} unusable",
            p.processed, p.new_events, p.merged, p.retrying, p.unusable
        )?;
        let s = &self.stats;
        writeln!(
            f,
            "  events in the database: {} ({} outside every cell), closure rate {:.0} %, found by drones {:.0} %",
            s.total,
            s.outside_cells,
            s.closure_rate * 100.0,
            s.drone_share * 100.0
        )?;
        for (c, n) in &s.by_category {
            let name = c
                .parse::<crate::detect::Category>()
                .map(|c| c.chinese())
                .unwrap_or("");
            writeln!(f, "    {c:<22} {name:<8} {n:>4}")?;
        }
        Ok(())
    }
}

/// The jobs of a plan: each sortie's mission and its fence (an inclusion polygon round the
/// sortie and the no-fly zones it can reach, sized for the vehicle).
pub fn jobs_from_plan(plan: &crate::plan::Plan) -> Vec<SortieJob> {
    plan.sorties
        .iter()
        .enumerate()
        .map(|(i, s)| SortieJob {
            index: i,
            mission: s.items.clone(),
            fence: s.fence_items.clone(),
            cells: s.cells.clone(),
            flight_time_s: s.flight_time_s,
        })
        .collect()
}

/// The stored run whose sorties include `mission` (as read back from a vehicle flying it),
/// with all its sorties: a restarted `fly` carries that run on rather than planning again
/// from a home that has moved by a few centimetres since.
pub fn run_flying(store: &EventStore, mission: &[MissionItem]) -> Option<(String, Vec<SortieJob>)> {
    let plans = store.recent_run_plans(50).ok()?;
    plans.into_iter().find_map(|(run, json)| {
        let jobs: Vec<SortieJob> = serde_json::from_str(&json).ok()?;
        jobs.iter()
            .any(|j| compare_missions(&j.mission, mission).is_ok())
            .then_some((run, jobs))
    })
}

/// A run id that is the same for the same plan, so that running the same patrol again
/// after a crash re-attaches to it instead of starting another.
pub fn run_id_for(jobs: &[SortieJob]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for j in jobs {
        h.update(serde_json::to_vec(&j.mission).unwrap_or_default());
    }
    let d = h.finalize();
    format!("run-{}", hex::encode(&d[..6]))
}

/// Flies `jobs` on `vehicles` (sortie i on vehicle i mod n), with the pipeline filing
/// events as the photos arrive; returns when every vehicle is done and every capture
/// that can be processed has been.
pub async fn run_patrol(
    vehicles: Vec<Vehicle>,
    jobs: Vec<SortieJob>,
    ctx: Arc<RunContext>,
    pipeline: Arc<Pipeline>,
) -> RunReport {
    if let Some(o) = &ctx.observer {
        o.plan(&pipeline.map, &jobs);
    }
    if let Ok(json) = serde_json::to_string(&jobs) {
        if let Err(e) = ctx
            .store
            .save_run_plan(&ctx.run_id, &json, crate::events::now_us())
        {
            tracing::warn!("keeping the run's sorties for a restart: {e}");
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let pipe = tokio::spawn(pipeline.clone().run(
        ctx.wake.clone(),
        Duration::from_millis(500),
        stop_rx,
    ));
    let n = vehicles.len().max(1);
    let mut tasks = Vec::new();
    for (k, v) in vehicles.into_iter().enumerate() {
        let mine: Vec<SortieJob> = jobs.iter().filter(|j| j.index % n == k).cloned().collect();
        tasks.push(tokio::spawn(fly_vehicle(v, mine, ctx.clone())));
    }
    let mut reports = Vec::new();
    for t in tasks {
        if let Ok(r) = t.await {
            reports.push(r);
        }
    }
    let _ = stop_tx.send(true);
    let mut summary = pipe.await.unwrap_or_default();
    // One last pass for anything recorded after the pipeline's last look.
    let p = pipeline.clone();
    if let Ok(Ok(s)) = tokio::task::spawn_blocking(move || p.drain(crate::events::now_us())).await {
        summary.add(s);
    }
    let stats = ctx.store.stats(crate::events::now_us()).unwrap_or_default();
    RunReport {
        run_id: ctx.run_id.clone(),
        vehicles: reports,
        pipeline: summary,
        stats,
    }
}

#[cfg(test)]
mod follow_tests;
