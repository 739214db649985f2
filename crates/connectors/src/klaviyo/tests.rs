//! Klaviyo connector tests against the stateful fake over loopback HTTP.

use crate::model::Contact;
use crate::test_support::{email, extend_section, prepare_all, secrets, with_test_http};
use crate::{build_destination, AudienceDestination, ConnectorError};
use campaignd_fakes::FakeKlaviyo;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "pk_test_0123456789abcdef0123456789";

fn destination_with(
    fake: &FakeKlaviyo,
    key: &str,
    extra: serde_json::Value,
) -> Arc<dyn AudienceDestination> {
    let secrets = secrets(&[("KL_KEY", key)]);
    let mut section = with_test_http(
        json!({
            "kind": "klaviyo",
            "base_url": fake.base_url(),
            "api_key": {"env": "KL_KEY"},
            "poll_interval_ms": 10,
        }),
        10_000,
        4,
    );
    extend_section(&mut section, &extra);
    build_destination("kl", &section, &secrets).expect("klaviyo destination")
}

pub(crate) fn destination(fake: &FakeKlaviyo) -> Arc<dyn AudienceDestination> {
    destination_with(fake, KEY, json!({}))
}

pub(crate) async fn fake() -> FakeKlaviyo {
    FakeKlaviyo::start(KEY).await.expect("fake klaviyo")
}

fn phone(i: usize) -> String {
    format!("+1650{:03}{:04}", 200 + i / 10_000 % 800, i % 10_000)
}

/// Every 50th contact has only a phone.
fn contact(i: usize) -> Contact {
    Contact {
        customer_id: format!("c{i}"),
        email: (!i.is_multiple_of(50)).then(|| format!(" Person{i}@Example.com")),
        phone: Some(format!(
            "+1 (650) {:03}-{:04}",
            200 + i / 10_000 % 800,
            i % 10_000
        )),
        first_name: Some("Ann".into()),
        country: Some("US".into()),
        ..Contact::default()
    }
}

fn key(i: usize) -> String {
    if i.is_multiple_of(50) {
        phone(i)
    } else {
        email(i)
    }
}

#[tokio::test]
async fn klaviyo_add_and_remove_converge_in_capped_batches() {
    let fake = fake().await;
    let d = destination(&fake);
    let aud = d
        .find_or_create_audience("vip", "")
        .await
        .expect("audience");
    let all = prepare_all(d.as_ref(), 0..10_500, contact);
    let out = d.add_members(&aud, &all).await.expect("add");
    assert_eq!(
        (out.accepted, out.rejected.len()),
        (10_500, 0),
        "{:?}",
        out.rejected.first()
    );
    assert_eq!(
        fake.requests().count("POST", "/profile-bulk-import-jobs"),
        2,
        "two import jobs"
    );
    assert_eq!(fake.max_import_seen(), 10_000);
    let all_keys: BTreeSet<String> = (0..10_500).map(key).collect();
    assert_eq!(fake.list_members(&aud.remote_id), all_keys);
    let p = fake.profile("person7@example.com").expect("profile");
    assert_eq!(
        (p.phone_number.as_deref(), p.first_name.as_deref()),
        (Some(phone(7).as_str()), Some("Ann"))
    );

    let out = d.remove_members(&aud, &all[..2_500]).await.expect("remove");
    assert_eq!(out.accepted, 2_500);
    assert_eq!(fake.max_relationship_seen(), 1_000);
    assert_eq!(
        fake.requests().count("DELETE", "/relationships/profiles"),
        3
    );
    let expected: BTreeSet<String> = (2_500..10_500).map(key).collect();
    assert_eq!(fake.list_members(&aud.remote_id), expected);
}

#[tokio::test]
async fn klaviyo_429_retry_after_is_honoured() {
    let fake = fake().await;
    let d = destination(&fake);
    let aud = d.find_or_create_audience("a", "").await.expect("audience");
    fake.faults().throttle_next(1);
    let start = Instant::now();
    let out = d
        .add_members(&aud, &prepare_all(d.as_ref(), 1..6, contact))
        .await
        .expect("add after 429");
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        start.elapsed()
    );
    assert_eq!(out.accepted, 5);
    let stats = d.http_stats().expect("stats");
    assert_eq!((stats.throttled, stats.retries), (1, 1));

    fake.faults().too_many_requests_next(1, 3600);
    let err = d
        .add_members(&aud, &prepare_all(d.as_ref(), 1..3, contact))
        .await
        .expect_err("too long");
    assert!(
        matches!(err, ConnectorError::Throttled { .. }) && err.is_transient(),
        "{err}"
    );

    fake.faults().server_error_next(1);
    d.remove_members(&aud, &prepare_all(d.as_ref(), 1..3, contact))
        .await
        .expect("500 then ok");
    assert_eq!(fake.list_members(&aud.remote_id).len(), 3);
}

/// Import errors per row and corrupt payloads are the contract suite's (`contract::klaviyo`); what is
/// Klaviyo's own is the asynchronous import job.
#[tokio::test]
async fn klaviyo_slow_import_is_handed_back_as_transient() {
    let fake = fake().await;
    let d = destination(&fake);
    let aud = d.find_or_create_audience("a", "").await.expect("audience");
    // A job that outlives the poll timeout hands the batch back as transient.
    let slow = destination_with(&fake, KEY, json!({"poll_timeout_secs": 0}));
    let err = slow
        .add_members(&aud, &prepare_all(d.as_ref(), 20..22, contact))
        .await
        .expect_err("still processing");
    assert!(
        matches!(err, ConnectorError::Transport { .. }) && err.is_transient(),
        "{err}"
    );
}

#[tokio::test]
async fn klaviyo_wrong_key_is_a_clear_error_without_the_key() {
    let fake = fake().await;
    let wrong = "pk_wrong_SECRET_key_987654321";
    let d = destination_with(&fake, wrong, json!({}));
    let err = d
        .find_or_create_audience("a", "")
        .await
        .expect_err("bad key");
    let msg = err.to_string();
    assert!(matches!(err, ConnectorError::Auth { .. }), "{msg}");
    assert!(
        msg.contains("Incorrect authentication credentials"),
        "{msg}"
    );
    assert!(
        !msg.contains(wrong) && !format!("{err:?}").contains(wrong),
        "key leaked: {msg}"
    );
    assert_eq!(
        fake.requests().count("GET", "/lists"),
        1,
        "no retry on a bad key"
    );

    let secrets = secrets(&[("KL_KEY", KEY)]);
    let e = build_destination(
        "kl",
        &json!({"kind": "klaviyo", "api_key": {"env": "KL_KEY"}, "revision": "latest"}),
        &secrets,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("revision"), "{e}");
}

/// The fake refuses what klaviyo/openapi `stable.json` (revision 2026-07-15, commit `f0a30ba`) refuses:
/// the old default revision 2026-10-15 (no published spec), a body not sent as JSON:API, a profile
/// attribute the spec does not declare, a missing required field. Each is nothing the connector sends.
#[tokio::test]
async fn klaviyo_fake_refuses_what_the_spec_refuses() {
    let fake = fake().await;
    let old = destination_with(&fake, KEY, json!({"revision": "2026-10-15"}));
    let err = old
        .find_or_create_audience("a", "")
        .await
        .expect_err("unpublished revision");
    assert!(err.to_string().contains("not a valid revision"), "{err}");

    let list = fake.seed_lists(["l"]).remove(0);
    let http = reqwest::Client::new();
    let post = |path: &str, media: &str, body: serde_json::Value| {
        http.post(format!("{}/{path}", fake.base_url()))
            .header("Authorization", format!("Klaviyo-API-Key {KEY}"))
            .header("revision", crate::klaviyo::DEFAULT_REVISION)
            .header("content-type", media.to_string())
            .body(body.to_string())
            .send()
    };
    let job = |attributes: serde_json::Value| {
        json!({"data": {"type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": [{"type": "profile", "attributes": attributes}]}},
            "relationships": {"lists": {"data": [{"type": "list", "id": list}]}}}})
    };
    let jsonapi = "application/vnd.api+json";
    let cases = [
        (
            "profile-bulk-import-jobs",
            jsonapi,
            job(json!({"email": "a@example.com"})),
            202,
            "",
        ),
        (
            "profile-bulk-import-jobs",
            "application/json",
            job(json!({"email": "a@example.com"})),
            415,
            "Unsupported media type",
        ),
        (
            "profile-bulk-import-jobs",
            jsonapi,
            job(json!({"email": "a@example.com", "consent": "yes"})),
            400,
            "Unknown name \\\"consent\\\"",
        ),
        (
            "profile-bulk-import-jobs",
            jsonapi,
            job(json!({"email": 7})),
            400,
            "data.attributes.profiles.data[0].attributes.email",
        ),
        (
            "lists",
            jsonapi,
            json!({"data": {"type": "list", "attributes": {}}}),
            400,
            "Missing required field \\\"name\\\"",
        ),
        (
            "lists",
            jsonapi,
            json!({"data": {"type": "lists", "attributes": {"name": "x"}}}),
            400,
            "data.type",
        ),
    ];
    for (path, media, body, status, detail) in cases {
        let reply = post(path, media, body.clone()).await.expect("send");
        let got = reply.status().as_u16();
        let text = reply.text().await.unwrap_or_default();
        assert_eq!(got, status, "{path} {media} {body}: {text}");
        assert!(text.contains(detail), "{path} {body}: {text}");
    }
}
