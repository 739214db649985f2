//! A stateful fake of Google's audience APIs: the Google Ads API **v25** Customer Match surface
//! (`googleAds:search`, `userLists:mutate`, `offlineUserDataJobs:create|addOperations|run`), the **Data
//! Manager API v1** (`audienceMembers:ingest|remove`, `accountTypes/GOOGLE_ADS/accounts/{id}/userLists`) and
//! an OAuth2 token endpoint that issues short-lived access tokens from a refresh token (the skeleton's
//! [`OAuthIssuer`], shared with the LinkedIn fake).
//!
//! Strict where the real APIs are strict: bearer token issued by the fake and not expired, `developer-token`
//! header (Ads API only), `login-customer-id` when configured, one identifier kind per `userIdentifiers`
//! entry, every hash 64 lowercase hex, ≤ 100,000 identifiers per `addOperations`, `removeAll` only as a
//! job's first operation, ≤ 10,000 members per Data Manager request with `encoding = HEX`, granted consent
//! and accepted Customer Match terms. Jobs go `PENDING → RUNNING → SUCCESS` over successive status polls
//! after `:run`, and only then change the list. A Data Manager request answers `requestId` at once and
//! changes the list only when `GET /v1/requestStatus:retrieve` first reports it settled (`PROCESSING`
//! for [`FakeGoogleAds::set_dm_processing_polls`] polls, then `SUCCESS`, or `PARTIAL_SUCCESS` / `FAILED`
//! with `errorInfo.errorCounts` as set by [`FakeGoogleAds::dm_outcomes_next`]), per
//! `request_status_per_destination.proto` of google/ads/datamanager/v1 (googleapis `f8291d2b`). Errors use Google's JSON error envelope (`GoogleAdsFailure`
//! details, `quotaErrorDetails.retryDelay` on a 429).
//!
//! Members are keyed by the email hash, or `PHONE:<hash>` for phone-only people, as in the Meta fake.

// Handlers return the platform's error reply as `Err(Response)`; boxing it would only add noise here.
#![allow(clippy::result_large_err)]

use crate::skeleton::identifiers::is_sha256_hex;
use crate::skeleton::lists::{listed, Lists};
use crate::skeleton::{FakeServer, Faults, OAuthIssuer, RequestLog, TokenProblem};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Ad groups, ads and metrics (creative rotation and metrics), in their own file.
#[path = "google_ads_ads.rs"]
mod ads;

pub use ads::{FakeAdStats, STREAM_BATCH};

/// Request shapes from googleapis protos, in their own file.
#[path = "google_ads_spec.rs"]
mod spec;

/// Google Ads API version prefix the fake serves.
pub const ADS_PREFIX: &str = "/v25";
/// Data Manager API version prefix the fake serves.
pub const DATA_MANAGER_PREFIX: &str = "/v1";
/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/token";
/// Rows per search / list page (small, so tests exercise paging).
pub const PAGE_SIZE: usize = 25;
/// Identifiers per `addOperations` call.
pub const MAX_IDENTIFIERS_PER_CALL: usize = 100_000;
/// The match rate the fake reports for a list with members (it matches every valid hash it is sent, but
/// Google reports a rate, so the fake reports a fixed, recognisable one).
pub const MATCH_RATE_PERCENT: i64 = 63;
/// Members per Data Manager request.
pub const MAX_DM_MEMBERS: usize = 10_000;

/// One user list in the fake.
#[derive(Debug, Clone, Default)]
pub struct FakeUserList {
    /// Numeric id.
    pub id: String,
    /// Name (Data Manager: `displayName`).
    pub name: String,
    /// Description.
    pub description: String,
    /// Member keys (email hash, or `PHONE:<hash>`).
    pub members: BTreeSet<String>,
}

listed!(FakeUserList);

#[derive(Debug, Clone, PartialEq, Eq)]
enum JobOp {
    Add(String),
    Remove(String),
    RemoveAll,
}

#[derive(Debug, Clone)]
struct Job {
    list_id: String,
    ops: Vec<JobOp>,
    ran: bool,
    polls: u32,
    status: &'static str,
}

/// How the fake settles a Data Manager request once it stops `PROCESSING`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DmOutcome {
    /// `SUCCESS`: every member is applied.
    Success,
    /// `PARTIAL_SUCCESS`: all but the first `failed` members are applied; `error_info` counts them under
    /// `reason` (a `ProcessingErrorReason` name).
    PartialSuccess {
        /// Members that fail.
        failed: usize,
        /// `ProcessingErrorReason` name.
        reason: String,
    },
    /// `FAILED`: nothing is applied; `error_info` counts every member under `reason`.
    Failed {
        /// `ProcessingErrorReason` name.
        reason: String,
    },
}

/// One accepted Data Manager request, as `requestStatus:retrieve` reports it.
#[derive(Debug, Clone)]
struct DmRequest {
    list_id: String,
    ingest: bool,
    keys: Vec<String>,
    records: usize,
    identifiers: usize,
    /// Retrieves still answered `PROCESSING`.
    processing_polls: u32,
    outcome: DmOutcome,
    /// Set once the request reached its final status (and changed the list).
    settled: bool,
}

#[derive(Debug, Default)]
struct Inner {
    lists: Lists<FakeUserList>,
    /// Data Manager requests by `requestId`.
    dm_requests: HashMap<String, DmRequest>,
    /// Outcomes for the next Data Manager requests, in order; `Success` once empty.
    dm_next_outcomes: std::collections::VecDeque<DmOutcome>,
    /// Retrieves each new request answers `PROCESSING` before it settles.
    dm_processing_polls: u32,
    jobs: HashMap<String, Job>,
    rejected_emails: HashSet<String>,
    max_identifiers_seen: usize,
    max_dm_members_seen: usize,
    jobs_run: usize,
    /// Ad groups, ads and their metrics.
    ads: ads::AdsInner,
}

struct GoogleState {
    developer_token: String,
    customer_id: String,
    login_customer_id: Option<String>,
    oauth: OAuthIssuer,
    allowlisted: AtomicBool,
    retry_delay_secs: AtomicU64,
    /// While set, Data Manager requests stay `PROCESSING`.
    hold_dm_requests: AtomicBool,
    inner: Mutex<Inner>,
}

fn google_error(
    status: StatusCode,
    grpc_status: &str,
    message: &str,
    errors: Vec<Value>,
) -> Response {
    let mut details = Vec::new();
    if !errors.is_empty() {
        details.push(json!({
            "@type": "type.googleapis.com/google.ads.googleads.v25.errors.GoogleAdsFailure",
            "errors": errors,
            "requestId": "fake-request-id",
        }));
    }
    (status, Json(json!({"error": {"code": status.as_u16(), "message": message, "status": grpc_status, "details": details}})))
        .into_response()
}

/// Refuses a body that does not fit its proto message the way Google's JSON front end does: 400
/// `INVALID_ARGUMENT` with `Invalid JSON payload received. Unknown name ...` and a `BadRequest` field
/// violation naming the place.
fn check_shape(body: &Value, shape: &crate::schema::Shape) -> Result<(), Response> {
    crate::schema::check(body, shape).map_err(|v| {
        let message = format!("Invalid JSON payload received. {v}");
        let field = match &v {
            crate::schema::Violation::UnknownField { path, .. } => path.clone(),
            crate::schema::Violation::Invalid { path, .. }
            | crate::schema::Violation::Missing { path, .. } => path.clone(),
        };
        (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": field, "description": message}]}]}}),
            ),
        )
            .into_response()
    })
}

fn bad_request(message: &str, code: Value) -> Response {
    google_error(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "Request contains an invalid argument.",
        vec![json!({"errorCode": code, "message": message})],
    )
}

impl GoogleState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn throttle(&self) -> Response {
        let secs = self.retry_delay_secs.load(Ordering::SeqCst);
        google_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
            vec![json!({
                "errorCode": {"quotaError": "RESOURCE_TEMPORARILY_EXHAUSTED"},
                "message": "Too many requests. Retry in the specified time.",
                "details": {"quotaErrorDetails": {"rateScope": "DEVELOPER", "rateName": "Number of operations for basic access", "retryDelay": format!("{secs}s")}},
            })],
        )
    }

    fn check_bearer(&self, headers: &HeaderMap) -> Result<(), Response> {
        self.oauth.check_bearer(headers).map_err(|p| {
            let msg = match p {
                TokenProblem::Missing => "Request is missing required authentication credential. Expected OAuth 2 access token.",
                TokenProblem::Invalid => "Request had invalid authentication credentials. Expected OAuth 2 access token.",
                TokenProblem::Expired => "Request had invalid authentication credentials: the access token has expired.",
            };
            google_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                msg,
                vec![json!({"errorCode": {"authenticationError": "OAUTH_TOKEN_INVALID"}, "message": msg})],
            )
        })
    }

    fn check_ads_headers(&self, headers: &HeaderMap, cid: &str) -> Result<(), Response> {
        self.check_bearer(headers)?;
        let dev = headers
            .get("developer-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if dev != self.developer_token {
            return Err(google_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "The developer token is not valid.",
                vec![
                    json!({"errorCode": {"authenticationError": "DEVELOPER_TOKEN_INVALID"}, "message": "The developer token is not valid."}),
                ],
            ));
        }
        let login = headers
            .get("login-customer-id")
            .and_then(|v| v.to_str().ok());
        if let Some(l) = login {
            if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad_request(
                    "login-customer-id must be digits only, without dashes",
                    json!({"requestError": "INVALID_CUSTOMER_ID"}),
                ));
            }
        }
        if let Some(expected) = &self.login_customer_id {
            if login != Some(expected.as_str()) {
                return Err(google_error(
                    StatusCode::FORBIDDEN,
                    "PERMISSION_DENIED",
                    "User doesn't have permission to access customer.",
                    vec![
                        json!({"errorCode": {"authorizationError": "USER_PERMISSION_DENIED"}, "message": "Set login-customer-id to the manager account."}),
                    ],
                ));
            }
        }
        if cid != self.customer_id {
            return Err(google_error(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "The caller does not have permission",
                vec![
                    json!({"errorCode": {"authorizationError": "USER_PERMISSION_DENIED"}, "message": format!("no access to customer {cid}")}),
                ],
            ));
        }
        Ok(())
    }
}

/// The fake Google APIs. Dropping it stops the server.
pub struct FakeGoogleAds {
    server: FakeServer,
    state: Arc<GoogleState>,
}

impl std::fmt::Debug for FakeGoogleAds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGoogleAds")
            .field("base_url", &self.server.base_url())
            .finish_non_exhaustive()
    }
}

/// Credentials and ids the fake accepts.
#[derive(Debug, Clone)]
pub struct GoogleFakeConfig {
    /// `developer-token` header value.
    pub developer_token: String,
    /// Customer (advertiser) id, digits.
    pub customer_id: String,
    /// Required `login-customer-id`, if the fake should insist on one.
    pub login_customer_id: Option<String>,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// The refresh token the token endpoint accepts.
    pub refresh_token: String,
}

impl FakeGoogleAds {
    /// Starts the fake.
    pub async fn start(config: GoogleFakeConfig) -> std::io::Result<FakeGoogleAds> {
        let state = Arc::new(GoogleState {
            developer_token: config.developer_token,
            customer_id: config.customer_id,
            login_customer_id: config.login_customer_id,
            oauth: OAuthIssuer::new(
                &config.client_id,
                &config.client_secret,
                &config.refresh_token,
                "ya29.fake-",
            ),
            allowlisted: AtomicBool::new(true),
            retry_delay_secs: AtomicU64::new(1),
            hold_dm_requests: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                lists: Lists::starting_at(9_100_000_001),
                dm_processing_polls: 1,
                ..Inner::default()
            }),
        });
        let router = Router::new().fallback(dispatch).with_state(state.clone());
        let throttle_state = state.clone();
        let server =
            FakeServer::start("", router, Arc::new(move || throttle_state.throttle())).await?;
        Ok(FakeGoogleAds { server, state })
    }

    /// Google Ads API base (`http://127.0.0.1:PORT/v25`).
    pub fn base_url(&self) -> String {
        format!("{}{ADS_PREFIX}", self.server.base_url())
    }

    /// Data Manager API base (`http://127.0.0.1:PORT/v1`).
    pub fn data_manager_url(&self) -> String {
        format!("{}{DATA_MANAGER_PREFIX}", self.server.base_url())
    }

    /// Token endpoint URL.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.server.base_url())
    }

    /// Generic fault knobs; `throttle_next` answers with a 429 `RESOURCE_EXHAUSTED` carrying
    /// `retryDelay` (see [`FakeGoogleAds::set_retry_delay_secs`]).
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

    /// The `retryDelay` the throttle reply carries.
    pub fn set_retry_delay_secs(&self, secs: u64) {
        self.state.retry_delay_secs.store(secs, Ordering::SeqCst);
    }

    /// Whether the developer token may use Customer Match (`false`: job creation fails with
    /// `CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE`).
    pub fn set_allowlisted(&self, allowed: bool) {
        self.state.allowlisted.store(allowed, Ordering::SeqCst);
    }

    /// Creates lists directly (as if made in the Ads UI); returns their ids.
    pub fn seed_lists<I, S>(&self, names: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.state.lock().lists.seed(names)
    }

    /// Puts member keys into a list directly.
    pub fn seed_members<I: IntoIterator<Item = String>>(&self, list_id: &str, keys: I) {
        self.state.lock().lists.seed_members(list_id, keys);
    }

    /// All lists.
    pub fn lists(&self) -> Vec<FakeUserList> {
        self.state.lock().lists.snapshot()
    }

    /// The id of the (first) list with this name.
    pub fn list_id(&self, name: &str) -> Option<String> {
        self.state.lock().lists.id_of(name)
    }

    /// Current member keys of a list.
    pub fn members(&self, list_id: &str) -> BTreeSet<String> {
        self.state.lock().lists.members_of(list_id)
    }

    /// People whose email hash is in `hashes` are refused (partial failure / field violation).
    pub fn reject_emails<I: IntoIterator<Item = String>>(&self, hashes: I) {
        self.state.lock().rejected_emails.extend(hashes);
    }

    /// Largest identifier count in one `addOperations` call.
    pub fn max_identifiers_per_call(&self) -> usize {
        self.state.lock().max_identifiers_seen
    }

    /// Largest member count in one Data Manager request.
    pub fn max_members_per_request(&self) -> usize {
        self.state.lock().max_dm_members_seen
    }

    /// Jobs that reached `SUCCESS`.
    pub fn jobs_completed(&self) -> usize {
        self.state.lock().jobs_run
    }

    /// Settles the next Data Manager requests with these outcomes, in order (then `SUCCESS` again), so
    /// tests see Google's `FAILED` and `PARTIAL_SUCCESS` statuses.
    pub fn dm_outcomes_next<I: IntoIterator<Item = DmOutcome>>(&self, outcomes: I) {
        self.state.lock().dm_next_outcomes.extend(outcomes);
    }

    /// How many `requestStatus:retrieve` calls a new request answers `PROCESSING` before it settles
    /// (default 1, as Google processes every request asynchronously).
    pub fn set_dm_processing_polls(&self, polls: u32) {
        self.state.lock().dm_processing_polls = polls;
    }

    /// Keeps every Data Manager request `PROCESSING` while set (a crash test's long-running request).
    pub fn hold_dm_requests(&self, hold: bool) {
        self.state.hold_dm_requests.store(hold, Ordering::SeqCst);
    }

    /// Data Manager ingest and remove requests accepted so far.
    pub fn dm_requests_submitted(&self) -> usize {
        self.state.lock().dm_requests.len()
    }
}

async fn dispatch(
    State(st): State<Arc<GoogleState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if path == TOKEN_PATH && method == Method::POST {
        return st.oauth.token_endpoint(&headers, &body);
    }
    let json_body = || -> Result<Value, Response> {
        if body.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(&body).map_err(|e| {
            bad_request(
                &format!("Invalid JSON payload received. {e}"),
                json!({"requestError": "BAD_REQUEST"}),
            )
        })
    };
    if let Some(rest) = path.strip_prefix(&format!("{ADS_PREFIX}/customers/")) {
        let (cid, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if let Err(r) = st.check_ads_headers(&headers, cid) {
            return r;
        }
        if method != Method::POST {
            return google_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "Method not found.",
                vec![],
            );
        }
        let body = match json_body() {
            Ok(b) => b,
            Err(r) => return r,
        };
        return match tail {
            "googleAds:search" => search(&st, cid, &body),
            "googleAds:searchStream" => ads::search_stream(&st, &body),
            "adGroupAds:mutate" => ads::mutate(&st, cid, &body, true),
            "adGroups:mutate" => ads::mutate(&st, cid, &body, false),
            "userLists:mutate" => check_shape(&body, &spec::MUTATE_USER_LISTS)
                .map_or_else(|r| r, |()| mutate_user_lists(&st, cid, &body)),
            "offlineUserDataJobs:create" => check_shape(&body, &spec::CREATE_OFFLINE_USER_DATA_JOB)
                .map_or_else(|r| r, |()| create_job(&st, cid, &body)),
            t => match t
                .strip_prefix("offlineUserDataJobs/")
                .and_then(|r| r.split_once(':'))
            {
                Some((id, "addOperations")) => {
                    check_shape(&body, &spec::ADD_OFFLINE_USER_DATA_JOB_OPERATIONS)
                        .map_or_else(|r| r, |()| add_operations(&st, id, &body))
                }
                Some((id, "run")) => run_job(&st, cid, id),
                _ => google_error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    "Method not found.",
                    vec![],
                ),
            },
        };
    }
    if let Some(rest) = path.strip_prefix(DATA_MANAGER_PREFIX) {
        if let Err(r) = st.check_bearer(&headers) {
            return r;
        }
        if let Some((acct, list_id)) = rest
            .strip_prefix("/accountTypes/GOOGLE_ADS/accounts/")
            .and_then(|r| r.split_once("/userLists/"))
        {
            if acct != st.customer_id || method != Method::GET {
                return google_error(
                    StatusCode::FORBIDDEN,
                    "PERMISSION_DENIED",
                    "The caller does not have permission",
                    vec![],
                );
            }
            return dm_get_user_list(&st, list_id);
        }
        if let Some(acct) = rest
            .strip_prefix("/accountTypes/GOOGLE_ADS/accounts/")
            .and_then(|r| r.strip_suffix("/userLists"))
        {
            if acct != st.customer_id {
                return google_error(
                    StatusCode::FORBIDDEN,
                    "PERMISSION_DENIED",
                    "The caller does not have permission",
                    vec![],
                );
            }
            return if method == Method::GET {
                dm_list_user_lists(&st, uri.query())
            } else {
                match json_body().and_then(|b| check_shape(&b, &spec::DM_USER_LIST).map(|()| b)) {
                    Ok(b) => dm_create_user_list(&st, &b),
                    Err(r) => r,
                }
            };
        }
        let body = match json_body() {
            Ok(b) => b,
            Err(r) => return r,
        };
        return match (method, rest) {
            (Method::GET, "/requestStatus:retrieve") => dm_retrieve_status(&st, uri.query()),
            (Method::POST, "/audienceMembers:ingest") => {
                check_shape(&body, &spec::INGEST_AUDIENCE_MEMBERS)
                    .map_or_else(|r| r, |()| dm_members(&st, &body, true))
            }
            (Method::POST, "/audienceMembers:remove") => {
                check_shape(&body, &spec::REMOVE_AUDIENCE_MEMBERS)
                    .map_or_else(|r| r, |()| dm_members(&st, &body, false))
            }
            _ => google_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "Method not found.",
                vec![],
            ),
        };
    }
    google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found.", vec![])
}

fn page_bounds(token: Option<&str>, total: usize) -> Result<(usize, usize), Response> {
    let start = match token {
        None | Some("") => 0,
        Some(t) => match t
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if n <= total => n,
            _ => {
                return Err(bad_request(
                    "Page token is invalid.",
                    json!({"requestError": "INVALID_PAGE_TOKEN"}),
                ))
            }
        },
    };
    Ok((start, (start + PAGE_SIZE).min(total)))
}

fn search(st: &GoogleState, cid: &str, body: &Value) -> Response {
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let lower = query.to_lowercase();
    if !lower.starts_with("select ") {
        return bad_request(
            "Error in query: expected SELECT.",
            json!({"queryError": "UNEXPECTED_INPUT"}),
        );
    }
    if lower.contains("from user_list") {
        let inner = st.lock();
        let (start, end) = match page_bounds(
            body.get("pageToken").and_then(Value::as_str),
            inner.lists.len(),
        ) {
            Ok(b) => b,
            Err(r) => return r,
        };
        // `WHERE user_list.id = N` narrows to one list; size fields come back only when selected.
        let only = lower.split("user_list.id = ").nth(1).map(|r| {
            r.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        });
        let sizes = lower.contains("user_list.size_for_search");
        let results: Vec<Value> = inner.lists[start..end]
            .iter()
            .filter(|l| only.as_ref().is_none_or(|id| &l.id == id))
            .map(|l| {
                let mut list = json!({"resourceName": format!("customers/{cid}/userLists/{}", l.id), "id": l.id, "name": l.name});
                if sizes {
                    // int64 fields are JSON strings in proto3 JSON.
                    let n = l.members.len().to_string();
                    list["sizeForSearch"] = json!(n);
                    list["sizeForDisplay"] = json!(n);
                    if !l.members.is_empty() {
                        list["matchRatePercentage"] = json!(MATCH_RATE_PERCENT);
                    }
                }
                json!({ "userList": list })
            })
            .collect();
        let mut reply = json!({"results": results, "fieldMask": "userList.resourceName,userList.id,userList.name"});
        if end < inner.lists.len() {
            reply["nextPageToken"] = json!(format!("page-{end}"));
        }
        return Json(reply).into_response();
    }
    if lower.contains("from offline_user_data_job") {
        let Some(name) = query.split('\'').nth(1) else {
            return bad_request(
                "Error in query: expected a resource_name condition.",
                json!({"queryError": "UNEXPECTED_INPUT"}),
            );
        };
        let Some(id) = name.rsplit('/').next() else {
            return bad_request(
                "bad resource name",
                json!({"queryError": "UNEXPECTED_INPUT"}),
            );
        };
        let mut inner = st.lock();
        let Some(job) = inner.jobs.get_mut(id) else {
            return Json(json!({"results": []})).into_response();
        };
        if job.ran && job.status != "SUCCESS" {
            job.polls += 1;
            job.status = match job.polls {
                1 => "PENDING",
                2 => "RUNNING",
                _ => "SUCCESS",
            };
            if job.status == "SUCCESS" {
                let job = job.clone();
                if let Some(list) = inner.lists.iter_mut().find(|l| l.id == job.list_id) {
                    for op in &job.ops {
                        match op {
                            JobOp::Add(k) => {
                                list.members.insert(k.clone());
                            }
                            JobOp::Remove(k) => {
                                list.members.remove(k);
                            }
                            JobOp::RemoveAll => list.members.clear(),
                        }
                    }
                }
                inner.jobs_run += 1;
            }
        }
        let reported = inner.jobs.get(id).map(|j| j.status).unwrap_or("PENDING");
        return Json(json!({"results": [{"offlineUserDataJob": {"resourceName": name, "status": reported}}]})).into_response();
    }
    if lower.contains("from ad_group_ad") {
        return ads::search(st, cid, query);
    }
    bad_request(
        "Error in query: unsupported resource.",
        json!({"queryError": "PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE"}),
    )
}

fn mutate_user_lists(st: &GoogleState, cid: &str, body: &Value) -> Response {
    let Some(ops) = body
        .get("operations")
        .and_then(Value::as_array)
        .filter(|o| !o.is_empty())
    else {
        return bad_request(
            "operations are required",
            json!({"requestError": "REQUIRED_FIELD_MISSING"}),
        );
    };
    let mut inner = st.lock();
    let mut results = Vec::new();
    for op in ops {
        let Some(create) = op.get("create") else {
            return bad_request(
                "only create is supported by the fake",
                json!({"requestError": "UNKNOWN"}),
            );
        };
        let name = create
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_string();
        if name.is_empty() {
            return bad_request(
                "name is required",
                json!({"userListError": "NAME_REQUIRED"}),
            );
        }
        if create
            .pointer("/crmBasedUserList/uploadKeyType")
            .and_then(Value::as_str)
            != Some("CONTACT_INFO")
        {
            return bad_request(
                "crmBasedUserList.uploadKeyType must be CONTACT_INFO",
                json!({"userListError": "INVALID_UPLOAD_KEY_TYPE"}),
            );
        }
        match create.get("membershipLifeSpan").and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        }) {
            // user_list.proto (v25): "This field must be between 0 and 540 inclusive."
            Some(n) if (0..=540).contains(&n) => {}
            Some(_) => {
                return bad_request(
                    "The value is too high: membership_life_span must be between 0 and 540.",
                    json!({"rangeError": "TOO_HIGH"}),
                )
            }
            None => {
                return bad_request(
                    "membership_life_span is required.",
                    json!({"fieldError": "REQUIRED"}),
                )
            }
        }
        if inner.lists.has_name(&name) {
            return bad_request(
                "Another user list with the same name already exists.",
                json!({"userListError": "NAME_ALREADY_USED"}),
            );
        }
        let id = inner.lists.mint_id();
        inner.lists.push(FakeUserList {
            id: id.clone(),
            name,
            description: create
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            ..FakeUserList::default()
        });
        results.push(json!({"resourceName": format!("customers/{cid}/userLists/{id}")}));
    }
    Json(json!({"results": results})).into_response()
}

fn create_job(st: &GoogleState, cid: &str, body: &Value) -> Response {
    let job = body.get("job").cloned().unwrap_or_default();
    if job.get("type").and_then(Value::as_str) != Some("CUSTOMER_MATCH_USER_LIST") {
        return bad_request(
            "job.type must be CUSTOMER_MATCH_USER_LIST",
            json!({"offlineUserDataJobError": "INVALID_JOB_TYPE"}),
        );
    }
    if !st.allowlisted.load(Ordering::SeqCst) {
        return google_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "The caller does not have permission",
            vec![json!({
                "errorCode": {"notAllowlistedError": "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE"},
                "message": "Customer is not allowlisted for accessing this feature.",
            })],
        );
    }
    let list = job
        .pointer("/customerMatchUserListMetadata/userList")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let prefix = format!("customers/{cid}/userLists/");
    let Some(list_id) = list.strip_prefix(&prefix) else {
        return bad_request(
            "customerMatchUserListMetadata.userList must be a user list resource name",
            json!({"offlineUserDataJobError": "INVALID_USER_LIST_ID"}),
        );
    };
    for key in ["adUserData", "adPersonalization"] {
        let v = job
            .pointer(&format!("/customerMatchUserListMetadata/consent/{key}"))
            .and_then(Value::as_str);
        if !matches!(v, Some("GRANTED" | "DENIED")) {
            return bad_request(
                &format!("consent.{key} must be GRANTED or DENIED"),
                json!({"offlineUserDataJobError": "INVALID_CONSENT"}),
            );
        }
    }
    let mut inner = st.lock();
    if !inner.lists.iter().any(|l| l.id == list_id) {
        return bad_request(
            "The user list does not exist.",
            json!({"offlineUserDataJobError": "INVALID_USER_LIST_ID"}),
        );
    }
    if inner
        .jobs
        .values()
        .any(|j| j.list_id == list_id && j.ran && j.status != "SUCCESS")
    {
        return bad_request(
            "Another job is running on this user list.",
            json!({"offlineUserDataJobError": "CONCURRENT_JOB_ON_SAME_USER_LIST"}),
        );
    }
    let id = inner.lists.mint_id();
    inner.jobs.insert(
        id.clone(),
        Job {
            list_id: list_id.to_string(),
            ops: Vec::new(),
            ran: false,
            polls: 0,
            status: "PENDING",
        },
    );
    Json(json!({"resourceName": format!("customers/{cid}/offlineUserDataJobs/{id}")}))
        .into_response()
}

/// Validates one `userIdentifiers` list; returns the member key or the reason.
/// (email hash, phone hash) of one person, or (reason code, description).
type IdentifierCheck = Result<(Option<String>, Option<String>), (&'static str, String)>;

fn identifiers_key(ids: &[Value], max: usize) -> IdentifierCheck {
    if ids.is_empty() || ids.len() > max {
        return Err((
            "TOO_MANY_USER_IDENTIFIERS",
            format!("between 1 and {max} identifiers per person"),
        ));
    }
    let (mut email, mut phone) = (None, None);
    for id in ids {
        let Some(obj) = id.as_object().filter(|o| o.len() == 1) else {
            return Err((
                "INVALID_USER_IDENTIFIER",
                "each identifier sets exactly one field".into(),
            ));
        };
        for (k, v) in obj {
            let s = v.as_str().unwrap_or_default();
            match k.as_str() {
                "hashedEmail" | "emailAddress" | "hashedPhoneNumber" | "phoneNumber" => {
                    if !is_sha256_hex(s) {
                        return Err((
                            "INVALID_SHA256_FORMAT",
                            format!("{k} must be a SHA-256 hash as 64 lowercase hex"),
                        ));
                    }
                    if k.contains("mail") || k.contains("Email") {
                        email.get_or_insert_with(|| s.to_string());
                    } else {
                        phone.get_or_insert_with(|| s.to_string());
                    }
                }
                "addressInfo" | "address" => check_address(k, v)?,
                other => {
                    return Err((
                        "INVALID_USER_IDENTIFIER",
                        format!("unknown identifier {other}"),
                    ))
                }
            }
        }
    }
    Ok((email, phone))
}

/// Checks an address identifier as the protos define it: Google Ads `OfflineUserAddressInfo`
/// (`hashedFirstName`, `hashedLastName` SHA-256; `countryCode`, `postalCode` unhashed) or Data Manager
/// `AddressInfo` (`givenName`, `familyName` hashed; `regionCode`, `postalCode` unhashed). All four are
/// required; the country must be two upper-case letters and the postal code must not be a hash.
fn check_address(key: &str, v: &Value) -> Result<(), (&'static str, String)> {
    let (first, last, country) = if key == "addressInfo" {
        ("hashedFirstName", "hashedLastName", "countryCode")
    } else {
        ("givenName", "familyName", "regionCode")
    };
    let bad = |what: String| Err(("INVALID_ADDRESS_INFO", format!("{key}: {what}")));
    let Some(obj) = v.as_object() else {
        return bad("must be an object".into());
    };
    for k in obj.keys() {
        if ![first, last, country, "postalCode"].contains(&k.as_str()) {
            return bad(format!("unknown field {k}"));
        }
    }
    let text = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default();
    for k in [first, last] {
        if !is_sha256_hex(text(k)) {
            return bad(format!("{k} must be a SHA-256 hash as 64 lowercase hex"));
        }
    }
    let c = text(country);
    if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
        return bad(format!(
            "{country} must be an ISO 3166-1 alpha-2 code, got {c:?}"
        ));
    }
    let postal = text("postalCode");
    if postal.trim().is_empty() || is_sha256_hex(postal) {
        return bad("postalCode is required and is sent unhashed".into());
    }
    Ok(())
}

fn member_key(email: Option<String>, phone: Option<String>) -> Option<String> {
    email.or_else(|| phone.map(|p| format!("PHONE:{p}")))
}

fn add_operations(st: &GoogleState, job_id: &str, body: &Value) -> Response {
    let Some(ops) = body
        .get("operations")
        .and_then(Value::as_array)
        .filter(|o| !o.is_empty())
    else {
        return bad_request(
            "operations are required",
            json!({"requestError": "REQUIRED_FIELD_MISSING"}),
        );
    };
    let partial = body
        .get("enablePartialFailure")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut inner = st.lock();
    let rejected = inner.rejected_emails.clone();
    let Some(job) = inner.jobs.get(job_id) else {
        return bad_request(
            "The job does not exist.",
            json!({"offlineUserDataJobError": "INVALID_JOB_ID"}),
        );
    };
    if job.ran {
        return bad_request(
            "Operations cannot be added to a job that has been run.",
            json!({"offlineUserDataJobError": "JOB_ALREADY_STARTED"}),
        );
    }
    let mut job_empty = job.ops.is_empty();
    let mut identifiers = 0usize;
    let mut accepted = Vec::new();
    let mut errors = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let fail = |code: &str, message: String| {
            json!({
                "errorCode": {"offlineUserDataJobError": code},
                "message": message,
                "location": {"fieldPathElements": [{"fieldName": "operations", "index": i}, {"fieldName": "create"}]},
            })
        };
        let obj = op.as_object().cloned().unwrap_or_default();
        if obj.len() != 1 {
            errors.push(fail(
                "INVALID_OPERATION",
                "set exactly one of create, remove, removeAll".into(),
            ));
            continue;
        }
        if obj.get("removeAll").and_then(Value::as_bool) == Some(true) {
            if !job_empty || i != 0 {
                errors.push(fail(
                    "REMOVE_ALL_MUST_BE_FIRST_OPERATION",
                    "removeAll must be the first operation of the job".into(),
                ));
            } else {
                accepted.push(JobOp::RemoveAll);
            }
            continue;
        }
        let (is_add, data) = match (obj.get("create"), obj.get("remove")) {
            (Some(d), None) => (true, d),
            (None, Some(d)) => (false, d),
            _ => {
                errors.push(fail(
                    "INVALID_OPERATION",
                    "set exactly one of create, remove, removeAll".into(),
                ));
                continue;
            }
        };
        let ids = data
            .get("userIdentifiers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        identifiers += ids.len();
        match identifiers_key(&ids, 20) {
            Err((code, msg)) => errors.push(fail(code, msg)),
            Ok((email, phone)) => {
                if email.as_ref().is_some_and(|e| rejected.contains(e)) {
                    errors.push(fail(
                        "INVALID_EMAIL_ADDRESS",
                        "The email address is not valid.".into(),
                    ));
                    continue;
                }
                match member_key(email, phone) {
                    Some(k) => accepted.push(if is_add {
                        JobOp::Add(k)
                    } else {
                        JobOp::Remove(k)
                    }),
                    None => errors.push(fail(
                        "INVALID_USER_IDENTIFIER",
                        "no matchable identifier".into(),
                    )),
                }
            }
        }
        job_empty = false;
    }
    if identifiers > MAX_IDENTIFIERS_PER_CALL {
        return bad_request(
            &format!(
                "{identifiers} identifiers in one request; at most {MAX_IDENTIFIERS_PER_CALL}"
            ),
            json!({"offlineUserDataJobError": "TOO_MANY_USER_IDENTIFIERS"}),
        );
    }
    if !errors.is_empty() && !partial {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
            errors,
        );
    }
    inner.max_identifiers_seen = inner.max_identifiers_seen.max(identifiers);
    if let Some(job) = inner.jobs.get_mut(job_id) {
        job.ops.extend(accepted);
    }
    if errors.is_empty() {
        return Json(json!({})).into_response();
    }
    Json(json!({"partialFailureError": {
        "code": 3,
        "message": format!("Multiple errors in 'details'. First error: {}", errors[0]["message"].as_str().unwrap_or_default()),
        "details": [{"@type": "type.googleapis.com/google.ads.googleads.v25.errors.GoogleAdsFailure", "errors": errors}],
    }}))
    .into_response()
}

fn run_job(st: &GoogleState, cid: &str, job_id: &str) -> Response {
    let mut inner = st.lock();
    let Some(job) = inner.jobs.get_mut(job_id) else {
        return bad_request(
            "The job does not exist.",
            json!({"offlineUserDataJobError": "INVALID_JOB_ID"}),
        );
    };
    if job.ran {
        return bad_request(
            "The job has already been run.",
            json!({"offlineUserDataJobError": "JOB_ALREADY_STARTED"}),
        );
    }
    job.ran = true;
    Json(json!({"name": format!("customers/{cid}/operations/{job_id}"), "metadata": {"resourceName": format!("customers/{cid}/offlineUserDataJobs/{job_id}")}}))
        .into_response()
}

fn dm_list_user_lists(st: &GoogleState, query: Option<&str>) -> Response {
    let params: HashMap<String, String> = query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let inner = st.lock();
    let (start, end) = match page_bounds(
        params.get("pageToken").map(String::as_str),
        inner.lists.len(),
    ) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let lists: Vec<Value> = inner.lists[start..end]
        .iter()
        .map(|l| {
            json!({
                "name": format!("accountTypes/GOOGLE_ADS/accounts/{}/userLists/{}", st.customer_id, l.id),
                "id": l.id,
                "displayName": l.name,
                "description": l.description,
            })
        })
        .collect();
    let mut reply = json!({"userLists": lists});
    if end < inner.lists.len() {
        reply["nextPageToken"] = json!(format!("page-{end}"));
    }
    Json(reply).into_response()
}

/// `GET .../userLists/{id}`: the list with `sizeInfo` (int64 counts as strings) and the contact-id match
/// rate, as `google/ads/datamanager/v1/user_list.proto` describes them.
fn dm_get_user_list(st: &GoogleState, id: &str) -> Response {
    let inner = st.lock();
    let Some(l) = inner.lists.iter().find(|l| l.id == id) else {
        return google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Requested entity was not found.",
            vec![],
        );
    };
    let n = l.members.len().to_string();
    let mut contact = json!({"dataSourceType": "DATA_SOURCE_TYPE_FIRST_PARTY"});
    if !l.members.is_empty() {
        contact["matchRatePercentage"] = json!(MATCH_RATE_PERCENT);
    }
    Json(json!({
        "name": format!("accountTypes/GOOGLE_ADS/accounts/{}/userLists/{}", st.customer_id, l.id),
        "id": l.id,
        "displayName": l.name,
        "description": l.description,
        "sizeInfo": {"searchNetworkMembersCount": n, "displayNetworkMembersCount": n},
        "ingestedUserListInfo": {"uploadKeyTypes": ["CONTACT_ID"], "contactIdInfo": contact},
    }))
    .into_response()
}

fn dm_create_user_list(st: &GoogleState, body: &Value) -> Response {
    let name = body
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    if name.is_empty() {
        return bad_request(
            "displayName is required",
            json!({"reason": "REQUIRED_FIELD_MISSING"}),
        );
    }
    let keys = body
        .pointer("/ingestedUserListInfo/uploadKeyTypes")
        .and_then(Value::as_array);
    if !keys.is_some_and(|k| k.iter().any(|v| v == "CONTACT_ID")) {
        return bad_request(
            "ingestedUserListInfo.uploadKeyTypes must contain CONTACT_ID",
            json!({"reason": "INVALID_ARGUMENT"}),
        );
    }
    let mut inner = st.lock();
    if inner.lists.has_name(&name) {
        return google_error(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            "A user list with this name already exists.",
            vec![],
        );
    }
    let id = inner.lists.mint_id();
    inner.lists.push(FakeUserList {
        id: id.clone(),
        name: name.clone(),
        description: body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        ..FakeUserList::default()
    });
    Json(json!({
        "name": format!("accountTypes/GOOGLE_ADS/accounts/{}/userLists/{id}", st.customer_id),
        "id": id,
        "displayName": name,
    }))
    .into_response()
}

fn field_violations(violations: Vec<Value>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {
            "code": 400,
            "message": "There was a problem with the request.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "INVALID_ARGUMENT", "domain": "datamanager.googleapis.com"},
                {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations},
            ],
        }})),
    )
        .into_response()
}

fn dm_members(st: &GoogleState, body: &Value, ingest: bool) -> Response {
    let bad = |field: &str, reason: &str, description: &str| {
        field_violations(vec![
            json!({"field": field, "reason": reason, "description": description}),
        ])
    };
    let Some(dest) = body
        .get("destinations")
        .and_then(Value::as_array)
        .filter(|d| d.len() == 1)
        .map(|d| &d[0])
    else {
        return bad(
            "destinations",
            "INVALID_ARGUMENT",
            "exactly one destination expected by the fake",
        );
    };
    let acct_type = dest
        .pointer("/operatingAccount/accountType")
        .and_then(Value::as_str);
    let acct_id = dest
        .pointer("/operatingAccount/accountId")
        .and_then(Value::as_str);
    if acct_type != Some("GOOGLE_ADS") || acct_id != Some(st.customer_id.as_str()) {
        return bad(
            "destinations[0].operating_account",
            "INVALID_OPERATING_ACCOUNT",
            "operatingAccount must be the GOOGLE_ADS customer",
        );
    }
    if let Some(login) = &st.login_customer_id {
        if dest
            .pointer("/loginAccount/accountId")
            .and_then(Value::as_str)
            != Some(login.as_str())
        {
            return google_error(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "loginAccount must be the manager account",
                vec![],
            );
        }
    }
    let Some(list_id) = dest.get("productDestinationId").and_then(Value::as_str) else {
        return bad(
            "destinations[0].product_destination_id",
            "REQUIRED_FIELD_MISSING",
            "productDestinationId is required",
        );
    };
    if body.get("encoding").and_then(Value::as_str) != Some("HEX") {
        return bad(
            "encoding",
            "INVALID_ENCODING",
            "encoding must be HEX for hex-encoded hashes",
        );
    }
    if ingest {
        for key in ["adUserData", "adPersonalization"] {
            if body
                .pointer(&format!("/consent/{key}"))
                .and_then(Value::as_str)
                != Some("CONSENT_GRANTED")
            {
                return bad(
                    &format!("consent.{key}"),
                    "INVALID_CONSENT",
                    "consent must be CONSENT_GRANTED",
                );
            }
        }
        if body
            .pointer("/termsOfService/customerMatchTermsOfServiceStatus")
            .and_then(Value::as_str)
            != Some("ACCEPTED")
        {
            return bad(
                "terms_of_service",
                "TERMS_NOT_ACCEPTED",
                "Customer Match terms of service must be accepted",
            );
        }
    }
    let Some(members) = body
        .get("audienceMembers")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
    else {
        return bad(
            "audience_members",
            "REQUIRED_FIELD_MISSING",
            "audienceMembers is required",
        );
    };
    if members.len() > MAX_DM_MEMBERS {
        return bad(
            "audience_members",
            "TOO_MANY_AUDIENCE_MEMBERS",
            "at most 10000 audience members per request",
        );
    }
    let mut inner = st.lock();
    let rejected = inner.rejected_emails.clone();
    let mut keys = Vec::new();
    let mut violations = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let ids = m
            .pointer("/userData/userIdentifiers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let field = format!("audience_members.audience_members[{i}].user_data.user_identifiers");
        match identifiers_key(&ids, 10) {
            Err((reason, d)) => {
                violations.push(json!({"field": field, "reason": reason, "description": d}))
            }
            Ok((email, phone)) => {
                if email.as_ref().is_some_and(|e| rejected.contains(e)) {
                    violations.push(json!({"field": field, "reason": "INVALID_EMAIL_ADDRESS", "description": "Email is not valid."}));
                } else if let Some(k) = member_key(email, phone) {
                    keys.push(k);
                }
            }
        }
    }
    if !violations.is_empty() {
        return field_violations(violations);
    }
    inner.max_dm_members_seen = inner.max_dm_members_seen.max(members.len());
    if !inner.lists.iter().any(|l| l.id == list_id) {
        drop(inner);
        return bad(
            "destinations[0].product_destination_id",
            "INVALID_PRODUCT_DESTINATION_ID",
            "unknown user list",
        );
    }
    // Accepted: Google processes it later; `requestStatus:retrieve` reports how it went.
    let identifiers = members
        .iter()
        .filter_map(|m| {
            m.pointer("/userData/userIdentifiers")
                .and_then(Value::as_array)
        })
        .map(Vec::len)
        .sum();
    let outcome = inner
        .dm_next_outcomes
        .pop_front()
        .unwrap_or(DmOutcome::Success);
    let seq = inner.dm_requests.len() + 1;
    let request_id = format!("{seq:08x}-fake-4dm0-a000-{seq:012x}");
    let processing_polls = inner.dm_processing_polls;
    inner.dm_requests.insert(
        request_id.clone(),
        DmRequest {
            list_id: list_id.to_string(),
            ingest,
            keys,
            records: members.len(),
            identifiers,
            processing_polls,
            outcome,
            settled: false,
        },
    );
    Json(json!({"requestId": request_id})).into_response()
}

/// `GET /v1/requestStatus:retrieve?requestId=…` (`RetrieveRequestStatusResponse` of
/// google/ads/datamanager/v1 `ingestion_service.proto`): `PROCESSING` for the first polls, then the
/// request's outcome, applied to the list once; `int64` counts as decimal strings, as proto3 JSON has them.
fn dm_retrieve_status(st: &GoogleState, query: Option<&str>) -> Response {
    let params: HashMap<String, String> = query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let Some(id) = params
        .get("requestId")
        .or_else(|| params.get("request_id"))
        .filter(|id| !id.is_empty())
    else {
        return field_violations(vec![
            json!({"field": "request_id", "reason": "REQUIRED_FIELD_MISSING", "description": "request_id is required"}),
        ]);
    };
    let hold = st.hold_dm_requests.load(Ordering::SeqCst);
    let mut inner = st.lock();
    let Some(req) = inner.dm_requests.get_mut(id) else {
        return google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Request ID not found.",
            vec![],
        );
    };
    let destination = json!({
        "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": st.customer_id},
        "productDestinationId": req.list_id,
    });
    if hold || req.processing_polls > 0 {
        if !hold {
            req.processing_polls -= 1;
        }
        return Json(json!({"requestStatusPerDestination": [{
            "destination": destination,
            "requestStatus": "PROCESSING",
        }]}))
        .into_response();
    }
    let req = req.clone();
    let (status, applied, error_counts) = match &req.outcome {
        DmOutcome::Success => ("SUCCESS", req.keys.len(), vec![]),
        DmOutcome::PartialSuccess { failed, reason } => {
            let failed = (*failed).min(req.records);
            (
                "PARTIAL_SUCCESS",
                req.keys.len().saturating_sub(failed),
                vec![json!({"recordCount": failed.to_string(), "reason": reason})],
            )
        }
        DmOutcome::Failed { reason } => (
            "FAILED",
            0,
            vec![json!({"recordCount": req.records.to_string(), "reason": reason})],
        ),
    };
    if !req.settled {
        if let Some(list) = inner.lists.iter_mut().find(|l| l.id == req.list_id) {
            let skip = req.keys.len() - applied;
            for k in req.keys.iter().skip(skip) {
                if req.ingest {
                    list.members.insert(k.clone());
                } else {
                    list.members.remove(k);
                }
            }
        }
        if let Some(r) = inner.dm_requests.get_mut(id) {
            r.settled = true;
        }
    }
    let counts = json!({
        "recordCount": req.records.to_string(),
        "userIdentifierCount": req.identifiers.to_string(),
    });
    let mut entry = json!({"destination": destination, "requestStatus": status});
    if req.ingest {
        let mut c = counts;
        c["uploadMatchRateRange"] = json!("MATCH_RATE_RANGE_61_TO_70");
        entry["audienceMembersIngestionStatus"] = json!({"userDataIngestionStatus": c});
    } else {
        entry["audienceMembersRemovalStatus"] = json!({"userDataRemovalStatus": counts});
    }
    if !error_counts.is_empty() {
        entry["errorInfo"] = json!({"errorCounts": error_counts});
    }
    Json(json!({"requestStatusPerDestination": [entry]})).into_response()
}
