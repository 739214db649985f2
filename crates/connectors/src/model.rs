//! Plain data exchanged between the engine and the connectors.
//!
//! The engine builds [`Contact`]s from the store, asks a destination to [`prepare`] them into
//! [`PreparedMember`]s, stores each member's payload and fingerprint in its ledger and later hands the same
//! `PreparedMember` back for removal, so everything a platform needs to remove someone is in the payload.
//!
//! [`prepare`]: crate::AudienceDestination::prepare

use campaignd_core::identifiers::lower_hex;
pub use campaignd_core::model::{Channel, Contact, NoIdentifier};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Which identifier kinds one prepared member carries, counted per sync for match rates by identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IdentifierKinds {
    /// A normalised email was sent (hashed or plain).
    pub email: bool,
    /// A normalised phone was sent.
    pub phone: bool,
    /// Name and postal code (Meta) or Google's full address info were sent.
    pub address: bool,
}

/// A contact mapped for one platform: exactly what will be sent (hashed where the platform takes hashes),
/// plus a fingerprint so the engine notices when a customer's identifiers changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedMember {
    /// Shop customer id.
    pub customer_id: String,
    /// Platform-specific payload; the connector builds its request from this alone.
    pub payload: serde_json::Value,
    /// SHA-256 hex of the canonical (sorted-key, compact) JSON of `payload`.
    pub fingerprint: String,
    /// Which identifier kinds `prepare` put in the payload, for the sync's counts. Not stored in the
    /// ledger: members rebuilt from it carry none.
    #[serde(skip)]
    pub kinds: IdentifierKinds,
}

impl PreparedMember {
    /// Builds a member and computes its fingerprint, so no connector can forget or vary it.
    pub fn new(customer_id: impl Into<String>, payload: serde_json::Value) -> Self {
        let fingerprint = canonical_sha256_hex(&payload);
        PreparedMember {
            customer_id: customer_id.into(),
            payload,
            fingerprint,
            kinds: IdentifierKinds::default(),
        }
    }

    /// Records which identifier kinds the payload carries (see [`IdentifierKinds`]).
    pub fn with_kinds(mut self, kinds: IdentifierKinds) -> Self {
        self.kinds = kinds;
        self
    }
}

/// Compact JSON with object keys sorted at every level, independent of serde_json's `preserve_order`
/// feature, so fingerprints and idempotency keys are stable across builds.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and serde_json writes only valid UTF-8.
    let _ = write_canonical(value, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// SHA-256 hex of [`canonical_json`] of `value`, hashed as it is written: the fingerprint of every
/// prepared member, so no intermediate string is built per member.
fn canonical_sha256_hex(value: &serde_json::Value) -> String {
    let mut hasher = HashWriter(Sha256::new());
    // Feeding a hasher cannot fail.
    let _ = write_canonical(value, &mut hasher);
    lower_hex(&hasher.0.finalize())
}

/// An `io::Write` that feeds a SHA-256 hasher.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the canonical form: keys sorted, strings and scalars exactly as `serde_json` prints them.
fn write_canonical(
    value: &serde_json::Value,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.write_all(b"{")?;
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut *out, k)?;
                out.write_all(b":")?;
                write_canonical(v, out)?;
            }
            out.write_all(b"}")
        }
        serde_json::Value::Array(items) => {
            out.write_all(b"[")?;
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                write_canonical(v, out)?;
            }
            out.write_all(b"]")
        }
        other => Ok(serde_json::to_writer(&mut *out, other)?),
    }
}

/// The platform's own count of the people it matched in one audience, read back with the metrics job so
/// users can compare it with the members campaignd sent (match rates).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AudienceSize {
    /// Matched people, lower bound (Meta `approximate_count_lower_bound`); platforms that report one
    /// number put it in both bounds.
    pub lower: Option<u64>,
    /// Matched people, upper bound (Meta `approximate_count_upper_bound`).
    pub upper: Option<u64>,
    /// The match rate the platform itself reports, in percent (Google `matchRatePercentage`).
    pub match_rate_percent: Option<f64>,
}

/// A platform audience campaignd writes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudienceRef {
    /// The platform's id for the audience (or the name, for platforms without ids).
    pub remote_id: String,
    /// True when an audience with the configured name already existed: its members are unknown, so the
    /// first mirror sync must replace its contents (DESIGN §6).
    pub adopted: bool,
}

/// What the platform did with one batch: the engine advances the ledger for accepted members only and
/// records the rejected ones (with reason) so the next run retries them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// Number of members acknowledged.
    pub accepted: usize,
    /// Members the platform refused, by customer id.
    pub rejected: Vec<Rejection>,
}

impl BatchOutcome {
    /// Adds another chunk's outcome, for connectors that split a call into several requests.
    pub fn merge(&mut self, other: BatchOutcome) {
        self.accepted += other.accepted;
        self.rejected.extend(other.rejected);
    }
}

/// One refused member and the platform's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Shop customer id.
    pub customer_id: String,
    /// Platform's reason, shown in `runs`.
    pub reason: String,
}

/// Which change a batch carries, for destinations whose batches run as remote jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobAction {
    /// Members to add (or upsert).
    Add,
    /// Members to remove.
    Remove,
}

impl JobAction {
    /// The name stored with the job and shown in rejections (`add` / `remove`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Add => "add",
            JobAction::Remove => "remove",
        }
    }
}

/// A batch the platform took as an asynchronous job (Google offline user data job, SendGrid or
/// Klaviyo import): the engine stores `job_id` with the batch before waiting, so a restarted process
/// polls the same job instead of sending the batch again.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubmittedJob {
    /// The platform's job id; `None` when nothing was left to submit (every row refused up front).
    pub job_id: Option<String>,
    /// Rows refused before the job started (bad payloads, per-row validation errors): not in the job.
    pub rejected: Vec<Rejection>,
}

impl SubmittedJob {
    /// The members the job holds: those of the submitted batch not refused before it started.
    pub fn members_in_job(&self, members: &[PreparedMember]) -> Vec<PreparedMember> {
        let refused: std::collections::HashSet<&str> = self
            .rejected
            .iter()
            .map(|r| r.customer_id.as_str())
            .collect();
        members
            .iter()
            .filter(|m| !refused.contains(m.customer_id.as_str()))
            .cloned()
            .collect()
    }
}

/// A platform's limits the engine plans batches and pacing around.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DestinationLimits {
    /// Most members per add/remove call.
    pub max_batch: usize,
    /// Below this many members a segment is reported, not pushed.
    pub min_audience_size: usize,
    /// Requests per second the connector paces itself to.
    pub requests_per_second: f64,
}

/// A replace-all session the engine persists, so a restart continues the same platform session instead of
/// starting over (Meta `usersreplace`: one session, batch_seq from 1, 90-minute window).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaceSession {
    /// Platform session id (random, chosen by us).
    pub session_id: u64,
    /// Sequence number the next request will carry; starts at 1, advanced by the connector per request.
    pub next_batch_seq: u32,
    /// Estimated total members in the whole replace.
    pub estimated_total: u64,
}

impl ReplaceSession {
    /// Starts a new session with a random positive id.
    pub fn new(estimated_total: u64) -> Self {
        let session_id = rand::random::<u64>() >> 12 | 1;
        ReplaceSession {
            session_id,
            next_batch_seq: 1,
            estimated_total,
        }
    }
}

/// Optional context the engine may give before a sync's batches, for platforms whose requests carry it
/// (webhook `run_id`/`segment`, the file destination's per-run diff name). Connectors work without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncContext {
    /// campaignd run id.
    pub run_id: String,
    /// Segment being synced.
    pub segment: String,
    /// Audience the batches will go to.
    pub audience: AudienceRef,
}

/// One day of delivery metrics for one platform object, as [`crate::MetricsSource`] returns them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsRow {
    /// Day (platform account time zone).
    pub date: NaiveDate,
    /// Audience id, when the platform reports per audience.
    pub audience_id: Option<String>,
    /// Ad id.
    pub ad_id: Option<String>,
    /// Creative id.
    pub creative_id: Option<String>,
    /// Impressions.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// Conversions (fractional on some platforms).
    pub conversions: f64,
    /// Spend in major units of `currency`.
    pub spend: f64,
    /// Attributed revenue in major units of `currency`.
    pub revenue: f64,
    /// Account currency.
    pub currency: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use campaignd_core::identifiers::sha256_hex;

    /// The fingerprint is stored in every ledger: hashing while writing must give exactly the hash of
    /// the canonical text, or every member would look changed after an upgrade.
    #[test]
    fn fingerprint_is_sha256_of_canonical_json() {
        let payload = serde_json::json!({
            "z": [1, 2.5, null, true, "a\"b\\c\u{1}é"],
            "a": {"y": "", "b": {"k": -3}},
            "EMAIL": "ab",
        });
        let canonical = canonical_json(&payload);
        assert_eq!(
            canonical,
            r#"{"EMAIL":"ab","a":{"b":{"k":-3},"y":""},"z":[1,2.5,null,true,"a\"b\\c\u0001é"]}"#
        );
        let member = PreparedMember::new("c1", payload);
        assert_eq!(member.fingerprint, sha256_hex(&canonical));
    }
}
