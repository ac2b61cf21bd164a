//! The service behind `gridpatrol serve`: every tick it books what the schedules fire,
//! then hands each waiting (or paused) run to the best ready vehicle: leased, planned from
//! that vehicle's home, and flown by `patrol::fly_vehicle`, the code `gridpatrol fly`
//! runs. A run cut short pauses and resumes from its first unflown sortie on whichever
//! vehicle is ready next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify};

use super::book::{Result, RunBook, RunError, RunFilter};
use super::definition::PatrolDef;
use super::ready::{site_failures, vehicle_failures, WeatherCache};
use super::run::{Run, RunState};
use super::scheduler::{us, Clock, Scheduler};
use crate::alert::dispatch::{self as alert_dispatch, AlertConfig, Candidate};
use crate::alert::{Alert, AlertBook, AlertError, AlertRequest, AlertState, Moment};
use crate::grid::GridMap;
use crate::patrol::{
    anchor_to_homes, fly_vehicle, jobs_from_plan, resume_job, Pipeline, RunContext, SortieJob,
};
use crate::vehicle::{Fleet, Telemetry, Vehicle};

#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// This controller's name in leases and logs.
    pub holder: String,
    /// How often schedules are read and runs dispatched.
    pub tick: Duration,
    /// How long a lease lasts unless renewed (renewed every tick while flying).
    pub lease_ttl: Duration,
    pub preflight_wait: Duration,
    pub battery_wait: Duration,
    pub sortie_timeout: Duration,
    /// How often a run may be cut short and resume before it ends partially done.
    pub max_resumes: usize,
    pub on_stop: OnStop,
    /// How alerts are flown.
    pub alert: AlertConfig,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            holder: crate::store::default_holder(),
            tick: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(60),
            preflight_wait: Duration::from_secs(15),
            battery_wait: Duration::from_secs(3600),
            sortie_timeout: Duration::from_secs(3 * 3600),
            max_resumes: 3,
            on_stop: OnStop::Finish,
            alert: AlertConfig::default(),
        }
    }
}

/// A run being flown by this controller.
struct Flying {
    sysid: u8,
    /// Turned true to bring the vehicle home: a cancel, or an operator's pause.
    abort: watch::Sender<bool>,
    /// The abort is a pause, and why: the run is kept, with its breakpoint, to resume.
    pausing: Option<String>,
    /// Set with the abort: the vehicle holds in the air for an alert instead of returning.
    divert: Arc<std::sync::atomic::AtomicBool>,
    /// Set with the abort: another controller took the vehicle's lease (this one stalled
    /// past it); the flight is left to it, without a command or a state change.
    detached: Arc<std::sync::atomic::AtomicBool>,
}

/// What SIGTERM does to the sorties in the air.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OnStop {
    /// Let them fly to their end.
    #[default]
    Finish,
    /// Bring them home now; their runs pause at their breakpoints and resume when the
    /// service is back.
    Return,
}

pub struct Service {
    scheduler: Scheduler,
    clock: Arc<dyn Clock>,
    fleet: Fleet,
    map: Arc<GridMap>,
    pipeline: Arc<Pipeline>,
    wake: Arc<Notify>,
    cfg: ServiceConfig,
    flying: Mutex<HashMap<i64, Flying>>,
    weather: Arc<WeatherCache>,
    /// When each vehicle was asked to stream its wind estimate (WIND_COV).
    wind_asked: Mutex<HashMap<u8, std::time::Instant>>,
    /// When each vehicle was asked for its HOME_POSITION.
    home_asked: Mutex<HashMap<u8, std::time::Instant>>,
    alerts: AlertBook,
    /// Vehicles taken off a routine run in the air, holding there for an alert (its id).
    diverted: Mutex<HashMap<u8, i64>>,
    /// One dispatch pass at a time: the tick's and an alert's must not launch a run twice.
    dispatching: Mutex<()>,
}

/// The key under which a run's captures and sorties are stored.
pub fn capture_run_key(run: &Run) -> String {
    format!("{}-{}", run.patrol, run.id)
}

impl Service {
    pub fn new(
        scheduler: Scheduler,
        clock: Arc<dyn Clock>,
        fleet: Fleet,
        pipeline: Arc<Pipeline>,
        cfg: ServiceConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            alerts: AlertBook::new(pipeline.store.clone()),
            map: pipeline.map.clone(),
            scheduler,
            clock,
            fleet,
            pipeline,
            wake: Arc::new(Notify::new()),
            cfg,
            flying: Mutex::new(HashMap::new()),
            weather: Arc::new(WeatherCache::default()),
            wind_asked: Mutex::new(HashMap::new()),
            home_asked: Mutex::new(HashMap::new()),
            diverted: Mutex::new(HashMap::new()),
            dispatching: Mutex::new(()),
        })
    }

    pub fn book(&self) -> &RunBook {
        self.scheduler.book()
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn flying(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Flying>> {
        self.flying.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn diverted_lock(&self) -> std::sync::MutexGuard<'_, HashMap<u8, i64>> {
        self.diverted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ticks until `stop` turns true, with the capture pipeline running beside; then
    /// stops booking and lets the sorties in the air finish.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let (pipe_stop, pipe_rx) = watch::channel(false);
        let pipe = tokio::spawn(self.pipeline.clone().run(
            self.wake.clone(),
            Duration::from_millis(500),
            pipe_rx,
        ));
        self.reattach(true);
        let mut tick = tokio::time::interval(self.cfg.tick);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = self.step() {
                        tracing::error!("scheduler: {e}");
                    }
                }
                _ = stop.changed() => break,
            }
        }
        if self.cfg.on_stop == OnStop::Return {
            for f in self.flying().values_mut() {
                f.pausing = Some("the service stopped".into());
                let _ = f.abort.send(true);
            }
            tracing::info!("stopping: no more runs start; the sorties in the air return home");
        } else {
            tracing::info!("stopping: no more runs start; waiting for the sorties in the air");
        }
        while !self.flying().is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = pipe_stop.send(true);
        let _ = pipe.await;
    }

    /// Runs left preparing or executing by a controller that is gone go back to the
    /// queue: at start this controller's own (it stopped or crashed), and at any time
    /// another's whose lease lapsed (it died, or lost the database). A vehicle still
    /// flying one of their sorties is re-attached by `fly_vehicle` when the run is
    /// dispatched to it again. Runs another live controller flies are left alone.
    fn reattach(&self, at_start: bool) {
        let _one = self.dispatching.lock().unwrap_or_else(|p| p.into_inner());
        let now = us(self.now());
        for state in [RunState::Preparing, RunState::Executing] {
            let runs = self
                .book()
                .list(&RunFilter {
                    state: Some(state),
                    ..Default::default()
                })
                .unwrap_or_default();
            for r in runs {
                if self.flying().contains_key(&r.id) {
                    continue;
                }
                match self.book().take_back(r.id, &self.cfg.holder, at_start, now) {
                    Ok(Some(r)) => tracing::info!("run {}: {}", r.id, r.reason),
                    Ok(None) => {}
                    Err(e) => tracing::error!("run {}: taking it back: {e}", r.id),
                }
            }
        }
    }

    /// One tick: book what fired, renew leases, dispatch what waits.
    pub fn step(self: &Arc<Self>) -> Result<()> {
        let now = self.now();
        self.scheduler.tick(now)?;
        let t = us(now);
        let ttl = self.cfg.lease_ttl.as_micros() as i64;
        let held: Vec<(i64, u8)> = self.flying().iter().map(|(r, f)| (*r, f.sysid)).collect();
        for (run, sysid) in held {
            match self.book().renew(sysid, run, &self.cfg.holder, t + ttl) {
                Ok(None) => {}
                // Another run of this controller's took the vehicle (an alert's diversion).
                Ok(Some(Some(h))) if h == self.cfg.holder => {}
                // Another controller took the vehicle over while this one stalled past its
                // lease: it flies the run now, so this one lets go without a command.
                Ok(Some(now)) => {
                    tracing::warn!(
                        "vehicle {sysid}: {} holds its lease now; run {run} left to it",
                        now.as_deref().unwrap_or("another controller")
                    );
                    if let Some(f) = self.flying().get(&run) {
                        f.detached.store(true, std::sync::atomic::Ordering::SeqCst);
                        let _ = f.abort.send(true);
                    }
                }
                Err(e) => {
                    tracing::error!("renewing the lease of vehicle {sysid} for run {run}: {e}")
                }
            }
        }
        self.reattach(false);
        self.dispatch(now)
    }

    /// The alert run `run` flies (its patrol is `alert-<id>`); None for a patrol's run.
    fn alert_of(&self, run: &Run) -> Option<Alert> {
        if run.trigger != super::run::Trigger::Alert {
            return None;
        }
        let id: i64 = run.patrol.strip_prefix("alert-")?.parse().ok()?;
        self.alerts.get(id).ok()
    }

    /// An alert's flight as a patrol: its one point, hovered over and orbited.
    fn alert_def(&self, a: &Alert) -> Option<PatrolDef> {
        let c = &self.cfg.alert;
        let json = serde_json::json!({
            "name": format!("alert-{}", a.id),
            "cells": [a.cell_id],
            "pattern": "points",
            "alt_m": c.alt_m,
            "camera": c.camera,
            "speed_m_s": c.speed_m_s,
            "battery_min": c.battery_min,
            "ready": { "min_battery_pct": c.reserve_pct },
        });
        serde_json::from_value(json).ok()
    }

    /// The alerts on record.
    pub fn alerts(&self) -> &AlertBook {
        &self.alerts
    }

    /// Raises an alert for `who`: checked against the district, merged into an open one
    /// for the same place, or booked as a run that is dispatched at once.
    pub fn raise_alert(
        self: &Arc<Self>,
        req: &AlertRequest,
        who: &str,
    ) -> std::result::Result<Alert, AlertError> {
        let at = req.locate(&self.map)?;
        let now = us(self.now());
        let a = self.alerts.raise(req, &at, who, now)?;
        if a.state == AlertState::Merged {
            return Ok(a);
        }
        let reason = format!(
            "alert {}: {} at ({:.6}, {:.6}) in {}, {} from {} {}",
            a.id,
            a.category,
            a.lat,
            a.lon,
            a.cell_id,
            a.priority.as_str(),
            a.source.kind,
            a.source.id
        );
        let run = self
            .book()
            .create(
                &format!("alert-{}", a.id),
                now,
                super::run::Trigger::Alert,
                RunState::Waiting,
                &reason,
                now,
            )
            .map_err(|e| AlertError::Invalid(e.to_string()))?;
        if let Some(run) = run {
            self.alerts.set_run(a.id, run.id)?;
        }
        if let Err(e) = self.dispatch(self.now()) {
            tracing::error!("dispatching alert {}: {e}", a.id);
        }
        self.alerts.get(a.id)
    }

    /// The middle of `cells` (all of the district when empty): (lat, lon) degrees.
    fn area_centre(&self, cells: &[String]) -> Option<(f64, f64)> {
        use geo::Centroid;
        let pts: Vec<geo::Point<f64>> = self
            .map
            .cells
            .iter()
            .filter(|c| cells.is_empty() || cells.contains(&c.id))
            .filter_map(|c| c.polygon.centroid())
            .collect();
        let n = pts.len() as f64;
        (n > 0.0).then(|| {
            let (x, y) = pts
                .iter()
                .fold((0.0, 0.0), |(x, y), p| (x + p.x(), y + p.y()));
            (y / n, x / n)
        })
    }

    /// The district the patrols fly over.
    pub fn map(&self) -> &GridMap {
        &self.map
    }

    /// The capture → event pipeline.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// Where the photos are kept.
    pub fn images(&self) -> &crate::capture::ImageStore {
        &self.pipeline.images
    }

    /// The district's cell ids.
    pub fn cells(&self) -> Vec<String> {
        self.map.cells.iter().map(|c| c.id.clone()).collect()
    }

    /// Waiting and paused runs due now, oldest first, each to the best ready vehicle;
    /// a run no vehicle can take stays queued.
    fn dispatch(self: &Arc<Self>, now: DateTime<Utc>) -> Result<()> {
        let _one = self.dispatching.lock().unwrap_or_else(|p| p.into_inner());
        let t = us(now);
        let mut queue: Vec<Run> = Vec::new();
        for state in [RunState::Paused, RunState::Waiting] {
            queue.extend(self.book().list(&RunFilter {
                state: Some(state),
                to_us: Some(t + 1),
                ..Default::default()
            })?);
        }
        // Each alert read once. First the paused runs whose own vehicle still holds their
        // sortie (in the air, or landed with it complete: see `own_vehicle`), so that no
        // other run takes that vehicle; then alerts, the most urgent first; then the oldest.
        let mut queue: Vec<(Option<Alert>, Run)> =
            queue.into_iter().map(|r| (self.alert_of(&r), r)).collect();
        queue.sort_by_key(|(a, r)| {
            let urgency = a.as_ref().map_or(0, |a| 1 + a.priority as i64);
            (self.own_vehicle(r).is_none(), -urgency, r.planned_us, r.id)
        });
        for (alert, run) in queue {
            // An operator's pause holds a run until it is resumed.
            if self.flying().contains_key(&run.id) || run.held_by.is_some() {
                continue;
            }
            let def = match &alert {
                Some(a) => self.alert_def(a),
                None => self.scheduler.patrol(&run.patrol),
            };
            let Some(def) = def else {
                self.book().transition(
                    run.id,
                    RunState::Terminated,
                    &format!("patrol {:?} no longer exists", run.patrol),
                    None,
                    t,
                )?;
                continue;
            };
            // A run left in the air when the service stopped: its vehicle carries on, and
            // fly_vehicle re-attaches to the sortie it is flying.
            if let Some(v) = self.own_vehicle(&run) {
                self.launch(run, def, v, t)?;
                continue;
            }
            if let Some(a) = &alert {
                if run.state == RunState::Waiting {
                    self.dispatch_alert(run, def, a, t)?;
                    continue;
                }
            }
            // A ready condition that fails skips a new run and ends a paused one.
            let refuse = |why: &[String]| {
                let (to, word) = if run.state == RunState::Paused {
                    (RunState::PartiallyDone, "ended")
                } else {
                    (RunState::Skipped, "skipped")
                };
                self.book()
                    .transition(run.id, to, &format!("{word}: {}", why.join("; ")), None, t)
            };
            let (lat, lon) = self.map.home.map_or((0.0, 0.0), |h| (h.lat, h.lon));
            let wind = match def.ready.weather_url.as_deref() {
                // Its weather source has not answered yet: the run waits for it.
                Some(url) => match self.weather.wind(url) {
                    None => continue,
                    Some(w) => w.ok(),
                },
                None => None,
            };
            let site = site_failures(&def.ready, lat, lon, now, wind);
            if !site.is_empty() {
                refuse(&site)?;
                continue;
            }
            match self.choose_vehicle(&run, &def, t) {
                Ok(v) => self.launch(run, def, v, t)?,
                Err(why) if why.is_empty() => {} // every allowed vehicle is busy: queued
                Err(why) => {
                    refuse(&why)?;
                }
            }
        }
        Ok(())
    }

    /// The vehicle a paused run must go back to: its own, still flying one of its sorties
    /// (left in the air when its controller stopped), or landed with a sortie complete on
    /// board (flown to its end while its controller was gone; `fly_vehicle` records it
    /// rather than flying it again). None for another paused run, whichever vehicle is
    /// ready then takes it.
    fn own_vehicle(&self, run: &Run) -> Option<Vehicle> {
        if run.state != RunState::Paused {
            return None;
        }
        let v = run
            .sysid
            .filter(|id| !self.diverted_lock().contains_key(id))
            .and_then(|id| self.fleet.vehicle(id))?;
        let t = v.telemetry();
        let holds_it = t.armed
            || (t.link == crate::vehicle::LinkState::Connected
                && t.mission_state == Some(crate::patrol::MISSION_STATE_COMPLETE));
        holds_it.then_some(v)
    }

    /// Sends the vehicle first over the alert's point, or takes one off a routine patrol
    /// (it holds in the air; once its run lets go, the alert takes it from there), or
    /// refuses the alert with each vehicle's reason. An alert whose vehicles are all busy
    /// waits.
    fn dispatch_alert(self: &Arc<Self>, run: Run, def: PatrolDef, a: &Alert, t: i64) -> Result<()> {
        let c = &self.cfg.alert;
        let home = self.map.home.map_or((a.lat, a.lon), |h| (h.lat, h.lon));
        let zones: Vec<_> = self.map.no_fly.iter().map(|z| z.polygon.clone()).collect();
        let obstacles = crate::plan::avoid::Obstacles::new(
            alert_dispatch::frame(home),
            &zones,
            crate::plan::route::NO_FLY_MARGIN_M,
        );
        let flying: Vec<(i64, u8)> = self.flying().iter().map(|(r, f)| (*r, f.sysid)).collect();
        // A vehicle taken off a patrol for this alert: wait until that run lets it go.
        let reserved: Option<u8> = self
            .diverted_lock()
            .iter()
            .find(|(_, id)| **id == a.id)
            .map(|(s, _)| *s);
        if reserved.is_some_and(|sysid| flying.iter().any(|(_, s)| *s == sysid)) {
            return Ok(());
        }
        let mut why = Vec::new();
        let mut offers = Vec::new();
        let mut busy = 0;
        for sysid in self.fleet.sysids() {
            let Some(v) = self.fleet.vehicle(sysid) else {
                continue;
            };
            let tel = v.telemetry();
            let leased = self
                .book()
                .lease_holder(sysid, t)
                .ok()
                .flatten()
                .filter(|r| *r != run.id);
            let on = flying.iter().find(|(_, s)| *s == sysid).map(|(r, _)| *r);
            let held_for = self.diverted_lock().get(&sysid).copied();
            if held_for.is_some_and(|id| id != a.id) {
                busy += 1; // holding in the air for another alert
                continue;
            }
            let ours = held_for == Some(a.id) && tel.armed && !tel.on_ground();
            // A vehicle on a routine run may be taken off it; not one on another alert,
            // one leased by another controller, or one on its way home.
            let flying_run = match on.or(leased) {
                Some(r) => {
                    let routine = self.book().get(r).is_ok_and(|other| {
                        other.state == RunState::Executing
                            && other.trigger != super::run::Trigger::Alert
                    });
                    let pausing = self.flying().get(&r).is_some_and(|f| f.pausing.is_some());
                    if !(routine && on.is_some() && !pausing && a.priority >= c.preempt_at) {
                        busy += 1;
                        continue;
                    }
                    Some(r)
                }
                None => None,
            };
            if flying_run.is_none() && !ours {
                let f = vehicle_failures(&def.ready, &tel, 0.0);
                if !f.is_empty() {
                    why.extend(f);
                    continue;
                }
            }
            let Some(at) = tel
                .position
                .as_ref()
                .map(|p| (p.lat, p.lon))
                .or(tel.home.map(|h| (h.lat, h.lon)))
            else {
                why.push(format!("vehicle {sysid}: no position"));
                continue;
            };
            let vhome = tel.home.map_or(home, |h| (h.lat, h.lon));
            let cand = Candidate {
                sysid,
                at,
                alt_rel_m: tel.position.as_ref().map_or(0.0, |p| f64::from(p.alt_rel)),
                airborne: !tel.on_ground(),
                home: vhome,
                battery_pct: tel.battery.remaining.map(f64::from),
                flying_run,
            };
            // One in the air (on a patrol, or holding for this alert) goes straight there.
            offers.push(alert_dispatch::offer(c, &obstacles, &cand, (a.lat, a.lon)));
        }
        if offers.is_empty() {
            if busy > 0 && why.is_empty() {
                return Ok(()); // every vehicle is busy: it waits
            }
            if why.is_empty() {
                why.push("no vehicle of the fleet is connected".into());
            }
        }
        let chosen = if offers.is_empty() {
            Err(why)
        } else {
            alert_dispatch::choose(c, &offers).map_err(|mut w| {
                w.extend(why);
                w
            })
        };
        match chosen {
            Ok(o) => {
                if let Some(patrol_run) = o.preempts {
                    // It holds where it is; once its run lets go, this alert takes it.
                    let reason = format!("pre-empted by alert {}", a.id);
                    if let Some(f) = self.flying().get_mut(&patrol_run) {
                        f.pausing = Some(reason.clone());
                        f.divert.store(true, std::sync::atomic::Ordering::SeqCst);
                        let _ = f.abort.send(true);
                    }
                    self.diverted_lock().insert(o.sysid, a.id);
                    self.alerts.set_state(
                        a.id,
                        AlertState::Dispatching,
                        &format!(
                            "vehicle {} leaves run {patrol_run} in the air and comes straight here (over the point in about {:.0} s)",
                            o.sysid, o.eta_s
                        ),
                        t,
                    )
                    .map_err(|e| RunError::Alert(e.to_string()))?;
                    return Ok(());
                }
                self.release_diverted(a.id, Some(o.sysid));
                let Some(v) = self.fleet.vehicle(o.sysid) else {
                    return Ok(());
                };
                self.alerts
                    .mark(a.id, Moment::Dispatched, Some(o.sysid), t)
                    .and_then(|()| {
                        self.alerts.set_state(
                            a.id,
                            AlertState::EnRoute,
                            &format!(
                                "vehicle {} on its way: over the point in about {:.0} s; the trip takes {:.0} % of its battery",
                                o.sysid, o.eta_s, o.need_pct
                            ),
                            t,
                        )
                    })
                    .map_err(|e| RunError::Alert(e.to_string()))?;
                self.launch(run, def, v, t)
            }
            Err(why) => {
                self.release_diverted(a.id, None);
                let reason = format!("refused: {}", why.join("; "));
                self.alerts
                    .set_state(a.id, AlertState::Refused, &reason, t)
                    .map_err(|e| RunError::Alert(e.to_string()))?;
                self.book()
                    .transition(run.id, RunState::Skipped, &reason, None, t)
                    .map(|_| ())
            }
        }
    }

    /// Ends alert `alert`'s hold on a vehicle it took off a patrol; one still holding in
    /// the air that is not `keep` (the vehicle the alert goes with) is sent home.
    fn release_diverted(&self, alert: i64, keep: Option<u8>) {
        let held: Vec<u8> = self
            .diverted_lock()
            .iter()
            .filter(|(_, id)| **id == alert)
            .map(|(s, _)| *s)
            .collect();
        self.diverted_lock().retain(|_, id| *id != alert);
        for sysid in held.into_iter().filter(|s| Some(*s) != keep) {
            let Some(v) = self.fleet.vehicle(sysid) else {
                continue;
            };
            if v.telemetry().armed {
                tracing::warn!(
                    sysid,
                    alert,
                    "the alert went otherwise: the vehicle holding for it returns"
                );
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move { v.return_to_launch().await });
                }
            }
        }
    }

    /// The nearest ready vehicle (then the one with the most battery), or why none is ready (empty: wait, as
    /// they are all busy with other runs, or one is charging in its dock and the run has
    /// waited less than `battery_wait`).
    /// Whether vehicle `v` was asked for something (by `ask`, run the first time) less
    /// than 5 s ago, so its answer is still worth waiting for.
    fn still_asking<F, Fut>(
        &self,
        asked: &Mutex<HashMap<u8, std::time::Instant>>,
        v: &Vehicle,
        ask: F,
    ) -> bool
    where
        F: FnOnce(Vehicle) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut asked = asked.lock().unwrap_or_else(|p| p.into_inner());
        let since = *asked.entry(v.sysid()).or_insert_with(|| {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(ask(v.clone()));
            }
            std::time::Instant::now()
        });
        since.elapsed() < Duration::from_secs(5)
    }

    fn choose_vehicle(
        &self,
        run: &Run,
        def: &PatrolDef,
        t: i64,
    ) -> std::result::Result<Vehicle, Vec<String>> {
        let busy: Vec<u8> = self.flying().values().map(|f| f.sysid).collect();
        let mut why = Vec::new();
        // Nearest first (100 m steps), then the most battery: the dock closest to the
        // patrol's cells saves the transit, as FlightHub 2 sends the nearest dock.
        let target = self.area_centre(&def.cells);
        let mut best: Option<(Vehicle, (u64, i8))> = None;
        let mut any_free = false;
        let mut charging = false;
        // A vehicle's wind or home still on its way: the run waits for them.
        let mut waiting = false;
        for sysid in self.fleet.sysids() {
            if !def.vehicles.is_empty() && !def.vehicles.contains(&sysid) {
                continue;
            }
            let leased = self
                .book()
                .lease_holder(sysid, t)
                .ok()
                .flatten()
                .is_some_and(|r| r != run.id);
            if busy.contains(&sysid) || leased {
                continue;
            }
            any_free = true;
            let Some(v) = self.fleet.vehicle(sysid) else {
                continue;
            };
            let tel: Telemetry = v.telemetry();
            // Without a weather source, the vehicle's own estimate: asked for once (1 Hz),
            // and given a few seconds to come before its absence counts.
            if def.ready.max_wind_m_s.is_some()
                && def.ready.weather_url.is_none()
                && tel.wind.is_none()
                && self.still_asking(&self.wind_asked, &v, |v| async move {
                    let _ = v.set_message_interval(231, 1e6).await;
                })
            {
                waiting = true;
                continue;
            }
            // A vehicle just heard may not have sent HOME_POSITION yet (PX4 sends it at
            // 0.5 Hz): asked for once, as QGroundControl asks on connecting, and given a
            // few seconds before its absence counts (the run is planned from it).
            if tel.home.is_none()
                && self.still_asking(&self.home_asked, &v, |v| async move {
                    let _ = v.request_message(1, 242, 0.0).await;
                })
            {
                waiting = true;
                continue;
            }
            // The sortie's own need is added once it is planned (fly waits for the charge).
            let f = vehicle_failures(&def.ready, &tel, 0.0);
            if f.is_empty() {
                let b = tel.battery.remaining.unwrap_or(0);
                let at = tel
                    .position
                    .as_ref()
                    .map(|p| (p.lat, p.lon))
                    .or(tel.home.map(|h| (h.lat, h.lon)));
                let steps = match (at, target) {
                    (Some(a), Some(t)) => {
                        (crate::geotag::distance_m(a.0, a.1, t.0, t.1) / 100.0) as u64
                    }
                    _ => u64::MAX,
                };
                let better = |(s, bb): &(u64, i8)| steps < *s || (steps == *s && b > *bb);
                if best.as_ref().is_none_or(|(_, k)| better(k)) {
                    best = Some((v, (steps, b)));
                }
            } else {
                charging |= f.iter().all(|s| s.contains(": battery ")) && !tel.armed;
                why.extend(f);
            }
        }
        let waited = t - run.updated_us;
        match best {
            Some((v, _)) => Ok(v),
            None if !any_free || waiting => Err(Vec::new()),
            None if charging && waited < self.cfg.battery_wait.as_micros() as i64 => {
                Err(Vec::new())
            }
            None if why.is_empty() => Err(vec!["no vehicle of the fleet may fly it".into()]),
            None => Err(why),
        }
    }

    fn launch(self: &Arc<Self>, run: Run, def: PatrolDef, v: Vehicle, t: i64) -> Result<()> {
        let sysid = v.sysid();
        let ttl = self.cfg.lease_ttl.as_micros() as i64;
        let resuming = run.state == RunState::Paused;
        let reason = format!(
            "{} on vehicle {sysid}",
            if resuming { "resuming" } else { "preparing" }
        );
        let claimed = self.book().claim(
            run.id,
            run.state,
            sysid,
            &self.cfg.holder,
            &reason,
            t,
            t + ttl,
        )?;
        if claimed.is_none() {
            return Ok(()); // another controller took the run or the vehicle first
        }
        let (abort_tx, abort_rx) = watch::channel(false);
        self.flying().insert(
            run.id,
            Flying {
                sysid,
                abort: abort_tx,
                pausing: None,
                divert: Default::default(),
                detached: Default::default(),
            },
        );
        let me = self.clone();
        tokio::spawn(async move {
            let outcome = me.fly(&run, &def, v, abort_rx).await;
            let now = us(me.now());
            let (to, reason) = outcome;
            let detached = me
                .flying()
                .get(&run.id)
                .is_some_and(|f| f.detached.load(std::sync::atomic::Ordering::SeqCst));
            if detached {
                // The run and the lease are the other controller's now.
                me.flying().remove(&run.id);
                return;
            }
            // Done without taking off: its vehicle had flown what was left to its end
            // while no controller watched (fly_vehicle recorded it). Still executed.
            if to == RunState::Success
                && me
                    .book()
                    .get(run.id)
                    .is_ok_and(|r| r.state == RunState::Preparing)
            {
                let _ = me.book().transition(
                    run.id,
                    RunState::Executing,
                    "its vehicle had flown it to its end",
                    None,
                    now,
                );
            }
            if let Err(e) = me.book().transition(run.id, to, &reason, None, now) {
                tracing::error!("run {}: {e}", run.id);
            }
            let _ = me.book().release(sysid, run.id);
            me.flying().remove(&run.id);
            if let Some(a) = me.alert_of(&run) {
                me.conclude_alert(&run, &a, to, &reason).await;
            }
        });
        Ok(())
    }

    /// An alert's flight has ended: once the pipeline has filed its photos, the events
    /// near the point are linked (confirmed), or it is not confirmed; a flight that never
    /// got there refuses it with the run's reason.
    async fn conclude_alert(&self, run: &Run, a: &Alert, to: RunState, reason: &str) {
        let key = capture_run_key(run);
        let store = self.pipeline.store.clone();
        // Filed within a minute, or concluded on what is filed.
        let until = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (s, k) = (store.clone(), key.clone());
            let pending = tokio::task::spawn_blocking(move || s.pending_captures(&k))
                .await
                .ok()
                .and_then(|r| r.ok())
                .unwrap_or(0);
            if pending == 0 || tokio::time::Instant::now() >= until {
                break;
            }
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let now = us(self.now());
        let got_there = self.alerts.get(a.id).is_ok_and(|a| a.over_us.is_some());
        let res = if got_there || to == RunState::Success {
            self.alerts
                .conclude(a.id, &key, self.cfg.alert.link_radius_m, now)
                .map(|_| ())
        } else {
            self.alerts.set_state(
                a.id,
                AlertState::Refused,
                &format!("the flight ended {}: {reason}", to.as_str()),
                now,
            )
        };
        if let Err(e) = res {
            tracing::error!("alert {}: {e}", a.id);
        }
    }

    /// Plans the run from the vehicle's home (or takes its stored sorties when resuming)
    /// and flies what is left of it; the state it ends in, with the reason.
    async fn fly(
        &self,
        run: &Run,
        def: &PatrolDef,
        v: Vehicle,
        abort: watch::Receiver<bool>,
    ) -> (RunState, String) {
        let key = capture_run_key(run);
        let store = self.pipeline.store.clone();
        let jobs = match self.jobs_for(run, def, &v, &key) {
            Ok(j) => j,
            Err(e) => return (RunState::FailedToStart, e),
        };
        let done = store.sorties_finished(&key, None).unwrap_or_default();
        let breakpoints = store.breakpoints(&key).unwrap_or_default();
        // A sortie cut short resumes at its breakpoint; `origin` maps the resumed
        // mission's items back to the planned ones.
        let mut origin: HashMap<usize, Vec<Option<usize>>> = HashMap::new();
        let left: Vec<SortieJob> = jobs
            .iter()
            .filter(|j| !done.contains(&j.index))
            .map(|j| {
                let reached = breakpoints
                    .iter()
                    .find(|(s, _)| *s == j.index)
                    .and_then(|(_, r)| *r);
                let (job, map) = resume_job(j, reached);
                origin.insert(j.index, map);
                job
            })
            .collect();
        if left.is_empty() {
            return (
                RunState::Success,
                format!("all {} sortie(s) flown", jobs.len()),
            );
        }
        // The fence fits: checked before anything is uploaded, so the run is skipped
        // with the reason instead of failing at the vehicle.
        let tel = v.telemetry();
        if def.ready.fence_fits && !tel.armed {
            if let Some(h) = tel.home {
                let f = super::ready::fence_failures(&left, (h.lat, h.lon));
                if !f.is_empty() {
                    return (RunState::Skipped, format!("skipped: {}", f.join("; ")));
                }
            }
        }
        // Executing from the moment the vehicle arms.
        let watcher = {
            let (book, v, id) = (self.book().clone(), v.clone(), run.id);
            let clock = self.clock.clone();
            tokio::spawn(async move {
                if v.wait_for(Duration::from_secs(24 * 3600), |t| t.armed)
                    .await
                {
                    let _ = book.transition(
                        id,
                        RunState::Executing,
                        &format!("vehicle {} armed", v.sysid()),
                        None,
                        us(clock.now()),
                    );
                }
            })
        };
        // One lock, released before the context is built.
        let (divert, detached) = self
            .flying()
            .get(&run.id)
            .map(|f| (f.divert.clone(), f.detached.clone()))
            .unwrap_or_default();
        let ctx = Arc::new(RunContext {
            run_id: key.clone(),
            store: store.clone(),
            wake: self.wake.clone(),
            abort: abort.clone(),
            // Battery N % after the sortie's need: a vehicle short of it waits in its dock
            // for a swap or charge, up to battery_wait.
            min_battery_pct: (def.ready.min_battery_pct + sortie_need_pct(def, &left[0]))
                .min(100.0)
                .round() as i8,
            preflight_wait: self.cfg.preflight_wait,
            battery_wait: self.cfg.battery_wait,
            sortie_timeout: self.cfg.sortie_timeout,
            progress: indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::hidden(),
            ),
            observer: None,
            recorder: crate::patrol::CaptureRecorder::start(
                store.clone(),
                key.clone(),
                self.wake.clone(),
            ),
            divert,
            detached,
            take_over_airborne: run.trigger == super::run::Trigger::Alert,
        });
        let track = tokio::spawn(crate::patrol::observe::record_track(
            v.clone(),
            store.clone(),
            key.clone(),
        ));
        let scene = self.alert_of(run).map(|a| {
            tokio::spawn(watch_scene(
                self.alerts.clone(),
                a,
                v.clone(),
                self.cfg.alert.clone(),
            ))
        });
        let rep = fly_vehicle(v, left.clone(), ctx).await;
        if let Some(s) = scene {
            s.abort();
        }
        watcher.abort();
        track.abort();
        if let Some((sortie, reached)) = rep.breakpoint {
            let planned = reached.and_then(|r| {
                origin
                    .get(&sortie)
                    .and_then(|m| m.get(usize::from(r)).copied().flatten())
            });
            let planned = planned.map(|p| p as u16);
            if let Err(e) = store.set_breakpoint(&key, sortie, planned, crate::events::now_us()) {
                tracing::error!("run {}: keeping the breakpoint: {e}", run.id);
            }
        }
        let flown = store.sorties_finished(&key, None).unwrap_or_default().len();
        let state_now = self.book().get(run.id).map(|r| r.state).ok();
        let pausing = self.flying().get(&run.id).and_then(|f| f.pausing.clone());
        if let (true, Some(why)) = (*abort.borrow(), pausing) {
            return match state_now {
                // Not yet in the air: it waits as it was.
                Some(RunState::Preparing) => (RunState::Waiting, format!("{why} before take-off")),
                _ if flown >= jobs.len() => (
                    RunState::Success,
                    format!("all {} sortie(s) flown", jobs.len()),
                ),
                _ => {
                    let diverted = self
                        .flying()
                        .get(&run.id)
                        .is_some_and(|f| f.divert.load(std::sync::atomic::Ordering::SeqCst));
                    let how = if diverted {
                        "held in the air and handed over"
                    } else {
                        "returned and landed"
                    };
                    (
                        RunState::Paused,
                        format!(
                            "{why}: {how}; {flown} of {} sortie(s) flown; resumes from its breakpoint",
                            jobs.len()
                        ),
                    )
                }
            };
        }
        if *abort.borrow() {
            return (
                RunState::Terminated,
                format!("cancelled; {flown} of {} sortie(s) flown", jobs.len()),
            );
        }
        match rep.error {
            None if flown >= jobs.len() => (
                RunState::Success,
                format!("all {} sortie(s) flown, {} photos", jobs.len(), rep.photos),
            ),
            None => (
                RunState::Paused,
                format!(
                    "{flown} of {} sortie(s) flown; resumes with the next",
                    jobs.len()
                ),
            ),
            Some(e) if state_now == Some(RunState::Preparing) => (RunState::FailedToStart, e),
            // The sortie ran past its time limit (it was told to come home).
            Some(e) if e.contains("did not end within") => (
                RunState::Timeout,
                format!("{e}; {flown} of {} sortie(s) flown", jobs.len()),
            ),
            Some(e) => {
                let resumes = self
                    .book()
                    .changes(run.id)
                    .map(|c| c.iter().filter(|c| c.to == RunState::Paused).count())
                    .unwrap_or(0);
                if resumes >= self.cfg.max_resumes {
                    (
                        RunState::PartiallyDone,
                        format!(
                            "{flown} of {} sortie(s) flown; cut short {} times, last: {e}",
                            jobs.len(),
                            resumes + 1
                        ),
                    )
                } else {
                    (
                        RunState::Paused,
                        format!(
                            "cut short: {e}; {flown} of {} sortie(s) flown, resumes from the next",
                            jobs.len()
                        ),
                    )
                }
            }
        }
    }

    /// The run's sorties: those stored when it was first planned, or a new plan from the
    /// vehicle's home (kept for resumes and restarts).
    fn jobs_for(
        &self,
        run: &Run,
        def: &PatrolDef,
        v: &Vehicle,
        key: &str,
    ) -> std::result::Result<Vec<SortieJob>, String> {
        let store = &self.pipeline.store;
        if let Some(json) = store.run_plan(key).ok().flatten() {
            if let Ok(jobs) = serde_json::from_str::<Vec<SortieJob>>(&json) {
                return Ok(jobs);
            }
        }
        let home = v
            .telemetry()
            .home
            .ok_or_else(|| format!("vehicle {} reports no home position", v.sysid()))?;
        let mut map = (*self.map).clone();
        map.home = Some(crate::grid::Home {
            lat: home.lat,
            lon: home.lon,
            alt_m: f64::from(home.alt_msl),
        });
        let opts = def.plan_options().map_err(|e| e.to_string())?;
        // An alert's one point, orbited: the planner's hotspot visit, round the no-fly
        // zones, under the fence and the ceiling; from where the vehicle is when it is
        // already in the air.
        let tel = v.telemetry();
        let jobs = match self.alert_of(run) {
            Some(a) => {
                let spot = crate::grid::Hotspot {
                    id: format!("alert-{}", a.id),
                    name: format!("alert {}: {}", a.id, a.category),
                    lat: a.lat,
                    lon: a.lon,
                    hover_s: self.cfg.alert.hover_s,
                    orbit_radius_m: Some(self.cfg.alert.orbit_radius_m),
                };
                match tel
                    .position
                    .as_ref()
                    .filter(|_| tel.armed && !tel.on_ground())
                {
                    Some(p) => {
                        let s = crate::plan::route::plan_visit_from_air(
                            &map,
                            &spot,
                            (p.lat, p.lon),
                            &opts,
                        )
                        .map_err(|e| format!("planning: {e}"))?;
                        vec![SortieJob {
                            index: 0,
                            mission: s.items,
                            fence: s.fence_items,
                            cells: s.cells,
                            flight_time_s: s.flight_time_s,
                        }]
                    }
                    None => {
                        map.hotspots = vec![spot];
                        let plan = crate::plan::plan_coverage(&map, &def.cells, &opts)
                            .map_err(|e| format!("planning: {e}"))?;
                        let mut jobs = jobs_from_plan(&plan);
                        anchor_to_homes(&mut jobs, &[(v.sysid(), home.lat, home.lon)], 100.0)?;
                        jobs
                    }
                }
            }
            None => {
                let plan = crate::plan::plan_coverage(&map, &def.cells, &opts)
                    .map_err(|e| format!("planning: {e}"))?;
                let mut jobs = jobs_from_plan(&plan);
                anchor_to_homes(&mut jobs, &[(v.sysid(), home.lat, home.lon)], 100.0)?;
                jobs
            }
        };
        if let Ok(json) = serde_json::to_string(&jobs) {
            let _ = store.save_run_plan(key, &json, crate::events::now_us());
        }
        tracing::info!(run = run.id, sorties = jobs.len(), "planned");
        Ok(jobs)
    }

    /// Books a run of `patrol` now, for `who`.
    pub fn start_now(&self, patrol: &str, who: &str) -> Result<Option<Run>> {
        self.scheduler.start_now(patrol, who, self.now())
    }

    /// Pauses run `id` for `who`: one in the air returns to its dock and lands, keeping
    /// its breakpoint; a queued one stays queued. Either is held until [`Self::resume`].
    pub fn pause(&self, id: i64, who: &str) -> Result<Run> {
        let run = self.book().get(id)?;
        if run.held_by.is_some() {
            return Ok(run);
        }
        let now = us(self.now());
        let mut flying = self.flying();
        if let Some(f) = flying.get_mut(&id) {
            let run = self.book().set_hold(
                id,
                Some(who),
                None,
                &format!("paused by {who}: returning to the dock"),
                now,
            )?;
            f.pausing = Some(format!("paused by {who}"));
            let _ = f.abort.send(true);
            return Ok(run);
        }
        drop(flying);
        self.book().set_hold(
            id,
            Some(who),
            Some(RunState::Paused),
            &format!("paused by {who}"),
            now,
        )
    }

    /// Lets a paused run go again: it resumes from its breakpoint on the best ready
    /// vehicle (one paused before it flew waits for a vehicle as it did).
    pub fn resume(&self, id: i64, who: &str) -> Result<Run> {
        let run = self.book().get(id)?;
        if run.held_by.is_none() {
            return Err(RunError::NotHeld(id));
        }
        let to =
            (run.state == RunState::Paused && run.sysid.is_none()).then_some(RunState::Waiting);
        self.book()
            .set_hold(id, None, to, &format!("resumed by {who}"), us(self.now()))
    }

    /// Cancels run `id`: a queued run is terminated at once; one in the air is told to
    /// pause, return and land, and ends terminated when it is down.
    pub fn cancel(&self, id: i64, who: &str) -> Result<Run> {
        let run = self.book().get(id)?;
        if let Some(f) = self.flying().get_mut(&id) {
            f.pausing = None; // a cancel overrides a pause
            let _ = f.abort.send(true);
            return Ok(run);
        }
        self.book().transition(
            id,
            RunState::Terminated,
            &format!("cancelled by {who}"),
            None,
            us(self.now()),
        )
    }
}

/// The battery share (percent) a sortie needs: its planned flight time over the patrol's
/// battery time.
fn sortie_need_pct(def: &PatrolDef, job: &SortieJob) -> f64 {
    (job.flight_time_s / (def.battery_min * 60.0) * 100.0).clamp(0.0, 100.0)
}

/// Marks an alert's flight as it goes: armed, climbed to orbit height (less 5 m), over the
/// point (within the orbit radius and 15 m, horizontally, at orbit height less 10 m).
async fn watch_scene(alerts: AlertBook, a: Alert, v: Vehicle, cfg: AlertConfig) {
    let sysid = Some(v.sysid());
    let day = Duration::from_secs(24 * 3600);
    let now = crate::events::now_us;
    if v.wait_for(day, |t| t.armed).await {
        let _ = alerts.mark(a.id, Moment::Armed, sysid, now());
    }
    let height = cfg.alt_m - 5.0;
    let climbed = |t: &Telemetry| {
        !t.on_ground()
            && t.position
                .as_ref()
                .is_some_and(|p| f64::from(p.alt_rel) >= height)
    };
    if v.wait_for(day, climbed).await {
        let _ = alerts.mark(a.id, Moment::Climbed, sysid, now());
    }
    let (lat, lon, r) = (a.lat, a.lon, cfg.orbit_radius_m + 15.0);
    let over = |t: &Telemetry| {
        t.position.as_ref().is_some_and(|p| {
            crate::geotag::distance_m(p.lat, p.lon, lat, lon) <= r
                && f64::from(p.alt_rel) >= cfg.alt_m - 10.0
        })
    };
    if v.wait_for(day, over).await {
        let t = now();
        let _ = alerts.mark(a.id, Moment::Over, sysid, t);
        let _ = alerts.set_state(
            a.id,
            AlertState::OnScene,
            &format!("vehicle {} over the point, orbiting", v.sysid()),
            t,
        );
    }
}
