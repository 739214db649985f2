//! The shared HTTP kit every platform client uses, so timeouts, retries, pacing, token refresh and
//! redaction behave the same everywhere (DESIGN §6: 429/5xx/timeouts retry with backoff and Retry-After;
//! a 401 refreshes the token once; no secret in any error or log line).
//!
//! A client builds its kit with the destination's [`Auth`] (bearer from a token source, basic, or a named
//! header), then calls [`HttpKit::send_with_retry`] with a closure that builds the request (called again
//! for every attempt; the kit adds the current credentials) and a [`ResponsePolicy`] that classifies
//! replies; platforms whose throttling lives in the body (Meta) override the policy. A credential that is
//! absent or empty is a [`ConnectorError::Auth`] before any request is sent. Replies are read as JSON
//! with [`HttpKit::parse_json`] (or sent and read in one step with [`HttpKit::send_json`]): a body that is
//! not the expected shape is a [`ConnectorError::InvalidResponse`] carrying the redacted excerpt, the
//! same for every platform; [`next_cursor`] and [`next_offset`] say when a paged listing is done.
//!
//! Bounds toward a platform that misbehaves (issue 12): the client follows **no redirects** (a 3xx is a
//! [`ConnectorError::Redirected`], never retried, so a batch and its credentials cannot be re-sent to a host
//! the platform names); one call — every attempt, backoff and Retry-After wait — ends within
//! `retry.max_total_ms` (default 5 minutes) with [`ConnectorError::OutOfTime`]; a reply body is read as a
//! stream up to [`MAX_REPLY_BYTES`] and anything longer is a [`ConnectorError::ReplyTooLarge`]. Errors of a
//! token source and the `Authorization: Basic` credentials the kit sends are redacted like every other
//! secret ([`Redactor`]).

mod auth;
mod config;
mod limiter;
mod paging;
mod redact;
mod token;

#[cfg(test)]
mod tests;

pub use auth::Auth;
pub(crate) use config::http_platform_config;
pub use config::{HttpConfig, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS};
pub use limiter::RateLimiter;
pub use paging::{next_cursor, next_offset};
pub use redact::{derived_forms, Redactor};
pub use token::{OAuth2RefreshToken, StaticToken, TokenSource};

use crate::error::{ConfigError, ConnectorError};
use crate::secret::Secret;
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Default ceiling on one reply body: Meta insights pages and Google search streams are a few MB; an
/// endless or runaway body stops here instead of exhausting memory.
pub const MAX_REPLY_BYTES: u64 = 64 * 1024 * 1024;

/// Default total time of one call across attempts and waits (`retry.max_total_ms`): the per-request timeout
/// (120 s) times 5 attempts would otherwise hold a sync for about 10 minutes on a hung platform.
pub const DEFAULT_MAX_TOTAL_MS: u64 = 300_000;

/// Retry budget and backoff shape, configurable per destination (`retry = { ... }`) so tests can use
/// millisecond backoffs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Attempts in total, including the first (≥ 1).
    pub max_attempts: u32,
    /// First backoff; doubles per attempt.
    pub initial_backoff_ms: u64,
    /// Backoff ceiling.
    pub max_backoff_ms: u64,
    /// Longest platform-requested wait (Retry-After, usage headers) we sit through; beyond it the batch is
    /// handed back to the engine as throttled.
    pub max_retry_after_secs: u64,
    /// Total time one call may take, every attempt, backoff and Retry-After wait included; when it runs
    /// out the call fails with [`ConnectorError::OutOfTime`] (transient: the batch stays pending).
    pub max_total_ms: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 5,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            max_retry_after_secs: 600,
            max_total_ms: DEFAULT_MAX_TOTAL_MS,
        }
    }
}

/// Everything the kit needs from a destination's config, made from its HTTP keys by [`HttpConfig::settings`].
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Retry budget.
    pub retry: RetrySettings,
    /// Pacing; `None` = unlimited.
    pub requests_per_second: Option<f64>,
    /// Longest reply body read, in bytes ([`MAX_REPLY_BYTES`] unless a test lowers it).
    pub max_reply_bytes: u64,
}

/// Builds the one reqwest client configuration campaignd uses (rustls, timeouts, user agent, no
/// redirects: reqwest would otherwise re-send a 307's POST body to any host, or turn a 302 into a GET
/// whose 200 looks like success).
pub fn build_client(settings: &HttpSettings) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("campaignd/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// `method url` with `query` appended (nothing when empty) and `body` as JSON when given: the request a
/// JSON platform builds on every attempt, before its own headers.
pub fn json_request(
    client: &reqwest::Client,
    method: &reqwest::Method,
    url: &str,
    query: &[(&str, String)],
    body: Option<&serde_json::Value>,
) -> reqwest::RequestBuilder {
    let mut req = client.request(method.clone(), url);
    if !query.is_empty() {
        req = req.query(query);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    req
}

/// Counters of one destination's HTTP traffic, for the Prometheus metrics added later.
#[derive(Debug, Default)]
pub struct HttpStats {
    requests: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    rate_limited_waits: AtomicU64,
    token_refreshes: AtomicU64,
    failures: AtomicU64,
}

/// A point-in-time copy of [`HttpStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HttpStatsSnapshot {
    /// Requests sent (every attempt).
    pub requests: u64,
    /// Attempts repeated after a transient failure.
    pub retries: u64,
    /// Replies that were throttling signals (429 or platform throttle codes).
    pub throttled: u64,
    /// Times our own rate limiter made a request wait.
    pub rate_limited_waits: u64,
    /// Token refreshes after a 401.
    pub token_refreshes: u64,
    /// Calls that ended in an error.
    pub failures: u64,
}

impl HttpStats {
    /// Copies the counters.
    pub fn snapshot(&self) -> HttpStatsSnapshot {
        HttpStatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            rate_limited_waits: self.rate_limited_waits.load(Ordering::Relaxed),
            token_refreshes: self.token_refreshes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// How a reply should be treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Done; hand the reply to the caller.
    Success,
    /// Try again after `after` (platform-requested) or our backoff.
    Retry {
        /// Platform-requested wait.
        after: Option<Duration>,
        /// Whether this is a throttling signal (counted, and reported as `Throttled` when exhausted).
        throttled: bool,
        /// Platform's reason.
        reason: String,
    },
    /// Credentials refused: refresh once, then fail with `Auth`.
    Unauthorized {
        /// Platform's reason.
        reason: String,
    },
    /// Permanent failure.
    Fail {
        /// Platform error code, if any.
        code: Option<i64>,
        /// Platform's reason.
        reason: String,
    },
}

impl Verdict {
    /// The same verdict with the platform's own message (read from its error body by `reason`, which is
    /// only called for a failure) in place of the body excerpt: for policies whose status handling is
    /// the default's and whose only addition is a better message.
    pub fn with_reason(self, reason: impl FnOnce() -> String) -> Verdict {
        match self {
            Verdict::Success => Verdict::Success,
            Verdict::Unauthorized { .. } => Verdict::Unauthorized { reason: reason() },
            Verdict::Retry {
                after, throttled, ..
            } => Verdict::Retry {
                after,
                throttled,
                reason: reason(),
            },
            Verdict::Fail { code, .. } => Verdict::Fail {
                code,
                reason: reason(),
            },
        }
    }
}

/// Classifies replies. The default treats 2xx as success, 401 as unauthorized, 408/429/5xx as retryable
/// (honouring Retry-After) and every other status as failure; platforms override it to read their own
/// error bodies.
pub trait ResponsePolicy: Send + Sync {
    /// Decides what to do with a reply.
    fn classify(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        default_classify(status, headers, body)
    }
}

/// The status-code-only policy (webhook and most REST platforms).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPolicy;

impl ResponsePolicy for DefaultPolicy {}

/// The default classification, exposed so platform policies can fall back to it.
pub fn default_classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    let reason = || body_excerpt(body);
    if status.is_success() {
        Verdict::Success
    } else if status == StatusCode::UNAUTHORIZED {
        Verdict::Unauthorized { reason: reason() }
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        Verdict::Retry {
            after: retry_after(headers),
            throttled: true,
            reason: reason(),
        }
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        Verdict::Retry {
            after: retry_after(headers),
            throttled: false,
            reason: reason(),
        }
    } else {
        Verdict::Fail {
            code: None,
            reason: reason(),
        }
    }
}

/// The first 500 characters of a body, for error messages that record what the platform said.
pub fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(500).collect();
    if text.chars().count() > 500 {
        out.push('…');
    }
    out
}

/// Parses `Retry-After` as delta-seconds or an HTTP date (RFC 7231 §7.1.3).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// A successful reply, fully read.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// Status (2xx).
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// Per-destination HTTP machinery: client, retry budget, rate limiter, counters, redactor.
#[derive(Debug, Clone)]
pub struct HttpKit {
    destination: String,
    client: reqwest::Client,
    retry: RetrySettings,
    limiter: Arc<RateLimiter>,
    stats: Arc<HttpStats>,
    redactor: Redactor,
    max_reply_bytes: u64,
    auth: Auth,
    base_url: String,
    requests_per_second: Option<f64>,
}

impl HttpKit {
    /// Builds the kit for one destination; `secrets` are registered with the redactor up front.
    pub fn new(
        destination: &str,
        settings: &HttpSettings,
        secrets: &[&Secret],
    ) -> Result<Self, reqwest::Error> {
        let redactor = Redactor::default();
        for s in secrets {
            redactor.add(s);
        }
        let stats = Arc::new(HttpStats::default());
        Ok(HttpKit {
            destination: destination.to_string(),
            client: build_client(settings)?,
            retry: RetrySettings {
                max_attempts: settings.retry.max_attempts.max(1),
                ..settings.retry.clone()
            },
            limiter: Arc::new(RateLimiter::new(settings.requests_per_second)),
            stats,
            redactor,
            max_reply_bytes: settings.max_reply_bytes,
            auth: Auth::None,
            base_url: String::new(),
            requests_per_second: settings.requests_per_second,
        })
    }

    /// The kit with the platform's API root, so [`Self::url`] joins every path the same way.
    pub fn with_base_url(mut self, base_url: &str) -> Self {
        self.base_url = base_url.trim_end_matches('/').to_string();
        self
    }

    /// `path` under the base URL: `{base}/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url, path)
    }

    /// The base URL (no trailing `/`), for checks such as "is this link on our own host".
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// An [`ConnectorError::InvalidResponse`] of this destination: the reply was 2xx but not what the
    /// call needs. `message` must already be redacted (see [`Self::excerpt`]).
    pub fn invalid_response(&self, operation: &str, message: String) -> ConnectorError {
        ConnectorError::InvalidResponse {
            destination: self.destination.clone(),
            operation: operation.into(),
            message,
        }
    }

    /// The first 500 characters of a body with the destination's secrets masked, for messages.
    pub fn excerpt(&self, body: &[u8]) -> String {
        self.redactor.redact(&body_excerpt(body))
    }

    /// Parses a JSON reply as `T`; a body that is not a `T` is an invalid response carrying serde's
    /// reason and the redacted excerpt (`<reason>: <body>`).
    pub fn parse_json<T: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        body: &[u8],
    ) -> Result<T, ConnectorError> {
        serde_json::from_slice(body)
            .map_err(|e| self.invalid_response(operation, format!("{e}: {}", self.excerpt(body))))
    }

    /// The error for a 2xx reply that does not acknowledge what was sent (a `{}` or an error body where
    /// the platform's count or id should be): `not acknowledged (<why>): <redacted body>`.
    pub fn not_acknowledged(&self, operation: &str, why: &str, body: &[u8]) -> ConnectorError {
        self.invalid_response(
            operation,
            format!("not acknowledged ({why}): {}", self.excerpt(body)),
        )
    }

    /// [`Self::send_with_retry`], then [`Self::parse_json`] of the reply.
    pub async fn send_json<T, F>(
        &self,
        operation: &str,
        policy: &dyn ResponsePolicy,
        build: F,
    ) -> Result<T, ConnectorError>
    where
        T: serde::de::DeserializeOwned,
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync,
    {
        let reply = self.send_with_retry(operation, policy, build).await?;
        self.parse_json(operation, &reply.body)
    }

    /// [`Self::new`] for a configured destination: a client that cannot be built (no TLS roots, say) is
    /// a configuration error of the section (key `.`).
    pub fn for_destination(
        destination: &str,
        settings: &HttpSettings,
        secrets: &[&Secret],
    ) -> Result<Self, ConfigError> {
        Self::new(destination, settings, secrets).map_err(|e| ConfigError::Invalid {
            destination: destination.to_string(),
            key: ".".into(),
            message: format!("cannot build HTTP client: {e}"),
        })
    }

    /// The kit with `auth` applied to every request from now on (its static secret is registered with
    /// the redactor, like every token the source hands out later).
    pub fn with_auth(mut self, auth: Auth) -> Self {
        if let Some(s) = auth.secret() {
            self.redactor.add(s);
        }
        self.auth = auth;
        self
    }

    /// The configured pacing (`None` = unlimited), which destinations also report to the engine.
    pub fn requests_per_second(&self) -> Option<f64> {
        self.requests_per_second
    }

    /// The underlying client (for token endpoints and the like).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The destination's redactor, for connectors that format their own messages.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Current counters.
    pub fn stats(&self) -> HttpStatsSnapshot {
        self.stats.snapshot()
    }

    /// Destination name, for errors.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Sends a request built by `build`, with the kit's [`Auth`], until it succeeds, fails permanently or
    /// the retry budget runs out. `build` is called per attempt; the kit adds the current credentials.
    /// Transport errors and timeouts, 429/5xx and whatever `policy` calls retryable are retried with
    /// exponential backoff and jitter, or after the platform-requested delay; an unauthorized reply
    /// refreshes the token once. Every message in the returned error and in log lines is redacted.
    pub async fn send_with_retry<F>(
        &self,
        operation: &str,
        policy: &dyn ResponsePolicy,
        build: F,
    ) -> Result<HttpReply, ConnectorError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync,
    {
        self.send_counted(operation, policy, &self.auth, build)
            .await
    }

    /// [`Self::send_with_retry`] without the kit's credentials, for a URL the platform hands out on
    /// another host (SendGrid's signed error-CSV links), which must never receive our key.
    pub async fn send_anonymous<F>(
        &self,
        operation: &str,
        policy: &dyn ResponsePolicy,
        build: F,
    ) -> Result<HttpReply, ConnectorError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync,
    {
        self.send_counted(operation, policy, &Auth::None, build)
            .await
    }

    async fn send_counted<F>(
        &self,
        operation: &str,
        policy: &dyn ResponsePolicy,
        auth: &Auth,
        build: F,
    ) -> Result<HttpReply, ConnectorError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync,
    {
        let result = self.send_inner(operation, policy, auth, build).await;
        if result.is_err() {
            HttpStats::bump(&self.stats.failures);
        }
        result
    }

    async fn send_inner<F>(
        &self,
        operation: &str,
        policy: &dyn ResponsePolicy,
        auth: &Auth,
        build: F,
    ) -> Result<HttpReply, ConnectorError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync,
    {
        let budget_ms = self.retry.max_total_ms.max(1);
        let deadline = Instant::now() + Duration::from_millis(budget_ms);
        let out_of_time = |attempts: u32, last: &str| ConnectorError::OutOfTime {
            destination: self.destination.clone(),
            operation: operation.to_string(),
            attempts,
            budget_ms,
            message: if last.is_empty() {
                "the platform did not answer in time".to_string()
            } else {
                last.to_string()
            },
        };
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        let mut last = String::new();
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let exchange = tokio::time::timeout(left, self.exchange(operation, auth, &build)).await;
            let outcome = match exchange {
                Err(_elapsed) => return Err(out_of_time(attempt, &last)),
                Ok(outcome) => outcome?,
            };
            let (status, headers, body) = match outcome {
                Exchange::Reply(parts) => parts,
                Exchange::TooLarge => {
                    return Err(ConnectorError::ReplyTooLarge {
                        destination: self.destination.clone(),
                        operation: operation.to_string(),
                        limit_bytes: self.max_reply_bytes,
                    })
                }
                Exchange::Failed(e) => {
                    let transient =
                        e.is_timeout() || e.is_connect() || e.is_request() || e.is_body();
                    let message = self.redactor.redact(&error_chain(e.without_url()));
                    if transient && attempt < self.retry.max_attempts {
                        let delay = self.backoff(attempt);
                        if Instant::now() + delay >= deadline {
                            return Err(out_of_time(attempt, &message));
                        }
                        HttpStats::bump(&self.stats.retries);
                        tracing::warn!(destination = %self.destination, operation, attempt, delay_ms = delay.as_millis() as u64, error = %message, "transport error, retrying");
                        last = message;
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(ConnectorError::Transport {
                        destination: self.destination.clone(),
                        operation: operation.to_string(),
                        attempts: attempt,
                        message,
                    });
                }
            };
            if status.is_redirection() {
                return Err(ConnectorError::Redirected {
                    destination: self.destination.clone(),
                    operation: operation.to_string(),
                    status: status.as_u16(),
                    location: self.redactor.redact(&redirect_target(&headers)),
                });
            }
            match policy.classify(status, &headers, &body) {
                Verdict::Success => {
                    return Ok(HttpReply {
                        status,
                        headers,
                        body,
                    })
                }
                Verdict::Unauthorized { reason } => {
                    let reason = self.redactor.redact(&reason);
                    if !refreshed {
                        if let Some(source) = auth.source() {
                            if source.refresh().await.map_err(|e| self.redact_error(e))? {
                                refreshed = true;
                                attempt -= 1;
                                HttpStats::bump(&self.stats.token_refreshes);
                                tracing::info!(destination = %self.destination, operation, "token refreshed after an unauthorized reply");
                                continue;
                            }
                        }
                    }
                    return Err(ConnectorError::Auth {
                        destination: self.destination.clone(),
                        operation: operation.to_string(),
                        message: reason,
                    });
                }
                Verdict::Fail { code, reason } => {
                    return Err(ConnectorError::Api {
                        destination: self.destination.clone(),
                        operation: operation.to_string(),
                        status: status.as_u16(),
                        code,
                        message: self.redactor.redact(&reason),
                    })
                }
                Verdict::Retry {
                    after,
                    throttled,
                    reason,
                } => {
                    let reason = self.redactor.redact(&reason);
                    if throttled {
                        HttpStats::bump(&self.stats.throttled);
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    let too_long = after.is_some_and(|a| {
                        a > Duration::from_secs(self.retry.max_retry_after_secs) || a >= left
                    });
                    if attempt >= self.retry.max_attempts || too_long {
                        return Err(if throttled || too_long {
                            ConnectorError::Throttled {
                                destination: self.destination.clone(),
                                operation: operation.to_string(),
                                attempts: attempt,
                                retry_after: after,
                                message: reason,
                            }
                        } else {
                            ConnectorError::Api {
                                destination: self.destination.clone(),
                                operation: operation.to_string(),
                                status: status.as_u16(),
                                code: None,
                                message: reason,
                            }
                        });
                    }
                    let delay = after.unwrap_or_else(|| self.backoff(attempt));
                    if delay >= left {
                        return Err(out_of_time(attempt, &reason));
                    }
                    HttpStats::bump(&self.stats.retries);
                    tracing::warn!(destination = %self.destination, operation, attempt, status = status.as_u16(), delay_ms = delay.as_millis() as u64, reason = %reason, "transient reply, retrying");
                    last = reason;
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One attempt: pacing, the current token, the request, and the reply read up to the body limit.
    /// `Err` only for a token source's failure (redacted) or a credential that is missing, which sends
    /// nothing; transport trouble is an [`Exchange::Failed`] for the retry loop to judge.
    async fn exchange<F>(
        &self,
        operation: &str,
        auth: &Auth,
        build: &F,
    ) -> Result<Exchange, ConnectorError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync,
    {
        if self.limiter.acquire().await {
            HttpStats::bump(&self.stats.rate_limited_waits);
        }
        let token = match auth.source() {
            Some(source) => {
                let t = source
                    .access_token()
                    .await
                    .map_err(|e| self.redact_error(e))?;
                self.redactor.add(&t);
                Some(t)
            }
            None => None,
        };
        let builder = auth::apply(auth, token.as_ref(), build(&self.client)).map_err(|why| {
            ConnectorError::Auth {
                destination: self.destination.clone(),
                operation: operation.to_string(),
                message: format!("{why}; nothing was sent"),
            }
        })?;
        HttpStats::bump(&self.stats.requests);
        let request = match builder.build() {
            Ok(r) => r,
            Err(e) => return Ok(Exchange::Failed(e)),
        };
        if let Some(credential) = request
            .headers()
            .get(reqwest::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
        {
            self.redactor.add_basic_credential(credential);
        }
        let resp = match self.client.execute(request).await {
            Ok(r) => r,
            Err(e) => return Ok(Exchange::Failed(e)),
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        Ok(match read_limited(resp, self.max_reply_bytes).await {
            Ok(body) => Exchange::Reply((status, headers, body)),
            Err(BodyError::TooLarge) => Exchange::TooLarge,
            Err(BodyError::Transport(e)) => Exchange::Failed(e),
        })
    }

    /// A token source's (or connector's own) error with the destination's secrets masked.
    pub fn redact_error(&self, e: ConnectorError) -> ConnectorError {
        e.redacted(|m| self.redactor.redact(m))
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .retry
            .initial_backoff_ms
            .saturating_mul(1u64 << (attempt - 1).min(20));
        let capped = exp.min(self.retry.max_backoff_ms).max(1);
        let half = capped / 2;
        Duration::from_millis(half + rand::thread_rng().gen_range(0..=capped - half))
    }
}

/// Display of an error and its sources, so "error sending request" comes with its cause.
fn error_chain(e: reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// What one attempt produced.
enum Exchange {
    /// A reply, read whole within the limit.
    Reply((StatusCode, HeaderMap, Vec<u8>)),
    /// The reply body was longer than the limit.
    TooLarge,
    /// A transport error (connect, timeout, body cut short).
    Failed(reqwest::Error),
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Longer than the limit (by `Content-Length` or by what arrived).
    TooLarge,
    /// The connection failed while reading.
    Transport(reqwest::Error),
}

/// Reads a reply body chunk by chunk, refusing it as soon as it exceeds `limit` bytes, so an endless or
/// huge reply costs at most `limit` bytes of memory.
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    limit: u64,
) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Where a redirect pointed, for the error: scheme, host, port and path of `Location`, never its query
/// or fragment (a redirect URL may carry a token).
fn redirect_target(headers: &HeaderMap) -> String {
    let Some(location) = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
    else {
        return "(no Location)".to_string();
    };
    match url::Url::parse(location) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        // A relative Location: its path only.
        Err(_) => location
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}
