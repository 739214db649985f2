//! Tests of the kit over loopback HTTP with tiny axum servers.

use super::*;
use axum::extract::State;
use axum::http::HeaderMap as AxHeaders;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::AtomicU32;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

fn fast_settings() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(300),
        retry: RetrySettings {
            max_attempts: 4,
            initial_backoff_ms: 5,
            max_backoff_ms: 20,
            max_retry_after_secs: 5,
            max_total_ms: 10_000,
        },
        requests_per_second: None,
        max_reply_bytes: MAX_REPLY_BYTES,
    }
}

#[test]
fn retry_after_parses_seconds_and_dates() {
    let mut h = HeaderMap::new();
    h.insert(RETRY_AFTER, "7".parse().expect("hv"));
    assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
    let future = (chrono::Utc::now() + chrono::Duration::seconds(30))
        .to_rfc2822()
        .replace("+0000", "GMT");
    h.insert(RETRY_AFTER, future.parse().expect("hv"));
    let d = retry_after(&h).expect("date");
    assert!(
        d > Duration::from_secs(25) && d <= Duration::from_secs(30),
        "{d:?}"
    );
    h.insert(
        RETRY_AFTER,
        "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("hv"),
    );
    assert_eq!(retry_after(&h), Some(Duration::ZERO));
    h.insert(RETRY_AFTER, "soon".parse().expect("hv"));
    assert_eq!(retry_after(&h), None);
}

#[test]
fn redactor_masks_secrets_and_access_token_params() {
    let r = Redactor::default();
    r.add(&Secret::new("EAAB-super-secret"));
    let text = "bad token EAAB-super-secret at https://x/y?access_token=abc123&fields=id";
    let out = r.redact(text);
    assert!(!out.contains("EAAB-super-secret"), "{out}");
    assert!(!out.contains("abc123"), "{out}");
    assert!(out.contains("fields=id"), "{out}");
}

#[tokio::test]
async fn timeouts_are_retried_then_reported() {
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let base = serve(Router::new().route(
        "/slow",
        get(move || {
            let h = h.clone();
            async move {
                let n = h.fetch_add(1, Ordering::SeqCst);
                if n < 1 {
                    tokio::time::sleep(Duration::from_millis(1000)).await;
                }
                "ok"
            }
        }),
    ))
    .await;
    let kit = HttpKit::new("t", &fast_settings(), &[]).expect("kit");
    let url = format!("{base}/slow");
    let reply = kit
        .send_with_retry("slow", &DefaultPolicy, |c| c.get(&url))
        .await
        .expect("second try");
    assert_eq!(reply.body, b"ok");
    assert_eq!(kit.stats().retries, 1);

    let refused = "http://127.0.0.1:9/nothing".to_string();
    let err = kit
        .send_with_retry("refused", &DefaultPolicy, |c| c.get(&refused))
        .await
        .expect_err("refused");
    assert!(
        matches!(err, ConnectorError::Transport { attempts: 4, .. }),
        "{err}"
    );
    assert!(err.is_transient());
}

#[derive(Default)]
struct OAuthState {
    refreshes: AtomicU32,
}

async fn token_endpoint(State(st): State<Arc<OAuthState>>, body: String) -> impl IntoResponse {
    assert!(body.contains("grant_type=refresh_token"), "{body}");
    if !body.contains("refresh_token=rt-1") {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let n = st.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
    axum::Json(serde_json::json!({"access_token": format!("at-{n}"), "token_type": "bearer", "expires_in": 3600}))
        .into_response()
}

async fn api(State(st): State<Arc<OAuthState>>, headers: AxHeaders) -> impl IntoResponse {
    // Only the second token issued is accepted: the first is "revoked" to force a 401 → refresh.
    let ok = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer at-2");
    let _ = &st;
    if ok {
        (axum::http::StatusCode::OK, "fine").into_response()
    } else {
        (axum::http::StatusCode::UNAUTHORIZED, "token revoked").into_response()
    }
}

/// Refreshes through the real grant but always hands out the revoked first token.
struct Stale(Arc<OAuth2RefreshToken>);

#[async_trait::async_trait]
impl TokenSource for Stale {
    async fn access_token(&self) -> Result<Secret, ConnectorError> {
        Ok(Secret::new("at-1"))
    }

    async fn refresh(&self) -> Result<bool, ConnectorError> {
        self.0.refresh().await
    }
}

#[tokio::test]
async fn unauthorized_refreshes_oauth2_token_once() {
    let st = Arc::new(OAuthState::default());
    let base = serve(
        Router::new()
            .route("/token", post(token_endpoint))
            .route("/api", get(api))
            .with_state(st.clone()),
    )
    .await;
    let plain = HttpKit::new("g", &fast_settings(), &[]).expect("kit");
    let source = Arc::new(
        OAuth2RefreshToken::new(
            "g",
            plain.client().clone(),
            &format!("{base}/token"),
            "client",
            Some(Secret::new("client-secret")),
            Secret::new("rt-1"),
        )
        .expect("source"),
    );
    let kit = plain.clone().with_auth(Auth::Bearer(source.clone()));
    let url = format!("{base}/api");
    let build = |c: &reqwest::Client| c.get(&url);
    let reply = kit
        .send_with_retry("api", &DefaultPolicy, build)
        .await
        .expect("after refresh");
    assert_eq!(reply.body, b"fine");
    assert_eq!(st.refreshes.load(Ordering::SeqCst), 2);
    assert_eq!(kit.stats().token_refreshes, 1);

    // A token that stays refused after one refresh is an Auth error, with no token in the message.
    let url2 = format!("{base}/api");
    let stale = plain.with_auth(Auth::Bearer(Arc::new(Stale(source))));
    let err = stale
        .send_with_retry("api", &DefaultPolicy, |c| c.get(&url2))
        .await
        .expect_err("auth");
    assert!(matches!(err, ConnectorError::Auth { .. }), "{err}");
    assert_eq!(
        st.refreshes.load(Ordering::SeqCst),
        3,
        "exactly one refresh per call"
    );
}

#[tokio::test]
async fn rate_limiter_paces_requests() {
    let limiter = RateLimiter::new(Some(20.0));
    let start = tokio::time::Instant::now();
    let mut waited = 0;
    for _ in 0..30 {
        if limiter.acquire().await {
            waited += 1;
        }
    }
    // Burst of 20, then 10 more at 20/s ≈ 0.5 s.
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
    assert!(waited >= 9, "{waited}");
    assert!(!RateLimiter::new(None).acquire().await);
}

/// Counts requests, answers 200 "other": the host a redirect names.
async fn counting_server() -> (String, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let base = serve(Router::new().fallback(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            "other"
        }
    }))
    .await;
    (base, hits)
}

#[tokio::test]
async fn redirects_are_refused_and_never_followed() {
    let (other, other_hits) = counting_server().await;
    let target = format!("{other}/steal?access_token=leaked-in-location");
    let t = target.clone();
    let base = serve(Router::new().fallback(move |method: axum::http::Method| {
        let t = t.clone();
        async move {
            let status = if method == axum::http::Method::POST {
                axum::http::StatusCode::TEMPORARY_REDIRECT
            } else {
                axum::http::StatusCode::FOUND
            };
            (status, [(axum::http::header::LOCATION, t)], "moved")
        }
    }))
    .await;
    let kit = HttpKit::new("r", &fast_settings(), &[]).expect("kit");
    let url = format!("{base}/upload");
    for (op, status) in [("post", 307u16), ("get", 302)] {
        let err = kit
            .send_with_retry(op, &DefaultPolicy, |c| {
                if op == "post" {
                    c.post(&url).body("hashed rows")
                } else {
                    c.get(&url)
                }
            })
            .await
            .expect_err("redirect refused");
        let text = err.to_string();
        assert!(
            matches!(&err, ConnectorError::Redirected { status: s, .. } if *s == status),
            "{text}"
        );
        assert!(!err.is_transient(), "{text}");
        assert!(text.contains(&format!("{other}/steal")), "{text}");
        assert!(!text.contains("leaked-in-location"), "{text}");
    }
    assert_eq!(
        other_hits.load(Ordering::SeqCst),
        0,
        "the other host got nothing"
    );
    assert_eq!(kit.stats().requests, 2, "one attempt each, no retry");
}

#[tokio::test]
async fn a_hung_platform_is_bounded_by_the_call_budget() {
    let base = serve(Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        "never"
    }))
    .await;
    let mut settings = fast_settings();
    settings.request_timeout = Duration::from_secs(3600);
    settings.retry.max_total_ms = 500;
    let kit = HttpKit::new("h", &settings, &[]).expect("kit");
    let url = format!("{base}/hang");
    let err = kit
        .send_with_retry("hang", &DefaultPolicy, |c| c.get(&url))
        .await
        .expect_err("budget");
    assert!(
        matches!(
            err,
            ConnectorError::OutOfTime {
                budget_ms: 500,
                attempts: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_transient());

    // Retries that would run past the budget stop there too (5xx forever, long backoff).
    let base = serve(
        Router::new().fallback(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy") }),
    )
    .await;
    let mut settings = fast_settings();
    settings.retry.max_attempts = 1_000;
    settings.retry.initial_backoff_ms = 200;
    settings.retry.max_backoff_ms = 200;
    settings.retry.max_total_ms = 1_000;
    let kit = HttpKit::new("h", &settings, &[]).expect("kit");
    let url = format!("{base}/busy");
    let err = kit
        .send_with_retry("busy", &DefaultPolicy, |c| c.get(&url))
        .await
        .expect_err("budget");
    assert!(matches!(err, ConnectorError::OutOfTime { .. }), "{err}");
    assert!(err.to_string().contains("busy"), "{err}");
    assert!(kit.stats().requests < 1_000);
}

#[tokio::test]
async fn an_endless_or_oversized_body_is_refused() {
    let base = serve(
        Router::new()
            .route(
                "/endless",
                get(|| async {
                    let chunk = axum::body::Bytes::from(vec![b'{'; 64 * 1024]);
                    axum::body::Body::from_stream(futures::stream::repeat_with(move || {
                        Ok::<_, std::io::Error>(chunk.clone())
                    }))
                }),
            )
            .route("/big", get(|| async { vec![b'x'; 3 * 1024 * 1024] })),
    )
    .await;
    let mut settings = fast_settings();
    settings.request_timeout = Duration::from_secs(60);
    settings.max_reply_bytes = 2 * 1024 * 1024;
    let kit = HttpKit::new("b", &settings, &[]).expect("kit");
    for path in ["endless", "big"] {
        let url = format!("{base}/{path}");
        let err = kit
            .send_with_retry(path, &DefaultPolicy, |c| c.get(&url))
            .await
            .expect_err("too large");
        assert!(
            matches!(err, ConnectorError::ReplyTooLarge { limit_bytes, .. } if limit_bytes == 2 * 1024 * 1024),
            "{err}"
        );
        assert!(!err.is_transient());
    }
}

/// Answers with everything it was sent (headers, query, body) inside a JSON error, as a hostile or
/// misconfigured server might; `/token` does it in OAuth2's error shape.
async fn echo(req: axum::extract::Request) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let mut text = format!("{} {}\n", parts.method, parts.uri);
    for (k, v) in &parts.headers {
        text.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    text.push_str(&String::from_utf8_lossy(&body));
    let json = if parts.uri.path() == "/token" {
        serde_json::json!({"error": "invalid_client", "error_description": text})
    } else {
        serde_json::json!({"error": {"message": text}})
    };
    (axum::http::StatusCode::BAD_REQUEST, axum::Json(json)).into_response()
}

#[tokio::test]
async fn echoed_secrets_are_masked_in_every_form() {
    let base = serve(Router::new().fallback(echo)).await;
    let (id, secret, refresh) = ("client/id+1", "sec\"ret&=2", "refresh\\tok/3");
    let secrets = [Secret::new(id), Secret::new(secret), Secret::new(refresh)];
    let plain =
        HttpKit::new("e", &fast_settings(), &secrets.iter().collect::<Vec<_>>()).expect("kit");
    let source = OAuth2RefreshToken::new(
        "e",
        plain.client().clone(),
        &format!("{base}/token"),
        id,
        Some(secrets[1].clone()),
        secrets[2].clone(),
    )
    .expect("source");
    let url = format!("{base}/api");
    let token_err = plain
        .clone()
        .with_auth(Auth::bearer(source))
        .send_with_retry("api", &DefaultPolicy, |c| c.get(&url))
        .await
        .expect_err("token endpoint refuses");
    let api_key = "mc-key/with+odd\"chars-us21";
    let basic_err = plain
        .with_auth(Auth::basic("anystring", Secret::new(api_key)))
        .send_with_retry("basic", &DefaultPolicy, |c| {
            c.post(format!(
                "{url}?key={}",
                url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
            ))
            .form(&[("secret", secret)])
        })
        .await
        .expect_err("echo");
    for (err, must_show) in [(token_err, "invalid_client"), (basic_err, "HTTP 400")] {
        let text = err.to_string();
        assert!(text.contains(must_show), "{text}");
        for value in [id, secret, refresh, api_key] {
            for form in redact::derived_forms(value) {
                assert!(
                    !text.contains(&form),
                    "form {form:?} of {value:?} leaked: {text}"
                );
            }
        }
        let b64 = |s: String| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(s)
        };
        for pair in [
            b64(format!("anystring:{api_key}")),
            b64(format!("{}:{}", enc(id), enc(secret))),
        ] {
            assert!(!text.contains(&pair), "{pair} leaked: {text}");
        }
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Hands out an empty token, as a misbehaving token endpoint could.
struct EmptyToken;

#[async_trait::async_trait]
impl TokenSource for EmptyToken {
    async fn access_token(&self) -> Result<Secret, ConnectorError> {
        Ok(Secret::new(""))
    }

    async fn refresh(&self) -> Result<bool, ConnectorError> {
        Ok(false)
    }
}

#[tokio::test]
async fn the_kit_sends_its_auth_and_never_an_empty_credential() {
    let (base, hits) = counting_server().await;
    let url = format!("{base}/anything");
    for auth in [
        Auth::Bearer(Arc::new(EmptyToken)),
        Auth::Header {
            name: reqwest::header::HeaderName::from_static("access-token"),
            prefix: "",
            source: Arc::new(EmptyToken),
        },
        Auth::basic("user", Secret::new("")),
    ] {
        let kit = HttpKit::new("a", &fast_settings(), &[])
            .expect("kit")
            .with_auth(auth);
        let err = kit
            .send_with_retry("call", &DefaultPolicy, |c| c.get(&url))
            .await
            .expect_err("no credential");
        assert!(matches!(err, ConnectorError::Auth { .. }), "{err}");
        assert!(err.to_string().contains("nothing was sent"), "{err}");
        assert_eq!(kit.stats().requests, 0);
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no request reached the platform"
    );

    // The credential the kit owns is what goes on the wire, in the header the platform reads.
    let seen = serve(Router::new().fallback(|headers: AxHeaders| async move {
        let get = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string()
        };
        format!("{}|{}", get("authorization"), get("access-token"))
    }))
    .await;
    for (auth, expected) in [
        (Auth::static_bearer(Secret::new("tok")), "Bearer tok|-"),
        (
            Auth::static_header("access-token", "", Secret::new("tt")),
            "-|tt",
        ),
        (
            Auth::static_header("authorization", "Klaviyo-API-Key ", Secret::new("pk")),
            "Klaviyo-API-Key pk|-",
        ),
        (Auth::basic("u", Secret::new("p")), "Basic dTpw|-"),
    ] {
        let kit = HttpKit::new("a", &fast_settings(), &[])
            .expect("kit")
            .with_auth(auth);
        let reply = kit
            .send_with_retry("call", &DefaultPolicy, |c| c.get(&seen))
            .await
            .expect("sent");
        assert_eq!(String::from_utf8_lossy(&reply.body), expected);
    }
}
