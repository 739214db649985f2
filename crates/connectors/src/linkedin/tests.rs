//! LinkedIn connector tests against the stateful fake over loopback HTTP.

use crate::model::{AudienceRef, PreparedMember};
use crate::test_support::{email_contact, email_hash, extend_section, prepare_all, secrets};
use crate::{build_destination, AudienceDestination, ConnectorError, SecretResolver};
use campaignd_fakes::FakeLinkedIn;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
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
    let mut section = json!({
        "kind": "linkedin",
        "base_url": fake.base_url(),
        "token_url": fake.token_url(),
        "ad_account_id": "urn:li:sponsoredAccount:5150",
        "client_id": {"env": "LI_ID"},
        "client_secret": {"env": "LI_SECRET"},
        "refresh_token": {"env": "LI_REFRESH"},
        "post_create_delay_ms": 0,
        "request_timeout_ms": 5_000,
        "requests_per_second": 1000.0,
        "retry": {"max_attempts": 3, "initial_backoff_ms": 5, "max_backoff_ms": 20, "max_retry_after_secs": 3},
    });
    extend_section(&mut section, &extra);
    build_destination("li", &section, &secrets).expect("linkedin destination")
}

#[tokio::test]
async fn find_or_create_pages_and_adopts() {
    let fake = fake().await;
    let ids = fake.seed_segments((0..230).map(|i| format!("existing {i}")));
    let d = destination(&fake, REFRESH, json!({}));
    let adopted = d
        .find_or_create_audience("existing 229", "")
        .await
        .expect("adopt");
    assert_eq!(
        adopted,
        AudienceRef {
            remote_id: ids[229].clone(),
            adopted: true
        }
    );
    assert_eq!(fake.requests().count("GET", "/dmpSegments"), 3);
    let created = d
        .find_or_create_audience("campaignd: vip", "")
        .await
        .expect("create");
    assert!(!created.adopted);
    assert_eq!(
        fake.segment_id("campaignd: vip"),
        Some(created.remote_id.clone())
    );
    let again = d
        .find_or_create_audience("campaignd: vip", "")
        .await
        .expect("adopt own");
    assert_eq!((again.remote_id, again.adopted), (created.remote_id, true));
    assert_eq!(fake.segments().len(), 231);
}

#[tokio::test]
async fn add_remove_converge_in_batches_of_five_thousand() {
    let fake = fake().await;
    let d = destination(&fake, REFRESH, json!({}));
    assert_eq!(d.limits().max_batch, 5_000);
    assert_eq!(d.limits().min_audience_size, 300);
    let aud = d.find_or_create_audience("a", "").await.expect("segment");
    let all = prepare_all(d.as_ref(), 0..5_300, email_contact);
    let out = d.add_members(&aud, &all).await.expect("add");
    assert_eq!((out.accepted, out.rejected.len()), (5_300, 0));
    assert_eq!(fake.requests().count("POST", "/users"), 2);
    assert_eq!(fake.max_batch_seen(), 5_000);
    let out = d.remove_members(&aud, &all[..300]).await.expect("remove");
    assert_eq!(out.accepted, 300);
    let expected: BTreeSet<String> = (300..5_300).map(email_hash).collect();
    assert_eq!(fake.members(&aud.remote_id), expected);
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
async fn per_element_failures_become_rejections() {
    let fake = fake().await;
    let d = destination(&fake, REFRESH, json!({}));
    let aud = d.find_or_create_audience("a", "").await.expect("segment");
    fake.reject_emails([email_hash(2), email_hash(5)]);
    let mut members = prepare_all(d.as_ref(), 0..8, email_contact);
    members.push(PreparedMember::new("corrupt", json!({"EMAIL": "x"})));
    let out = d.add_members(&aud, &members).await.expect("add");
    assert_eq!(out.accepted, 6);
    let mut ids: Vec<&str> = out
        .rejected
        .iter()
        .map(|r| r.customer_id.as_str())
        .collect();
    ids.sort();
    assert_eq!(ids, ["c2", "c5", "corrupt"]);
    let c2 = out
        .rejected
        .iter()
        .find(|r| r.customer_id == "c2")
        .expect("c2");
    assert!(c2.reason.contains("400"), "{c2:?}");
    assert_eq!(fake.members(&aud.remote_id).len(), 6);
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
    let basic_only = OAuth2RefreshToken::new(
        "li",
        reqwest::Client::new(),
        &fake.token_url(),
        CLIENT_ID,
        Some(Secret::new(CLIENT_SECRET.to_string())),
        Secret::new(REFRESH.to_string()),
    )
    .expect("token source");
    let err = basic_only
        .access_token()
        .await
        .expect_err("basic-only refused");
    assert!(err.to_string().contains("invalid_request"), "{err}");
    let in_body = OAuth2RefreshToken::new(
        "li",
        reqwest::Client::new(),
        &fake.token_url(),
        CLIENT_ID,
        Some(Secret::new(CLIENT_SECRET.to_string())),
        Secret::new(REFRESH.to_string()),
    )
    .expect("token source")
    .with_credentials_in_body();
    in_body.access_token().await.expect("form refresh accepted");
    let d = destination(&fake, REFRESH, json!({}));
    d.find_or_create_audience("a", "")
        .await
        .expect("connector refreshes with the form");
    assert_eq!(fake.oauth().issued(), 2);
}
