//! The Mailchimp destination: static-segment lookup/creation and batched add/remove over the HTTP kit,
//! under a connection cap.

use super::config::{data_center, default_base_url, MailchimpConfig, MAX_CONNECTIONS};
use super::mapping;
use crate::common;
use crate::error::{ConfigError, ConnectorError};
use crate::http::{
    body_excerpt, default_classify, json_request, next_offset, Auth, HttpKit, ResponsePolicy,
    Verdict,
};
use crate::list_audience::{Keyed, ListPlatform};
use crate::model::{AudienceRef, BatchOutcome, Contact, NoIdentifier, PreparedMember};
use crate::secret::SecretResolver;
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

/// Template swap (`CreativeSwapper`), a child module so it shares this client's kit, key and connection cap.
#[path = "creative.rs"]
mod creative;
/// Campaign reports (`MetricsSource`), a child module for the same reason.
#[path = "metrics.rs"]
mod metrics;

/// Mailchimp accepts at most this many members per batch subscribe and per segment add/remove list.
pub const MAX_MEMBERS: usize = 500;
/// Segments requested per page (Mailchimp's maximum `count`).
const PAGE_COUNT: usize = 1000;
/// Basic-auth user name; Mailchimp ignores it.
const BASIC_USER: &str = "campaignd";

/// A configured Mailchimp list.
#[derive(Debug)]
pub struct MailchimpDestination {
    name: String,
    list_id: String,
    kit: HttpKit,
    policy: MailchimpPolicy,
    connections: Semaphore,
}

/// Reads Mailchimp's problem documents (`{"title", "status", "detail", "errors"}`): 401 is an auth
/// failure, a bare 429 and a 403 "Too Many Requests" are throttling (no `Retry-After`, so the kit's
/// backoff applies), 5xx is retried, the rest fail with Mailchimp's title and detail.
#[derive(Debug, Clone, Copy, Default)]
pub struct MailchimpPolicy;

#[derive(Debug, Deserialize)]
struct Problem {
    #[serde(default)]
    title: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    errors: Vec<FieldError>,
}

#[derive(Debug, Deserialize)]
struct FieldError {
    #[serde(default)]
    field: String,
    #[serde(default)]
    message: String,
}

fn problem_reason(body: &[u8]) -> Option<String> {
    let p: Problem = serde_json::from_slice(body).ok()?;
    if p.title.is_empty() && p.detail.is_empty() {
        return None;
    }
    let mut reason = format!("{}: {}", p.title, p.detail);
    for e in &p.errors {
        reason.push_str(&format!("; {}: {}", e.field, e.message));
    }
    Some(reason)
}

impl ResponsePolicy for MailchimpPolicy {
    fn classify(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if status.is_success() {
            return Verdict::Success;
        }
        let reason = problem_reason(body).unwrap_or_else(|| body_excerpt(body));
        let lowered = reason.to_lowercase();
        let throttle_text = lowered.contains("too many") || lowered.contains("simultaneous");
        if status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN && throttle_text)
        {
            return Verdict::Retry {
                after: crate::http::retry_after(headers),
                throttled: true,
                reason,
            };
        }
        default_classify(status, headers, body).with_reason(|| reason)
    }
}

#[derive(Debug, Deserialize)]
struct SegmentPage {
    #[serde(default)]
    segments: Vec<SegmentEntry>,
    #[serde(default)]
    total_items: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct SegmentEntry {
    id: u64,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
struct BatchSubscribeReply {
    #[serde(default)]
    errors: Vec<SubscribeError>,
}

#[derive(Debug, Deserialize)]
struct SubscribeError {
    #[serde(default)]
    email_address: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SegmentReply {
    #[serde(default)]
    errors: Vec<SegmentError>,
}

#[derive(Debug, Deserialize)]
struct SegmentError {
    #[serde(default)]
    email_addresses: Vec<String>,
    #[serde(default)]
    error: String,
}

/// Whether a batch-subscribe error only says the person is already on the list.
fn is_already_member(e: &SubscribeError) -> bool {
    e.error_code.as_deref() == Some("ERROR_CONTACT_EXISTS")
        || e.error.to_lowercase().contains("already a list member")
}

/// Whether a segment-removal error only says the address is not (or no longer) on the list, i.e. it is
/// already absent from the segment.
fn is_already_absent(error: &str) -> bool {
    let e = error.to_lowercase();
    (e.contains("not") && (e.contains("member") || e.contains("found") || e.contains("exist")))
        || e.contains("no longer")
}

impl MailchimpDestination {
    /// Builds the destination from its config, resolving the key and deriving the base URL from the
    /// key's data centre when `base_url` is not given.
    pub fn from_config(
        name: &str,
        config: MailchimpConfig,
        secrets: &SecretResolver,
    ) -> Result<Self, ConfigError> {
        let invalid = common::invalid_key(name);
        let list_id = config.list_id.trim().to_string();
        if list_id.is_empty() || !list_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid(
                "list_id",
                "expected the list's alphanumeric id (Audience settings → Audience ID)".into(),
            ));
        }
        let api_key = common::resolve_secret(name, "api_key", &config.api_key, secrets)?;
        let base_url = match &config.base_url {
            Some(url) => {
                common::check_base_url(name, url)?;
                url.trim_end_matches('/').to_string()
            }
            None => match data_center(api_key.expose()) {
                Some(dc) => default_base_url(&dc),
                None => {
                    return Err(invalid(
                        "api_key",
                        "cannot derive the data centre: the key has no `-<dc>` suffix (e.g. `-us21`); set base_url".into(),
                    ))
                }
            },
        };
        let max_connections = config.max_connections.unwrap_or(MAX_CONNECTIONS);
        if !(1..=MAX_CONNECTIONS).contains(&max_connections) {
            return Err(invalid(
                "max_connections",
                format!("must be between 1 and {MAX_CONNECTIONS}"),
            ));
        }
        let settings = config.http_settings();
        let kit = HttpKit::for_destination(name, &settings, &[&api_key])?
            .with_base_url(&base_url)
            .with_auth(Auth::basic(BASIC_USER, api_key));
        Ok(MailchimpDestination {
            name: name.to_string(),
            list_id,
            kit,
            policy: MailchimpPolicy,
            connections: Semaphore::new(max_connections),
        })
    }

    /// Parses a batch reply that must be Mailchimp's affirmative answer (`check`, see [`crate::ack`]):
    /// a 200 with `{}` or an error body is a failed batch, reported with the (redacted) reply.
    fn acknowledged<T: for<'de> Deserialize<'de>>(
        &self,
        operation: &str,
        body: &[u8],
        check: impl FnOnce(&Value) -> Result<(), String>,
    ) -> Result<T, ConnectorError> {
        let value: Value = self.kit.parse_json(operation, body)?;
        let fail = |why: String| self.kit.not_acknowledged(operation, &why, body);
        check(&value).map_err(fail)?;
        serde_json::from_value(value).map_err(|e| fail(e.to_string()))
    }

    /// Sends a request under the connection cap.
    async fn send(
        &self,
        operation: &str,
        method: reqwest::Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Vec<u8>, ConnectorError> {
        let _permit = self
            .connections
            .acquire()
            .await
            .map_err(|_| ConnectorError::Invalid {
                destination: self.name.clone(),
                message: "connection pool closed".into(),
            })?;
        let reply = self
            .kit
            .send_with_retry(operation, &self.policy, |c| {
                json_request(c, &method, url, query, body)
            })
            .await?;
        Ok(reply.body)
    }

    /// Splits members into a chunk of distinct emails, rejecting payloads without one.
    fn group<'a>(members: &'a [PreparedMember], outcome: &mut BatchOutcome) -> Keyed<'a> {
        Keyed::group(
            members,
            outcome,
            mapping::email_of,
            "stored payload has no valid email",
        )
    }
}

#[async_trait]
impl ListPlatform for MailchimpDestination {
    const KIND: &'static str = "mailchimp";
    const ID_NAME: &'static str = "Mailchimp segment id";
    const AUDIENCE: &'static str = "static segment";
    const MAX_BATCH: usize = MAX_MEMBERS;
    /// Every call is synchronous.
    const JOB_ADDS: bool = false;

    fn kit(&self) -> &HttpKit {
        &self.kit
    }

    fn id_char(c: char) -> bool {
        c.is_ascii_digit()
    }

    fn prepare_member(&self, contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
        mapping::prepare(contact)
    }

    async fn find(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        let url = self.kit.url(&format!("lists/{}/segments", self.list_id));
        let mut offset = 0usize;
        loop {
            let query = [
                ("type", "static".to_string()),
                ("count", PAGE_COUNT.to_string()),
                ("offset", offset.to_string()),
                (
                    "fields",
                    "segments.id,segments.name,total_items".to_string(),
                ),
            ];
            let body = self
                .send("list segments", reqwest::Method::GET, &url, &query, None)
                .await?;
            let page: SegmentPage = self.kit.parse_json("list segments", &body)?;
            if let Some(s) = page.segments.iter().find(|s| s.name == name) {
                return Ok(Some(s.id.to_string()));
            }
            let total = page.total_items.unwrap_or(0);
            match next_offset(offset, page.segments.len(), total) {
                Some(next) => offset = next,
                None => return Ok(None),
            }
        }
    }

    async fn create(&self, name: &str) -> Result<String, ConnectorError> {
        let url = self.kit.url(&format!("lists/{}/segments", self.list_id));
        let body = json!({"name": name, "static_segment": []});
        let reply = self
            .send(
                "create segment",
                reqwest::Method::POST,
                &url,
                &[],
                Some(&body),
            )
            .await?;
        let created: SegmentEntry = self.kit.parse_json("create segment", &reply)?;
        Ok(created.id.to_string())
    }

    /// Members are addressed by the segment's URL under the configured list.
    fn members_at(&self, audience: &AudienceRef) -> Result<String, ConnectorError> {
        let id = self.checked_id(audience)?;
        Ok(self
            .kit
            .url(&format!("lists/{}/segments/{id}", self.list_id)))
    }

    async fn add_chunk(
        &self,
        segment_url: &str,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let mut outcome = BatchOutcome::default();
        let chunk = Self::group(members, &mut outcome);
        if !chunk.keys.is_empty() {
            let list_url = self.kit.url(&format!("lists/{}", self.list_id));
            let subscribe: Vec<Value> = chunk
                .keys
                .iter()
                .map(|e| json!({"email_address": e, "status": "subscribed"}))
                .collect();
            let body = json!({"members": subscribe, "update_existing": false});
            let reply = self
                .send(
                    "subscribe members",
                    reqwest::Method::POST,
                    &list_url,
                    &[],
                    Some(&body),
                )
                .await?;
            let sent = chunk.keys.len();
            let parsed: BatchSubscribeReply =
                self.acknowledged("subscribe members", &reply, |v| {
                    crate::ack::mailchimp_subscribe(v, sent)
                })?;
            let mut refused = std::collections::HashSet::new();
            for e in parsed.errors.iter().filter(|e| !is_already_member(e)) {
                let reason = format!("not added to the list: {}", e.error);
                if chunk.reject(&e.email_address, &reason, &mut outcome) {
                    refused.insert(e.email_address.trim().to_lowercase());
                } else {
                    tracing::warn!(destination = %self.name, error = %e.error, "Mailchimp reported an error for an address we did not send");
                }
            }
            let to_add: Vec<&String> = chunk
                .keys
                .iter()
                .filter(|e| !refused.contains(*e))
                .collect();
            if !to_add.is_empty() {
                let body = json!({"members_to_add": to_add});
                let reply = self
                    .send(
                        "add to segment",
                        reqwest::Method::POST,
                        segment_url,
                        &[],
                        Some(&body),
                    )
                    .await?;
                let sent = to_add.len();
                let parsed: SegmentReply = self.acknowledged("add to segment", &reply, |v| {
                    crate::ack::mailchimp_segment(v, false, sent)
                })?;
                for e in &parsed.errors {
                    let reason = format!("not added to the segment: {}", e.error);
                    for email in &e.email_addresses {
                        chunk.reject(email, &reason, &mut outcome);
                    }
                }
            }
        }
        outcome.accepted = members.len() - outcome.rejected.len();
        Ok(outcome)
    }

    async fn remove_chunk(
        &self,
        segment_url: &str,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let mut outcome = BatchOutcome::default();
        let chunk = Self::group(members, &mut outcome);
        if !chunk.keys.is_empty() {
            let body = json!({"members_to_remove": chunk.keys});
            let reply = self
                .send(
                    "remove from segment",
                    reqwest::Method::POST,
                    segment_url,
                    &[],
                    Some(&body),
                )
                .await?;
            let sent = chunk.keys.len();
            let parsed: SegmentReply = self.acknowledged("remove from segment", &reply, |v| {
                crate::ack::mailchimp_segment(v, true, sent)
            })?;
            for e in parsed
                .errors
                .iter()
                .filter(|e| !is_already_absent(&e.error))
            {
                let reason = format!("not removed from the segment: {}", e.error);
                for email in &e.email_addresses {
                    chunk.reject(email, &reason, &mut outcome);
                }
            }
        }
        outcome.accepted = members.len() - outcome.rejected.len();
        Ok(outcome)
    }
}
