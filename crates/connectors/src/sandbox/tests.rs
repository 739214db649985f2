//! Sandbox destination tests: durable state on disk, no network.

use super::{audience_members, audiences};
use crate::model::{AudienceRef, Contact, PreparedMember};
use crate::test_support::{email_contact, email_hash, extend_section, prepare_all};
use crate::{build_destination, AudienceDestination, Channel, SecretResolver};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

fn destination(dir: &Path, extra: serde_json::Value) -> Arc<dyn AudienceDestination> {
    let mut section = json!({"kind": "sandbox", "path": dir});
    extend_section(&mut section, &extra);
    build_destination(
        "demo",
        &section,
        &SecretResolver::from_map(Default::default()),
    )
    .expect("sandbox destination")
}

fn contact(i: usize) -> Contact {
    Contact {
        country: Some("US".into()),
        ..email_contact(i)
    }
}

fn hashes(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(email_hash).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_find_or_create_add_remove_and_persist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = destination(dir.path(), json!({"batch_size": 100}));
    assert_eq!(d.kind(), "sandbox");
    assert_eq!(d.channel(), Channel::Ads);
    assert_eq!(d.limits().max_batch, 100);
    let aud = d
        .find_or_create_audience("VIP", "big spenders")
        .await
        .expect("create");
    assert!(!aud.adopted);
    let again = d.find_or_create_audience("VIP", "").await.expect("adopt");
    assert_eq!(
        again,
        AudienceRef {
            remote_id: aud.remote_id.clone(),
            adopted: true
        }
    );

    let all = prepare_all(d.as_ref(), 0..250, contact);
    let out = d.add_members(&aud, &all).await.expect("add");
    assert_eq!((out.accepted, out.rejected.len()), (250, 0));
    // Re-adding is harmless.
    d.add_members(&aud, &all[..10]).await.expect("re-add");
    let out = d.remove_members(&aud, &all[..100]).await.expect("remove");
    assert_eq!(out.accepted, 100);
    // Removing someone absent is harmless too.
    d.remove_members(&aud, &all[..5]).await.expect("re-remove");
    assert_eq!(
        audience_members(dir.path(), &aud.remote_id).expect("members"),
        hashes(100..250)
    );

    // A second instance on the same path (a restart) sees the same audience and members.
    drop(d);
    let d2 = destination(dir.path(), json!({}));
    let adopted = d2
        .find_or_create_audience("VIP", "")
        .await
        .expect("adopt after restart");
    assert_eq!(adopted.remote_id, aud.remote_id);
    assert!(adopted.adopted);
    d2.remove_members(&adopted, &prepare_all(d2.as_ref(), 100..150, contact))
        .await
        .expect("remove");
    assert_eq!(
        audience_members(dir.path(), &aud.remote_id).expect("members"),
        hashes(150..250)
    );
    let all = audiences(dir.path()).expect("audiences");
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].name.as_str(), all[0].description.as_str()),
        ("VIP", "big spenders")
    );

    // No temp files left behind by the atomic writes.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("audiences"))
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left behind");
}

#[tokio::test]
async fn sandbox_rejects_bad_payloads_and_honours_min_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = destination(dir.path(), json!({"min_audience_size": 50}));
    assert_eq!(d.limits().min_audience_size, 50);
    assert_eq!(d.limits().max_batch, 1000);
    let aud = d.find_or_create_audience("a", "").await.expect("audience");
    let mut members = prepare_all(d.as_ref(), 0..3, contact);
    members.push(PreparedMember::new("cx", json!({"EMAIL": "nope"})));
    let out = d.add_members(&aud, &members).await.expect("add");
    assert_eq!(out.accepted, 3);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].customer_id, "cx");
    assert!(d
        .prepare(&Contact {
            customer_id: "n".into(),
            ..Contact::default()
        })
        .is_err());

    let missing = AudienceRef {
        remote_id: "sbx_0000000000000000".into(),
        adopted: false,
    };
    let err = d
        .add_members(&missing, &members[..1])
        .await
        .expect_err("unknown audience");
    assert!(err.to_string().contains("does not exist"), "{err}");
    let bad = AudienceRef {
        remote_id: "../escape".into(),
        adopted: false,
    };
    assert!(d.add_members(&bad, &members[..1]).await.is_err());
}

#[test]
fn sandbox_config_errors_name_the_key() {
    let secrets = SecretResolver::from_map(Default::default());
    let e = build_destination(
        "demo",
        &json!({"kind": "sandbox", "batch_size": 0}),
        &secrets,
    )
    .err()
    .map(|e| e.to_string());
    assert!(
        e.as_deref().is_some_and(|e| e.contains("batch_size")),
        "{e:?}"
    );
    let e = build_destination("demo", &json!({"kind": "sandbox", "pth": "x"}), &secrets)
        .err()
        .map(|e| e.to_string());
    assert!(e.as_deref().is_some_and(|e| e.contains("pth")), "{e:?}");
}
