//! File destination tests: snapshots and per-run diffs on disk.

use crate::model::{Contact, SyncContext};
use crate::{build_destination, AudienceDestination, SecretResolver};
use serde_json::json;
use std::sync::Arc;

pub(crate) fn destination(
    dir: &std::path::Path,
    format: &str,
    include_plain: bool,
) -> Arc<dyn AudienceDestination> {
    let section =
        json!({"kind": "file", "path": dir, "format": format, "include_plain": include_plain});
    build_destination(
        "files",
        &section,
        &SecretResolver::from_map(Default::default()),
    )
    .expect("file destination")
}

fn contact(i: usize) -> Contact {
    Contact {
        customer_id: format!("c{i}"),
        email: Some(format!("P{i}@Example.com")),
        ..Contact::default()
    }
}

#[tokio::test]
async fn jsonl_snapshot_and_diff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = destination(dir.path(), "jsonl", false);
    let aud = d
        .find_or_create_audience("VIP list", "")
        .await
        .expect("audience");
    assert_eq!(aud.remote_id, "VIP_list");
    assert!(!aud.adopted);
    d.begin_sync(&SyncContext {
        run_id: "run-1".into(),
        segment: "vip".into(),
        audience: aud.clone(),
    })
    .await
    .expect("ctx");
    let members: Vec<_> = (0..5)
        .map(|i| d.prepare(&contact(i)).expect("usable"))
        .collect();
    d.add_members(&aud, &members).await.expect("add");
    d.remove_members(&aud, &members[..2]).await.expect("remove");

    let snap =
        std::fs::read_to_string(dir.path().join("VIP_list/members.jsonl")).expect("snapshot");
    let lines: Vec<&str> = snap.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].contains("\"customer_id\":\"c2\""), "{snap}");
    assert!(!snap.contains("example.com"), "plain email leaked: {snap}");
    let diff =
        std::fs::read_to_string(dir.path().join("VIP_list/diffs/run-1.jsonl")).expect("diff");
    assert_eq!(
        diff.lines()
            .filter(|l| l.contains("\"action\":\"add\""))
            .count(),
        5
    );
    assert_eq!(
        diff.lines()
            .filter(|l| l.contains("\"action\":\"remove\""))
            .count(),
        2
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("VIP_list"))
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left behind");

    // A second instance sees the existing snapshot: adopted.
    let again = destination(dir.path(), "jsonl", false)
        .find_or_create_audience("VIP list", "")
        .await
        .expect("adopt");
    assert!(again.adopted);
}

#[tokio::test]
async fn csv_with_plain_identifiers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = destination(dir.path(), "csv", true);
    let aud = d
        .find_or_create_audience("list", "")
        .await
        .expect("audience");
    let members: Vec<_> = (0..3)
        .map(|i| d.prepare(&contact(i)).expect("usable"))
        .collect();
    d.add_members(&aud, &members).await.expect("add");
    d.remove_members(&aud, &members[..1]).await.expect("remove");
    d.add_members(&aud, &members[..1]).await.expect("re-add");
    let snap = std::fs::read_to_string(dir.path().join("list/members.csv")).expect("snapshot");
    let lines: Vec<&str> = snap.lines().collect();
    assert_eq!(
        lines[0],
        "customer_id,email_sha256,phone_sha256,email,phone"
    );
    assert_eq!(lines.len(), 4, "{snap}");
    assert!(snap.contains("p0@example.com"), "{snap}");
    let diffs: Vec<_> = std::fs::read_dir(dir.path().join("list/diffs"))
        .expect("diffs")
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(diffs.len(), 1);
    let diff = std::fs::read_to_string(diffs[0].path()).expect("diff");
    let dl: Vec<&str> = diff.lines().collect();
    assert_eq!(
        dl[0],
        "action,customer_id,email_sha256,phone_sha256,email,phone"
    );
    assert_eq!(dl.len(), 1 + 3 + 1 + 1, "{diff}");
    assert!(d
        .prepare(&Contact {
            customer_id: "x".into(),
            email: Some("nope".into()),
            ..Contact::default()
        })
        .is_err());
}
