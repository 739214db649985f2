//! The traits the engine programs against: one per capability, so a platform implements only what it has.

use crate::error::ConnectorError;
use crate::http::HttpStatsSnapshot;
use crate::model::{
    AudienceRef, AudienceSize, BatchOutcome, Channel, Contact, DestinationLimits, JobAction,
    MetricsRow, NoIdentifier, PreparedMember, ReplaceSession, SubmittedJob, SyncContext,
};
use async_trait::async_trait;
use chrono::NaiveDate;

/// A platform that holds custom audiences campaignd keeps equal to (mirror) or a superset of (upsert) a
/// segment. Implementations batch to `limits().max_batch` themselves if handed more, pace and retry
/// through the HTTP kit, and report per-member rejections instead of failing the whole batch.
#[async_trait]
pub trait AudienceDestination: Send + Sync {
    /// Configured destination name (`[destinations.NAME]`), for logs and errors.
    fn name(&self) -> &str;

    /// Platform kind (`meta`, `webhook`, ...), as in the config's `kind`.
    fn kind(&self) -> &'static str;

    /// Batch size, minimum audience size and pacing the engine should plan with.
    fn limits(&self) -> DestinationLimits;

    /// Ads or email: decides which consent flag the engine enforces before anything leaves.
    fn channel(&self) -> Channel;

    /// Pure mapping: normalise and hash the contact as this platform wants, noting which identifier kinds
    /// it used. `Err` = no usable identifier, with the reason (counted under `no_identifier`, not sent).
    fn prepare(&self, contact: &Contact) -> Result<PreparedMember, NoIdentifier>;

    /// Optional: tells the connector which run and segment the coming batches belong to. The default does
    /// nothing; connectors must work without it.
    async fn begin_sync(&self, _ctx: &SyncContext) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Finds the audience called `name` (paging through every audience of the account) and adopts it, or
    /// creates it.
    async fn find_or_create_audience(
        &self,
        name: &str,
        description: &str,
    ) -> Result<AudienceRef, ConnectorError>;

    /// Adds members; idempotent on the platform side (re-adding is harmless), so a resent batch is safe.
    async fn add_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError>;

    /// Removes members, working from the stored payloads alone.
    async fn remove_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError>;

    /// Whether `action` batches run as remote jobs on this platform (Google offline user data jobs,
    /// SendGrid and Klaviyo imports). For those the engine calls [`submit_job`](Self::submit_job), stores
    /// the job id with the batch, then [`await_job`](Self::await_job), so a restart polls the stored job
    /// instead of resending the batch. `add_members`/`remove_members` stay the submit-and-wait shortcut.
    fn remote_job(&self, _action: JobAction) -> bool {
        false
    }

    /// Submits one batch (at most `limits().max_batch` members) as a remote job and returns at once
    /// with its id, without waiting for it to finish. Default: unsupported.
    async fn submit_job(
        &self,
        _audience: &AudienceRef,
        _action: JobAction,
        _members: &[PreparedMember],
    ) -> Result<SubmittedJob, ConnectorError> {
        Err(ConnectorError::Unsupported {
            destination: self.name().to_string(),
            operation: "submit_job",
        })
    }

    /// Waits for a submitted job (possibly one a previous process submitted) and reports what the
    /// platform did with `members`, the rows in that job. A transient error (still running past the
    /// wait budget) means the job may still finish: the engine keeps it and polls again next run; any
    /// other error means the job failed and the batch is sent again. Default: unsupported.
    async fn await_job(
        &self,
        _audience: &AudienceRef,
        _action: JobAction,
        _job_id: &str,
        _members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        Err(ConnectorError::Unsupported {
            destination: self.name().to_string(),
            operation: "await_job",
        })
    }

    /// Whether [`replace_all`](Self::replace_all) is native on this platform; otherwise the engine does a
    /// full resync to take over an adopted audience.
    fn supports_replace_all(&self) -> bool {
        false
    }

    /// Sends one slice of a replace-all session; the audience equals the union of all slices once a call
    /// with `last_batch = true` succeeds. The connector advances `session.next_batch_seq` per request, so
    /// the engine persists the session after every call. Default: unsupported.
    async fn replace_all(
        &self,
        _audience: &AudienceRef,
        _session: &mut ReplaceSession,
        _members: &[PreparedMember],
        _last_batch: bool,
    ) -> Result<BatchOutcome, ConnectorError> {
        Err(ConnectorError::Unsupported {
            destination: self.name().to_string(),
            operation: "replace_all",
        })
    }

    /// Retry/throttle counters of this destination's HTTP traffic, for metrics; `None` for local ones.
    fn http_stats(&self) -> Option<HttpStatsSnapshot> {
        None
    }
}

/// A platform whose live ads can have their creative swapped (creative rotation, DESIGN §7). Held in
/// [`crate::Platform::swapper`] where the platform has it; what `object_id` and a creative id mean is per platform
/// (Meta: ad / ad creative; Google Ads and TikTok: ad group / ad; LinkedIn: campaign / creative;
/// Mailchimp and Klaviyo: campaign / template), documented in each platform's `creative.rs`. Only a
/// platform that holds audiences has this capability, so its name (`name()`) is the destination's.
#[async_trait]
pub trait CreativeSwapper: AudienceDestination {
    /// Makes `new_creative_id` the live creative of the platform object `object_id` (an ad, or an ad
    /// group where ads are immutable), returning once the platform acknowledged it.
    async fn swap_creative(
        &self,
        object_id: &str,
        new_creative_id: &str,
    ) -> Result<(), ConnectorError>;

    /// Pauses or resumes a platform object, for platforms where swapping means pausing the old ad.
    async fn set_active(&self, object_id: &str, active: bool) -> Result<(), ConnectorError>;
}

/// An inclusive range of days, `since..=until`, that [`MetricsSource::daily_metrics`] has checked to
/// be in order before a platform sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsRange {
    /// First day, inclusive.
    pub since: NaiveDate,
    /// Last day, inclusive; never before `since`.
    pub until: NaiveDate,
}

/// A platform that reports daily delivery metrics for audiences, ads and creatives. Held in
/// [`crate::Platform::metrics`] where the platform has it; `object_ids` are the same objects the creative swap takes
/// (Meta: ad ids; Google Ads and TikTok: ad group ids; LinkedIn, Mailchimp, Klaviyo: campaign ids), and
/// email platforms give one row per campaign dated on its send day. See each platform's `metrics.rs`.
/// Only a platform that holds audiences has this capability, so its name (`name()`) is the destination's.
#[async_trait]
pub trait MetricsSource: AudienceDestination {
    /// Daily rows for the given platform objects over `since..=until`, all pages fetched. A range that
    /// starts after it ends is refused here, the same way for every platform, before any request; the
    /// platform's part is [`MetricsSource::metrics_in_range`].
    async fn daily_metrics(
        &self,
        object_ids: &[String],
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<Vec<MetricsRow>, ConnectorError> {
        if since > until {
            return Err(ConnectorError::Invalid {
                destination: self.name().to_string(),
                message: format!("metrics range starts after it ends ({since} > {until})"),
            });
        }
        self.metrics_in_range(object_ids, MetricsRange { since, until })
            .await
    }

    /// The platform's daily rows for `object_ids` over a checked range (`since <= until`), all pages
    /// fetched; called through [`MetricsSource::daily_metrics`].
    async fn metrics_in_range(
        &self,
        object_ids: &[String],
        range: MetricsRange,
    ) -> Result<Vec<MetricsRow>, ConnectorError>;

    /// The platform-reported matched size of the audience whose remote id a sync recorded, for the
    /// platforms that report one (Meta, Google, TikTok, LinkedIn); `Ok(None)` where the platform reports none or
    /// the audience does not exist there yet.
    async fn audience_size(&self, remote_id: &str) -> Result<Option<AudienceSize>, ConnectorError> {
        let _ = remote_id;
        Ok(None)
    }
}
