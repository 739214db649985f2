//! The configuration model (DESIGN §3-§7) and its validation.
//!
//! Loading (file + `CAMPAIGND__SECTION__KEY` environment overrides) happens in the binary; here the
//! parsed settings are checked as a whole — every rule parsed and type-checked, every template
//! rendered, every segment reference resolved, dependency cycles refused — so a bad config is
//! rejected at start-up with a message naming the segment and key, before anything runs.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use thiserror::Error;

use campaignd_core::rules::{self, templates, Rule};

/// Everything campaignd is configured with.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where the shop's data and campaignd's bookkeeping live.
    #[serde(default)]
    pub store: StoreSettings,
    /// The segments to maintain, in the order the user listed them.
    #[serde(default, rename = "segment")]
    pub segments: Vec<SegmentSettings>,
    /// Destination sections by name (`[destinations.NAME]`), each typed into its platform's config as the
    /// settings load, so a missing kind, a misspelt key or a bad value fails the load naming the section
    /// and the key.
    #[serde(
        default,
        deserialize_with = "campaignd_connectors::registry::deserialize_destinations"
    )]
    pub destinations: BTreeMap<String, campaignd_connectors::DestinationConfig>,
    /// `[[sync]]` entries tying a segment to a destination.
    #[serde(default, rename = "sync")]
    pub syncs: Vec<SyncSettings>,
    /// `[[creative_set]]` entries (creative rotation), checked by `validate_creative_sets`.
    #[serde(default, rename = "creative_set")]
    pub creative_sets: Vec<crate::creative_sets::CreativeSetSettings>,
    /// `[schedule]` cron overrides for the daemon.
    #[serde(default)]
    pub schedule: ScheduleSettings,
    /// `[admin]` HTTP server settings for the daemon.
    #[serde(default)]
    pub admin: AdminSettings,
    /// `[holdout]`: per-segment holdout share (`vip = 0.1`) for every sync of that segment without a
    /// `holdout` of its own.
    #[serde(default)]
    pub holdout: BTreeMap<String, f64>,
}

/// `[schedule]`: when the daemon runs each job, and how replicas share the work. Cron strings have six
/// fields, seconds first (`"0 0 * * * *"` is hourly), evaluated in UTC.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    /// Recompute every segment, then push every `[[sync]]` without a `schedule` of its own.
    #[serde(default = "default_recompute_sync")]
    pub recompute_sync: String,
    /// Creative rotation.
    #[serde(default = "default_rotate")]
    pub rotate: String,
    /// Pulling performance metrics from the platforms.
    #[serde(default = "default_metrics_pull")]
    pub metrics_pull: String,
    /// Seconds a replica's leadership of a job lasts without renewal: how long a dead leader's jobs
    /// wait before another replica takes them over.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// On SIGTERM/SIGINT, how long to wait for the batch in flight before exiting anyway.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// Run recompute-then-sync, then a metrics pull, once at start-up instead of waiting for their
    /// first ticks.
    #[serde(default = "default_true")]
    pub run_on_start: bool,
    /// When the store has no customers at all, generate a synthetic demo shop first (the default
    /// config's try-it-out mode; leave off for a real shop).
    #[serde(default)]
    pub demo_if_empty: bool,
}

fn default_recompute_sync() -> String {
    "0 0 * * * *".into()
}
fn default_rotate() -> String {
    "0 0 3 * * *".into()
}
fn default_metrics_pull() -> String {
    "0 30 */6 * * *".into()
}
fn default_lease_secs() -> u64 {
    60
}
fn default_shutdown_grace_secs() -> u64 {
    30
}
fn default_true() -> bool {
    true
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        ScheduleSettings {
            recompute_sync: default_recompute_sync(),
            rotate: default_rotate(),
            metrics_pull: default_metrics_pull(),
            lease_secs: default_lease_secs(),
            shutdown_grace_secs: default_shutdown_grace_secs(),
            run_on_start: true,
            demo_if_empty: false,
        }
    }
}

/// `[admin]`: the daemon's HTTP server (health, Prometheus metrics, JSON API, report page).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Address to listen on; loopback by default so nothing is exposed without a decision.
    #[serde(default = "default_admin_bind")]
    pub bind: String,
    /// Bearer token required on the API and metrics (`{ env = "VAR" }` or `{ file = "path" }`);
    /// mandatory when `bind` is not a loopback address.
    #[serde(default)]
    pub token: Option<campaignd_connectors::SecretRef>,
    /// Set to false to run without the HTTP server.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A connection whose request headers (or body) are not complete this long after it started
    /// sending them, or that sits idle between requests this long, is closed.
    #[serde(default = "default_header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// At most this many connections are open at once; at the cap, the oldest connection that is not in
    /// the middle of a request is closed to admit a new one (so half-open clients cannot lock out
    /// `/healthz`), and when every connection is busy the new one is refused.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Larger request bodies are refused with 413 (no route takes a body).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

fn default_admin_bind() -> String {
    "127.0.0.1:9464".into()
}
fn default_header_read_timeout_secs() -> u64 {
    10
}
fn default_max_connections() -> usize {
    256
}
fn default_max_body_bytes() -> usize {
    64 * 1024
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            bind: default_admin_bind(),
            token: None,
            enabled: true,
            header_read_timeout_secs: default_header_read_timeout_secs(),
            max_connections: default_max_connections(),
            max_body_bytes: default_max_body_bytes(),
        }
    }
}

/// `[store]`: where the data lives, and how long campaignd waits for it (see
/// [`campaignd_store::StoreOptions`] for what each bound does; the timeouts apply to Postgres).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `sqlite://file.db` (created on first use) or `postgres://...`.
    #[serde(default = "default_store_url")]
    pub url: String,
    /// Postgres `statement_timeout`: the server cancels a statement running longer.
    #[serde(default = "default_statement_timeout_secs")]
    pub statement_timeout_secs: u64,
    /// Postgres `idle_in_transaction_session_timeout`: a session idle inside a transaction this long is
    /// ended by the server (a partitioned run's locks are released for the next one).
    #[serde(default = "default_idle_in_transaction_timeout_secs")]
    pub idle_in_transaction_timeout_secs: u64,
    /// Client side: the most any one store operation may take; then the job fails clearly.
    #[serde(default = "default_operation_timeout_secs")]
    pub operation_timeout_secs: u64,
    /// Waiting for a pooled connection, including connecting.
    #[serde(default = "default_acquire_timeout_secs")]
    pub acquire_timeout_secs: u64,
    /// Postgres TCP keepalive idle time: the server probes a silent client after this and drops it
    /// after three unanswered probes.
    #[serde(default = "default_keepalive_secs")]
    pub keepalive_secs: u64,
    /// How often a process refreshes the heartbeat of the runs it executes.
    #[serde(default = "default_heartbeat_secs")]
    pub heartbeat_secs: u64,
    /// A `running` run without a heartbeat for this long is marked `abandoned` by the next start.
    #[serde(default = "default_abandon_after_secs")]
    pub abandon_after_secs: u64,
}

impl StoreSettings {
    /// The store's connection options from these keys.
    pub fn options(&self) -> campaignd_store::StoreOptions {
        use std::time::Duration;
        let secs = |s: u64| Duration::from_secs(s.max(1));
        campaignd_store::StoreOptions {
            statement_timeout: secs(self.statement_timeout_secs),
            idle_in_transaction_timeout: secs(self.idle_in_transaction_timeout_secs),
            operation_timeout: secs(self.operation_timeout_secs),
            acquire_timeout: secs(self.acquire_timeout_secs),
            keepalive: secs(self.keepalive_secs),
            heartbeat: secs(self.heartbeat_secs),
            abandon_after: secs(self.abandon_after_secs),
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            url: default_store_url(),
            statement_timeout_secs: default_statement_timeout_secs(),
            idle_in_transaction_timeout_secs: default_idle_in_transaction_timeout_secs(),
            operation_timeout_secs: default_operation_timeout_secs(),
            acquire_timeout_secs: default_acquire_timeout_secs(),
            keepalive_secs: default_keepalive_secs(),
            heartbeat_secs: default_heartbeat_secs(),
            abandon_after_secs: default_abandon_after_secs(),
        }
    }
}

fn default_statement_timeout_secs() -> u64 {
    campaignd_store::StoreOptions::default()
        .statement_timeout
        .as_secs()
}
fn default_idle_in_transaction_timeout_secs() -> u64 {
    campaignd_store::StoreOptions::default()
        .idle_in_transaction_timeout
        .as_secs()
}
fn default_operation_timeout_secs() -> u64 {
    campaignd_store::StoreOptions::default()
        .operation_timeout
        .as_secs()
}
fn default_acquire_timeout_secs() -> u64 {
    campaignd_store::StoreOptions::default()
        .acquire_timeout
        .as_secs()
}
fn default_keepalive_secs() -> u64 {
    campaignd_store::StoreOptions::default().keepalive.as_secs()
}
fn default_heartbeat_secs() -> u64 {
    campaignd_store::StoreOptions::default().heartbeat.as_secs()
}
fn default_abandon_after_secs() -> u64 {
    campaignd_store::StoreOptions::default()
        .abandon_after
        .as_secs()
}

fn default_store_url() -> String {
    "sqlite://campaignd.db".into()
}

/// One `[[segment]]`: exactly one of `rule`, `sql` or `template`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentSettings {
    /// Unique name, used by syncs, `in_segment()` and `exclude`.
    pub name: String,
    /// What the segment is for, shown in listings.
    #[serde(default)]
    pub description: Option<String>,
    /// A rule in the rule language.
    #[serde(default)]
    pub rule: Option<String>,
    /// A read-only `SELECT` returning `customer_id`.
    #[serde(default)]
    pub sql: Option<String>,
    /// A built-in template name (`segments list --templates`).
    #[serde(default)]
    pub template: Option<String>,
    /// Template parameters (`params = { window = "3d" }`).
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    /// Segments whose members are taken out of this one.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// How a sync treats members who left the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Adds and removes: the audience equals the segment.
    #[default]
    Mirror,
    /// Adds only (people who are suppressed or withdraw consent are still removed).
    Upsert,
}

/// One `[[sync]]`: keep `destination`'s audience equal to (or a superset of) `segment`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSettings {
    /// The segment to push.
    pub segment: String,
    /// The `[destinations.NAME]` to push to.
    pub destination: String,
    /// `mirror` (default) or `upsert`.
    #[serde(default)]
    pub mode: SyncMode,
    /// The audience's name on the platform (default: the segment's name).
    #[serde(default)]
    pub audience_name: Option<String>,
    /// Cron override for the daemon.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Ads whose performance is attributed to this segment (metrics pull).
    #[serde(default)]
    pub ad_ids: Vec<String>,
    /// Campaigns whose performance is attributed to this segment (metrics pull).
    #[serde(default)]
    pub campaign_ids: Vec<String>,
    /// Share of the segment kept out of the audience to measure lift (0 ≤ holdout < 1; default: the
    /// segment's `[holdout]` entry, else none).
    #[serde(default)]
    pub holdout: Option<f64>,
    /// Salt of the holdout's hash (default: derived from segment and destination).
    #[serde(default)]
    pub holdout_salt: Option<String>,
}

impl SyncSettings {
    /// The platform-side audience name.
    pub fn audience(&self) -> &str {
        self.audience_name.as_deref().unwrap_or(&self.segment)
    }
}

/// A sync's holdout: who is kept out of its audience (DESIGN §6).
#[derive(Debug, Clone, PartialEq)]
pub struct HoldoutPlan {
    /// Share held out, 0 < share < 1.
    pub share: f64,
    /// Salt of the bucket hash.
    pub salt: String,
}

impl HoldoutPlan {
    /// Whether `customer_id` is held out.
    pub fn holds_out(&self, customer_id: &str) -> bool {
        campaignd_core::holdout::held_out(&self.salt, self.share, customer_id)
    }
}

/// A configuration problem, naming where it is.
#[derive(Debug, Error)]
pub enum SettingsError {
    /// A problem with one segment.
    #[error("segment \"{segment}\" ({key}): {message}")]
    Segment {
        /// The segment's name (or its position when it has none).
        segment: String,
        /// The offending key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A problem spanning segments (duplicates, cycles, unknown references).
    #[error("{0}")]
    Segments(String),
    /// A problem with one `[[sync]]` (numbered from 1).
    #[error("sync #{index} ({key}): {message}")]
    Sync {
        /// Position in the file, from 1.
        index: usize,
        /// The offending key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// How one segment selects its members, after validation.
#[derive(Debug, Clone)]
pub enum SegmentSource {
    /// A parsed and type-checked rule (also what a template renders to).
    Rule(Rule),
    /// The user's own SQL.
    Sql(String),
}

/// A validated segment, ready to compile for any dialect.
#[derive(Debug, Clone)]
pub struct SegmentDef {
    /// The segment's name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// What the user wrote, for display.
    pub source_text: String,
    /// How members are selected.
    pub source: SegmentSource,
    /// Segments taken out.
    pub exclude: Vec<String>,
}

impl SegmentDef {
    /// Segments that must be recomputed before this one.
    pub fn dependencies(&self) -> Vec<String> {
        let mut deps = match &self.source {
            SegmentSource::Rule(expr) => expr.segment_refs(),
            SegmentSource::Sql(_) => Vec::new(),
        };
        deps.extend(self.exclude.iter().cloned());
        deps.sort();
        deps.dedup();
        deps
    }
}

fn param_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Settings {
    /// Checks that every `[[sync]]` names a configured segment and destination, once per audience.
    pub fn validate_syncs(&self) -> Result<(), SettingsError> {
        let mut seen = BTreeSet::new();
        for name in self.holdout.keys() {
            if !self.segments.iter().any(|s| &s.name == name) {
                return Err(SettingsError::Segments(format!(
                    "[holdout] names no segment \"{name}\""
                )));
            }
        }
        for (i, sync) in self.syncs.iter().enumerate() {
            let err = |key: &'static str, message: String| SettingsError::Sync {
                index: i + 1,
                key,
                message,
            };
            if !self.segments.iter().any(|s| s.name == sync.segment) {
                return Err(err(
                    "segment",
                    format!("no segment named \"{}\"", sync.segment),
                ));
            }
            if !self.destinations.contains_key(&sync.destination) {
                return Err(err(
                    "destination",
                    format!("no [destinations.{}] section", sync.destination),
                ));
            }
            if let Some(share) = sync
                .holdout
                .or_else(|| self.holdout.get(&sync.segment).copied())
            {
                if !(0.0..1.0).contains(&share) {
                    return Err(err(
                        "holdout",
                        format!("{share} is not a share in [0, 1) (0.1 keeps 10 % out)"),
                    ));
                }
            }
            if !seen.insert((sync.destination.clone(), sync.audience().to_string())) {
                return Err(err(
                    "audience_name",
                    format!(
                        "audience \"{}\" on {} is already synced by another [[sync]]",
                        sync.audience(),
                        sync.destination
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The holdout of `sync` (its own `holdout`, else the segment's `[holdout]` entry), or `None` when
    /// nothing is held out.
    pub fn holdout_plan(&self, sync: &SyncSettings) -> Option<HoldoutPlan> {
        let share = sync
            .holdout
            .or_else(|| self.holdout.get(&sync.segment).copied())?;
        (share > 0.0).then(|| HoldoutPlan {
            share,
            salt: sync.holdout_salt.clone().unwrap_or_else(|| {
                campaignd_core::holdout::default_salt(&sync.segment, &sync.destination)
            }),
        })
    }

    /// Validates every segment and returns them in dependency order (dependencies first).
    pub fn segment_defs(&self) -> Result<Vec<SegmentDef>, SettingsError> {
        let mut seen = BTreeSet::new();
        let mut defs = Vec::with_capacity(self.segments.len());
        for (i, seg) in self.segments.iter().enumerate() {
            let label = if seg.name.is_empty() {
                format!("#{}", i + 1)
            } else {
                seg.name.clone()
            };
            let err = |key: &'static str, message: String| SettingsError::Segment {
                segment: label.clone(),
                key,
                message,
            };
            if seg.name.trim().is_empty() {
                return Err(err("name", "a segment needs a non-empty name".into()));
            }
            if !seen.insert(seg.name.clone()) {
                return Err(err("name", "defined more than once".into()));
            }
            let given = [
                seg.rule.is_some(),
                seg.sql.is_some(),
                seg.template.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if given != 1 {
                return Err(err(
                    "rule",
                    "give exactly one of `rule`, `sql` or `template`".into(),
                ));
            }
            if !seg.params.is_empty() && seg.template.is_none() {
                return Err(err(
                    "params",
                    "`params` only applies to a `template`".into(),
                ));
            }
            let (source_text, source) = if let Some(rule) = &seg.rule {
                let expr = rules::parse_rule(rule).map_err(|e| err("rule", e.to_string()))?;
                (rule.clone(), SegmentSource::Rule(expr))
            } else if let Some(sql) = &seg.sql {
                let trimmed = sql.trim_start().to_ascii_lowercase();
                if !(trimmed.starts_with("select") || trimmed.starts_with("with")) {
                    return Err(err("sql", "must be a read-only SELECT query".into()));
                }
                (sql.clone(), SegmentSource::Sql(sql.clone()))
            } else {
                let name = seg.template.clone().unwrap_or_default();
                let params: BTreeMap<String, String> = seg
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), param_text(v)))
                    .collect();
                let rendered = templates::render(&name, &params)
                    .map_err(|e| err("template", e.to_string()))?;
                let expr = rules::parse_rule(&rendered)
                    .map_err(|e| err("template", format!("renders to an invalid rule: {e}")))?;
                let call = if params.is_empty() {
                    format!("template {name}")
                } else {
                    let args: Vec<String> =
                        params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("template {name}({})", args.join(", "))
                };
                (format!("{call}: {rendered}"), SegmentSource::Rule(expr))
            };
            defs.push(SegmentDef {
                name: seg.name.clone(),
                description: seg.description.clone(),
                source_text,
                source,
                exclude: seg.exclude.clone(),
            });
        }
        let graph: Vec<(String, Vec<String>)> = defs
            .iter()
            .map(|d| (d.name.clone(), d.dependencies()))
            .collect();
        let order =
            rules::order_segments(&graph).map_err(|e| SettingsError::Segments(e.to_string()))?;
        let mut by_name: BTreeMap<String, SegmentDef> =
            defs.into_iter().map(|d| (d.name.clone(), d)).collect();
        Ok(order
            .into_iter()
            .filter_map(|name| by_name.remove(&name))
            .collect())
    }
}
