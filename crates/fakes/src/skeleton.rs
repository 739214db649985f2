//! The shared part of every fake: server lifecycle, request log and generic fault injection, plus the
//! pieces several platforms implement alike — the OAuth2 token issuer ([`oauth`]), identifier checks
//! and encodings ([`identifiers`]) and audience bookkeeping (`lists`).

pub mod identifiers;
pub(crate) mod lists;
pub mod oauth;

pub use oauth::{OAuthIssuer, TokenProblem};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::StreamExt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Fault-injection knobs shared by all fakes. Each counter applies to the next N requests (any route),
/// checked in this order after the delay: redirect, echo, endless body, 429, 500, platform throttle.
#[derive(Debug, Default)]
pub struct Faults {
    http_429: AtomicU32,
    retry_after_secs: AtomicU64,
    http_500: AtomicU32,
    throttle: AtomicU32,
    delay_ms: AtomicU64,
    redirect: AtomicU32,
    redirect_to: Mutex<Option<(u16, String)>>,
    echo: AtomicU32,
    echo_status: AtomicU32,
    endless: AtomicU32,
    ok_body: Mutex<Option<OkBody>>,
}

/// A 200 the platform should not have sent: `{}` or an error body, for requests on matching paths.
#[derive(Debug)]
struct OkBody {
    remaining: u32,
    path_contains: String,
    body: String,
}

impl Faults {
    /// Answers the next `n` requests with HTTP 429 and `Retry-After: retry_after_secs`.
    pub fn too_many_requests_next(&self, n: u32, retry_after_secs: u64) {
        self.retry_after_secs
            .store(retry_after_secs, Ordering::SeqCst);
        self.http_429.store(n, Ordering::SeqCst);
    }

    /// Answers the next `n` requests with HTTP 500.
    pub fn server_error_next(&self, n: u32) {
        self.http_500.store(n, Ordering::SeqCst);
    }

    /// Answers the next `n` requests with the platform's own throttling reply (Meta: a 400 with code
    /// 80003 or 613, see [`crate::FakeMeta::set_throttle_code`]).
    pub fn throttle_next(&self, n: u32) {
        self.throttle.store(n, Ordering::SeqCst);
    }

    /// Delays every request by `delay` before handling it (for timeout and crash tests).
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Answers the next `n` requests with redirect `status` (301, 302, 303, 307, 308) to `location`, as a
    /// compromised or misconfigured platform front might; a client must not follow it.
    pub fn redirect_next(&self, n: u32, status: u16, location: &str) {
        if let Ok(mut r) = self.redirect_to.lock() {
            *r = Some((status, location.to_string()));
        }
        self.redirect.store(n, Ordering::SeqCst);
    }

    /// Answers the next `n` requests with HTTP `status` and a JSON error body that echoes the whole
    /// request back — request line with query, every header (`authorization` first), body — as a hostile
    /// or debugging server might: a secret the client sent comes back raw, URL-encoded, base64'd in a
    /// Basic credential, and JSON-escaped. The same text sits in `error_description` (RFC 6749 §5.2, so
    /// an OAuth2 client reads it from a token endpoint), `message` and `detail`.
    pub fn echo_next(&self, n: u32, status: u16) {
        self.echo_status.store(u32::from(status), Ordering::SeqCst);
        self.echo.store(n, Ordering::SeqCst);
    }

    /// Answers the next `n` requests with `200 OK` and a JSON body that never ends.
    pub fn endless_body_next(&self, n: u32) {
        self.endless.store(n, Ordering::SeqCst);
    }

    /// Answers the next `n` requests whose path contains `path_contains` with HTTP 200 and `{}`, without
    /// handling them: a 2xx that acknowledges nothing.
    pub fn empty_ok_next(&self, n: u32, path_contains: &str) {
        self.ok_with_body_next(n, path_contains, "{}");
    }

    /// Answers the next `n` requests whose path contains `path_contains` with HTTP 200 and `body` (e.g.
    /// `{"error": {...}}`), without handling them.
    pub fn ok_with_body_next(&self, n: u32, path_contains: &str, body: &str) {
        if let Ok(mut slot) = self.ok_body.lock() {
            *slot = Some(OkBody {
                remaining: n,
                path_contains: path_contains.to_string(),
                body: body.to_string(),
            });
        }
    }

    /// The body to answer `path` with, if an [`Faults::ok_with_body_next`] fault applies to it.
    fn take_ok_body(&self, path: &str) -> Option<String> {
        let mut slot = self.ok_body.lock().ok()?;
        let fault = slot.as_mut()?;
        if fault.remaining == 0 || !path.contains(&fault.path_contains) {
            return None;
        }
        fault.remaining -= 1;
        Some(fault.body.clone())
    }

    fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Request body size from `Content-Length` (0 when absent), for benchmarks' byte counts.
    pub body_bytes: u64,
}

/// Every request received, in order.
#[derive(Debug, Default)]
pub struct RequestLog(Mutex<Vec<RecordedRequest>>);

impl RequestLog {
    /// All requests so far.
    pub fn all(&self) -> Vec<RecordedRequest> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Number of requests with this method whose path ends with `path_suffix`.
    pub fn count(&self, method: &str, path_suffix: &str) -> usize {
        self.all()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(path_suffix))
            .count()
    }

    fn push(&self, r: RecordedRequest) {
        if let Ok(mut l) = self.0.lock() {
            l.push(r);
        }
    }
}

/// Produces the platform's throttling reply.
pub type ThrottleResponder = Arc<dyn Fn() -> Response + Send + Sync>;

#[derive(Clone)]
struct SkeletonState {
    faults: Arc<Faults>,
    log: Arc<RequestLog>,
    throttle: ThrottleResponder,
}

async fn inject_faults(State(st): State<SkeletonState>, req: Request, next: Next) -> Response {
    st.log.push(RecordedRequest {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().map(str::to_string),
        body_bytes: req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    });
    let delay = st.faults.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if Faults::take(&st.faults.redirect) {
        let target = st.faults.redirect_to.lock().ok().and_then(|r| r.clone());
        if let Some((status, location)) = target {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
            return (status, [(axum::http::header::LOCATION, location)], "moved").into_response();
        }
    }
    if Faults::take(&st.faults.echo) {
        let status = u16::try_from(st.faults.echo_status.load(Ordering::SeqCst))
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
        return echo(status, req).await;
    }
    if Faults::take(&st.faults.endless) {
        let chunk = axum::body::Bytes::from_static(&[b' '; 64 * 1024]);
        let stream = futures::stream::once(async {
            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"data\": \""))
        })
        .chain(futures::stream::repeat_with(move || {
            Ok::<_, std::io::Error>(chunk.clone())
        }));
        return Response::builder()
            .status(StatusCode::OK)
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(stream))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    if Faults::take(&st.faults.http_429) {
        let mut resp = (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
        let secs = st
            .faults
            .retry_after_secs
            .load(Ordering::SeqCst)
            .to_string();
        if let Ok(v) = HeaderValue::from_str(&secs) {
            resp.headers_mut().insert("retry-after", v);
        }
        return resp;
    }
    if Faults::take(&st.faults.http_500) {
        return Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from("Internal Server Error"))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    if Faults::take(&st.faults.throttle) {
        return (st.throttle)();
    }
    if let Some(body) = st.faults.take_ok_body(req.uri().path()) {
        return Response::builder()
            .status(StatusCode::OK)
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap_or_else(|_| StatusCode::OK.into_response());
    }
    next.run(req).await
}

/// The reply of [`Faults::echo_next`].
async fn echo(status: StatusCode, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let mut text = format!("{} {}\n", parts.method, parts.uri);
    let mut headers: Vec<_> = parts.headers.iter().collect();
    headers.sort_by_key(|(k, _)| k.as_str() != "authorization");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    text.push_str(&String::from_utf8_lossy(&body));
    let reply = serde_json::json!({
        "error": "invalid_request",
        "error_description": text,
        "message": text,
        "detail": text,
    });
    (status, axum::Json(reply)).into_response()
}

/// A running fake; shuts down when dropped.
pub struct FakeServer {
    base_url: String,
    faults: Arc<Faults>,
    log: Arc<RequestLog>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl FakeServer {
    /// Binds `127.0.0.1:0`, nests `router` under `prefix` (e.g. `/v25.0`; empty for none) and serves it
    /// in the background. The base URL is `http://127.0.0.1:PORT{prefix}`.
    pub async fn start(
        prefix: &str,
        router: Router,
        throttle: ThrottleResponder,
    ) -> std::io::Result<FakeServer> {
        let faults = Arc::new(Faults::default());
        let log = Arc::new(RequestLog::default());
        let state = SkeletonState {
            faults: faults.clone(),
            log: log.clone(),
            throttle,
        };
        let app = if prefix.is_empty() {
            router
        } else {
            Router::new().nest(prefix, router)
        };
        // Real APIs take multi-megabyte uploads (10,000 hashed rows ≈ 4 MB); axum's default is 2 MB.
        let app = app
            .layer(middleware::from_fn_with_state(state, inject_faults))
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(FakeServer {
            base_url: format!("http://{addr}{prefix}"),
            faults,
            log,
            shutdown: Some(tx),
        })
    }

    /// A server with no platform behind it (every route 404s): the other host of a redirect test, or a
    /// bare echoing, hung or endless server through [`FakeServer::faults`].
    pub async fn bare() -> std::io::Result<FakeServer> {
        let throttle: ThrottleResponder =
            Arc::new(|| StatusCode::TOO_MANY_REQUESTS.into_response());
        FakeServer::start("", Router::new(), throttle).await
    }

    /// Base URL to put in the connector's `base_url`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Fault knobs.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Request log.
    pub fn requests(&self) -> &RequestLog {
        &self.log
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Merges query parameters with a form-encoded or JSON object body, as platforms accept both. Form values
/// are strings; JSON values keep their type.
pub fn request_params(
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut out = serde_json::Map::new();
    if let Some(q) = query {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(q).map_err(|e| format!("bad query: {e}"))?;
        for (k, v) in pairs {
            out.insert(k, serde_json::Value::String(v));
        }
    }
    if body.is_empty() {
        return Ok(out);
    }
    let ct = content_type.unwrap_or_default();
    if ct.starts_with("application/json") {
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("bad JSON body: {e}"))?;
        let obj = v.as_object().ok_or("JSON body must be an object")?;
        out.extend(obj.clone());
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| format!("bad form body: {e}"))?;
        for (k, v) in pairs {
            out.insert(k, serde_json::Value::String(v));
        }
    } else {
        return Err(format!("unsupported content type {ct:?}"));
    }
    Ok(out)
}

/// The credentials after `prefix` (scheme and its space, e.g. `"Bearer "`) in the `Authorization`
/// header, or `None` when the header is missing, not text, or uses another scheme — every platform
/// fake then answers with its own error shape.
pub(crate) fn credentials<'a>(headers: &'a axum::http::HeaderMap, prefix: &str) -> Option<&'a str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(prefix))
}
