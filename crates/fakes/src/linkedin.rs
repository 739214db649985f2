//! A stateful fake of the LinkedIn Marketing API's DMP segments (versioned `/rest` API), strict where
//! the real API is strict: an OAuth2 bearer token from its own token endpoint (client credentials only as
//! form fields, a Basic-only refresh is `invalid_request`; short-lived tokens, 401
//! `EXPIRED_ACCESS_TOKEN` once expired), `LinkedIn-Version: YYYYMM`, `X-Restli-Protocol-Version: 2.0.0`,
//! `X-RestLi-Method: BATCH_CREATE` on `/users`, ≤ 5,000 elements per batch, `SHA256_EMAIL` values 64
//! lowercase hex, per-element statuses in the reply, a `start`/`count` paged finder by account, and a
//! bare 429 (no Retry-After) as its throttle. `GET /rest/dmpSegments/{id}` answers the segment with its
//! `inputCount` (ADD elements received) and a `LINKEDIN` destination `READY` with `audienceSize` and
//! `matchedCount` (the members it holds: it matches every valid hash), the fields Microsoft Learn's "DMP
//! Segments" and "DMP Segment Destinations" pages (li-lms-2026-08) describe; an unknown id is a 404.

// Handlers return the platform's error reply as `Err(Response)`; boxing it would only add noise here.
#![allow(clippy::result_large_err)]

use crate::skeleton::identifiers::is_sha256_hex;
use crate::skeleton::lists::{listed, Lists};
use crate::skeleton::{FakeServer, Faults, OAuthIssuer, RequestLog, TokenProblem};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// Campaign creatives and ad analytics (creative rotation and metrics), in their own file.
#[path = "linkedin_ads.rs"]
mod ads;

pub use ads::FakeCreativeDay;

/// Prefix of the versioned REST API.
pub const REST_PREFIX: &str = "/rest";
/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth/v2/accessToken";
/// Elements per `/users` batch.
pub const MAX_BATCH: usize = 5_000;
/// Largest `count` the finder honours.
pub const MAX_COUNT: usize = 100;

/// One DMP segment in the fake.
#[derive(Debug, Clone, Default)]
pub struct FakeSegment {
    /// Numeric id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Member email hashes.
    pub members: BTreeSet<String>,
    /// `ADD` elements received (valid or not): the segment's `inputCount`.
    pub inputs: u64,
}

listed!(FakeSegment);

#[derive(Debug, Default)]
struct Inner {
    segments: Lists<FakeSegment>,
    rejected: HashSet<String>,
    max_batch_seen: usize,
    /// Campaign creatives and their analytics.
    ads: ads::AdsInner,
}

struct LinkedInState {
    account: String,
    oauth: OAuthIssuer,
    inner: Mutex<Inner>,
}

fn li_error(status: StatusCode, code: &str, service_code: i64, message: &str) -> Response {
    (status, Json(json!({"status": status.as_u16(), "serviceErrorCode": service_code, "code": code, "message": message})))
        .into_response()
}

impl LinkedInState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), Response> {
        match self.oauth.check_bearer(headers) {
            Ok(()) => {}
            Err(TokenProblem::Expired) => {
                return Err(li_error(
                    StatusCode::UNAUTHORIZED,
                    "EXPIRED_ACCESS_TOKEN",
                    65601,
                    "The token used in the request has expired",
                ))
            }
            Err(_) => {
                return Err(li_error(
                    StatusCode::UNAUTHORIZED,
                    "INVALID_ACCESS_TOKEN",
                    65600,
                    "Invalid access token",
                ))
            }
        }
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let version = header("linkedin-version");
        if version.is_empty() {
            return Err(li_error(StatusCode::BAD_REQUEST, "VERSION_MISSING", 100, "A version must be present. Please specify a version by adding the LinkedIn-Version header."));
        }
        if version.len() != 6 || !version.bytes().all(|b| b.is_ascii_digit()) {
            return Err(li_error(
                StatusCode::UPGRADE_REQUIRED,
                "NONEXISTENT_VERSION",
                100,
                &format!("Requested version {version} is not active"),
            ));
        }
        if header("x-restli-protocol-version") != "2.0.0" {
            return Err(li_error(
                StatusCode::BAD_REQUEST,
                "PROTOCOL_VERSION",
                100,
                "X-Restli-Protocol-Version 2.0.0 is required",
            ));
        }
        Ok(())
    }
}

/// The fake LinkedIn API. Dropping it stops the server.
pub struct FakeLinkedIn {
    server: FakeServer,
    state: Arc<LinkedInState>,
}

impl std::fmt::Debug for FakeLinkedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeLinkedIn")
            .field("base_url", &self.server.base_url())
            .finish_non_exhaustive()
    }
}

impl FakeLinkedIn {
    /// Starts a fake for sponsored account `account_id`, accepting these OAuth client credentials and
    /// refresh token.
    pub async fn start(
        account_id: &str,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
    ) -> std::io::Result<FakeLinkedIn> {
        let state = Arc::new(LinkedInState {
            account: format!("urn:li:sponsoredAccount:{account_id}"),
            oauth: OAuthIssuer::new(client_id, client_secret, refresh_token, "AQV-fake-")
                .require_form_credentials(),
            inner: Mutex::new(Inner {
                segments: Lists::starting_at(41_000_001),
                ..Inner::default()
            }),
        });
        let router = Router::new().fallback(dispatch).with_state(state.clone());
        let throttle = Arc::new(|| StatusCode::TOO_MANY_REQUESTS.into_response());
        let server = FakeServer::start("", router, throttle).await?;
        Ok(FakeLinkedIn { server, state })
    }

    /// REST base (`http://127.0.0.1:PORT/rest`).
    pub fn base_url(&self) -> String {
        format!("{}{REST_PREFIX}", self.server.base_url())
    }

    /// Token endpoint URL.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.server.base_url())
    }

    /// Generic fault knobs; `throttle_next` answers a bare 429 like LinkedIn.
    pub fn faults(&self) -> &Faults {
        self.server.faults()
    }

    /// Requests received.
    pub fn requests(&self) -> &RequestLog {
        self.server.requests()
    }

    /// The token endpoint (TTL and expiry knobs).
    pub fn oauth(&self) -> &OAuthIssuer {
        &self.state.oauth
    }

    /// Creates segments directly; returns their ids.
    pub fn seed_segments<I, S>(&self, names: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.state.lock().segments.seed(names)
    }

    /// All segments.
    pub fn segments(&self) -> Vec<FakeSegment> {
        self.state.lock().segments.snapshot()
    }

    /// Id of the (first) segment with this name.
    pub fn segment_id(&self, name: &str) -> Option<String> {
        self.state.lock().segments.id_of(name)
    }

    /// Current members of a segment.
    pub fn members(&self, id: &str) -> BTreeSet<String> {
        self.state.lock().segments.members_of(id)
    }

    /// Elements whose hash is in `hashes` get a per-element 400.
    pub fn reject_emails<I: IntoIterator<Item = String>>(&self, hashes: I) {
        self.state.lock().rejected.extend(hashes);
    }

    /// Most elements seen in one `/users` batch.
    pub fn max_batch_seen(&self) -> usize {
        self.state.lock().max_batch_seen
    }
}

async fn dispatch(
    State(st): State<Arc<LinkedInState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path() == TOKEN_PATH && method == Method::POST {
        return st.oauth.token_endpoint(&headers, &body);
    }
    let Some(rest) = uri.path().strip_prefix(REST_PREFIX) else {
        return li_error(StatusCode::NOT_FOUND, "NOT_FOUND", 0, "Not found");
    };
    if let Err(r) = st.check(&headers) {
        return r;
    }
    let json_body = || {
        serde_json::from_slice::<Value>(&body).map_err(|e| {
            li_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                100,
                &format!("Invalid JSON: {e}"),
            )
        })
    };
    if let Some(r) = ads::dispatch(&st, &method, rest, uri.query(), &headers, &body) {
        return r;
    }
    match (method, rest) {
        (Method::GET, "/dmpSegments") => find(&st, uri.query()),
        (Method::GET, r) if r.starts_with("/dmpSegments/") && !r[13..].contains('/') => {
            get_segment(&st, &r[13..])
        }
        (Method::POST, "/dmpSegments") => match json_body() {
            Ok(b) => create(&st, &b),
            Err(r) => r,
        },
        (Method::POST, r) => match r
            .strip_prefix("/dmpSegments/")
            .and_then(|r| r.strip_suffix("/users"))
        {
            Some(id) => {
                let m = headers
                    .get("x-restli-method")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !m.eq_ignore_ascii_case("BATCH_CREATE") {
                    return li_error(
                        StatusCode::BAD_REQUEST,
                        "BAD_REQUEST",
                        100,
                        "X-RestLi-Method: BATCH_CREATE is required",
                    );
                }
                match json_body() {
                    Ok(b) => users(&st, id, &b),
                    Err(r) => r,
                }
            }
            None => li_error(StatusCode::NOT_FOUND, "NOT_FOUND", 0, "Not found"),
        },
        _ => li_error(StatusCode::NOT_FOUND, "NOT_FOUND", 0, "Not found"),
    }
}

fn find(st: &LinkedInState, query: Option<&str>) -> Response {
    let params: HashMap<String, String> = query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    if params.get("q").map(String::as_str) != Some("account") {
        return li_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            100,
            "finder q=account is required",
        );
    }
    if params.get("account") != Some(&st.account) {
        return li_error(
            StatusCode::FORBIDDEN,
            "ACCESS_DENIED",
            100,
            "Not enough permissions to access the account",
        );
    }
    let start = params
        .get("start")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let count = params
        .get("count")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, MAX_COUNT);
    let inner = st.lock();
    let total = inner.segments.len();
    let s = start.min(total);
    let e = (s + count).min(total);
    let elements: Vec<Value> = inner.segments[s..e]
        .iter()
        .map(|seg| json!({"id": seg.id.parse::<u64>().unwrap_or_default(), "name": seg.name, "account": st.account, "type": "USER", "destinations": [{"destination": "LINKEDIN", "status": "READY"}]}))
        .collect();
    Json(json!({"elements": elements, "paging": {"start": start, "count": count, "total": total}}))
        .into_response()
}

/// `GET /dmpSegments/{id}`: the segment with its sizes, as a matched segment reports them.
fn get_segment(st: &LinkedInState, id: &str) -> Response {
    let inner = st.lock();
    let Some(seg) = inner.segments.iter().find(|s| s.id == id) else {
        return li_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            100,
            &format!("DMP segment {id} does not exist"),
        );
    };
    let size = seg.members.len();
    Json(json!({
        "id": seg.id.parse::<u64>().unwrap_or_default(),
        "name": seg.name,
        "account": st.account,
        "type": "USER",
        "inputCount": seg.inputs,
        "destinations": [{
            "destination": "LINKEDIN",
            "status": "READY",
            "audienceSize": size,
            "matchedCount": size,
            "destinationSegmentId": format!("urn:li:adSegment:{}", seg.id),
        }],
    }))
    .into_response()
}

fn create(st: &LinkedInState, body: &Value) -> Response {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    if name.is_empty() {
        return li_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "FIELD_VALUE_REQUIRED",
            100,
            "name is required",
        );
    }
    if body.get("account").and_then(Value::as_str) != Some(st.account.as_str()) {
        return li_error(
            StatusCode::FORBIDDEN,
            "ACCESS_DENIED",
            100,
            "Not enough permissions to access the account",
        );
    }
    if body.get("type").and_then(Value::as_str) != Some("USER") {
        return li_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_VALUE",
            100,
            "type must be USER",
        );
    }
    if body
        .get("sourcePlatform")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        return li_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "FIELD_VALUE_REQUIRED",
            100,
            "sourcePlatform is required",
        );
    }
    let destinations = body.get("destinations").and_then(Value::as_array);
    if !destinations.is_some_and(|d| {
        d.iter()
            .any(|x| x.get("destination").and_then(Value::as_str) == Some("LINKEDIN"))
    }) {
        return li_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "FIELD_VALUE_REQUIRED",
            100,
            "destinations must include LINKEDIN",
        );
    }
    let mut inner = st.lock();
    let id = inner.segments.mint_id();
    inner.segments.push(FakeSegment {
        id: id.clone(),
        name,
        ..FakeSegment::default()
    });
    let mut resp = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-restli-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("/dmpSegments/{id}")) {
        resp.headers_mut().insert("location", v);
    }
    resp
}

fn users(st: &LinkedInState, id: &str, body: &Value) -> Response {
    let Some(elements) = body
        .get("elements")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
    else {
        return li_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            100,
            "elements is required",
        );
    };
    if elements.len() > MAX_BATCH {
        return li_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            100,
            &format!("at most {MAX_BATCH} elements per batch"),
        );
    }
    let mut inner = st.lock();
    inner.max_batch_seen = inner.max_batch_seen.max(elements.len());
    let rejected = inner.rejected.clone();
    let Some(seg) = inner.segments.iter_mut().find(|s| s.id == id) else {
        return li_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            100,
            &format!("DMP segment {id} does not exist"),
        );
    };
    let mut statuses = Vec::with_capacity(elements.len());
    for e in elements {
        let action = e.get("action").and_then(Value::as_str).unwrap_or_default();
        let ids = e
            .get("userIds")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let email = ids
            .iter()
            .find(|u| u.get("idType").and_then(Value::as_str) == Some("SHA256_EMAIL"))
            .and_then(|u| u.get("idValue"))
            .and_then(Value::as_str);
        let fail = |msg: &str| json!({"status": 400, "error": {"status": 400, "code": "INVALID_VALUE", "message": msg}});
        if action == "ADD" {
            seg.inputs += 1;
        }
        let status = match (action, email) {
            (_, None) => fail("userIds must contain a SHA256_EMAIL"),
            (_, Some(h)) if !is_sha256_hex(h) => {
                fail("SHA256_EMAIL idValue must be 64 lowercase hex")
            }
            (_, Some(h)) if rejected.contains(h) => fail("The email hash could not be processed"),
            ("ADD", Some(h)) => {
                seg.members.insert(h.to_string());
                json!({"status": 201})
            }
            ("REMOVE", Some(h)) => {
                seg.members.remove(h);
                json!({"status": 201})
            }
            _ => fail("action must be ADD or REMOVE"),
        };
        statuses.push(status);
    }
    Json(json!({"elements": statuses})).into_response()
}
