//! The Klaviyo destination: list lookup/creation, adds as polled bulk import jobs with the list attached,
//! removals through profile lookup and the list's profile relationship.

use super::config::KlaviyoConfig;
use super::mapping;
use crate::common;
use crate::error::{ConfigError, ConnectorError};
use crate::http::{
    body_excerpt, default_classify, next_cursor, Auth, HttpKit, ResponsePolicy, Verdict,
};
use crate::list_audience::{poll_import, JobPoll, Keyed, ListPlatform};
use crate::model::{BatchOutcome, Contact, NoIdentifier, PreparedMember, SubmittedJob};
use crate::secret::SecretResolver;
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// Template assignment (`CreativeSwapper`), a child module so it shares this client's kit and key.
#[path = "creative.rs"]
mod creative;
/// Campaign values reports (`MetricsSource`), a child module for the same reason.
#[path = "metrics.rs"]
mod metrics;

/// Profiles per bulk import job.
pub const MAX_IMPORT: usize = 10_000;
/// Profiles per list-relationship call.
pub const MAX_RELATIONSHIP: usize = 1_000;
/// Values per `any(...)` profile filter, and profiles per page.
const LOOKUP_CHUNK: usize = 100;
const JSON_API: &str = "application/vnd.api+json";

/// A configured Klaviyo account.
#[derive(Debug)]
pub struct KlaviyoDestination {
    name: String,
    revision: String,
    kit: HttpKit,
    policy: KlaviyoPolicy,
    poll_interval: Duration,
    poll_timeout: Duration,
    /// The account's conversion metric (e.g. Placed Order) for campaign reports.
    conversion_metric_id: Option<String>,
}

/// Reads Klaviyo's JSON:API error documents for messages; status handling is the kit's default (401
/// auth, 429 with `Retry-After` and 5xx retried).
#[derive(Debug, Clone, Copy, Default)]
struct KlaviyoPolicy;

#[derive(Debug, Deserialize)]
struct ErrorDoc {
    #[serde(default)]
    errors: Vec<ApiError>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    detail: String,
}

impl ResponsePolicy for KlaviyoPolicy {
    fn classify(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        let reason = || {
            serde_json::from_slice::<ErrorDoc>(body)
                .ok()
                .filter(|d| !d.errors.is_empty())
                .map(|d| {
                    d.errors
                        .iter()
                        .map(|e| format!("{} ({}): {}", e.title, e.code, e.detail))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_else(|| body_excerpt(body))
        };
        default_classify(status, headers, body).with_reason(reason)
    }
}

#[derive(Debug, Deserialize)]
struct Resource {
    id: String,
    #[serde(default)]
    attributes: Value,
}

#[derive(Debug, Deserialize)]
struct Collection {
    #[serde(default)]
    data: Vec<Resource>,
    #[serde(default)]
    links: Option<Links>,
}

#[derive(Debug, Deserialize)]
struct Links {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Single {
    data: Resource,
}

/// The member key: email, else `phone:<E.164>`.
fn key_of(email: Option<&str>, phone: Option<&str>) -> Option<String> {
    match (email, phone) {
        (Some(e), _) => Some(e.to_lowercase()),
        (None, Some(p)) => Some(format!("phone:{p}")),
        (None, None) => None,
    }
}

/// One chunk's members by key; payloads with neither identifier are refused up front.
fn group<'a>(members: &'a [PreparedMember], outcome: &mut BatchOutcome) -> Keyed<'a> {
    Keyed::group(
        members,
        outcome,
        |p| mapping::identifiers_of(p).and_then(|(e, ph)| key_of(e.as_deref(), ph.as_deref())),
        "stored payload has neither a valid email nor an E.164 phone",
    )
}

/// A JSON string literal for a Klaviyo filter value.
fn filter_literal(v: &str) -> String {
    Value::String(v.to_string()).to_string()
}

impl KlaviyoDestination {
    /// Builds the destination from its config, resolving the key.
    pub fn from_config(
        name: &str,
        config: KlaviyoConfig,
        secrets: &SecretResolver,
    ) -> Result<Self, ConfigError> {
        let invalid = common::invalid_key(name);
        common::check_base_url(name, &config.base_url)?;
        if !config.revision_is_valid() {
            return Err(invalid("revision", "expected a date, YYYY-MM-DD".into()));
        }
        let api_key = common::resolve_secret(name, "api_key", &config.api_key, secrets)?;
        let settings = config.http_settings();
        let kit = HttpKit::for_destination(name, &settings, &[&api_key])?
            .with_base_url(&config.base_url)
            .with_auth(Auth::static_header(
                "authorization",
                "Klaviyo-API-Key ",
                api_key,
            ));
        Ok(KlaviyoDestination {
            name: name.to_string(),
            revision: config.revision.clone(),
            kit,
            policy: KlaviyoPolicy,
            poll_interval: Duration::from_millis(config.poll_interval_ms.unwrap_or(2_000)),
            poll_timeout: Duration::from_secs(config.poll_timeout_secs.unwrap_or(900)),
            conversion_metric_id: config.conversion_metric_id.clone(),
        })
    }

    async fn send(
        &self,
        operation: &str,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Vec<u8>, ConnectorError> {
        let reply = self
            .kit
            .send_with_retry(operation, &self.policy, |c| {
                let mut req = c
                    .request(method.clone(), url)
                    .query(query)
                    .header("revision", &self.revision)
                    .header("accept", JSON_API);
                if let Some(b) = body {
                    req = req.header("content-type", JSON_API).body(b.to_string());
                }
                req
            })
            .await?;
        Ok(reply.body)
    }

    /// The `page[cursor]` of a `links.next` URL, re-sent against our own base URL.
    fn cursor_of(links: Option<Links>) -> Option<String> {
        let next = url::Url::parse(&links?.next?).ok()?;
        let cursor = next
            .query_pairs()
            .find(|(k, _)| k == "page[cursor]")
            .map(|(_, v)| v.into_owned());
        cursor
    }

    /// Polls a bulk import job until it completes; returns its `failed_count`.
    async fn wait_for_job(&self, job_id: &str) -> Result<u64, ConnectorError> {
        let url = &self.kit.url(&format!("profile-bulk-import-jobs/{job_id}"));
        poll_import(
            &self.name,
            job_id,
            self.poll_interval,
            self.poll_timeout,
            || async move {
                let body = self
                    .send("poll import job", Method::GET, url, &[], None)
                    .await?;
                let job: Single = self.kit.parse_json("poll import job", &body)?;
                let attrs = &job.data.attributes;
                let status = attrs
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match status {
                    "complete" => Ok(JobPoll::Done(
                        attrs
                            .get("failed_count")
                            .and_then(Value::as_u64)
                            .unwrap_or(0),
                    )),
                    "cancelled" => Err(ConnectorError::Api {
                        destination: self.name.clone(),
                        operation: "poll import job".into(),
                        status: 200,
                        code: None,
                        message: format!("import job {job_id} was cancelled"),
                    }),
                    other => Ok(JobPoll::Running(other.to_string())),
                }
            },
        )
        .await
    }

    /// Reads a job's import errors: (member key, reason) for every refused row.
    async fn job_errors(
        &self,
        job_id: &str,
    ) -> Result<Vec<(Option<String>, String)>, ConnectorError> {
        let url = self
            .kit
            .url(&format!("profile-bulk-import-jobs/{job_id}/import-errors"));
        let mut cursor: Option<String> = None;
        let mut out = Vec::new();
        loop {
            let query: Vec<(&str, String)> =
                cursor.iter().map(|c| ("page[cursor]", c.clone())).collect();
            let body = self
                .send("read import errors", Method::GET, &url, &query, None)
                .await?;
            let page: Collection = self.kit.parse_json("read import errors", &body)?;
            for e in &page.data {
                let a = &e.attributes;
                let payload = a.get("original_payload");
                let email = payload.and_then(|p| p.get("email")).and_then(Value::as_str);
                let phone = payload
                    .and_then(|p| p.get("phone_number"))
                    .and_then(Value::as_str);
                let detail = a
                    .get("detail")
                    .and_then(Value::as_str)
                    .or_else(|| a.get("title").and_then(Value::as_str));
                out.push((
                    key_of(email, phone),
                    detail.unwrap_or("refused by Klaviyo").to_string(),
                ));
            }
            match next_cursor(
                Self::cursor_of(page.links),
                page.data.is_empty(),
                cursor.as_ref(),
            ) {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// Looks up profile ids for the chunk's keys (emails and phones separately).
    async fn profile_ids(&self, chunk: &Keyed<'_>) -> Result<BTreeSet<String>, ConnectorError> {
        let url = self.kit.url("profiles");
        let emails: Vec<&str> = chunk
            .keys
            .iter()
            .filter(|k| !k.starts_with("phone:"))
            .map(String::as_str)
            .collect();
        let phones: Vec<&str> = chunk
            .keys
            .iter()
            .filter_map(|k| k.strip_prefix("phone:"))
            .collect();
        let mut ids = BTreeSet::new();
        for (field, values) in [("email", emails), ("phone_number", phones)] {
            for part in values.chunks(LOOKUP_CHUNK) {
                let list: Vec<String> = part.iter().map(|v| filter_literal(v)).collect();
                let filter = format!("any({field},[{}])", list.join(","));
                let mut cursor: Option<String> = None;
                loop {
                    let mut query = vec![
                        ("filter", filter.clone()),
                        ("fields[profile]", "email,phone_number".to_string()),
                        ("page[size]", LOOKUP_CHUNK.to_string()),
                    ];
                    if let Some(c) = &cursor {
                        query.push(("page[cursor]", c.clone()));
                    }
                    let body = self
                        .send("look up profiles", Method::GET, &url, &query, None)
                        .await?;
                    let page: Collection = self.kit.parse_json("look up profiles", &body)?;
                    ids.extend(page.data.iter().map(|p| p.id.clone()));
                    match next_cursor(
                        Self::cursor_of(page.links),
                        page.data.is_empty(),
                        cursor.as_ref(),
                    ) {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
            }
        }
        Ok(ids)
    }
}

#[async_trait]
impl ListPlatform for KlaviyoDestination {
    const KIND: &'static str = "klaviyo";
    const ID_NAME: &'static str = "Klaviyo list id";
    const AUDIENCE: &'static str = "list";
    const MAX_BATCH: usize = MAX_IMPORT;
    /// Adds are bulk import jobs (polled at `/api/profile-bulk-import-jobs/{id}`); removals are
    /// synchronous relationship deletes.
    const JOB_ADDS: bool = true;

    fn kit(&self) -> &HttpKit {
        &self.kit
    }

    fn id_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '-' || c == '_'
    }

    fn prepare_member(&self, contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
        mapping::prepare(contact)
    }

    async fn find(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        let url = self.kit.url("lists");
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("fields[list]", "name".to_string())];
            if let Some(c) = &cursor {
                query.push(("page[cursor]", c.clone()));
            }
            let body = self
                .send("list lists", Method::GET, &url, &query, None)
                .await?;
            let page: Collection = self.kit.parse_json("list lists", &body)?;
            if let Some(l) = page
                .data
                .iter()
                .find(|l| l.attributes.get("name").and_then(Value::as_str) == Some(name))
            {
                return Ok(Some(l.id.clone()));
            }
            match next_cursor(
                Self::cursor_of(page.links),
                page.data.is_empty(),
                cursor.as_ref(),
            ) {
                Some(c) => cursor = Some(c),
                None => return Ok(None),
            }
        }
    }

    async fn create(&self, name: &str) -> Result<String, ConnectorError> {
        let body = json!({"data": {"type": "list", "attributes": {"name": name}}});
        let reply = self
            .send(
                "create list",
                Method::POST,
                &self.kit.url("lists"),
                &[],
                Some(&body),
            )
            .await?;
        let created: Single = self.kit.parse_json("create list", &reply)?;
        Ok(created.data.id)
    }

    fn job_too_large(&self) -> String {
        format!("an import job takes at most {MAX_IMPORT} profiles")
    }

    async fn remove_chunk(
        &self,
        list_id: &str,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let mut outcome = BatchOutcome::default();
        let chunk = group(members, &mut outcome);
        let ids: Vec<String> = self.profile_ids(&chunk).await?.into_iter().collect();
        let url = self
            .kit
            .url(&format!("lists/{list_id}/relationships/profiles"));
        for part in ids.chunks(MAX_RELATIONSHIP) {
            let data: Vec<Value> = part
                .iter()
                .map(|id| json!({"type": "profile", "id": id}))
                .collect();
            self.send(
                "remove from list",
                Method::DELETE,
                &url,
                &[],
                Some(&json!({"data": data})),
            )
            .await?;
        }
        outcome.accepted = members.len() - outcome.rejected.len();
        Ok(outcome)
    }

    /// Submits one bulk import job (`POST /api/profile-bulk-import-jobs` with the list attached); does
    /// not wait for it. Rows without a usable key are refused up front.
    async fn submit_add(
        &self,
        list_id: &str,
        members: &[PreparedMember],
    ) -> Result<SubmittedJob, ConnectorError> {
        let mut outcome = BatchOutcome::default();
        let chunk = group(members, &mut outcome);
        if chunk.keys.is_empty() {
            return Ok(SubmittedJob {
                job_id: None,
                rejected: outcome.rejected,
            });
        }
        let profiles: Vec<Value> = chunk
            .keys
            .iter()
            .filter_map(|k| chunk.first(k))
            .map(|m| json!({"type": "profile", "attributes": m.payload}))
            .collect();
        let body = json!({"data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": profiles}},
            "relationships": {"lists": {"data": [{"type": "list", "id": list_id}]}},
        }});
        let reply = self
            .send(
                "import profiles",
                Method::POST,
                &self.kit.url("profile-bulk-import-jobs"),
                &[],
                Some(&body),
            )
            .await?;
        let job: Single = self.kit.parse_json("import profiles", &reply)?;
        if job.data.id.trim().is_empty() {
            return Err(ConnectorError::InvalidResponse {
                destination: self.name.clone(),
                operation: "import profiles".into(),
                message: "the reply names no job id, so nothing was taken".into(),
            });
        }
        Ok(SubmittedJob {
            job_id: Some(job.data.id),
            rejected: outcome.rejected,
        })
    }

    /// Waits for a bulk import job and attributes its import errors to `members`, the rows it holds.
    async fn finish_add(
        &self,
        job_id: &str,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let mut outcome = BatchOutcome::default();
        let chunk = group(members, &mut outcome);
        let failed = self.wait_for_job(job_id).await?;
        if failed > 0 {
            let errors = self.job_errors(job_id).await?;
            let mut attributed = 0u64;
            for (key, reason) in &errors {
                let reason = format!("refused by Klaviyo: {reason}");
                if key
                    .as_deref()
                    .is_some_and(|k| chunk.reject(k, &reason, &mut outcome))
                {
                    attributed += 1;
                }
            }
            if attributed < failed {
                // Unattributable failures: report the whole chunk so the next run resends it (the
                // import is an idempotent upsert) rather than marking unknown rows as synced.
                tracing::warn!(destination = %self.name, failed, attributed, "import errors could not all be attributed; rejecting the chunk");
                for k in &chunk.keys {
                    chunk.reject(
                        k,
                        "Klaviyo import job reported errors that could not be attributed",
                        &mut outcome,
                    );
                }
            }
        }
        outcome.accepted = members.len() - outcome.rejected.len();
        Ok(outcome)
    }
}
