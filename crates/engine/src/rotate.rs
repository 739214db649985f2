//! The rotate job (DESIGN §7): for every `[[creative_set]]` whose period is over, pick the next variant
//! by the set's strategy, swap it in on the platform, and record which creative is live for which
//! segment and channel from when. The first rotate of a set makes its first variant live.
//!
//! Fatigue: a set with `fatigue = {...}` whose period is not over is checked every run — the live
//! variant's last `window` of delivery against its own first `window` live (or the set's best
//! variant); when it performs under `below` of that baseline the set rotates early to another
//! variant, and the reason is recorded with the rotation (shown by `rotate`, `runs` and the page).
//!
//! Order of effects: the platform swap first, then the history, retirements included, in one
//! transaction. A failed swap therefore leaves the history exactly as it was (the run is failed and the
//! next run tries again); a crash between swap and record means the next run swaps the same creative
//! in again, which is harmless.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::json;
use thiserror::Error;

use campaignd_connectors::{CreativeSwapper, SecretResolver};
use campaignd_core::metrics::Totals;
use campaignd_core::rotation::{self, FatigueBaseline, Strategy, VariantState};
use campaignd_store::creatives::{NewRotation, Retirement};
use campaignd_store::runs::{Job, Outcome};
use campaignd_store::{Store, StoreError};

use crate::creative_sets::{CreativeSetError, CreativeSetSettings};
use crate::settings::Settings;

/// Why the rotate job could not run at all (per-set failures are in [`RotateReport`]).
#[derive(Debug, Error)]
pub enum RotateError {
    /// A `[[creative_set]]` is invalid.
    #[error(transparent)]
    Settings(#[from] CreativeSetError),
    /// A destination section is invalid.
    #[error(transparent)]
    Destination(#[from] campaignd_connectors::ConfigError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How one run of the job behaves.
#[derive(Debug, Clone)]
pub struct RotateOptions {
    /// "Now": periods are judged and history stamped at this instant (`--as-of`).
    pub as_of: DateTime<Utc>,
    /// Decide and print, swap nothing, record nothing.
    pub dry_run: bool,
}

/// What happened to one set.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action", content = "detail")]
pub enum RotateAction {
    /// The first variant went live (the set's first rotate).
    Started,
    /// Another variant went live.
    Rotated,
    /// The period was over and the strategy kept the live variant for another period.
    Kept,
    /// The live variant's period is not over.
    NotDue,
    /// `--dry-run`: this is what would happen (`Started`, `Rotated` or `Kept`).
    Planned(String),
    /// The destination cannot swap creatives.
    Unsupported,
    /// Every variant is retired (cannot happen with config-driven retirement; kept for safety).
    NoVariant,
    /// The swap or the store failed; the history is unchanged.
    Failed(String),
}

/// One set's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct SetOutcome {
    /// Creative set.
    pub set: String,
    /// Its segment.
    pub segment: String,
    /// Its destination.
    pub destination: String,
    /// Strategy used.
    pub strategy: String,
    /// Variant live before this run.
    pub from: Option<String>,
    /// Variant live after this run (or that would be, for a dry run).
    pub to: Option<String>,
    /// Variants retired by this run.
    pub retired: Vec<String>,
    /// When the live variant's period ends.
    pub next_due: Option<DateTime<Utc>>,
    /// Why the set rotated before its period was over (fatigue), if it did.
    pub reason: Option<String>,
    /// What happened.
    pub action: RotateAction,
}

impl SetOutcome {
    /// The outcome of a set the job could not rotate at all (no swapper for its destination, or an
    /// error): nothing live before or after, nothing retired.
    fn untouched(set: &CreativeSetSettings, action: RotateAction) -> Self {
        SetOutcome {
            set: set.name.clone(),
            segment: set.segment.clone(),
            destination: set.destination.clone(),
            strategy: set.strategy.to_string(),
            from: None,
            to: None,
            retired: Vec::new(),
            next_due: None,
            reason: None,
            action,
        }
    }
}

/// Everything the job did.
#[derive(Debug, Clone, Serialize)]
pub struct RotateReport {
    /// The run recorded (none for a dry run).
    pub run_id: Option<i64>,
    /// One entry per set.
    pub sets: Vec<SetOutcome>,
}

impl RotateReport {
    /// True when any set failed (the CLI exits 1).
    pub fn any_failed(&self) -> bool {
        self.sets
            .iter()
            .any(|s| matches!(s.action, RotateAction::Failed(_)))
    }
}

/// Builds the creative-swap capability of every destination a creative set uses; destinations whose
/// platform cannot swap are absent (their sets are reported as unsupported).
pub fn build_swappers(
    settings: &Settings,
    secrets: &SecretResolver,
) -> Result<BTreeMap<String, Arc<dyn CreativeSwapper>>, RotateError> {
    Ok(crate::platforms::build_platforms(settings, secrets)?.swappers)
}

/// Runs one rotation pass over every creative set, recording one `rotate` run (unless dry).
pub async fn rotate(
    store: &Store,
    settings: &Settings,
    swappers: &BTreeMap<String, Arc<dyn CreativeSwapper>>,
    opts: &RotateOptions,
) -> Result<RotateReport, RotateError> {
    settings.validate_creative_sets()?;
    let run_id = if opts.dry_run {
        None
    } else {
        Some(store.start_run(Job::Rotate, None, opts.as_of).await?)
    };
    let mut sets = Vec::with_capacity(settings.creative_sets.len());
    for set in &settings.creative_sets {
        let outcome = match swappers.get(&set.destination) {
            None => SetOutcome::untouched(set, RotateAction::Unsupported),
            Some(swapper) => match rotate_one(store, set, swapper.as_ref(), opts, run_id).await {
                Ok(o) => o,
                Err(e) => SetOutcome::untouched(set, RotateAction::Failed(e.to_string())),
            },
        };
        sets.push(outcome);
    }
    let report = RotateReport { run_id, sets };
    if let Some(run_id) = run_id {
        let count =
            |f: fn(&RotateAction) -> bool| report.sets.iter().filter(|s| f(&s.action)).count();
        let failed = count(|a| matches!(a, RotateAction::Failed(_)));
        let changed = count(|a| {
            matches!(
                a,
                RotateAction::Started | RotateAction::Rotated | RotateAction::Kept
            )
        });
        let counts = json!({
            "started": count(|a| matches!(a, RotateAction::Started)),
            "rotated": count(|a| matches!(a, RotateAction::Rotated)),
            "kept": count(|a| matches!(a, RotateAction::Kept)),
            "not_due": count(|a| matches!(a, RotateAction::NotDue)),
            "unsupported": count(|a| matches!(a, RotateAction::Unsupported)),
            "failed": failed,
            "retired": report.sets.iter().map(|s| s.retired.len()).sum::<usize>(),
            "fatigued": report.sets.iter().filter(|s| s.reason.is_some()).count(),
        });
        let errors: Vec<String> = report
            .sets
            .iter()
            .filter_map(|s| match &s.action {
                RotateAction::Failed(e) => Some(format!("{}: {e}", s.set)),
                _ => None,
            })
            .collect();
        let outcome = match (failed, changed) {
            (0, _) => Outcome::Success,
            (_, 0) => Outcome::Failed,
            _ => Outcome::Partial,
        };
        let error = (!errors.is_empty()).then(|| errors.join("; "));
        store
            .finish_run(run_id, outcome, &counts, error.as_deref())
            .await?;
    }
    Ok(report)
}

fn to_time(secs: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(secs, 0).single()
}

/// Decides and applies one set's rotation.
async fn rotate_one(
    store: &Store,
    set: &CreativeSetSettings,
    swapper: &dyn CreativeSwapper,
    opts: &RotateOptions,
    run_id: Option<i64>,
) -> Result<SetOutcome, StoreError> {
    let now = opts.as_of.timestamp();
    let policy = set.policy();
    let period = set.period_secs();
    let retired = store.retired_variants(&set.name).await?;
    let current = store.current_rotation(&set.name).await?;
    let mut totals = store
        .creative_totals(&set.segment, &set.destination)
        .await?;
    if set.strategy == Strategy::DiscountedThompson {
        let daily = store.creative_daily(&set.segment, &set.destination).await?;
        for (creative, days) in &daily {
            totals.insert(
                creative.clone(),
                rotation::discounted_totals(days, now, period, set.discount),
            );
        }
    }
    let mut states: Vec<VariantState> = set
        .variants
        .iter()
        .map(|v| VariantState {
            id: v.id.clone(),
            totals: totals.get(&v.id).copied().unwrap_or(Totals::default()),
            retired: retired.contains_key(&v.id),
        })
        .collect();
    let current_idx = current
        .as_ref()
        .and_then(|c| set.variants.iter().position(|v| v.id == c.variant_id));
    let to_retire = rotation::retirements(&policy, &states);
    for &i in &to_retire {
        states[i].retired = true;
    }
    let retirements: Vec<Retirement<'_>> = to_retire
        .iter()
        .map(|&i| Retirement {
            variant_id: &states[i].id,
            impressions: states[i].totals.impressions,
            clicks: states[i].totals.clicks,
            conversions: states[i].totals.conversions,
        })
        .collect();
    let mut outcome = SetOutcome {
        set: set.name.clone(),
        segment: set.segment.clone(),
        destination: set.destination.clone(),
        strategy: set.strategy.to_string(),
        from: current.as_ref().map(|c| c.variant_id.clone()),
        to: current.as_ref().map(|c| c.variant_id.clone()),
        retired: to_retire.iter().map(|&i| states[i].id.clone()).collect(),
        next_due: current
            .as_ref()
            .and_then(|c| to_time(c.live_from.timestamp().saturating_add(period))),
        reason: None,
        action: RotateAction::NotDue,
    };
    let due = match (&current, current_idx) {
        (None, _) => true,
        // The live variant left the config, or was just retired: replace it now.
        (Some(_), None) => true,
        (Some(c), Some(i)) => {
            states[i].retired || rotation::period_over(c.live_from.timestamp(), period, now)
        }
    };
    let fatigued = match (&current, current_idx, due) {
        (Some(c), Some(i), false) => {
            fatigue_reason(store, set, &c.variant_id, i, &states, now).await?
        }
        _ => None,
    };
    // A fatigued variant sits out the choice (unless it is the only one left).
    let mut choice_states = states.clone();
    if fatigued.is_some() {
        if let Some(i) = current_idx {
            if choice_states.iter().filter(|v| !v.retired).count() > 1 {
                choice_states[i].retired = true;
            }
        }
    }
    let due = due || fatigued.is_some();
    outcome.reason = fatigued;
    if !due {
        if !retirements.is_empty() && !opts.dry_run {
            store
                .retire_variants(&set.name, &retirements, opts.as_of, run_id)
                .await?;
        }
        return Ok(outcome);
    }
    let round = store.rotation_count(&set.name).await?;
    let Some(next) =
        rotation::choose_next(&policy, &choice_states, current_idx, round.max(0) as u64)
    else {
        outcome.action = RotateAction::NoVariant;
        return Ok(outcome);
    };
    let variant = &set.variants[next];
    let action = match current_idx {
        None if current.is_none() => RotateAction::Started,
        Some(i) if i == next => RotateAction::Kept,
        _ => RotateAction::Rotated,
    };
    outcome.to = Some(variant.id.clone());
    outcome.next_due = to_time(now.saturating_add(period));
    if opts.dry_run {
        outcome.action = RotateAction::Planned(
            match action {
                RotateAction::Started => "start",
                RotateAction::Kept => "keep",
                _ => "rotate",
            }
            .into(),
        );
        return Ok(outcome);
    }
    if action != RotateAction::Kept {
        let swap = campaignd_connectors::sandbox::with_clock(
            now,
            swapper.swap_creative(set.object_id(), &variant.creative_id),
        )
        .await;
        if let Err(e) = swap {
            tracing::warn!(set = %set.name, variant = %variant.id, error = %e, "creative swap failed; history unchanged");
            outcome.to = outcome.from.clone();
            outcome.retired.clear();
            outcome.next_due = None;
            outcome.action = RotateAction::Failed(e.to_string());
            return Ok(outcome);
        }
    }
    store
        .record_rotation(
            &NewRotation {
                set_name: &set.name,
                segment: &set.segment,
                destination: &set.destination,
                object_id: set.object_id(),
                variant_id: &variant.id,
                creative_id: &variant.creative_id,
                at: opts.as_of,
                run_id,
                reason: outcome.reason.as_deref(),
            },
            &retirements,
        )
        .await?;
    tracing::info!(set = %set.name, from = ?outcome.from, to = %variant.id, "creative rotation recorded");
    outcome.action = action;
    Ok(outcome)
}

/// Whether the live variant (`states[live]`, id `variant`) is fatigued now, with the reason to record.
async fn fatigue_reason(
    store: &Store,
    set: &CreativeSetSettings,
    variant: &str,
    live: usize,
    states: &[VariantState],
    now: i64,
) -> Result<Option<String>, StoreError> {
    let Some(cfg) = &set.fatigue else {
        return Ok(None);
    };
    let rule = cfg.rule();
    let window = cfg.window_secs();
    let day = 86_400;
    let today = now - now.rem_euclid(day);
    let recent_from = today - window;
    let recent = store
        .creative_window_totals(&set.segment, &set.destination, variant, recent_from, today)
        .await?;
    let baseline = match rule.baseline {
        FatigueBaseline::First => {
            let history = store.rotation_history(&set.name).await?;
            let Some(first) = history.iter().find(|r| r.variant_id == variant) else {
                return Ok(None);
            };
            let from = first.live_from.timestamp();
            let from = from - from.rem_euclid(day);
            // The baseline window must end before the recent one starts.
            if from + window > recent_from {
                return Ok(None);
            }
            store
                .creative_window_totals(
                    &set.segment,
                    &set.destination,
                    variant,
                    from,
                    from + window,
                )
                .await?
        }
        FatigueBaseline::Best => {
            let metric = |v: &VariantState| match rule.metric {
                rotation::FatigueMetric::Ctr => v.totals.ctr(),
                rotation::FatigueMetric::Cpa => v.totals.cpa().map(|c| -c),
            };
            let best = states
                .iter()
                .enumerate()
                .filter(|(i, v)| {
                    *i == live || (!v.retired && v.totals.impressions >= rule.min_impressions)
                })
                .filter_map(|(_, v)| metric(v).map(|m| (m, v.totals)))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            match best {
                Some((_, t)) => t,
                None => return Ok(None),
            }
        }
    };
    Ok(rotation::fatigue(&rule, &baseline, &recent).map(|f| f.reason(&rule)))
}
