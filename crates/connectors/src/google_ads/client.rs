//! The Google Ads destination: user list lookup/creation and member changes over either the Google Ads API
//! (Customer Match offline user data jobs) or the Data Manager API, on the shared HTTP kit.

use super::config::{normalize_customer_id, GoogleAdsConfig, GoogleApi};
use super::mapping;
use crate::common;
use crate::error::{ConfigError, ConnectorError};
use crate::http::{
    default_classify, next_cursor, Auth, HttpKit, HttpReply, HttpStatsSnapshot, OAuth2RefreshToken,
    ResponsePolicy, Verdict,
};
use crate::model::{
    AudienceRef, BatchOutcome, Channel, Contact, DestinationLimits, JobAction, PreparedMember,
    Rejection, ReplaceSession, SubmittedJob,
};
use crate::secret::{Secret, SecretRef, SecretResolver};
use crate::traits::AudienceDestination;
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Creative rotation (`CreativeSwapper`): a child module so it shares this client's kit, token and policy.
#[path = "creative.rs"]
mod creative;
/// Daily metrics by GAQL (`MetricsSource`), a child module for the same reason.
#[path = "metrics.rs"]
mod metrics;

use super::request_status::{dm_settle, DmSettled, RetrieveRequestStatusResponse};

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
/// Customer Match `membershipLifeSpan` in days: 540, the maximum (`user_list.proto`: "must be between 0
/// and 540 inclusive"; the old "10000 = no expiry" is refused).
const CM_MEMBERSHIP_LIFE_SPAN_DAYS: i64 = 540;
/// Data Manager user list membership: 540 days, the Customer Match maximum.
const DM_MEMBERSHIP_DURATION: &str = "46656000s";

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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DmUserListPage {
    #[serde(default)]
    user_lists: Vec<DmUserList>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DmUserList {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    display_name: String,
}

impl DmUserList {
    fn list_id(&self) -> Option<String> {
        match &self.id {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => self
                .name
                .rsplit('/')
                .next()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        }
    }
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

fn resolve(
    name: &str,
    key: &str,
    r: &SecretRef,
    secrets: &SecretResolver,
) -> Result<Secret, ConfigError> {
    secrets.resolve(r).map_err(|e| ConfigError::Secret {
        destination: name.to_string(),
        key: key.to_string(),
        message: e.to_string(),
    })
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
            (Some(r), _) => Some(resolve(name, "developer_token", r, secrets)?),
            (None, GoogleApi::CustomerMatch) => {
                return Err(invalid(
                    "developer_token",
                    "required when api = \"customer_match\"",
                ))
            }
            (None, GoogleApi::DataManager) => None,
        };
        let client_id = resolve(name, "client_id", &config.client_id, secrets)?;
        let client_secret = resolve(name, "client_secret", &config.client_secret, secrets)?;
        let refresh_token = resolve(name, "refresh_token", &config.refresh_token, secrets)?;
        let settings = config.http_settings();
        let mut registered: Vec<&Secret> = vec![&client_secret, &refresh_token, &client_id];
        if let Some(d) = &developer_token {
            registered.push(d);
        }
        let kit = HttpKit::new(name, &settings, &registered)
            .map_err(|e| invalid(".", &format!("cannot build HTTP client: {e}")))?
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
                let mut req = c.request(method.clone(), &url);
                if !query.is_empty() {
                    req = req.query(query);
                }
                if let Some(b) = body {
                    req = req.json(b);
                }
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

    // ---- Customer Match (Google Ads API) ----

    async fn cm_find_list(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        let path = format!("customers/{}/googleAds:search", self.customer_id);
        let query = "SELECT user_list.resource_name, user_list.id, user_list.name FROM user_list \
                     WHERE user_list.type = 'CRM_BASED'";
        let mut page_token: Option<String> = None;
        loop {
            let mut body = json!({ "query": query });
            if let Some(t) = &page_token {
                body["pageToken"] = json!(t);
            }
            let reply = self
                .send("list user lists", Method::POST, &path, &[], Some(&body))
                .await?;
            let page: SearchPage = self.kit.parse_json("list user lists", &reply.body)?;
            for row in &page.results {
                let list = row.get("userList").cloned().unwrap_or_default();
                if list.get("name").and_then(Value::as_str) == Some(name) {
                    let id = list
                        .get("resourceName")
                        .and_then(Value::as_str)
                        .and_then(last_segment);
                    return id.map(Some).ok_or_else(|| {
                        self.kit.invalid_response(
                            "list user lists",
                            "user list row without a resource name".into(),
                        )
                    });
                }
            }
            match next_cursor(
                page.next_page_token,
                page.results.is_empty(),
                page_token.as_ref(),
            ) {
                Some(t) => page_token = Some(t),
                None => return Ok(None),
            }
        }
    }

    async fn cm_create_list(
        &self,
        name: &str,
        description: &str,
    ) -> Result<String, ConnectorError> {
        let path = format!("customers/{}/userLists:mutate", self.customer_id);
        let body = json!({"operations": [{"create": {
            "name": name,
            "description": description,
            "crmBasedUserList": {"uploadKeyType": "CONTACT_INFO"},
            "membershipLifeSpan": CM_MEMBERSHIP_LIFE_SPAN_DAYS,
        }}]});
        let reply = self
            .send("create user list", Method::POST, &path, &[], Some(&body))
            .await?;
        let parsed: Value = self.kit.parse_json("create user list", &reply.body)?;
        parsed
            .pointer("/results/0/resourceName")
            .and_then(Value::as_str)
            .and_then(last_segment)
            .ok_or_else(|| {
                self.kit
                    .invalid_response("create user list", "no resourceName in the reply".into())
            })
    }

    /// One offline user data job: create, add the operations (≤ [`MAX_MEMBERS_PER_CALL`] per call, partial
    /// failure on), run, poll to completion. `remove_all_first` prefixes the job with `removeAll`.
    async fn cm_job(
        &self,
        op: Op,
        list_id: &str,
        members: &[PreparedMember],
        remove_all_first: bool,
    ) -> Result<BatchOutcome, ConnectorError> {
        common::submit_and_await(
            members,
            |m| self.cm_submit(op, list_id, m, remove_all_first),
            |job, held| async move { self.cm_finish(&job, &held).await },
        )
        .await
    }

    /// Creates an offline user data job, adds the operations and starts it (`:run`), without waiting;
    /// operations the partial failure names are refused up front, with Google's reason.
    async fn cm_submit(
        &self,
        op: Op,
        list_id: &str,
        members: &[PreparedMember],
        remove_all_first: bool,
    ) -> Result<SubmittedJob, ConnectorError> {
        let mut outcome = BatchOutcome::default();
        let mut ops: Vec<(Option<usize>, Value)> = Vec::with_capacity(members.len() + 1);
        if remove_all_first {
            ops.push((None, json!({"removeAll": true})));
        }
        for (i, m) in members.iter().enumerate() {
            let Some(identifiers) = mapping::cm_identifiers(&m.payload) else {
                outcome.rejected.push(Rejection {
                    customer_id: m.customer_id.clone(),
                    reason: "stored payload is not a Google user identifier set".into(),
                });
                continue;
            };
            let data = json!({ "userIdentifiers": identifiers });
            ops.push((
                Some(i),
                if op == Op::Add {
                    json!({ "create": data })
                } else {
                    json!({ "remove": data })
                },
            ));
        }
        if ops.is_empty() {
            return Ok(SubmittedJob {
                job_id: None,
                rejected: outcome.rejected,
            });
        }
        let create_path = format!("customers/{}/offlineUserDataJobs:create", self.customer_id);
        let body = json!({"job": {
            "type": "CUSTOMER_MATCH_USER_LIST",
            "customerMatchUserListMetadata": {
                "userList": format!("customers/{}/userLists/{list_id}", self.customer_id),
                "consent": {"adUserData": "GRANTED", "adPersonalization": "GRANTED"},
            },
        }});
        let reply = self
            .send(
                "create offline user data job",
                Method::POST,
                &create_path,
                &[],
                Some(&body),
            )
            .await?;
        let created: Value = self
            .kit
            .parse_json("create offline user data job", &reply.body)?;
        let job = created
            .get("resourceName")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                self.kit
                    .invalid_response("create offline user data job", "no resourceName".into())
            })?;

        for chunk in ops.chunks(MAX_MEMBERS_PER_CALL) {
            let operations: Vec<&Value> = chunk.iter().map(|(_, v)| v).collect();
            let body = json!({"operations": operations, "enablePartialFailure": true});
            let reply = self
                .send(
                    "add job operations",
                    Method::POST,
                    &format!("{job}:addOperations"),
                    &[],
                    Some(&body),
                )
                .await?;
            let parsed: Value = self.kit.parse_json("add job operations", &reply.body)?;
            let Some(failure) = parsed.get("partialFailureError").filter(|v| !v.is_null()) else {
                continue;
            };
            let details = failure
                .get("details")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut attributed = 0usize;
            for err in details
                .iter()
                .filter_map(|d| d.get("errors").and_then(Value::as_array))
                .flatten()
            {
                let index = err
                    .pointer("/location/fieldPathElements")
                    .and_then(Value::as_array)
                    .and_then(|els| {
                        els.iter().find(|e| {
                            e.get("fieldName").and_then(Value::as_str) == Some("operations")
                        })
                    })
                    .and_then(|e| e.get("index"))
                    .and_then(|i| {
                        i.as_u64()
                            .or_else(|| i.as_str().and_then(|s| s.parse().ok()))
                    });
                let code = err
                    .get("errorCode")
                    .and_then(Value::as_object)
                    .and_then(|o| o.values().next())
                    .and_then(Value::as_str)
                    .unwrap_or("ERROR");
                let message = err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let reason = format!("{code}: {message}");
                match index.and_then(|i| chunk.get(i as usize)) {
                    Some((Some(owner), _)) => {
                        let cid = &members[*owner].customer_id;
                        if !outcome.rejected.iter().any(|r| &r.customer_id == cid) {
                            outcome.rejected.push(Rejection {
                                customer_id: cid.clone(),
                                reason,
                            });
                            attributed += 1;
                        }
                    }
                    Some((None, _)) => {
                        return Err(ConnectorError::Api {
                            destination: self.name.clone(),
                            operation: "add job operations".into(),
                            status: reply.status.as_u16(),
                            code: None,
                            message: format!("removeAll was refused: {reason}"),
                        })
                    }
                    None => {
                        tracing::warn!(destination = %self.name, reason = %reason, "partial failure without an operation index")
                    }
                }
            }
            if attributed == 0 {
                tracing::warn!(destination = %self.name, "partialFailureError named no operation we sent");
            }
        }

        self.send(
            "run offline user data job",
            Method::POST,
            &format!("{job}:run"),
            &[],
            Some(&json!({})),
        )
        .await?;
        Ok(SubmittedJob {
            job_id: Some(job),
            rejected: outcome.rejected,
        })
    }

    /// Waits for a started job; its rows (`members`) are held once it reports `SUCCESS`.
    async fn cm_finish(
        &self,
        job: &str,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.cm_wait(job).await?;
        Ok(BatchOutcome {
            accepted: members.len(),
            rejected: Vec::new(),
        })
    }

    async fn cm_wait(&self, job: &str) -> Result<(), ConnectorError> {
        let path = format!("customers/{}/googleAds:search", self.customer_id);
        let query = format!(
            "SELECT offline_user_data_job.resource_name, offline_user_data_job.status, \
             offline_user_data_job.failure_reason FROM offline_user_data_job \
             WHERE offline_user_data_job.resource_name = {}",
            gaql_quote(job)
        );
        let started = Instant::now();
        loop {
            let reply = self
                .send(
                    "poll offline user data job",
                    Method::POST,
                    &path,
                    &[],
                    Some(&json!({ "query": query })),
                )
                .await?;
            let page: SearchPage = self
                .kit
                .parse_json("poll offline user data job", &reply.body)?;
            let row = page
                .results
                .first()
                .and_then(|r| r.get("offlineUserDataJob"))
                .cloned()
                .unwrap_or_default();
            let status = row
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN");
            match status {
                "SUCCESS" => return Ok(()),
                "FAILED" => {
                    let reason = row
                        .get("failureReason")
                        .and_then(Value::as_str)
                        .unwrap_or("UNSPECIFIED");
                    return Err(ConnectorError::Api {
                        destination: self.name.clone(),
                        operation: "offline user data job".into(),
                        status: reply.status.as_u16(),
                        code: None,
                        message: format!("job {job} FAILED: {reason}"),
                    });
                }
                _ => {}
            }
            if started.elapsed() >= self.job_timeout {
                // The job keeps running on Google's side; resending the batch later is harmless.
                return Err(ConnectorError::Api {
                    destination: self.name.clone(),
                    operation: "offline user data job".into(),
                    status: 504,
                    code: None,
                    message: format!(
                        "job {job} still {status} after {}s",
                        self.job_timeout.as_secs()
                    ),
                });
            }
            tracing::debug!(destination = %self.name, job, status, "offline user data job not done yet");
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    // ---- Data Manager API ----

    async fn dm_find_list(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        let path = format!(
            "accountTypes/GOOGLE_ADS/accounts/{}/userLists",
            self.customer_id
        );
        let mut page_token: Option<String> = None;
        loop {
            let mut query = vec![("pageSize", "1000".to_string())];
            if let Some(t) = &page_token {
                query.push(("pageToken", t.clone()));
            }
            let reply = self
                .send("list user lists", Method::GET, &path, &query, None)
                .await?;
            let page: DmUserListPage = self.kit.parse_json("list user lists", &reply.body)?;
            if let Some(found) = page.user_lists.iter().find(|l| l.display_name == name) {
                return found.list_id().map(Some).ok_or_else(|| {
                    self.kit
                        .invalid_response("list user lists", "user list without an id".into())
                });
            }
            match next_cursor(
                page.next_page_token,
                page.user_lists.is_empty(),
                page_token.as_ref(),
            ) {
                Some(t) => page_token = Some(t),
                None => return Ok(None),
            }
        }
    }

    async fn dm_create_list(
        &self,
        name: &str,
        description: &str,
    ) -> Result<String, ConnectorError> {
        let path = format!(
            "accountTypes/GOOGLE_ADS/accounts/{}/userLists",
            self.customer_id
        );
        let body = json!({
            "displayName": name,
            "description": description,
            "membershipDuration": DM_MEMBERSHIP_DURATION,
            "ingestedUserListInfo": {
                "uploadKeyTypes": ["CONTACT_ID"],
                "contactIdInfo": {"dataSourceType": "DATA_SOURCE_TYPE_FIRST_PARTY"},
            },
        });
        let reply = self
            .send("create user list", Method::POST, &path, &[], Some(&body))
            .await?;
        let created: DmUserList = self.kit.parse_json("create user list", &reply.body)?;
        created.list_id().ok_or_else(|| {
            self.kit
                .invalid_response("create user list", "no id in the reply".into())
        })
    }

    fn dm_destination(&self, list_id: &str) -> Value {
        let mut d = json!({
            "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": self.customer_id},
            "productDestinationId": list_id,
        });
        if let Some(l) = &self.login_customer_id {
            d["loginAccount"] = json!({"accountType": "GOOGLE_ADS", "accountId": l});
        }
        d
    }

    /// Sends one Data Manager request (≤ [`MAX_MEMBERS_PER_CALL`] members) and returns its `requestId`
    /// without waiting for Google to process it. Google validates the whole request, so members named in
    /// field violations become rejections up front and the rest is sent once more.
    async fn dm_submit(
        &self,
        op: Op,
        list_id: &str,
        chunk: &[PreparedMember],
    ) -> Result<SubmittedJob, ConnectorError> {
        let mut rejected = Vec::new();
        let mut pending: Vec<(&PreparedMember, Value)> = Vec::with_capacity(chunk.len());
        for m in chunk {
            match mapping::dm_identifiers(&m.payload) {
                Some(identifiers) => {
                    pending.push((m, json!({"userData": {"userIdentifiers": identifiers}})));
                }
                None => rejected.push(Rejection {
                    customer_id: m.customer_id.clone(),
                    reason: "stored payload is not a Google user identifier set".into(),
                }),
            }
        }
        let (path, label) = match op {
            Op::Add => ("audienceMembers:ingest", "ingest audience members"),
            Op::Remove => ("audienceMembers:remove", "remove audience members"),
        };
        for attempt in 0..2 {
            if pending.is_empty() {
                break;
            }
            let members: Vec<&Value> = pending.iter().map(|(_, v)| v).collect();
            let mut body = json!({
                "destinations": [self.dm_destination(list_id)],
                "audienceMembers": members,
                "encoding": "HEX",
            });
            if op == Op::Add {
                body["consent"] = json!({"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"});
                body["termsOfService"] = json!({"customerMatchTermsOfServiceStatus": "ACCEPTED"});
            }
            let reply = self
                .send(label, Method::POST, path, &[], Some(&body))
                .await?;
            if reply.status.is_success() {
                // `IngestAudienceMembersResponse` / `RemoveAudienceMembersResponse`: the id Google
                // assigned to the request, to poll with `requestStatus:retrieve`.
                let ack: Value = self.kit.parse_json(label, &reply.body)?;
                let Some(request_id) = ack
                    .get("requestId")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                else {
                    return Err(self.kit.invalid_response(
                        label,
                        format!(
                            "not acknowledged: no requestId in the reply: {}",
                            self.kit.excerpt(&reply.body)
                        ),
                    ));
                };
                return Ok(SubmittedJob {
                    job_id: Some(request_id.to_string()),
                    rejected,
                });
            }
            let env: Envelope = self.kit.parse_json(label, &reply.body)?;
            let violations = member_violations(&env.error.details);
            if attempt == 1 {
                return Err(ConnectorError::Api {
                    destination: self.name.clone(),
                    operation: label.into(),
                    status: reply.status.as_u16(),
                    code: env.error.code,
                    message: self.kit.redactor().redact(&env.error.describe()),
                });
            }
            let mut bad: Vec<usize> = violations
                .iter()
                .map(|(i, _)| *i)
                .filter(|i| *i < pending.len())
                .collect();
            bad.sort_unstable();
            bad.dedup();
            for &i in bad.iter().rev() {
                let (m, _) = pending.remove(i);
                let reason = violations
                    .iter()
                    .filter(|(j, _)| *j == i)
                    .map(|(_, r)| r.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                rejected.push(Rejection {
                    customer_id: m.customer_id.clone(),
                    reason,
                });
            }
        }
        Ok(SubmittedJob {
            job_id: None,
            rejected,
        })
    }

    /// Polls `requestStatus:retrieve` for a submitted request every `job_poll_interval_ms` until Google
    /// reports a final status for its destination, and settles `members`, the rows the request held
    /// (see [`dm_settle`]). Still `PROCESSING` after `job_timeout_secs` is a transient error, so the
    /// engine keeps the request and polls it again next run.
    async fn dm_finish(
        &self,
        request_id: &str,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        const LABEL: &str = "retrieve request status";
        let started = Instant::now();
        loop {
            let reply = self
                .send(
                    LABEL,
                    Method::GET,
                    "requestStatus:retrieve",
                    &[("requestId", request_id.to_string())],
                    None,
                )
                .await?;
            let parsed: RetrieveRequestStatusResponse = self.kit.parse_json(LABEL, &reply.body)?;
            let status = parsed
                .request_status_per_destination
                .into_iter()
                .next()
                .ok_or_else(|| {
                    self.kit.invalid_response(
                        LABEL,
                        format!("request {request_id}: no requestStatusPerDestination"),
                    )
                })?;
            match dm_settle(&status, members) {
                DmSettled::Pending => {}
                DmSettled::Done(outcome) => {
                    for w in &status.warning_info.warning_counts {
                        tracing::warn!(destination = %self.name, request_id, reason = %w.reason, records = w.record_count, "Data Manager warning");
                    }
                    return Ok(outcome);
                }
                DmSettled::Failed(message) => {
                    return Err(ConnectorError::Api {
                        destination: self.name.clone(),
                        operation: LABEL.into(),
                        status: reply.status.as_u16(),
                        code: None,
                        message: format!("request {request_id} {message}"),
                    })
                }
            }
            if started.elapsed() >= self.job_timeout {
                return Err(ConnectorError::Api {
                    destination: self.name.clone(),
                    operation: LABEL.into(),
                    status: 504,
                    code: None,
                    message: format!(
                        "request {request_id} still PROCESSING after {}s",
                        self.job_timeout.as_secs()
                    ),
                });
            }
            tracing::debug!(destination = %self.name, request_id, "Data Manager request still processing");
            tokio::time::sleep(self.poll_interval).await;
        }
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
