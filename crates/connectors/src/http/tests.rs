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
        },
        requests_per_second: None,
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
        .send_with_retry("slow", &DefaultPolicy, None, |c, _| c.get(&url))
        .await
        .expect("second try");
    assert_eq!(reply.body, b"ok");
    assert_eq!(kit.stats().retries, 1);

    let refused = "http://127.0.0.1:9/nothing".to_string();
    let err = kit
        .send_with_retry("refused", &DefaultPolicy, None, |c, _| c.get(&refused))
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
    let kit = HttpKit::new("g", &fast_settings(), &[]).expect("kit");
    let source = OAuth2RefreshToken::new(
        "g",
        kit.client().clone(),
        &format!("{base}/token"),
        "client",
        Some(Secret::new("client-secret")),
        Secret::new("rt-1"),
    )
    .expect("source");
    let url = format!("{base}/api");
    let build = |c: &reqwest::Client, t: Option<&Secret>| {
        c.get(&url).bearer_auth(t.map(Secret::expose).unwrap_or(""))
    };
    let reply = kit
        .send_with_retry("api", &DefaultPolicy, Some(&source), build)
        .await
        .expect("after refresh");
    assert_eq!(reply.body, b"fine");
    assert_eq!(st.refreshes.load(Ordering::SeqCst), 2);
    assert_eq!(kit.stats().token_refreshes, 1);

    // A token that stays refused after one refresh is an Auth error, with no token in the message.
    let url2 = format!("{base}/api");
    let bad = |c: &reqwest::Client, _t: Option<&Secret>| c.get(&url2).bearer_auth("at-1");
    let err = kit
        .send_with_retry("api", &DefaultPolicy, Some(&source), bad)
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
