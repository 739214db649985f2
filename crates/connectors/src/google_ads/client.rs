//! The Google Ads destination: user list lookup/creation and member changes over either the Google Ads API
//! (Customer Match offline user data jobs) or the Data Manager API, on the shared HTTP kit.
//!
//! This file holds what both APIs share: Google's error envelope and [`GooglePolicy`], the configured
//! destination and its headers, and the one place that picks the API per call (the
//! [`AudienceDestination`] impl). Each API's own calls live in a child module: `customer_match.rs` and
//! `data_manager.rs`; `creative.rs` and `metrics.rs` always speak the Google Ads API.

use super::config::{normalize_customer_id, GoogleAdsConfig, GoogleApi};
use super::mapping;
use crate::common;
use crate::error::{ConfigError, ConnectorError};
use crate::http::{
    default_classify, json_request, Auth, HttpKit, HttpReply, HttpStatsSnapshot,
    OAuth2RefreshToken, ResponsePolicy, Verdict,
};
use crate::model::{
    AudienceRef, BatchOutcome, Channel, Contact, DestinationLimits, JobAction, PreparedMember,
    ReplaceSession, SubmittedJob,
};
use crate::secret::{Secret, SecretResolver};
use crate::traits::AudienceDestination;
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// Creative rotation (`CreativeSwapper`): a child module so it shares this client's kit, token and policy.
#[path = "creative.rs"]
mod creative;
/// `api = "customer_match"`: user lists and offline user data jobs over the Google Ads API.
#[path = "customer_match.rs"]
mod customer_match;
/// `api = "data_manager"`: user lists and audience member requests over the Data Manager API.
#[path = "data_manager.rs"]
mod data_manager;
/// Daily metrics by GAQL (`MetricsSource`), a child module for the same reason.
#[path = "metrics.rs"]
mod metrics;

/// People per `addOperations` call and per Data Manager request (Google advises ~10,000 operations per
/// `addOperations`; Data Manager takes at most 10,000 audience members per request).
pub const MAX_MEMBERS_PER_CALL: usize = 10_000;
/// Customer Match lists need about this many matched people to serve (Search and YouTube: 1,000).
pub const MIN_AUDIENCE: usize = 1_000;
/// The error Google returns to developer tokens not allowlisted for Customer Match since 2026-04-01.
pub const NOT_ALLOWLISTED: &str = "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE";
/// What we tell the user when Customer Match is refused for that reason.
pub const NOT_ALLOWLISTED_HINT: &str = "this developer token is not allowlisted for Customer Match uploads \
(CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE); set `api = \"data_manager\"` in this destination to upload \
through Google's Data Manager API instead";

/// Classifies Google's JSON error envelope (`{"error": {code, message, status, details}}`): 401 /
/// `UNAUTHENTICATED` refreshes the token, 429 / `RESOURCE_EXHAUSTED` waits `quotaErrorDetails.retryDelay`
/// (or `RetryInfo.retryDelay`, or Retry-After), 5xx / `UNAVAILABLE` / `INTERNAL` retry, and the
/// not-allowlisted error fails with [`NOT_ALLOWLISTED_HINT`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GooglePolicy {
    /// Data Manager: hand a 400 whose field violations name audience members back to the client, which
    /// turns them into rejections and resends the rest.
    pub member_violations_to_caller: bool,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    error: GoogleError,
}

#[derive(Debug, Deserialize)]
struct GoogleError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<Value>,
}

/// Parses a protobuf JSON duration (`"30s"`, `"1.5s"`).
fn parse_duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

impl GoogleError {
    /// `GoogleAdsFailure.errors[]` entries across all details.
    fn ads_errors(&self) -> impl Iterator<Item = &Value> {
        self.details
            .iter()
            .filter_map(|d| d.get("errors").and_then(Value::as_array))
            .flatten()
    }

    fn retry_delay(&self) -> Option<Duration> {
        let quota = self
            .ads_errors()
            .filter_map(|e| {
                e.pointer("/details/quotaErrorDetails/retryDelay")
                    .and_then(Value::as_str)
            })
            .filter_map(parse_duration)
            .max();
        quota.or_else(|| {
            self.details
                .iter()
                .filter_map(|d| d.get("retryDelay").and_then(Value::as_str))
                .filter_map(parse_duration)
                .max()
        })
    }

    fn has_member_violations(&self) -> bool {
        !member_violations(&self.details).is_empty()
    }

    fn describe(&self) -> String {
        let mut out = format!(
            "{}: {}",
            if self.status.is_empty() {
                "ERROR"
            } else {
                &self.status
            },
            self.message
        );
        let codes: Vec<String> = self
            .ads_errors()
            .take(3)
            .map(|e| {
                let code = e
                    .get("errorCode")
                    .and_then(Value::as_object)
                    .and_then(|o| o.iter().next())
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .unwrap_or_default();
                let msg = e.get("message").and_then(Value::as_str).unwrap_or_default();
                format!("{code} ({msg})")
            })
            .collect();
        if !codes.is_empty() {
            out.push_str(" [");
            out.push_str(&codes.join("; "));
            out.push(']');
        }
        out
    }
}

/// Data Manager field violations naming `audience_members[i]`: (index, reason).
fn member_violations(details: &[Value]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for v in details
        .iter()
        .filter_map(|d| d.get("fieldViolations").and_then(Value::as_array))
        .flatten()
    {
        let field = v.get("field").and_then(Value::as_str).unwrap_or_default();
        let Some(rest) = field.split("audience_members[").nth(1) else {
            continue;
        };
        let Some(idx) = rest.split(']').next().and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        let reason = v
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("INVALID_ARGUMENT");
        let desc = v
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        out.push((
            idx,
            if desc.is_empty() {
                reason.to_string()
            } else {
                format!("{reason}: {desc}")
            },
        ));
    }
    out
}

impl ResponsePolicy for GooglePolicy {
    fn classify(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if status.is_success() {
            return Verdict::Success;
        }
        let Ok(env) = serde_json::from_slice::<Envelope>(body) else {
            return default_classify(status, headers, body);
        };
        let e = env.error;
        let reason = e.describe();
        if String::from_utf8_lossy(body).contains(NOT_ALLOWLISTED) {
            return Verdict::Fail {
                code: e.code,
                reason: format!("{NOT_ALLOWLISTED_HINT}: {reason}"),
            };
        }
        if status == StatusCode::UNAUTHORIZED || e.status == "UNAUTHENTICATED" {
            return Verdict::Unauthorized { reason };
        }
        if status == StatusCode::TOO_MANY_REQUESTS || e.status == "RESOURCE_EXHAUSTED" {
            let after = e
                .retry_delay()
                .or_else(|| crate::http::retry_after(headers));
            return Verdict::Retry {
                after,
                throttled: true,
                reason,
            };
        }
        if status.is_server_error()
            || matches!(
                e.status.as_str(),
                "UNAVAILABLE" | "INTERNAL" | "DEADLINE_EXCEEDED"
            )
        {
            return Verdict::Retry {
                after: crate::http::retry_after(headers),
                throttled: false,
                reason,
            };
        }
        if self.member_violations_to_caller
            && status == StatusCode::BAD_REQUEST
            && e.has_member_violations()
        {
            return Verdict::Success;
        }
        Verdict::Fail {
            code: e.code,
            reason,
        }
    }
}

/// A configured Google Ads customer.
pub struct GoogleAdsDestination {
    name: String,
    api: GoogleApi,
    customer_id: String,
    login_customer_id: Option<String>,
    developer_token: Option<Secret>,
    kit: HttpKit,
    policy: GooglePolicy,
    user_list_id: Option<String>,
    poll_interval: Duration,
    job_timeout: Duration,
    rps: f64,
    /// Google Ads API base for creative rotation and metrics (the Data Manager API has neither).
    ads_base_url: String,
}

impl std::fmt::Debug for GoogleAdsDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleAdsDestination")
            .field("name", &self.name)
            .field("api", &self.api)
            .field("customer_id", &self.customer_id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchPage {
    #[serde(default)]
    results: Vec<Value>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// The id at the end of a resource name (`customers/1/userLists/42` → `42`).
fn last_segment(resource: &str) -> Option<String> {
    resource
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
}

/// A GAQL string literal.
fn gaql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl GoogleAdsDestination {
    /// Builds the destination from its config, resolving the secrets.
    pub fn from_config(
        name: &str,
        config: GoogleAdsConfig,
        secrets: &SecretResolver,
    ) -> Result<Self, ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            destination: name.to_string(),
            key: key.to_string(),
            message: message.to_string(),
        };
        let customer_id = normalize_customer_id(&config.customer_id)
            .ok_or_else(|| invalid("customer_id", "expected digits (dashes allowed)"))?;
        let login_customer_id =
            match &config.login_customer_id {
                None => None,
                Some(l) => Some(normalize_customer_id(l).ok_or_else(|| {
                    invalid("login_customer_id", "expected digits (dashes allowed)")
                })?),
            };
        if let Some(id) = &config.user_list_id {
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
                return Err(invalid("user_list_id", "expected the numeric user list id"));
            }
        }
        let developer_token = match (&config.developer_token, config.api) {
            (Some(r), _) => Some(common::resolve_secret(name, "developer_token", r, secrets)?),
            (None, GoogleApi::CustomerMatch) => {
                return Err(invalid(
                    "developer_token",
                    "required when api = \"customer_match\"",
                ))
            }
            (None, GoogleApi::DataManager) => None,
        };
        let client_id = common::resolve_secret(name, "client_id", &config.client_id, secrets)?;
        let client_secret =
            common::resolve_secret(name, "client_secret", &config.client_secret, secrets)?;
        let refresh_token =
            common::resolve_secret(name, "refresh_token", &config.refresh_token, secrets)?;
        let settings = config.http_settings();
        let mut registered: Vec<&Secret> = vec![&client_secret, &refresh_token, &client_id];
        if let Some(d) = &developer_token {
            registered.push(d);
        }
        let kit = HttpKit::for_destination(name, &settings, &registered)?
            .with_base_url(&config.effective_base_url());
        let token = OAuth2RefreshToken::new(
            name,
            kit.client().clone(),
            &config.token_url,
            client_id.expose(),
            Some(client_secret),
            refresh_token,
        )
        .map_err(|e| invalid("token_url", &e.to_string()))?;
        let kit = kit.with_auth(Auth::bearer(token));
        Ok(GoogleAdsDestination {
            name: name.to_string(),
            api: config.api,
            customer_id,
            login_customer_id,
            developer_token,
            kit,
            policy: GooglePolicy {
                member_violations_to_caller: config.api == GoogleApi::DataManager,
            },
            user_list_id: config.user_list_id.clone(),
            poll_interval: Duration::from_millis(config.job_poll_interval_ms.unwrap_or(10_000)),
            job_timeout: Duration::from_secs(config.job_timeout_secs.unwrap_or(3_600)),
            rps: settings.requests_per_second.unwrap_or(5.0),
            ads_base_url: config.effective_ads_base_url(),
        })
    }

    /// Which API this destination uses.
    pub fn api(&self) -> GoogleApi {
        self.api
    }

    /// Sends one JSON request with the API's auth headers, through the kit.
    async fn send(
        &self,
        operation: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<HttpReply, ConnectorError> {
        let url = self.kit.url(path);
        self.kit
            .send_with_retry(operation, &self.policy, |c| {
                let mut req = json_request(c, &method, &url, query, body);
                match self.api {
                    GoogleApi::CustomerMatch => {
                        if let Some(d) = &self.developer_token {
                            req = req.header("developer-token", d.expose());
                        }
                        if let Some(l) = &self.login_customer_id {
                            req = req.header("login-customer-id", l);
                        }
                    }
                    GoogleApi::DataManager => {
                        if let Some(l) = &self.login_customer_id {
                            req = req.header(
                                "login-account",
                                format!("accountTypes/GOOGLE_ADS/accounts/{l}"),
                            );
                        }
                    }
                }
                req
            })
            .await
    }

    /// Refuses job batches over the engine's size (one offline user data job or one Data Manager request).
    fn check_job_batch(&self, rows: usize) -> Result<(), ConnectorError> {
        if rows > MAX_MEMBERS_PER_CALL {
            return Err(ConnectorError::Invalid {
                destination: self.name.clone(),
                message: format!("a job call takes at most {MAX_MEMBERS_PER_CALL} members"),
            });
        }
        Ok(())
    }

    async fn change(
        &self,
        op: Op,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let mut total = BatchOutcome::default();
        if members.is_empty() {
            return Ok(total);
        }
        match self.api {
            GoogleApi::CustomerMatch => {
                // One job per call: its operations are split into ≤ 10,000-person addOperations requests.
                total.merge(self.cm_job(op, &audience.remote_id, members, false).await?);
            }
            GoogleApi::DataManager => {
                total.merge(
                    common::in_chunks(members, MAX_MEMBERS_PER_CALL, |chunk| {
                        common::submit_and_await(
                            chunk,
                            |m| self.dm_submit(op, &audience.remote_id, m),
                            |request_id, held| async move {
                                self.dm_finish(&request_id, &held).await
                            },
                        )
                    })
                    .await?,
                );
            }
        }
        Ok(total)
    }
}

#[async_trait]
impl AudienceDestination for GoogleAdsDestination {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "google_ads"
    }

    fn limits(&self) -> DestinationLimits {
        DestinationLimits {
            max_batch: MAX_MEMBERS_PER_CALL,
            min_audience_size: MIN_AUDIENCE,
            requests_per_second: self.rps,
        }
    }

    fn channel(&self) -> Channel {
        Channel::Ads
    }

    fn prepare(&self, contact: &Contact) -> Result<PreparedMember, crate::model::NoIdentifier> {
        mapping::prepare(contact)
    }

    async fn find_or_create_audience(
        &self,
        name: &str,
        description: &str,
    ) -> Result<AudienceRef, ConnectorError> {
        if let Some(id) = &self.user_list_id {
            // A configured list's members are unknown: treat it as adopted.
            return Ok(AudienceRef {
                remote_id: id.clone(),
                adopted: true,
            });
        }
        let find = async {
            match self.api {
                GoogleApi::CustomerMatch => self.cm_find_list(name).await,
                GoogleApi::DataManager => self.dm_find_list(name).await,
            }
        };
        let create = async {
            match self.api {
                GoogleApi::CustomerMatch => self.cm_create_list(name, description).await,
                GoogleApi::DataManager => self.dm_create_list(name, description).await,
            }
        };
        common::find_or_create(&self.name, name, "user list", find, create).await
    }

    async fn add_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.change(Op::Add, audience, members).await
    }

    async fn remove_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.change(Op::Remove, audience, members).await
    }

    /// Both APIs process asynchronously: Customer Match adds and removes are offline user data jobs,
    /// polled with a GAQL search on `offline_user_data_job.status`; a Data Manager request is polled by
    /// its `requestId` with `requestStatus:retrieve`.
    fn remote_job(&self, _action: JobAction) -> bool {
        true
    }

    async fn submit_job(
        &self,
        audience: &AudienceRef,
        action: JobAction,
        members: &[PreparedMember],
    ) -> Result<SubmittedJob, ConnectorError> {
        self.check_job_batch(members.len())?;
        let op = match action {
            JobAction::Add => Op::Add,
            JobAction::Remove => Op::Remove,
        };
        match self.api {
            GoogleApi::CustomerMatch => {
                self.cm_submit(op, &audience.remote_id, members, false)
                    .await
            }
            GoogleApi::DataManager => self.dm_submit(op, &audience.remote_id, members).await,
        }
    }

    async fn await_job(
        &self,
        _audience: &AudienceRef,
        _action: JobAction,
        job_id: &str,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.check_job_batch(members.len())?;
        match self.api {
            GoogleApi::CustomerMatch => self.cm_finish(job_id, members).await,
            GoogleApi::DataManager => self.dm_finish(job_id, members).await,
        }
    }

    /// Customer Match only: the first slice's job starts with `removeAll`, so the list holds exactly the
    /// slices sent in the session once they are all done.
    fn supports_replace_all(&self) -> bool {
        self.api == GoogleApi::CustomerMatch
    }

    async fn replace_all(
        &self,
        audience: &AudienceRef,
        session: &mut ReplaceSession,
        members: &[PreparedMember],
        _last_batch: bool,
    ) -> Result<BatchOutcome, ConnectorError> {
        if self.api != GoogleApi::CustomerMatch {
            return Err(ConnectorError::Unsupported {
                destination: self.name.clone(),
                operation: "replace_all",
            });
        }
        let first = session.next_batch_seq <= 1;
        if members.is_empty() && !first {
            return Ok(BatchOutcome::default());
        }
        let outcome = self
            .cm_job(Op::Add, &audience.remote_id, members, first)
            .await?;
        session.next_batch_seq += 1;
        Ok(outcome)
    }

    fn http_stats(&self) -> Option<HttpStatsSnapshot> {
        Some(self.kit.stats())
    }
}
