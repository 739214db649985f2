//! The run log: every job run (recompute, sync, rotate, metrics pull) is recorded with its outcome and
//! counts, so `campaignd runs` and the admin API can say what happened and when.
//!
//! A run also records its holder — the process executing it ([`Holder`]) — and a heartbeat the process
//! refreshes every `[store] heartbeat_secs` while the run is open (in the database's clock, so hosts'
//! clocks need not agree). A process killed with `kill -9`, or one that lost the database before it could
//! record the end, leaves its runs `running`; the next start ([`Store::abandon_dead_runs`], called by every
//! command and periodically by the daemon) marks them `abandoned` when their holder is provably dead (this
//! host, pid gone) or their heartbeat is older than `[store] abandon_after_secs`. A run that was judged
//! abandoned but whose process was in fact alive (partitioned longer than the bound) is corrected when that
//! process records its real end.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::bind::on_pool;
use crate::holder::Holder;
use crate::lease::now_sql;
use crate::{Store, StoreError};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Everything the run set out to do was done.
    Success,
    /// Some of the work failed (details in counts and error).
    Partial,
    /// Nothing useful was done.
    Failed,
    /// The process running it died or lost the database before recording its end (set by
    /// [`Store::abandon_dead_runs`], never by a job).
    Abandoned,
}

impl Outcome {
    /// The `runs.outcome` text, also what `campaignd runs` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Partial => "partial",
            Outcome::Failed => "failed",
            Outcome::Abandoned => "abandoned",
        }
    }
}

/// Which job a run belongs to: the name `campaignd runs --job` and `/api/runs?job=` filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Job {
    /// `segments recompute`, or the daemon's recompute.
    Recompute,
    /// One segment → destination sync.
    Sync,
    /// Creative rotation.
    Rotate,
    /// Performance metrics pull.
    Metrics,
    /// A benchmark's run (`bench sync` reads its child syncs' counts back through the log).
    Bench,
}

impl Job {
    /// Every job, in the order `--job` lists them.
    pub const ALL: [Job; 5] = [
        Job::Sync,
        Job::Recompute,
        Job::Rotate,
        Job::Metrics,
        Job::Bench,
    ];

    /// The `runs.job` text.
    pub fn as_str(self) -> &'static str {
        match self {
            Job::Recompute => "recompute",
            Job::Sync => "sync",
            Job::Rotate => "rotate",
            Job::Metrics => "metrics",
            Job::Bench => "bench",
        }
    }

    /// The job named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.as_str() == name)
    }
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a run is: still open, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Started and not (yet) ended: in progress, or its process died and nobody has noticed yet.
    Running,
    /// Ended so.
    Ended(Outcome),
}

impl RunState {
    /// The `runs.outcome` text: `running` or the outcome's.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Ended(o) => o.as_str(),
        }
    }

    fn from_name(name: &str) -> Option<RunState> {
        if name == "running" {
            return Some(RunState::Running);
        }
        [
            Outcome::Success,
            Outcome::Partial,
            Outcome::Failed,
            Outcome::Abandoned,
        ]
        .into_iter()
        .find(|o| o.as_str() == name)
        .map(RunState::Ended)
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RunState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One row of the run log.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Run id, increasing.
    pub id: i64,
    /// Which job.
    pub job: Job,
    /// What the run worked on (a segment, a sync), if narrower than the whole job.
    pub target: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended; `None` while running or if the process died.
    pub finished_at: Option<DateTime<Utc>>,
    /// Still running, or how it ended.
    pub outcome: RunState,
    /// Job-specific counts (members added, removed, rejected, skipped by reason, ...), a JSON object
    /// whose shape each job documents; `{}` while running.
    pub counts: serde_json::Value,
    /// The error, when the run did not succeed.
    pub error: Option<String>,
    /// The process that ran it (`host:pid:start:nonce`); `None` for runs recorded before holders were.
    pub holder: Option<String>,
}

/// A run [`Store::abandon_dead_runs`] closed.
#[derive(Debug, Clone, Serialize)]
pub struct AbandonedRun {
    /// The run's id.
    pub id: i64,
    /// Its job.
    pub job: String,
    /// Why it was judged abandoned (also stored as the run's error).
    pub reason: String,
}

/// The runs this process has open, whose heartbeat it keeps fresh, and the task that does it.
#[derive(Debug, Default)]
pub(crate) struct RunTracker {
    active: Mutex<BTreeSet<i64>>,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl RunTracker {
    fn active(&self) -> Vec<i64> {
        self.active
            .lock()
            .map(|a| a.iter().copied().collect())
            .unwrap_or_default()
    }

    fn set(&self, id: i64, open: bool) {
        if let Ok(mut a) = self.active.lock() {
            if open {
                a.insert(id);
            } else {
                a.remove(&id);
            }
        }
    }
}

impl Drop for RunTracker {
    fn drop(&mut self) {
        if let Ok(mut task) = self.heartbeat.lock() {
            if let Some(task) = task.take() {
                task.abort();
            }
        }
    }
}

/// A stored instant (seconds since 1970) back as a time; a value no time has is reported as a decode
/// error of `column`, never read as 1970.
pub(crate) fn to_time(column: &str, secs: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    Utc.timestamp_opt(secs, 0).single().ok_or_else(|| {
        corrupt(
            column,
            format!("{secs} is not a time in seconds since 1970"),
        )
    })
}

/// A stored value campaignd cannot have written, as the decode error of `column` sqlx would give.
pub(crate) fn corrupt(column: &str, message: String) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: message.into(),
    }
}

impl Store {
    /// Records the start of a run, held by this process, and returns its id; its heartbeat is kept
    /// fresh until [`Store::finish_run`].
    pub async fn start_run(
        &self,
        job: Job,
        target: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let sql = format!(
            "INSERT INTO runs (job, target, started_at, outcome, holder, heartbeat_at) \
             VALUES ($1, $2, $3, 'running', $4, {}) RETURNING id",
            now_sql(self.pool())
        );
        let holder = Holder::current().id();
        let id: i64 = on_pool!(self, pool => sqlx::query_scalar(&sql)
            .bind(job.as_str())
            .bind(target)
            .bind(now.timestamp())
            .bind(holder.as_str())
            .fetch_one(pool)
            .await?);
        self.runs.set(id, true);
        self.ensure_heartbeat();
        Ok(id)
    }

    /// Starts this store's heartbeat task once: every `heartbeat` it refreshes the open runs. The task
    /// holds the tracker weakly, so it ends when the last clone of the store is dropped (or closed).
    fn ensure_heartbeat(&self) {
        let Ok(mut task) = self.runs.heartbeat.lock() else {
            return;
        };
        if task.is_some() {
            return;
        }
        let tracker: Weak<RunTracker> = Arc::downgrade(&self.runs);
        let (pool, options) = (self.pool.clone(), self.options.clone());
        let every = options.heartbeat.max(std::time::Duration::from_millis(100));
        *task = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(runs) = tracker.upgrade() else {
                    return;
                };
                let store = Store {
                    pool: pool.clone(),
                    options: options.clone(),
                    runs,
                };
                if store.is_closed() {
                    return;
                }
                if let Err(e) = store.beat().await {
                    tracing::warn!(error = %e, "cannot refresh the heartbeat of running jobs; will retry");
                }
            }
        }));
    }

    /// Refreshes the heartbeat of the runs this process has open.
    async fn beat(&self) -> Result<(), StoreError> {
        let ids = self.runs.active();
        if ids.is_empty() {
            return Ok(());
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let sql = format!(
            "UPDATE runs SET heartbeat_at = {} WHERE outcome = 'running' AND id IN ({list})",
            now_sql(self.pool())
        );
        on_pool!(self, pool => sqlx::query(&sql).execute(pool).await.map(|_| ())?);
        Ok(())
    }

    /// Closes, as `abandoned`, every `running` run whose holder is provably dead (this host, its pid
    /// gone) or whose heartbeat is older than `[store] abandon_after_secs`; runs this process has open are
    /// never touched. Returns what it closed. Called by every command on start and periodically by the
    /// daemon, so `campaignd runs`, `/api/runs` and the page never show a dead process's run as running.
    pub async fn abandon_dead_runs(&self) -> Result<Vec<AbandonedRun>, StoreError> {
        let select = format!(
            "SELECT id, job, holder, COALESCE(heartbeat_at, started_at) AS seen, {} AS now \
             FROM runs WHERE outcome = 'running' ORDER BY id",
            now_sql(self.pool())
        );
        const CLOSE: &str = "UPDATE runs SET outcome = 'abandoned', finished_at = $1, error = $2 \
             WHERE id = $3 AND outcome = 'running'";
        let rows: Vec<(i64, String, Option<String>, i64, i64)> =
            on_pool!(self, pool => sqlx::query_as(&select).fetch_all(pool).await?);
        let mine = self.runs.active();
        let bound = i64::try_from(self.options.abandon_after.as_secs()).unwrap_or(i64::MAX);
        let mut closed = Vec::new();
        for (id, job, holder, seen, now) in rows {
            if mine.contains(&id) {
                continue;
            }
            let parsed = holder.as_deref().and_then(Holder::parse);
            let reason = match &parsed {
                Some(h) if h.is_provably_dead() => format!(
                    "abandoned: its process (pid {} on {}) is gone; the next run continues from the ledger",
                    h.pid, h.host
                ),
                _ if now.saturating_sub(seen) > bound => format!(
                    "abandoned: no heartbeat from {} for {} s ([store] abandon_after_secs = {bound}); the next run continues from the ledger",
                    parsed.as_ref().map_or_else(
                        || "its process".to_string(),
                        |h| format!("pid {} on {}", h.pid, h.host)
                    ),
                    now.saturating_sub(seen)
                ),
                _ => continue,
            };
            let n = on_pool!(self, pool => sqlx::query(CLOSE)
                .bind(seen)
                .bind(reason.as_str())
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected());
            if n == 1 {
                tracing::info!(run = id, job = %job, reason = %reason, "run abandoned");
                closed.push(AbandonedRun { id, job, reason });
            }
        }
        Ok(closed)
    }

    /// Records how a run ended.
    pub async fn finish_run(
        &self,
        run_id: i64,
        outcome: Outcome,
        counts: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        const SQL: &str =
            "UPDATE runs SET finished_at = $1, outcome = $2, counts = $3, error = $4 WHERE id = $5";
        // Whether or not the end can be recorded, this process no longer vouches for the run: without a
        // heartbeat it is closed as abandoned later instead of staying `running` forever.
        self.runs.set(run_id, false);
        let counts = counts.to_string();
        on_pool!(self, pool => sqlx::query(SQL)
            .bind(Utc::now().timestamp())
            .bind(outcome.as_str())
            .bind(counts.as_str())
            .bind(error)
            .bind(run_id)
            .execute(pool)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// The most recent runs, newest first, optionally of one job only.
    pub async fn recent_runs(
        &self,
        limit: i64,
        job: Option<Job>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        const SQL: &str =
            "SELECT id, job, target, started_at, finished_at, outcome, counts, error, holder FROM runs \
             WHERE ($1 IS NULL OR job = $1) ORDER BY id DESC LIMIT $2";
        let rows = on_pool!(self, pool => {
            let rows = sqlx::query(SQL).bind(job.map(Job::as_str)).bind(limit).fetch_all(pool).await?;
            rows.iter()
                .map(|r| -> Result<RunRecord, sqlx::Error> {
                    let id: i64 = r.try_get("id")?;
                    let job: String = r.try_get("job")?;
                    let outcome: String = r.try_get("outcome")?;
                    let counts: String = r.try_get("counts")?;
                    Ok(RunRecord {
                        id,
                        job: Job::from_name(&job)
                            .ok_or_else(|| corrupt("job", format!("run {id}: unknown job {job:?}")))?,
                        target: r.try_get("target")?,
                        started_at: to_time("started_at", r.try_get("started_at")?)?,
                        finished_at: r
                            .try_get::<Option<i64>, _>("finished_at")?
                            .map(|t| to_time("finished_at", t))
                            .transpose()?,
                        outcome: RunState::from_name(&outcome).ok_or_else(|| {
                            corrupt("outcome", format!("run {id}: unknown outcome {outcome:?}"))
                        })?,
                        counts: serde_json::from_str(&counts).map_err(|e| {
                            corrupt("counts", format!("run {id}: counts are not JSON: {e}"))
                        })?,
                        error: r.try_get("error")?,
                        holder: r.try_get("holder")?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;

    use super::*;
    use crate::testkit::fresh_pg_database;
    use crate::StoreOptions;

    fn options() -> StoreOptions {
        StoreOptions {
            heartbeat: Duration::from_millis(100),
            abandon_after: Duration::from_secs(60),
            ..StoreOptions::default()
        }
    }

    /// Inserts a `running` run held by `holder` whose last heartbeat was `age` seconds ago.
    async fn foreign_run(store: &Store, holder: &str, age: i64) -> i64 {
        let sql = format!(
            "INSERT INTO runs (job, started_at, outcome, holder, heartbeat_at) \
             VALUES ('sync', 0, 'running', $1, {} - $2) RETURNING id",
            now_sql(store.pool())
        );
        let id: Result<i64, StoreError> = async {
            Ok(on_pool!(store, pool => sqlx::query_scalar(&sql).bind(holder).bind(age).fetch_one(pool).await?))
        }
        .await;
        id.unwrap()
    }

    /// Sets run `id`'s heartbeat `age` seconds back, or reads how old it is (`age = None`).
    async fn heartbeat_age(store: &Store, id: i64, age: Option<i64>) -> i64 {
        let now = now_sql(store.pool());
        let sql = match age {
            Some(_) => {
                format!("UPDATE runs SET heartbeat_at = {now} - $2 WHERE id = $1 RETURNING CAST(0 AS BIGINT)")
            }
            None => format!("SELECT {now} - heartbeat_at FROM runs WHERE id = $1 AND $2 = $2"),
        };
        let got: Result<i64, StoreError> = async {
            Ok(on_pool!(store, pool => sqlx::query_scalar(&sql).bind(id).bind(age.unwrap_or(0)).fetch_one(pool).await?))
        }
        .await;
        got.unwrap()
    }

    async fn outcome(store: &Store, id: i64) -> (String, Option<String>) {
        let runs = store.recent_runs(100, None).await.unwrap();
        let r = runs.iter().find(|r| r.id == id).unwrap();
        (r.outcome.as_str().to_string(), r.error.clone())
    }

    async fn dead_runs_are_abandoned(store: Store) {
        let me = Holder::current();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead_here = Holder {
            pid: dead_pid,
            ..me.clone()
        };
        let elsewhere = |nonce| Holder {
            host: format!("{}-elsewhere", me.host),
            nonce,
            ..me.clone()
        };
        let dead = foreign_run(&store, &dead_here.id(), 0).await;
        let live_remote = foreign_run(&store, &elsewhere(1).id(), 5).await;
        let silent_remote = foreign_run(&store, &elsewhere(2).id(), 3600).await;
        let legacy = foreign_run(&store, "old-host:12:abcd1234", 3600).await;
        let mine = store
            .start_run(Job::Recompute, None, Utc::now())
            .await
            .unwrap();

        let closed = store.abandon_dead_runs().await.unwrap();
        let ids: Vec<i64> = closed.iter().map(|c| c.id).collect();
        let mut want = vec![silent_remote, legacy];
        if me.start != 0 {
            want.insert(0, dead); // only /proc proves a local pid dead; elsewhere the heartbeat decides
        }
        assert_eq!(ids, want, "{closed:?}");
        if me.start != 0 {
            let (o, e) = outcome(&store, dead).await;
            assert_eq!(o, "abandoned");
            assert!(e.unwrap().contains(&format!("pid {dead_pid} on")));
        }
        let (o, e) = outcome(&store, silent_remote).await;
        assert_eq!(o, "abandoned");
        assert!(e.unwrap().contains("no heartbeat"));
        assert_eq!(outcome(&store, live_remote).await.0, "running");
        assert_eq!(outcome(&store, mine).await.0, "running");
        // Idempotent, and a process that was alive after all records its real end over the verdict.
        assert!(store.abandon_dead_runs().await.unwrap().is_empty());
        store
            .finish_run(
                silent_remote,
                Outcome::Success,
                &serde_json::json!({}),
                None,
            )
            .await
            .unwrap();
        assert_eq!(outcome(&store, silent_remote).await.0, "success");

        // The heartbeat keeps this process's open run fresh: make it look an hour old, and it is renewed.
        heartbeat_age(&store, mine, Some(3600)).await;
        let started = std::time::Instant::now();
        loop {
            if heartbeat_age(&store, mine, None).await < 60 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "heartbeat never refreshed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Once finished (even if recording the end had failed), the run is no longer kept alive.
        store
            .finish_run(mine, Outcome::Success, &serde_json::json!({}), None)
            .await
            .unwrap();
        assert!(store.runs.active().is_empty());
        let record = store.recent_runs(1, Some(Job::Recompute)).await.unwrap();
        assert_eq!(record[0].holder.as_deref(), Some(me.id().as_str()));
    }

    #[tokio::test]
    async fn dead_runs_are_abandoned_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("runs.db").display());
        let store = Store::connect_with(&url, &options()).await.unwrap();
        store.migrate().await.unwrap();
        dead_runs_are_abandoned(store).await;
    }

    #[tokio::test]
    async fn dead_runs_are_abandoned_postgres() {
        let Some(url) = fresh_pg_database().await.unwrap() else {
            eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
            return;
        };
        let store = Store::connect_with(&url, &options()).await.unwrap();
        store.migrate().await.unwrap();
        dead_runs_are_abandoned(store).await;
    }

    /// A run row campaignd cannot have written is reported with its column and id, never read as a
    /// run of 1970 with null counts.
    async fn corrupt_runs_are_reported(store: Store) {
        let cases = [
            ("'sync'", "0", "'success'", "'not json'", "counts"),
            (
                "'sync'",
                "99999999999999",
                "'success'",
                "'{}'",
                "started_at",
            ),
            ("'resync'", "0", "'success'", "'{}'", "job"),
            ("'sync'", "0", "'half-done'", "'{}'", "outcome"),
        ];
        for (job, started, outcome, counts, column) in cases {
            let sql = format!(
                "INSERT INTO runs (job, started_at, outcome, counts) VALUES ({job}, {started}, {outcome}, {counts}) \
                 RETURNING id"
            );
            let id: Result<i64, StoreError> = async {
                Ok(on_pool!(&store, pool => sqlx::query_scalar(&sql).fetch_one(pool).await?))
            }
            .await;
            let id = id.unwrap();
            let err = store.recent_runs(10, None).await.unwrap_err().to_string();
            assert!(err.contains(column), "{column}: {err}");
            if column != "started_at" {
                assert!(err.contains(&format!("run {id}")), "{column}: {err}");
            }
            let sql = "DELETE FROM runs WHERE id = $1";
            let gone: Result<(), StoreError> = async {
                on_pool!(&store, pool => sqlx::query(sql).bind(id).execute(pool).await.map(|_| ())?);
                Ok(())
            }
            .await;
            gone.unwrap();
        }
        let good = store.start_run(Job::Sync, None, Utc::now()).await.unwrap();
        let runs = store.recent_runs(10, Some(Job::Sync)).await.unwrap();
        assert_eq!(runs[0].id, good);
        assert_eq!(runs[0].outcome, RunState::Running);
    }

    #[tokio::test]
    async fn corrupt_runs_are_reported_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("runs.db").display());
        let store = Store::connect_with(&url, &options()).await.unwrap();
        store.migrate().await.unwrap();
        corrupt_runs_are_reported(store).await;
    }

    #[tokio::test]
    async fn corrupt_runs_are_reported_postgres() {
        let Some(url) = fresh_pg_database().await.unwrap() else {
            eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
            return;
        };
        let store = Store::connect_with(&url, &options()).await.unwrap();
        store.migrate().await.unwrap();
        corrupt_runs_are_reported(store).await;
    }
}
