//! The daemon's scheduler (DESIGN §9): runs the jobs on cron schedules with tokio-cron-scheduler.
//!
//! * recompute-then-sync on `[schedule] recompute_sync` (default hourly); a `[[sync]]` with a
//!   `schedule` of its own is taken out of that job and runs (its segment's recompute, then the sync)
//!   on its own cron;
//! * rotate and metrics pull on `[schedule] rotate` / `metrics_pull`, once their engine functions
//!   exist.
//!
//! Every tick is guarded three ways: a job never overlaps itself in this process (a tick that finds the
//! previous run still going is skipped and counted); across replicas, only the holder of the job's
//! lease runs a tick ([`crate::lease`]); and a failing job is logged, recorded in the run log and simply
//! tried again at its next tick, never touching the other jobs. On shutdown no new tick starts, the
//! jobs in flight see the [`Shutdown`] flag at their next batch boundary, and [`Scheduler::stop`] waits
//! (bounded) for them to record their runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use serde::Serialize;
use serde_json::json;
use thiserror::Error;
use tokio_cron_scheduler::{Job, JobScheduler};

use campaignd_connectors::{AudienceDestination, CreativeSwapper, MetricsSource};
use campaignd_store::runs::{Job as RunJob, Outcome};
use campaignd_store::Store;

use crate::lease::Leases;
use crate::metrics_pull::{pull, PullError, PullOptions};
use crate::recompute::{recompute, RecomputeError};
use crate::rotate::{rotate, RotateError, RotateOptions};
use crate::settings::{Settings, SyncSettings};
use crate::shutdown::Shutdown;
use crate::sync::{sync, SyncError, SyncOptions, SyncStatus};

/// Upper bounds (seconds) of the job duration histogram exported on `/metrics`.
pub const DURATION_BUCKETS: [f64; 9] = [0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// How far back a tick looks for the cron slot it fired for.
const SLOT_LOOKBACK_SECS: i64 = 300;

/// Why the scheduler could not be set up.
#[derive(Debug, Error)]
pub enum SchedulerError {
    /// A cron string in the configuration does not parse.
    #[error("{key}: invalid cron \"{cron}\" (six fields, seconds first, e.g. \"0 0 * * * *\"): {message}")]
    BadCron {
        /// Where it was configured (`[schedule] recompute_sync`, `[[sync]] #2 schedule`, ...).
        key: String,
        /// The string.
        cron: String,
        /// The parser's complaint.
        message: String,
    },
    /// tokio-cron-scheduler failed to start or to add a job.
    #[error("scheduler: {0}")]
    Cron(String),
}

/// What one scheduled job does.
#[derive(Debug, Clone)]
pub enum JobKind {
    /// Recompute every segment, then push these `[[sync]]`s (those without a schedule of their own).
    RecomputeSync {
        /// The syncs to run after the recompute.
        syncs: Vec<SyncSettings>,
    },
    /// Recompute one `[[sync]]`'s segment, then push it (a `[[sync]]` with its own `schedule`).
    Sync(SyncSettings),
    /// Rotate every `[[creative_set]]` that is due.
    Rotate,
    /// Pull the last [`METRICS_PULL_DAYS`] days of performance from every metrics source (platforms
    /// restate recent days, so each pull replaces them).
    MetricsPull,
}

/// Days of metrics each scheduled pull fetches, ending today (UTC).
pub const METRICS_PULL_DAYS: i64 = 7;

/// One job of the daemon: a name (also its lease's name), a cron and what it does.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// Unique name: `recompute_sync`, `sync:DESTINATION:AUDIENCE`, ...
    pub name: String,
    /// Six-field cron (seconds first), UTC.
    pub cron: String,
    /// What it runs.
    pub kind: JobKind,
}

fn parse_cron(key: &str, cron: &str) -> Result<Cron, SchedulerError> {
    Cron::new(cron)
        .with_seconds_required()
        .with_dom_and_dow()
        .parse()
        .map_err(|e| SchedulerError::BadCron {
            key: key.to_string(),
            cron: cron.to_string(),
            message: e.to_string(),
        })
}

/// Turns the configuration into the daemon's jobs, checking every cron string.
pub fn plan_jobs(settings: &Settings) -> Result<Vec<JobPlan>, SchedulerError> {
    let sched = &settings.schedule;
    parse_cron("[schedule] recompute_sync", &sched.recompute_sync)?;
    parse_cron("[schedule] rotate", &sched.rotate)?;
    parse_cron("[schedule] metrics_pull", &sched.metrics_pull)?;
    let mut plans = vec![JobPlan {
        name: "recompute_sync".into(),
        cron: sched.recompute_sync.clone(),
        kind: JobKind::RecomputeSync {
            syncs: settings
                .syncs
                .iter()
                .filter(|s| s.schedule.is_none())
                .cloned()
                .collect(),
        },
    }];
    if !settings.creative_sets.is_empty() {
        plans.push(JobPlan {
            name: "rotate".into(),
            cron: sched.rotate.clone(),
            kind: JobKind::Rotate,
        });
    }
    plans.push(JobPlan {
        name: "metrics_pull".into(),
        cron: sched.metrics_pull.clone(),
        kind: JobKind::MetricsPull,
    });
    for (i, s) in settings.syncs.iter().enumerate() {
        if let Some(cron) = &s.schedule {
            parse_cron(&format!("[[sync]] #{} schedule", i + 1), cron)?;
            plans.push(JobPlan {
                name: format!("sync:{}:{}", s.destination, s.audience()),
                cron: cron.clone(),
                kind: JobKind::Sync(s.clone()),
            });
        }
    }
    Ok(plans)
}

/// Counters of one job since the process started.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobStats {
    /// Runs by outcome (`success`, `failed`, `interrupted`).
    pub runs: BTreeMap<String, u64>,
    /// Ticks not run, by reason (`overlap`, `not_leader`, `lease_error`).
    pub skipped: BTreeMap<String, u64>,
    /// Cumulative counts of runs whose duration was at most each [`DURATION_BUCKETS`] bound.
    pub duration_buckets: Vec<u64>,
    /// Total seconds spent running.
    pub duration_sum: f64,
    /// Runs timed.
    pub duration_count: u64,
    /// When the last run ended (unix seconds).
    pub last_finished: Option<i64>,
    /// The last run's outcome.
    pub last_outcome: Option<String>,
}

/// Members pushed to one destination since the process started.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DestinationStats {
    /// Additions the platform acknowledged.
    pub added: u64,
    /// Removals the platform acknowledged.
    pub removed: u64,
    /// Rows the platform rejected.
    pub rejected: u64,
    /// Syncs that failed.
    pub failed_syncs: u64,
}

/// A copy of every counter, for `/metrics` and the API.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatsSnapshot {
    /// By job name.
    pub jobs: BTreeMap<String, JobStats>,
    /// By destination name.
    pub destinations: BTreeMap<String, DestinationStats>,
}

/// The scheduler's counters, shared with the admin server.
#[derive(Debug, Default)]
pub struct Stats(Mutex<StatsSnapshot>);

impl Stats {
    /// A consistent copy of every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut StatsSnapshot)) {
        if let Ok(mut s) = self.0.lock() {
            f(&mut s);
        }
    }

    fn skipped(&self, job: &str, reason: &str) {
        self.update(|s| {
            *s.jobs
                .entry(job.to_string())
                .or_default()
                .skipped
                .entry(reason.to_string())
                .or_default() += 1;
        });
    }

    fn finished(&self, job: &str, outcome: &str, took: Duration) {
        self.update(|s| {
            let j = s.jobs.entry(job.to_string()).or_default();
            *j.runs.entry(outcome.to_string()).or_default() += 1;
            let secs = took.as_secs_f64();
            if j.duration_buckets.len() != DURATION_BUCKETS.len() {
                j.duration_buckets = vec![0; DURATION_BUCKETS.len()];
            }
            for (count, bound) in j.duration_buckets.iter_mut().zip(DURATION_BUCKETS) {
                if secs <= bound {
                    *count += 1;
                }
            }
            j.duration_sum += secs;
            j.duration_count += 1;
            j.last_finished = Some(Utc::now().timestamp());
            j.last_outcome = Some(outcome.to_string());
        });
    }
}

/// The configured destinations, built once so their HTTP counters (retries, throttles) accumulate.
pub type Destinations = BTreeMap<String, Arc<dyn AudienceDestination>>;

/// Everything the jobs need, shared by every tick.
pub struct SchedulerContext {
    /// The store.
    pub store: Store,
    /// The validated configuration.
    pub settings: Arc<Settings>,
    /// The built destinations.
    pub destinations: Arc<Destinations>,
    /// Creative swappers by destination (rotate).
    pub swappers: Arc<BTreeMap<String, Arc<dyn CreativeSwapper>>>,
    /// Metrics sources by destination (metrics pull).
    pub metrics_sources: Arc<BTreeMap<String, Arc<dyn MetricsSource>>>,
    /// This replica's leases.
    pub leases: Leases,
    /// The process-wide stop request.
    pub shutdown: Shutdown,
}

struct Entry {
    plan: JobPlan,
    cron: Cron,
    running: tokio::sync::Mutex<()>,
}

struct Inner {
    ctx: SchedulerContext,
    stats: Arc<Stats>,
    /// Recomputes of different jobs do not run at once (they would contend on the same rows).
    recompute_lock: tokio::sync::Mutex<()>,
}

/// What a job left undone: the message, and whether the engine already recorded it in the run log.
struct Failure {
    message: String,
    recorded: bool,
    run_job: RunJob,
}

/// A scheduled job as shown by the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct JobInfo {
    /// The job's name.
    pub name: String,
    /// Its cron.
    pub cron: String,
    /// When it fires next.
    pub next: Option<DateTime<Utc>>,
}

/// The scheduled jobs, shareable with the admin server while the scheduler runs.
#[derive(Clone)]
pub struct JobTable(Arc<Vec<Arc<Entry>>>);

impl JobTable {
    /// Every job with its cron and next fire time.
    pub fn list(&self) -> Vec<JobInfo> {
        let now = Utc::now();
        self.0
            .iter()
            .map(|e| JobInfo {
                name: e.plan.name.clone(),
                cron: e.plan.cron.clone(),
                next: e.cron.find_next_occurrence(&now, false).ok(),
            })
            .collect()
    }
}

/// The running scheduler.
pub struct Scheduler {
    inner: Arc<Inner>,
    entries: Vec<Arc<Entry>>,
    cron: JobScheduler,
}

/// The cron slot (unix seconds) a tick firing at `now` belongs to: the latest matching second at or
/// before it, so every replica names the same tick the same way whatever its scheduling jitter.
pub fn cron_slot(cron: &Cron, now: DateTime<Utc>) -> i64 {
    let floor = now.timestamp();
    (0..=SLOT_LOOKBACK_SECS)
        .map(|k| floor - k)
        .find(|t| {
            Utc.timestamp_opt(*t, 0)
                .single()
                .is_some_and(|dt| cron.is_time_matching(&dt).unwrap_or(false))
        })
        .unwrap_or(floor)
}

impl Scheduler {
    /// Validates nothing (see [`plan_jobs`]); registers every job and starts ticking. With
    /// `run_on_start`, recompute-then-sync also runs once now (still subject to the lease).
    pub async fn start(
        ctx: SchedulerContext,
        plans: Vec<JobPlan>,
        run_on_start: bool,
    ) -> Result<Scheduler, SchedulerError> {
        let inner = Arc::new(Inner {
            ctx,
            stats: Arc::new(Stats::default()),
            recompute_lock: tokio::sync::Mutex::new(()),
        });
        let cron_err =
            |e: tokio_cron_scheduler::JobSchedulerError| SchedulerError::Cron(e.to_string());
        let sched = JobScheduler::new().await.map_err(cron_err)?;
        let mut entries = Vec::new();
        for plan in plans {
            let cron = parse_cron(&plan.name, &plan.cron)?;
            let entry = Arc::new(Entry {
                plan,
                cron,
                running: tokio::sync::Mutex::new(()),
            });
            let (inner2, entry2) = (inner.clone(), entry.clone());
            let job = Job::new_async(entry.plan.cron.as_str(), move |_id, _lock| {
                let (inner, entry) = (inner2.clone(), entry2.clone());
                Box::pin(async move {
                    let slot = cron_slot(&entry.cron, Utc::now());
                    tick(inner, entry, slot).await;
                })
            })
            .map_err(cron_err)?;
            sched.add(job).await.map_err(cron_err)?;
            tracing::info!(job = %entry.plan.name, cron = %entry.plan.cron, "job scheduled");
            entries.push(entry);
        }
        sched.start().await.map_err(cron_err)?;
        if run_on_start {
            // Recompute-then-sync first, then a metrics pull, so a fresh start has data to show.
            let first: Vec<Arc<Entry>> = ["recompute_sync", "metrics_pull"]
                .iter()
                .filter_map(|n| entries.iter().find(|e| e.plan.name == *n).cloned())
                .collect();
            let inner = inner.clone();
            tokio::spawn(async move {
                for entry in first {
                    tick(inner.clone(), entry, Utc::now().timestamp()).await;
                }
            });
        }
        Ok(Scheduler {
            inner,
            entries,
            cron: sched,
        })
    }

    /// The counters, for `/metrics`.
    pub fn stats(&self) -> Arc<Stats> {
        self.inner.stats.clone()
    }

    /// A cloneable view of the jobs, for the admin API.
    pub fn job_table(&self) -> JobTable {
        JobTable(Arc::new(self.entries.clone()))
    }

    /// The jobs with their next fire time.
    pub fn jobs(&self) -> Vec<JobInfo> {
        self.job_table().list()
    }

    /// Stops scheduling, asks the jobs in flight to stop at their next batch boundary, and waits up to
    /// `grace` for them to finish and record their runs. Returns false when the grace ran out.
    pub async fn stop(mut self, grace: Duration) -> bool {
        self.inner.ctx.shutdown.request();
        if let Err(e) = self.cron.shutdown().await {
            tracing::warn!(error = %e, "stopping the cron scheduler");
        }
        let entries = self.entries.clone();
        let wait = async move {
            for e in &entries {
                let _idle = e.running.lock().await;
            }
        };
        let finished = tokio::time::timeout(grace, wait).await.is_ok();
        match self.inner.ctx.leases.release_all().await {
            Ok(n) => tracing::info!(released = n, "leases released"),
            Err(e) => tracing::warn!(error = %e, "cannot release leases; they lapse on their own"),
        }
        finished
    }
}

async fn tick(inner: Arc<Inner>, entry: Arc<Entry>, slot: i64) {
    let name = entry.plan.name.as_str();
    let ctx = &inner.ctx;
    if ctx.shutdown.requested() {
        return;
    }
    let Ok(_running) = entry.running.try_lock() else {
        tracing::warn!(job = name, "previous run still going: tick skipped");
        inner.stats.skipped(name, "overlap");
        return;
    };
    if ctx.shutdown.requested() {
        return;
    }
    match ctx.leases.claim(name, slot).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(
                job = name,
                tick = slot,
                "tick skipped: another live replica holds this job's lease"
            );
            inner.stats.skipped(name, "not_leader");
            return;
        }
        Err(e) => {
            tracing::warn!(job = name, error = %e, "cannot claim the lease: tick skipped");
            inner.stats.skipped(name, "lease_error");
            return;
        }
    }
    let (stop, _heartbeat) = ctx.leases.hold(name, &ctx.shutdown);
    tracing::info!(job = name, tick = slot, "job started");
    let started = Instant::now();
    let result = run_job(&inner, &entry.plan, &stop).await;
    let took = started.elapsed();
    let outcome = match &result {
        Ok(true) => "success",
        Ok(false) => "interrupted",
        Err(_) => "failed",
    };
    inner.stats.finished(name, outcome, took);
    match result {
        Ok(_) => {
            tracing::info!(
                job = name,
                outcome,
                duration_ms = took.as_millis() as u64,
                "job finished"
            )
        }
        Err(f) => {
            tracing::error!(job = name, duration_ms = took.as_millis() as u64, error = %f.message, "job failed; retried at its next tick");
            if !f.recorded {
                record_failure(&ctx.store, f.run_job, name, &f.message).await;
            }
        }
    }
}

/// Puts a failure the engine could not record itself (bad configuration at run time, an unreachable
/// destination section, ...) in the run log, so `campaignd runs` and `/api/runs` show it.
async fn record_failure(store: &Store, run_job: RunJob, scheduled: &str, message: &str) {
    let res = async {
        let id = store
            .start_run(run_job, Some(scheduled), Utc::now())
            .await?;
        store
            .finish_run(
                id,
                Outcome::Failed,
                &json!({ "scheduled_job": scheduled }),
                Some(message),
            )
            .await
    }
    .await;
    if let Err(e) = res {
        tracing::error!(job = scheduled, error = %e, "cannot record the failed run");
    }
}

/// Runs one job; `Ok(true)` done, `Ok(false)` stopped by shutdown, `Err` failed (possibly partly).
async fn run_job(inner: &Inner, plan: &JobPlan, stop: &Shutdown) -> Result<bool, Failure> {
    let ctx = &inner.ctx;
    let (only, syncs) = match &plan.kind {
        JobKind::RecomputeSync { syncs } => (None, syncs.clone()),
        JobKind::Sync(s) => (Some(s.segment.clone()), vec![s.clone()]),
        JobKind::Rotate => return run_rotate(ctx).await,
        JobKind::MetricsPull => return run_metrics_pull(ctx).await,
    };
    let mut failure = None;
    {
        let _one_at_a_time = inner.recompute_lock.lock().await;
        if let Err(e) = recompute(&ctx.store, &ctx.settings, Utc::now(), only.as_deref()).await {
            let recorded = matches!(e, RecomputeError::Store(_));
            failure = Some(Failure {
                message: format!("recompute: {e}"),
                recorded,
                run_job: RunJob::Recompute,
            });
        }
    }
    if stop.requested() {
        return failure.map_or(Ok(false), Err);
    }
    if !syncs.is_empty() {
        let mut settings = (*ctx.settings).clone();
        settings.syncs = syncs;
        match sync(
            &ctx.store,
            &settings,
            &ctx.destinations,
            &SyncOptions::default(),
            stop,
        )
        .await
        {
            Ok(report) => {
                let mut interrupted = false;
                let mut failed = Vec::new();
                inner.stats.update(|s| {
                    for o in &report.syncs {
                        let d = s.destinations.entry(o.destination.clone()).or_default();
                        d.added += o.added.max(0) as u64;
                        d.removed += o.removed.max(0) as u64;
                        d.rejected += o.rejected.max(0) as u64;
                        match &o.status {
                            SyncStatus::Failed(e) => {
                                d.failed_syncs += 1;
                                failed.push(format!("{} -> {}: {e}", o.segment, o.destination));
                            }
                            SyncStatus::Interrupted => interrupted = true,
                            _ => {}
                        }
                    }
                });
                if !failed.is_empty() && failure.is_none() {
                    failure = Some(Failure {
                        message: format!("sync: {}", failed.join("; ")),
                        recorded: true,
                        run_job: RunJob::Sync,
                    });
                }
                if interrupted && failure.is_none() {
                    return Ok(false);
                }
            }
            Err(e) => {
                let recorded = matches!(e, SyncError::Store(_));
                if failure.is_none() {
                    failure = Some(Failure {
                        message: format!("sync: {e}"),
                        recorded,
                        run_job: RunJob::Sync,
                    });
                }
            }
        }
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(!stop.requested()),
    }
}

async fn run_rotate(ctx: &SchedulerContext) -> Result<bool, Failure> {
    let opts = RotateOptions {
        as_of: Utc::now(),
        dry_run: false,
    };
    match rotate(&ctx.store, &ctx.settings, &ctx.swappers, &opts).await {
        Ok(report) if report.any_failed() => Err(Failure {
            message: "rotate: one or more creative sets failed (see the run's counts)".into(),
            recorded: true,
            run_job: RunJob::Rotate,
        }),
        Ok(_) => Ok(true),
        Err(e) => Err(Failure {
            recorded: matches!(e, RotateError::Store(_)),
            message: format!("rotate: {e}"),
            run_job: RunJob::Rotate,
        }),
    }
}

async fn run_metrics_pull(ctx: &SchedulerContext) -> Result<bool, Failure> {
    let now = Utc::now();
    let until = now.date_naive();
    let opts = PullOptions {
        since: until - chrono::Duration::days(METRICS_PULL_DAYS - 1),
        until,
        as_of: now,
    };
    match pull(&ctx.store, &ctx.settings, &ctx.metrics_sources, &opts).await {
        Ok(report) if report.any_failed() => Err(Failure {
            message: "metrics pull: one or more destinations failed (see the run's counts)".into(),
            recorded: true,
            run_job: RunJob::Metrics,
        }),
        Ok(_) => Ok(true),
        Err(e) => Err(Failure {
            recorded: matches!(e, PullError::Store(_)),
            message: format!("metrics pull: {e}"),
            run_job: RunJob::Metrics,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_the_latest_matching_second() {
        let cron = parse_cron("t", "*/5 * * * * *").unwrap();
        let at = |s: i64| Utc.timestamp_opt(s, 0).single().unwrap();
        assert_eq!(cron_slot(&cron, at(1_000_000_000)), 1_000_000_000);
        assert_eq!(cron_slot(&cron, at(1_000_000_003)), 1_000_000_000);
        let hourly = parse_cron("t", "0 0 * * * *").unwrap();
        assert_eq!(cron_slot(&hourly, at(3600 * 1000 + 2)), 3600 * 1000);
    }

    #[test]
    fn plans_split_out_syncs_with_their_own_schedule() {
        let settings: Settings = toml_settings(
            r#"
            [schedule]
            recompute_sync = "*/2 * * * * *"
            [[segment]]
            name = "a"
            rule = "orders.count() >= 1"
            [destinations.x]
            kind = "sandbox"
            [[sync]]
            segment = "a"
            destination = "x"
            [[sync]]
            segment = "a"
            destination = "x"
            audience_name = "fast"
            schedule = "*/1 * * * * *"
            "#,
        );
        let plans = plan_jobs(&settings).unwrap();
        let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["recompute_sync", "metrics_pull", "sync:x:fast"]);
        match &plans[0].kind {
            JobKind::RecomputeSync { syncs } => assert_eq!(syncs.len(), 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_cron_names_the_key() {
        let mut settings = Settings::default();
        settings.schedule.rotate = "0 0 * * *".into();
        let err = plan_jobs(&settings).unwrap_err().to_string();
        assert!(err.contains("[schedule] rotate"), "{err}");
    }

    fn toml_settings(text: &str) -> Settings {
        toml::from_str(text).unwrap()
    }
}
