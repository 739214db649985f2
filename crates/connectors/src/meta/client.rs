//! The Meta destination: audience lookup/creation, batched add/remove/replace over the HTTP kit.

use super::config::MetaConfig;
use super::mapping;
use crate::common;
use crate::error::{ConfigError, ConnectorError};
use crate::http::{
    default_classify, next_cursor, Auth, HttpKit, HttpStatsSnapshot, ResponsePolicy, Verdict,
};
use crate::model::{
    AudienceRef, BatchOutcome, Channel, Contact, DestinationLimits, PreparedMember, Rejection,
    ReplaceSession,
};
use crate::secret::SecretResolver;
use crate::traits::AudienceDestination;
use async_trait::async_trait;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Creative swap (`CreativeSwapper`), a child module so it shares this client's kit, token and policy.
#[path = "creative.rs"]
mod creative;
/// Daily insights (`MetricsSource`), a child module for the same reason.
#[path = "metrics.rs"]
mod metrics;

pub use metrics::DEFAULT_PURCHASE_ACTION_TYPES;

/// Meta accepts at most this many rows per `/users` or `/usersreplace` call.
pub const MAX_ROWS: usize = 10_000;
/// Meta needs about this many matched people before an audience serves.
pub const MIN_AUDIENCE: usize = 100;
/// The content type of a form body, which reqwest's `.form()` would set.
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
/// Audiences requested per list page.
const PAGE_LIMIT: usize = 100;

/// A configured Meta ad account.
#[derive(Debug)]
pub struct MetaDestination {
    name: String,
    account: String,
    kit: HttpKit,
    policy: MetaPolicy,
    rps: f64,
    batch: usize,
    /// `action_type`s whose `actions` / `action_values` entries are conversions and revenue: the first
    /// present in a row counts (the configured one alone, or [`DEFAULT_PURCHASE_ACTION_TYPES`]).
    purchase_action_types: Vec<String>,
}

/// Reads Meta's JSON error envelope: throttling and transient codes are retried, 190/102 are auth
/// failures, the rest fail with Meta's own message.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetaPolicy;

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: MetaError,
}

#[derive(Debug, Deserialize)]
struct MetaError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    is_transient: Option<bool>,
}

/// Codes Meta uses for rate limiting (platforms.md): app (4), user (17), calls/QPS (613), and the
/// business-use-case family (80000–80014, e.g. 80003 custom audiences, 80004 ads management).
fn is_throttle_code(code: i64) -> bool {
    matches!(code, 4 | 17 | 32 | 613) || (80000..=80014).contains(&code)
}

/// The longest `estimated_time_to_regain_access` (minutes) in `X-Business-Use-Case-Usage`.
fn regain_access_hint(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get("x-business-use-case-usage")?.to_str().ok()?;
    let parsed: HashMap<String, Vec<Value>> = serde_json::from_str(raw).ok()?;
    let minutes = parsed
        .values()
        .flatten()
        .filter_map(|e| {
            e.get("estimated_time_to_regain_access")
                .and_then(Value::as_u64)
        })
        .max()?;
    (minutes > 0).then(|| Duration::from_secs(minutes * 60))
}

impl ResponsePolicy for MetaPolicy {
    fn classify(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if status.is_success() {
            return Verdict::Success;
        }
        let Ok(env) = serde_json::from_slice::<ErrorEnvelope>(body) else {
            return default_classify(status, headers, body);
        };
        let e = env.error;
        let code = e.code.unwrap_or_default();
        let reason = match e.error_subcode {
            Some(sub) => format!("(#{code}/{sub}) {}", e.message),
            None => format!("(#{code}) {}", e.message),
        };
        if matches!(code, 190 | 102) {
            return Verdict::Unauthorized { reason };
        }
        if is_throttle_code(code) {
            let after = regain_access_hint(headers).or_else(|| crate::http::retry_after(headers));
            return Verdict::Retry {
                after,
                throttled: true,
                reason,
            };
        }
        // 1/2 = unknown/service error; 2650/1870145 = replace in progress, retry later.
        if matches!(code, 1 | 2)
            || e.is_transient == Some(true)
            || (code == 2650 && e.error_subcode == Some(1870145))
        {
            return Verdict::Retry {
                after: crate::http::retry_after(headers),
                throttled: false,
                reason,
            };
        }
        match default_classify(status, headers, body) {
            Verdict::Retry {
                after, throttled, ..
            } => Verdict::Retry {
                after,
                throttled,
                reason,
            },
            _ => Verdict::Fail {
                code: Some(code),
                reason,
            },
        }
    }
}

#[derive(Debug, Deserialize)]
struct AudiencePage {
    #[serde(default)]
    data: Vec<AudienceEntry>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
struct AudienceEntry {
    id: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
struct Paging {
    #[serde(default)]
    cursors: Option<Cursors>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Cursors {
    #[serde(default)]
    after: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Created {
    id: String,
}

#[derive(Clone, Copy)]
enum UsersOp {
    Add,
    Remove,
    Replace,
}

impl UsersOp {
    fn label(self) -> &'static str {
        match self {
            UsersOp::Add => "add members",
            UsersOp::Remove => "remove members",
            UsersOp::Replace => "replace members",
        }
    }
}

impl MetaDestination {
    /// Builds the destination from its config, resolving the token.
    pub fn from_config(
        name: &str,
        config: MetaConfig,
        secrets: &SecretResolver,
    ) -> Result<Self, ConfigError> {
        let account = config.account_path().ok_or_else(|| ConfigError::Invalid {
            destination: name.to_string(),
            key: "ad_account_id".into(),
            message: "expected `act_<digits>` or `<digits>`".into(),
        })?;
        let token = common::resolve_secret(name, "access_token", &config.access_token, secrets)?;
        let settings = config.http_settings();
        let kit = HttpKit::for_destination(name, &settings, &[&token])?
            .with_base_url(&config.base_url)
            .with_auth(Auth::static_bearer(token));
        Ok(MetaDestination {
            name: name.to_string(),
            account,
            kit,
            policy: MetaPolicy,
            rps: settings.requests_per_second.unwrap_or(10.0),
            batch: config.batch_size.unwrap_or(MAX_ROWS).clamp(1, MAX_ROWS),
            purchase_action_types: match config
                .purchase_action_type
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                Some(t) => vec![t.to_string()],
                None => DEFAULT_PURCHASE_ACTION_TYPES.map(String::from).to_vec(),
            },
        })
    }

    async fn find_audience(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        let url = self.kit.url(&format!("{}/customaudiences", self.account));
        let mut after: Option<String> = None;
        let mut pages = 0usize;
        loop {
            pages += 1;
            let cursor = after.clone();
            let page: AudiencePage = self
                .kit
                .send_json("list audiences", &self.policy, |c| {
                    let mut query = vec![
                        ("fields", "id,name".to_string()),
                        ("limit", PAGE_LIMIT.to_string()),
                    ];
                    if let Some(a) = &cursor {
                        query.push(("after", a.clone()));
                    }
                    c.get(&url).query(&query)
                })
                .await?;
            let matches: Vec<&AudienceEntry> =
                page.data.iter().filter(|a| a.name == name).collect();
            if let Some(first) = matches.first() {
                if matches.len() > 1 {
                    tracing::warn!(destination = %self.name, audience = name, "several audiences share this name; adopting the first");
                }
                return Ok(Some(first.id.clone()));
            }
            let paging = page.paging.unwrap_or(Paging {
                cursors: None,
                next: None,
            });
            let named = paging.next.and(paging.cursors).and_then(|c| c.after);
            match next_cursor(named, page.data.is_empty(), after.as_ref()) {
                Some(c) => after = Some(c),
                None => {
                    tracing::debug!(destination = %self.name, pages, "audience list exhausted");
                    return Ok(None);
                }
            }
        }
    }

    async fn create_audience(
        &self,
        name: &str,
        description: &str,
    ) -> Result<String, ConnectorError> {
        let url = self.kit.url(&format!("{}/customaudiences", self.account));
        let form = [
            ("name", name),
            ("subtype", "CUSTOM"),
            ("description", description),
            ("customer_file_source", "USER_PROVIDED_ONLY"),
        ];
        let created: Created = self
            .kit
            .send_json("create audience", &self.policy, |c| {
                c.post(&url).form(&form)
            })
            .await?;
        Ok(created.id)
    }

    /// Sends one chunk (≤ MAX_ROWS) and maps the reply to an outcome.
    async fn send_chunk(
        &self,
        op: UsersOp,
        audience: &AudienceRef,
        chunk: &[PreparedMember],
        session: Option<Value>,
    ) -> Result<BatchOutcome, ConnectorError> {
        let mut outcome = BatchOutcome::default();
        let mut rows = Vec::with_capacity(chunk.len());
        let mut row_owner = Vec::with_capacity(chunk.len());
        for m in chunk {
            match mapping::row(&m.payload) {
                Some(r) => {
                    rows.push(r);
                    row_owner.push(m);
                }
                None => outcome.rejected.push(Rejection {
                    customer_id: m.customer_id.clone(),
                    reason: "stored payload is not a Meta customer-file row".into(),
                }),
            }
        }
        if rows.is_empty() {
            return Ok(outcome);
        }
        let body = bytes::Bytes::from(users_form(&rows, session.as_ref()));
        let (path, label) = match op {
            UsersOp::Replace => (format!("{}/usersreplace", audience.remote_id), op.label()),
            _ => (format!("{}/users", audience.remote_id), op.label()),
        };
        let url = self.kit.url(&path);
        let reply = self
            .kit
            .send_with_retry(label, &self.policy, |c| {
                let req = match op {
                    UsersOp::Remove => c.delete(&url),
                    _ => c.post(&url),
                };
                req.header(CONTENT_TYPE, FORM_CONTENT_TYPE)
                    .body(body.clone())
            })
            .await?;
        let parsed: Value = self.kit.parse_json(label, &reply.body)?;
        // Only Meta's own count is an acknowledgement: a 200 with `{}` or an `error` is not.
        let invalid = crate::ack::meta_users(&parsed, rows.len())
            .map_err(|why| self.kit.not_acknowledged(label, &why, &reply.body))?
            as usize;
        let before = outcome.rejected.len();
        if invalid > 0 {
            for (value, reason) in sample_entries(parsed.get("invalid_entry_samples")) {
                if let Some(pos) = rows
                    .iter()
                    .position(|r| r.iter().any(|cell| !cell.is_empty() && *cell == value))
                {
                    let cid = &row_owner[pos].customer_id;
                    if !outcome.rejected.iter().any(|r| &r.customer_id == cid) {
                        outcome.rejected.push(Rejection {
                            customer_id: cid.clone(),
                            reason,
                        });
                    }
                }
            }
            let attributed = outcome.rejected.len() - before;
            if attributed < invalid {
                // Meta counted invalid rows it did not name: which of the rest it took is unknown, so
                // none of them is recorded as held; they are sent again next run.
                tracing::warn!(destination = %self.name, invalid, attributed, "Meta reported invalid rows it did not sample; the rest of the batch is not recorded");
                let reason = format!(
                    "Meta counted {invalid} invalid rows in this batch but named only {attributed}; not recorded as held, sent again next run"
                );
                for m in &row_owner {
                    if !outcome
                        .rejected
                        .iter()
                        .any(|r| r.customer_id == m.customer_id)
                    {
                        outcome.rejected.push(Rejection {
                            customer_id: m.customer_id.clone(),
                            reason: reason.clone(),
                        });
                    }
                }
            }
        }
        outcome.accepted = chunk.len() - outcome.rejected.len();
        Ok(outcome)
    }

    async fn users(
        &self,
        op: UsersOp,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        common::in_chunks(members, self.batch, |chunk| {
            self.send_chunk(op, audience, chunk, None)
        })
        .await
    }
}

/// The form body of a `/users` or `/usersreplace` call (`payload`, and `session` for a replace), the
/// way the SDK sends it: each parameter's JSON, form-urlencoded. Built once per chunk, before the first
/// attempt, into one buffer sized for it (a 10,000-row payload is about 4.7 MiB once encoded).
///
/// The payload's JSON, `{"schema":[...],"data":[[...],...]}`, is written already encoded: a cell made
/// only of characters both JSON and form encoding leave alone (every hex hash, and `""`) is copied
/// between encoded quotes, any other cell goes through `serde_json` and `form_urlencoded` as the whole
/// text used to. The bytes are the same as encoding the serialised JSON in one piece
/// (`form_body_is_the_encoded_json_of_the_payload` checks it against that), without writing every hash
/// twice and scanning it twice more.
fn users_form(rows: &[mapping::Row<'_>], session: Option<&Value>) -> Vec<u8> {
    let cells: usize = rows.iter().flatten().map(|c| c.len() + 9).sum();
    let mut out = Vec::with_capacity(cells + rows.len() * 6 + 256);
    out.extend_from_slice(b"payload=");
    push_encoded(&mut out, "{\"schema\":");
    push_json_array(&mut out, &mapping::SCHEMA);
    push_encoded(&mut out, ",\"data\":[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(ENCODED_COMMA);
        }
        push_json_array(&mut out, row);
    }
    push_encoded(&mut out, "]}");
    if let Some(s) = session {
        out.extend_from_slice(b"&session=");
        push_encoded(&mut out, &s.to_string());
    }
    out
}

/// `,` form-urlencoded.
const ENCODED_COMMA: &[u8] = b"%2C";
/// `"` form-urlencoded.
const ENCODED_QUOTE: &[u8] = b"%22";

/// Appends `cells` as a JSON array of strings, form-urlencoded.
fn push_json_array(out: &mut Vec<u8>, cells: &[&str]) {
    out.extend_from_slice(b"%5B");
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(ENCODED_COMMA);
        }
        if cell.bytes().all(passes_both_encodings) {
            out.extend_from_slice(ENCODED_QUOTE);
            out.extend_from_slice(cell.as_bytes());
            out.extend_from_slice(ENCODED_QUOTE);
        } else {
            // `Value`'s `Display` is its compact JSON: a string cannot fail to serialise.
            push_encoded(out, &Value::String((*cell).to_string()).to_string());
        }
    }
    out.extend_from_slice(b"%5D");
}

/// Appends `text` form-urlencoded (`application/x-www-form-urlencoded`, as `url::form_urlencoded`
/// encodes a value).
fn push_encoded(out: &mut Vec<u8>, text: &str) {
    for piece in url::form_urlencoded::byte_serialize(text.as_bytes()) {
        out.extend_from_slice(piece.as_bytes());
    }
}

/// A byte that JSON string escaping and form-urlencoding both leave as it is: ASCII letters, digits
/// and `*-._` (form encoding's unreserved set, none of which JSON escapes).
fn passes_both_encodings(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_')
}
/// Reads `invalid_entry_samples` in the shapes Meta has used: an object `{value: reason}`, or an array of
/// values or rows. Yields (value, reason) pairs; the client attributes them to rows by cell value.
fn sample_entries(samples: Option<&Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match samples {
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let reason = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                out.push((k.clone(), format!("invalid entry: {reason}")));
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => out.push((s.clone(), "invalid entry".into())),
                    Value::Array(cells) => {
                        if let Some(s) = cells
                            .iter()
                            .filter_map(Value::as_str)
                            .find(|s| !s.is_empty())
                        {
                            out.push((s.to_string(), "invalid entry".into()));
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    out
}

#[async_trait]
impl AudienceDestination for MetaDestination {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "meta"
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
        description: &str,
    ) -> Result<AudienceRef, ConnectorError> {
        common::find_or_create(
            &self.name,
            name,
            "audience",
            self.find_audience(name),
            self.create_audience(name, description),
        )
        .await
    }

    async fn add_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.users(UsersOp::Add, audience, members).await
    }

    async fn remove_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.users(UsersOp::Remove, audience, members).await
    }

    fn supports_replace_all(&self) -> bool {
        true
    }

    async fn replace_all(
        &self,
        audience: &AudienceRef,
        session: &mut ReplaceSession,
        members: &[PreparedMember],
        last_batch: bool,
    ) -> Result<BatchOutcome, ConnectorError> {
        if members.is_empty() {
            return Err(ConnectorError::Invalid {
                destination: self.name.clone(),
                message: "usersreplace needs at least one row per batch".into(),
            });
        }
        let chunks: Vec<&[PreparedMember]> = members.chunks(self.batch).collect();
        let mut total = BatchOutcome::default();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = last_batch && i + 1 == chunks.len();
            let s = json!({
                "session_id": session.session_id,
                "batch_seq": session.next_batch_seq,
                "last_batch_flag": last,
                "estimated_num_total": session.estimated_total,
            });
            total.merge(
                self.send_chunk(UsersOp::Replace, audience, chunk, Some(s))
                    .await?,
            );
            // A chunk with no valid row sent nothing, so it used no sequence number.
            if chunk.iter().any(|m| mapping::row(&m.payload).is_some()) {
                session.next_batch_seq += 1;
            }
        }
        Ok(total)
    }

    fn http_stats(&self) -> Option<HttpStatsSnapshot> {
        Some(self.kit.stats())
    }
}

#[cfg(test)]
mod form_tests {
    use super::*;

    /// The body as the SDK builds it: the payload serialised to JSON, then form-urlencoded whole.
    fn encoded_whole(rows: &[mapping::Row<'_>], session: Option<&Value>) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Payload<'a> {
            schema: &'a [&'a str],
            data: &'a [mapping::Row<'a>],
        }
        let payload = serde_json::to_string(&Payload {
            schema: &mapping::SCHEMA,
            data: rows,
        })
        .expect("serialises");
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("payload", &payload);
        if let Some(s) = session {
            form.append_pair("session", &s.to_string());
        }
        form.finish().into_bytes()
    }

    #[test]
    fn form_body_is_the_encoded_json_of_the_payload() {
        let hash = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b";
        let mut odd = [""; mapping::SCHEMA.len()];
        // Cells that need JSON escaping, form encoding, or both.
        let cells = [
            "a\"quote",
            "back\\slash",
            "two words",
            "ünï",
            "tab\there",
            "+&=%",
            "*-._",
            "",
            "\u{1}",
            "/",
            "~",
            "日本",
        ];
        odd.copy_from_slice(&cells);
        let mut hashes = [""; mapping::SCHEMA.len()];
        hashes[0] = hash;
        hashes[5] = hash;
        let session = json!({"session_id": 7, "batch_seq": 1, "last_batch_flag": true});
        let cases: [(&[mapping::Row<'_>], Option<&Value>); 5] = [
            (&[], None),
            (&[hashes], None),
            (&[hashes, [hash; mapping::SCHEMA.len()]], None),
            (&[odd, hashes], None),
            (&[hashes], Some(&session)),
        ];
        for (rows, session) in cases {
            let got = users_form(rows, session);
            assert_eq!(
                String::from_utf8(got).expect("ascii"),
                String::from_utf8(encoded_whole(rows, session)).expect("ascii"),
                "rows {rows:?}, session {session:?}"
            );
        }
    }
}
