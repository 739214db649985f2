//! SendGrid connector tests against the stateful fake over loopback HTTP.

use crate::model::Contact;
use crate::test_support::{
    email, email_contact, extend_section, prepare_all, secrets, with_test_http,
};
use crate::{build_destination, AudienceDestination, ConnectorError};
use campaignd_fakes::FakeSendGrid;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "SG.test-key-0123456789.abcdefghij";

fn destination_with(
    fake: &FakeSendGrid,
    key: &str,
    extra: serde_json::Value,
) -> Arc<dyn AudienceDestination> {
    let secrets = secrets(&[("SG_KEY", key)]);
    let mut section = with_test_http(
        json!({
            "kind": "sendgrid",
            "base_url": fake.base_url(),
            "api_key": {"env": "SG_KEY"},
            "poll_interval_ms": 10,
        }),
        10_000,
        4,
    );
    extend_section(&mut section, &extra);
    build_destination("sg", &section, &secrets).expect("sendgrid destination")
}

pub(crate) fn destination(fake: &FakeSendGrid) -> Arc<dyn AudienceDestination> {
    destination_with(fake, KEY, json!({}))
}

pub(crate) async fn fake() -> FakeSendGrid {
    FakeSendGrid::start(KEY).await.expect("fake sendgrid")
}

fn contact(i: usize) -> Contact {
    Contact {
        first_name: Some(format!("Ann{i}")),
        ..email_contact(i)
    }
}

#[tokio::test]
async fn sendgrid_add_and_remove_converge_through_import_jobs() {
    let fake = fake().await;
    let d = destination(&fake);
    let aud = d
        .find_or_create_audience("vip", "")
        .await
        .expect("audience");
    let all = prepare_all(d.as_ref(), 0..10_500, contact);
    let out = d.add_members(&aud, &all).await.expect("add");
    assert_eq!((out.accepted, out.rejected.len()), (10_500, 0));
    assert_eq!(
        fake.requests().count("PUT", "/marketing/contacts"),
        2,
        "two upsert jobs"
    );
    assert_eq!(fake.max_contacts_seen(), 10_000);
    // Each job was polled until complete (pending first).
    assert!(fake.requests().count("GET", "") >= 4);
    assert_eq!(
        fake.contact(&email(7))
            .and_then(|c| c.first_name)
            .as_deref(),
        Some("Ann7")
    );

    let out = d.remove_members(&aud, &all[..4_000]).await.expect("remove");
    assert_eq!(out.accepted, 4_000);
    assert_eq!(
        fake.requests().count("DELETE", "/contacts"),
        40,
        "100 contact ids per removal"
    );
    let expected: BTreeSet<String> = (4_000..10_500).map(email).collect();
    assert_eq!(fake.list_members(&aud.remote_id), expected);
}

#[tokio::test]
async fn sendgrid_throttle_waits_for_the_reset_and_paces_from_headers() {
    let fake = fake().await;
    let d = destination(&fake);
    let aud = d.find_or_create_audience("a", "").await.expect("audience");
    fake.faults().throttle_next(1);
    let out = d
        .add_members(&aud, &prepare_all(d.as_ref(), 0..5, contact))
        .await
        .expect("add after 429");
    assert_eq!(out.accepted, 5);
    let stats = d.http_stats().expect("stats");
    assert_eq!((stats.throttled, stats.retries), (1, 1));

    fake.faults().server_error_next(1);
    d.add_members(&aud, &prepare_all(d.as_ref(), 5..7, contact))
        .await
        .expect("500 then ok");
    assert_eq!(fake.list_members(&aud.remote_id).len(), 7);
}

#[tokio::test]
async fn sendgrid_paces_from_rate_limit_headers() {
    let fake = fake().await;
    // With 3 requests a second allowed, the client waits for X-RateLimit-Reset once Remaining hits 0,
    // so 12 list pages and a create cost no 429 at all.
    fake.set_rate_limit(3);
    fake.set_page_cap(1);
    fake.seed_lists((0..12).map(|i| format!("l{i}")));
    let d = destination(&fake);
    let start = Instant::now();
    let created = d
        .find_or_create_audience("not there", "")
        .await
        .expect("paced paging");
    assert!(!created.adopted);
    assert_eq!(
        fake.rate_limited(),
        0,
        "the client ran into the limit instead of pacing"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(d.http_stats().expect("stats").throttled, 0);
}

/// Some rows of a job refused is the contract suite's (`contract::sendgrid`); a job in which every row
/// failed is SendGrid's own: the whole batch comes back rejected, not as an error.
#[tokio::test]
async fn sendgrid_job_where_every_row_failed_is_all_rejections() {
    let fake = fake().await;
    let d = destination(&fake);
    let aud = d.find_or_create_audience("a", "").await.expect("audience");
    fake.reject_emails([email(3)]);
    let out = d
        .add_members(&aud, &prepare_all(d.as_ref(), 3..4, contact))
        .await
        .expect("failed job");
    assert_eq!((out.accepted, out.rejected.len()), (0, 1));
    assert!(
        out.rejected[0].reason.contains("blocked domain"),
        "{:?}",
        out.rejected
    );
    assert!(fake.list_members(&aud.remote_id).is_empty());
}

#[tokio::test]
async fn sendgrid_slow_job_is_handed_back_as_transient() {
    let fake = fake().await;
    let d = destination_with(&fake, KEY, json!({"poll_timeout_secs": 0}));
    let aud = d.find_or_create_audience("a", "").await.expect("audience");
    let err = d
        .add_members(&aud, &prepare_all(d.as_ref(), 0..3, contact))
        .await
        .expect_err("job still pending");
    assert!(matches!(err, ConnectorError::Transport { .. }), "{err}");
    assert!(
        err.is_transient() && err.to_string().contains("still"),
        "{err}"
    );
}

#[tokio::test]
async fn sendgrid_wrong_key_is_a_clear_error_without_the_key() {
    let fake = fake().await;
    let wrong = "SG.wrong-SECRET-key.zzzzzzzz";
    let d = destination_with(&fake, wrong, json!({}));
    let err = d
        .find_or_create_audience("a", "")
        .await
        .expect_err("bad key");
    let msg = err.to_string();
    assert!(matches!(err, ConnectorError::Auth { .. }), "{msg}");
    assert!(msg.contains("authorization required"), "{msg}");
    assert!(
        !msg.contains(wrong) && !format!("{err:?}").contains(wrong),
        "key leaked: {msg}"
    );
    assert_eq!(
        fake.requests().count("GET", "/marketing/lists"),
        1,
        "no retry on a bad key"
    );
}

/// The fake refuses what twilio/sendgrid-oai (`tsg_mc_contacts_v3.json`, `tsg_mc_lists_v3.json` at
/// `dbe0e0d`) refuses: a name over `maxLength` 50 (which the old mapping sent as it was), an undeclared
/// contact field, a list id that is no UUID, a body without the required `contacts`, a `page_size` over
/// 1,000, more than 6 MB; and the connector now leaves such a name out instead of sending it.
#[tokio::test]
async fn sendgrid_fake_refuses_what_the_spec_refuses() {
    let fake = fake().await;
    let list = fake.seed_lists(["l"]).remove(0);
    let http = reqwest::Client::new();
    let base = fake.base_url().to_string();
    let put = |body: serde_json::Value| {
        http.put(format!("{base}/marketing/contacts"))
            .bearer_auth(KEY)
            .json(&body)
            .send()
    };
    let long_name = "N".repeat(51);
    let cases = [
        (
            json!({"list_ids": [list], "contacts": [{"email": "a@example.com", "first_name": "Ann"}]}),
            202,
            "job_id",
        ),
        (
            json!({"list_ids": [list], "contacts": [{"email": "a@example.com", "first_name": long_name}]}),
            400,
            "contacts[0].first_name",
        ),
        (
            json!({"list_ids": [list], "contacts": [{"email": "a@example.com", "phone": "+1555"}]}),
            400,
            "Unknown name \\\"phone\\\"",
        ),
        (
            json!({"list_ids": ["list-1"], "contacts": [{"email": "a@example.com"}]}),
            400,
            "not a valid UUID",
        ),
        (json!({"list_ids": [list]}), 400, "Missing required field"),
    ];
    for (body, status, text) in cases {
        let reply = put(body.clone()).await.expect("send");
        let got = reply.status().as_u16();
        let reply = reply.text().await.unwrap_or_default();
        assert_eq!(got, status, "{body}: {reply}");
        assert!(reply.contains(text), "{body}: {reply}");
    }
    let huge: Vec<serde_json::Value> = (0..20_000)
        .map(|i| json!({"email": format!("{}{i}@example.com", "x".repeat(290))}))
        .collect();
    let reply = put(json!({"list_ids": [list], "contacts": huge}))
        .await
        .expect("send");
    assert_eq!(reply.status().as_u16(), 413, "over 6 MB");
    let text = reply.text().await.unwrap_or_default();
    assert!(text.contains("at most 6000000 are accepted"), "{text}");
    let reply = http
        .get(format!("{base}/marketing/lists?page_size=5000"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send");
    assert_eq!(reply.status().as_u16(), 400, "page_size over 1000");

    let d = destination(&fake);
    let audience = d.find_or_create_audience("spec", "").await.expect("list");
    let c = Contact {
        first_name: Some(long_name.clone()),
        last_name: Some("Lee".into()),
        ..email_contact(1)
    };
    let out = d
        .add_members(&audience, &[d.prepare(&c).expect("usable")])
        .await
        .expect("add");
    assert_eq!(out.accepted, 1, "{out:?}");
    let stored = fake.contact(&email(1)).expect("contact");
    assert_eq!(stored.first_name, None);
    assert_eq!(stored.last_name.as_deref(), Some("Lee"));
}
