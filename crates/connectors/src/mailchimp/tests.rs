//! Mailchimp connector tests against the stateful fake over loopback HTTP.

use super::data_center;
use crate::test_support::{
    email, email_contact, extend_section, prepare_all, secrets, with_test_http,
};
use crate::{build_destination, AudienceDestination, ConnectorError};
use campaignd_fakes::FakeMailchimp;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "0123456789abcdef0123456789abcdef-us21";
pub(crate) const LIST: &str = "a1b2c3d4e5";

fn destination_with(
    fake: &FakeMailchimp,
    key: &str,
    extra: serde_json::Value,
) -> Arc<dyn AudienceDestination> {
    let secrets = secrets(&[("MC_KEY", key)]);
    let mut section = with_test_http(
        json!({
            "kind": "mailchimp",
            "base_url": fake.base_url(),
            "list_id": LIST,
            "api_key": {"env": "MC_KEY"},
        }),
        5_000,
        4,
    );
    extend_section(&mut section, &extra);
    build_destination("mc", &section, &secrets).expect("mailchimp destination")
}

pub(crate) fn destination(fake: &FakeMailchimp) -> Arc<dyn AudienceDestination> {
    destination_with(fake, KEY, json!({}))
}

pub(crate) async fn fake() -> FakeMailchimp {
    FakeMailchimp::start(KEY, LIST)
        .await
        .expect("fake mailchimp")
}

/// Channel and batch size, adoption from a later page (offset paging) and creating an absent segment
/// are the contract suite's (`contract::mailchimp`); what is Mailchimp's own is the segment kind.
#[tokio::test]
async fn mailchimp_never_adopts_a_saved_segment() {
    let fake = fake().await;
    fake.set_page_cap(10);
    fake.seed_segments((0..35).map(|i| format!("existing {i}")), "static");
    fake.seed_segments(["saved one"], "saved");
    let d = destination(&fake);
    // A saved (dynamic) segment cannot take members: it is not adopted, a static one is created.
    let created = d
        .find_or_create_audience("saved one", "")
        .await
        .expect("create");
    assert!(!created.adopted);
    let again = d
        .find_or_create_audience("saved one", "")
        .await
        .expect("adopt own");
    assert_eq!(again.remote_id, created.remote_id);
    assert!(again.adopted);
    let statics = fake
        .segments()
        .iter()
        .filter(|s| s.kind == "static")
        .count();
    assert_eq!(statics, 36);
}

#[tokio::test]
async fn mailchimp_add_and_remove_converge_in_batches_of_500() {
    let fake = fake().await;
    // Someone who unsubscribed in Mailchimp stays unsubscribed: the sync never re-subscribes.
    fake.seed_list_members([email(5)], "unsubscribed");
    let d = destination(&fake);
    let aud = d
        .find_or_create_audience("vip", "")
        .await
        .expect("audience");
    let all = prepare_all(d.as_ref(), 0..1_200, email_contact);
    let out = d.add_members(&aud, &all).await.expect("add");
    assert_eq!(out.accepted, 1_200);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(fake.max_batch_seen(), 500);
    assert_eq!(fake.requests().count("POST", &format!("/lists/{LIST}")), 3);
    assert_eq!(
        fake.list_members().get(&email(5)).map(String::as_str),
        Some("unsubscribed")
    );
    assert_eq!(
        fake.list_members().get(&email(6)).map(String::as_str),
        Some("subscribed")
    );

    // Re-adding is harmless.
    let out = d.add_members(&aud, &all[..10]).await.expect("re-add");
    assert_eq!(out.accepted, 10);

    let out = d.remove_members(&aud, &all[..700]).await.expect("remove");
    assert_eq!(out.accepted, 700);
    let expected: BTreeSet<String> = (700..1_200).map(email).collect();
    assert_eq!(fake.segment_members(&aud.remote_id), expected);
}

#[tokio::test]
async fn mailchimp_bare_throttle_is_backed_off_and_retried() {
    let fake = fake().await;
    let d = destination(&fake);
    let aud = d.find_or_create_audience("a", "").await.expect("audience");
    fake.faults().throttle_next(2);
    let out = d
        .add_members(&aud, &prepare_all(d.as_ref(), 0..5, email_contact))
        .await
        .expect("add after 429s");
    assert_eq!(out.accepted, 5);
    let stats = d.http_stats().expect("stats");
    assert_eq!((stats.throttled, stats.retries), (2, 2));

    fake.throttle_with_403(true);
    fake.faults().throttle_next(1);
    d.remove_members(&aud, &prepare_all(d.as_ref(), 0..5, email_contact))
        .await
        .expect("remove after a 403 throttle");
    assert_eq!(d.http_stats().expect("stats").throttled, 3);
    assert!(fake.segment_members(&aud.remote_id).is_empty());

    fake.throttle_with_403(false);
    fake.faults().throttle_next(10);
    let err = d
        .add_members(&aud, &prepare_all(d.as_ref(), 0..5, email_contact))
        .await
        .expect_err("exhausted");
    assert!(
        matches!(
            err,
            ConnectorError::Throttled {
                attempts: 4,
                retry_after: None,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_transient());
    fake.faults().throttle_next(0);

    // A 429 with Retry-After (not Mailchimp's habit, but possible behind proxies) is honoured too.
    fake.faults().too_many_requests_next(1, 1);
    let start = std::time::Instant::now();
    d.add_members(&aud, &prepare_all(d.as_ref(), 0..2, email_contact))
        .await
        .expect("after Retry-After");
    assert!(start.elapsed() >= Duration::from_millis(950));

    fake.faults().server_error_next(1);
    d.add_members(&aud, &prepare_all(d.as_ref(), 2..4, email_contact))
        .await
        .expect("500 then ok");
    assert_eq!(fake.segment_members(&aud.remote_id).len(), 4);
}

#[tokio::test]
async fn mailchimp_caps_simultaneous_connections() {
    let fake = fake().await;
    let d = destination(&fake);
    let aud = d.find_or_create_audience("a", "").await.expect("audience");
    fake.set_latency(Duration::from_millis(40));
    let mut tasks = Vec::new();
    for i in 0..30 {
        let d = d.clone();
        let aud = aud.clone();
        let m = d.prepare(&email_contact(i)).expect("usable");
        tasks.push(tokio::spawn(async move { d.add_members(&aud, &[m]).await }));
    }
    for t in tasks {
        t.await.expect("join").expect("add");
    }
    assert_eq!(
        fake.connection_limit_hits(),
        0,
        "opened more than 10 connections"
    );
    assert!(
        fake.max_concurrent() <= 10 && fake.max_concurrent() > 1,
        "max concurrent {}",
        fake.max_concurrent()
    );
    assert_eq!(fake.segment_members(&aud.remote_id).len(), 30);
}

#[tokio::test]
async fn mailchimp_wrong_key_is_a_clear_error_without_the_key() {
    let fake = fake().await;
    let wrong = "ffffffffffffffffffffffffSECRET99-us21";
    let d = destination_with(&fake, wrong, json!({}));
    let err = d
        .find_or_create_audience("a", "")
        .await
        .expect_err("bad key");
    let msg = err.to_string();
    assert!(matches!(err, ConnectorError::Auth { .. }), "{msg}");
    assert!(msg.contains("API Key Invalid"), "{msg}");
    assert!(
        !msg.contains(wrong) && !format!("{err:?}").contains(wrong),
        "key leaked: {msg}"
    );
    assert_eq!(
        fake.requests().count("GET", "/segments"),
        1,
        "no retry on a bad key"
    );
}

#[test]
fn mailchimp_config_derives_the_data_centre_and_names_bad_keys() {
    assert_eq!(data_center("abc123-us21").as_deref(), Some("us21"));
    assert_eq!(data_center("abc123"), None);
    assert_eq!(
        super::default_base_url("us21"),
        "https://us21.api.mailchimp.com/3.0"
    );
    let secrets = secrets(&[("GOOD", "abc123-us21"), ("NODC", "abcdef0123456789secret")]);
    let section =
        |key: &str| json!({"kind": "mailchimp", "list_id": LIST, "api_key": {"env": key}});
    assert!(build_destination("mc", &section("GOOD"), &secrets).is_ok());
    let err = build_destination("mc", &section("NODC"), &secrets)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("api_key") && err.contains("base_url"), "{err}");
    assert!(!err.contains("abcdef0123456789secret"), "{err}");
    let mut bad = section("GOOD");
    bad["max_connections"] = json!(11);
    let err = build_destination("mc", &bad, &secrets)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("max_connections"), "{err}");
    let mut typo = section("GOOD");
    typo["list"] = json!("x");
    let err = build_destination("mc", &typo, &secrets)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("list"), "{err}");
}

/// The fake refuses what Mailchimp's SDK request types refuse (`mailchimp_spec.rs` in the fakes cites
/// them): a batch member without the required `status` or with one outside its enum, `members` missing,
/// `update_existing` not a boolean, a segment without its `name`, members to add that are not strings,
/// a template id that is not an integer. Each is nothing the connector sends.
#[tokio::test]
async fn mailchimp_fake_refuses_what_the_spec_refuses() {
    let fake = fake().await;
    let http = reqwest::Client::new();
    let base = fake.base_url().to_string();
    let send = |method: reqwest::Method, path: String, body: serde_json::Value| {
        http.request(method, format!("{base}/{path}"))
            .basic_auth("campaignd", Some(KEY))
            .json(&body)
            .send()
    };
    let post = reqwest::Method::POST;
    let cases = [
        (
            format!("lists/{LIST}"),
            json!({"members": [{"email_address": "a@example.com", "status": "subscribed"}], "update_existing": false}),
            200,
            "new_members",
        ),
        (
            format!("lists/{LIST}"),
            json!({"members": [{"email_address": "b@example.com"}]}),
            400,
            "Missing required field \\\"status\\\"",
        ),
        (
            format!("lists/{LIST}"),
            json!({"members": [{"email_address": "b@example.com", "status": "active"}]}),
            400,
            "members[0].status",
        ),
        (
            format!("lists/{LIST}"),
            json!({"members": [{"email": "b@example.com", "status": "subscribed"}]}),
            400,
            "Unknown name \\\"email\\\"",
        ),
        (
            format!("lists/{LIST}"),
            json!({"update_existing": false}),
            400,
            "members",
        ),
        (
            format!("lists/{LIST}"),
            json!({"members": [], "update_existing": "no"}),
            400,
            "update_existing",
        ),
        (
            format!("lists/{LIST}/segments"),
            json!({"static_segment": []}),
            400,
            "Missing required field \\\"name\\\"",
        ),
    ];
    for (path, body, status, text) in cases {
        let reply = send(post.clone(), path.clone(), body.clone())
            .await
            .expect("send");
        let got = reply.status().as_u16();
        let reply = reply.text().await.unwrap_or_default();
        assert_eq!(got, status, "{path} {body}: {reply}");
        assert!(reply.contains(text), "{path} {body}: {reply}");
    }
    let segment = send(
        post.clone(),
        format!("lists/{LIST}/segments"),
        json!({"name": "s", "static_segment": []}),
    )
    .await
    .expect("send")
    .json::<serde_json::Value>()
    .await
    .expect("segment");
    let id = segment["id"].as_u64().expect("segment id");
    let reply = send(
        post.clone(),
        format!("lists/{LIST}/segments/{id}"),
        json!({"members_to_add": [{"email_address": "a@example.com"}]}),
    )
    .await
    .expect("send");
    assert_eq!(reply.status().as_u16(), 400);
    let reply = send(
        reqwest::Method::PUT,
        "campaigns/c1/content".into(),
        json!({"template": {"id": "tmpl"}}),
    )
    .await
    .expect("send");
    assert_eq!(reply.status().as_u16(), 400);
    assert!(reply
        .text()
        .await
        .unwrap_or_default()
        .contains("template.id"));
}
