//! A stateful fake of the Meta Graph API's customer-file custom audiences (v25.0), strict where the real
//! API is strict: token (bearer header or `access_token` parameter), account id, payload shape, every value
//! 64 lowercase hex or `""`, ≤ 10,000 rows per call, `usersreplace` session rules, Meta-shaped error
//! envelopes, and a paged audience list (25 per page). Members are kept per audience, keyed by the EMAIL
//! hash (or `PHONE:<hash>` for phone-only rows).
//!
//! Deliberately hostile: a bad token's error message echoes the token it received, so tests prove the
//! connector redacts it.

use crate::skeleton::identifiers::is_sha256_hex;
use crate::skeleton::lists::{listed, Lists};
use crate::skeleton::{credentials, request_params, FakeServer, Faults, RequestLog};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Ads, creatives and insights (creative rotation and metrics), in their own file.
#[path = "meta_ads.rs"]
mod ads;

pub use ads::{approximate_bounds, FakeAd, FakeInsights, INSIGHTS_PAGE_SIZE};

/// API version prefix the fake serves under.
pub const VERSION_PREFIX: &str = "/v25.0";
/// Audiences per list page (small, so tests exercise paging).
pub const PAGE_SIZE: usize = 25;
/// Row cap per `/users` call.
pub const MAX_ROWS: usize = 10_000;

const HASHED_KEYS: &[&str] = &[
    "EMAIL", "PHONE", "FN", "LN", "FI", "GEN", "DOBY", "DOBM", "DOBD", "CT", "ST", "ZIP", "COUNTRY",
];
const PLAIN_KEYS: &[&str] = &["MADID", "EXTERN_ID"];

/// One audience in the fake.
#[derive(Debug, Clone, Default)]
pub struct FakeAudience {
    /// Graph id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Member keys (EMAIL hash, or `PHONE:<hash>`).
    pub members: BTreeSet<String>,
    replace: Option<ReplaceState>,
}

listed!(FakeAudience);

#[derive(Debug, Clone)]
struct ReplaceState {
    session_id: u64,
    last_seq: u64,
    schema: Vec<String>,
    received: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Inner {
    audiences: Lists<FakeAudience>,
    rejected_emails: HashSet<String>,
    max_rows_seen: usize,
    users_calls: usize,
    /// Every value ever sent to the platform in an add or replace (not removals): what a privacy test
    /// checks nobody without consent appears in. A hash set: a million-member sync adds ten million
    /// values, and the fake's own bookkeeping must not be what a benchmark of the sync measures.
    added_values: HashSet<String>,
    /// Rows received in add or replace calls, duplicates included (a resent batch counts twice).
    added_rows: usize,
    /// Ads, creatives and insights.
    ads: ads::AdsInner,
}

struct MetaState {
    token: String,
    account: String,
    base_url: OnceLock<String>,
    throttle_code: AtomicI64,
    trace: AtomicU64,
    inner: Mutex<Inner>,
}

impl MetaState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn error(
        &self,
        status: StatusCode,
        code: i64,
        subcode: Option<i64>,
        message: &str,
        transient: bool,
    ) -> Response {
        let n = self.trace.fetch_add(1, Ordering::Relaxed);
        let kind = if matches!(code, 100 | 190) {
            "OAuthException"
        } else {
            "FacebookApiException"
        };
        (
            status,
            Json(json!({"error": {
                "message": message,
                "type": kind,
                "code": code,
                "error_subcode": subcode,
                "is_transient": transient,
                "fbtrace_id": format!("FakeTrace{n:06}"),
            }})),
        )
            .into_response()
    }

    fn throttle(&self) -> Response {
        let code = self.throttle_code.load(Ordering::SeqCst);
        let (sub, msg) = if code == 613 {
            (None, "Calls to this api have exceeded the rate limit.")
        } else {
            (
                Some(2446079),
                "There have been too many calls to this ad-account. Wait a bit and try again.",
            )
        };
        self.error(StatusCode::BAD_REQUEST, code, sub, msg, false)
    }

    /// Checks the token; returns the error reply when it is wrong.
    fn check_auth(
        &self,
        headers: &HeaderMap,
        params: &Map<String, Value>,
    ) -> Result<(), Box<Response>> {
        let bearer = credentials(headers, "Bearer ")
            .or_else(|| credentials(headers, "OAuth "))
            .map(str::to_string);
        let param = params
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::to_string);
        let given = bearer.or(param).unwrap_or_default();
        if given.is_empty() {
            return Err(Box::new(self.error(
                StatusCode::BAD_REQUEST,
                104,
                None,
                "An access token is required to request this resource.",
                false,
            )));
        }
        if given != self.token {
            return Err(Box::new(self.error(
                StatusCode::BAD_REQUEST,
                190,
                None,
                &format!("Invalid OAuth access token - Cannot parse access token: {given}"),
                false,
            )));
        }
        Ok(())
    }

    fn missing_object(&self, id: &str, method: &Method) -> Response {
        self.error(
            StatusCode::BAD_REQUEST,
            100,
            Some(33),
            &format!("Unsupported {} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", method.as_str().to_lowercase()),
            false,
        )
    }
}

/// The fake Meta API. Dropping it stops the server.
pub struct FakeMeta {
    server: FakeServer,
    state: Arc<MetaState>,
}

impl std::fmt::Debug for FakeMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMeta")
            .field("base_url", &self.server.base_url())
            .finish_non_exhaustive()
    }
}

struct Req {
    id: String,
    method: Method,
    headers: HeaderMap,
    params: Map<String, Value>,
}

impl FakeMeta {
    /// Starts a fake accepting `token` for ad account `ad_account_id` (`123` or `act_123`).
    pub async fn start(token: &str, ad_account_id: &str) -> std::io::Result<FakeMeta> {
        let digits = ad_account_id.trim_start_matches("act_");
        let state = Arc::new(MetaState {
            token: token.to_string(),
            account: format!("act_{digits}"),
            base_url: OnceLock::new(),
            throttle_code: AtomicI64::new(80003),
            trace: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                audiences: Lists::starting_at(23_850_000_000_001),
                ..Inner::default()
            }),
        });
        let router = Router::new()
            .route("/:id/customaudiences", get(dispatch).post(dispatch))
            .route("/:id/users", axum::routing::post(dispatch).delete(dispatch))
            .route("/:id/usersreplace", axum::routing::post(dispatch))
            .route("/:id", get(ads::audience_node).post(ads::update_ad))
            .route("/:id/insights", get(ads::insights))
            .with_state(state.clone());
        let throttle_state = state.clone();
        let server = FakeServer::start(
            VERSION_PREFIX,
            router,
            Arc::new(move || throttle_state.throttle()),
        )
        .await?;
        let _ = state.base_url.set(server.base_url().to_string());
        Ok(FakeMeta { server, state })
    }

    /// Base URL (`http://127.0.0.1:PORT/v25.0`).
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// Generic fault knobs (429, 500, throttle, delay).
    pub fn faults(&self) -> &Faults {
        self.server.faults()
    }

    /// Requests received.
    pub fn requests(&self) -> &RequestLog {
        self.server.requests()
    }

    /// Which code [`Faults::throttle_next`] answers with: 80003 (default, custom-audience quota) or 613.
    pub fn set_throttle_code(&self, code: i64) {
        self.state.throttle_code.store(code, Ordering::SeqCst);
    }

    /// Creates audiences directly (as if made in Ads Manager); returns their ids.
    pub fn seed_audiences<I, S>(&self, names: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.state.lock().audiences.seed(names)
    }

    /// Puts member keys into an audience directly (e.g. people added by hand before adoption).
    pub fn seed_members<I: IntoIterator<Item = String>>(&self, audience_id: &str, keys: I) {
        self.state.lock().audiences.seed_members(audience_id, keys);
    }

    /// All audiences.
    pub fn audiences(&self) -> Vec<FakeAudience> {
        self.state.lock().audiences.snapshot()
    }

    /// The id of the (first) audience with this name.
    pub fn audience_id(&self, name: &str) -> Option<String> {
        self.state.lock().audiences.id_of(name)
    }

    /// Current member keys of an audience (EMAIL hashes, `PHONE:<hash>` for phone-only rows).
    pub fn members(&self, audience_id: &str) -> BTreeSet<String> {
        self.state.lock().audiences.members_of(audience_id)
    }

    /// Every identifier value ever received in an add or replace call (removals excluded).
    pub fn added_values(&self) -> BTreeSet<String> {
        self.state.lock().added_values.iter().cloned().collect()
    }

    /// Rows whose EMAIL hash is in `hashes` are reported as invalid entries (and not stored).
    pub fn reject_emails<I: IntoIterator<Item = String>>(&self, hashes: I) {
        self.state.lock().rejected_emails.extend(hashes);
    }

    /// Rows received in add or replace calls, counting a resent batch twice.
    pub fn added_rows(&self) -> usize {
        self.state.lock().added_rows
    }

    /// Stops rejecting rows: the platform accepts every valid row again.
    pub fn accept_all_emails(&self) {
        self.state.lock().rejected_emails.clear();
    }

    /// The largest row count seen in one `/users` or `/usersreplace` call.
    pub fn max_rows_per_call(&self) -> usize {
        self.state.lock().max_rows_seen
    }

    /// Number of accepted `/users` and `/usersreplace` calls.
    pub fn users_calls(&self) -> usize {
        self.state.lock().users_calls
    }
}

async fn dispatch(
    State(st): State<Arc<MetaState>>,
    Path(id): Path<String>,
    method: Method,
    uri: axum::http::Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let params = match request_params(query.as_deref(), ct.as_deref(), &body) {
        Ok(p) => p,
        Err(e) => {
            return st.error(
                StatusCode::BAD_REQUEST,
                100,
                None,
                &format!("(#100) {e}"),
                false,
            )
        }
    };
    let req = Req {
        id,
        method,
        headers,
        params,
    };
    if let Err(resp) = st.check_auth(&req.headers, &req.params) {
        return *resp;
    }
    let path = uri.path();
    if path.ends_with("/customaudiences") {
        if req.id != st.account {
            return st.missing_object(&req.id, &req.method);
        }
        if req.method == Method::GET {
            list_audiences(&st, &req)
        } else {
            create_audience(&st, &req)
        }
    } else if path.ends_with("/usersreplace") {
        users(&st, &req, Op::Replace)
    } else if req.method == Method::DELETE {
        users(&st, &req, Op::Remove)
    } else {
        users(&st, &req, Op::Add)
    }
}

fn param_str<'a>(req: &'a Req, key: &str) -> Option<&'a str> {
    req.params.get(key).and_then(Value::as_str)
}

fn list_audiences(st: &MetaState, req: &Req) -> Response {
    let fields: Vec<&str> = param_str(req, "fields")
        .unwrap_or("id")
        .split(',')
        .map(str::trim)
        .collect();
    let limit = param_str(req, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(PAGE_SIZE)
        .clamp(1, PAGE_SIZE);
    let start = match param_str(req, "after") {
        None => 0,
        Some(c) => match c
            .strip_prefix("cursor-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => {
                return st.error(
                    StatusCode::BAD_REQUEST,
                    100,
                    None,
                    "(#100) Invalid cursor",
                    false,
                )
            }
        },
    };
    let inner = st.lock();
    let total = inner.audiences.len();
    let end = (start + limit).min(total);
    let data: Vec<Value> = inner.audiences[start.min(total)..end]
        .iter()
        .map(|a| {
            let mut o = Map::new();
            o.insert("id".into(), json!(a.id));
            if fields.contains(&"name") {
                o.insert("name".into(), json!(a.name));
            }
            if fields.contains(&"description") {
                o.insert("description".into(), json!(a.description));
            }
            Value::Object(o)
        })
        .collect();
    let mut paging =
        json!({"cursors": {"before": format!("cursor-{start}"), "after": format!("cursor-{end}")}});
    if end < total {
        let base = st.base_url.get().cloned().unwrap_or_default();
        paging["next"] = json!(format!(
            "{base}/{}/customaudiences?fields={}&limit={limit}&after=cursor-{end}&access_token={}",
            st.account,
            fields.join(","),
            st.token
        ));
    }
    Json(json!({"data": data, "paging": paging})).into_response()
}

fn create_audience(st: &MetaState, req: &Req) -> Response {
    let name = param_str(req, "name")
        .unwrap_or_default()
        .trim()
        .to_string();
    if name.is_empty() {
        return st.error(
            StatusCode::BAD_REQUEST,
            100,
            None,
            "(#100) The parameter name is required",
            false,
        );
    }
    if param_str(req, "subtype") != Some("CUSTOM") {
        return st.error(
            StatusCode::BAD_REQUEST,
            100,
            None,
            "(#100) subtype must be CUSTOM for customer-file audiences",
            false,
        );
    }
    let source = param_str(req, "customer_file_source");
    if !matches!(
        source,
        Some("USER_PROVIDED_ONLY" | "PARTNER_PROVIDED_ONLY" | "BOTH_USER_AND_PARTNER_PROVIDED")
    ) {
        return st.error(
            StatusCode::BAD_REQUEST,
            100,
            Some(1870057),
            "(#100) customer_file_source is required",
            false,
        );
    }
    let mut inner = st.lock();
    if inner.audiences.len() >= 500 {
        return st.error(
            StatusCode::BAD_REQUEST,
            2654,
            Some(1713094),
            "Too many customer-file audiences on this account",
            false,
        );
    }
    let id = inner.audiences.mint_id();
    inner.audiences.push(FakeAudience {
        id: id.clone(),
        name,
        description: param_str(req, "description")
            .unwrap_or_default()
            .to_string(),
        ..FakeAudience::default()
    });
    Json(json!({"id": id})).into_response()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Replace,
}

/// The hashes of every normalised value of Meta's closed-domain keys (COUNTRY lower-case ISO alpha-2,
/// GEN `m`/`f`, DOBY 1900-2100, DOBM `01`-`12`, DOBD `01`-`31`): a hash outside them is a wrongly
/// normalised value (`uk`, `female`, `1`) that could never match, and this fake refuses it.
fn closed_domain(key: &str) -> Option<&'static std::collections::HashSet<String>> {
    use std::collections::HashSet;
    use std::sync::OnceLock;
    fn hashes(values: impl IntoIterator<Item = String>) -> HashSet<String> {
        values
            .into_iter()
            .map(|v| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(v.as_bytes())))
            .collect()
    }
    static COUNTRY: OnceLock<HashSet<String>> = OnceLock::new();
    static GEN: OnceLock<HashSet<String>> = OnceLock::new();
    static DOBY: OnceLock<HashSet<String>> = OnceLock::new();
    static DOBM: OnceLock<HashSet<String>> = OnceLock::new();
    static DOBD: OnceLock<HashSet<String>> = OnceLock::new();
    Some(match key {
        "COUNTRY" => COUNTRY.get_or_init(|| {
            hashes(
                celes::Country::get_countries()
                    .iter()
                    .map(|c| c.alpha2.to_ascii_lowercase()),
            )
        }),
        "GEN" => GEN.get_or_init(|| hashes(["m".to_string(), "f".to_string()])),
        "DOBY" => DOBY.get_or_init(|| hashes((1900..=2100).map(|y| format!("{y:04}")))),
        "DOBM" => DOBM.get_or_init(|| hashes((1..=12).map(|m| format!("{m:02}")))),
        "DOBD" => DOBD.get_or_init(|| hashes((1..=31).map(|d| format!("{d:02}")))),
        _ => return None,
    })
}

/// Parses a JSON-valued parameter given as a JSON string (form) or inline (JSON body).
fn json_param(req: &Req, key: &str) -> Option<Result<Value, String>> {
    req.params.get(key).map(|v| match v {
        Value::String(s) => {
            serde_json::from_str(s).map_err(|e| format!("{key} is not valid JSON: {e}"))
        }
        other => Ok(other.clone()),
    })
}

fn users(st: &MetaState, req: &Req, op: Op) -> Response {
    let bad = |msg: String| {
        st.error(
            StatusCode::BAD_REQUEST,
            100,
            None,
            &format!("(#100) {msg}"),
            false,
        )
    };
    let mut payload = match json_param(req, "payload") {
        None => return bad("The parameter payload is required".into()),
        Some(Err(e)) => return bad(e),
        Some(Ok(p)) => p,
    };
    let schema: Vec<String> = match payload.get("schema") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if !a.is_empty() => {
            match a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
            {
                Some(s) => s,
                None => return bad("schema must be a list of strings".into()),
            }
        }
        _ => return bad("payload.schema is required".into()),
    };
    let mut seen = HashSet::new();
    for k in &schema {
        let base = k.strip_suffix("_SHA256").unwrap_or(k);
        if !(HASHED_KEYS.contains(&base) || PLAIN_KEYS.contains(&k.as_str()))
            || !seen.insert(k.clone())
        {
            return bad(format!("Invalid schema key {k}"));
        }
    }
    // Taken out of the parsed payload so its cells move into the rows instead of being copied.
    let data = match payload.get_mut("data").map(Value::take) {
        Some(Value::Array(d)) if !d.is_empty() => d,
        _ => return bad("payload.data must be a non-empty array".into()),
    };
    if data.len() > MAX_ROWS {
        return st.error(
            StatusCode::BAD_REQUEST,
            100,
            Some(1870131),
            &format!(
                "(#100) Too many users in the payload: {} rows, at most {MAX_ROWS} per request",
                data.len()
            ),
            false,
        );
    }
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(data.len());
    for (i, row) in data.into_iter().enumerate() {
        let cells: Vec<String> = match row {
            Value::Array(c) if c.len() == schema.len() => match c
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
            {
                Some(c) => c,
                None => return bad(format!("row {i}: values must be strings")),
            },
            Value::String(s) if schema.len() == 1 => vec![s],
            _ => {
                return bad(format!(
                    "row {i} does not match the schema ({} columns)",
                    schema.len()
                ))
            }
        };
        for (k, v) in schema.iter().zip(&cells) {
            let hashed = !PLAIN_KEYS.contains(&k.as_str());
            if hashed && !v.is_empty() && !is_sha256_hex(v) {
                return bad(format!(
                    "row {i}: {k} must be a SHA-256 hash (64 lowercase hex) or empty"
                ));
            }
            if let Some(domain) = closed_domain(k) {
                if !v.is_empty() && !domain.contains(v.as_str()) {
                    return bad(format!(
                        "row {i}: {k} is not the hash of a normalised {k} value (Meta's key table: \
                         COUNTRY lower-case ISO alpha-2, GEN m/f, DOBY YYYY, DOBM MM, DOBD DD)"
                    ));
                }
            }
        }
        rows.push(cells);
    }
    let session = match (op, json_param(req, "session")) {
        (_, Some(Err(e))) => return bad(e),
        (Op::Replace, None) => return bad("session is required for usersreplace".into()),
        (_, Some(Ok(s))) => Some(s),
        (_, None) => None,
    };

    let col = |name: &str| {
        schema
            .iter()
            .position(|k| k == name || *k == format!("{name}_SHA256"))
    };
    let (email_col, phone_col) = (col("EMAIL"), col("PHONE"));
    let mut inner = st.lock();
    let rejected_emails = inner.rejected_emails.clone();
    let Some(aud_pos) = inner.audiences.iter().position(|a| a.id == req.id) else {
        drop(inner);
        return st.missing_object(&req.id, &req.method);
    };
    inner.max_rows_seen = inner.max_rows_seen.max(rows.len());
    if !matches!(op, Op::Remove) {
        inner.added_rows += rows.len();
        for r in &rows {
            inner
                .added_values
                .extend(r.iter().filter(|c| !c.is_empty()).cloned());
        }
    }

    let mut samples = Map::new();
    let mut keys = Vec::new();
    for r in &rows {
        let email = email_col.map(|c| r[c].as_str()).filter(|s| !s.is_empty());
        let phone = phone_col.map(|c| r[c].as_str()).filter(|s| !s.is_empty());
        if r.iter().all(String::is_empty) {
            samples.insert(
                format!("row{}", keys.len() + samples.len()),
                json!("Empty row"),
            );
            continue;
        }
        if let Some(e) = email {
            if rejected_emails.contains(e) {
                samples.insert(e.to_string(), json!("Invalid EMAIL"));
                continue;
            }
        }
        match (email, phone) {
            (Some(e), _) => keys.push(e.to_string()),
            (None, Some(p)) => keys.push(format!("PHONE:{p}")),
            (None, None) => keys.push(
                r.iter()
                    .find(|c| !c.is_empty())
                    .cloned()
                    .unwrap_or_default(),
            ),
        }
    }
    let audience = &mut inner.audiences[aud_pos];
    let session_id = session
        .as_ref()
        .and_then(|s| s.get("session_id"))
        .and_then(Value::as_u64);
    match op {
        Op::Add | Op::Remove => {
            if audience.replace.is_some() {
                drop(inner);
                return st.error(
                    StatusCode::BAD_REQUEST,
                    2650,
                    Some(1870145),
                    "A replace operation is in progress on this audience; retry later.",
                    true,
                );
            }
            for k in keys.iter() {
                if op == Op::Add {
                    audience.members.insert(k.clone());
                } else {
                    audience.members.remove(k);
                }
            }
        }
        Op::Replace => {
            let s = session.clone().unwrap_or_default();
            let (Some(sid), Some(seq)) = (session_id, s.get("batch_seq").and_then(Value::as_u64))
            else {
                drop(inner);
                return bad("session needs session_id and batch_seq".into());
            };
            let last = s
                .get("last_batch_flag")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            match &mut audience.replace {
                Some(r) if r.session_id == sid => {
                    if seq != r.last_seq + 1 {
                        let expected = r.last_seq + 1;
                        drop(inner);
                        return st.error(
                            StatusCode::BAD_REQUEST,
                            2650,
                            Some(1870148),
                            &format!("batch_seq {seq} out of order, expected {expected}"),
                            false,
                        );
                    }
                    if r.schema != schema {
                        drop(inner);
                        return st.error(
                            StatusCode::BAD_REQUEST,
                            2650,
                            Some(1870149),
                            "schema changed within the replace session",
                            false,
                        );
                    }
                    r.last_seq = seq;
                    r.received.extend(keys.iter().cloned());
                }
                Some(_) => {
                    drop(inner);
                    return st.error(
                        StatusCode::BAD_REQUEST,
                        2650,
                        Some(1870145),
                        "Another replace session is in progress; retry later.",
                        true,
                    );
                }
                None => {
                    if seq != 1 {
                        drop(inner);
                        return st.error(
                            StatusCode::BAD_REQUEST,
                            2650,
                            Some(1870147),
                            "The first batch_seq of a replace session must be 1",
                            false,
                        );
                    }
                    audience.replace = Some(ReplaceState {
                        session_id: sid,
                        last_seq: 1,
                        schema: schema.clone(),
                        received: keys.iter().cloned().collect(),
                    });
                }
            }
            if last {
                if let Some(r) = audience.replace.take() {
                    audience.members = r.received;
                }
            }
        }
    }
    inner.users_calls += 1;
    let audience_id = req.id.clone();
    drop(inner);
    Json(json!({
        "audience_id": audience_id,
        "session_id": session_id.map(|s| s.to_string()).unwrap_or_else(|| "0".into()),
        "num_received": rows.len(),
        "num_invalid_entries": samples.len(),
        "invalid_entry_samples": samples,
    }))
    .into_response()
}
