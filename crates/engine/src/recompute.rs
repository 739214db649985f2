//! The recompute job: every segment evaluated in the database, in dependency order, one transaction
//! per segment, one run record for the whole job.
//!
//! All rules of a run are compiled together ([`RunCompiler`]): the per-customer values they read
//! (order and event aggregates per window and kind, RFM scores, customer columns) are computed once,
//! in one set-based pass into the run's aggregate tables on the run's connection, and each segment's
//! query is a filter over them. `sql` segments run as written.

use chrono::{DateTime, Utc};
use serde_json::json;
use thiserror::Error;

use campaignd_core::progress::Progress;
use campaignd_core::rules::{compile_segment, RunCompiler};
use campaignd_store::runs::{Job, Outcome};
use campaignd_store::segments::{RecomputeOutcome, SegmentPlan, SegmentQuery};
use campaignd_store::{Store, StoreError};

use crate::settings::{SegmentDef, SegmentSource, Settings, SettingsError};

/// Why a recompute could not run or finish.
#[derive(Debug, Error)]
pub enum RecomputeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// `--segment` named a segment that is not configured.
    #[error("no segment named \"{0}\" in the configuration")]
    UnknownSegment(String),
    /// The store failed; the run is recorded as failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a recompute run did.
#[derive(Debug, Clone)]
pub struct RecomputeReport {
    /// The run's id in the run log.
    pub run_id: i64,
    /// Per segment, in the order computed.
    pub segments: Vec<RecomputeOutcome>,
}

/// Turns a validated segment into a self-contained query for this store's dialect at `as_of` (what
/// `segments show` prints: the aggregate pass as `WITH` clauses in front of the segment's filter).
pub fn plan_for(def: &SegmentDef, store: &Store, as_of: DateTime<Utc>) -> SegmentPlan {
    let query = match &def.source {
        SegmentSource::Rule(expr) => {
            SegmentQuery::Compiled(compile_segment(expr.expr(), &[], store.dialect(), as_of))
        }
        SegmentSource::Sql(sql) => SegmentQuery::UserSql(sql.clone()),
    };
    plan_with(def, query)
}

/// The plan of one segment of a run compiled by `run`: a rule becomes a filter over the run's
/// aggregate tables (built from [`RunCompiler::tables`] once every segment is compiled).
pub fn plan_in_run(def: &SegmentDef, run: &mut RunCompiler) -> SegmentPlan {
    let query = match &def.source {
        SegmentSource::Rule(expr) => SegmentQuery::Compiled(run.segment(expr.expr(), &[])),
        SegmentSource::Sql(sql) => SegmentQuery::UserSql(sql.clone()),
    };
    plan_with(def, query)
}

fn plan_with(def: &SegmentDef, query: SegmentQuery) -> SegmentPlan {
    SegmentPlan {
        name: def.name.clone(),
        description: def.description.clone(),
        source: def.source_text.clone(),
        query,
        excludes: def.exclude.clone(),
    }
}

/// Recomputes every configured segment (or only `only`) as of `as_of` and records the run.
pub async fn recompute(
    store: &Store,
    settings: &Settings,
    as_of: DateTime<Utc>,
    only: Option<&str>,
) -> Result<RecomputeReport, RecomputeError> {
    recompute_with_progress(store, settings, as_of, only, &Progress::none()).await
}

/// [`recompute`], reporting each segment done to `progress`.
pub async fn recompute_with_progress(
    store: &Store,
    settings: &Settings,
    as_of: DateTime<Utc>,
    only: Option<&str>,
    progress: &Progress,
) -> Result<RecomputeReport, RecomputeError> {
    let defs = settings.segment_defs()?;
    if let Some(name) = only {
        if !defs.iter().any(|d| d.name == name) {
            return Err(RecomputeError::UnknownSegment(name.to_string()));
        }
    }
    let run_id = store.start_run(Job::Recompute, only, Utc::now()).await?;
    let mut done = Vec::new();
    let selected: Vec<&SegmentDef> = defs
        .iter()
        .filter(|d| only.is_none_or(|o| o == d.name))
        .collect();
    progress.start("recompute", "segments", Some(selected.len() as u64));
    let mut run = RunCompiler::new(store.dialect(), as_of);
    let plans: Vec<SegmentPlan> = selected
        .iter()
        .map(|def| plan_in_run(def, &mut run))
        .collect();
    let any_rule = plans
        .iter()
        .any(|p| matches!(p.query, SegmentQuery::Compiled(_)));
    // The segment that failed, or `None` when the session or the aggregate pass did.
    let mut failed: Option<(Option<String>, StoreError)> = None;
    match store.segment_session().await {
        Err(e) => failed = Some((None, e)),
        Ok(mut session) => {
            if any_rule {
                if let Err(e) = session.build_aggregates(&run.tables()).await {
                    failed = Some((None, e));
                }
            }
            if failed.is_none() {
                for plan in &plans {
                    let result = session.recompute(plan, run_id, as_of).await;
                    progress.advance(1);
                    match result {
                        Ok(outcome) => {
                            tracing::info!(segment = %outcome.segment, size = outcome.size, joined = outcome.joined, left = outcome.left, dropped = outcome.dropped, "segment recomputed");
                            done.push(outcome);
                        }
                        Err(e) => {
                            failed = Some((Some(plan.name.clone()), e));
                            break;
                        }
                    }
                }
            }
            if let Err(e) = session.close().await {
                tracing::warn!(error = %e, "could not drop the run's aggregate tables");
            }
        }
    }
    if let Some((segment, e)) = failed {
        let counts = json!({ "segments": done.len(), "failed_segment": segment });
        progress.finish();
        let outcome = if done.is_empty() {
            Outcome::Failed
        } else {
            Outcome::Partial
        };
        store
            .finish_run(run_id, outcome, &counts, Some(&e.to_string()))
            .await?;
        return Err(e.into());
    }
    progress.finish();
    let counts = json!({
        "segments": done.len(),
        "members": done.iter().map(|o| o.size).sum::<i64>(),
        "joined": done.iter().map(|o| o.joined).sum::<i64>(),
        "left": done.iter().map(|o| o.left).sum::<i64>(),
        "dropped": done.iter().map(|o| o.dropped).sum::<i64>(),
    });
    store
        .finish_run(run_id, Outcome::Success, &counts, None)
        .await?;
    crate::sync::fold_wal(store, "recompute").await;
    Ok(RecomputeReport {
        run_id,
        segments: done,
    })
}
