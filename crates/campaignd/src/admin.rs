//! The daemon's admin HTTP server (DESIGN §9): `/healthz`, `/metrics` (Prometheus text), a JSON API
//! (`/api/runs`, `/api/segments`, `/api/status`) and `/`, a report page whose charts are drawn in the
//! browser by a small hand-written script embedded in the binary — no build step, no CDN.
//!
//! The port is bounded against slow or hostile clients (issue 12 item 10): request headers must arrive
//! within `[admin] header_read_timeout_secs` (hyper's header-read timer; the same bound closes idle
//! keep-alive connections and slow bodies), at most `[admin] max_connections` are open at once — at the cap
//! the oldest connection not in the middle of a request is closed to admit the new one, so a crowd of
//! half-open connections can neither exhaust the process's file descriptors nor lock out `/healthz` —
//! request bodies over `[admin] max_body_bytes` are refused with 413, and `/api/runs?limit=` is capped at
//! [`MAX_RUNS_LIMIT`].
//!
//! It listens on 127.0.0.1:9464 by default. Anywhere else it must be protected: start-up refuses a
//! non-loopback `bind` without `[admin] token`, and with a token every data route requires
//! `Authorization: Bearer TOKEN`. `/healthz` and the page's static files carry no data and stay open, so
//! load balancers can probe and the page can ask for the token.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context};
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::Deserialize;
use serde_json::json;

use campaignd_connectors::{Secret, SecretResolver};
use campaignd_engine::report;
use campaignd_engine::scheduler::{Destinations, JobTable, Stats, DURATION_BUCKETS};
use campaignd_engine::settings::AdminSettings;
use campaignd_engine::Settings;
use campaignd_store::runs::Job;
use campaignd_store::Store;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// The most runs `/api/runs?limit=` returns, whatever the query asks.
pub const MAX_RUNS_LIMIT: i64 = 1000;

/// The checked `[admin]` section: where to listen and the token, if any.
pub struct AdminConfig {
    /// Listen address.
    pub addr: SocketAddr,
    /// Required bearer token.
    pub token: Option<Secret>,
    /// Bounds on clients.
    pub limits: Limits,
}

/// What one client may take of the admin port (`[admin]` keys).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to send a request's headers (and its body), and the most a connection may idle.
    pub header_read_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
}

/// Checks `[admin]`: the address parses, and a non-loopback bind has a resolvable token. Errors are
/// configuration errors (exit 2) and never contain the token.
pub fn prepare(settings: &AdminSettings, secrets: &SecretResolver) -> anyhow::Result<AdminConfig> {
    let addr: SocketAddr = settings.bind.parse().map_err(|e| {
        anyhow!(
            "[admin] bind: \"{}\" is not an address like 127.0.0.1:9464: {e}",
            settings.bind
        )
    })?;
    let token = match &settings.token {
        Some(r) => Some(
            secrets
                .resolve(r)
                .map_err(|e| anyhow!("[admin] token: {e}"))?,
        ),
        None => None,
    };
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(anyhow!(
            "[admin] bind = \"{addr}\" is reachable from other machines: set [admin] token = {{ env = \"CAMPAIGND_ADMIN_TOKEN\" }} (or bind to 127.0.0.1)"
        ));
    }
    if settings.max_connections == 0 || settings.header_read_timeout_secs == 0 {
        return Err(anyhow!(
            "[admin] max_connections and header_read_timeout_secs must be at least 1"
        ));
    }
    let limits = Limits {
        header_read_timeout: Duration::from_secs(settings.header_read_timeout_secs),
        max_connections: settings.max_connections,
        max_body_bytes: settings.max_body_bytes,
    };
    Ok(AdminConfig {
        addr,
        token,
        limits,
    })
}

/// What the handlers read.
#[derive(Clone)]
pub struct AdminState {
    /// The store.
    pub store: Store,
    /// Scheduler counters.
    pub stats: Arc<Stats>,
    /// Destinations (for their HTTP counters).
    pub destinations: Arc<Destinations>,
    /// Scheduled jobs.
    pub jobs: JobTable,
    /// This replica's lease holder id.
    pub holder: String,
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
    /// Required bearer token, if any.
    pub token: Option<Arc<Secret>>,
    /// The configuration (creative sets for `/api/creatives`).
    pub settings: Arc<Settings>,
}

/// A running server; [`AdminServer::stop`] finishes the requests in flight and returns.
pub struct AdminServer {
    /// The address actually bound (the port is chosen by the OS when `bind` says `:0`).
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl AdminServer {
    /// Stops accepting connections and waits for the server to wind down.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if tokio::time::timeout(std::time::Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            tracing::warn!("admin server did not stop within 5 s");
        }
    }
}

/// Binds the listener and serves in the background, within `limits`.
pub async fn serve(
    addr: SocketAddr,
    state: AdminState,
    limits: Limits,
) -> anyhow::Result<AdminServer> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("[admin] bind: cannot listen on {addr}"))?;
    let addr = listener.local_addr().context("admin listener address")?;
    let app = router(state).layer(middleware::from_fn_with_state(
        (limits.max_body_bytes, limits.header_read_timeout),
        limit_body,
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(accept_loop(listener, app, limits, stopped));
    Ok(AdminServer { addr, stop, task })
}

/// Accepts connections until `stopped`, admitting each through the connection table; then asks every
/// connection to finish its request and close, and waits for them.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let table = Arc::new(Connections::new(limits.max_connections));
    let (closing, closing_rx) = tokio::sync::watch::channel(false);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => match Connections::admit(&table) {
                    Some(slot) => {
                        tokio::spawn(serve_connection(stream, app.clone(), slot, limits, closing_rx.clone()));
                    }
                    None => {
                        tracing::warn!(max = limits.max_connections, "admin port: every connection is busy; refusing a new one ([admin] max_connections)");
                    }
                },
                Err(e) => {
                    // Out of file descriptors or a transient accept error: back off instead of spinning.
                    tracing::warn!(error = %e, "admin port: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    let _ = closing.send(true);
    table.wait_empty().await;
}

/// Serves one connection: HTTP/1.1 with the header-read timeout, until it ends, is evicted to make room
/// for a newer one, or the server stops (then the request in flight finishes first).
async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    slot: Slot,
    limits: Limits,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    let conn_state = slot.state.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let (app, conn_state) = (app.clone(), conn_state.clone());
        async move {
            let _busy = Busy::new(&conn_state);
            let tower = hyper_util::service::TowerToHyperService::new(app);
            hyper::service::Service::call(&tower, req).await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "admin connection ended");
            }
        }
        _ = slot.state.evict.notified() => {
            tracing::debug!("admin connection closed to admit a newer one ([admin] max_connections)");
        }
        _ = closing.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    drop(slot);
}

/// One open connection: how many requests it is serving now, and the signal that evicts it.
#[derive(Default)]
struct ConnState {
    busy: AtomicUsize,
    evict: tokio::sync::Notify,
}

/// Counts a request in flight on its connection for as long as it lives.
struct Busy(Arc<ConnState>);

impl Busy {
    fn new(state: &Arc<ConnState>) -> Busy {
        state.busy.fetch_add(1, Ordering::SeqCst);
        Busy(state.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The open connections, oldest first, and the cap on them.
struct Connections {
    open: Mutex<BTreeMap<u64, Arc<ConnState>>>,
    next: AtomicU64,
    cap: usize,
    emptied: tokio::sync::Notify,
}

/// A connection's place in the table, given back when dropped.
struct Slot {
    id: u64,
    state: Arc<ConnState>,
    table: Arc<Connections>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.table.open.lock() {
            open.remove(&self.id);
            if open.is_empty() {
                self.table.emptied.notify_waiters();
            }
        }
    }
}

impl Connections {
    fn new(cap: usize) -> Connections {
        Connections {
            open: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
            cap: cap.max(1),
            emptied: tokio::sync::Notify::new(),
        }
    }

    /// A place for a new connection: at the cap, the oldest idle connection (no request in flight: it
    /// has not finished sending headers, or waits between requests) is evicted; `None` when all are busy.
    fn admit(table: &Arc<Connections>) -> Option<Slot> {
        let mut open = table.open.lock().ok()?;
        if open.len() >= table.cap {
            let idle = open
                .iter()
                .find(|(_, c)| c.busy.load(Ordering::SeqCst) == 0)
                .map(|(id, _)| *id)?;
            if let Some(evicted) = open.remove(&idle) {
                evicted.evict.notify_one();
            }
        }
        let id = table.next.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::default());
        open.insert(id, state.clone());
        Some(Slot {
            id,
            state,
            table: table.clone(),
        })
    }

    async fn wait_empty(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.open.lock().map(|o| o.is_empty()).unwrap_or(true) {
                return;
            }
            emptied.await;
        }
    }
}

/// Refuses request bodies over the limit with 413 (by `Content-Length`, or while reading a chunked
/// one), and bodies that do not arrive within the header-read timeout with 408.
async fn limit_body(
    State((max, within)): State<(usize, Duration)>,
    request: Request,
    next: Next,
) -> Response {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({ "error": format!("request body over {max} bytes ([admin] max_body_bytes)") })),
        )
            .into_response()
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, max);
    match tokio::time::timeout(within, http_body_util::BodyExt::collect(limited)).await {
        Ok(Ok(collected)) => {
            next.run(Request::from_parts(parts, Body::from(collected.to_bytes())))
                .await
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => too_large(),
        Ok(Err(e)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": format!("reading the request body: {e}") })),
        )
            .into_response(),
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            Json(json!({ "error": "the request body did not arrive in time ([admin] header_read_timeout_secs)" })),
        )
            .into_response(),
    }
}

/// The routes; data routes behind the bearer check.
pub fn router(state: AdminState) -> Router {
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/runs", get(api_runs))
        .route("/api/segments", get(api_segments))
        .route("/api/status", get(api_status))
        .route("/api/creatives", get(api_creatives))
        .route("/api/report", get(api_report))
        .merge(crate::admin_insights::data_routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route(
            "/",
            get(|| async { static_file("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { static_file("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { static_file("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/healthz", get(healthz))
        .merge(crate::admin_insights::asset_routes())
        .merge(protected)
        .with_state(state)
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Compares without an early exit, so response timing does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(
    State(state): State<AdminState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({ "error": "missing or wrong bearer token" })),
            )
                .into_response();
        }
    }
    next.run(request).await
}

fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "admin API");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": e.to_string() })),
    )
        .into_response()
}

async fn healthz(State(state): State<AdminState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({ "status": "ok" })).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "error": e.to_string() })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct RunsQuery {
    limit: Option<i64>,
    job: Option<String>,
}

async fn api_runs(State(state): State<AdminState>, Query(q): Query<RunsQuery>) -> Response {
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_RUNS_LIMIT);
    let job = match q
        .job
        .as_deref()
        .map(|name| Job::from_name(name).ok_or(name))
    {
        None => None,
        Some(Ok(job)) => Some(job),
        Some(Err(name)) => {
            let known: Vec<&str> = Job::ALL.iter().map(|j| j.as_str()).collect();
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": format!("job: no job is named {name:?} (one of {})", known.join(", ")) })),
            )
                .into_response();
        }
    };
    match state.store.recent_runs(limit, job).await {
        Ok(runs) => Json(json!({ "runs": runs, "limit": limit })).into_response(),
        Err(e) => server_error(e),
    }
}

#[derive(Deserialize)]
struct SegmentsQuery {
    since: Option<String>,
}

/// Parses `30d`, `12h`, `90m`, `2w` (a window back from now) or an RFC 3339 time.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let (num, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: i64 = num.parse().ok()?;
    let d = match unit {
        "m" => ChronoDuration::try_minutes(n)?,
        "h" => ChronoDuration::try_hours(n)?,
        "d" => ChronoDuration::try_days(n)?,
        "w" => ChronoDuration::try_weeks(n)?,
        _ => return None,
    };
    now.checked_sub_signed(d)
}

async fn api_segments(State(state): State<AdminState>, Query(q): Query<SegmentsQuery>) -> Response {
    let now = Utc::now();
    let Some(since) = parse_since(q.since.as_deref().unwrap_or("30d"), now) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "since: expected e.g. 30d, 12h or an RFC 3339 time" })),
        )
            .into_response();
    };
    let summaries = match state.store.segment_summaries().await {
        Ok(s) => s,
        Err(e) => return server_error(e),
    };
    let history = match state.store.segment_size_history(since).await {
        Ok(h) => h,
        Err(e) => return server_error(e),
    };
    let matches = match campaignd_engine::match_rates::audience_matches(
        &state.store,
        &state.settings,
    )
    .await
    {
        Ok(m) => m,
        Err(e) => return server_error(e),
    };
    let segments: Vec<_> = summaries
        .iter()
        .map(|s| {
            let points: Vec<_> = history
                .iter()
                .filter(|p| p.segment == s.name)
                .map(|p| json!({ "at": p.at, "size": p.size, "run_id": p.run_id }))
                .collect();
            // Per destination: members sent, identifier coverage of the latest sync, platform size.
            let audiences: Vec<_> = matches.iter().filter(|m| m.segment == s.name).collect();
            json!({
                "name": s.name,
                "description": s.description,
                "size": s.size,
                "last_joined": s.last_joined,
                "last_left": s.last_left,
                "last_dropped": s.last_dropped,
                "computed_at": s.computed_at,
                "history": points,
                "audiences": audiences,
            })
        })
        .collect();
    Json(json!({ "since": since, "segments": segments })).into_response()
}

#[derive(Deserialize)]
struct ReportParams {
    since: Option<String>,
    until: Option<String>,
    by: Option<String>,
}

/// `/api/report?since=30d&by=segment,channel`: the engine's performance report as a JSON array of flat
/// rows (the `by` keys, then impressions, clicks, conversions, spend, revenue, ctr, cvr, cpa, roas).
async fn api_report(State(state): State<AdminState>, Query(q): Query<ReportParams>) -> Response {
    let bad = |e: String| (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))).into_response();
    let until = match q.until.as_deref() {
        Some(u) => match u.parse::<chrono::NaiveDate>() {
            Ok(d) => d,
            Err(e) => return bad(format!("until: {e}")),
        },
        None => Utc::now().date_naive(),
    };
    let since = match report::parse_since(q.since.as_deref().unwrap_or("30d"), until) {
        Ok(d) => d,
        Err(e) => return bad(e.to_string()),
    };
    let by = match report::parse_dimensions(q.by.as_deref().unwrap_or("segment,channel")) {
        Ok(b) => b,
        Err(e) => return bad(e.to_string()),
    };
    let query = report::ReportQuery { since, until, by };
    match report::report(&state.store, &query).await {
        Ok(rows) => Json(rows).into_response(),
        Err(report::ReportError::Store(e)) => server_error(e),
        Err(e) => bad(e.to_string()),
    }
}

async fn api_creatives(State(state): State<AdminState>) -> Response {
    let mut sets = Vec::new();
    for set in &state.settings.creative_sets {
        match state.store.current_rotation(&set.name).await {
            Ok(live) => sets.push(json!({
                "name": set.name,
                "segment": set.segment,
                "destination": set.destination,
                "live": live,
            })),
            Err(e) => return server_error(e),
        }
    }
    Json(json!({ "sets": sets })).into_response()
}

async fn api_status(State(state): State<AdminState>) -> Response {
    let leases = match state.store.leases().await {
        Ok(l) => l,
        Err(e) => return server_error(e),
    };
    let stats = state.stats.snapshot();
    let destinations: Vec<_> = state
        .destinations
        .iter()
        .map(|(name, d)| {
            json!({
                "name": name,
                "synced": stats.destinations.get(name),
                "http": d.http_stats(),
            })
        })
        .collect();
    Json(json!({
        "holder": state.holder,
        "started_at": state.started_at,
        "jobs": state.jobs.list(),
        "leases": leases,
        "job_stats": stats.jobs,
        "destinations": destinations,
    }))
    .into_response()
}

/// One per-destination HTTP counter family: name, help, and how to read it from the snapshot.
type HttpFamily = (
    &'static str,
    &'static str,
    fn(&campaignd_connectors::http::HttpStatsSnapshot) -> u64,
);

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

async fn metrics(State(state): State<AdminState>) -> Response {
    let stats = state.stats.snapshot();
    let mut out = String::new();
    family(
        &mut out,
        "campaignd_up",
        "gauge",
        "1 while the daemon runs.",
    );
    out.push_str("campaignd_up 1\n");
    family(
        &mut out,
        "campaignd_start_time_seconds",
        "gauge",
        "When this daemon started (unix seconds).",
    );
    let _ = writeln!(
        out,
        "campaignd_start_time_seconds {}",
        state.started_at.timestamp()
    );

    family(
        &mut out,
        "campaignd_job_runs_total",
        "counter",
        "Job runs by outcome.",
    );
    for (job, j) in &stats.jobs {
        for (outcome, n) in &j.runs {
            let _ = writeln!(
                out,
                "campaignd_job_runs_total{{job=\"{}\",outcome=\"{}\"}} {n}",
                label(job),
                label(outcome)
            );
        }
    }
    family(
        &mut out,
        "campaignd_job_ticks_skipped_total",
        "counter",
        "Ticks not run here: overlap (previous run still going), not_leader (another replica holds the lease), lease_error.",
    );
    for (job, j) in &stats.jobs {
        for (reason, n) in &j.skipped {
            let _ = writeln!(
                out,
                "campaignd_job_ticks_skipped_total{{job=\"{}\",reason=\"{}\"}} {n}",
                label(job),
                label(reason)
            );
        }
    }
    family(
        &mut out,
        "campaignd_job_duration_seconds",
        "histogram",
        "Duration of job runs.",
    );
    for (job, j) in &stats.jobs {
        if j.duration_count == 0 {
            continue;
        }
        let job = label(job);
        for (bound, n) in DURATION_BUCKETS.iter().zip(&j.duration_buckets) {
            let _ = writeln!(
                out,
                "campaignd_job_duration_seconds_bucket{{job=\"{job}\",le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "campaignd_job_duration_seconds_bucket{{job=\"{job}\",le=\"+Inf\"}} {}",
            j.duration_count
        );
        let _ = writeln!(
            out,
            "campaignd_job_duration_seconds_sum{{job=\"{job}\"}} {}",
            j.duration_sum
        );
        let _ = writeln!(
            out,
            "campaignd_job_duration_seconds_count{{job=\"{job}\"}} {}",
            j.duration_count
        );
    }
    family(
        &mut out,
        "campaignd_job_last_finished_timestamp_seconds",
        "gauge",
        "When each job last finished (unix seconds).",
    );
    for (job, j) in &stats.jobs {
        if let Some(t) = j.last_finished {
            let _ = writeln!(
                out,
                "campaignd_job_last_finished_timestamp_seconds{{job=\"{}\"}} {t}",
                label(job)
            );
        }
    }

    family(
        &mut out,
        "campaignd_members_synced_total",
        "counter",
        "Audience members the platform acknowledged, by destination and action.",
    );
    for (dest, d) in &stats.destinations {
        let dest = label(dest);
        let _ = writeln!(
            out,
            "campaignd_members_synced_total{{destination=\"{dest}\",action=\"added\"}} {}",
            d.added
        );
        let _ = writeln!(
            out,
            "campaignd_members_synced_total{{destination=\"{dest}\",action=\"removed\"}} {}",
            d.removed
        );
    }
    family(
        &mut out,
        "campaignd_sync_rejections_total",
        "counter",
        "Rows platforms rejected, by destination.",
    );
    for (dest, d) in &stats.destinations {
        let _ = writeln!(
            out,
            "campaignd_sync_rejections_total{{destination=\"{}\"}} {}",
            label(dest),
            d.rejected
        );
    }
    family(
        &mut out,
        "campaignd_sync_failures_total",
        "counter",
        "Syncs that failed, by destination.",
    );
    for (dest, d) in &stats.destinations {
        let _ = writeln!(
            out,
            "campaignd_sync_failures_total{{destination=\"{}\"}} {}",
            label(dest),
            d.failed_syncs
        );
    }

    let http: Vec<_> = state
        .destinations
        .iter()
        .filter_map(|(n, d)| d.http_stats().map(|s| (label(n), s)))
        .collect();
    let http_families: [HttpFamily; 5] = [
        (
            "campaignd_destination_requests_total",
            "HTTP requests sent to the platform (every attempt).",
            |s| s.requests,
        ),
        (
            "campaignd_destination_retries_total",
            "Requests retried after a transient failure.",
            |s| s.retries,
        ),
        (
            "campaignd_destination_throttles_total",
            "Throttling replies from the platform (429 or platform codes).",
            |s| s.throttled,
        ),
        (
            "campaignd_destination_rate_limited_waits_total",
            "Times campaignd's own rate limiter made a request wait.",
            |s| s.rate_limited_waits,
        ),
        (
            "campaignd_destination_failures_total",
            "Platform calls that ended in an error.",
            |s| s.failures,
        ),
    ];
    for (name, help, get) in http_families {
        family(&mut out, name, "counter", help);
        for (dest, s) in &http {
            let _ = writeln!(out, "{name}{{destination=\"{dest}\"}} {}", get(s));
        }
    }

    family(
        &mut out,
        "campaignd_segment_size",
        "gauge",
        "Members of each segment at its last recompute.",
    );
    match state.store.segment_summaries().await {
        Ok(segments) => {
            for s in segments {
                let _ = writeln!(
                    out,
                    "campaignd_segment_size{{segment=\"{}\"}} {}",
                    label(&s.name),
                    s.size
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: segment sizes unavailable"),
    }
    family(
        &mut out,
        "campaignd_lease_held",
        "gauge",
        "1 when this replica holds the job's lease now.",
    );
    if let Ok(leases) = state.store.leases().await {
        let now = Utc::now();
        for l in leases {
            let held = l.holder == state.holder && l.expires_at > now;
            let _ = writeln!(
                out,
                "campaignd_lease_held{{job=\"{}\"}} {}",
                label(&l.job),
                u8::from(held)
            );
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_bind_needs_a_token() {
        let secrets = SecretResolver::from_map([("T".to_string(), "s3cret".to_string())].into());
        let mut s = AdminSettings::default();
        assert!(prepare(&s, &secrets).is_ok());
        s.bind = "0.0.0.0:9464".into();
        let err = prepare(&s, &secrets)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("[admin] token"), "{err}");
        s.token = Some(campaignd_connectors::SecretRef::Env("T".into()));
        assert!(prepare(&s, &secrets).is_ok());
        s.token = Some(campaignd_connectors::SecretRef::Env("UNSET".into()));
        let err = prepare(&s, &secrets)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("UNSET") && !err.contains("s3cret"), "{err}");
    }

    #[test]
    fn since_windows() {
        let now = Utc::now();
        assert_eq!(
            parse_since("30d", now),
            Some(now - ChronoDuration::days(30))
        );
        assert_eq!(
            parse_since("12h", now),
            Some(now - ChronoDuration::hours(12))
        );
        assert!(parse_since("x", now).is_none());
        assert!(parse_since("", now).is_none());
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
