//! The SendGrid destination: list lookup/creation, upserts as polled import jobs, removals by contact id,
//! paced from SendGrid's rate-limit headers.

use super::config::SendGridConfig;
use super::mapping;
use crate::common;
use crate::error::{ConfigError, ConnectorError};
use crate::http::{
    body_excerpt, default_classify, json_request, next_cursor, Auth, HttpKit, HttpReply,
    ResponsePolicy, Verdict,
};
use crate::list_audience::{poll_import, JobPoll, Keyed, ListPlatform};
use crate::model::{BatchOutcome, Contact, NoIdentifier, PreparedMember, SubmittedJob};
use crate::secret::SecretResolver;
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Contacts per upsert job (SendGrid takes up to 30,000 or 6 MB; 10,000 keeps under both, with each
/// contact held to [`super::mapping::MAX_CONTACT_BYTES`] by the mapping).
pub const BATCH_SIZE: usize = 10_000;
/// SendGrid's request limit for `PUT /v3/marketing/contacts` ("6MB of data", read as 6,000,000 bytes).
const MAX_UPSERT_BYTES: usize = 6_000_000;
/// Emails per contact search.
const SEARCH_CHUNK: usize = 100;
/// Contact ids per removal request (they travel in the query string).
const DELETE_CHUNK: usize = 100;
/// Lists requested per page.
const PAGE_SIZE: usize = 1000;
/// Slack added to `X-RateLimit-Reset` waits: the header has one-second resolution.
const RESET_MARGIN: Duration = Duration::from_millis(50);

/// A configured SendGrid account.
#[derive(Debug)]
pub struct SendGridDestination {
    name: String,
    kit: HttpKit,
    policy: SendGridPolicy,
    pace_until: std::sync::Mutex<Option<SystemTime>>,
    poll_interval: Duration,
    poll_timeout: Duration,
}

/// Reads SendGrid's `{"errors": [{"field", "message"}]}` bodies; a 429 waits until
/// `X-RateLimit-Reset` (or `Retry-After`), 401 is an auth failure, 5xx is retried.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendGridPolicy;

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<FieldError>,
}

#[derive(Debug, Deserialize)]
struct FieldError {
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    message: String,
}

fn error_reason(body: &[u8]) -> Option<String> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let parts: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| match e.field.as_deref().filter(|f| !f.is_empty()) {
            Some(f) => format!("{f}: {}", e.message),
            None => e.message.clone(),
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// When the current rate-limit window ends, from `X-RateLimit-Reset` (epoch seconds).
fn reset_at(headers: &HeaderMap) -> Option<SystemTime> {
    header_u64(headers, "x-ratelimit-reset")
        .map(|s| UNIX_EPOCH + Duration::from_secs(s) + RESET_MARGIN)
}

impl ResponsePolicy for SendGridPolicy {
    fn classify(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if status.is_success() {
            return Verdict::Success;
        }
        let reason = error_reason(body).unwrap_or_else(|| body_excerpt(body));
        if status == StatusCode::TOO_MANY_REQUESTS {
            let after = reset_at(headers)
                .map(|t| {
                    t.duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO)
                })
                .or_else(|| crate::http::retry_after(headers));
            return Verdict::Retry {
                after,
                throttled: true,
                reason,
            };
        }
        default_classify(status, headers, body).with_reason(|| reason)
    }
}

#[derive(Debug, Deserialize)]
struct ListPage {
    #[serde(default)]
    result: Vec<ListEntry>,
    #[serde(default, rename = "_metadata")]
    metadata: Option<PageMeta>,
}

#[derive(Debug, Deserialize)]
struct ListEntry {
    id: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
struct PageMeta {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct JobCreated {
    job_id: String,
}

#[derive(Debug, Deserialize)]
struct ImportStatus {
    #[serde(default)]
    status: String,
    #[serde(default)]
    results: Option<ImportResults>,
}

#[derive(Debug, Deserialize)]
struct ImportResults {
    #[serde(default)]
    errored_count: Option<f64>,
    #[serde(default)]
    errors_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SearchReply {
    #[serde(default)]
    result: HashMap<String, SearchHit>,
}

#[derive(Debug, Deserialize)]
struct SearchHit {
    #[serde(default)]
    contact: Option<FoundContact>,
}

#[derive(Debug, Deserialize)]
struct FoundContact {
    id: String,
}

/// Row indices named by `contacts[N]` in a 400's message.
fn rejected_indices(message: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = message;
    while let Some(pos) = rest.find("contacts[") {
        rest = &rest[pos + "contacts[".len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse::<usize>() {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

/// Parses the errors file of an import job: a CSV whose email and error columns are found by name.
fn parse_errors_csv(body: &[u8]) -> Vec<(String, String)> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(body);
    let Ok(headers) = reader.headers().cloned() else {
        return Vec::new();
    };
    let lower: Vec<String> = headers.iter().map(|h| h.trim().to_lowercase()).collect();
    let Some(email_col) = lower.iter().position(|h| h.contains("email")) else {
        return Vec::new();
    };
    let reason_col = lower
        .iter()
        .position(|h| h.contains("error") || h.contains("message") || h.contains("reason"));
    reader
        .records()
        .filter_map(Result::ok)
        .filter_map(|r| {
            let email = r.get(email_col)?.trim().to_lowercase();
            let reason = reason_col
                .and_then(|c| r.get(c))
                .unwrap_or("refused by SendGrid")
                .trim()
                .to_string();
            (!email.is_empty()).then_some((email, reason))
        })
        .collect()
}

/// One chunk's members by email; payloads without one are refused up front.
fn group<'a>(members: &'a [PreparedMember], outcome: &mut BatchOutcome) -> Keyed<'a> {
    Keyed::group(
        members,
        outcome,
        mapping::email_of,
        "stored payload has no valid email",
    )
}

impl SendGridDestination {
    /// Builds the destination from its config, resolving the key.
    pub fn from_config(
        name: &str,
        config: SendGridConfig,
        secrets: &SecretResolver,
    ) -> Result<Self, ConfigError> {
        common::check_base_url(name, &config.base_url)?;
        let key = common::resolve_secret(name, "api_key", &config.api_key, secrets)?;
        let settings = config.http_settings();
        let kit = HttpKit::for_destination(name, &settings, &[&key])?
            .with_base_url(&config.base_url)
            .with_auth(Auth::static_bearer(key));
        Ok(SendGridDestination {
            name: name.to_string(),
            kit,
            policy: SendGridPolicy,
            pace_until: std::sync::Mutex::new(None),
            poll_interval: Duration::from_millis(config.poll_interval_ms.unwrap_or(2_000)),
            poll_timeout: Duration::from_secs(config.poll_timeout_secs.unwrap_or(900)),
        })
    }

    /// Waits out an exhausted rate-limit window announced by an earlier reply.
    async fn pace(&self) {
        let until = self.pace_until.lock().ok().and_then(|g| *g);
        if let Some(wait) = until.and_then(|t| t.duration_since(SystemTime::now()).ok()) {
            tracing::debug!(destination = %self.name, wait_ms = wait.as_millis() as u64, "rate-limit window exhausted, waiting for reset");
            tokio::time::sleep(wait).await;
        }
    }

    fn note_rate_headers(&self, headers: &HeaderMap) {
        if header_u64(headers, "x-ratelimit-remaining") == Some(0) {
            if let (Some(reset), Ok(mut guard)) = (reset_at(headers), self.pace_until.lock()) {
                *guard = Some(reset);
            }
        }
    }

    /// Sends one request (with retries) after honouring the rate-limit headers of the previous reply.
    async fn send(
        &self,
        operation: &str,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        authenticated: bool,
    ) -> Result<HttpReply, ConnectorError> {
        self.pace().await;
        let build = |c: &reqwest::Client| json_request(c, &method, url, query, body);
        let reply = if authenticated {
            self.kit
                .send_with_retry(operation, &self.policy, build)
                .await
        } else {
            self.kit
                .send_anonymous(operation, &self.policy, build)
                .await
        }?;
        self.note_rate_headers(&reply.headers);
        Ok(reply)
    }

    /// Polls an import job until it finishes; returns (email, reason) of the refused rows, or `None` when
    /// the job reported errors whose rows could not be read.
    async fn wait_for_job(
        &self,
        job_id: &str,
    ) -> Result<Option<Vec<(String, String)>>, ConnectorError> {
        let url = &self
            .kit
            .url(&format!("marketing/contacts/imports/{job_id}"));
        poll_import(
            &self.name,
            job_id,
            self.poll_interval,
            self.poll_timeout,
            || async move {
                let reply = self
                    .send("poll import job", Method::GET, url, &[], None, true)
                    .await?;
                let status: ImportStatus =
                    self.kit.parse_json("poll import job", &reply.body)?;
                match status.status.as_str() {
                    "completed" => Ok(JobPoll::Done(Some(Vec::new()))),
                    "errored" | "failed" => {
                        let results = status.results.unwrap_or(ImportResults {
                            errored_count: None,
                            errors_url: None,
                        });
                        let errored = results.errored_count.unwrap_or(0.0) as usize;
                        let refused = match &results.errors_url {
                            Some(u) => self.fetch_errors(u).await,
                            None => Vec::new(),
                        };
                        if refused.is_empty() || (errored > 0 && refused.len() < errored) {
                            tracing::warn!(destination = %self.name, job_id, errored, read = refused.len(), "import job errors could not all be attributed");
                            return Ok(JobPoll::Done(None));
                        }
                        Ok(JobPoll::Done(Some(refused)))
                    }
                    other => Ok(JobPoll::Running(other.to_string())),
                }
            },
        )
        .await
    }

    /// Downloads a job's errors file; the key is only sent when the file lives under our API base.
    async fn fetch_errors(&self, errors_url: &str) -> Vec<(String, String)> {
        let own = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
        let authenticated =
            own(errors_url).is_some() && own(errors_url) == own(self.kit.base_url());
        match self
            .send(
                "read import errors",
                Method::GET,
                errors_url,
                &[],
                None,
                authenticated,
            )
            .await
        {
            Ok(reply) => parse_errors_csv(&reply.body),
            Err(e) => {
                tracing::warn!(destination = %self.name, error = %e, "cannot read the import job's errors file");
                Vec::new()
            }
        }
    }
}

#[async_trait]
impl ListPlatform for SendGridDestination {
    const KIND: &'static str = "sendgrid";
    const ID_NAME: &'static str = "SendGrid list id";
    const AUDIENCE: &'static str = "list";
    const MAX_BATCH: usize = BATCH_SIZE;
    /// Upserts are import jobs (`202` + `job_id`, polled at `/v3/marketing/contacts/imports/{id}`);
    /// removals are synchronous deletes.
    const JOB_ADDS: bool = true;

    fn kit(&self) -> &HttpKit {
        &self.kit
    }

    fn id_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '-'
    }

    fn prepare_member(&self, contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
        mapping::prepare(contact)
    }

    async fn find(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        let url = self.kit.url("marketing/lists");
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("page_size", PAGE_SIZE.to_string())];
            if let Some(t) = &token {
                query.push(("page_token", t.clone()));
            }
            let reply = self
                .send("list lists", Method::GET, &url, &query, None, true)
                .await?;
            let page: ListPage = self.kit.parse_json("list lists", &reply.body)?;
            if let Some(l) = page.result.iter().find(|l| l.name == name) {
                return Ok(Some(l.id.clone()));
            }
            let next_token = page
                .metadata
                .and_then(|m| m.next)
                .and_then(|n| url::Url::parse(&n).ok())
                .and_then(|u| {
                    u.query_pairs()
                        .find(|(k, _)| k == "page_token")
                        .map(|(_, v)| v.into_owned())
                });
            match next_cursor(next_token, page.result.is_empty(), token.as_ref()) {
                Some(t) => token = Some(t),
                None => return Ok(None),
            }
        }
    }

    async fn create(&self, name: &str) -> Result<String, ConnectorError> {
        let body = json!({"name": name});
        let reply = self
            .send(
                "create list",
                Method::POST,
                &self.kit.url("marketing/lists"),
                &[],
                Some(&body),
                true,
            )
            .await?;
        let created: ListEntry = self.kit.parse_json("create list", &reply.body)?;
        Ok(created.id)
    }

    fn job_too_large(&self) -> String {
        format!("a job takes at most {BATCH_SIZE} contacts")
    }

    async fn remove_chunk(
        &self,
        list_id: &str,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let mut outcome = BatchOutcome::default();
        let chunk = group(members, &mut outcome);
        let search_url = self.kit.url("marketing/contacts/search/emails");
        let mut ids: Vec<String> = Vec::new();
        for emails in chunk.keys.chunks(SEARCH_CHUNK) {
            let body = json!({"emails": emails});
            match self
                .send(
                    "look up contacts",
                    Method::POST,
                    &search_url,
                    &[],
                    Some(&body),
                    true,
                )
                .await
            {
                Ok(reply) => {
                    let found: SearchReply =
                        self.kit.parse_json("look up contacts", &reply.body)?;
                    ids.extend(
                        found
                            .result
                            .into_values()
                            .filter_map(|h| h.contact)
                            .map(|c| c.id),
                    );
                }
                // 404 = none of these emails is a contact: nothing to remove.
                Err(ConnectorError::Api { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let unique: HashSet<String> = ids.into_iter().collect();
        let mut ids: Vec<String> = unique.into_iter().collect();
        ids.sort();
        let url = self.kit.url(&format!("marketing/lists/{list_id}/contacts"));
        for batch in ids.chunks(DELETE_CHUNK) {
            let query = [("contact_ids", batch.join(","))];
            let reply = self
                .send("remove from list", Method::DELETE, &url, &query, None, true)
                .await?;
            // `202 {"job_id"}` is SendGrid's acknowledgement of a removal; a bare 2xx is not.
            let job: JobCreated = self.kit.parse_json("remove from list", &reply.body)?;
            if job.job_id.trim().is_empty() {
                return Err(ConnectorError::InvalidResponse {
                    destination: self.name.clone(),
                    operation: "remove from list".into(),
                    message: "not acknowledged: the reply names no job_id".into(),
                });
            }
        }
        outcome.accepted = members.len() - outcome.rejected.len();
        Ok(outcome)
    }

    /// Submits one upsert job (the `PUT /v3/marketing/contacts` that answers `202` with a `job_id`),
    /// dropping rows a 400 names by index and trying once more without them; does not wait for the job.
    async fn submit_add(
        &self,
        list_id: &str,
        members: &[PreparedMember],
    ) -> Result<SubmittedJob, ConnectorError> {
        let mut outcome = BatchOutcome::default();
        let chunk = group(members, &mut outcome);
        let mut emails = chunk.keys.clone();
        let payload_of = |email: &str| -> Value {
            let mut obj = chunk
                .first(email)
                .and_then(|m| m.payload.as_object())
                .cloned()
                .unwrap_or_else(Map::new);
            obj.insert("email".into(), Value::String(email.to_string()));
            Value::Object(obj)
        };
        let url = self.kit.url("marketing/contacts");
        let mut job: Option<String> = None;
        for _ in 0..2 {
            if emails.is_empty() {
                break;
            }
            let contacts: Vec<Value> = emails.iter().map(|e| payload_of(e)).collect();
            let body = json!({"list_ids": [list_id], "contacts": contacts});
            let bytes = body.to_string().len();
            if bytes > MAX_UPSERT_BYTES {
                // Only payloads stored by an older mapping can get here: the mapping bounds each contact.
                return Err(ConnectorError::Invalid {
                    destination: self.name.clone(),
                    message: format!(
                        "an upsert of {} contacts is {bytes} bytes, over SendGrid's {MAX_UPSERT_BYTES}",
                        contacts.len()
                    ),
                });
            }
            match self
                .send("upsert contacts", Method::PUT, &url, &[], Some(&body), true)
                .await
            {
                Ok(reply) => {
                    let created: JobCreated =
                        self.kit.parse_json("upsert contacts", &reply.body)?;
                    if created.job_id.trim().is_empty() {
                        return Err(ConnectorError::InvalidResponse {
                            destination: self.name.clone(),
                            operation: "upsert contacts".into(),
                            message: "the reply names no job_id, so nothing was taken".into(),
                        });
                    }
                    job = Some(created.job_id);
                    break;
                }
                Err(ConnectorError::Api {
                    status: 400,
                    ref message,
                    ..
                }) if !rejected_indices(message).is_empty() => {
                    let bad = rejected_indices(message);
                    let mut keep = Vec::new();
                    for (i, e) in emails.into_iter().enumerate() {
                        if bad.contains(&i) {
                            chunk.reject(
                                &e,
                                &format!("refused by SendGrid: {message}"),
                                &mut outcome,
                            );
                        } else {
                            keep.push(e);
                        }
                    }
                    emails = keep;
                }
                Err(e) => return Err(e),
            }
        }
        if job.is_none() {
            for e in &emails {
                chunk.reject(e, "SendGrid refused the batch", &mut outcome);
            }
        }
        Ok(SubmittedJob {
            job_id: job,
            rejected: outcome.rejected,
        })
    }

    /// Waits for an upsert job and attributes its refused rows (from the errors file) to `members`,
    /// the rows the job holds.
    async fn finish_add(
        &self,
        job_id: &str,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let mut outcome = BatchOutcome::default();
        let chunk = group(members, &mut outcome);
        match self.wait_for_job(job_id).await? {
            Some(refused) => {
                for (email, reason) in refused {
                    chunk.reject(
                        &email,
                        &format!("refused by SendGrid: {reason}"),
                        &mut outcome,
                    );
                }
            }
            None => {
                for e in &chunk.keys {
                    chunk.reject(e, "SendGrid import job reported errors that could not be read; resent next run", &mut outcome);
                }
            }
        }
        outcome.accepted = members.len() - outcome.rejected.len();
        Ok(outcome)
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn sendgrid_error_parsing_helpers() {
        assert_eq!(
            rejected_indices("contacts[3].email: bad; contacts[10].email: bad; contacts[3].x"),
            vec![3, 10]
        );
        let rows = parse_errors_csv(b"Email,Errors\nA@x.com,\"blocked, domain\"\nb@y.com,bad\n");
        assert_eq!(
            rows,
            vec![
                ("a@x.com".into(), "blocked, domain".into()),
                ("b@y.com".into(), "bad".into())
            ]
        );
        assert!(parse_errors_csv(b"id,reason\n1,x\n").is_empty());
    }
}
