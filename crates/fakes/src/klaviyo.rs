//! A stateful fake of the Klaviyo JSON:API (revision **2026-07-15**) surface campaignd uses: lists
//! (`GET /lists` paged by `page[cursor]` with `links.next`, `POST /lists`), bulk profile import jobs
//! (`POST /profile-bulk-import-jobs` with a list relationship, `GET /profile-bulk-import-jobs/{id}`,
//! `GET /profile-bulk-import-jobs/{id}/import-errors`), profile lookup (`GET /profiles?filter=any(email,
//! [...])`) and list membership (`POST`/`DELETE /lists/{id}/relationships/profiles`).
//!
//! Strict where Klaviyo is strict, per klaviyo/openapi `openapi/stable.json` at commit
//! `f0a30ba41254904dc410d84ca497df68f8872276` (tables in `klaviyo_spec.rs`): `Authorization:
//! Klaviyo-API-Key <key>` (a wrong key is a 401 JSON:API error "Incorrect authentication credentials."),
//! the `revision` header the spec marks required on every operation and equal to the spec's own
//! revision (a missing, malformed or unpublished revision is a 400), request bodies sent as
//! `application/vnd.api+json` (anything else is a 415) and shaped as the spec's request schemas (required
//! fields, enums, types, no undeclared attributes: a 400 naming the field), ≤ 10,000
//! profiles per import job, ≤ 1,000 profiles per relationship call, ≤ 100 per profile page, every profile
//! with an email or an E.164 phone. Import jobs are asynchronous: `processing` at the first status poll,
//! `complete` from the second on, and profiles and list memberships change only then; refused rows are
//! listed as import errors carrying their `original_payload`. Throttling is a 429 with `Retry-After`.

use crate::schema::Shape;
use crate::skeleton::identifiers::is_e164;
use crate::skeleton::{credentials, FakeServer, Faults, RequestLog};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Campaigns, templates and values reports (creative rotation and metrics), in their own file.
#[path = "klaviyo_campaigns.rs"]
mod campaigns;

/// The spec's request-body shapes and revision, in their own file.
#[path = "klaviyo_spec.rs"]
pub mod spec;

pub use campaigns::{FakeCampaignStats, FakeKlaviyoCampaign};

/// The JSON:API media type Klaviyo takes request bodies in.
const JSON_API: &str = "application/vnd.api+json";
/// Base path the fake serves under (Klaviyo's `/api`).
pub const PREFIX: &str = "/api";
/// Profiles per bulk import job.
pub const MAX_IMPORT: usize = 10_000;
/// Profiles per relationship call.
pub const MAX_RELATIONSHIP: usize = 1_000;
/// Lists per page (Klaviyo's fixed page size for lists).
pub const LIST_PAGE: usize = 10;

/// One profile in the fake.
#[derive(Debug, Clone, Default)]
pub struct FakeProfile {
    /// Profile id.
    pub id: String,
    /// Email, lower-case.
    pub email: Option<String>,
    /// E.164 phone.
    pub phone_number: Option<String>,
    /// First name.
    pub first_name: Option<String>,
}

#[derive(Debug, Clone)]
struct Job {
    polls: u32,
    profiles: Vec<Value>,
    list_ids: Vec<String>,
    errors: Vec<(Value, String)>,
    applied: bool,
}

#[derive(Debug, Default)]
struct Inner {
    lists: Vec<(String, String)>,
    memberships: BTreeMap<String, BTreeSet<String>>,
    profiles: BTreeMap<String, FakeProfile>,
    jobs: HashMap<String, Job>,
    next_id: u64,
    rejected: HashSet<String>,
    max_import_seen: usize,
    max_relationship_seen: usize,
    /// Campaigns, templates and report totals.
    campaigns: campaigns::CampaignsInner,
}

struct KlState {
    api_key: String,
    base_url: OnceLock<String>,
    inner: Mutex<Inner>,
}

fn error(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{
            "id": "00000000-fake-fake-fake-000000000000",
            "status": status.as_u16(),
            "code": code,
            "title": title,
            "detail": detail,
            "source": {"pointer": "/data/"},
        }]})),
    )
        .into_response()
}

fn invalid(detail: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid", "Invalid input.", detail)
}

impl KlState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn throttle(&self) -> Response {
        let mut resp = error(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "Request was throttled.",
            "Request was throttled. Expected available in 1 second.",
        );
        resp.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        resp
    }

    fn check(&self, headers: &HeaderMap) -> Option<Response> {
        let given = credentials(headers, "Klaviyo-API-Key ");
        if given != Some(self.api_key.as_str()) {
            return Some(error(
                StatusCode::UNAUTHORIZED,
                "not_authenticated",
                "Authentication credentials were not provided.",
                "Incorrect authentication credentials.",
            ));
        }
        match headers.get("revision").map(|v| v.to_str()) {
            None => Some(invalid("The `revision` header is required.")),
            Some(Ok(spec::REVISION)) => None,
            Some(given) => Some(invalid(&format!(
                "'{}' is not a valid revision.",
                given.unwrap_or_default()
            ))),
        }
    }

    /// [`KlState::check`], then the body: `application/vnd.api+json`, JSON, shaped as `shape`.
    fn body(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        shape: &Shape,
    ) -> Result<Value, Box<Response>> {
        if let Some(r) = self.check(headers) {
            return Err(Box::new(r));
        }
        let media = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if media.split(';').next().map(str::trim) != Some(JSON_API) {
            return Err(Box::new(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type.",
                &format!("Unsupported media type \"{media}\" in request."),
            )));
        }
        let value = json_body(body)?;
        crate::schema::check(&value, shape).map_err(|v| Box::new(invalid(&v.to_string())))?;
        Ok(value)
    }

    fn new_id(inner: &mut Inner, prefix: &str) -> String {
        inner.next_id += 1;
        format!("{prefix}{:020}", inner.next_id)
    }
}

/// The fake Klaviyo API. Dropping it stops the server.
pub struct FakeKlaviyo {
    server: FakeServer,
    state: Arc<KlState>,
}

impl std::fmt::Debug for FakeKlaviyo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKlaviyo")
            .field("base_url", &self.server.base_url())
            .finish_non_exhaustive()
    }
}

impl FakeKlaviyo {
    /// Starts a fake accepting the private key `api_key`.
    pub async fn start(api_key: &str) -> std::io::Result<FakeKlaviyo> {
        let state = Arc::new(KlState {
            api_key: api_key.to_string(),
            base_url: OnceLock::new(),
            inner: Mutex::new(Inner::default()),
        });
        let router = Router::new()
            .route("/lists", get(list_lists).post(create_list))
            .route(
                "/lists/:id/relationships/profiles",
                post(add_relationships).delete(remove_relationships),
            )
            .route("/profile-bulk-import-jobs", post(create_job))
            .route("/profile-bulk-import-jobs/:id", get(job_status))
            .route(
                "/profile-bulk-import-jobs/:id/import-errors",
                get(job_errors),
            )
            .route("/profiles", get(get_profiles))
            .route("/campaigns/:id", get(campaigns::get_campaign))
            .route(
                "/campaigns/:id/campaign-messages",
                get(campaigns::campaign_messages),
            )
            .route(
                "/campaign-message-assign-template",
                post(campaigns::assign_template),
            )
            .route("/campaign-values-reports", post(campaigns::values_report))
            .with_state(state.clone());
        let throttle_state = state.clone();
        let server =
            FakeServer::start(PREFIX, router, Arc::new(move || throttle_state.throttle())).await?;
        let _ = state.base_url.set(server.base_url().to_string());
        Ok(FakeKlaviyo { server, state })
    }

    /// Base URL (`http://127.0.0.1:PORT/api`).
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// Generic fault knobs (429 with/without Retry-After, 500, Klaviyo throttle, delay).
    pub fn faults(&self) -> &Faults {
        self.server.faults()
    }

    /// Requests received.
    pub fn requests(&self) -> &RequestLog {
        self.server.requests()
    }

    /// Creates lists directly; returns their ids.
    pub fn seed_lists<I, S>(&self, names: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut inner = self.state.lock();
        names
            .into_iter()
            .map(|n| {
                let id = KlState::new_id(&mut inner, "L");
                inner.lists.push((id.clone(), n.into()));
                id
            })
            .collect()
    }

    /// Number of lists.
    pub fn list_count(&self) -> usize {
        self.state.lock().lists.len()
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

    /// Members of a list, by email (or phone for email-less profiles).
    pub fn list_members(&self, list_id: &str) -> BTreeSet<String> {
        let inner = self.state.lock();
        inner
            .memberships
            .get(list_id)
            .into_iter()
            .flatten()
            .filter_map(|pid| inner.profiles.get(pid))
            .filter_map(|p| p.email.clone().or_else(|| p.phone_number.clone()))
            .collect()
    }

    /// A profile by email.
    pub fn profile(&self, email: &str) -> Option<FakeProfile> {
        self.state
            .lock()
            .profiles
            .values()
            .find(|p| p.email.as_deref() == Some(&email.to_lowercase()))
            .cloned()
    }

    /// Import jobs refuse profiles with these emails (listed as import errors, not stored).
    pub fn reject_emails<I: IntoIterator<Item = String>>(&self, emails: I) {
        self.state
            .lock()
            .rejected
            .extend(emails.into_iter().map(|e| e.to_lowercase()));
    }

    /// The most profiles seen in one import job.
    pub fn max_import_seen(&self) -> usize {
        self.state.lock().max_import_seen
    }

    /// The most profiles seen in one relationship call.
    pub fn max_relationship_seen(&self) -> usize {
        self.state.lock().max_relationship_seen
    }
}

fn json_body(body: &[u8]) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| Box::new(invalid(&format!("Malformed JSON: {e}"))))
}

async fn list_lists(
    State(st): State<Arc<KlState>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = st.check(&headers) {
        return r;
    }
    let inner = st.lock();
    let start = match q.get("page[cursor]") {
        None => 0,
        Some(c) => match c.strip_prefix("cur").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => return invalid("Invalid page cursor."),
        },
    };
    let end = (start + LIST_PAGE).min(inner.lists.len());
    let base = st.base_url.get().cloned().unwrap_or_default();
    let data: Vec<Value> = inner.lists[start.min(end)..end]
        .iter()
        .map(|(id, name)| json!({"type": "list", "id": id, "attributes": {"name": name}, "links": {"self": format!("{base}/lists/{id}/")}}))
        .collect();
    let next =
        (end < inner.lists.len()).then(|| format!("{base}/lists/?page%5Bcursor%5D=cur{end}"));
    Json(json!({"data": data, "links": {"self": format!("{base}/lists/"), "next": next, "prev": null}})).into_response()
}

async fn create_list(State(st): State<Arc<KlState>>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match st.body(&headers, &body, &spec::LIST_CREATE) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let name = body
        .pointer("/data/attributes/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    if name.is_empty() {
        return invalid("data.attributes.name is required.");
    }
    let mut inner = st.lock();
    let id = KlState::new_id(&mut inner, "L");
    inner.lists.push((id.clone(), name.clone()));
    (
        StatusCode::CREATED,
        Json(json!({"data": {"type": "list", "id": id, "attributes": {"name": name}}})),
    )
        .into_response()
}

async fn create_job(State(st): State<Arc<KlState>>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match st.body(&headers, &body, &spec::IMPORT_JOB) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(profiles) = body
        .pointer("/data/attributes/profiles/data")
        .and_then(Value::as_array)
    else {
        return invalid("data.attributes.profiles.data is required.");
    };
    if profiles.is_empty() || profiles.len() > MAX_IMPORT {
        return invalid(&format!(
            "A bulk import job takes between 1 and {MAX_IMPORT} profiles ({} given).",
            profiles.len()
        ));
    }
    let list_ids: Vec<String> = body
        .pointer("/data/relationships/lists/data")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|l| l.get("id").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut inner = st.lock();
    if let Some(missing) = list_ids
        .iter()
        .find(|id| !inner.lists.iter().any(|(l, _)| l == *id))
    {
        let msg = format!("List {missing} does not exist.");
        drop(inner);
        return error(StatusCode::NOT_FOUND, "not_found", "Not found.", &msg);
    }
    inner.max_import_seen = inner.max_import_seen.max(profiles.len());
    let mut errors = Vec::new();
    let mut good = Vec::new();
    for p in profiles {
        let attrs = p.get("attributes").cloned().unwrap_or(Value::Null);
        let email = attrs
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_lowercase);
        let phone = attrs.get("phone_number").and_then(Value::as_str);
        let reason = if p.get("type").and_then(Value::as_str) != Some("profile") {
            Some("type must be `profile`")
        } else if email.is_none() && phone.is_none() {
            Some("A profile needs an email or a phone_number.")
        } else if phone.is_some_and(|p| !is_e164(p)) {
            Some("Invalid phone number format (E.164 expected).")
        } else if email.as_ref().is_some_and(|e| inner.rejected.contains(e)) {
            Some("Invalid email address.")
        } else {
            None
        };
        match reason {
            Some(r) => errors.push((attrs, r.to_string())),
            None => good.push(attrs),
        }
    }
    let id = KlState::new_id(&mut inner, "J");
    let total = profiles.len();
    inner.jobs.insert(
        id.clone(),
        Job {
            polls: 0,
            profiles: good,
            list_ids,
            errors,
            applied: false,
        },
    );
    (
        StatusCode::ACCEPTED,
        Json(json!({"data": {"type": "profile-bulk-import-job", "id": id, "attributes": {"status": "queued", "total_count": total, "completed_count": 0, "failed_count": 0}}})),
    )
        .into_response()
}

async fn job_status(
    State(st): State<Arc<KlState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = st.check(&headers) {
        return r;
    }
    let mut inner = st.lock();
    let Some(mut job) = inner.jobs.get(&id).cloned() else {
        drop(inner);
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found.",
            "No such job.",
        );
    };
    job.polls += 1;
    let total = job.profiles.len() + job.errors.len();
    if job.polls == 1 {
        inner.jobs.insert(id.clone(), job);
        return Json(json!({"data": {"type": "profile-bulk-import-job", "id": id, "attributes": {"status": "processing", "total_count": total, "completed_count": 0, "failed_count": 0}}})).into_response();
    }
    if !job.applied {
        for attrs in &job.profiles {
            let email = attrs
                .get("email")
                .and_then(Value::as_str)
                .map(str::to_lowercase);
            let phone = attrs
                .get("phone_number")
                .and_then(Value::as_str)
                .map(str::to_string);
            let existing = inner
                .profiles
                .values()
                .find(|p| {
                    (email.is_some() && p.email == email)
                        || (email.is_none() && phone.is_some() && p.phone_number == phone)
                })
                .map(|p| p.id.clone());
            let pid = existing.unwrap_or_else(|| KlState::new_id(&mut inner, "P"));
            let entry = inner
                .profiles
                .entry(pid.clone())
                .or_insert_with(|| FakeProfile {
                    id: pid.clone(),
                    ..FakeProfile::default()
                });
            entry.email = email.or(entry.email.take());
            entry.phone_number = phone.or(entry.phone_number.take());
            entry.first_name = attrs
                .get("first_name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or(entry.first_name.take());
            for l in &job.list_ids {
                inner
                    .memberships
                    .entry(l.clone())
                    .or_default()
                    .insert(pid.clone());
            }
        }
        job.applied = true;
    }
    let (done, failed) = (job.profiles.len(), job.errors.len());
    inner.jobs.insert(id.clone(), job);
    Json(json!({"data": {"type": "profile-bulk-import-job", "id": id, "attributes": {"status": "complete", "total_count": total, "completed_count": done + failed, "failed_count": failed}}})).into_response()
}

async fn job_errors(
    State(st): State<Arc<KlState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = st.check(&headers) {
        return r;
    }
    let inner = st.lock();
    let Some(job) = inner.jobs.get(&id) else {
        drop(inner);
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found.",
            "No such job.",
        );
    };
    let data: Vec<Value> = job
        .errors
        .iter()
        .enumerate()
        .map(|(i, (payload, reason))| {
            json!({"type": "import-error", "id": format!("{id}-e{i}"), "attributes": {
                "code": "invalid", "title": "Invalid input.", "detail": reason,
                "source": {"pointer": format!("/data/attributes/profiles/data/{i}")},
                "original_payload": payload,
            }})
        })
        .collect();
    Json(json!({"data": data, "links": {"next": null}})).into_response()
}

/// Parses `any(field,["a","b"])` or `equals(field,"a")`.
fn parse_filter(filter: &str) -> Option<(String, Vec<String>)> {
    let (op, rest) = filter.trim().split_once('(')?;
    let inner = rest.strip_suffix(')')?;
    let (field, values) = inner.split_once(',')?;
    let values = values.trim();
    let list: Vec<String> = match op {
        "any" => serde_json::from_str(values).ok()?,
        "equals" => vec![serde_json::from_str::<String>(values).ok()?],
        _ => return None,
    };
    Some((field.trim().to_string(), list))
}

async fn get_profiles(
    State(st): State<Arc<KlState>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = st.check(&headers) {
        return r;
    }
    let size = q
        .get("page[size]")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(20);
    if !(1..=100).contains(&size) {
        return invalid("page[size] must be between 1 and 100.");
    }
    let Some((field, values)) = q.get("filter").and_then(|f| parse_filter(f)) else {
        return invalid("Unsupported filter.");
    };
    if !matches!(field.as_str(), "email" | "phone_number") || values.len() > 100 {
        return invalid("Filter on email or phone_number with at most 100 values.");
    }
    let wanted: HashSet<String> = values
        .iter()
        .map(|v| {
            if field == "email" {
                v.to_lowercase()
            } else {
                v.clone()
            }
        })
        .collect();
    let inner = st.lock();
    let data: Vec<Value> = inner
        .profiles
        .values()
        .filter(|p| {
            let v = if field == "email" { &p.email } else { &p.phone_number };
            v.as_ref().is_some_and(|v| wanted.contains(v))
        })
        .take(size)
        .map(|p| json!({"type": "profile", "id": p.id, "attributes": {"email": p.email, "phone_number": p.phone_number}}))
        .collect();
    Json(json!({"data": data, "links": {"next": null}})).into_response()
}

fn relationship_ids(body: &Value) -> Result<Vec<String>, Box<Response>> {
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| Box::new(invalid("data must be an array.")))?;
    if data.is_empty() || data.len() > MAX_RELATIONSHIP {
        return Err(Box::new(invalid(&format!(
            "Between 1 and {MAX_RELATIONSHIP} profiles per request ({} given).",
            data.len()
        ))));
    }
    data.iter()
        .map(|d| {
            match (
                d.get("type").and_then(Value::as_str),
                d.get("id").and_then(Value::as_str),
            ) {
                (Some("profile"), Some(id)) => Ok(id.to_string()),
                _ => Err(Box::new(invalid(
                    "Each item needs type `profile` and an id.",
                ))),
            }
        })
        .collect()
}

async fn add_relationships(
    State(st): State<Arc<KlState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    change_relationships(&st, &id, &headers, &body, true)
}

async fn remove_relationships(
    State(st): State<Arc<KlState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    change_relationships(&st, &id, &headers, &body, false)
}

fn change_relationships(
    st: &KlState,
    list_id: &str,
    headers: &HeaderMap,
    body: &[u8],
    add: bool,
) -> Response {
    let body = match st.body(headers, body, &spec::LIST_MEMBERS) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let ids = match relationship_ids(&body) {
        Ok(ids) => ids,
        Err(r) => return *r,
    };
    let mut inner = st.lock();
    if !inner.lists.iter().any(|(l, _)| l == list_id) {
        drop(inner);
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found.",
            "List not found.",
        );
    }
    inner.max_relationship_seen = inner.max_relationship_seen.max(ids.len());
    if let Some(missing) = ids.iter().find(|id| !inner.profiles.contains_key(*id)) {
        let msg = format!("Profile {missing} does not exist.");
        drop(inner);
        return invalid(&msg);
    }
    let members = inner.memberships.entry(list_id.to_string()).or_default();
    for id in ids {
        if add {
            members.insert(id);
        } else {
            members.remove(&id);
        }
    }
    StatusCode::NO_CONTENT.into_response()
}
