//! campaignd's own webhook contract (platforms.md "Webhook"): each batch is `POST {url}` with JSON
//! `{"audience", "segment", "action": "add"|"remove", "members": [{"customer_id", "email_sha256",
//! "phone_sha256"}], "run_id", "batch_seq"}`, signed with `X-Campaignd-Signature: sha256=<hex HMAC-SHA256
//! of the body>` and carrying an `Idempotency-Key` derived from audience, action and batch content (not
//! from `batch_seq` or `run_id`), so a resent batch carries the same key and a receiver can drop it.
//! 2xx acknowledges; 429/5xx are retried; 401 fails the call (bad secret); any other 4xx refuses the
//! whole batch and fails the call too (a receiver that refuses everything is a broken integration, not
//! a list of per-member rejections: the contract has no per-member refusal, so no row is recorded as
//! rejected and the sync fails with the receiver's reason).
//!
//! `phone_sha256` is SHA-256 of the E.164 number *with* `+`. `segment` and `run_id` come from
//! [`AudienceDestination::begin_sync`]; without it they are `null`, and `batch_seq` counts per audience
//! within this process.

mod config;
#[cfg(test)]
pub(crate) mod tests;

pub use config::WebhookConfig;

use crate::common;
use crate::error::{ConfigError, ConnectorError};
use crate::http::{DefaultPolicy, HttpKit, HttpStatsSnapshot};
use crate::model::{
    canonical_json, AudienceRef, BatchOutcome, Channel, Contact, DestinationLimits, PreparedMember,
    SyncContext,
};
use crate::secret::{Secret, SecretResolver};
use crate::traits::AudienceDestination;
use async_trait::async_trait;
use campaignd_core::identifiers::{google_phone_input, sha256_hex};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;

/// Signature header name.
pub const SIGNATURE_HEADER: &str = "X-Campaignd-Signature";
/// Idempotency header name.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

#[derive(Debug, Default)]
struct AudienceState {
    run_id: Option<String>,
    segment: Option<String>,
    next_seq: u64,
}

/// A webhook receiver.
#[derive(Debug)]
pub struct WebhookDestination {
    name: String,
    url: String,
    secret: Secret,
    batch_size: usize,
    channel: Channel,
    min_audience_size: usize,
    rps: f64,
    kit: HttpKit,
    state: Mutex<HashMap<String, AudienceState>>,
}

/// HMAC-SHA256 of `body` under `secret`, as the `X-Campaignd-Signature` value (`sha256=<hex>`).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The idempotency key of a batch: SHA-256 of audience, action and the canonical member list.
pub fn idempotency_key(audience: &str, action: &str, members: &[Value]) -> String {
    sha256_hex(&format!(
        "{audience}\n{action}\n{}",
        canonical_json(&Value::Array(members.to_vec()))
    ))
}

impl WebhookDestination {
    /// Builds the destination from its config, resolving the secret.
    pub fn from_config(
        name: &str,
        config: WebhookConfig,
        secrets: &SecretResolver,
    ) -> Result<Self, ConfigError> {
        let invalid = common::invalid_key(name);
        let parsed = url::Url::parse(&config.url).map_err(|e| invalid("url", e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("url", "must be http or https".into()));
        }
        let batch_size = config.batch_size.unwrap_or(1_000);
        if batch_size == 0 {
            return Err(invalid("batch_size", "must be at least 1".into()));
        }
        let secret = common::resolve_secret(name, "secret", &config.secret, secrets)?;
        let settings = config.http_settings();
        let kit = HttpKit::for_destination(name, &settings, &[&secret])?;
        Ok(WebhookDestination {
            name: name.to_string(),
            url: config.url,
            secret,
            batch_size,
            channel: config.channel.unwrap_or(Channel::Ads),
            min_audience_size: config.min_audience_size.unwrap_or(0),
            rps: settings.requests_per_second.unwrap_or(0.0),
            kit,
            state: Mutex::new(HashMap::new()),
        })
    }

    fn next_context(&self, audience: &str) -> (Option<String>, Option<String>, u64) {
        let mut map = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let st = map.entry(audience.to_string()).or_default();
        st.next_seq += 1;
        (st.run_id.clone(), st.segment.clone(), st.next_seq)
    }

    async fn send(
        &self,
        action: &str,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let mut total = BatchOutcome::default();
        for chunk in members.chunks(self.batch_size) {
            let items: Vec<Value> = chunk
                .iter()
                .map(|m| {
                    let mut obj = m.payload.as_object().cloned().unwrap_or_default();
                    obj.insert("customer_id".into(), Value::String(m.customer_id.clone()));
                    Value::Object(obj)
                })
                .collect();
            let key = idempotency_key(&audience.remote_id, action, &items);
            let (run_id, segment, seq) = self.next_context(&audience.remote_id);
            let body = serde_json::to_vec(&json!({
                "audience": audience.remote_id,
                "segment": segment,
                "action": action,
                "members": items,
                "run_id": run_id,
                "batch_seq": seq,
            }))
            .map_err(|e| ConnectorError::Invalid {
                destination: self.name.clone(),
                message: e.to_string(),
            })?;
            let sig = signature(self.secret.expose().as_bytes(), &body);
            let url = self.url.clone();
            // Any error, a whole-batch 4xx included, fails the call: the engine keeps the batch pending.
            self.kit
                .send_with_retry(&format!("{action} members"), &DefaultPolicy, |c| {
                    c.post(&url)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .header(SIGNATURE_HEADER, &sig)
                        .header(IDEMPOTENCY_HEADER, &key)
                        .body(body.clone())
                })
                .await?;
            total.accepted += chunk.len();
        }
        Ok(total)
    }
}

#[async_trait]
impl AudienceDestination for WebhookDestination {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn limits(&self) -> DestinationLimits {
        DestinationLimits {
            max_batch: self.batch_size,
            min_audience_size: self.min_audience_size,
            requests_per_second: self.rps,
        }
    }

    fn channel(&self) -> Channel {
        self.channel
    }

    fn prepare(&self, contact: &Contact) -> Result<PreparedMember, crate::model::NoIdentifier> {
        common::hashed_email_and_phone(contact, google_phone_input, false)
    }

    async fn begin_sync(&self, ctx: &SyncContext) -> Result<(), ConnectorError> {
        let mut map = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let st = map.entry(ctx.audience.remote_id.clone()).or_default();
        st.run_id = Some(ctx.run_id.clone());
        st.segment = Some(ctx.segment.clone());
        st.next_seq = 0;
        Ok(())
    }

    /// A webhook has no remote audience objects: the audience is its name.
    async fn find_or_create_audience(
        &self,
        name: &str,
        _description: &str,
    ) -> Result<AudienceRef, ConnectorError> {
        common::require_audience_name(&self.name, name)?;
        Ok(AudienceRef {
            remote_id: name.to_string(),
            adopted: false,
        })
    }

    async fn add_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.send("add", audience, members).await
    }

    async fn remove_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.send("remove", audience, members).await
    }

    fn http_stats(&self) -> Option<HttpStatsSnapshot> {
        Some(self.kit.stats())
    }
}
