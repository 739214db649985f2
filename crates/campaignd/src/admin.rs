//! The daemon's admin HTTP server (DESIGN §9): `/healthz`, `/metrics` (Prometheus text), a JSON API
//! (`/api/runs`, `/api/segments`, `/api/status`) and `/`, a report page whose charts are drawn in the
//! browser by a small hand-written script embedded in the binary — no build step, no CDN.
//!
//! It listens on 127.0.0.1:9464 by default. Anywhere else it must be protected: start-up refuses a
//! non-loopback `bind` without `[admin] token`, and with a token every data route requires
//! `Authorization: Bearer TOKEN`. `/healthz` and the page's static files carry no data and stay open, so
//! load balancers can probe and the page can ask for the token.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{anyhow, Context};
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
use campaignd_store::Store;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// The checked `[admin]` section: where to listen and the token, if any.
pub struct AdminConfig {
    /// Listen address.
    pub addr: SocketAddr,
    /// Required bearer token.
    pub token: Option<Secret>,
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
    Ok(AdminConfig { addr, token })
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

/// Binds the listener and serves in the background.
pub async fn serve(addr: SocketAddr, state: AdminState) -> anyhow::Result<AdminServer> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("[admin] bind: cannot listen on {addr}"))?;
    let addr = listener.local_addr().context("admin listener address")?;
    let app = router(state);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "admin server stopped");
        }
    });
    Ok(AdminServer { addr, stop, task })
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
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    match state.store.recent_runs(limit, q.job.as_deref()).await {
        Ok(runs) => Json(json!({ "runs": runs })).into_response(),
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
    let segments: Vec<_> = summaries
        .iter()
        .map(|s| {
            let points: Vec<_> = history
                .iter()
                .filter(|p| p.segment == s.name)
                .map(|p| json!({ "at": p.at, "size": p.size, "run_id": p.run_id }))
                .collect();
            json!({
                "name": s.name,
                "description": s.description,
                "size": s.size,
                "last_joined": s.last_joined,
                "last_left": s.last_left,
                "last_dropped": s.last_dropped,
                "computed_at": s.computed_at,
                "history": points,
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
