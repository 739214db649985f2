//! The sync job (DESIGN §6): for each `[[sync]]`, make the destination's audience equal to (mirror) or
//! a superset of (upsert) the segment, sending only what changed since the platform last acknowledged.
//!
//! The desired members (segment members with the channel's consent, not suppressed, not held out,
//! prepared — normalised and hashed — by the connector page by page) are merged in bytewise customer-id
//! order with the ledger of what the audience holds. While the audience's recorded mapping (see
//! `mapping_of`) is unchanged the diff is done in the database ([`Store::diff_page`]): one stream of
//! pages, each holding, over one id range, the members the ledger does not hold at their current
//! `customers.identity_version` (maintained by triggers, whoever writes the table) and the ledger rows
//! of members who are no longer eligible members as recorded; unchanged members are neither read nor
//! prepared, and the same pass counts the exclusions and the identifier kinds held unchanged (when the
//! changes fit one page nothing else reads the segment). Otherwise (first sync, changed mapping,
//! `--full`) every member is read and prepared, and two streams, members and ledger, are merged. Each
//! stream reads up to two pages ahead in the background while the current one is merged ([`ReadAhead`]). A
//! changed member whose payload came out the same is only re-stamped with its new version. The ledger
//! advances after every acknowledged batch, so a crash resumes where it stopped with at most one batch
//! resent. Rows a platform rejects never enter the ledger: they are recorded with the reason and
//! retried next run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use thiserror::Error;

use campaignd_connectors::{
    AudienceDestination, AudienceRef, BatchOutcome, Channel, ConnectorError, Contact, JobAction,
    NoIdentifier, PreparedMember, ReplaceSession, SecretResolver, SyncContext,
};
use campaignd_core::progress::Progress;
use campaignd_store::ledger::{
    Acknowledged, AudienceRecord, Candidate, DiffCursor, KindCounts, LedgerEntry,
};
use campaignd_store::remote_jobs::RemoteJob;
use campaignd_store::runs::{Job, Outcome};
use campaignd_store::{Store, StoreError};

use crate::settings::{HoldoutPlan, Settings, SettingsError, SyncMode, SyncSettings};
use crate::shutdown::Shutdown;

/// Rows read from the store per page of each merge stream.
const PAGE: i64 = 5_000;

/// Changed rows per side of one incremental diff page ([`Store::diff_page`]): large enough that the
/// changes of a typical run (1 % churn of 1M members is 5,000 a side) fit one page, whose single pass
/// then also counted the exclusions, and small enough that a page's members and payloads stay a few
/// MiB.
const DIFF_PAGE: usize = 20_000;

/// What the ledger records per member and how the diff reads it; bumping it makes every audience's
/// next sync compare all its members once (see [`mapping_of`]).
const LEDGER_FORMAT: u32 = 1;

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

/// Why one sync stopped: kept typed so the connector error's kind decides what the run says (a
/// transient platform failure leaves the batch pending for the next run; anything else, a whole-batch
/// 4xx or an unacknowledged 2xx included, is a hard failure of this sync).
#[derive(Debug, Error)]
enum StepError {
    /// The platform refused, did not acknowledge, or could not be reached.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Data campaignd wrote itself is unusable (a corrupt stored payload), or a worker died.
    #[error("{0}")]
    Internal(String),
}

impl StepError {
    /// What the run and the binary report: the platform's (redacted) reason, and whether the next run
    /// retries it.
    fn failure(&self) -> SyncFailure {
        let transient = matches!(self, StepError::Connector(e) if e.is_transient());
        let reason = match self {
            StepError::Connector(e) if transient => {
                format!("{e} (transient: the batch stays pending and is retried next run)")
            }
            StepError::Connector(e) => {
                format!("{e} (the batch was not acknowledged: nobody in it is recorded as held)")
            }
            other => other.to_string(),
        };
        SyncFailure { transient, reason }
    }
}

/// Why a sync stopped, kept apart from the text so the daemon and the run log can tell a failure the
/// next run retries on its own from one a person must look at.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SyncFailure {
    /// The platform throttled, was unreachable or failed on its side: the unacknowledged batch stays
    /// pending and the next run sends it again. `false` for a refusal, an unacknowledged 2xx, or a
    /// store error.
    pub transient: bool,
    /// The redacted reason, with what it means for the batch; the run's `error` column holds it.
    pub reason: String,
}

impl std::fmt::Display for SyncFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
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
    /// Where to report the members gone through (the binary shows a bar or log lines).
    pub progress: Progress,
    /// The instant the sync acts as of (`sync --as-of`, the demo placing its campaign in the past):
    /// holdout/treatment assignments are dated then, so lift counts the orders after it. `None` is
    /// the wall clock. The run log still records when the run really started and, with an as-of,
    /// also the as-of it used (`counts.as_of`); ledger acknowledgements stay at the wall clock (when
    /// the platform really answered).
    pub as_of: Option<DateTime<Utc>>,
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
    Failed(SyncFailure),
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
    /// Members whose identifiers this run read and prepared (normalised and hashed): all eligible
    /// members when it compared everyone, otherwise only those that joined or whose identifiers
    /// changed since the ledger recorded them (and those with none usable, who are never held).
    pub prepared: i64,
    /// How many members carried each identifier kind.
    pub identifiers: KindCounts,
    /// Why the `skipped_no_identifier` members had none.
    pub no_identifier_reasons: NoIdentifierReasons,
    /// Eligible members kept in the sync's holdout: never sent (and removed if held).
    pub held_out: i64,
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

/// Builds every configured destination (errors name the destination and key).
pub fn build_destinations(
    settings: &Settings,
    secrets: &SecretResolver,
) -> Result<BTreeMap<String, Arc<dyn AudienceDestination>>, SyncError> {
    Ok(crate::platforms::build_platforms(settings, secrets)?.destinations)
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
        .filter(|s| {
            opts.destination
                .as_ref()
                .is_none_or(|d| *d == s.destination)
        })
        .filter(|s| opts.segment.as_ref().is_none_or(|g| *g == s.segment))
        .collect();
    if selected.is_empty() && (opts.destination.is_some() || opts.segment.is_some()) {
        let what = [
            opts.destination
                .as_ref()
                .map(|d| format!("destination \"{d}\"")),
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
        let holdout = settings.holdout_plan(cfg);
        let outcome = run_one(store, cfg, dest.clone(), holdout, opts, shutdown).await?;
        report.syncs.push(outcome);
    }
    Ok(report)
}

struct SyncJob<'a> {
    store: &'a Store,
    cfg: &'a SyncSettings,
    dest: Arc<dyn AudienceDestination>,
    consent: Channel,
    run_id: i64,
    audience_ref: Option<AudienceRef>,
    holdout: Option<HoldoutPlan>,
    outcome: SyncOutcome,
    /// Members of the segment gone through so far (see [`SyncOptions::progress`]).
    progress: Progress,
    /// The `identity_version` each member waiting to be acknowledged was prepared from.
    versions: HashMap<String, i64>,
}

/// Ledger (or stored job) rows back into members; a payload that is not JSON is corrupt data campaignd
/// wrote itself, reported with the customer it belongs to rather than sent as `null`.
fn to_prepared(entries: &[LedgerEntry]) -> Result<Vec<PreparedMember>, StepError> {
    entries
        .iter()
        .map(|e| {
            let payload = serde_json::from_str(&e.payload).map_err(|err| {
                StepError::Internal(format!(
                    "stored payload of customer {} is not JSON: {err}",
                    e.customer_id
                ))
            })?;
            Ok(PreparedMember {
                customer_id: e.customer_id.clone(),
                payload,
                fingerprint: e.fingerprint.clone(),
                kinds: Default::default(),
            })
        })
        .collect()
}

/// The ledger row recorded for a member the platform holds. `version` is the `identity_version` the
/// member was prepared from in this run; without one (a member rebuilt from a stored job, whose
/// identifier kinds are unknown too) the row is compared again by the next sync.
fn to_entry(m: &PreparedMember, version: Option<i64>) -> LedgerEntry {
    LedgerEntry {
        customer_id: m.customer_id.clone(),
        fingerprint: m.fingerprint.clone(),
        payload: m.payload.to_string(),
        identity_version: version,
        kinds: version.map(|_| kind_bits(m)),
    }
}

/// The identifier kinds of a freshly prepared member as the ledger stores them.
fn kind_bits(m: &PreparedMember) -> i64 {
    campaignd_store::ledger::kind_bits(m.kinds.email, m.kinds.phone, m.kinds.address)
}

/// A contact no shop holds, with every identifier column set in the forms shops write them: what the
/// destination prepares from it changes whenever its normalisation, hashing or key choice does.
fn mapping_probe() -> Contact {
    Contact {
        customer_id: "campaignd-mapping-probe".into(),
        email: Some(" Probe.Mapping+Tag@Example.COM ".into()),
        phone: Some("(650) 253-0000".into()),
        first_name: Some("Zoë".into()),
        last_name: Some("O'Brien-Smith".into()),
        country: Some("US".into()),
        postal_code: Some("94105-1234".into()),
        city: Some("San Francisco".into()),
        region: Some("CA".into()),
        gender: Some("F".into()),
        birth_date: chrono::NaiveDate::from_ymd_opt(1985, 3, 7),
    }
}

/// What an audience's ledger was built with: the ledger format, the destination's preparation of
/// [`mapping_probe`] and the holdout plan. While it stays the same a sync looks only at members whose
/// identifiers, eligibility or membership changed (a new campaignd normalising differently, a changed
/// destination config or holdout changes it, and the next sync compares everyone once).
fn mapping_of(dest: &dyn AudienceDestination, holdout: Option<&HoldoutPlan>) -> String {
    let prepared = match dest.prepare(&mapping_probe()) {
        Ok(m) => m.fingerprint,
        Err(why) => format!("{why:?}"),
    };
    let holdout = holdout.map(|h| format!("{}:{}", h.share, h.salt));
    campaignd_core::identifiers::sha256_hex(&format!(
        "{LEDGER_FORMAT}|{}|{prepared}|{holdout:?}",
        dest.kind()
    ))
}

/// The members of a batch the platform acknowledged (all but those `outcome` rejects), in batch order,
/// and the (id, action, reason) rejections to log.
fn split_outcome<'m>(
    chunk: &'m [PreparedMember],
    outcome: &BatchOutcome,
    action: &str,
) -> (Vec<&'m PreparedMember>, Vec<(String, String, String)>) {
    let accepted = if outcome.rejected.is_empty() {
        chunk.iter().collect()
    } else {
        let rejected_ids: HashSet<&str> = outcome
            .rejected
            .iter()
            .map(|r| r.customer_id.as_str())
            .collect();
        chunk
            .iter()
            .filter(|m| !rejected_ids.contains(m.customer_id.as_str()))
            .collect()
    };
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
    dest: Arc<dyn AudienceDestination>,
    holdout: Option<HoldoutPlan>,
    opts: &SyncOptions,
    shutdown: &Shutdown,
) -> Result<SyncOutcome, SyncError> {
    let started = Instant::now();
    let audience = cfg.audience().to_string();
    let consent = dest.channel();
    let run_id = if opts.dry_run {
        0
    } else {
        store
            .start_run(
                Job::Sync,
                Some(&format!("{} -> {}", cfg.segment, cfg.destination)),
                Utc::now(),
            )
            .await?
    };
    let min_audience_size = dest.limits().min_audience_size;
    let mut job = SyncJob {
        store,
        cfg,
        dest,
        consent,
        run_id,
        audience_ref: None,
        holdout,
        versions: HashMap::new(),
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
            prepared: 0,
            identifiers: KindCounts::default(),
            no_identifier_reasons: NoIdentifierReasons::default(),
            held_out: 0,
            batches: 0,
            status: SyncStatus::Done,
        },
        progress: Progress::none(),
    };
    let result = job.execute(opts, shutdown).await;
    job.progress.finish();
    let mut outcome = job.outcome;
    if let Err(e) = result {
        tracing::warn!(destination = %cfg.destination, segment = %cfg.segment, error = %e, "sync failed");
        outcome.status = SyncStatus::Failed(e.failure());
    }
    if !opts.dry_run {
        let mut counts = json!({
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
            "prepared": outcome.prepared,
            "identifiers": outcome.identifiers,
            "no_identifier_reasons": outcome.no_identifier_reasons,
            "held_out": outcome.held_out,
            "batches": outcome.batches,
            "status": outcome.status,
            "duration_ms": started.elapsed().as_millis() as u64,
        });
        if let Some(as_of) = opts.as_of {
            // `started_at` is when the run really ran; this is the instant its assignments are dated.
            counts["as_of"] = json!(as_of.to_rfc3339());
        }
        let (status, error) = match &outcome.status {
            SyncStatus::Done | SyncStatus::Planned => (Outcome::Success, None),
            SyncStatus::BelowMinimum => (
                Outcome::Success,
                Some(format!(
                    "segment below {}'s minimum audience size ({} < {}): not pushed",
                    cfg.destination, outcome.eligible, min_audience_size
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
                Some(e.reason.clone()),
            ),
        };
        store
            .finish_run(run_id, status, &counts, error.as_deref())
            .await?;
        fold_wal(store, "sync").await;
    }
    Ok(outcome)
}

/// After a job that may have written a lot (a first sync writes a ledger row per member: about
/// 475 MiB at 1M members), folds SQLite's write-ahead log back into the file and truncates it, so a
/// daemon that keeps the store open does not keep a log of that size on disk or make the next job's
/// reads search it. A failure only costs disk and speed: it is logged, and the job's outcome stands.
pub(crate) async fn fold_wal(store: &Store, job: &str) {
    if let Err(e) = store.checkpoint().await {
        tracing::warn!(job, error = %e, "could not checkpoint the SQLite write-ahead log");
    }
}

/// A keyset-paged read that [`ReadAhead`] pages through.
trait PageQuery: Clone + Send + 'static {
    /// One page as read (and, for members, prepared).
    type Page: Send + 'static;
    /// Reads the page at this query's position.
    fn fetch(self) -> impl std::future::Future<Output = Result<Self::Page, StepError>> + Send;
    /// Moves this query past `page`; false when `page` was the last one.
    fn advance(&mut self, page: &Self::Page) -> bool;
}

/// Pages a [`ReadAhead`] holds read beyond the one its caller is merging. Two, because a batch is
/// usually two pages (pages of [`PAGE`] rows, batches of up to 10,000 members): with one, the page after
/// a batch's first was only started when that first page was taken, and every other batch waited for a
/// whole read and prepare (4.2 s of a 20 s first sync of 1M members). Each page more costs a page of
/// prepared members in memory.
const READ_AHEAD_PAGES: usize = 2;

/// A [`PageQuery`]'s pages in order, read by a background task up to [`READ_AHEAD_PAGES`] ahead of the
/// caller, so the store, the hashing and the platform work at the same time.
///
/// Invariant: the task reads the pages one after another, each from where the previous one ended, and
/// every page read ahead starts after the end of the page the caller holds. The caller writes the store
/// (the ledger, after each acknowledged batch) only at customer ids up to the row it is at, which lie at
/// or before the end of the page it holds, so no page read ahead misses or repeats a row because of
/// those writes. Dropping it (a merge that stops early) aborts the task, so no page is read for nobody.
struct ReadAhead<Q: PageQuery> {
    state: Ahead<Q>,
    /// What is read, for the error if the background read dies.
    what: &'static str,
}

/// Where a [`ReadAhead`] is.
enum Ahead<Q: PageQuery> {
    /// Nothing read yet: the task starts at the first call for a page.
    Idle(Q),
    /// The task reads pages into `pages` until the last or until dropped.
    Reading {
        pages: tokio::sync::mpsc::Receiver<Result<Q::Page, StepError>>,
        task: tokio::task::JoinHandle<()>,
    },
    /// Every page has been returned (or the side was known to be empty).
    Done,
}

impl<Q: PageQuery> ReadAhead<Q> {
    /// Pages from `query`'s position on; `exhausted` for a side known to be empty.
    fn new(query: Q, exhausted: bool, what: &'static str) -> Self {
        let state = if exhausted {
            Ahead::Done
        } else {
            Ahead::Idle(query)
        };
        ReadAhead { state, what }
    }

    /// The next page, `None` after the last.
    async fn next_page(&mut self) -> Result<Option<Q::Page>, StepError> {
        if matches!(self.state, Ahead::Idle(_)) {
            if let Ahead::Idle(query) = std::mem::replace(&mut self.state, Ahead::Done) {
                self.state = Self::start(query);
            }
        }
        let Ahead::Reading { pages, task } = &mut self.state else {
            return Ok(None);
        };
        if let Some(page) = pages.recv().await {
            return page.map(Some);
        }
        // The task ended without a page for us: after the last page, or because it died.
        let ended = task.await;
        self.state = Ahead::Done;
        ended
            .map(|()| None)
            .map_err(|e| StepError::Internal(format!("{}: {e}", self.what)))
    }

    /// Spawns the task that reads `query`'s pages in order, from its position on, until the last page
    /// has been handed over, a read fails, or the receiver is gone.
    fn start(mut query: Q) -> Ahead<Q> {
        // One page waits in the channel, one more is being read: READ_AHEAD_PAGES in all.
        let (tx, pages) = tokio::sync::mpsc::channel(READ_AHEAD_PAGES - 1);
        let task = tokio::spawn(async move {
            loop {
                let page = query.clone().fetch().await;
                let more = matches!(&page, Ok(p) if query.advance(p));
                if tx.send(page).await.is_err() || !more {
                    break;
                }
            }
        });
        Ahead::Reading { pages, task }
    }
}

impl<Q: PageQuery> Drop for ReadAhead<Q> {
    /// A merge that stops early (failure, shutdown) does not leave pages being read for nobody.
    fn drop(&mut self) {
        if let Ahead::Reading { task, .. } = &self.state {
            task.abort();
        }
    }
}

/// What the desired side has prepared so far, whichever stream it came from.
struct Preparing {
    tally: IdentifierTally,
    /// Contacts handed to the connector's `prepare` so far.
    prepared: i64,
    progress: Progress,
}

impl Preparing {
    /// Counts one page of members read and prepared.
    fn count(&mut self, page: &PreparedPage) {
        self.progress.advance(page.read as u64);
        self.prepared += page.prepared;
        self.tally.add(&page.tally);
    }
}

/// One side of the merge: the desired members, prepared by the connector, in bytewise id order.
struct Desired {
    pages: ReadAhead<MemberQuery>,
    page: std::vec::IntoIter<(PreparedMember, i64)>,
    counts: Preparing,
}

/// What [`Desired`] reads for one page: where to go on from, and how its members are prepared.
#[derive(Clone)]
struct MemberQuery {
    prep: Preparer,
    segment: String,
    consent: Channel,
    after: String,
}

/// How a page of candidates becomes members: the destination's `prepare`, after the holdout.
#[derive(Clone)]
struct Preparer {
    store: Store,
    dest: Arc<dyn AudienceDestination>,
    holdout: Option<HoldoutPlan>,
}

/// A page of desired members, read and prepared.
struct PreparedPage {
    /// Rows the store returned (before the holdout filter).
    read: usize,
    /// The last customer id read: where the next page starts.
    last: Option<String>,
    /// Contacts handed to `prepare`.
    prepared: i64,
    tally: IdentifierTally,
    members: Vec<(PreparedMember, i64)>,
}

impl Preparer {
    /// Prepares the candidates a page read (on the blocking pool, both cores), each with the
    /// `identity_version` it was read at; held-out members are left out before being prepared.
    async fn prepare(&self, rows: Vec<Candidate>) -> Result<PreparedPage, StepError> {
        let read = rows.len();
        let last = rows.last().map(|r| r.contact.customer_id.clone());
        let kept = crate::holdout::without_held_out(rows, self.holdout.as_ref());
        let versions: HashMap<String, i64> = kept
            .iter()
            .map(|c| (c.contact.customer_id.clone(), c.identity_version))
            .collect();
        let contacts: Vec<Contact> = kept.into_iter().map(|c| c.contact).collect();
        let prepared = contacts.len() as i64;
        let (members, tally) = prepare_in_parallel(&self.dest, contacts).await?;
        let members = members
            .into_iter()
            .map(|m| {
                let version = versions.get(&m.customer_id).copied().ok_or_else(|| {
                    StepError::Internal(format!(
                        "prepared customer {} was not on the page read",
                        m.customer_id
                    ))
                })?;
                Ok((m, version))
            })
            .collect::<Result<Vec<_>, StepError>>()?;
        Ok(PreparedPage {
            read,
            last,
            prepared,
            tally,
            members,
        })
    }
}

impl PageQuery for MemberQuery {
    type Page = PreparedPage;

    /// Reads the eligible members after `after` and prepares them.
    async fn fetch(self) -> Result<PreparedPage, StepError> {
        let rows = self
            .prep
            .store
            .sync_candidates(&self.segment, self.consent, &self.after, PAGE)
            .await?;
        self.prep.prepare(rows).await
    }

    fn advance(&mut self, page: &PreparedPage) -> bool {
        match &page.last {
            Some(last) => {
                self.after.clone_from(last);
                page.read as i64 >= PAGE
            }
            None => false,
        }
    }
}

impl Desired {
    /// The next member with the `identity_version` it was prepared from (see [`ReadAhead`]).
    async fn next(&mut self) -> Result<Option<(PreparedMember, i64)>, StepError> {
        loop {
            if let Some(m) = self.page.next() {
                return Ok(Some(m));
            }
            let Some(fetched) = self.pages.next_page().await? else {
                return Ok(None);
            };
            self.counts.count(&fetched);
            self.page = fetched.members.into_iter();
        }
    }
}

/// The incremental merge's one stream: pages of [`Store::diff_page`], the joined members prepared.
#[derive(Clone)]
struct DiffQuery {
    prep: Preparer,
    segment: String,
    consent: Channel,
    destination: String,
    audience: String,
    cursor: DiffCursor,
}

/// One diff page: both sides over the same customer-id range.
struct DiffFetched {
    /// The eligible members the audience does not hold as they are now, prepared.
    desired: PreparedPage,
    /// What the audience holds for members no longer eligible members as recorded.
    held: Vec<LedgerEntry>,
    /// Where the diff stands after this page, with its counts.
    cursor: DiffCursor,
}

impl PageQuery for DiffQuery {
    type Page = DiffFetched;

    /// Reads the next diff page and prepares its joined members.
    async fn fetch(self) -> Result<DiffFetched, StepError> {
        let page = self
            .prep
            .store
            .diff_page(
                &self.segment,
                self.consent,
                &self.destination,
                &self.audience,
                &self.cursor,
                DIFF_PAGE,
            )
            .await?;
        let desired = self.prep.prepare(page.joined).await?;
        Ok(DiffFetched {
            desired,
            held: page.held,
            cursor: page.cursor,
        })
    }

    fn advance(&mut self, page: &DiffFetched) -> bool {
        self.cursor = page.cursor.clone();
        !self.cursor.done()
    }
}

/// One step of the merge, in customer-id order: a member only desired, only held, or both.
enum Step {
    Want((PreparedMember, i64)),
    Have(LedgerEntry),
    Both((PreparedMember, i64), LedgerEntry),
}

/// Takes the step at the smaller of two id-ordered heads (both heads when they are the same member),
/// leaving the other head in place; `None` when both are empty.
fn take_step(
    want: &mut Option<(PreparedMember, i64)>,
    have: &mut Option<LedgerEntry>,
) -> Option<Step> {
    let order = match (want.as_ref(), have.as_ref()) {
        (None, None) => return None,
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(w), Some(h)) => w.0.customer_id.as_str().cmp(h.customer_id.as_str()),
    };
    match order {
        std::cmp::Ordering::Less => want.take().map(Step::Want),
        std::cmp::Ordering::Greater => have.take().map(Step::Have),
        std::cmp::Ordering::Equal => want.take().zip(have.take()).map(|(w, h)| Step::Both(w, h)),
    }
}

/// Where the merge's steps come from: two streams read side by side (every member compared), or the
/// diff's one stream of changes (incremental).
// One per sync, on the merge's stack frame: the size difference costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Sides {
    Streams {
        desired: Desired,
        held: Held,
        want: Option<(PreparedMember, i64)>,
        have: Option<LedgerEntry>,
    },
    Diff {
        pages: ReadAhead<DiffQuery>,
        /// A page read before the merge started (the one whose counts the sync used).
        first: Option<DiffFetched>,
        counts: Preparing,
        want: std::vec::IntoIter<(PreparedMember, i64)>,
        have: std::vec::IntoIter<LedgerEntry>,
        heads: (Option<(PreparedMember, i64)>, Option<LedgerEntry>),
        /// The identifier kinds of the members held unchanged, once the diff is done.
        unchanged: Option<KindCounts>,
    },
}

impl Sides {
    /// The next step of the merge.
    async fn next(&mut self) -> Result<Option<Step>, StepError> {
        match self {
            Sides::Streams {
                desired,
                held,
                want,
                have,
            } => {
                match (want.is_none(), have.is_none()) {
                    // The first scans of each side (or both refills) run side by side.
                    (true, true) => {
                        let (w, h) = tokio::join!(desired.next(), held.next());
                        (*want, *have) = (w?, h?);
                    }
                    (true, false) => *want = desired.next().await?,
                    (false, true) => *have = held.next().await?,
                    (false, false) => {}
                }
                Ok(take_step(want, have))
            }
            Sides::Diff {
                pages,
                first,
                counts,
                want,
                have,
                heads,
                unchanged,
            } => loop {
                if heads.0.is_none() {
                    heads.0 = want.next();
                }
                if heads.1.is_none() {
                    heads.1 = have.next();
                }
                if let Some(step) = take_step(&mut heads.0, &mut heads.1) {
                    return Ok(Some(step));
                }
                let page = match first.take() {
                    Some(page) => page,
                    None => match pages.next_page().await? {
                        Some(page) => page,
                        None => return Ok(None),
                    },
                };
                counts.count(&page.desired);
                *unchanged = page.cursor.unchanged_kinds();
                *want = page.desired.members.into_iter();
                *have = page.held.into_iter();
            },
        }
    }

    /// What the desired side prepared.
    fn counts(&self) -> &Preparing {
        match self {
            Sides::Streams { desired, .. } => &desired.counts,
            Sides::Diff { counts, .. } => counts,
        }
    }
}

/// Why members had no usable identifier (recorded as `no_identifier_reasons`; they sum to
/// `skipped.no_identifier`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NoIdentifierReasons {
    /// A phone was given but is invalid, and nothing else was usable.
    pub invalid_phone: i64,
    /// An email was given but is invalid, and nothing else was usable.
    pub invalid_email: i64,
    /// No email or phone at all.
    pub none: i64,
}

impl NoIdentifierReasons {
    /// Members with no usable identifier, whatever the reason: the `no_identifier` count.
    pub fn total(&self) -> i64 {
        self.invalid_phone + self.invalid_email + self.none
    }
}

/// The identifier counts of the members a sync prepared, by kind and by reason for none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct IdentifierTally {
    kinds: KindCounts,
    reasons: NoIdentifierReasons,
}

impl IdentifierTally {
    fn member(&mut self, m: &PreparedMember) {
        self.kinds.add_bits(kind_bits(m));
    }

    fn skipped(&mut self, why: NoIdentifier) {
        match why {
            NoIdentifier::InvalidPhone => self.reasons.invalid_phone += 1,
            NoIdentifier::InvalidEmail => self.reasons.invalid_email += 1,
            NoIdentifier::None => self.reasons.none += 1,
        }
    }

    fn add(&mut self, other: &IdentifierTally) {
        self.kinds.add(&other.kinds);
        self.reasons.invalid_phone += other.reasons.invalid_phone;
        self.reasons.invalid_email += other.reasons.invalid_email;
        self.reasons.none += other.reasons.none;
    }
}

/// Normalises and hashes a page of contacts on the blocking pool, split in two so both cores work.
async fn prepare_in_parallel(
    dest: &Arc<dyn AudienceDestination>,
    mut contacts: Vec<Contact>,
) -> Result<(Vec<PreparedMember>, IdentifierTally), StepError> {
    let second = contacts.split_off(contacts.len() / 2);
    let run = |part: Vec<Contact>| {
        let dest = dest.clone();
        tokio::task::spawn_blocking(move || {
            let mut tally = IdentifierTally::default();
            let mut prepared = Vec::with_capacity(part.len());
            for c in &part {
                match dest.prepare(c) {
                    Ok(m) => {
                        tally.member(&m);
                        prepared.push(m);
                    }
                    Err(why) => tally.skipped(why),
                }
            }
            (prepared, tally)
        })
    };
    let (a, b) = tokio::join!(run(contacts), run(second));
    let (mut first, mut tally) =
        a.map_err(|e| StepError::Internal(format!("preparing identifiers: {e}")))?;
    let (rest, tally_b) =
        b.map_err(|e| StepError::Internal(format!("preparing identifiers: {e}")))?;
    first.extend(rest);
    tally.add(&tally_b);
    Ok((first, tally))
}

/// The other side of the two-stream merge: what the ledger says the platform holds, in the same order.
struct Held {
    pages: ReadAhead<HeldQuery>,
    page: std::vec::IntoIter<LedgerEntry>,
}

/// What [`Held`] reads for one page: where to go on from.
#[derive(Clone)]
struct HeldQuery {
    store: Store,
    destination: String,
    audience: String,
    after: String,
}

impl PageQuery for HeldQuery {
    type Page = Vec<LedgerEntry>;

    async fn fetch(self) -> Result<Vec<LedgerEntry>, StepError> {
        Ok(self
            .store
            .ledger_page(&self.destination, &self.audience, &self.after, PAGE)
            .await?)
    }

    fn advance(&mut self, page: &Vec<LedgerEntry>) -> bool {
        match page.last() {
            Some(last) => {
                self.after.clone_from(&last.customer_id);
                page.len() as i64 >= PAGE
            }
            None => false,
        }
    }
}

impl Held {
    /// The next held row (see [`ReadAhead`]).
    async fn next(&mut self) -> Result<Option<LedgerEntry>, StepError> {
        loop {
            if let Some(e) = self.page.next() {
                return Ok(Some(e));
            }
            let Some(rows) = self.pages.next_page().await? else {
                return Ok(None);
            };
            self.page = rows.into_iter();
        }
    }
}

/// How [`SyncJob::merge`] runs.
#[derive(Debug, Clone, Copy)]
struct MergeFlags {
    /// Mirror mode: held members who are no longer wanted are removed (upsert: only if no longer
    /// allowed at all).
    mirror: bool,
    /// The audience is taken as empty (unknown, or about to be replaced).
    ignore_ledger: bool,
    /// Only the members whose identifiers, membership or eligibility changed since the ledger recorded
    /// them are looked at (the audience's mapping is unchanged).
    incremental: bool,
    /// Count only; send and write nothing.
    dry_run: bool,
}

/// Changes waiting to be sent: removals always go out before the additions collected with them, so a
/// member whose identifiers changed is removed (old payload) before being re-added (new payload).
#[derive(Default)]
struct Pending {
    removals: Vec<LedgerEntry>,
    additions: Vec<PreparedMember>,
    /// Upsert mode: held members who left the segment; removed only if no longer allowed at all.
    to_check: Vec<LedgerEntry>,
    /// Held members prepared again to the same payload: `(customer id, identity_version, kinds)`
    /// to record, so the next sync skips them.
    restamp: Vec<(String, i64, i64)>,
}

impl<'a> SyncJob<'a> {
    async fn execute(&mut self, opts: &SyncOptions, shutdown: &Shutdown) -> Result<(), StepError> {
        let mirror = self.cfg.mode == SyncMode::Mirror;
        let (dest_name, audience) = (self.cfg.destination.clone(), self.outcome.audience.clone());
        let recorded = self.store.audience(&dest_name, &audience).await?;
        let mapping = mapping_of(self.dest.as_ref(), self.holdout.as_ref());
        let same_mapping = |r: &AudienceRecord| r.mapping.as_deref() == Some(mapping.as_str());
        // The merge below is incremental exactly when this holds (a dry run and a real sync alike).
        // Then its diff's first page is read now: when the changes fit one page, that single pass
        // over both sides also counted the exclusions, and nothing else reads the segment. Not while
        // an earlier run's remote jobs wait: settling them writes the ledger before the merge.
        let incremental_ahead = !opts.full
            && recorded
                .as_ref()
                .is_some_and(|r| same_mapping(r) && !(r.needs_replace && mirror));
        let mut early = None;
        if incremental_ahead
            && (opts.dry_run
                || self
                    .store
                    .remote_jobs(&dest_name, &audience)
                    .await?
                    .is_empty())
        {
            let mut pages = self.diff();
            let first = pages.next_page().await?;
            early = Some((pages, first));
        }
        let counted = early
            .as_ref()
            .and_then(|(_, first)| first.as_ref())
            .and_then(|page| page.cursor.exclusions());
        let excl = match counted {
            Some(excl) => excl,
            None => {
                self.store
                    .sync_exclusions(&self.cfg.segment, self.consent)
                    .await?
            }
        };
        self.outcome.skipped_no_consent = excl.no_consent;
        self.outcome.skipped_suppressed = excl.suppressed;
        let held_out = crate::holdout::assign(
            self.store,
            self.cfg,
            self.consent,
            self.holdout.as_ref(),
            (!opts.dry_run).then_some(self.run_id),
            opts.as_of.unwrap_or_else(Utc::now),
        )
        .await?;
        self.outcome.held_out = held_out;
        let eligible = excl.members - excl.no_consent - excl.suppressed - held_out;
        self.outcome.eligible = eligible;
        if !opts.dry_run {
            self.progress = opts.progress.clone();
            self.progress.start(
                &format!("sync {} -> {}", self.cfg.segment, self.cfg.destination),
                "members",
                Some(eligible.max(0) as u64),
            );
        }
        let limits = self.dest.limits();
        if (eligible as usize) < limits.min_audience_size {
            self.outcome.status = SyncStatus::BelowMinimum;
            return Ok(());
        }
        let batch = limits.max_batch.max(1);
        if opts.dry_run {
            // An unknown or to-be-replaced audience receives everyone; otherwise the merge's counts.
            let replace = opts.full || recorded.as_ref().is_none_or(|r| r.needs_replace);
            let ignore_ledger = recorded.is_none() || (replace && mirror);
            let incremental = !opts.full && recorded.as_ref().is_some_and(same_mapping);
            let flags = MergeFlags {
                mirror,
                ignore_ledger,
                incremental,
                dry_run: true,
            };
            self.merge(flags, batch, early, shutdown).await?;
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
                    .await?;
                let record = AudienceRecord {
                    remote_id: remote.remote_id,
                    needs_replace: remote.adopted && mirror,
                    mapping: None,
                };
                self.store
                    .save_audience(&dest_name, &audience, &record, now)
                    .await?;
                record
            }
        };
        let audience_ref = AudienceRef {
            remote_id: record.remote_id.clone(),
            adopted: record.needs_replace,
        };
        self.audience_ref = Some(audience_ref.clone());
        self.dest
            .begin_sync(&SyncContext {
                run_id: self.run_id.to_string(),
                segment: self.cfg.segment.clone(),
                audience: audience_ref.clone(),
            })
            .await?;
        self.resume_jobs().await?;
        if opts.full {
            if mirror && self.dest.supports_replace_all() {
                record.needs_replace = true;
            } else {
                self.store.clear_ledger(&dest_name, &audience).await?;
            }
        }
        let mut incremental = !opts.full && same_mapping(&record);
        if record.needs_replace && mirror {
            if self.dest.supports_replace_all() {
                self.replace_all(eligible, batch).await?;
                return self.mapping_done(&mapping).await;
            }
            // No native replace: the platform's current members are unknown, so resend everyone.
            self.store.clear_ledger(&dest_name, &audience).await?;
            self.store.mark_replaced(&dest_name, &audience).await?;
            incremental = false;
        }
        let flags = MergeFlags {
            mirror,
            ignore_ledger: false,
            incremental,
            dry_run: false,
        };
        self.merge(flags, batch, early, shutdown).await?;
        self.mapping_done(&mapping).await
    }

    /// After a sync that went through every member: the ledger now matches `mapping`, so the next
    /// sync may look at changed members only. An interrupted sync leaves the record as it was.
    async fn mapping_done(&self, mapping: &str) -> Result<(), StepError> {
        if self.outcome.status != SyncStatus::Done {
            return Ok(());
        }
        self.store
            .save_mapping(&self.cfg.destination, &self.outcome.audience, mapping)
            .await?;
        Ok(())
    }

    /// How this sync prepares a page of candidates.
    fn preparer(&self) -> Preparer {
        Preparer {
            store: self.store.clone(),
            dest: self.dest.clone(),
            holdout: self.holdout.clone(),
        }
    }

    /// Nothing prepared yet, progress reported to this sync's bar.
    fn preparing(&self) -> Preparing {
        Preparing {
            tally: IdentifierTally::default(),
            prepared: 0,
            progress: self.progress.clone(),
        }
    }

    /// Every eligible member, prepared, in id order.
    fn desired(&self) -> Desired {
        let query = MemberQuery {
            prep: self.preparer(),
            segment: self.cfg.segment.clone(),
            consent: self.consent,
            after: String::new(),
        };
        Desired {
            pages: ReadAhead::new(query, false, "reading members"),
            page: Vec::new().into_iter(),
            counts: self.preparing(),
        }
    }

    /// The pages of the incremental diff against this sync's audience, from its start.
    fn diff(&self) -> ReadAhead<DiffQuery> {
        let query = DiffQuery {
            prep: self.preparer(),
            segment: self.cfg.segment.clone(),
            consent: self.consent,
            destination: self.cfg.destination.clone(),
            audience: self.outcome.audience.clone(),
            cursor: DiffCursor::default(),
        };
        ReadAhead::new(query, false, "reading the sync diff")
    }

    /// Merges the desired members with the ledger and sends the differences in platform-sized batches
    /// (or, for a dry run, only counts them). Incremental: one stream of the changes, diffed in the
    /// database ([`Store::diff_page`]), where `early` may hold its pages already started; the
    /// identifier counts of the members held unchanged come from the diff. Otherwise every eligible
    /// member is read, prepared and compared with the ledger (none of it when `ignore_ledger`).
    async fn merge(
        &mut self,
        flags: MergeFlags,
        batch: usize,
        early: Option<(ReadAhead<DiffQuery>, Option<DiffFetched>)>,
        shutdown: &Shutdown,
    ) -> Result<(), StepError> {
        let MergeFlags {
            mirror,
            ignore_ledger,
            incremental,
            dry_run,
        } = flags;
        let mut sides = if incremental && !ignore_ledger {
            let (pages, first) = early.unwrap_or_else(|| (self.diff(), None));
            Sides::Diff {
                pages,
                first,
                counts: self.preparing(),
                want: Vec::new().into_iter(),
                have: Vec::new().into_iter(),
                heads: (None, None),
                unchanged: None,
            }
        } else {
            drop(early);
            let held = HeldQuery {
                store: self.store.clone(),
                destination: self.cfg.destination.clone(),
                audience: self.outcome.audience.clone(),
                after: String::new(),
            };
            Sides::Streams {
                desired: self.desired(),
                held: Held {
                    pages: ReadAhead::new(held, ignore_ledger, "reading the ledger"),
                    page: Vec::new().into_iter(),
                },
                want: None,
                have: None,
            }
        };
        let mut pending = Pending::default();
        while let Some(step) = sides.next().await? {
            match step {
                Step::Want(w) => self.want(&mut pending, w),
                Step::Have(h) => self.held_but_not_wanted(&mut pending, h, mirror),
                Step::Both((member, version), h) => {
                    if member.fingerprint != h.fingerprint {
                        pending.removals.push(h);
                        self.want(&mut pending, (member, version));
                    } else {
                        let bits = kind_bits(&member);
                        if h.identity_version != Some(version) || h.kinds != Some(bits) {
                            pending.restamp.push((member.customer_id, version, bits));
                        }
                    }
                }
            }
            if pending.additions.len() >= batch
                || pending.removals.len() >= batch
                || pending.to_check.len() >= batch
                || pending.restamp.len() >= batch
            {
                if !dry_run && shutdown.requested() {
                    self.outcome.status = SyncStatus::Interrupted;
                    return Ok(());
                }
                self.flush(&mut pending, batch, dry_run, false).await?;
            }
        }
        self.flush(&mut pending, batch, dry_run, true).await?;
        let counts = sides.counts();
        self.outcome.skipped_no_identifier = counts.tally.reasons.total();
        self.outcome.prepared = counts.prepared;
        let mut kinds = counts.tally.kinds;
        if let Sides::Diff { unchanged, .. } = &sides {
            let unchanged = unchanged.ok_or_else(|| {
                StepError::Internal("the sync diff ended before its last page".to_string())
            })?;
            kinds.add(&unchanged);
        }
        self.outcome.identifiers = kinds;
        self.outcome.no_identifier_reasons = counts.tally.reasons;
        Ok(())
    }

    /// Queues a desired member for sending, remembering the version it was prepared from.
    fn want(&mut self, pending: &mut Pending, (member, version): (PreparedMember, i64)) {
        self.versions.insert(member.customer_id.clone(), version);
        pending.additions.push(member);
    }

    /// The ledger row for an acknowledged member prepared in this run.
    fn entry_of(&self, m: &PreparedMember) -> LedgerEntry {
        to_entry(m, self.versions.get(&m.customer_id).copied())
    }

    fn held_but_not_wanted(&self, pending: &mut Pending, held: LedgerEntry, mirror: bool) {
        // A member who fell into the holdout (added later) leaves the audience in upsert mode too.
        let held_out = self
            .holdout
            .as_ref()
            .is_some_and(|h| h.holds_out(&held.customer_id));
        if mirror || held_out {
            pending.removals.push(held);
        } else {
            pending.to_check.push(held);
        }
    }

    /// Sends what is pending: removals first, then additions, each in platform-sized batches, the
    /// ledger advancing after every acknowledged batch. Unless `all`, a partial batch stays pending.
    async fn flush(
        &mut self,
        pending: &mut Pending,
        batch: usize,
        dry_run: bool,
        all: bool,
    ) -> Result<(), StepError> {
        if !pending.to_check.is_empty() {
            let ids: Vec<String> = pending
                .to_check
                .iter()
                .map(|e| e.customer_id.clone())
                .collect();
            let allowed = self.store.still_eligible(self.consent, &ids).await?;
            pending.removals.extend(
                pending
                    .to_check
                    .drain(..)
                    .filter(|e| !allowed.contains(&e.customer_id)),
            );
        }
        if !pending.restamp.is_empty() {
            if !dry_run {
                self.store
                    .restamp_ledger(
                        &self.cfg.destination,
                        &self.outcome.audience,
                        &pending.restamp,
                    )
                    .await?;
            }
            pending.restamp.clear();
        }
        // Removals go out in full before any addition collected alongside them.
        while !pending.removals.is_empty()
            && (all || pending.removals.len() >= batch || !pending.additions.is_empty())
        {
            let n = pending.removals.len().min(batch);
            let chunk: Vec<LedgerEntry> = pending.removals.drain(..n).collect();
            self.send_removals(&chunk, dry_run).await?;
        }
        while pending.additions.len() >= batch || (all && !pending.additions.is_empty()) {
            let n = pending.additions.len().min(batch);
            let chunk: Vec<PreparedMember> = pending.additions.drain(..n).collect();
            self.send_additions(&chunk, dry_run).await?;
        }
        Ok(())
    }

    fn audience_ref(&self) -> Result<&AudienceRef, StepError> {
        self.audience_ref
            .as_ref()
            .ok_or_else(|| StepError::Internal("no audience before sending".to_string()))
    }

    async fn send_removals(
        &mut self,
        chunk: &[LedgerEntry],
        dry_run: bool,
    ) -> Result<(), StepError> {
        if dry_run {
            self.outcome.removed += chunk.len() as i64;
            return Ok(());
        }
        let members = to_prepared(chunk)?;
        if self.dest.remote_job(JobAction::Remove) {
            return self.send_as_job(JobAction::Remove, &members).await;
        }
        let result = self
            .dest
            .remove_members(self.audience_ref()?, &members)
            .await?;
        self.outcome.batches += 1;
        self.settle("remove", &members, &result, None).await
    }

    async fn send_additions(
        &mut self,
        chunk: &[PreparedMember],
        dry_run: bool,
    ) -> Result<(), StepError> {
        if dry_run {
            self.outcome.added += chunk.len() as i64;
            for m in chunk {
                self.versions.remove(&m.customer_id);
            }
            return Ok(());
        }
        if self.dest.remote_job(JobAction::Add) {
            return self.send_as_job(JobAction::Add, chunk).await;
        }
        let result = self.dest.add_members(self.audience_ref()?, chunk).await?;
        self.outcome.batches += 1;
        self.settle("add", chunk, &result, None).await
    }

    /// Records what the platform acknowledged for one batch, in one transaction: accepted additions
    /// enter the ledger, accepted removals leave it, rejections are logged; for a batch that ran as
    /// remote job `job_id` the stored job is deleted with it.
    async fn settle(
        &mut self,
        action: &str,
        chunk: &[PreparedMember],
        result: &BatchOutcome,
        job_id: Option<&str>,
    ) -> Result<(), StepError> {
        let (accepted, rejected) = split_outcome(chunk, result, action);
        let (added, removed): (Vec<LedgerEntry>, Vec<String>) = if action == "remove" {
            let removed = accepted.iter().map(|m| m.customer_id.clone()).collect();
            (Vec::new(), removed)
        } else {
            (
                accepted.iter().map(|m| self.entry_of(m)).collect(),
                Vec::new(),
            )
        };
        let batch = Acknowledged {
            added: &added,
            removed: &removed,
            rejected: &rejected,
        };
        let (dest, audience, now) = (
            &self.cfg.destination,
            &self.outcome.audience,
            Utc::now().timestamp(),
        );
        match job_id {
            Some(job) => {
                self.store
                    .acknowledge_job(dest, audience, job, self.run_id, now, &batch)
                    .await?
            }
            None => {
                self.store
                    .acknowledge_batch(
                        dest,
                        audience,
                        self.run_id,
                        now,
                        &added,
                        &removed,
                        &rejected,
                    )
                    .await?
            }
        }
        self.outcome.added += added.len() as i64;
        self.outcome.removed += removed.len() as i64;
        self.outcome.rejected += rejected.len() as i64;
        if action != "remove" {
            // Settled either way (held, or rejected and retried next run): nothing waits for them.
            for m in chunk {
                self.versions.remove(&m.customer_id);
            }
        }
        Ok(())
    }

    /// Sends one batch as a remote job: submit, store the job id with the rows it holds, then wait.
    /// Rows refused up front are logged at once; they are not part of the job.
    async fn send_as_job(
        &mut self,
        action: JobAction,
        chunk: &[PreparedMember],
    ) -> Result<(), StepError> {
        let audience = self.audience_ref()?.clone();
        let submitted = self.dest.submit_job(&audience, action, chunk).await?;
        self.outcome.batches += 1;
        let held = submitted.members_in_job(chunk);
        if !submitted.rejected.is_empty() {
            let refused = BatchOutcome {
                accepted: 0,
                rejected: submitted.rejected.clone(),
            };
            self.settle(action.as_str(), &[], &refused, None).await?;
        }
        let Some(job_id) = submitted.job_id else {
            return Ok(());
        };
        let job = RemoteJob {
            job_id,
            action: action.as_str().to_string(),
            run_id: self.run_id,
            submitted_at: Utc::now().timestamp(),
            // A job resumed by a later run cannot vouch for the version: those rows compare again.
            members: held.iter().map(|m| to_entry(m, None)).collect(),
        };
        self.store
            .save_remote_job(&self.cfg.destination, &self.outcome.audience, &job)
            .await?;
        self.finish_job(&audience, action, &job.job_id, &held).await
    }

    /// Waits for a stored job. Done: the ledger advances and the job row goes, together. Transient
    /// failure (still running past the wait budget, platform unreachable): the row stays and the next
    /// run polls the same job. Any other failure: the row goes and the batch, absent from the ledger,
    /// is sent again.
    async fn finish_job(
        &mut self,
        audience: &AudienceRef,
        action: JobAction,
        job_id: &str,
        members: &[PreparedMember],
    ) -> Result<(), StepError> {
        match self.dest.await_job(audience, action, job_id, members).await {
            Ok(result) => {
                self.settle(action.as_str(), members, &result, Some(job_id))
                    .await
            }
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                self.store
                    .clear_remote_job(&self.cfg.destination, &self.outcome.audience, job_id)
                    .await?;
                Err(e.into())
            }
        }
    }

    /// Settles the jobs an earlier (possibly killed) run submitted for this audience before anything
    /// new is planned, so their rows are polled, not resent. A job that failed on the platform is
    /// forgotten and its rows go out again in this run's merge.
    async fn resume_jobs(&mut self) -> Result<(), StepError> {
        let jobs = self
            .store
            .remote_jobs(&self.cfg.destination, &self.outcome.audience)
            .await?;
        let audience = self.audience_ref()?.clone();
        for job in jobs {
            let action = match job.action.as_str() {
                "add" => JobAction::Add,
                "remove" => JobAction::Remove,
                other => {
                    return Err(StepError::Internal(format!(
                        "stored remote job {} has unknown action `{other}`",
                        job.job_id
                    )))
                }
            };
            tracing::info!(destination = %self.cfg.destination, audience = %self.outcome.audience, job_id = %job.job_id, rows = job.members.len(), "polling a remote job an earlier run submitted");
            let members = to_prepared(&job.members)?;
            match self
                .finish_job(&audience, action, &job.job_id, &members)
                .await
            {
                Err(StepError::Connector(e)) if !e.is_transient() => {
                    tracing::warn!(destination = %self.cfg.destination, job_id = %job.job_id, error = %e, "the earlier run's remote job failed; its rows are sent again");
                }
                other => other?,
            }
        }
        Ok(())
    }

    /// Replaces the audience's whole contents with the desired members (adopted audiences, `--full`);
    /// the ledger is rebuilt from the acknowledged slices. A crash part-way leaves the audience flagged,
    /// so the next run starts the replace again.
    async fn replace_all(&mut self, eligible: i64, batch: usize) -> Result<(), StepError> {
        let (dest_name, audience) = (self.cfg.destination.clone(), self.outcome.audience.clone());
        self.store.clear_ledger(&dest_name, &audience).await?;
        let mut session = ReplaceSession::new(eligible as u64);
        let mut desired = self.desired();
        let mut slice: Vec<PreparedMember> = Vec::with_capacity(batch);
        let mut next = desired.next().await?;
        while let Some((member, version)) = next {
            self.versions.insert(member.customer_id.clone(), version);
            slice.push(member);
            next = desired.next().await?;
            if slice.len() == batch || next.is_none() {
                let last_batch = next.is_none();
                let result = self
                    .dest
                    .replace_all(self.audience_ref()?, &mut session, &slice, last_batch)
                    .await?;
                self.outcome.batches += 1;
                self.settle("replace", &slice, &result, None).await?;
                slice.clear();
            }
        }
        let counts = &desired.counts;
        self.outcome.skipped_no_identifier = counts.tally.reasons.total();
        self.outcome.prepared = counts.prepared;
        self.outcome.identifiers = counts.tally.kinds;
        self.outcome.no_identifier_reasons = counts.tally.reasons;
        self.store.mark_replaced(&dest_name, &audience).await?;
        Ok(())
    }
}

#[cfg(test)]
mod read_ahead_tests {
    use super::*;

    /// Pages of `size` numbers out of `0..total`; the page starting at `fail_at` fails, the page
    /// starting at `panic_at` panics.
    #[derive(Clone)]
    struct Numbers {
        next: usize,
        size: usize,
        total: usize,
        fail_at: Option<usize>,
        panic_at: Option<usize>,
    }

    impl PageQuery for Numbers {
        type Page = Vec<usize>;

        async fn fetch(self) -> Result<Vec<usize>, StepError> {
            if self.fail_at == Some(self.next) {
                return Err(StepError::Internal(format!("page at {} failed", self.next)));
            }
            assert!(self.panic_at != Some(self.next), "the reader died");
            Ok((self.next..(self.next + self.size).min(self.total)).collect())
        }

        fn advance(&mut self, page: &Vec<usize>) -> bool {
            self.next += page.len();
            page.len() == self.size && self.next < self.total
        }
    }

    fn numbers(total: usize) -> Numbers {
        Numbers {
            next: 0,
            size: 3,
            total,
            fail_at: None,
            panic_at: None,
        }
    }

    async fn drain(pages: &mut ReadAhead<Numbers>) -> (Vec<usize>, Option<String>) {
        let mut seen = Vec::new();
        loop {
            match pages.next_page().await {
                Ok(Some(page)) => seen.extend(page),
                Ok(None) => return (seen, None),
                Err(e) => return (seen, Some(e.to_string())),
            }
        }
    }

    #[tokio::test]
    async fn pages_arrive_in_order_once_each_and_errors_are_not_an_end() {
        let cases: [(&str, Numbers, usize, Option<&str>); 6] = [
            ("empty", numbers(0), 0, None),
            ("one short page", numbers(2), 2, None),
            ("exact pages", numbers(9), 9, None),
            ("a short last page", numbers(10), 10, None),
            (
                "a failing third page",
                Numbers {
                    fail_at: Some(6),
                    ..numbers(20)
                },
                6,
                Some("page at 6 failed"),
            ),
            (
                "a reader that panics on the second page",
                Numbers {
                    panic_at: Some(3),
                    ..numbers(20)
                },
                3,
                Some("reading numbers"),
            ),
        ];
        for (name, query, want, error) in cases {
            let mut pages = ReadAhead::new(query, false, "reading numbers");
            let (seen, got_error) = drain(&mut pages).await;
            assert_eq!(seen, (0..want).collect::<Vec<_>>(), "{name}");
            match (error, got_error) {
                (None, None) => {}
                (Some(want), Some(got)) => assert!(got.contains(want), "{name}: {got}"),
                (want, got) => panic!("{name}: wanted error {want:?}, got {got:?}"),
            }
        }
        let mut known_empty = ReadAhead::new(numbers(9), true, "reading numbers");
        assert_eq!(drain(&mut known_empty).await, (Vec::new(), None));
    }
}
