//! The LinkedIn destination: DMP segment lookup/creation and batched user adds/removes over the HTTP kit.

use super::config::LinkedInConfig;
use super::mapping;
use crate::common;
use crate::error::{ConfigError, ConnectorError};
use crate::http::{
    json_request, next_offset, Auth, DefaultPolicy, HttpKit, HttpReply, HttpStatsSnapshot,
    OAuth2RefreshToken,
};
use crate::model::{
    AudienceRef, BatchOutcome, Channel, Contact, DestinationLimits, PreparedMember, Rejection,
};
use crate::secret::SecretResolver;
use crate::traits::AudienceDestination;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// Creative status updates (`CreativeSwapper`), a child module so it shares this client's kit and token.
#[path = "creative.rs"]
mod creative;
/// Ad analytics (`MetricsSource`), a child module for the same reason.
#[path = "metrics.rs"]
mod metrics;

/// Elements per `/users` batch (LinkedIn's documented streaming batch size — check).
pub const MAX_BATCH: usize = 5_000;
/// LinkedIn campaigns need at least this many matched members.
pub const MIN_AUDIENCE: usize = 300;
/// Segments requested per finder page.
const PAGE_COUNT: usize = 100;

/// A configured LinkedIn ad account.
pub struct LinkedInDestination {
    name: String,
    version: String,
    account: String,
    source_platform: String,
    kit: HttpKit,
    batch: usize,
    post_create_delay: Duration,
    rps: f64,
}

impl std::fmt::Debug for LinkedInDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkedInDestination")
            .field("name", &self.name)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct FinderPage {
    #[serde(default)]
    elements: Vec<Segment>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
struct Segment {
    id: Value,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
struct Paging {
    #[serde(default)]
    total: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct BatchReply {
    #[serde(default)]
    elements: Vec<ElementStatus>,
}

#[derive(Debug, Deserialize)]
struct ElementStatus {
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    error: Option<Value>,
}

fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.rsplit(':').next().unwrap_or(s).to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl LinkedInDestination {
    /// Builds the destination from its config, resolving the secrets.
    pub fn from_config(
        name: &str,
        config: LinkedInConfig,
        secrets: &SecretResolver,
    ) -> Result<Self, ConfigError> {
        let invalid = common::invalid_key(name);
        let account = config.account_urn().ok_or_else(|| {
            invalid(
                "ad_account_id",
                "expected digits or urn:li:sponsoredAccount:<digits>".into(),
            )
        })?;
        let v = &config.linkedin_version;
        if v.len() != 6 || !v.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid("linkedin_version", "expected YYYYMM".into()));
        }
        let batch = config.batch_size.unwrap_or(MAX_BATCH);
        if batch == 0 || batch > MAX_BATCH {
            return Err(invalid(
                "batch_size",
                format!("must be between 1 and {MAX_BATCH}"),
            ));
        }
        let client_id = common::resolve_secret(name, "client_id", &config.client_id, secrets)?;
        let client_secret =
            common::resolve_secret(name, "client_secret", &config.client_secret, secrets)?;
        let refresh_token =
            common::resolve_secret(name, "refresh_token", &config.refresh_token, secrets)?;
        let settings = config.http_settings();
        let kit = HttpKit::for_destination(
            name,
            &settings,
            &[&client_secret, &refresh_token, &client_id],
        )?
        .with_base_url(&config.base_url);
        let token = OAuth2RefreshToken::new(
            name,
            kit.client().clone(),
            &config.token_url,
            client_id.expose(),
            Some(client_secret),
            refresh_token,
        )
        .map_err(|e| invalid("token_url", e.to_string()))?
        .with_credentials_in_body();
        let kit = kit.with_auth(Auth::bearer(token));
        Ok(LinkedInDestination {
            name: name.to_string(),
            version: config.linkedin_version.clone(),
            account,
            source_platform: config
                .source_platform
                .clone()
                .unwrap_or_else(|| "LIST_UPLOAD".into()),
            kit,
            batch,
            post_create_delay: Duration::from_millis(config.post_create_delay_ms.unwrap_or(5_000)),
            rps: settings.requests_per_second.unwrap_or(8.0),
        })
    }

    /// Sends one request with LinkedIn's headers (bearer, `LinkedIn-Version`, Rest.li 2.0.0).
    async fn send(
        &self,
        operation: &str,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        restli_method: Option<&str>,
    ) -> Result<HttpReply, ConnectorError> {
        let url = self.kit.url(path);
        self.kit
            .send_with_retry(operation, &DefaultPolicy, |c| {
                let mut req = json_request(c, &method, &url, query, body)
                    .header("LinkedIn-Version", &self.version)
                    .header("X-Restli-Protocol-Version", "2.0.0");
                if let Some(m) = restli_method {
                    req = req.header("X-RestLi-Method", m);
                }
                req
            })
            .await
    }

    async fn find_segment(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        let mut start = 0usize;
        loop {
            let query = [
                ("q", "account".to_string()),
                ("account", self.account.clone()),
                ("start", start.to_string()),
                ("count", PAGE_COUNT.to_string()),
            ];
            let reply = self
                .send(
                    "list DMP segments",
                    reqwest::Method::GET,
                    "dmpSegments",
                    &query,
                    None,
                    None,
                )
                .await?;
            let page: FinderPage = self.kit.parse_json("list DMP segments", &reply.body)?;
            if let Some(found) = page.elements.iter().find(|s| s.name == name) {
                return id_string(&found.id).map(Some).ok_or_else(|| {
                    self.kit
                        .invalid_response("list DMP segments", "segment without an id".into())
                });
            }
            let total = page.paging.and_then(|p| p.total).unwrap_or(0) as usize;
            match next_offset(start, page.elements.len(), total) {
                Some(next) => start = next,
                None => return Ok(None),
            }
        }
    }

    async fn create_segment(&self, name: &str) -> Result<String, ConnectorError> {
        let body = json!({
            "name": name,
            "account": self.account,
            "type": "USER",
            "sourcePlatform": self.source_platform,
            "destinations": [{"destination": "LINKEDIN"}],
        });
        let reply = self
            .send(
                "create DMP segment",
                reqwest::Method::POST,
                "dmpSegments",
                &[],
                Some(&body),
                None,
            )
            .await?;
        let header = |n: &str| {
            reply
                .headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let id = header("x-restli-id")
            .or_else(|| header("x-linkedin-id"))
            .or_else(|| header("location").and_then(|l| l.rsplit('/').next().map(str::to_string)))
            .and_then(|s| id_string(&Value::String(s)))
            .ok_or_else(|| {
                self.kit.invalid_response(
                    "create DMP segment",
                    "no x-restli-id or Location header".into(),
                )
            })?;
        if !self.post_create_delay.is_zero() {
            // LinkedIn: wait 5 seconds after creating a segment before adding users.
            tokio::time::sleep(self.post_create_delay).await;
        }
        Ok(id)
    }

    async fn users(
        &self,
        action: &str,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let mut outcome = BatchOutcome::default();
        let mut elements: Vec<(&PreparedMember, Value)> = Vec::with_capacity(members.len());
        for m in members {
            match mapping::user_ids(&m.payload) {
                Some(ids) => elements.push((m, json!({"action": action, "userIds": ids}))),
                None => outcome.rejected.push(Rejection {
                    customer_id: m.customer_id.clone(),
                    reason: "stored payload is not a LinkedIn SHA256_EMAIL".into(),
                }),
            }
        }
        let path = format!("dmpSegments/{}/users", audience.remote_id);
        let label = if action == "ADD" {
            "add segment users"
        } else {
            "remove segment users"
        };
        for chunk in elements.chunks(self.batch) {
            let body = json!({"elements": chunk.iter().map(|(_, e)| e).collect::<Vec<_>>()});
            let reply = self
                .send(
                    label,
                    reqwest::Method::POST,
                    &path,
                    &[],
                    Some(&body),
                    Some("BATCH_CREATE"),
                )
                .await?;
            let parsed: BatchReply = self.kit.parse_json(label, &reply.body)?;
            // The acknowledgement is one status per element sent; anything else says nothing about
            // which rows LinkedIn took (a 200 with `{}` included), so the batch fails.
            if parsed.elements.len() != chunk.len() {
                return Err(self.kit.invalid_response(
                    label,
                    format!(
                        "not acknowledged: {} element statuses for {} elements sent: {}",
                        parsed.elements.len(),
                        chunk.len(),
                        self.kit.excerpt(&reply.body)
                    ),
                ));
            }
            for ((m, _), st) in chunk.iter().zip(&parsed.elements) {
                let Some(status) = st.status else {
                    outcome.rejected.push(Rejection {
                        customer_id: m.customer_id.clone(),
                        reason: "LinkedIn gave this element no status; sent again next run".into(),
                    });
                    continue;
                };
                if !(200..300).contains(&status) {
                    let message = st
                        .error
                        .as_ref()
                        .and_then(|e| e.get("message").and_then(Value::as_str).map(str::to_string))
                        .unwrap_or_else(|| "rejected".into());
                    outcome.rejected.push(Rejection {
                        customer_id: m.customer_id.clone(),
                        reason: format!("HTTP {status}: {message}"),
                    });
                }
            }
        }
        outcome.accepted = members.len() - outcome.rejected.len();
        Ok(outcome)
    }
}

#[async_trait]
impl AudienceDestination for LinkedInDestination {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "linkedin"
    }

    fn limits(&self) -> DestinationLimits {
        DestinationLimits {
            max_batch: self.batch,
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
        _description: &str,
    ) -> Result<AudienceRef, ConnectorError> {
        common::find_or_create(
            &self.name,
            name,
            "DMP segment",
            self.find_segment(name),
            self.create_segment(name),
        )
        .await
    }

    async fn add_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.users("ADD", audience, members).await
    }

    async fn remove_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.users("REMOVE", audience, members).await
    }

    fn http_stats(&self) -> Option<HttpStatsSnapshot> {
        Some(self.kit.stats())
    }
}
