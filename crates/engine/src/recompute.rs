//! The recompute job: every segment evaluated in the database, in dependency order, one transaction
//! per segment, one run record for the whole job.

use chrono::{DateTime, Utc};
use serde_json::json;
use thiserror::Error;

use campaignd_core::progress::Progress;
use campaignd_core::rules::compile_segment;
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

/// Turns a validated segment into the query for this store's dialect at `as_of`.
pub fn plan_for(def: &SegmentDef, store: &Store, as_of: DateTime<Utc>) -> SegmentPlan {
    let query = match &def.source {
        SegmentSource::Rule(expr) => {
            SegmentQuery::Compiled(compile_segment(expr.expr(), &[], store.dialect(), as_of))
        }
        SegmentSource::Sql(sql) => SegmentQuery::UserSql(sql.clone()),
    };
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
    for def in selected {
        let plan = plan_for(def, store, as_of);
        let result = store.recompute_segment(&plan, run_id, as_of).await;
        progress.advance(1);
        match result {
            Ok(outcome) => {
                tracing::info!(segment = %outcome.segment, size = outcome.size, joined = outcome.joined, left = outcome.left, dropped = outcome.dropped, "segment recomputed");
                done.push(outcome);
            }
            Err(e) => {
                let counts = json!({ "segments": done.len(), "failed_segment": def.name });
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
        }
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
