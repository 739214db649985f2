//! The metrics pull job (DESIGN §8): ask every destination that reports performance for daily figures
//! of the platform objects campaignd knows belong to a segment — the objects of `[[creative_set]]`s and
//! the `ad_ids` / `campaign_ids` of `[[sync]]`s — attribute each day to that segment and to the creative
//! the rotation history says was live (at 12:00 UTC that day), and store them. Each destination's days
//! are replaced in one transaction, so a re-pull never double counts and a failed pull changes nothing.
//!
//! The same job reads back, for every `[[sync]]` whose audience exists on a destination that reports
//! one (Meta, Google, TikTok, LinkedIn: [`MetricsSource::audience_size`]), the platform's matched size
//! of that audience and stores it for the day (`audience_sizes`), so match rates can be shown next to the
//! members campaignd sent; the run's counts list them too (`match_sizes`: segment, destination,
//! audience, bounds, members sent, match rate), so `campaignd runs` shows them. A size that cannot be read is a warning on that destination, not a failed pull.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::json;
use thiserror::Error;

use campaignd_connectors::{MetricsRow, MetricsSource, SecretResolver};
use campaignd_core::metrics::Totals;
use campaignd_store::audience_sizes::AudienceSizeRecord;
use campaignd_store::creatives::RotationRecord;
use campaignd_store::metrics::{day_secs, DailyMetric};
use campaignd_store::runs::{Job, Outcome};
use campaignd_store::{Store, StoreError};

use crate::creative_sets::CreativeSetError;
use crate::settings::{Settings, SettingsError};

/// Why the pull could not run at all (per-destination failures are in [`PullReport`]).
#[derive(Debug, Error)]
pub enum PullError {
    /// A `[[creative_set]]` is invalid.
    #[error(transparent)]
    CreativeSets(#[from] CreativeSetError),
    /// A `[[sync]]` is invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A destination section is invalid.
    #[error(transparent)]
    Destination(#[from] campaignd_connectors::ConfigError),
    /// `--since` is after `--until`.
    #[error("--since {since} is after --until {until}")]
    BadRange {
        /// First day asked for.
        since: NaiveDate,
        /// Last day asked for.
        until: NaiveDate,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which days to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// First day (inclusive).
    pub since: NaiveDate,
    /// Last day (inclusive).
    pub until: NaiveDate,
    /// "Now" for the run log and for simulated platforms (the sandbox reports nothing after it).
    pub as_of: DateTime<Utc>,
}

/// How one destination's pull ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum PullStatus {
    /// Rows were fetched and stored.
    Done,
    /// No creative set or sync names an object on this destination.
    NothingToPull,
    /// The platform or the store failed; the stored days are unchanged.
    Failed(String),
}

/// One destination's pull.
#[derive(Debug, Clone, Serialize)]
pub struct PullOutcome {
    /// Destination name.
    pub destination: String,
    /// Platform objects asked for.
    pub objects: usize,
    /// Daily rows the platform returned.
    pub rows_received: usize,
    /// Rows the platform returned for objects it was not asked for (not stored).
    pub rows_unattributed: usize,
    /// (day, segment, creative) rows stored.
    pub rows_stored: u64,
    /// Platform-reported audience sizes stored (one per synced audience the platform reports on).
    pub audience_sizes: usize,
    /// Audiences whose size could not be read, with the reason (the metrics themselves are unaffected).
    pub audience_size_errors: Vec<String>,
    /// The sizes stored, per segment × audience, with the match rate, as recorded in the run's counts.
    pub match_sizes: Vec<MatchSize>,
    /// How it ended.
    pub status: PullStatus,
}

/// One audience's pulled size as the `metrics` run records it (`match_sizes` in its counts), so
/// `campaignd runs` shows what each platform matched without a second query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchSize {
    /// Segment synced to the audience.
    pub segment: String,
    /// Destination name.
    pub destination: String,
    /// Audience name on the destination.
    pub audience: String,
    /// Matched people, lower bound.
    pub lower: Option<u64>,
    /// Matched people, upper bound.
    pub upper: Option<u64>,
    /// Members campaignd holds on the audience (its ledger).
    pub members_sent: i64,
    /// The platform's own rate, else lower bound over members sent ([`crate::match_rates::matched_percent`]).
    pub match_rate_percent: Option<f64>,
}

/// Everything the job did.
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    /// The `metrics` run recorded.
    pub run_id: i64,
    /// One entry per destination that reports metrics.
    pub destinations: Vec<PullOutcome>,
}

impl PullReport {
    /// True when any destination failed (the CLI exits 1).
    pub fn any_failed(&self) -> bool {
        self.destinations
            .iter()
            .any(|d| matches!(d.status, PullStatus::Failed(_)))
    }
}

/// Builds the metrics capability of every configured destination that has one.
pub fn build_metrics_sources(
    settings: &Settings,
    secrets: &SecretResolver,
) -> Result<BTreeMap<String, Arc<dyn MetricsSource>>, PullError> {
    Ok(crate::platforms::build_platforms(settings, secrets)?.metrics)
}

/// The platform objects on `destination` whose performance belongs to a segment: creative sets first,
/// then `[[sync]]` `ad_ids` / `campaign_ids`. An object claimed twice stays with its first segment.
pub fn objects_for(settings: &Settings, destination: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for set in settings
        .creative_sets
        .iter()
        .filter(|s| s.destination == destination)
    {
        out.entry(set.object_id().to_string())
            .or_insert_with(|| set.segment.clone());
    }
    for sync in settings
        .syncs
        .iter()
        .filter(|s| s.destination == destination)
    {
        for id in sync.ad_ids.iter().chain(&sync.campaign_ids) {
            out.entry(id.clone())
                .or_insert_with(|| sync.segment.clone());
        }
    }
    out
}

/// Pulls `since..=until` from every destination in `sources`, recording one `metrics` run.
pub async fn pull(
    store: &Store,
    settings: &Settings,
    sources: &BTreeMap<String, Arc<dyn MetricsSource>>,
    opts: &PullOptions,
) -> Result<PullReport, PullError> {
    settings.validate_creative_sets()?;
    settings.validate_syncs()?;
    if opts.since > opts.until {
        return Err(PullError::BadRange {
            since: opts.since,
            until: opts.until,
        });
    }
    let run_id = store.start_run(Job::Metrics, None, opts.as_of).await?;
    let mut destinations = Vec::new();
    for (name, source) in sources {
        let objects = objects_for(settings, name);
        let mut outcome = PullOutcome {
            destination: name.clone(),
            objects: objects.len(),
            rows_received: 0,
            rows_unattributed: 0,
            rows_stored: 0,
            audience_sizes: 0,
            audience_size_errors: Vec::new(),
            match_sizes: Vec::new(),
            status: PullStatus::Done,
        };
        pull_sizes(
            store,
            settings,
            name,
            source.as_ref(),
            opts,
            run_id,
            &mut outcome,
        )
        .await?;
        if objects.is_empty() {
            outcome.status = PullStatus::NothingToPull;
            destinations.push(outcome);
            continue;
        }
        if let Err(e) = pull_one(
            store,
            name,
            source.as_ref(),
            &objects,
            opts,
            run_id,
            &mut outcome,
        )
        .await
        {
            tracing::warn!(destination = %name, error = %e, "metrics pull failed; stored days unchanged");
            outcome.status = PullStatus::Failed(e);
        }
        destinations.push(outcome);
    }
    let report = PullReport {
        run_id,
        destinations,
    };
    let failed: Vec<String> = report
        .destinations
        .iter()
        .filter_map(|d| match &d.status {
            PullStatus::Failed(e) => Some(format!("{}: {e}", d.destination)),
            _ => None,
        })
        .collect();
    let size_errors: Vec<String> = report
        .destinations
        .iter()
        .flat_map(|d| {
            d.audience_size_errors
                .iter()
                .map(move |e| format!("{}: audience size: {e}", d.destination))
        })
        .collect();
    let done = report
        .destinations
        .iter()
        .filter(|d| d.status == PullStatus::Done)
        .count();
    let counts = json!({
        "since": opts.since.to_string(),
        "until": opts.until.to_string(),
        "destinations": report.destinations.len(),
        "failed": failed.len(),
        "rows_received": report.destinations.iter().map(|d| d.rows_received).sum::<usize>(),
        "rows_stored": report.destinations.iter().map(|d| d.rows_stored).sum::<u64>(),
        "audience_sizes": report.destinations.iter().map(|d| d.audience_sizes).sum::<usize>(),
        "audience_size_errors": size_errors.len(),
        "match_sizes": report.destinations.iter().flat_map(|d| d.match_sizes.iter()).collect::<Vec<_>>(),
    });
    let outcome = match (failed.len(), done, size_errors.len()) {
        (0, _, 0) => Outcome::Success,
        (0, _, _) => Outcome::Partial,
        (_, 0, _) => Outcome::Failed,
        _ => Outcome::Partial,
    };
    let problems: Vec<String> = failed.iter().chain(&size_errors).cloned().collect();
    let error = (!problems.is_empty()).then(|| problems.join("; "));
    store
        .finish_run(run_id, outcome, &counts, error.as_deref())
        .await?;
    Ok(report)
}

/// Reads and stores the platform-reported size of every synced audience on `destination` that campaignd
/// has created or adopted there. Platform errors become `audience_size_errors`; store errors end the job.
async fn pull_sizes(
    store: &Store,
    settings: &Settings,
    destination: &str,
    source: &dyn MetricsSource,
    opts: &PullOptions,
    run_id: i64,
    outcome: &mut PullOutcome,
) -> Result<(), PullError> {
    let mut seen = BTreeSet::new();
    let ledger = store.ledger_counts().await?;
    for sync in settings
        .syncs
        .iter()
        .filter(|s| s.destination == destination)
    {
        let audience = sync.audience().to_string();
        if !seen.insert(audience.clone()) {
            continue;
        }
        let Some(record) = store.audience(destination, &audience).await? else {
            continue;
        };
        match source.audience_size(&record.remote_id).await {
            Ok(None) => {}
            Ok(Some(size)) => {
                let as_i64 = |v: Option<u64>| v.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
                store
                    .record_audience_size(&AudienceSizeRecord {
                        day: opts.as_of.date_naive(),
                        destination: destination.to_string(),
                        audience_name: audience.clone(),
                        segment: sync.segment.clone(),
                        remote_id: record.remote_id.clone(),
                        lower: as_i64(size.lower),
                        upper: as_i64(size.upper),
                        match_rate_percent: size.match_rate_percent,
                        pulled_at: opts.as_of,
                        run_id: Some(run_id),
                    })
                    .await?;
                outcome.audience_sizes += 1;
                let members_sent = ledger
                    .get(&(destination.to_string(), audience.clone()))
                    .copied()
                    .unwrap_or(0);
                let platform = crate::match_rates::PlatformSize {
                    day: opts.as_of.date_naive(),
                    lower: as_i64(size.lower),
                    upper: as_i64(size.upper),
                    match_rate_percent: size.match_rate_percent,
                };
                outcome.match_sizes.push(MatchSize {
                    segment: sync.segment.clone(),
                    destination: destination.to_string(),
                    audience: audience.clone(),
                    lower: size.lower,
                    upper: size.upper,
                    members_sent,
                    match_rate_percent: crate::match_rates::matched_percent(
                        members_sent,
                        Some(&platform),
                    ),
                });
            }
            Err(e) => {
                tracing::warn!(destination, audience = %audience, error = %e, "audience size not read");
                outcome
                    .audience_size_errors
                    .push(format!("{audience}: {e}"));
            }
        }
    }
    Ok(())
}

/// Which requested object a platform row belongs to: its `ad_id` (connectors put the requested object
/// id there, campaign and ad group ids included), else its creative or audience id, else the only object
/// asked for.
fn object_of<'a>(row: &MetricsRow, objects: &'a BTreeMap<String, String>) -> Option<&'a String> {
    [&row.ad_id, &row.creative_id, &row.audience_id]
        .into_iter()
        .flatten()
        .find_map(|id| objects.get_key_value(id).map(|(k, _)| k))
        .or_else(|| {
            (objects.len() == 1 && row.ad_id.is_none())
                .then(|| objects.keys().next())
                .flatten()
        })
}

/// The variant live on `object` at 12:00 UTC of `day`, from the rotation history.
fn live_variant<'h>(
    history: &'h [RotationRecord],
    object: &str,
    day: NaiveDate,
) -> Option<&'h str> {
    let noon = day_secs(day) + 12 * 3_600;
    history
        .iter()
        .rev()
        .find(|r| r.object_id == object && r.covers(noon))
        .map(|r| r.variant_id.as_str())
}

async fn pull_one(
    store: &Store,
    destination: &str,
    source: &dyn MetricsSource,
    objects: &BTreeMap<String, String>,
    opts: &PullOptions,
    run_id: i64,
    outcome: &mut PullOutcome,
) -> Result<(), String> {
    let ids: Vec<String> = objects.keys().cloned().collect();
    let rows = campaignd_connectors::sandbox::with_clock(
        opts.as_of.timestamp(),
        source.daily_metrics(&ids, opts.since, opts.until),
    )
    .await
    .map_err(|e| e.to_string())?;
    outcome.rows_received = rows.len();
    let history = store
        .rotations_between(
            destination,
            day_secs(opts.since),
            day_secs(opts.until) + 86_400,
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut metrics = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.date < opts.since || row.date > opts.until {
            continue;
        }
        let Some(object) = object_of(row, objects) else {
            outcome.rows_unattributed += 1;
            continue;
        };
        let creative = live_variant(&history, object, row.date)
            .map(str::to_string)
            .or_else(|| row.creative_id.clone())
            .unwrap_or_default();
        metrics.push(DailyMetric {
            day: row.date,
            destination: destination.to_string(),
            segment: objects[object].clone(),
            creative,
            totals: Totals {
                impressions: i64::try_from(row.impressions).unwrap_or(i64::MAX),
                clicks: i64::try_from(row.clicks).unwrap_or(i64::MAX),
                conversions: row.conversions,
                spend: row.spend,
                revenue: row.revenue,
            },
            currency: row.currency.clone(),
        });
    }
    let segments: Vec<String> = objects
        .values()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    outcome.rows_stored = store
        .replace_metrics(
            destination,
            &segments,
            opts.since,
            opts.until,
            &metrics,
            Some(run_id),
            opts.as_of,
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}
