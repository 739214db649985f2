//! Webhook connector tests against the fake receiver, which verifies the HMAC on its side.

use super::{idempotency_key, signature};
use crate::model::{AudienceRef, Contact, SyncContext};
use crate::{build_destination, AudienceDestination, ConnectorError, SecretResolver};
use campaignd_fakes::FakeWebhook;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) const SECRET: &str = "whsec-shared-secret-42";

pub(crate) fn destination(
    url: &str,
    secret: &str,
    batch_size: usize,
) -> Arc<dyn AudienceDestination> {
    let secrets = SecretResolver::from_map(HashMap::from([(
        "HOOK_SECRET".to_string(),
        secret.to_string(),
    )]));
    let section = json!({
        "kind": "webhook",
        "url": url,
        "secret": {"env": "HOOK_SECRET"},
        "batch_size": batch_size,
        "retry": {"max_attempts": 3, "initial_backoff_ms": 5, "max_backoff_ms": 10, "max_retry_after_secs": 2},
    });
    build_destination("hook", &section, &secrets).expect("webhook destination")
}

fn contact(i: usize) -> Contact {
    Contact {
        customer_id: format!("c{i}"),
        email: Some(format!("p{i}@example.com")),
        phone: Some("+1 650 253 0000".into()),
        ..Contact::default()
    }
}

#[test]
fn signature_and_key_are_deterministic() {
    // HMAC-SHA256 test vector from RFC 4231 case 2 ("Jefe").
    assert_eq!(
        signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let m = vec![json!({"customer_id": "c1", "email_sha256": "ab"})];
    assert_eq!(
        idempotency_key("a", "add", &m),
        idempotency_key("a", "add", &m)
    );
    assert_ne!(
        idempotency_key("a", "add", &m),
        idempotency_key("a", "remove", &m)
    );
}

#[tokio::test]
async fn batches_are_signed_keyed_and_applied() {
    let fake = FakeWebhook::start(SECRET).await.expect("fake");
    let d = destination(&fake.url(), SECRET, 4);
    let aud = d
        .find_or_create_audience("vip", "")
        .await
        .expect("audience");
    assert_eq!(
        aud,
        AudienceRef {
            remote_id: "vip".into(),
            adopted: false
        }
    );
    d.begin_sync(&SyncContext {
        run_id: "run-7".into(),
        segment: "vip_segment".into(),
        audience: aud.clone(),
    })
    .await
    .expect("ctx");
    let members: Vec<_> = (0..10)
        .map(|i| d.prepare(&contact(i)).expect("usable"))
        .collect();
    let out = d.add_members(&aud, &members).await.expect("add");
    assert_eq!(out.accepted, 10);
    assert_eq!(
        fake.requests().count("POST", "/hook"),
        3,
        "batch_size 4 → 3 posts"
    );
    let out = d.remove_members(&aud, &members[..3]).await.expect("remove");
    assert_eq!(out.accepted, 3);
    let now = fake.members("vip");
    assert_eq!(now.len(), 7);
    assert!(now["c5"]["email_sha256"]
        .as_str()
        .is_some_and(|h| h.len() == 64));
    let first = &fake.batches()[0];
    assert_eq!(first["run_id"], "run-7");
    assert_eq!(first["segment"], "vip_segment");
    assert_eq!(first["batch_seq"], 1);
    assert_eq!(fake.bad_signatures(), 0);

    // Resending a batch (at-least-once) carries the same Idempotency-Key: the receiver drops it.
    d.remove_members(&aud, &members[..3]).await.expect("resend");
    assert_eq!(fake.duplicates(), 1);
}

#[tokio::test]
async fn wrong_secret_and_4xx_fail_the_batch() {
    let fake = FakeWebhook::start(SECRET).await.expect("fake");
    let bad = destination(&fake.url(), "not-the-secret", 10);
    let aud = bad
        .find_or_create_audience("vip", "")
        .await
        .expect("audience");
    let members: Vec<_> = (0..2)
        .map(|i| bad.prepare(&contact(i)).expect("usable"))
        .collect();
    let err = bad
        .add_members(&aud, &members)
        .await
        .expect_err("bad signature");
    assert!(matches!(err, ConnectorError::Auth { .. }), "{err}");
    assert!(!err.to_string().contains("not-the-secret"));
    assert_eq!(fake.bad_signatures(), 1);

    let d = destination(&fake.url(), SECRET, 10);
    fake.reject_next(1, 422);
    let err = d
        .add_members(&aud, &members)
        .await
        .expect_err("a whole-batch 4xx fails the call, it is not a rejection per member");
    assert!(
        matches!(err, ConnectorError::Api { status: 422, .. }) && !err.is_transient(),
        "{err}"
    );
    assert!(err.to_string().contains("receiver refused"), "{err}");
    assert!(fake.members("vip").is_empty());

    fake.faults().too_many_requests_next(1, 0);
    fake.faults().server_error_next(0);
    let out = d.add_members(&aud, &members).await.expect("429 then ok");
    assert_eq!(out.accepted, 2);
    assert_eq!(fake.members("vip").len(), 2);
}
