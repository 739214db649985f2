//! TikTok connector tests against the stateful fake over loopback HTTP.

use super::PENDING_PREFIX;
use crate::model::{AudienceRef, Contact, PreparedMember, ReplaceSession};
use crate::test_support::{email_hash, prepare_all, secrets, with_test_http};
use crate::{build_destination, AudienceDestination, ConnectorError};
use campaignd_fakes::FakeTikTok;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

pub(crate) const TOKEN: &str = "tt-access-SECRET-0123456789abcdef";

pub(crate) async fn fake() -> FakeTikTok {
    FakeTikTok::start(TOKEN, "7000000001")
        .await
        .expect("fake tiktok")
}

pub(crate) fn destination(
    fake: &FakeTikTok,
    token: &str,
    batch: usize,
    attempts: u32,
) -> Arc<dyn AudienceDestination> {
    let secrets = secrets(&[("TT_TOKEN", token)]);
    let section = with_test_http(
        json!({
            "kind": "tiktok",
            "base_url": fake.base_url(),
            "advertiser_id": "7000000001",
            "access_token": {"env": "TT_TOKEN"},
            "batch_size": batch,
        }),
        5_000,
        attempts,
    );
    build_destination("tt", &section, &secrets).expect("tiktok destination")
}

fn contact(i: usize) -> Contact {
    Contact {
        customer_id: format!("c{i}"),
        email: Some(format!("Person{i}@Example.com ")),
        ..Default::default()
    }
}

/// Adoption from a later listing page, creation by the first batch (and later batches through the same
/// pending reference), capped files and removal are the contract suite's (`contract::tiktok`); what is
/// TikTok's own is an audience that exists only once a batch has gone.
#[tokio::test]
async fn removing_from_an_audience_never_created_is_a_no_op() {
    let fake = fake().await;
    let d = destination(&fake, TOKEN, 100, 3);
    let pending = AudienceRef {
        remote_id: format!("{PENDING_PREFIX}never"),
        adopted: false,
    };
    let out = d
        .remove_members(&pending, &prepare_all(d.as_ref(), 0..5, contact))
        .await
        .expect("noop");
    assert_eq!((out.accepted, out.rejected.len()), (5, 0));
    assert!(fake.audiences().is_empty(), "nothing created");
}

#[tokio::test]
async fn envelope_throttle_code_is_retried() {
    let fake = fake().await;
    let ids = fake.seed_audiences(["a"]);
    let d = destination(&fake, TOKEN, 50_000, 3);
    let aud = d.find_or_create_audience("a", "").await.expect("adopt");
    fake.faults().throttle_next(2);
    let out = d
        .add_members(&aud, &prepare_all(d.as_ref(), 0..5, contact))
        .await
        .expect("add after 40100");
    assert_eq!(out.accepted, 5);
    assert_eq!(fake.members(&ids[0]).len(), 5);
    assert_eq!(d.http_stats().expect("stats").throttled, 2);

    fake.faults().throttle_next(10);
    let err = d
        .add_members(&aud, &prepare_all(d.as_ref(), 0..5, contact))
        .await
        .expect_err("exhausted");
    assert!(
        matches!(err, ConnectorError::Throttled { attempts: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("40100"), "{err}");
    fake.faults().throttle_next(0);
    fake.faults().server_error_next(1);
    d.add_members(&aud, &prepare_all(d.as_ref(), 5..6, contact))
        .await
        .expect("5xx then ok");
}

#[tokio::test]
async fn bad_token_is_an_auth_error_without_the_token() {
    let fake = fake().await;
    let wrong = "tt-wrong-SECRET-999999";
    let d = destination(&fake, wrong, 50_000, 3);
    let err = d
        .find_or_create_audience("a", "")
        .await
        .expect_err("bad token");
    let text = format!("{err} {err:?}");
    assert!(matches!(err, ConnectorError::Auth { .. }), "{text}");
    assert!(text.contains("40105"), "{text}");
    assert!(
        !text.contains(wrong) && !text.contains(TOKEN),
        "token leaked: {text}"
    );
    assert_eq!(
        fake.requests().count("GET", "/dmp/custom_audience/list/"),
        1
    );
}

#[tokio::test]
async fn replace_takes_over_an_adopted_audience_and_bad_payloads_are_rejected() {
    let fake = fake().await;
    let ids = fake.seed_audiences(["old"]);
    fake.seed_members(&ids[0], ["f".repeat(64)]);
    let d = destination(&fake, TOKEN, 100, 3);
    assert!(d.supports_replace_all());
    let aud = d.find_or_create_audience("old", "").await.expect("adopt");
    assert!(aud.adopted);
    let members = prepare_all(d.as_ref(), 0..250, contact);
    let mut session = ReplaceSession::new(250);
    d.replace_all(&aud, &mut session, &members[..150], false)
        .await
        .expect("first");
    d.replace_all(&aud, &mut session, &members[150..], true)
        .await
        .expect("last");
    let expected: BTreeSet<String> = (0..250).map(email_hash).collect();
    assert_eq!(fake.members(&ids[0]), expected);

    let bad = PreparedMember::new("cx", json!({"email_sha256": "NOT-HEX"}));
    let out = d
        .add_members(&aud, &[bad, members[0].clone()])
        .await
        .expect("local rejection");
    assert_eq!((out.accepted, out.rejected.len()), (1, 1));
    assert_eq!(out.rejected[0].customer_id, "cx");
}

/// `dmp_custom_audience_update.yml` declares no `calculate_type`: the body the connector used to send is
/// refused by the fake (as undeclared), the connector's own update is accepted, and the audience size is
/// `cover_num` from `custom_audience/get`.
#[tokio::test]
async fn update_sends_only_declared_fields_and_size_is_cover_num() {
    let fake = fake().await;
    let d = destination(&fake, TOKEN, 50_000, 3);
    let aud = d
        .find_or_create_audience("sized", "")
        .await
        .expect("pending");
    d.add_members(&aud, &prepare_all(d.as_ref(), 0..30, contact))
        .await
        .expect("create");
    let id = fake.audience_id("sized").expect("created");
    let real = AudienceRef {
        remote_id: id.clone(),
        adopted: false,
    };
    d.add_members(&real, &prepare_all(d.as_ref(), 30..45, contact))
        .await
        .expect("update without calculate_type");
    let old = reqwest::Client::new()
        .post(format!("{}/dmp/custom_audience/update/", fake.base_url()))
        .header("Access-Token", TOKEN)
        .json(
            &json!({"advertiser_id": "7000000001", "custom_audience_id": id,
            "action": "APPEND", "file_paths": ["x"], "calculate_type": "EMAIL_SHA256"}),
        )
        .send()
        .await
        .expect("sent")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    assert_eq!(old["code"], 40002, "{old}");
    assert!(
        old["message"]
            .as_str()
            .unwrap_or_default()
            .contains("calculate_type"),
        "{old}"
    );
    let section = json!({"kind": "tiktok", "base_url": fake.base_url(), "advertiser_id": "7000000001",
        "access_token": {"env": "TT_TOKEN"}});
    let m = crate::build_metrics_source("tt", &section, &secrets(&[("TT_TOKEN", TOKEN)]))
        .expect("config")
        .expect("metrics source");
    let size = m.audience_size(&id).await.expect("size").expect("reported");
    assert_eq!((size.lower, size.upper), (Some(45), Some(45)));
    assert_eq!(
        m.audience_size(&aud.remote_id).await.expect("pending"),
        None
    );
}
