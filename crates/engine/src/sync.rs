//! The sync job (DESIGN §6): for each `[[sync]]`, make the destination's audience equal to (mirror) or
//! a superset of (upsert) the segment, sending only what changed since the platform last acknowledged.
//!
//! The plan is built in the store: segment members minus those without the channel's consent, minus
//! suppressions, prepared (normalised + hashed) by the connector and staged; the diff against the
//! ledger is then read back in keyset pages of the platform's batch size. The ledger advances after
//! every acknowledged batch, so a crash resumes where it stopped with at most one batch resent. Rows a
//! platform rejects never enter the ledger: they are recorded with the reason and retried next run.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use thiserror::Error;

use campaignd_connectors::{
    build_destination, AudienceDestination, AudienceRef, BatchOutcome, Channel, Contact,
    PreparedMember, ReplaceSession, SecretResolver, SyncContext,
};
use campaignd_store::ledger::{AudienceRecord, Consent, LedgerEntry};
use campaignd_store::runs::Outcome;
use campaignd_store::{Store, StoreError};

use crate::settings::{Settings, SettingsError, SyncMode, SyncSettings};
use crate::shutdown::Shutdown;

/// Rows read from the store per page while staging.
const STAGE_PAGE: i64 = 5_000;

/// Why the sync job could not run at all (per-sync failures are reported in [`SyncReport`]).
#[derive(Debug, Error)]
pub enum SyncError {
    /// The configuration is invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A destination section is invalid.
    #[error(transparent)]
    Destination(#[from] campaignd_connectors::ConfigError),
    /// `--destination`/`--segment` matched no `[[sync]]`.
    #[error("no [[sync]] matches {0}")]
    NoMatch(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which syncs to run and how.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Only syncs to this destination.
    pub destination: Option<String>,
    /// Only syncs of this segment.
    pub segment: Option<String>,
    /// Print the plan, send nothing, change nothing.
    pub dry_run: bool,
    /// Resend everyone (replace-all where the platform has it).
    pub full: bool,
}

/// How one sync ended.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    /// Everything planned was acknowledged (rejections are counted separately).
    Done,
    /// `--dry-run`: nothing was sent.
    Planned,
    /// The segment is under the platform's minimum audience size: not pushed.
    BelowMinimum,
    /// Stopped by a shutdown request between batches; the next run continues.
    Interrupted,
    /// A platform or store error stopped this sync; the ledger holds what was acknowledged.
    Failed(String),
}

/// The counts of one sync, as recorded in its run.
#[derive(Debug, Clone, Serialize)]
pub struct SyncOutcome {
    /// Segment pushed.
    pub segment: String,
    /// Destination name.
    pub destination: String,
    /// Audience name on the platform.
    pub audience: String,
    /// Run id (none for a dry run).
    pub run_id: Option<i64>,
    /// Members eligible to be in the audience.
    pub eligible: i64,
    /// Additions planned (dry run) or acknowledged.
    pub added: i64,
    /// Removals planned (dry run) or acknowledged.
    pub removed: i64,
    /// Rows the platform rejected.
    pub rejected: i64,
    /// Members skipped for lack of the channel's consent.
    pub skipped_no_consent: i64,
    /// Members skipped as suppressed.
    pub skipped_suppressed: i64,
    /// Members with no usable identifier for this platform.
    pub skipped_no_identifier: i64,
    /// Requests (batches) sent.
    pub batches: i64,
    /// How it ended.
    pub status: SyncStatus,
}

/// Every sync the job ran.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// One entry per `[[sync]]` run.
    pub syncs: Vec<SyncOutcome>,
}

impl SyncReport {
    /// True when any sync failed (the CLI exits 1).
    pub fn any_failed(&self) -> bool {
        self.syncs
            .iter()
            .any(|s| matches!(s.status, SyncStatus::Failed(_)))
    }
}

/// Builds every configured destination once (errors name the destination and key).
pub fn build_destinations(
    settings: &Settings,
    secrets: &SecretResolver,
) -> Result<BTreeMap<String, Arc<dyn AudienceDestination>>, SyncError> {
    let mut out = BTreeMap::new();
    for (name, section) in &settings.destinations {
        out.insert(name.clone(), build_destination(name, section, secrets)?);
    }
    Ok(out)
}

/// Runs every matching `[[sync]]`; one failing sync does not stop the others.
pub async fn sync(
    store: &Store,
    settings: &Settings,
    destinations: &BTreeMap<String, Arc<dyn AudienceDestination>>,
    opts: &SyncOptions,
    shutdown: &Shutdown,
) -> Result<SyncReport, SyncError> {
    settings.validate_syncs()?;
    let selected: Vec<&SyncSettings> = settings
        .syncs
        .iter()
        .filter(|s| opts.destination.as_ref().is_none_or(|d| *d == s.destination))
        .filter(|s| opts.segment.as_ref().is_none_or(|g| *g == s.segment))
        .collect();
    if selected.is_empty() && (opts.destination.is_some() || opts.segment.is_some()) {
        let what = [
            opts.destination.as_ref().map(|d| format!("destination \"{d}\"")),
            opts.segment.as_ref().map(|s| format!("segment \"{s}\"")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" and ");
        return Err(SyncError::NoMatch(what));
    }
    let mut report = SyncReport { syncs: Vec::new() };
    for cfg in selected {
        if shutdown.requested() {
            break;
        }
        let Some(dest) = destinations.get(&cfg.destination) else {
            continue; // validate_syncs guarantees presence
        };
        let outcome = run_one(store, cfg, dest.as_ref(), opts, shutdown).await?;
        report.syncs.push(outcome);
    }
    Ok(report)
}

struct Job<'a> {
    store: &'a Store,
    cfg: &'a SyncSettings,
    dest: &'a dyn AudienceDestination,
    consent: Consent,
    run_id: i64,
    outcome: SyncOutcome,
}

fn to_prepared(entries: &[LedgerEntry]) -> Vec<PreparedMember> {
    entries
        .iter()
        .map(|e| PreparedMember {
            customer_id: e.customer_id.clone(),
            payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
            fingerprint: e.fingerprint.clone(),
        })
        .collect()
}

/// Splits a batch's entries into acknowledged ones and (id, action, reason) rejections.
fn split_outcome<'e>(
    entries: &'e [LedgerEntry],
    outcome: &BatchOutcome,
    action: &str,
) -> (Vec<&'e LedgerEntry>, Vec<(String, String, String)>) {
    let rejected_ids: HashSet<&str> = outcome
        .rejected
        .iter()
        .map(|r| r.customer_id.as_str())
        .collect();
    let accepted = entries
        .iter()
        .filter(|e| !rejected_ids.contains(e.customer_id.as_str()))
        .collect();
    let rejected = outcome
        .rejected
        .iter()
        .map(|r| (r.customer_id.clone(), action.to_string(), r.reason.clone()))
        .collect();
    (accepted, rejected)
}

async fn run_one(
    store: &Store,
    cfg: &SyncSettings,
    dest: &dyn AudienceDestination,
    opts: &SyncOptions,
    shutdown: &Shutdown,
) -> Result<SyncOutcome, SyncError> {
    let started = Instant::now();
    let audience = cfg.audience().to_string();
    let consent = match dest.channel() {
        Channel::Ads => Consent::Ads,
        Channel::Email => Consent::Email,
    };
    let run_id = if opts.dry_run {
        0
    } else {
        store
            .start_run(
                "sync",
                Some(&format!("{} -> {}", cfg.segment, cfg.destination)),
                Utc::now(),
            )
            .await?
    };
    let mut job = Job {
        store,
        cfg,
        dest,
        consent,
        run_id,
        outcome: SyncOutcome {
            segment: cfg.segment.clone(),
            destination: cfg.destination.clone(),
            audience,
            run_id: (!opts.dry_run).then_some(run_id),
            eligible: 0,
            added: 0,
            removed: 0,
            rejected: 0,
            skipped_no_consent: 0,
            skipped_suppressed: 0,
            skipped_no_identifier: 0,
            batches: 0,
            status: SyncStatus::Done,
        },
    };
    let result = job.execute(opts, shutdown).await;
    let mut outcome = job.outcome;
    if let Err(e) = result {
        outcome.status = SyncStatus::Failed(e);
    }
    if !opts.dry_run {
        let counts = json!({
            "audience": outcome.audience,
            "eligible": outcome.eligible,
            "added": outcome.added,
            "removed": outcome.removed,
            "rejected": outcome.rejected,
            "skipped": {
                "no_consent": outcome.skipped_no_consent,
                "suppressed": outcome.skipped_suppressed,
                "no_identifier": outcome.skipped_no_identifier,
            },
            "batches": outcome.batches,
            "status": outcome.status,
            "duration_ms": started.elapsed().as_millis() as u64,
        });
        let (status, error) = match &outcome.status {
            SyncStatus::Done | SyncStatus::Planned => (Outcome::Success, None),
            SyncStatus::BelowMinimum => (
                Outcome::Success,
                Some(format!(
                    "segment below {}'s minimum audience size ({} < {}): not pushed",
                    cfg.destination,
                    outcome.eligible,
                    dest.limits().min_audience_size
                )),
            ),
            SyncStatus::Interrupted => (
                Outcome::Partial,
                Some("interrupted by shutdown; the next run continues".to_string()),
            ),
            SyncStatus::Failed(e) => (
                if outcome.added + outcome.removed > 0 {
                    Outcome::Partial
                } else {
                    Outcome::Failed
                },
                Some(e.clone()),
            ),
        };
        store
            .finish_run(run_id, status, &counts, error.as_deref())
            .await?;
    }
    Ok(outcome)
}

impl Job<'_> {
    fn key(&self) -> (&str, &str) {
        (&self.cfg.destination, &self.outcome.audience)
    }

    /// Stages the desired members; returns how many are eligible.
    async fn stage(&mut self) -> Result<i64, StoreError> {
        let (dest_name, audience) = self.key();
        let (dest_name, audience) = (dest_name.to_string(), audience.to_string());
        let excl = self
            .store
            .sync_exclusions(&self.cfg.segment, self.consent)
            .await?;
        self.outcome.skipped_no_consent = excl.no_consent;
        self.outcome.skipped_suppressed = excl.suppressed;
        self.store.clear_staging(&dest_name, &audience).await?;
        let mut after = String::new();
        let (mut t_read, mut t_prepare, mut t_write) = (0u128, 0u128, 0u128);
        loop {
            let t = Instant::now();
            let page = self
                .store
                .sync_candidates(&self.cfg.segment, self.consent, &after, STAGE_PAGE)
                .await?;
            t_read += t.elapsed().as_micros();
            let t = Instant::now();
            let Some(last) = page.last() else { break };
            after = last.customer_id.clone();
            let mut staged = Vec::with_capacity(page.len());
            for c in page {
                let contact = Contact {
                    customer_id: c.customer_id,
                    email: c.email,
                    phone: c.phone,
                    first_name: c.first_name,
                    last_name: c.last_name,
                    country: c.country,
                    postal_code: c.postal_code,
                };
                match self.dest.prepare(&contact) {
                    Some(p) => staged.push(LedgerEntry {
                        customer_id: p.customer_id,
                        fingerprint: p.fingerprint,
                        payload: p.payload.to_string(),
                    }),
                    None => self.outcome.skipped_no_identifier += 1,
                }
            }
            t_prepare += t.elapsed().as_micros();
            let t = Instant::now();
            self.store
                .stage_members(&dest_name, &audience, &staged)
                .await?;
            t_write += t.elapsed().as_micros();
        }
        tracing::debug!(read_ms = t_read / 1000, prepare_ms = t_prepare / 1000, write_ms = t_write / 1000, "staging phases");
        self.store.staged_count(&dest_name, &audience).await
    }

    async fn execute(&mut self, opts: &SyncOptions, shutdown: &Shutdown) -> Result<(), String> {
        let mirror = self.cfg.mode == SyncMode::Mirror;
        let (dest_name, audience) = (self.cfg.destination.clone(), self.outcome.audience.clone());
        let staging_started = Instant::now();
        let eligible = self.stage().await.map_err(|e| e.to_string())?;
        tracing::info!(
            destination = %dest_name,
            audience = %audience,
            eligible,
            ms = staging_started.elapsed().as_millis() as u64,
            "sync plan staged"
        );
        self.outcome.eligible = eligible;
        let limits = self.dest.limits();
        let recorded = self
            .store
            .audience(&dest_name, &audience)
            .await
            .map_err(|e| e.to_string())?;
        if (eligible as usize) < limits.min_audience_size {
            self.outcome.status = SyncStatus::BelowMinimum;
            return Ok(());
        }
        if opts.dry_run {
            let replace = recorded.as_ref().is_none_or(|r| r.needs_replace) || opts.full;
            if recorded.is_none() || (replace && mirror) {
                self.outcome.added = eligible;
            } else {
                self.outcome.added = self
                    .store
                    .count_pending_additions(&dest_name, &audience)
                    .await
                    .map_err(|e| e.to_string())?;
                self.outcome.removed = self
                    .store
                    .count_pending_removals(&dest_name, &audience, self.consent, mirror)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            self.outcome.status = SyncStatus::Planned;
            return Ok(());
        }
        let now = Utc::now().timestamp();
        let mut record = match recorded {
            Some(r) => r,
            None => {
                let description = format!("campaignd segment {}", self.cfg.segment);
                let remote = self
                    .dest
                    .find_or_create_audience(&audience, &description)
                    .await
                    .map_err(|e| e.to_string())?;
                let record = AudienceRecord {
                    remote_id: remote.remote_id,
                    needs_replace: remote.adopted && mirror,
                };
                self.store
                    .save_audience(&dest_name, &audience, &record, now)
                    .await
                    .map_err(|e| e.to_string())?;
                record
            }
        };
        let audience_ref = AudienceRef {
            remote_id: record.remote_id.clone(),
            adopted: record.needs_replace,
        };
        self.dest
            .begin_sync(&SyncContext {
                run_id: self.run_id.to_string(),
                segment: self.cfg.segment.clone(),
                audience: audience_ref.clone(),
            })
            .await
            .map_err(|e| e.to_string())?;
        if opts.full {
            if mirror && self.dest.supports_replace_all() {
                record.needs_replace = true;
            } else {
                self.store
                    .clear_ledger(&dest_name, &audience)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        if record.needs_replace && mirror {
            if self.dest.supports_replace_all() {
                return self.replace_all(&audience_ref, eligible, limits.max_batch).await;
            }
            // No native replace: the platform's current members are unknown, so resend everyone.
            self.store
                .clear_ledger(&dest_name, &audience)
                .await
                .map_err(|e| e.to_string())?;
            record.needs_replace = false;
            self.store
                .save_audience(&dest_name, &audience, &record, now)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.send_diff(&audience_ref, mirror, limits.max_batch.max(1), shutdown)
            .await
    }

    async fn send_diff(
        &mut self,
        audience_ref: &AudienceRef,
        mirror: bool,
        batch: usize,
        shutdown: &Shutdown,
    ) -> Result<(), String> {
        let (dest_name, audience) = (self.cfg.destination.clone(), self.outcome.audience.clone());
        let limit = batch as i64;
        // Removals first: people who must leave (suppressed, opted out) leave before anyone joins.
        let mut after = String::new();
        loop {
            if shutdown.requested() {
                self.outcome.status = SyncStatus::Interrupted;
                return Ok(());
            }
            let page = self
                .store
                .pending_removals(&dest_name, &audience, self.consent, mirror, &after, limit)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = page.last() else { break };
            after = last.customer_id.clone();
            let result = self
                .dest
                .remove_members(audience_ref, &to_prepared(&page))
                .await
                .map_err(|e| e.to_string())?;
            self.outcome.batches += 1;
            let (accepted, rejected) = split_outcome(&page, &result, "remove");
            let removed: Vec<String> = accepted.iter().map(|e| e.customer_id.clone()).collect();
            self.store
                .acknowledge_batch(
                    &dest_name,
                    &audience,
                    self.run_id,
                    Utc::now().timestamp(),
                    &[],
                    &removed,
                    &rejected,
                )
                .await
                .map_err(|e| e.to_string())?;
            self.outcome.removed += removed.len() as i64;
            self.outcome.rejected += rejected.len() as i64;
        }
        let mut after = String::new();
        loop {
            if shutdown.requested() {
                self.outcome.status = SyncStatus::Interrupted;
                return Ok(());
            }
            let page = self
                .store
                .pending_additions(&dest_name, &audience, &after, limit)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = page.last() else { break };
            after = last.customer_id.clone();
            let result = self
                .dest
                .add_members(audience_ref, &to_prepared(&page))
                .await
                .map_err(|e| e.to_string())?;
            self.outcome.batches += 1;
            let (accepted, rejected) = split_outcome(&page, &result, "add");
            let added: Vec<LedgerEntry> = accepted.into_iter().cloned().collect();
            self.store
                .acknowledge_batch(
                    &dest_name,
                    &audience,
                    self.run_id,
                    Utc::now().timestamp(),
                    &added,
                    &[],
                    &rejected,
                )
                .await
                .map_err(|e| e.to_string())?;
            self.outcome.added += added.len() as i64;
            self.outcome.rejected += rejected.len() as i64;
        }
        Ok(())
    }

    /// Replaces the audience's whole contents with the staged members (adopted audiences, `--full`).
    async fn replace_all(
        &mut self,
        audience_ref: &AudienceRef,
        eligible: i64,
        batch: usize,
    ) -> Result<(), String> {
        let (dest_name, audience) = (self.cfg.destination.clone(), self.outcome.audience.clone());
        let mut session = ReplaceSession::new(eligible as u64);
        let mut after = String::new();
        let mut sent = 0i64;
        let mut rejected_ids = Vec::new();
        let mut rejections = Vec::new();
        loop {
            let page = self
                .store
                .staged_page(&dest_name, &audience, &after, batch.max(1) as i64)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = page.last() else { break };
            after = last.customer_id.clone();
            sent += page.len() as i64;
            let last_batch = sent >= eligible;
            let result = self
                .dest
                .replace_all(audience_ref, &mut session, &to_prepared(&page), last_batch)
                .await
                .map_err(|e| e.to_string())?;
            self.outcome.batches += 1;
            let (_, rejected) = split_outcome(&page, &result, "replace");
            rejected_ids.extend(rejected.iter().map(|r| r.0.clone()));
            rejections.extend(rejected);
        }
        self.store
            .acknowledge_batch(
                &dest_name,
                &audience,
                self.run_id,
                Utc::now().timestamp(),
                &[],
                &[],
                &rejections,
            )
            .await
            .map_err(|e| e.to_string())?;
        self.store
            .ledger_from_staging(
                &dest_name,
                &audience,
                self.run_id,
                Utc::now().timestamp(),
                &rejected_ids,
            )
            .await
            .map_err(|e| e.to_string())?;
        self.outcome.added = sent - rejected_ids.len() as i64;
        self.outcome.rejected = rejected_ids.len() as i64;
        Ok(())
    }
}
