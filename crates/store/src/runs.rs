//! The run log: every job run (recompute, sync, rotate, metrics pull) is recorded with its outcome and
//! counts, so `campaignd runs` and the admin API can say what happened and when.

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::bind::on_pool;
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
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Partial => "partial",
            Outcome::Failed => "failed",
        }
    }
}

/// One row of the run log.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Run id, increasing.
    pub id: i64,
    /// Which job: `recompute`, `sync`, `rotate`, `metrics`.
    pub job: String,
    /// What the run worked on (a segment, a sync), if narrower than the whole job.
    pub target: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended; `None` while running or if the process died.
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `success`, `partial` or `failed`.
    pub outcome: String,
    /// Job-specific counts (members added, removed, rejected, skipped by reason, ...).
    pub counts: serde_json::Value,
    /// The error, when the run did not succeed.
    pub error: Option<String>,
}

pub(crate) fn to_time(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

impl Store {
    /// Records the start of a run and returns its id.
    pub async fn start_run(
        &self,
        job: &str,
        target: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO runs (job, target, started_at, outcome) VALUES ($1, $2, $3, 'running') RETURNING id";
        let id: i64 = on_pool!(self, pool => sqlx::query_scalar(SQL)
            .bind(job)
            .bind(target)
            .bind(now.timestamp())
            .fetch_one(pool)
            .await?);
        Ok(id)
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
        job: Option<&str>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        const SQL: &str =
            "SELECT id, job, target, started_at, finished_at, outcome, counts, error FROM runs \
             WHERE ($1 IS NULL OR job = $1) ORDER BY id DESC LIMIT $2";
        let rows = on_pool!(self, pool => {
            let rows = sqlx::query(SQL).bind(job).bind(limit).fetch_all(pool).await?;
            rows.iter()
                .map(|r| -> Result<RunRecord, sqlx::Error> {
                    let counts: String = r.try_get("counts")?;
                    Ok(RunRecord {
                        id: r.try_get("id")?,
                        job: r.try_get("job")?,
                        target: r.try_get("target")?,
                        started_at: to_time(r.try_get("started_at")?),
                        finished_at: r.try_get::<Option<i64>, _>("finished_at")?.map(to_time),
                        outcome: r.try_get("outcome")?,
                        counts: serde_json::from_str(&counts).unwrap_or(serde_json::Value::Null),
                        error: r.try_get("error")?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }
}
