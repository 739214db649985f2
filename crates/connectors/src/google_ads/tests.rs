//! Google Ads connector tests against the stateful fake over loopback HTTP, for both APIs.

use super::NOT_ALLOWLISTED_HINT;
use crate::model::{AudienceRef, Contact, PreparedMember, ReplaceSession};
use crate::test_support::{
    email_contact, email_hash, extend_section, prepare_all, secrets, with_test_http,
};
use crate::{build_destination, AudienceDestination, ConnectorError, SecretResolver};
use campaignd_core::identifiers::sha256_hex;
use campaignd_fakes::google_ads::GoogleFakeConfig;
use campaignd_fakes::FakeGoogleAds;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEV_TOKEN: &str = "devtok-SECRET-0123456789";
const CLIENT_ID: &str = "client-id-123.apps.example";
const CLIENT_SECRET: &str = "client-SECRET-abcdef";
const REFRESH: &str = "1//refresh-SECRET-xyz987";

pub(crate) async fn fake(login: Option<&str>) -> FakeGoogleAds {
    FakeGoogleAds::start(GoogleFakeConfig {
        developer_token: DEV_TOKEN.into(),
        customer_id: "1234567890".into(),
        login_customer_id: login.map(str::to_string),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        refresh_token: REFRESH.into(),
    })
    .await
    .expect("fake google")
}

fn resolver(refresh: &str) -> SecretResolver {
    secrets(&[
        ("G_DEV", DEV_TOKEN),
        ("G_ID", CLIENT_ID),
        ("G_SECRET", CLIENT_SECRET),
        ("G_REFRESH", refresh),
    ])
}

fn section(fake: &FakeGoogleAds, api: &str, extra: serde_json::Value) -> serde_json::Value {
    let base = if api == "data_manager" {
        fake.data_manager_url()
    } else {
        fake.base_url()
    };
    let mut s = with_test_http(
        json!({
            "kind": "google_ads",
            "api": api,
            "base_url": base,
            "token_url": fake.token_url(),
            "customer_id": "123-456-7890",
            "developer_token": {"env": "G_DEV"},
            "client_id": {"env": "G_ID"},
            "client_secret": {"env": "G_SECRET"},
            "refresh_token": {"env": "G_REFRESH"},
            "job_poll_interval_ms": 5,
        }),
        5_000,
        3,
    );
    extend_section(&mut s, &extra);
    s
}

pub(crate) fn destination(fake: &FakeGoogleAds, api: &str) -> Arc<dyn AudienceDestination> {
    build_destination("gads", &section(fake, api, json!({})), &resolver(REFRESH))
        .expect("google destination")
}

fn contact(i: usize) -> Contact {
    Contact {
        phone: i
            .is_multiple_of(2)
            .then(|| format!("+1 (650) {:03}-{:04}", 200 + i / 10_000 % 800, i % 10_000)),
        country: Some("US".into()),
        ..email_contact(i)
    }
}

#[tokio::test]
async fn customer_match_add_remove_converge_through_jobs() {
    let fake = fake(Some("9998887777")).await;
    let d = build_destination(
        "gads",
        &section(
            &fake,
            "customer_match",
            json!({"login_customer_id": "999-888-7777"}),
        ),
        &resolver(REFRESH),
    )
    .expect("built");
    let aud = d.find_or_create_audience("a", "").await.expect("list");
    let all = prepare_all(d.as_ref(), 0..250, contact);
    let out = d.add_members(&aud, &all).await.expect("add");
    assert_eq!((out.accepted, out.rejected.len()), (250, 0));
    let out = d.remove_members(&aud, &all[..100]).await.expect("remove");
    assert_eq!(out.accepted, 100);
    let expected: BTreeSet<String> = (100..250).map(email_hash).collect();
    assert_eq!(fake.members(&aud.remote_id), expected);
    assert_eq!(fake.jobs_completed(), 2);
    // Each job was polled until SUCCESS (PENDING, RUNNING, SUCCESS).
    assert!(fake.requests().count("POST", "/googleAds:search") >= 6);
    assert_eq!(d.limits().min_audience_size, 1_000);
    assert_eq!(d.channel(), crate::Channel::Ads);
}

#[tokio::test]
async fn customer_match_splits_operations_at_ten_thousand() {
    let fake = fake(None).await;
    let d = destination(&fake, "customer_match");
    let aud = d.find_or_create_audience("big", "").await.expect("list");
    let all = prepare_all(d.as_ref(), 0..10_500, contact);
    let out = d.add_members(&aud, &all).await.expect("add");
    assert_eq!(out.accepted, 10_500);
    assert_eq!(fake.requests().count("POST", ":addOperations"), 2);
    assert_eq!(fake.requests().count("POST", ":run"), 1);
    assert!(fake.max_identifiers_per_call() <= 20_000);
    assert_eq!(fake.members(&aud.remote_id).len(), 10_500);
}

#[tokio::test]
async fn resource_exhausted_retry_delay_is_honoured() {
    let fake = fake(None).await;
    let d = destination(&fake, "customer_match");
    let aud = d.find_or_create_audience("a", "").await.expect("list");
    fake.set_retry_delay_secs(1);
    fake.faults().throttle_next(1);
    let start = Instant::now();
    let out = d
        .add_members(&aud, &prepare_all(d.as_ref(), 0..10, contact))
        .await
        .expect("add after 429");
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        start.elapsed()
    );
    assert_eq!(out.accepted, 10);
    let stats = d.http_stats().expect("stats");
    assert_eq!(stats.throttled, 1);

    fake.set_retry_delay_secs(3600);
    fake.faults().throttle_next(1);
    let err = d
        .add_members(&aud, &prepare_all(d.as_ref(), 0..10, contact))
        .await
        .expect_err("too long");
    assert!(
        matches!(err, ConnectorError::Throttled { retry_after: Some(r), .. } if r == Duration::from_secs(3600)),
        "{err}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn expired_token_is_refreshed_once() {
    let fake = fake(None).await;
    let d = destination(&fake, "customer_match");
    let aud = d.find_or_create_audience("a", "").await.expect("list");
    assert_eq!(fake.oauth().issued(), 1);
    fake.oauth().expire_all();
    let out = d
        .add_members(&aud, &prepare_all(d.as_ref(), 0..5, contact))
        .await
        .expect("add after refresh");
    assert_eq!(out.accepted, 5);
    assert_eq!(fake.oauth().issued(), 2);
    assert_eq!(d.http_stats().expect("stats").token_refreshes, 1);
}

#[tokio::test]
async fn not_allowlisted_tells_the_user_to_switch_api() {
    let fake = fake(None).await;
    fake.set_allowlisted(false);
    let d = destination(&fake, "customer_match");
    let aud = d.find_or_create_audience("a", "").await.expect("list");
    let err = d
        .add_members(&aud, &prepare_all(d.as_ref(), 0..3, contact))
        .await
        .expect_err("not allowlisted");
    let msg = err.to_string();
    assert!(msg.contains("api = \"data_manager\""), "{msg}");
    assert!(
        msg.contains("CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE"),
        "{msg}"
    );
    assert!(NOT_ALLOWLISTED_HINT.contains("data_manager"));
    assert!(!err.is_transient());
}

#[tokio::test]
async fn secrets_never_appear_in_errors() {
    let fake = fake(None).await;
    let wrong = "1//refresh-WRONG-SECRET-555";
    let d = build_destination(
        "gads",
        &section(&fake, "customer_match", json!({})),
        &resolver(wrong),
    )
    .expect("built");
    let err = d
        .find_or_create_audience("a", "")
        .await
        .expect_err("bad refresh token");
    let text = format!("{err} {err:?}");
    assert!(matches!(err, ConnectorError::Auth { .. }), "{text}");
    for secret in [wrong, CLIENT_SECRET, DEV_TOKEN, REFRESH] {
        assert!(!text.contains(secret), "secret leaked: {text}");
    }
    // Missing developer token for Customer Match is a config error naming the key.
    let mut s = section(&fake, "customer_match", json!({}));
    s.as_object_mut().map(|o| o.remove("developer_token"));
    let e = build_destination("gads", &s, &resolver(REFRESH))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("developer_token"), "{e}");
    let e = build_destination(
        "gads",
        &section(&fake, "customer_match", json!({"typo": 1})),
        &resolver(REFRESH),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("typo"), "{e}");
}

#[tokio::test]
async fn customer_match_replace_all_takes_over_an_adopted_list() {
    let fake = fake(None).await;
    let ids = fake.seed_lists(["old"]);
    fake.seed_members(&ids[0], ["stale".to_string()]);
    let d = destination(&fake, "customer_match");
    assert!(d.supports_replace_all());
    let aud = d.find_or_create_audience("old", "").await.expect("adopt");
    assert!(aud.adopted);
    let members = prepare_all(d.as_ref(), 0..300, contact);
    let mut session = ReplaceSession::new(300);
    d.replace_all(&aud, &mut session, &members[..200], false)
        .await
        .expect("first");
    d.replace_all(&aud, &mut session, &members[200..], true)
        .await
        .expect("last");
    assert_eq!(session.next_batch_seq, 3);
    let expected: BTreeSet<String> = (0..300).map(email_hash).collect();
    assert_eq!(fake.members(&aud.remote_id), expected);
}

#[tokio::test]
async fn data_manager_find_or_create_add_remove() {
    let fake = fake(None).await;
    fake.set_allowlisted(false);
    let ids = fake.seed_lists((0..30).map(|i| format!("dm {i}")));
    let d = destination(&fake, "data_manager");
    assert!(!d.supports_replace_all());
    let adopted = d.find_or_create_audience("dm 29", "").await.expect("adopt");
    assert_eq!(
        adopted,
        AudienceRef {
            remote_id: ids[29].clone(),
            adopted: true
        }
    );
    assert_eq!(fake.requests().count("GET", "/userLists"), 2);
    let aud = d
        .find_or_create_audience("dm new", "desc")
        .await
        .expect("create");
    assert!(!aud.adopted);
    let all = prepare_all(d.as_ref(), 0..10_200, contact);
    let out = d.add_members(&aud, &all).await.expect("ingest");
    assert_eq!(out.accepted, 10_200);
    assert_eq!(fake.requests().count("POST", "/audienceMembers:ingest"), 2);
    assert_eq!(fake.max_members_per_request(), 10_000);
    let out = d.remove_members(&aud, &all[..200]).await.expect("remove");
    assert_eq!(out.accepted, 200);
    let expected: BTreeSet<String> = (200..10_200).map(email_hash).collect();
    assert_eq!(fake.members(&aud.remote_id), expected);
    // No developer-token header and no Customer Match job on this path.
    assert_eq!(
        fake.requests().count("POST", "offlineUserDataJobs:create"),
        0
    );
}

/// Data Manager requests are asynchronous: each `requestId` is polled with `requestStatus:retrieve`
/// until it settles; `PARTIAL_SUCCESS` holds none of its (unnamed) rows, `FAILED` is an error, and a
/// request still `PROCESSING` past the wait budget is a transient error the engine polls again.
#[tokio::test]
async fn data_manager_polls_request_status_until_settled() {
    use campaignd_fakes::google_ads::DmOutcome;
    let fake = fake(None).await;
    let d = destination(&fake, "data_manager");
    let aud = d.find_or_create_audience("polled", "").await.expect("list");
    fake.set_dm_processing_polls(2);
    let all = prepare_all(d.as_ref(), 0..30, contact);
    let out = d.add_members(&aud, &all[..10]).await.expect("ingest");
    assert_eq!((out.accepted, out.rejected.len()), (10, 0));
    assert_eq!(fake.requests().count("GET", "/requestStatus:retrieve"), 3);
    assert_eq!(fake.members(&aud.remote_id).len(), 10);

    fake.set_dm_processing_polls(0);
    fake.dm_outcomes_next([
        DmOutcome::PartialSuccess {
            failed: 2,
            reason: "PROCESSING_ERROR_REASON_INVALID_FORMAT".into(),
        },
        DmOutcome::Failed {
            reason: "PROCESSING_ERROR_REASON_NO_CONSENT".into(),
        },
    ]);
    let out = d.add_members(&aud, &all[10..20]).await.expect("partial");
    assert_eq!((out.accepted, out.rejected.len()), (0, 10), "{out:?}");
    assert!(
        out.rejected[0]
            .reason
            .contains("2 of 10 records failed (PROCESSING_ERROR_REASON_INVALID_FORMAT ×2)"),
        "{out:?}"
    );
    assert_eq!(fake.members(&aud.remote_id).len(), 18, "8 of 10 applied");
    let err = d.add_members(&aud, &all[20..30]).await.expect_err("failed");
    assert!(!err.is_transient(), "{err}");
    assert!(
        err.to_string()
            .contains("FAILED: PROCESSING_ERROR_REASON_NO_CONSENT ×10"),
        "{err}"
    );
    assert_eq!(fake.members(&aud.remote_id).len(), 18, "nothing applied");

    // Still processing past job_timeout_secs: transient, and the request can be awaited later.
    let mut s = section(&fake, "data_manager", json!({"job_timeout_secs": 0}));
    s.as_object_mut().map(|o| o.remove("developer_token"));
    let quick = build_destination("gads", &s, &resolver(REFRESH)).expect("built");
    assert!(quick.remote_job(crate::model::JobAction::Add));
    fake.hold_dm_requests(true);
    let job = quick
        .submit_job(&aud, crate::model::JobAction::Remove, &all[..5])
        .await
        .expect("submitted");
    let id = job.job_id.expect("a request id");
    let err = quick
        .await_job(&aud, crate::model::JobAction::Remove, &id, &all[..5])
        .await
        .expect_err("still processing");
    assert!(err.is_transient(), "{err}");
    fake.hold_dm_requests(false);
    let out = quick
        .await_job(&aud, crate::model::JobAction::Remove, &id, &all[..5])
        .await
        .expect("settled");
    assert_eq!(out.accepted, 5);
    assert_eq!(fake.members(&aud.remote_id).len(), 13);
    // An id Google never issued is refused, not taken as done.
    assert!(quick
        .await_job(
            &aud,
            crate::model::JobAction::Add,
            "no-such-request",
            &all[..1]
        )
        .await
        .is_err());
}

#[tokio::test]
async fn data_manager_configured_list_rejections_throttle_and_refresh() {
    let fake = fake(None).await;
    let ids = fake.seed_lists(["configured"]);
    let mut s = section(&fake, "data_manager", json!({"user_list_id": ids[0]}));
    s.as_object_mut().map(|o| o.remove("developer_token"));
    let d = build_destination("gads", &s, &resolver(REFRESH)).expect("built");
    let aud = d
        .find_or_create_audience("ignored", "")
        .await
        .expect("configured");
    assert_eq!(
        aud,
        AudienceRef {
            remote_id: ids[0].clone(),
            adopted: true
        }
    );

    fake.reject_emails([email_hash(4)]);
    let out = d
        .add_members(&aud, &prepare_all(d.as_ref(), 0..10, contact))
        .await
        .expect("ingest");
    assert_eq!(out.accepted, 9);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].customer_id, "c4");
    assert!(
        out.rejected[0].reason.contains("INVALID_EMAIL_ADDRESS"),
        "{:?}",
        out.rejected
    );
    assert_eq!(fake.members(&aud.remote_id).len(), 9);

    fake.oauth().expire_all();
    fake.faults().throttle_next(1);
    d.remove_members(&aud, &prepare_all(d.as_ref(), 0..2, contact))
        .await
        .expect("remove after refresh");
    assert_eq!(fake.members(&aud.remote_id).len(), 7);
    let stats = d.http_stats().expect("stats");
    assert_eq!((stats.throttled, stats.token_refreshes), (1, 1));
}

#[tokio::test]
async fn address_info_and_gmail_rule_pass_both_apis_and_malformed_addresses_never_leave() {
    for api in ["customer_match", "data_manager"] {
        let fake = fake(None).await;
        let d = destination(&fake, api);
        let aud = d.find_or_create_audience("addr", "").await.expect("list");
        let c = Contact {
            customer_id: "c1".into(),
            email: Some("Jane.Doe+shop@GoogleMail.com".into()),
            first_name: Some("Mrs. Jane".into()),
            last_name: Some("Doe, Jr.".into()),
            country: Some("United Kingdom".into()),
            postal_code: Some(" SW1A 1AA ".into()),
            ..Contact::default()
        };
        let m = d.prepare(&c).expect("usable");
        assert!(m.kinds.address, "{api}");
        let out = d.add_members(&aud, &[m]).await.expect("add");
        assert_eq!((out.accepted, out.rejected.len()), (1, 0), "{api}");
        assert_eq!(
            fake.members(&aud.remote_id),
            BTreeSet::from([sha256_hex("janedoe@googlemail.com")]),
            "{api}"
        );
        // An address with an unhashed name or a lower-case country is refused before it is sent.
        let bad = PreparedMember::new(
            "c2",
            json!({"hashedEmail": email_hash(2), "addressInfo": {
                "hashedFirstName": "jane", "hashedLastName": sha256_hex("doe"),
                "countryCode": "gb", "postalCode": "SW1A 1AA"}}),
        );
        let out = d.add_members(&aud, &[bad]).await.expect("add");
        assert_eq!((out.accepted, out.rejected.len()), (0, 1), "{api}");
    }
}

/// Posts a raw JSON body to the fake's Ads API with valid credentials (what an old or wrong client sent).
async fn raw_ads_post(fake: &FakeGoogleAds, path: &str, body: serde_json::Value) -> (u16, String) {
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(fake.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", REFRESH),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let resp = http
        .post(format!("{}/customers/1234567890/{path}", fake.base_url()))
        .bearer_auth(token["access_token"].as_str().unwrap_or_default())
        .header("developer-token", DEV_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("sent");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

/// `user_list.proto` (googleapis v25): `membership_life_span` "must be between 0 and 540 inclusive". The
/// old `10000` ("no expiry") is refused, an unknown field is refused as Google's JSON front end does, and
/// the connector's own create (540 days) is accepted.
#[tokio::test]
async fn user_list_create_follows_the_proto() {
    let fake = fake(None).await;
    let create = |span: serde_json::Value| {
        json!({"operations": [{"create": {"name": "old", "crmBasedUserList": {"uploadKeyType": "CONTACT_INFO"},
            "membershipLifeSpan": span}}]})
    };
    let (status, body) = raw_ads_post(&fake, "userLists:mutate", create(json!(10000))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("TOO_HIGH"), "{body}");
    let (status, body) = raw_ads_post(
        &fake,
        "userLists:mutate",
        json!({"operations": [{"create": {"name": "x", "membership_life_span_days": 30}}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("Unknown name \\\"membership_life_span_days\\\" at 'operations[0].create'"),
        "{body}"
    );
    let (status, body) = raw_ads_post(
        &fake,
        "offlineUserDataJobs:create",
        json!({"job": {"type": "CUSTOMER_MATCH", "customerMatchUserListMetadata": {"userList": "x"}}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Invalid value at 'job.type'"), "{body}");
    let d = destination(&fake, "customer_match");
    let aud = d
        .find_or_create_audience("new list", "")
        .await
        .expect("created");
    assert_eq!(fake.list_id("new list"), Some(aud.remote_id));
}

/// Data Manager is the default `api` (Google refuses new Customer Match adopters since 2026-04-01).
#[test]
fn data_manager_is_the_default_api() {
    let cfg: super::GoogleAdsConfig = serde_json::from_value(json!({
        "customer_id": "1", "client_id": {"env": "A"}, "client_secret": {"env": "B"},
        "refresh_token": {"env": "C"}}))
    .expect("config");
    assert_eq!(cfg.api, super::GoogleApi::DataManager);
    assert_eq!(
        cfg.effective_base_url(),
        super::DEFAULT_DATA_MANAGER_BASE_URL
    );
}

/// The platform-reported size of a list, through each API: the fake's members as both network sizes
/// and its fixed match rate.
#[tokio::test]
async fn audience_size_through_both_apis() {
    for api in ["customer_match", "data_manager"] {
        let fake = fake(None).await;
        let s = section(&fake, api, json!({"ads_base_url": fake.base_url()}));
        let d = build_destination("gads", &s, &resolver(REFRESH)).expect("built");
        let m = crate::build_metrics_source("gads", &s, &resolver(REFRESH))
            .expect("config")
            .expect("metrics source");
        let aud = d.find_or_create_audience("sized", "").await.expect("list");
        let before = m.audience_size(&aud.remote_id).await.expect("size");
        assert_eq!(before.and_then(|s| s.match_rate_percent), None, "{api}");
        d.add_members(&aud, &prepare_all(d.as_ref(), 0..40, contact))
            .await
            .expect("add");
        let size = m
            .audience_size(&aud.remote_id)
            .await
            .expect("size")
            .expect("reported");
        assert_eq!((size.lower, size.upper), (Some(40), Some(40)), "{api}");
        assert_eq!(
            size.match_rate_percent,
            Some(campaignd_fakes::google_ads::MATCH_RATE_PERCENT as f64),
            "{api}"
        );
    }
}
