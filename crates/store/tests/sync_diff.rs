//! The incremental sync diff (`Store::diff_page`, issue 13), on SQLite always and on Postgres when
//! `CAMPAIGND_TEST_PG_URL` is set: which members each side returns, the counts the same pass makes,
//! and that small pages cover exactly what one large page does.

use campaignd_core::model::{Channel, Contact, Customer};
use campaignd_store::ledger::{DiffCursor, Exclusions, KindCounts, LedgerEntry, KINDS_EMAIL};
use campaignd_store::runs::Job;
use campaignd_store::segments::{SegmentPlan, SegmentQuery};
use campaignd_store::{testkit, Store};
use chrono::Utc;

fn customer(id: &str, consent: bool) -> Customer {
    Customer {
        contact: Contact {
            customer_id: id.into(),
            email: Some(format!("{id}@example.com")),
            ..Default::default()
        },
        consent_ads: consent,
        consent_email: consent,
        ..Default::default()
    }
}

fn held(id: &str, version: Option<i64>, kinds: Option<i64>) -> LedgerEntry {
    LedgerEntry {
        customer_id: id.into(),
        fingerprint: format!("fp-{id}"),
        payload: format!("{{\"id\":\"{id}\"}}"),
        identity_version: version,
        kinds,
    }
}

/// c01..c08 as customers (c07 without consent), the segment every customer but c08, and a ledger
/// holding c01 as it is, c02 of unknown kinds, c03 from another version, c07, c08 and c09 (no
/// customer at all).
async fn shop(store: &Store) {
    let customers: Vec<Customer> = (1..=8)
        .map(|i| customer(&format!("c{i:02}"), i != 7))
        .collect();
    store.upsert_customers(&customers).await.unwrap();
    let run = store
        .start_run(Job::Recompute, None, Utc::now())
        .await
        .unwrap();
    let sql = "SELECT id AS customer_id FROM customers WHERE id <> 'c08'";
    let plan = SegmentPlan {
        name: "seg".into(),
        description: None,
        source: sql.into(),
        query: SegmentQuery::UserSql(sql.into()),
        excludes: Vec::new(),
    };
    store
        .recompute_segment(&plan, run, Utc::now())
        .await
        .unwrap();
    let rows = [
        held("c01", Some(0), Some(KINDS_EMAIL)),
        held("c02", Some(0), None),
        held("c03", Some(5), Some(KINDS_EMAIL)),
        held("c07", Some(0), Some(KINDS_EMAIL)),
        held("c08", Some(0), Some(KINDS_EMAIL)),
        held("c09", None, Some(KINDS_EMAIL)),
    ];
    store
        .acknowledge_batch("dest", "aud", run, 0, &rows, &[], &[])
        .await
        .unwrap();
}

/// Every page of the diff with pages of `limit` rows: (joined ids, held ids, exclusions, kinds held
/// unchanged, pages read).
async fn whole_diff(
    store: &Store,
    limit: usize,
) -> (Vec<String>, Vec<String>, Exclusions, KindCounts, usize) {
    let (mut joined, mut held) = (Vec::new(), Vec::new());
    let mut cursor = DiffCursor::default();
    let mut pages = 0;
    while !cursor.done() {
        let page = store
            .diff_page("seg", Channel::Ads, "dest", "aud", &cursor, limit)
            .await
            .unwrap();
        assert!(page.joined.len() <= limit && page.held.len() <= limit);
        joined.extend(page.joined.into_iter().map(|c| c.contact.customer_id));
        held.extend(page.held.into_iter().map(|h| h.customer_id));
        cursor = page.cursor;
        pages += 1;
        assert!(pages < 100, "the diff does not end");
    }
    (
        joined,
        held,
        cursor.exclusions().expect("counts once done"),
        cursor.unchanged_kinds().expect("kinds once done"),
        pages,
    )
}

#[tokio::test]
async fn diff_returns_the_changes_of_both_sides_and_counts_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in testkit::every_backend(dir.path()).await {
        shop(&store).await;
        let (joined, held, excl, unchanged, pages) = whole_diff(&store, 100).await;
        assert_eq!(pages, 1, "{backend}");
        assert_eq!(
            joined,
            ["c02", "c03", "c04", "c05", "c06"],
            "{backend}: joined, unknown kinds or another version"
        );
        assert_eq!(
            held,
            ["c02", "c03", "c07", "c08", "c09"],
            "{backend}: unknown kinds, another version, no consent, not a member, no customer"
        );
        assert_eq!(
            excl,
            Exclusions {
                members: 7,
                no_consent: 1,
                suppressed: 0
            },
            "{backend}"
        );
        assert_eq!(
            unchanged,
            KindCounts {
                email: 1,
                phone: 0,
                address: 0
            },
            "{backend}: only c01 is held unchanged"
        );
        // The same diff in pages of two rows a side: the same rows and counts, in order.
        let (small_joined, small_held, small_excl, small_unchanged, pages) =
            whole_diff(&store, 2).await;
        assert!(pages >= 3, "{backend}: {pages} pages");
        assert_eq!(
            (small_joined, small_held, small_excl, small_unchanged),
            (joined, held, excl, unchanged),
            "{backend}"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn diff_of_an_audience_held_as_it_is_returns_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in testkit::every_backend(dir.path()).await {
        shop(&store).await;
        // Hold exactly the eligible members, each at its current version with known kinds.
        let run = store.start_run(Job::Sync, None, Utc::now()).await.unwrap();
        let removed: Vec<String> = ["c07", "c08", "c09"].map(String::from).to_vec();
        let rows: Vec<LedgerEntry> = ["c02", "c03", "c04", "c05", "c06"]
            .iter()
            .map(|id| held(id, Some(0), Some(KINDS_EMAIL)))
            .collect();
        store
            .acknowledge_batch("dest", "aud", run, 0, &rows, &removed, &[])
            .await
            .unwrap();
        let (joined, held, excl, unchanged, _) = whole_diff(&store, 100).await;
        assert!(
            joined.is_empty() && held.is_empty(),
            "{backend}: {joined:?} {held:?}"
        );
        assert_eq!((excl.members, excl.no_consent), (7, 1), "{backend}");
        assert_eq!(unchanged.email, 6, "{backend}");
        store.close().await;
    }
}
