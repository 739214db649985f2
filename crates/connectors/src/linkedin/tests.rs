//! LinkedIn connector tests against the stateful fake over loopback HTTP.

use crate::test_support::{email_contact, extend_section, prepare_all, secrets, with_test_http};
use crate::{build_destination, AudienceDestination, ConnectorError, SecretResolver};
use campaignd_fakes::FakeLinkedIn;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

const CLIENT_ID: &str = "li-client-77";
const CLIENT_SECRET: &str = "li-client-SECRET-abc";
pub(crate) const REFRESH: &str = "AQX-refresh-SECRET-0987654321";

pub(crate) async fn fake() -> FakeLinkedIn {
    FakeLinkedIn::start("5150", CLIENT_ID, CLIENT_SECRET, REFRESH)
        .await
        .expect("fake linkedin")
}

pub(crate) fn destination(
    fake: &FakeLinkedIn,
    refresh: &str,
    extra: serde_json::Value,
) -> Arc<dyn AudienceDestination> {
    let secrets = secrets(&[
        ("LI_ID", CLIENT_ID),
        ("LI_SECRET", CLIENT_SECRET),
        ("LI_REFRESH", refresh),
    ]);
    let mut section = with_test_http(
        json!({
            "kind": "linkedin",
            "base_url": fake.base_url(),
            "token_url": fake.token_url(),
            "ad_account_id": "urn:li:sponsoredAccount:5150",
            "client_id": {"env": "LI_ID"},
            "client_secret": {"env": "LI_SECRET"},
            "refresh_token": {"env": "LI_REFRESH"},
            "post_create_delay_ms": 0,
        }),
        5_000,
        3,
    );
    extend_section(&mut section, &extra);
    build_destination("li", &section, &secrets).expect("linkedin destination")
}

#[tokio::test]
async fn bare_429_backs_off_and_retries() {
    let fake = fake().await;
    let d = destination(&fake, REFRESH, json!({}));
    let aud = d.find_or_create_audience("a", "").await.expect("segment");
    fake.faults().throttle_next(2);
    let out = d
        .add_members(&aud, &prepare_all(d.as_ref(), 0..10, email_contact))
        .await
        .expect("add after 429s");
    assert_eq!(out.accepted, 10);
    let stats = d.http_stats().expect("stats");
    assert_eq!((stats.throttled, stats.retries), (2, 2));
    fake.faults().throttle_next(5);
    let err = d
        .add_members(&aud, &prepare_all(d.as_ref(), 0..10, email_contact))
        .await
        .expect_err("exhausted");
    assert!(
        matches!(
            err,
            ConnectorError::Throttled {
                retry_after: None,
                ..
            }
        ),
        "{err}"
    );
    fake.faults().throttle_next(0);
}

#[tokio::test]
async fn expired_token_is_refreshed_once() {
    let fake = fake().await;
    let d = destination(&fake, REFRESH, json!({}));
    let aud = d.find_or_create_audience("a", "").await.expect("segment");
    fake.oauth().expire_all();
    let out = d
        .add_members(&aud, &prepare_all(d.as_ref(), 0..4, email_contact))
        .await
        .expect("add after refresh");
    assert_eq!(out.accepted, 4);
    assert_eq!(fake.oauth().issued(), 2);
    assert_eq!(d.http_stats().expect("stats").token_refreshes, 1);
}

#[tokio::test]
async fn secrets_never_appear_in_errors_and_config_is_checked() {
    let fake = fake().await;
    let wrong = "AQX-refresh-WRONG-SECRET-1";
    let d = destination(&fake, wrong, json!({}));
    let err = d
        .find_or_create_audience("a", "")
        .await
        .expect_err("bad refresh");
    let text = format!("{err} {err:?}");
    assert!(matches!(err, ConnectorError::Auth { .. }), "{text}");
    for s in [wrong, CLIENT_SECRET, REFRESH] {
        assert!(!text.contains(s), "secret leaked: {text}");
    }
    let secrets = SecretResolver::from_map(HashMap::new());
    let bad = json!({"kind": "linkedin", "ad_account_id": "5150", "client_id": {"env": "A"}, "client_secret": {"env": "B"},
        "refresh_token": {"env": "C"}, "linkedin_version": "2026-10"});
    let e = build_destination("li", &bad, &secrets)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("linkedin_version"), "{e}");
}

/// LinkedIn takes the client credentials only as form fields of the refresh (Microsoft Learn,
/// "Refresh Tokens with OAuth 2.0"): the Basic-only refresh this connector used to send is refused with
/// `invalid_request`, the connector's own refresh (credentials in the body) gets a token.
#[tokio::test]
async fn refresh_sends_client_credentials_in_the_form_body() {
    use crate::http::{OAuth2RefreshToken, TokenSource};
    use crate::Secret;
    let fake = fake().await;
    let source = || {
        OAuth2RefreshToken::new(
            "li",
            reqwest::Client::new(),
            &fake.token_url(),
            CLIENT_ID,
            Some(Secret::new(CLIENT_SECRET.to_string())),
            Secret::new(REFRESH.to_string()),
        )
        .expect("token source")
    };
    let basic_only = source();
    let err = basic_only
        .access_token()
        .await
        .expect_err("basic-only refused");
    assert!(err.to_string().contains("invalid_request"), "{err}");
    let in_body = source().with_credentials_in_body();
    in_body.access_token().await.expect("form refresh accepted");
    let d = destination(&fake, REFRESH, json!({}));
    d.find_or_create_audience("a", "")
        .await
        .expect("connector refreshes with the form");
    assert_eq!(fake.oauth().issued(), 2);
}
