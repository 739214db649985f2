//! The TikTok destination: audience lookup, file upload and audience create/update over the HTTP kit.

use super::config::TikTokConfig;
use super::mapping;
use crate::common;
use crate::error::{ConfigError, ConnectorError};
use crate::http::{
    body_excerpt, default_classify, Auth, HttpKit, HttpReply, HttpStatsSnapshot, ResponsePolicy,
    Verdict,
};
use crate::model::{
    AudienceRef, BatchOutcome, Channel, Contact, DestinationLimits, PreparedMember, Rejection,
    ReplaceSession,
};
use crate::secret::SecretResolver;
use crate::traits::AudienceDestination;
use async_trait::async_trait;
use md5::{Digest, Md5};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;

/// Ad enable/disable (`CreativeSwapper`), a child module so it shares this client's kit and token.
#[path = "creative.rs"]
mod creative;
/// Integrated reports (`MetricsSource`), a child module for the same reason.
#[path = "metrics.rs"]
mod metrics;

/// Hashed ids per uploaded file by default (TikTok caps customer files by size; 50,000 lines ≈ 3.2 MB).
pub const DEFAULT_BATCH: usize = 50_000;
/// TikTok needs about this many matched users before a custom audience is usable.
pub const MIN_AUDIENCE: usize = 1_000;
/// Audiences requested per list page (TikTok's maximum).
const PAGE_SIZE: usize = 100;
/// Prefix of the remote id of an audience that does not exist yet: TikTok creates audiences from a file,
/// so the audience is created with the first batch of members.
pub const PENDING_PREFIX: &str = "pending:";

/// Reads TikTok's envelope `{code, message, request_id, data}`: `code != 0` is an error even at HTTP 200.
/// 40100 (too many requests) and 40133 / 50000-range codes are retried; 40104/40105 (missing, bad or
/// revoked token) are credentials errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct TikTokPolicy;

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    data: Value,
}

impl ResponsePolicy for TikTokPolicy {
    fn classify(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if !status.is_success() {
            return default_classify(status, headers, body);
        }
        let Ok(env) = serde_json::from_slice::<Envelope>(body) else {
            return Verdict::Fail {
                code: None,
                reason: format!("not a TikTok envelope: {}", body_excerpt(body)),
            };
        };
        let code = env.code.unwrap_or(-1);
        if code == 0 {
            return Verdict::Success;
        }
        let reason = format!(
            "(code {code}) {}{}",
            env.message,
            env.request_id
                .map(|r| format!(" [request_id {r}]"))
                .unwrap_or_default()
        );
        match code {
            40100 | 40133 => Verdict::Retry {
                after: crate::http::retry_after(headers),
                throttled: true,
                reason,
            },
            40104 | 40105 => Verdict::Unauthorized { reason },
            50000..=51999 => Verdict::Retry {
                after: None,
                throttled: false,
                reason,
            },
            _ => Verdict::Fail {
                code: Some(code),
                reason,
            },
        }
    }
}

/// A configured TikTok advertiser.
#[derive(Debug)]
pub struct TikTokDestination {
    name: String,
    advertiser_id: String,
    kit: HttpKit,
    batch: usize,
    rps: f64,
    /// Ids of audiences created from a pending reference in this process, by name.
    created: Mutex<HashMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct ListData {
    #[serde(default)]
    list: Vec<AudienceEntry>,
    #[serde(default)]
    page_info: Option<PageInfo>,
}

#[derive(Debug, Deserialize)]
struct AudienceEntry {
    custom_audience_id: Value,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
struct PageInfo {
    #[serde(default)]
    total_page: Option<u64>,
}

fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Action {
    Append,
    Remove,
    Replace,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Append => "APPEND",
            Action::Remove => "REMOVE",
            Action::Replace => "REPLACE",
        }
    }
}

impl TikTokDestination {
    /// Builds the destination from its config, resolving the token.
    pub fn from_config(
        name: &str,
        config: TikTokConfig,
        secrets: &SecretResolver,
    ) -> Result<Self, ConfigError> {
        let invalid = common::invalid_key(name);
        let advertiser_id = config.advertiser_id.trim().to_string();
        if advertiser_id.is_empty() || !advertiser_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid("advertiser_id", "expected digits".into()));
        }
        let batch = config.batch_size.unwrap_or(DEFAULT_BATCH);
        if batch == 0 {
            return Err(invalid("batch_size", "must be at least 1".into()));
        }
        let token = common::resolve_secret(name, "access_token", &config.access_token, secrets)?;
        let settings = config.http_settings();
        let kit = HttpKit::for_destination(name, &settings, &[&token])?
            .with_base_url(&config.base_url)
            .with_auth(Auth::static_header("access-token", "", token));
        Ok(TikTokDestination {
            name: name.to_string(),
            advertiser_id,
            kit,
            batch,
            rps: settings.requests_per_second.unwrap_or(5.0),
            created: Mutex::new(HashMap::new()),
        })
    }

    fn data<T: for<'de> Deserialize<'de>>(
        &self,
        operation: &str,
        reply: &HttpReply,
    ) -> Result<T, ConnectorError> {
        let bad = |m: String| {
            self.kit
                .invalid_response(operation, format!("{m}: {}", self.kit.excerpt(&reply.body)))
        };
        let env: Envelope = serde_json::from_slice(&reply.body).map_err(|e| bad(e.to_string()))?;
        serde_json::from_value(env.data).map_err(|e| bad(e.to_string()))
    }

    async fn post_json(
        &self,
        operation: &str,
        path: &str,
        body: &Value,
    ) -> Result<HttpReply, ConnectorError> {
        let url = self.kit.url(path);
        self.kit
            .send_with_retry(operation, &TikTokPolicy, |c| c.post(&url).json(body))
            .await
    }

    async fn find_audience(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        let url = self.kit.url("dmp/custom_audience/list/");
        let mut page = 1u64;
        loop {
            let query = [
                ("advertiser_id", self.advertiser_id.clone()),
                ("page", page.to_string()),
                ("page_size", PAGE_SIZE.to_string()),
            ];
            let reply = self
                .kit
                .send_with_retry("list audiences", &TikTokPolicy, |c| {
                    c.get(&url).query(&query)
                })
                .await?;
            let data: ListData = self.data("list audiences", &reply)?;
            if let Some(found) = data.list.iter().find(|a| a.name == name) {
                return Ok(id_string(&found.custom_audience_id));
            }
            let total = data.page_info.and_then(|p| p.total_page).unwrap_or(0);
            if data.list.is_empty() || page >= total {
                return Ok(None);
            }
            page += 1;
        }
    }

    /// Uploads one customer file (one hash per line) and returns its `file_path`.
    async fn upload(&self, lines: &[&str]) -> Result<String, ConnectorError> {
        let mut file = lines.join("\n");
        file.push('\n');
        let file = file.into_bytes();
        let signature = hex::encode(Md5::digest(&file));
        let url = self.kit.url("dmp/custom_audience/file/upload/");
        let reply = self
            .kit
            .send_with_retry("upload customer file", &TikTokPolicy, |c| {
                let form = reqwest::multipart::Form::new()
                    .text("advertiser_id", self.advertiser_id.clone())
                    .text("calculate_type", mapping::CALCULATE_TYPE)
                    .text("file_signature", signature.clone())
                    .part(
                        "file",
                        reqwest::multipart::Part::bytes(file.clone()).file_name("campaignd.txt"),
                    );
                c.post(&url).multipart(form)
            })
            .await?;
        #[derive(Deserialize)]
        struct Uploaded {
            file_path: String,
        }
        Ok(self
            .data::<Uploaded>("upload customer file", &reply)?
            .file_path)
    }

    async fn create(&self, name: &str, file_path: &str) -> Result<String, ConnectorError> {
        let body = json!({
            "advertiser_id": self.advertiser_id,
            "custom_audience_name": name,
            "file_paths": [file_path],
            "calculate_type": mapping::CALCULATE_TYPE,
        });
        let reply = self
            .post_json("create audience", "dmp/custom_audience/create/", &body)
            .await?;
        #[derive(Deserialize)]
        struct Created {
            custom_audience_id: Value,
        }
        let created: Created = self.data("create audience", &reply)?;
        id_string(&created.custom_audience_id).ok_or_else(|| ConnectorError::InvalidResponse {
            destination: self.name.clone(),
            operation: "create audience".into(),
            message: "no custom_audience_id".into(),
        })
    }

    /// The audience id behind a reference: the id itself, or for a pending reference the audience created
    /// earlier under that name (`None` if it still does not exist).
    async fn resolve(&self, audience: &AudienceRef) -> Result<Option<String>, ConnectorError> {
        let Some(name) = audience.remote_id.strip_prefix(PENDING_PREFIX) else {
            return Ok(Some(audience.remote_id.clone()));
        };
        if let Some(id) = self.created.lock().map_err(|_| self.poisoned())?.get(name) {
            return Ok(Some(id.clone()));
        }
        let found = self.find_audience(name).await?;
        if let Some(id) = &found {
            self.created
                .lock()
                .map_err(|_| self.poisoned())?
                .insert(name.to_string(), id.clone());
        }
        Ok(found)
    }

    fn poisoned(&self) -> ConnectorError {
        ConnectorError::Invalid {
            destination: self.name.clone(),
            message: "internal lock poisoned".into(),
        }
    }

    /// Sends members as files of ≤ `batch` lines; the first file uses `first_action`, the rest `then`.
    async fn change(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
        first_action: Action,
        then: Action,
    ) -> Result<BatchOutcome, ConnectorError> {
        let mut outcome = BatchOutcome::default();
        let mut lines: Vec<&str> = Vec::with_capacity(members.len());
        for m in members {
            match mapping::line(&m.payload) {
                Some(l) => lines.push(l),
                None => outcome.rejected.push(Rejection {
                    customer_id: m.customer_id.clone(),
                    reason: "stored payload is not a TikTok EMAIL_SHA256 line".into(),
                }),
            }
        }
        let mut id = self.resolve(audience).await?;
        for (i, chunk) in lines.chunks(self.batch).enumerate() {
            let action = if i == 0 { first_action } else { then };
            if id.is_none() && matches!(action, Action::Remove) {
                // The audience was never created, so there is nobody to remove.
                continue;
            }
            let path = self.upload(chunk).await?;
            match &id {
                Some(existing) => {
                    let body = json!({
                        "advertiser_id": self.advertiser_id,
                        "custom_audience_id": existing,
                        "action": action.as_str(),
                        "file_paths": [path],
                    });
                    let reply = self
                        .post_json("update audience", "dmp/custom_audience/update/", &body)
                        .await?;
                    // Code 0 alone is not the acknowledgement: `data` names the audience it updated.
                    #[derive(Deserialize)]
                    struct Updated {
                        custom_audience_id: Value,
                    }
                    let updated: Updated = self.data("update audience", &reply)?;
                    if id_string(&updated.custom_audience_id).as_deref() != Some(existing.as_str())
                    {
                        return Err(ConnectorError::InvalidResponse {
                            destination: self.name.clone(),
                            operation: "update audience".into(),
                            message: format!(
                                "not acknowledged: the reply names audience {} instead of {existing}",
                                updated.custom_audience_id
                            ),
                        });
                    }
                }
                None => {
                    let name = audience
                        .remote_id
                        .strip_prefix(PENDING_PREFIX)
                        .unwrap_or(&audience.remote_id);
                    let created = self.create(name, &path).await?;
                    tracing::info!(destination = %self.name, audience = name, remote_id = %created, "created audience with its first file");
                    self.created
                        .lock()
                        .map_err(|_| self.poisoned())?
                        .insert(name.to_string(), created.clone());
                    id = Some(created);
                }
            }
        }
        outcome.accepted = members.len() - outcome.rejected.len();
        Ok(outcome)
    }
}

#[async_trait]
impl AudienceDestination for TikTokDestination {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "tiktok"
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

    /// Finds the audience by name (paging through every audience of the advertiser). A missing audience
    /// is not created here, because TikTok creates audiences from a customer file: the reference is
    /// `pending:<name>` and the first batch of members creates it.
    async fn find_or_create_audience(
        &self,
        name: &str,
        _description: &str,
    ) -> Result<AudienceRef, ConnectorError> {
        if name.trim().is_empty() || name.chars().count() > 128 {
            return Err(ConnectorError::Invalid {
                destination: self.name.clone(),
                message: "audience name must be 1 to 128 characters".into(),
            });
        }
        if let Some(id) = self.find_audience(name).await? {
            tracing::info!(destination = %self.name, audience = name, remote_id = %id, "adopting existing audience");
            return Ok(AudienceRef {
                remote_id: id,
                adopted: true,
            });
        }
        Ok(AudienceRef {
            remote_id: format!("{PENDING_PREFIX}{name}"),
            adopted: false,
        })
    }

    async fn add_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.change(audience, members, Action::Append, Action::Append)
            .await
    }

    async fn remove_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.change(audience, members, Action::Remove, Action::Remove)
            .await
    }

    fn supports_replace_all(&self) -> bool {
        true
    }

    /// The session's first file replaces the audience (`action = REPLACE`), later ones append.
    async fn replace_all(
        &self,
        audience: &AudienceRef,
        session: &mut ReplaceSession,
        members: &[PreparedMember],
        _last_batch: bool,
    ) -> Result<BatchOutcome, ConnectorError> {
        if members.is_empty() {
            return Err(ConnectorError::Invalid {
                destination: self.name.clone(),
                message: "a TikTok replace needs at least one member per batch".into(),
            });
        }
        let first = if session.next_batch_seq <= 1 {
            Action::Replace
        } else {
            Action::Append
        };
        let outcome = self
            .change(audience, members, first, Action::Append)
            .await?;
        session.next_batch_seq += 1;
        Ok(outcome)
    }

    fn http_stats(&self) -> Option<HttpStatsSnapshot> {
        Some(self.kit.stats())
    }
}
