//! A stateful fake of the Mailchimp Marketing API **3.0** surface campaignd uses: one audience list with its
//! members, static segments on it (`GET`/`POST /lists/{id}/segments`, `POST /lists/{id}/segments/{sid}`
//! with `members_to_add` / `members_to_remove`) and batch subscribe (`POST /lists/{id}`).
//!
//! Strict where Mailchimp is strict, per its official SDKs (tables and sources in `mailchimp_spec.rs`):
//! bodies shaped as the SDKs' request types (required fields, types, the `status` enum, no undeclared
//! keys: a 400 problem document naming the field), HTTP Basic auth with any user and the API key as password (a wrong
//! key is a 401 problem document "API Key Invalid"), ≤ 500 members per batch subscribe and per
//! `members_to_add`/`members_to_remove` (400 otherwise), a `status` on every batch-subscribe member,
//! `update_existing = false` leaves existing members alone and reports them as `ERROR_CONTACT_EXISTS`,
//! only list members can enter a static segment (a non-member is an error entry in the 200 reply, not
//! added), segment pages of at most `count` (capped by [`FakeMailchimp::set_page_cap`], 1000 like the
//! real API), and **10 simultaneous connections**: the 11th concurrent request gets a bare 429 with no
//! `Retry-After`, as does every [`Faults::throttle_next`] reply (or a 403, see
//! [`FakeMailchimp::throttle_with_403`]).

use crate::schema::Shape;
use crate::skeleton::identifiers::{base64_decode, email_shape};
use crate::skeleton::{credentials, FakeServer, Faults, RequestLog};

/// The SDKs' request-body shapes, in their own file.
#[path = "mailchimp_spec.rs"]
pub mod spec;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Campaigns, templates and reports (creative rotation and metrics), in their own file.
#[path = "mailchimp_campaigns.rs"]
mod campaigns;

pub use campaigns::{FakeCampaign, FakeReport};

/// API version prefix the fake serves under.
pub const VERSION_PREFIX: &str = "/3.0";
/// Members per batch subscribe and per segment add/remove list.
pub const MAX_MEMBERS: usize = 500;
/// Simultaneous connections allowed per API key.
pub const MAX_CONNECTIONS: usize = 10;

/// One static (or saved) segment in the fake.
#[derive(Debug, Clone, Default)]
pub struct FakeSegment {
    /// Mailchimp segment id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// `static` or `saved`.
    pub kind: String,
    /// Member emails (lower-case).
    pub members: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Inner {
    /// List members: lower-case email → status.
    members: BTreeMap<String, String>,
    segments: Vec<FakeSegment>,
    next_id: u64,
    rejected: HashSet<String>,
    max_batch_seen: usize,
    page_cap: usize,
    /// Campaigns, templates and reports.
    campaigns: campaigns::CampaignsInner,
}

struct McState {
    api_key: String,
    list_id: String,
    throttle_403: AtomicBool,
    latency_ms: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    over_limit: AtomicUsize,
    inner: Mutex<Inner>,
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    (
        status,
        Json(json!({
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
            "instance": "00000000-fake-fake-fake-000000000000",
        })),
    )
        .into_response()
}

fn bad_request(detail: &str) -> Response {
    problem(StatusCode::BAD_REQUEST, "Invalid Resource", detail)
}

impl McState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn throttle(&self) -> Response {
        let status = if self.throttle_403.load(Ordering::SeqCst) {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        problem(
            status,
            "Too Many Requests",
            "You have exceeded the limit of 10 simultaneous connections.",
        )
    }

    /// `None` when the Basic credentials carry the right key; the 401 reply otherwise.
    fn auth_error(&self, headers: &HeaderMap) -> Option<Response> {
        let ok = credentials(headers, "Basic ")
            .and_then(|b| base64_decode(b.trim()))
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| pair.split_once(':').map(|(_, key)| key == self.api_key))
            .unwrap_or(false);
        (!ok).then(|| {
            problem(
                StatusCode::UNAUTHORIZED,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )
        })
    }

    fn check(&self, headers: &HeaderMap, list_id: &str) -> Option<Response> {
        if let Some(r) = self.auth_error(headers) {
            return Some(r);
        }
        (list_id != self.list_id).then(|| {
            problem(
                StatusCode::NOT_FOUND,
                "Resource Not Found",
                "The requested resource could not be found.",
            )
        })
    }
}

/// The fake Mailchimp API. Dropping it stops the server.
pub struct FakeMailchimp {
    server: FakeServer,
    state: Arc<McState>,
}

impl std::fmt::Debug for FakeMailchimp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMailchimp")
            .field("base_url", &self.server.base_url())
            .finish_non_exhaustive()
    }
}

async fn connection_limit(State(st): State<Arc<McState>>, req: Request, next: Next) -> Response {
    let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    if now > MAX_CONNECTIONS {
        st.in_flight.fetch_sub(1, Ordering::SeqCst);
        st.over_limit.fetch_add(1, Ordering::SeqCst);
        return st.throttle();
    }
    st.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let latency = st.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let resp = next.run(req).await;
    st.in_flight.fetch_sub(1, Ordering::SeqCst);
    resp
}

impl FakeMailchimp {
    /// Starts a fake for the list `list_id`, accepting `api_key` (e.g. `0123abcd-us21`) as the Basic
    /// password.
    pub async fn start(api_key: &str, list_id: &str) -> std::io::Result<FakeMailchimp> {
        let state = Arc::new(McState {
            api_key: api_key.to_string(),
            list_id: list_id.to_string(),
            throttle_403: AtomicBool::new(false),
            latency_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            over_limit: AtomicUsize::new(0),
            inner: Mutex::new(Inner {
                next_id: 10_001,
                page_cap: 1000,
                ..Inner::default()
            }),
        });
        let router = Router::new()
            .route("/lists/:list_id", post(batch_subscribe))
            .route(
                "/lists/:list_id/segments",
                get(list_segments).post(create_segment),
            )
            .route(
                "/lists/:list_id/segments/:segment_id",
                post(segment_members),
            )
            .route(
                "/campaigns/:id/content",
                axum::routing::put(campaigns::set_content),
            )
            .route("/reports/:id", get(campaigns::report))
            .layer(middleware::from_fn_with_state(
                state.clone(),
                connection_limit,
            ))
            .with_state(state.clone());
        let throttle_state = state.clone();
        let server = FakeServer::start(
            VERSION_PREFIX,
            router,
            Arc::new(move || throttle_state.throttle()),
        )
        .await?;
        Ok(FakeMailchimp { server, state })
    }

    /// Base URL (`http://127.0.0.1:PORT/3.0`).
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// Generic fault knobs (429 with Retry-After, 500, bare throttle, delay).
    pub fn faults(&self) -> &Faults {
        self.server.faults()
    }

    /// Requests received.
    pub fn requests(&self) -> &RequestLog {
        self.server.requests()
    }

    /// Makes throttle replies (fault or connection limit) a 403 instead of a 429, as Mailchimp sometimes
    /// does.
    pub fn throttle_with_403(&self, yes: bool) {
        self.state.throttle_403.store(yes, Ordering::SeqCst);
    }

    /// Holds every request this long while it counts as an open connection (to exercise the connection
    /// limit).
    pub fn set_latency(&self, latency: Duration) {
        self.state
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// Most segments returned per page, whatever `count` asks for (default 1000, as the real API).
    pub fn set_page_cap(&self, cap: usize) {
        self.state.lock().page_cap = cap.max(1);
    }

    /// The most requests seen in flight at once.
    pub fn max_concurrent(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Requests refused because more than [`MAX_CONNECTIONS`] were open.
    pub fn connection_limit_hits(&self) -> usize {
        self.state.over_limit.load(Ordering::SeqCst)
    }

    /// Creates segments directly (as if made in the Mailchimp UI); returns their ids.
    pub fn seed_segments<I, S>(&self, names: I, kind: &str) -> Vec<u64>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut inner = self.state.lock();
        names
            .into_iter()
            .map(|n| {
                let id = inner.next_id;
                inner.next_id += 1;
                inner.segments.push(FakeSegment {
                    id,
                    name: n.into(),
                    kind: kind.to_string(),
                    ..FakeSegment::default()
                });
                id
            })
            .collect()
    }

    /// Puts members on the list directly with a status (`subscribed`, `unsubscribed`, ...).
    pub fn seed_list_members<I: IntoIterator<Item = String>>(&self, emails: I, status: &str) {
        let mut inner = self.state.lock();
        for e in emails {
            inner.members.insert(e.to_lowercase(), status.to_string());
        }
    }

    /// All segments.
    pub fn segments(&self) -> Vec<FakeSegment> {
        self.state.lock().segments.clone()
    }

    /// Member emails of a segment.
    pub fn segment_members(&self, segment_id: &str) -> BTreeSet<String> {
        let inner = self.state.lock();
        inner
            .segments
            .iter()
            .find(|s| s.id.to_string() == segment_id)
            .map(|s| s.members.clone())
            .unwrap_or_default()
    }

    /// List members and their status.
    pub fn list_members(&self) -> BTreeMap<String, String> {
        self.state.lock().members.clone()
    }

    /// Batch subscribe reports these emails as errors (and does not add them).
    pub fn reject_emails<I: IntoIterator<Item = String>>(&self, emails: I) {
        self.state
            .lock()
            .rejected
            .extend(emails.into_iter().map(|e| e.to_lowercase()));
    }

    /// The largest member list seen in one batch subscribe or segment call.
    pub fn max_batch_seen(&self) -> usize {
        self.state.lock().max_batch_seen
    }
}

/// Parses a JSON object body and checks it against the SDKs' `shape` (a 400 naming the field).
fn parse_body(body: &[u8], shape: &Shape) -> Result<serde_json::Map<String, Value>, Box<Response>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => match crate::schema::check(&v, shape) {
            Err(violation) => Err(Box::new(bad_request(&violation.to_string()))),
            Ok(()) => match v {
                Value::Object(m) => Ok(m),
                _ => Err(Box::new(bad_request(
                    "The request body must be a JSON object.",
                ))),
            },
        },
        Err(e) => Err(Box::new(problem(
            StatusCode::BAD_REQUEST,
            "JSON Parse Error",
            &format!("We encountered an unspecified JSON parsing error: {e}"),
        ))),
    }
}

async fn list_segments(
    State(st): State<Arc<McState>>,
    Path(list_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = st.check(&headers, &list_id) {
        return r;
    }
    let inner = st.lock();
    let count = q
        .get("count")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, inner.page_cap);
    let offset = q
        .get("offset")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let kind = q.get("type").cloned();
    let matching: Vec<&FakeSegment> = inner
        .segments
        .iter()
        .filter(|s| kind.as_deref().is_none_or(|k| k == s.kind))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(count)
        .map(|s| json!({"id": s.id, "name": s.name, "member_count": s.members.len(), "type": s.kind, "list_id": list_id}))
        .collect();
    Json(json!({"segments": page, "list_id": list_id, "total_items": matching.len()}))
        .into_response()
}

async fn create_segment(
    State(st): State<Arc<McState>>,
    Path(list_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = st.check(&headers, &list_id) {
        return r;
    }
    let body = match parse_body(&body, &spec::CREATE_SEGMENT) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    if name.is_empty() {
        return bad_request("name: This value should not be blank.");
    }
    let Some(Value::Array(initial)) = body.get("static_segment") else {
        return bad_request("A static_segment array (or options for a saved segment) is required.");
    };
    let mut inner = st.lock();
    let members: BTreeSet<String> = initial
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_lowercase)
        .filter(|e| inner.members.contains_key(e))
        .collect();
    let id = inner.next_id;
    inner.next_id += 1;
    let count = members.len();
    inner.segments.push(FakeSegment {
        id,
        name: name.clone(),
        kind: "static".into(),
        members,
    });
    Json(json!({"id": id, "name": name, "member_count": count, "type": "static", "list_id": list_id})).into_response()
}

async fn batch_subscribe(
    State(st): State<Arc<McState>>,
    Path(list_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = st.check(&headers, &list_id) {
        return r;
    }
    let body = match parse_body(&body, &spec::BATCH_SUBSCRIBE) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(Value::Array(members)) = body.get("members") else {
        return bad_request("members: This value should not be blank.");
    };
    if members.len() > MAX_MEMBERS {
        return bad_request(&format!(
            "members: This collection should contain {MAX_MEMBERS} elements or less ({} given).",
            members.len()
        ));
    }
    let update_existing = body
        .get("update_existing")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    for (i, m) in members.iter().enumerate() {
        let status = m.get("status").and_then(Value::as_str);
        if m.get("email_address").and_then(Value::as_str).is_none() {
            return bad_request(&format!(
                "members.item:{i}.email_address: This value should not be blank."
            ));
        }
        if !status.is_some_and(|s| spec::STATUSES.contains(&s)) {
            return bad_request(&format!(
                "members.item:{i}.status: The value you selected is not a valid choice (subscribed, unsubscribed, cleaned, pending, transactional)."
            ));
        }
    }
    let mut inner = st.lock();
    inner.max_batch_seen = inner.max_batch_seen.max(members.len());
    let (mut created, mut updated, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for m in members {
        let raw = m
            .get("email_address")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let email = raw.trim().to_lowercase();
        let status = m
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("subscribed")
            .to_string();
        if !email_shape(&email) || inner.rejected.contains(&email) {
            errors.push(json!({
                "email_address": raw,
                "error": format!("{raw} looks fake or invalid, please enter a real email address."),
                "error_code": "ERROR_GENERIC",
                "field": "email_address",
                "field_message": "",
            }));
            continue;
        }
        match inner.members.get(&email).cloned() {
            Some(_) if !update_existing => errors.push(json!({
                "email_address": raw,
                "error": format!("{raw} is already a list member, do you want to update? please provide update_existing:true in the request body"),
                "error_code": "ERROR_CONTACT_EXISTS",
            })),
            Some(_) => {
                inner.members.insert(email.clone(), status.clone());
                updated.push(json!({"email_address": email, "status": status}));
            }
            None => {
                inner.members.insert(email.clone(), status.clone());
                created.push(json!({"email_address": email, "status": status}));
            }
        }
    }
    Json(json!({
        "new_members": created,
        "updated_members": updated,
        "errors": errors,
        "total_created": created.len(),
        "total_updated": updated.len(),
        "error_count": errors.len(),
    }))
    .into_response()
}

async fn segment_members(
    State(st): State<Arc<McState>>,
    Path((list_id, segment_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = st.check(&headers, &list_id) {
        return r;
    }
    let body = match parse_body(&body, &spec::SEGMENT_MEMBERS) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let list = |key: &str| -> Result<Vec<String>, Box<Response>> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) if a.len() > MAX_MEMBERS => Err(Box::new(bad_request(&format!(
                "{key}: This collection should contain {MAX_MEMBERS} elements or less ({} given).",
                a.len()
            )))),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    Box::new(bad_request(&format!(
                        "{key}: every element must be an email address string."
                    )))
                }),
            Some(_) => Err(Box::new(bad_request(&format!(
                "{key}: This value should be of type array."
            )))),
        }
    };
    let (to_add, to_remove) = match (list("members_to_add"), list("members_to_remove")) {
        (Ok(a), Ok(r)) => (a, r),
        (Err(e), _) | (_, Err(e)) => return *e,
    };
    let mut inner = st.lock();
    inner.max_batch_seen = inner.max_batch_seen.max(to_add.len()).max(to_remove.len());
    let list_members: HashSet<String> = inner.members.keys().cloned().collect();
    let Some(segment) = inner
        .segments
        .iter_mut()
        .find(|s| s.id.to_string() == segment_id)
    else {
        drop(inner);
        return problem(
            StatusCode::NOT_FOUND,
            "Resource Not Found",
            "The requested segment could not be found.",
        );
    };
    if segment.kind != "static" {
        drop(inner);
        return bad_request("Members can only be added to or removed from static segments.");
    }
    let (mut added, mut removed, mut not_members) = (Vec::new(), Vec::new(), Vec::new());
    for raw in &to_add {
        let e = raw.trim().to_lowercase();
        if list_members.contains(&e) {
            segment.members.insert(e.clone());
            added.push(json!({"email_address": e}));
        } else {
            not_members.push(raw.clone());
        }
    }
    for raw in &to_remove {
        let e = raw.trim().to_lowercase();
        if !list_members.contains(&e) {
            not_members.push(raw.clone());
        } else if segment.members.remove(&e) {
            removed.push(json!({"email_address": e}));
        }
    }
    let errors: Vec<Value> = if not_members.is_empty() {
        Vec::new()
    } else {
        vec![
            json!({"email_addresses": not_members, "error": "Email addresses are not members of this list"}),
        ]
    };
    Json(json!({
        "members_added": added,
        "members_removed": removed,
        "errors": errors,
        "total_added": added.len(),
        "total_removed": removed.len(),
        "error_count": errors.len(),
    }))
    .into_response()
}
