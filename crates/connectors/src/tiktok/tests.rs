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

#[tokio::test]
async fn find_pages_and_adopts_and_first_batch_creates() {
    let fake = fake().await;
    let ids = fake.seed_audiences((0..250).map(|i| format!("existing {i}")));
    let d = destination(&fake, TOKEN, 50_000, 3);
    let adopted = d
        .find_or_create_audience("existing 240", "")
        .await
        .expect("adopt");
    assert_eq!(
        adopted,
        AudienceRef {
            remote_id: ids[240].clone(),
            adopted: true
        }
    );
    assert_eq!(
        fake.requests().count("GET", "/dmp/custom_audience/list/"),
        3
    );

    let pending = d
        .find_or_create_audience("campaignd: vip", "")
        .await
        .expect("pending");
    assert_eq!(
        pending,
        AudienceRef {
            remote_id: format!("{PENDING_PREFIX}campaignd: vip"),
            adopted: false
        }
    );
    assert!(fake.audience_id("campaignd: vip").is_none());
    let out = d
        .add_members(&pending, &prepare_all(d.as_ref(), 0..20, contact))
        .await
        .expect("add creates");
    assert_eq!(out.accepted, 20);
    let id = fake.audience_id("campaignd: vip").expect("created");
    assert_eq!(fake.members(&id).len(), 20);
    // The pending reference keeps working for later batches (no second audience).
    d.add_members(&pending, &prepare_all(d.as_ref(), 20..30, contact))
        .await
        .expect("append");
    assert_eq!(fake.members(&id).len(), 30);
    assert_eq!(fake.audiences().len(), 251);
    let again = d
        .find_or_create_audience("campaignd: vip", "")
        .await
        .expect("adopt own");
    assert_eq!(
        again,
        AudienceRef {
            remote_id: id,
            adopted: true
        }
    );
}

#[tokio::test]
async fn add_remove_converge_in_several_files() {
    let fake = fake().await;
    let ids = fake.seed_audiences(["a"]);
    let d = destination(&fake, TOKEN, 100, 3);
    assert_eq!(d.limits().max_batch, 100);
    assert_eq!(d.limits().min_audience_size, 1_000);
    let aud = d.find_or_create_audience("a", "").await.expect("adopt");
    let all = prepare_all(d.as_ref(), 0..250, contact);
    let out = d.add_members(&aud, &all).await.expect("add");
    assert_eq!(out.accepted, 250);
    assert_eq!(fake.uploads(), 3);
    assert_eq!(fake.max_lines_per_file(), 100);
    let out = d.remove_members(&aud, &all[..120]).await.expect("remove");
    assert_eq!(out.accepted, 120);
    let expected: BTreeSet<String> = (120..250).map(email_hash).collect();
    assert_eq!(fake.members(&ids[0]), expected);
    // Removing from an audience that was never created is a no-op.
    let pending = AudienceRef {
        remote_id: format!("{PENDING_PREFIX}never"),
        adopted: false,
    };
    assert_eq!(
        d.remove_members(&pending, &all[..5])
            .await
            .expect("noop")
            .accepted,
        5
    );
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
