//! Store hardening (issue 12 items 11, 13–16), on SQLite always and on Postgres when
//! `CAMPAIGND_TEST_PG_URL` is set: write transactions that wait for each other, JSON Lines with a byte
//! order mark, `sql` segments that name non-customers, one decimal rule for totals, import progress.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use campaignd_core::progress::{Progress, ProgressSink};
use campaignd_core::rules::{compile_segment, parse_rule};
use campaignd_store::import::{ImportKind, ImportOptions};
use campaignd_store::runs::Job;
use campaignd_store::segments::{SegmentPlan, SegmentQuery};
use campaignd_store::{testkit, Pool, Store};
use chrono::{TimeZone, Utc};

fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

async fn import(store: &Store, kind: ImportKind, path: &Path) -> (u64, Vec<String>) {
    let report = store
        .import(kind, path, ImportOptions::default())
        .await
        .expect("import");
    (
        report.imported,
        report.errors.iter().map(|e| e.to_string()).collect(),
    )
}

const CUSTOMERS: &[u8] = b"id,email,consent_ads\nc1,a@example.com,1\nc2,b@example.com,1\nc3,,0\n";

fn user_sql(name: &str, sql: &str) -> SegmentPlan {
    SegmentPlan {
        name: name.into(),
        description: None,
        source: sql.into(),
        query: SegmentQuery::UserSql(sql.into()),
        excludes: Vec::new(),
    }
}

#[tokio::test]
async fn jsonl_with_a_byte_order_mark_imports_its_first_line() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in testkit::every_backend(dir.path()).await {
        let path = write(
            dir.path(),
            "customers.jsonl",
            b"\xEF\xBB\xBF{\"id\":\"c1\",\"email\":\"a@example.com\"}\n{\"id\":\"c2\"}\n",
        );
        let (imported, errors) = import(&store, ImportKind::Customers, &path).await;
        assert_eq!((imported, errors), (2, Vec::<String>::new()), "{backend}");
        store.close().await;
    }
}

#[tokio::test]
async fn sql_segment_keeps_only_customers_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in testkit::every_backend(dir.path()).await {
        let path = write(dir.path(), "customers.csv", CUSTOMERS);
        import(&store, ImportKind::Customers, &path).await;
        let run = store
            .start_run(Job::Recompute, None, Utc::now())
            .await
            .unwrap();
        let plan = user_sql(
            "with_ghosts",
            "SELECT id AS customer_id FROM customers WHERE id <> 'c3' \
             UNION ALL SELECT 'ghost' AS customer_id UNION ALL SELECT 'nobody' AS customer_id",
        );
        let outcome = store
            .recompute_segment(&plan, run, Utc::now())
            .await
            .unwrap();
        assert_eq!(
            (outcome.size, outcome.joined, outcome.dropped),
            (2, 2, 2),
            "{backend}"
        );
        let members: Vec<String> = store
            .segment_members("with_ghosts")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.customer_id)
            .collect();
        assert_eq!(members, vec!["c1", "c2"], "{backend}");
        let summary = store
            .segment_summaries()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.name == "with_ghosts")
            .unwrap();
        assert_eq!((summary.size, summary.last_dropped), (2, 2), "{backend}");
        // A rerun with nothing changed: no joins, the same ghosts still reported.
        let again = store
            .recompute_segment(&plan, run, Utc::now())
            .await
            .unwrap();
        assert_eq!(
            (again.size, again.joined, again.left, again.dropped),
            (2, 0, 0, 2),
            "{backend}"
        );
        store.close().await;
    }
}

/// Totals as (id, cents) read back from the store, whatever the column type.
async fn totals(store: &Store) -> Vec<(String, f64)> {
    const SQL: &str = "SELECT id, CAST(total AS DOUBLE PRECISION) FROM orders ORDER BY id";
    match store.pool() {
        Pool::Sqlite(p) => sqlx::query_as(&SQL.replace("DOUBLE PRECISION", "REAL"))
            .fetch_all(p)
            .await
            .unwrap(),
        Pool::Postgres(p) => sqlx::query_as(SQL).fetch_all(p).await.unwrap(),
    }
}

#[tokio::test]
async fn totals_are_rounded_to_cents_alike_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let orders = b"id,customer_id,placed_at,total\n\
o1,c1,2025-01-01T00:00:00Z,10.005\n\
o2,c1,2025-01-02T00:00:00Z,2.675\n\
o3,c1,2025-01-03T00:00:00Z,0.125\n\
o4,c2,2025-01-04T00:00:00Z,-1.005\n\
o5,c2,2025-01-05T00:00:00Z,12.3449\n\
o6,c2,2025-01-06T00:00:00Z,1e2\n\
o7,c2,2025-01-07T00:00:00Z,19.999999\n";
    let want = vec![
        ("o1".to_string(), 10.01),
        ("o2".to_string(), 2.68),
        ("o3".to_string(), 0.13),
        ("o4".to_string(), -1.01),
        ("o5".to_string(), 12.34),
        ("o6".to_string(), 100.0),
        ("o7".to_string(), 20.0),
    ];
    let as_of = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
    let mut seen = Vec::new();
    for (backend, store) in testkit::every_backend(dir.path()).await {
        import(
            &store,
            ImportKind::Customers,
            &write(dir.path(), "customers.csv", CUSTOMERS),
        )
        .await;
        let (imported, errors) = import(
            &store,
            ImportKind::Orders,
            &write(dir.path(), "orders.csv", orders),
        )
        .await;
        assert_eq!((imported, errors), (7, Vec::<String>::new()), "{backend}");
        assert_eq!(totals(&store).await, want, "{backend}");
        // The sums a rule sees agree to the cent: c1 has 10.01 + 2.68 + 0.13 = 12.82 exactly.
        let rule = parse_rule("orders.sum() >= 12.82").unwrap();
        let compiled = compile_segment(rule.expr(), &[], store.dialect(), as_of);
        seen.push((backend, store.count_matches(&compiled).await.unwrap()));
        store.close().await;
    }
    for (backend, n) in seen {
        // c1 (12.82) and c2 (-1.01 + 12.34 + 100 + 20 = 131.33).
        assert_eq!(n, 2, "{backend}");
    }
}

/// Records progress as `start`/`advance` totals, for asserting what import reported.
#[derive(Default)]
struct Recorded(Mutex<(Option<u64>, u64, bool)>);

impl ProgressSink for Recorded {
    fn start(&self, _label: &str, unit: &'static str, total: Option<u64>) {
        assert_eq!(unit, "bytes");
        *self.0.lock().unwrap() = (total, 0, false);
    }
    fn advance(&self, units: u64) {
        self.0.lock().unwrap().1 += units;
    }
    fn finish(&self) {
        self.0.lock().unwrap().2 = true;
    }
}

#[tokio::test]
async fn import_reports_progress_through_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,email\n");
    for i in 0..12_000 {
        text.push_str(&format!("c{i},m{i}@example.com\n"));
    }
    let path = write(dir.path(), "many.csv", text.as_bytes());
    let store = testkit::fresh_sqlite_store(dir.path()).await.unwrap();
    let sink = Arc::new(Recorded::default());
    let report = store
        .import_with_progress(
            ImportKind::Customers,
            &path,
            ImportOptions::default(),
            &Progress::to(sink.clone()),
        )
        .await
        .unwrap();
    assert_eq!(report.imported, 12_000);
    let (total, done, finished) = *sink.0.lock().unwrap();
    assert_eq!(total, Some(text.len() as u64));
    assert_eq!(done, text.len() as u64);
    assert!(finished);
}

/// Two handles on one SQLite file (each its own pool, so its own connections and locks, as two
/// processes have) recomputing the same segments at once: every write transaction takes the write lock
/// before reading, so they take turns under the busy timeout instead of failing with
/// `SQLITE_BUSY_SNAPSHOT`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_sqlite_file_recompute_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let first = testkit::fresh_sqlite_store(dir.path()).await.unwrap();
    let as_of = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
    first.load_synthetic(2000, 7, as_of).await.unwrap();
    let url = format!("sqlite://{}", dir.path().join("campaignd.db").display());
    let second = Store::connect(&url).await.unwrap();
    let plans: Vec<SegmentPlan> = campaignd_core::rules::templates::list()
        .iter()
        .map(|t| {
            let text =
                campaignd_core::rules::templates::render(t.name, &Default::default()).unwrap();
            let rule = parse_rule(&text).unwrap();
            SegmentPlan {
                name: t.name.into(),
                description: None,
                source: text.clone(),
                query: SegmentQuery::Compiled(compile_segment(
                    rule.expr(),
                    &[],
                    first.dialect(),
                    as_of,
                )),
                excludes: Vec::new(),
            }
        })
        .collect();
    let (a, b) = tokio::join!(
        recompute_rounds(&first, &plans, as_of),
        recompute_rounds(&second, &plans, as_of)
    );
    assert!(a.is_ok(), "first: {a:?}");
    assert!(b.is_ok(), "second: {b:?}");
    first.close().await;
    second.close().await;
}

/// Three recompute runs of every plan, each at a later `as_of` so memberships change and get written.
async fn recompute_rounds(
    store: &Store,
    plans: &[SegmentPlan],
    as_of: chrono::DateTime<Utc>,
) -> Result<(), campaignd_store::StoreError> {
    for round in 0..3 {
        let run = store.start_run(Job::Recompute, None, Utc::now()).await?;
        for plan in plans {
            store
                .recompute_segment(plan, run, as_of + chrono::Duration::days(round))
                .await?;
        }
    }
    Ok(())
}
