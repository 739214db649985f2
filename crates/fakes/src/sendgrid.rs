//! A stateful fake of the Twilio SendGrid **v3** Marketing Campaigns surface campaignd uses: lists
//! (`GET`/`POST /marketing/lists`, paged by `page_token` with `_metadata.next`), contact upserts
//! (`PUT /marketing/contacts` → 202 `{job_id}`), import-job status (`GET /marketing/contacts/imports/{id}`),
//! contact lookup by email (`POST /marketing/contacts/search/emails`) and removal from a list
//! (`DELETE /marketing/lists/{id}/contacts?contact_ids=...`).
//!
//! Strict where SendGrid is strict, per twilio/sendgrid-oai at commit `dbe0e0d` (tables in
//! `sendgrid_spec.rs`): `Authorization: Bearer <key>` (a wrong key is a 401 `{"errors":
//! [{"field": null, "message": "authorization required"}]}`), bodies shaped as the spec's request schemas
//! (required fields, types, `maxLength`s, no undeclared contact fields: a 400 naming the field), list ids
//! in UUID form, `page_size` 1..1000, ≤ 6 MB and ≤ 30,000 contacts per upsert, every contact
//! with a well-formed `email` (a malformed one fails the whole request with a 400 naming
//! `contacts[i].email`), existing `list_ids`, ≤ 100 emails per search (404 when none is found). Upserts are
//! asynchronous: a job is `pending` at its first status poll and `completed` (or `errored` / `failed`, with
//! an `errors_url` serving a CSV of the refused rows) from the second on, and contacts and list
//! memberships change only then. Every reply carries `X-RateLimit-Limit/Remaining/Reset` (epoch seconds);
//! with [`FakeSendGrid::set_rate_limit`] a per-second budget is enforced with 429s.

use crate::schema::Shape;
use crate::skeleton::identifiers::email_shape;
use crate::skeleton::{credentials, FakeServer, Faults, RequestLog};

/// The spec's request-body shapes, in their own file.
#[path = "sendgrid_spec.rs"]
pub mod spec;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// API version prefix the fake serves under.
pub const VERSION_PREFIX: &str = "/v3";
/// Contacts per `PUT /marketing/contacts`.
pub const MAX_CONTACTS: usize = 30_000;
/// Emails per contact search.
pub const MAX_SEARCH: usize = 100;

/// One contact in the fake.
#[derive(Debug, Clone, Default)]
pub struct FakeContact {
    /// Contact id.
    pub id: String,
    /// Lower-case email.
    pub email: String,
    /// First name, as sent.
    pub first_name: Option<String>,
    /// Last name, as sent.
    pub last_name: Option<String>,
    /// Lists the contact is on.
    pub list_ids: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct Job {
    polls: u32,
    list_ids: Vec<String>,
    contacts: Vec<Value>,
    refused: Vec<(String, String)>,
    applied: bool,
}

#[derive(Debug, Default)]
struct Inner {
    lists: Vec<(String, String)>,
    contacts: BTreeMap<String, FakeContact>,
    jobs: HashMap<String, Job>,
    next_id: u64,
    rejected: HashSet<String>,
    max_contacts_seen: usize,
    page_cap: usize,
    window: (u64, u64),
}

struct SgState {
    api_key: String,
    base_url: OnceLock<String>,
    rate_limit: AtomicU64,
    rate_limited: AtomicUsize,
    hold_jobs: AtomicBool,
    inner: Mutex<Inner>,
}

fn errors(status: StatusCode, field: Option<&str>, message: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{"field": field, "message": message}]})),
    )
        .into_response()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl SgState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn throttle(&self) -> Response {
        let mut resp = errors(StatusCode::TOO_MANY_REQUESTS, None, "too many requests");
        set_rate_headers(
            &mut resp,
            self.rate_limit.load(Ordering::SeqCst).max(1),
            0,
            now_secs() + 1,
        );
        resp
    }

    fn auth_error(&self, headers: &HeaderMap) -> Option<Response> {
        let given = credentials(headers, "Bearer ");
        (given != Some(self.api_key.as_str()))
            .then(|| errors(StatusCode::UNAUTHORIZED, None, "authorization required"))
    }

    fn new_id(inner: &mut Inner) -> String {
        inner.next_id += 1;
        format!(
            "{:08x}-0000-4000-8000-{:012x}",
            inner.next_id, inner.next_id
        )
    }
}

fn set_rate_headers(resp: &mut Response, limit: u64, remaining: u64, reset: u64) {
    for (name, value) in [
        ("x-ratelimit-limit", limit),
        ("x-ratelimit-remaining", remaining),
        ("x-ratelimit-reset", reset),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            resp.headers_mut().insert(name, v);
        }
    }
}

/// Per-second request budget (when set) and the rate-limit headers on every reply.
async fn rate_limit(State(st): State<Arc<SgState>>, req: Request, next: Next) -> Response {
    let limit = st.rate_limit.load(Ordering::SeqCst);
    let now = now_secs();
    let used = {
        let mut inner = st.lock();
        if inner.window.0 != now {
            inner.window = (now, 0);
        }
        inner.window.1 += 1;
        inner.window.1
    };
    if limit > 0 && used > limit {
        st.rate_limited.fetch_add(1, Ordering::SeqCst);
        let mut resp = errors(StatusCode::TOO_MANY_REQUESTS, None, "too many requests");
        set_rate_headers(&mut resp, limit, 0, now + 1);
        return resp;
    }
    let mut resp = next.run(req).await;
    let shown_limit = if limit > 0 { limit } else { 600 };
    set_rate_headers(
        &mut resp,
        shown_limit,
        shown_limit.saturating_sub(used),
        now + 1,
    );
    resp
}

/// The fake SendGrid API. Dropping it stops the server.
pub struct FakeSendGrid {
    server: FakeServer,
    state: Arc<SgState>,
}

impl std::fmt::Debug for FakeSendGrid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSendGrid")
            .field("base_url", &self.server.base_url())
            .finish_non_exhaustive()
    }
}

impl FakeSendGrid {
    /// Starts a fake accepting `api_key` as the bearer token.
    pub async fn start(api_key: &str) -> std::io::Result<FakeSendGrid> {
        let state = Arc::new(SgState {
            api_key: api_key.to_string(),
            base_url: OnceLock::new(),
            rate_limit: AtomicU64::new(0),
            rate_limited: AtomicUsize::new(0),
            hold_jobs: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                page_cap: 1000,
                ..Inner::default()
            }),
        });
        let router = Router::new()
            .route("/marketing/lists", get(list_lists).post(create_list))
            .route("/marketing/lists/:id/contacts", delete(remove_from_list))
            .route("/marketing/contacts", put(upsert_contacts))
            .route("/marketing/contacts/imports/:id", get(import_status))
            .route("/marketing/contacts/imports/errors/:id", get(import_errors))
            .route("/marketing/contacts/search/emails", post(search_emails))
            .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
            .with_state(state.clone());
        let throttle_state = state.clone();
        let server = FakeServer::start(
            VERSION_PREFIX,
            router,
            Arc::new(move || throttle_state.throttle()),
        )
        .await?;
        let _ = state.base_url.set(server.base_url().to_string());
        Ok(FakeSendGrid { server, state })
    }

    /// Base URL (`http://127.0.0.1:PORT/v3`).
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// Generic fault knobs (429 with Retry-After, 500, 429 with `X-RateLimit-Reset`, delay).
    pub fn faults(&self) -> &Faults {
        self.server.faults()
    }

    /// Requests received.
    pub fn requests(&self) -> &RequestLog {
        self.server.requests()
    }

    /// Allows at most `per_second` requests per wall-clock second (0 = unlimited); the rest get a 429.
    pub fn set_rate_limit(&self, per_second: u64) {
        self.state.rate_limit.store(per_second, Ordering::SeqCst);
    }

    /// Requests refused by the per-second budget.
    pub fn rate_limited(&self) -> usize {
        self.state.rate_limited.load(Ordering::SeqCst)
    }

    /// Most lists returned per page, whatever `page_size` asks for (default 1000).
    pub fn set_page_cap(&self, cap: usize) {
        self.state.lock().page_cap = cap.max(1);
    }

    /// Creates lists directly (as if made in the UI); returns their ids.
    pub fn seed_lists<I, S>(&self, names: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut inner = self.state.lock();
        names
            .into_iter()
            .map(|n| {
                let id = SgState::new_id(&mut inner);
                inner.lists.push((id.clone(), n.into()));
                id
            })
            .collect()
    }

    /// The id of the (first) list with this name.
    pub fn list_id(&self, name: &str) -> Option<String> {
        self.state
            .lock()
            .lists
            .iter()
            .find(|(_, n)| n == name)
            .map(|(id, _)| id.clone())
    }

    /// Number of lists.
    pub fn list_count(&self) -> usize {
        self.state.lock().lists.len()
    }

    /// Emails of the contacts on a list.
    pub fn list_members(&self, list_id: &str) -> BTreeSet<String> {
        let inner = self.state.lock();
        inner
            .contacts
            .values()
            .filter(|c| c.list_ids.contains(list_id))
            .map(|c| c.email.clone())
            .collect()
    }

    /// A contact by email.
    pub fn contact(&self, email: &str) -> Option<FakeContact> {
        self.state
            .lock()
            .contacts
            .get(&email.to_lowercase())
            .cloned()
    }

    /// Upsert jobs refuse these emails (reported through `errors_url`, not stored).
    pub fn reject_emails<I: IntoIterator<Item = String>>(&self, emails: I) {
        self.state
            .lock()
            .rejected
            .extend(emails.into_iter().map(|e| e.to_lowercase()));
    }

    /// While `true`, every import job stays `pending` however often it is polled (a long import, so
    /// a test can stop campaignd between submitting a job and its completion).
    pub fn hold_jobs(&self, hold: bool) {
        self.state.hold_jobs.store(hold, Ordering::SeqCst);
    }

    /// Import jobs submitted so far (every `PUT /marketing/contacts` that was accepted).
    pub fn jobs_submitted(&self) -> usize {
        self.state.lock().jobs.len()
    }

    /// The most contacts seen in one upsert.
    pub fn max_contacts_seen(&self) -> usize {
        self.state.lock().max_contacts_seen
    }
}

/// Parses a JSON object body and checks it against the spec's `shape` (a 400 naming the field).
fn json_body(body: &[u8], shape: &Shape) -> Result<serde_json::Map<String, Value>, Box<Response>> {
    let bad_json = || Box::new(errors(StatusCode::BAD_REQUEST, None, "invalid JSON"));
    let value: Value = serde_json::from_slice(body).map_err(|_| bad_json())?;
    crate::schema::check(&value, shape).map_err(|v| {
        let field = match &v {
            crate::schema::Violation::UnknownField { path, name }
            | crate::schema::Violation::Missing { path, name }
                if path.is_empty() =>
            {
                name.clone()
            }
            crate::schema::Violation::UnknownField { path, name }
            | crate::schema::Violation::Missing { path, name } => format!("{path}.{name}"),
            crate::schema::Violation::Invalid { path, .. } => path.clone(),
        };
        Box::new(errors(
            StatusCode::BAD_REQUEST,
            Some(&field),
            &v.to_string(),
        ))
    })?;
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(bad_json()),
    }
}

/// SendGrid also refuses whitespace anywhere in the address.
fn valid_email(e: &str) -> bool {
    email_shape(e) && !e.contains(char::is_whitespace)
}

async fn list_lists(
    State(st): State<Arc<SgState>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = st.auth_error(&headers) {
        return r;
    }
    let size = match q.get("page_size").map(|s| s.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => {
            return errors(
                StatusCode::BAD_REQUEST,
                Some("page_size"),
                "page_size must be between 1 and 1000",
            )
        }
    };
    let inner = st.lock();
    let size = size.min(inner.page_cap);
    let start = match q.get("page_token") {
        None => 0,
        Some(t) => match t.strip_prefix("tok-").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => {
                return errors(
                    StatusCode::BAD_REQUEST,
                    Some("page_token"),
                    "invalid page token",
                )
            }
        },
    };
    let end = (start + size).min(inner.lists.len());
    let members = |id: &str| {
        inner
            .contacts
            .values()
            .filter(|c| c.list_ids.contains(id))
            .count()
    };
    let base = st.base_url.get().cloned().unwrap_or_default();
    let result: Vec<Value> = inner.lists[start.min(end)..end]
        .iter()
        .map(|(id, name)| {
            json!({"id": id, "name": name, "contact_count": members(id), "_metadata": {"self": format!("{base}/marketing/lists/{id}")}})
        })
        .collect();
    let mut meta = json!({"self": format!("{base}/marketing/lists?page_size={size}"), "count": inner.lists.len()});
    if end < inner.lists.len() {
        meta["next"] = json!(format!(
            "{base}/marketing/lists?page_size={size}&page_token=tok-{end}"
        ));
    }
    Json(json!({"result": result, "_metadata": meta})).into_response()
}

async fn create_list(State(st): State<Arc<SgState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = st.auth_error(&headers) {
        return r;
    }
    let body = match json_body(&body, &spec::CREATE_LIST) {
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
        return errors(StatusCode::BAD_REQUEST, Some("name"), "name is required");
    }
    let mut inner = st.lock();
    if inner.lists.iter().any(|(_, n)| *n == name) {
        return errors(
            StatusCode::BAD_REQUEST,
            Some("name"),
            "list name already exists",
        );
    }
    let id = SgState::new_id(&mut inner);
    inner.lists.push((id.clone(), name.clone()));
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "name": name, "contact_count": 0})),
    )
        .into_response()
}

async fn upsert_contacts(
    State(st): State<Arc<SgState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = st.auth_error(&headers) {
        return r;
    }
    if body.len() > spec::MAX_UPSERT_BYTES {
        return errors(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            &format!(
                "request body is {} bytes; at most {} are accepted",
                body.len(),
                spec::MAX_UPSERT_BYTES
            ),
        );
    }
    let body = match json_body(&body, &spec::UPSERT) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let list_ids: Vec<String> = body
        .get("list_ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    if let Some((i, bad)) = list_ids
        .iter()
        .enumerate()
        .find(|(_, id)| !spec::is_uuid(id))
    {
        return errors(
            StatusCode::BAD_REQUEST,
            Some(&format!("list_ids[{i}]")),
            &format!("`{bad}` is not a valid UUID"),
        );
    }
    let Some(Value::Array(contacts)) = body.get("contacts") else {
        return errors(
            StatusCode::BAD_REQUEST,
            Some("contacts"),
            "contacts is required",
        );
    };
    if contacts.is_empty() || contacts.len() > MAX_CONTACTS {
        return errors(
            StatusCode::BAD_REQUEST,
            Some("contacts"),
            &format!(
                "contacts must contain between 1 and {MAX_CONTACTS} items ({} given)",
                contacts.len()
            ),
        );
    }
    let mut field_errors = Vec::new();
    for (i, c) in contacts.iter().enumerate() {
        match c.get("email").and_then(Value::as_str) {
            Some(e) if valid_email(e) => {}
            _ => field_errors.push(json!({"field": format!("contacts[{i}].email"), "message": "email address is invalid"})),
        }
    }
    if !field_errors.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"errors": field_errors})),
        )
            .into_response();
    }
    let mut inner = st.lock();
    if let Some(missing) = list_ids
        .iter()
        .find(|id| !inner.lists.iter().any(|(l, _)| l == *id))
    {
        let msg = format!("list {missing} does not exist");
        drop(inner);
        return errors(StatusCode::NOT_FOUND, Some("list_ids"), &msg);
    }
    inner.max_contacts_seen = inner.max_contacts_seen.max(contacts.len());
    let refused: Vec<(String, String)> = contacts
        .iter()
        .filter_map(|c| c.get("email").and_then(Value::as_str))
        .filter(|e| inner.rejected.contains(&e.to_lowercase()))
        .map(|e| {
            (
                e.to_string(),
                "email address is on a blocked domain".to_string(),
            )
        })
        .collect();
    let job_id = SgState::new_id(&mut inner);
    inner.jobs.insert(
        job_id.clone(),
        Job {
            polls: 0,
            list_ids,
            contacts: contacts.clone(),
            refused,
            applied: false,
        },
    );
    (StatusCode::ACCEPTED, Json(json!({"job_id": job_id}))).into_response()
}

async fn import_status(
    State(st): State<Arc<SgState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = st.auth_error(&headers) {
        return r;
    }
    let base = st.base_url.get().cloned().unwrap_or_default();
    let mut inner = st.lock();
    let Some(mut job) = inner.jobs.get(&id).cloned() else {
        drop(inner);
        return errors(StatusCode::NOT_FOUND, None, "job not found");
    };
    if st.hold_jobs.load(Ordering::SeqCst) {
        drop(inner);
        return Json(json!({"id": id, "status": "pending", "job_type": "upsert", "results": {}}))
            .into_response();
    }
    job.polls += 1;
    if job.polls == 1 {
        inner.jobs.insert(id.clone(), job);
        return Json(json!({"id": id, "status": "pending", "job_type": "upsert", "results": {}}))
            .into_response();
    }
    let refused: HashSet<String> = job.refused.iter().map(|(e, _)| e.to_lowercase()).collect();
    let (mut created, mut updated) = (0, 0);
    if !job.applied {
        for c in &job.contacts {
            let email = c
                .get("email")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_lowercase();
            if refused.contains(&email) {
                continue;
            }
            let first = c
                .get("first_name")
                .and_then(Value::as_str)
                .map(str::to_string);
            let last = c
                .get("last_name")
                .and_then(Value::as_str)
                .map(str::to_string);
            let existing = inner.contacts.get(&email).map(|c| c.id.clone());
            let cid = match existing {
                Some(cid) => {
                    updated += 1;
                    cid
                }
                None => {
                    created += 1;
                    SgState::new_id(&mut inner)
                }
            };
            let entry = inner
                .contacts
                .entry(email.clone())
                .or_insert_with(|| FakeContact {
                    id: cid,
                    email: email.clone(),
                    ..FakeContact::default()
                });
            entry.first_name = first.or(entry.first_name.take());
            entry.last_name = last.or(entry.last_name.take());
            entry.list_ids.extend(job.list_ids.iter().cloned());
        }
        job.applied = true;
    }
    let requested = job.contacts.len();
    let errored = job.refused.len();
    inner.jobs.insert(id.clone(), job);
    let status = if errored == 0 {
        "completed"
    } else if errored == requested {
        "failed"
    } else {
        "errored"
    };
    let mut results = json!({
        "requested_count": requested,
        "created_count": created,
        "updated_count": updated,
        "deleted_count": 0,
        "errored_count": errored,
    });
    if errored > 0 {
        results["errors_url"] = json!(format!("{base}/marketing/contacts/imports/errors/{id}"));
    }
    Json(json!({"id": id, "status": status, "job_type": "upsert", "results": results}))
        .into_response()
}

async fn import_errors(
    State(st): State<Arc<SgState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = st.auth_error(&headers) {
        return r;
    }
    let inner = st.lock();
    let Some(job) = inner.jobs.get(&id) else {
        drop(inner);
        return errors(StatusCode::NOT_FOUND, None, "job not found");
    };
    let mut csv = String::from("email,errors\n");
    for (e, reason) in &job.refused {
        csv.push_str(&format!("{e},\"{reason}\"\n"));
    }
    ([("content-type", "text/csv")], csv).into_response()
}

async fn search_emails(
    State(st): State<Arc<SgState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = st.auth_error(&headers) {
        return r;
    }
    let body = match json_body(&body, &spec::SEARCH_EMAILS) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(Value::Array(emails)) = body.get("emails") else {
        return errors(
            StatusCode::BAD_REQUEST,
            Some("emails"),
            "emails is required",
        );
    };
    if emails.is_empty() || emails.len() > MAX_SEARCH {
        return errors(
            StatusCode::BAD_REQUEST,
            Some("emails"),
            &format!("emails must contain between 1 and {MAX_SEARCH} items"),
        );
    }
    let inner = st.lock();
    let mut result = serde_json::Map::new();
    let mut found = 0;
    for e in emails.iter().filter_map(Value::as_str) {
        match inner.contacts.get(&e.to_lowercase()) {
            Some(c) => {
                found += 1;
                result.insert(
                    e.to_string(),
                    json!({"contact": {"id": c.id, "email": c.email, "first_name": c.first_name, "last_name": c.last_name, "list_ids": c.list_ids}}),
                );
            }
            None => {
                result.insert(e.to_string(), json!({"error": "contact not found"}));
            }
        }
    }
    if found == 0 {
        drop(inner);
        return errors(StatusCode::NOT_FOUND, None, "No contacts found");
    }
    Json(json!({"result": result})).into_response()
}

async fn remove_from_list(
    State(st): State<Arc<SgState>>,
    Path(list_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = st.auth_error(&headers) {
        return r;
    }
    let ids: Vec<String> = q
        .get("contact_ids")
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        return errors(
            StatusCode::BAD_REQUEST,
            Some("contact_ids"),
            "contact_ids is required",
        );
    }
    let mut inner = st.lock();
    if !inner.lists.iter().any(|(l, _)| *l == list_id) {
        drop(inner);
        return errors(StatusCode::NOT_FOUND, None, "list not found");
    }
    let ids: HashSet<String> = ids.into_iter().collect();
    for c in inner.contacts.values_mut().filter(|c| ids.contains(&c.id)) {
        c.list_ids.remove(&list_id);
    }
    let job_id = SgState::new_id(&mut inner);
    (StatusCode::ACCEPTED, Json(json!({"job_id": job_id}))).into_response()
}
