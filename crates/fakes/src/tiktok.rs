//! A stateful fake of the TikTok Marketing API **v1.3** custom-audience (DMP) endpoints, strict where the
//! real API is strict: `Access-Token` header (no `Bearer`), the `{code, message, request_id, data}`
//! envelope with HTTP 200 even for errors, multipart file upload whose `file_signature` must be the MD5 of
//! the file, one 64-lowercase-hex hash per line for `*_SHA256` calculate types, audience names ≤ 128
//! characters, `calculate_type` consistent between creation and updates, and a paged audience list.
//!
//! Request bodies are checked against the OpenAPI files of tiktok/tiktok-business-api-sdk at commit
//! `f809c396520df2d7b201a9ccc5378d822b728ed3` (2026-02-28): `yml_files/dmp_custom_audience_create.yml`
//! (required `advertiser_id`, `custom_audience_name`, `calculate_type`, `file_paths`),
//! `dmp_custom_audience_update.yml` (required `advertiser_id`, `custom_audience_id`; **no
//! `calculate_type`**), `dmp_custom_audience_file_upload.yml` (required `advertiser_id`, `file`,
//! `file_signature`, `calculate_type`), `dmp_custom_audience_get.yml` (`data.list[].audience_details.
//! cover_num`, the audience size) and the SDK model `AdStatusUpdateBody`: a field the spec does not declare
//! is refused with code 40002, like a wrong enum value.
//!
//! Files are processed at once (the real API does it asynchronously); members are the hashes.

// Handlers return the platform's error reply as `Err(Response)`; boxing it would only add noise here.
#![allow(clippy::result_large_err)]

use crate::schema::{field, Shape};
use crate::skeleton::identifiers::is_sha256_hex;
use crate::skeleton::lists::{listed, Lists};
use crate::skeleton::{FakeServer, Faults, RequestLog};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Ads, ad groups and reports (creative rotation and metrics), in their own file.
#[path = "tiktok_ads.rs"]
mod ads;

pub use ads::FakeAdDay;

/// API version prefix the fake serves under.
pub const VERSION_PREFIX: &str = "/open_api/v1.3";
/// Largest `page_size` the list honours.
pub const MAX_PAGE_SIZE: usize = 100;
/// Envelope code for "too many requests".
pub const THROTTLE_CODE: i64 = 40100;
/// Envelope code for a bad or revoked access token.
pub const AUTH_CODE: i64 = 40105;

/// `calculate_type` values (the enum keys of `dmp_custom_audience_create.yml`).
const CALCULATE_TYPES: &[&str] = &[
    "EMAIL_SHA256",
    "FIRST_MD5",
    "FIRST_SHA256",
    "GAID_MD5",
    "GAID_SHA256",
    "IDFA_MD5",
    "IDFA_SHA256",
    "MULTIPLE_TYPES",
    "PHONE_SHA256",
];

/// One custom audience in the fake.
#[derive(Debug, Clone, Default)]
pub struct FakeCustomAudience {
    /// `custom_audience_id`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Calculate type fixed at creation.
    pub calculate_type: String,
    /// Member hashes.
    pub members: BTreeSet<String>,
}

// Audiences made in the UI are email-hash audiences.
listed!(FakeCustomAudience, calculate_type: "EMAIL_SHA256".into());

#[derive(Debug, Default)]
struct Inner {
    audiences: Lists<FakeCustomAudience>,
    files: HashMap<String, (String, Vec<String>)>,
    uploads: usize,
    max_lines_per_file: usize,
    /// Ads, ad groups and their daily stats.
    ads: ads::AdsInner,
}

struct TikTokState {
    token: String,
    advertiser_id: String,
    request_seq: AtomicU64,
    inner: Mutex<Inner>,
}

impl TikTokState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn envelope(&self, code: i64, message: &str, data: Value) -> Response {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        Json(json!({"code": code, "message": message, "request_id": format!("2026112500{n:08}"), "data": data}))
            .into_response()
    }

    fn error(&self, code: i64, message: &str) -> Response {
        self.envelope(code, message, json!({}))
    }

    fn ok(&self, data: Value) -> Response {
        self.envelope(0, "OK", data)
    }

    fn check(&self, headers: &HeaderMap, advertiser: Option<&str>) -> Result<(), Response> {
        let token = headers
            .get("access-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if token.is_empty() {
            return Err(self.error(40104, "Access-Token header is required."));
        }
        if token != self.token {
            return Err(self.error(AUTH_CODE, "Access token is incorrect or has been revoked."));
        }
        match advertiser {
            Some(a) if a == self.advertiser_id => Ok(()),
            Some(a) => Err(self.error(40001, &format!("No permission to operate advertiser {a}."))),
            None => Err(self.error(40002, "advertiser_id: Missing data for required field.")),
        }
    }
}

/// The fake TikTok API. Dropping it stops the server.
pub struct FakeTikTok {
    server: FakeServer,
    state: Arc<TikTokState>,
}

impl std::fmt::Debug for FakeTikTok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTikTok")
            .field("base_url", &self.server.base_url())
            .finish_non_exhaustive()
    }
}

impl FakeTikTok {
    /// Starts a fake accepting `access_token` for `advertiser_id`.
    pub async fn start(access_token: &str, advertiser_id: &str) -> std::io::Result<FakeTikTok> {
        let state = Arc::new(TikTokState {
            token: access_token.to_string(),
            advertiser_id: advertiser_id.to_string(),
            request_seq: AtomicU64::new(1),
            inner: Mutex::new(Inner {
                audiences: Lists::starting_at(7_300_000_001),
                ..Inner::default()
            }),
        });
        let router = Router::new().fallback(dispatch).with_state(state.clone());
        let throttle_state = state.clone();
        let throttle = Arc::new(move || {
            throttle_state.error(
                THROTTLE_CODE,
                "Too many requests. Please retry in some time.",
            )
        });
        let server = FakeServer::start(VERSION_PREFIX, router, throttle).await?;
        Ok(FakeTikTok { server, state })
    }

    /// Base URL (`http://127.0.0.1:PORT/open_api/v1.3`).
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// Generic fault knobs; `throttle_next` answers HTTP 200 with envelope code 40100.
    pub fn faults(&self) -> &Faults {
        self.server.faults()
    }

    /// Requests received.
    pub fn requests(&self) -> &RequestLog {
        self.server.requests()
    }

    /// Creates audiences directly; returns their ids.
    pub fn seed_audiences<I, S>(&self, names: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.state.lock().audiences.seed(names)
    }

    /// Puts hashes into an audience directly.
    pub fn seed_members<I: IntoIterator<Item = String>>(&self, id: &str, hashes: I) {
        self.state.lock().audiences.seed_members(id, hashes);
    }

    /// All audiences.
    pub fn audiences(&self) -> Vec<FakeCustomAudience> {
        self.state.lock().audiences.snapshot()
    }

    /// Id of the (first) audience with this name.
    pub fn audience_id(&self, name: &str) -> Option<String> {
        self.state.lock().audiences.id_of(name)
    }

    /// Current members of an audience.
    pub fn members(&self, id: &str) -> BTreeSet<String> {
        self.state.lock().audiences.members_of(id)
    }

    /// Files accepted so far.
    pub fn uploads(&self) -> usize {
        self.state.lock().uploads
    }

    /// Most lines seen in one uploaded file.
    pub fn max_lines_per_file(&self) -> usize {
        self.state.lock().max_lines_per_file
    }
}

/// Splits a `multipart/form-data` body into (name, bytes) fields.
fn parse_multipart(content_type: &str, body: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?;
    let boundary = boundary.trim_matches('"');
    let delim = format!("--{boundary}").into_bytes();
    let mut fields = Vec::new();
    let mut parts = split_bytes(body, &delim).into_iter();
    parts.next()?; // preamble
    for part in parts {
        if part.starts_with(b"--") {
            break;
        }
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let split = part.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&part[..split]).to_string();
        let mut content = &part[split + 4..];
        content = content.strip_suffix(b"\r\n").unwrap_or(content);
        let name = head
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("name="))
            .map(|n| {
                n.trim_matches('"')
                    .split('"')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })?;
        fields.push((name, content.to_vec()));
    }
    Some(fields)
}

fn split_bytes<'a>(hay: &'a [u8], needle: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        if &hay[i..i + needle.len()] == needle {
            out.push(&hay[start..i]);
            i += needle.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&hay[start..]);
    out
}

async fn dispatch(
    State(st): State<Arc<TikTokState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path()
        .strip_prefix(VERSION_PREFIX)
        .unwrap_or(uri.path())
        .to_string();
    match (method, path.as_str()) {
        (Method::POST, "/dmp/custom_audience/file/upload/") => upload(&st, &headers, &body),
        (Method::GET, "/dmp/custom_audience/list/") => list(&st, &headers, uri.query()),
        (Method::POST, "/dmp/custom_audience/create/") => {
            match json_body(&st, &headers, &body)
                .and_then(|b| check_shape(&st, &b, &CREATE_BODY).map(|()| b))
            {
                Ok(b) => create(&st, &b),
                Err(r) => r,
            }
        }
        (Method::POST, "/dmp/custom_audience/update/") => {
            match json_body(&st, &headers, &body)
                .and_then(|b| check_shape(&st, &b, &UPDATE_BODY).map(|()| b))
            {
                Ok(b) => update(&st, &b),
                Err(r) => r,
            }
        }
        (Method::GET, "/dmp/custom_audience/get/") => get_audiences(&st, &headers, uri.query()),
        (Method::GET, "/ad/get/") => ads::list_ads(&st, &headers, uri.query()),
        (Method::POST, "/ad/status/update/") => {
            match json_body(&st, &headers, &body)
                .and_then(|b| check_shape(&st, &b, &AD_STATUS_BODY).map(|()| b))
            {
                Ok(b) => ads::update_status(&st, &b),
                Err(r) => r,
            }
        }
        (Method::GET, "/report/integrated/get/") => ads::report(&st, &headers, uri.query()),
        _ => st.error(40404, "Not found"),
    }
}

const STR: Shape = Shape::Str;
const CALCULATE_TYPE: Shape = Shape::Enum(CALCULATE_TYPES);
/// `POST /dmp/custom_audience/create/` body (`dmp_custom_audience_create.yml`).
const CREATE_BODY: Shape = Shape::Object(&[
    field("advertiser_id", &STR),
    field("audience_enhancement", &Shape::Bool),
    field("audience_sub_type", &STR),
    field("calculate_type", &CALCULATE_TYPE),
    field("custom_audience_name", &STR),
    field("file_paths", &Shape::Array(&STR)),
    field("retention_in_days", &Shape::Int),
]);
/// `POST /dmp/custom_audience/update/` body (`dmp_custom_audience_update.yml`): no `calculate_type`.
const UPDATE_BODY: Shape = Shape::Object(&[
    field("action", &Shape::Enum(&["REPLACE", "APPEND", "REMOVE"])),
    field("advertiser_id", &STR),
    field("audience_enhancement", &Shape::Bool),
    field("audience_sub_type", &STR),
    field(
        "context_info",
        &Shape::Object(&[field("core_user_id", &Shape::Int)]),
    ),
    field("custom_audience_id", &STR),
    field("custom_audience_name", &STR),
    field("file_paths", &Shape::Array(&STR)),
]);
/// `POST /ad/status/update/` body (SDK model `AdStatusUpdateBody`).
const AD_STATUS_BODY: Shape = Shape::Object(&[
    field("aco_ad_ids", &Shape::Array(&STR)),
    field("ad_ids", &Shape::Array(&STR)),
    field("advertiser_id", &STR),
    field(
        "operation_status",
        &Shape::Enum(&["DELETE", "DISABLE", "ENABLE"]),
    ),
]);
/// Multipart fields of `POST /dmp/custom_audience/file/upload/` (`dmp_custom_audience_file_upload.yml`).
const UPLOAD_FIELDS: &[&str] = &[
    "advertiser_id",
    "calculate_type",
    "file",
    "file_signature",
    "name",
];

/// TikTok's answer to a body that does not fit the endpoint's OpenAPI schema: code 40002.
fn check_shape(st: &TikTokState, body: &Value, shape: &Shape) -> Result<(), Response> {
    crate::schema::check(body, shape).map_err(|v| st.error(40002, &v.to_string()))
}

fn json_body(st: &TikTokState, headers: &HeaderMap, body: &[u8]) -> Result<Value, Response> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.starts_with("application/json") {
        return Err(st.error(40002, "Content-Type must be application/json"));
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| st.error(40002, &format!("Invalid JSON: {e}")))?;
    st.check(headers, v.get("advertiser_id").and_then(Value::as_str))?;
    Ok(v)
}

fn upload(st: &TikTokState, headers: &HeaderMap, body: &[u8]) -> Response {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.starts_with("multipart/form-data") {
        return st.error(40002, "file upload must be multipart/form-data");
    }
    let Some(fields) = parse_multipart(ct, body) else {
        return st.error(40002, "malformed multipart body");
    };
    if let Some((unknown, _)) = fields
        .iter()
        .find(|(k, _)| !UPLOAD_FIELDS.contains(&k.as_str()))
    {
        return st.error(
            40002,
            &format!("Unknown name \"{unknown}\": Cannot find field."),
        );
    }
    let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let text = |n: &str| field(n).map(|v| String::from_utf8_lossy(&v).to_string());
    if let Err(r) = st.check(headers, text("advertiser_id").as_deref()) {
        return r;
    }
    let Some(file) = field("file") else {
        return st.error(40002, "file: Missing data for required field.");
    };
    let calc = text("calculate_type").unwrap_or_default();
    if !CALCULATE_TYPES.contains(&calc.as_str()) {
        return st.error(40002, "calculate_type: Invalid enum value.");
    }
    let signature = text("file_signature").unwrap_or_default();
    let actual = hex::encode(Md5::digest(&file));
    if signature != actual {
        return st.error(40002, "file_signature does not match the MD5 of the file.");
    }
    let content = String::from_utf8_lossy(&file).to_string();
    let lines: Vec<String> = content
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        return st.error(40002, "The file is empty.");
    }
    if calc.ends_with("_SHA256") {
        if let Some(bad) = lines.iter().position(|l| !is_sha256_hex(l)) {
            return st.error(
                40002,
                &format!("line {}: not a SHA256 hash in lowercase hex", bad + 1),
            );
        }
    }
    let mut inner = st.lock();
    inner.uploads += 1;
    inner.max_lines_per_file = inner.max_lines_per_file.max(lines.len());
    let path = format!("dmp/upload/{}/{}.txt", st.advertiser_id, inner.uploads);
    inner.files.insert(path.clone(), (calc, lines));
    drop(inner);
    st.ok(json!({"file_path": path, "size": file.len()}))
}

/// `GET /dmp/custom_audience/get/?advertiser_id&custom_audience_ids=[...]` (≤ 100 ids): each audience's
/// details with `cover_num`, the matched size (here: the members the fake holds).
fn get_audiences(st: &TikTokState, headers: &HeaderMap, query: Option<&str>) -> Response {
    let params: HashMap<String, String> = query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    if let Err(r) = st.check(headers, params.get("advertiser_id").map(String::as_str)) {
        return r;
    }
    if let Some(unknown) = params
        .keys()
        .find(|k| !["advertiser_id", "custom_audience_ids", "history_size"].contains(&k.as_str()))
    {
        return st.error(
            40002,
            &format!("Unknown name \"{unknown}\": Cannot find field."),
        );
    }
    let Some(ids) = params
        .get("custom_audience_ids")
        .and_then(|v| serde_json::from_str::<Vec<String>>(v).ok())
        .filter(|ids| !ids.is_empty() && ids.len() <= 100)
    else {
        return st.error(
            40002,
            "custom_audience_ids: Must be a list of 1 to 100 audience ids.",
        );
    };
    let inner = st.lock();
    let mut list = Vec::new();
    for id in &ids {
        let Some(a) = inner.audiences.iter().find(|a| &a.id == id) else {
            return st.error(40002, &format!("custom_audience_id {id} does not exist"));
        };
        list.push(json!({"audience_details": {
            "audience_id": a.id, "name": a.name, "calculate_type": a.calculate_type,
            "cover_num": a.members.len(), "is_valid": a.members.len() >= 1000, "is_creator": true,
            "type": "Customer File"}, "audience_history": []}));
    }
    st.ok(json!({ "list": list }))
}

fn list(st: &TikTokState, headers: &HeaderMap, query: Option<&str>) -> Response {
    let params: HashMap<String, String> = query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    if let Err(r) = st.check(headers, params.get("advertiser_id").map(String::as_str)) {
        return r;
    }
    let page = params
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let size = params
        .get("page_size")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(20);
    if size == 0 || size > MAX_PAGE_SIZE {
        return st.error(40002, "page_size: Must be between 1 and 100.");
    }
    let inner = st.lock();
    let total = inner.audiences.len();
    let start = ((page - 1) * size).min(total);
    let end = (start + size).min(total);
    let list: Vec<Value> = inner.audiences[start..end]
        .iter()
        .map(|a| json!({"custom_audience_id": a.id, "name": a.name, "calculate_type": a.calculate_type, "audience_type": "Customer File"}))
        .collect();
    st.ok(json!({"list": list, "page_info": {"page": page, "page_size": size, "total_number": total, "total_page": total.div_ceil(size)}}))
}

fn take_files(
    st: &TikTokState,
    inner: &mut Inner,
    body: &Value,
    calc: &str,
) -> Result<Vec<String>, Response> {
    let Some(paths) = body
        .get("file_paths")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
    else {
        return Err(st.error(40002, "file_paths: Missing data for required field."));
    };
    let mut out = Vec::new();
    for p in paths {
        let key = p.as_str().unwrap_or_default();
        let Some((file_calc, lines)) = inner.files.get(key) else {
            return Err(st.error(40002, &format!("file_path {key} does not exist")));
        };
        if file_calc != calc {
            return Err(st.error(
                40002,
                "calculate_type of the file differs from the audience",
            ));
        }
        out.extend(lines.iter().cloned());
    }
    Ok(out)
}

fn create(st: &TikTokState, body: &Value) -> Response {
    let name = body
        .get("custom_audience_name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if name.trim().is_empty() || name.chars().count() > 128 {
        return st.error(
            40002,
            "custom_audience_name: Length must be between 1 and 128.",
        );
    }
    let calc = body
        .get("calculate_type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !CALCULATE_TYPES.contains(&calc.as_str()) {
        return st.error(40002, "calculate_type: Invalid enum value.");
    }
    let mut inner = st.lock();
    let members = match take_files(st, &mut inner, body, &calc) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let id = inner.audiences.mint_id();
    inner.audiences.push(FakeCustomAudience {
        id: id.clone(),
        name,
        calculate_type: calc,
        members: members.into_iter().collect(),
    });
    drop(inner);
    st.ok(json!({"custom_audience_id": id}))
}

fn update(st: &TikTokState, body: &Value) -> Response {
    let id = body
        .get("custom_audience_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let action = body
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !matches!(action.as_str(), "APPEND" | "REMOVE" | "REPLACE") {
        return st.error(40002, "action: Must be one of APPEND, REMOVE, REPLACE.");
    }
    let mut inner = st.lock();
    let Some(pos) = inner.audiences.iter().position(|a| a.id == id) else {
        return st.error(40002, &format!("custom_audience_id {id} does not exist"));
    };
    let calc = inner.audiences[pos].calculate_type.clone();
    let lines = match take_files(st, &mut inner, body, &calc) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let audience = &mut inner.audiences[pos];
    match action.as_str() {
        "APPEND" => audience.members.extend(lines),
        "REMOVE" => {
            for l in lines {
                audience.members.remove(&l);
            }
        }
        _ => audience.members = lines.into_iter().collect(),
    }
    drop(inner);
    st.ok(json!({"custom_audience_id": id}))
}
