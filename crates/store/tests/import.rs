//! Import and bulk-load tests, on SQLite always and on Postgres when `CAMPAIGND_TEST_PG_URL` is set.

use std::path::{Path, PathBuf};

use campaignd_core::synth::ShopGenerator;
use campaignd_store::import::{ImportKind, ImportOptions, ImportReport};
use campaignd_store::{testkit, Pool, Store};
use chrono::{TimeZone, Utc};

/// A fresh SQLite store under `dir`, plus a fresh Postgres store when a test server is configured.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

async fn import(store: &Store, kind: ImportKind, path: &Path, strict: bool) -> ImportReport {
    store
        .import(kind, path, ImportOptions { strict })
        .await
        .expect("import")
}

async fn count(store: &Store, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match store.pool() {
        Pool::Sqlite(p) => sqlx::query_scalar(&sql).fetch_one(p).await.expect("count"),
        Pool::Postgres(p) => sqlx::query_scalar(&sql).fetch_one(p).await.expect("count"),
    }
}

/// Every row of `table` as one `|`-joined text, in key order: a backend-neutral way to compare contents.
async fn dump(store: &Store, table: &str) -> Vec<String> {
    let columns: &[&str] = match table {
        "customers" => &[
            "id",
            "email",
            "phone",
            "first_name",
            "last_name",
            "country",
            "city",
            "postal_code",
            "birth_date",
            "gender",
            "created_at",
            "consent_ads",
            "consent_email",
        ],
        "orders" => &[
            "id",
            "customer_id",
            "placed_at",
            "total",
            "currency",
            "discount_code",
            "free_shipping",
        ],
        "events" => &["id", "customer_id", "kind", "occurred_at", "properties"],
        _ => &["identifier_kind", "identifier", "reason", "created_at"],
    };
    let expr: Vec<String> = columns
        .iter()
        .map(|c| format!("COALESCE(CAST({c} AS TEXT), '<null>')"))
        .collect();
    let sql = format!(
        "SELECT {} FROM {table} ORDER BY 1",
        expr.join(" || '|' || ")
    );
    match store.pool() {
        Pool::Sqlite(p) => sqlx::query_scalar(&sql).fetch_all(p).await.expect("dump"),
        Pool::Postgres(p) => sqlx::query_scalar(&sql).fetch_all(p).await.expect("dump"),
    }
}

fn errors(report: &ImportReport) -> Vec<String> {
    report.errors.iter().map(|e| e.to_string()).collect()
}

const CUSTOMERS_CSV: &str = "\
id,email,phone,first_name,last_name,country,city,postal_code,birth_date,gender,created_at,consent_ads,consent_email
c1,ann@example.com,+14155550100,Ann,Lee,us,Austin,78701,1990-05-01,female,2024-01-02T03:04:05Z,yes,1
c2,not-an-email,0301234567,Bob,Ray,DE,Berlin,10115,,male,2024-02-03T00:00:00+01:00,false,NO
,x@example.com,,,,,,,,,2024-01-01T00:00:00Z,1,1
c4,,,,,,,,,,yesterday,1,1
c5,,,,,,,,,,2024-01-01T00:00:00Z,maybe,1
c6,,,
c7,,,,,,,,1990-13-01,,,0,0
\"c8\",\"multi
line@example.com\",,,,,,,,,,1,0
c9,,,,,,,,,,,,

c10,,,,,,,,,,,1,si
";

async fn import_customers(dir: &Path, store: &Store) -> ImportReport {
    let path = write(dir, "customers.csv", CUSTOMERS_CSV);
    import(store, ImportKind::Customers, &path, false).await
}

#[tokio::test]
async fn bad_customer_rows_are_reported_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in testkit::every_backend(dir.path()).await {
        let report = import_customers(dir.path(), &store).await;
        let f = dir.path().join("customers.csv").display().to_string();
        assert_eq!(
            errors(&report),
            vec![
                format!("{f}:4: missing id"),
                format!("{f}:5: created_at: not an RFC 3339 timestamp: \"yesterday\""),
                format!("{f}:6: consent_ads: not a boolean (true/false, 1/0, yes/no): \"maybe\""),
                format!("{f}:7: expected 13 fields, found 4"),
                format!("{f}:8: birth_date: not a date (YYYY-MM-DD): \"1990-13-01\""),
                format!("{f}:13: consent_email: not a boolean (true/false, 1/0, yes/no): \"si\""),
            ],
            "{backend}"
        );
        assert_eq!((report.imported, report.rejected), (4, 6), "{backend}");
        assert!(!report.rolled_back);
        assert_eq!(count(&store, "customers").await, 4, "{backend}");
        let rows = dump(&store, "customers").await;
        // Country upper-cased, an invalid email and a multi-line cell kept as they are.
        assert!(
            rows[0].starts_with(
                "c1|ann@example.com|+14155550100|Ann|Lee|US|Austin|78701|1990-05-01|female|"
            ),
            "{backend}: {}",
            rows[0]
        );
        assert!(
            rows[1].starts_with("c2|not-an-email|"),
            "{backend}: {}",
            rows[1]
        );
        assert!(
            rows[2].starts_with("c8|multi\nline@example.com|"),
            "{backend}: {}",
            rows[2]
        );
        assert!(report
            .to_string()
            .ends_with(&format!("{f}: 4 imported, 6 rejected")));
        store.close().await;
    }
}

#[tokio::test]
async fn bad_order_event_and_suppression_rows_are_reported_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in testkit::every_backend(dir.path()).await {
        import_customers(dir.path(), &store).await;

        // Columns in any order.
        let orders = write(
            dir.path(),
            "orders.csv",
            "customer_id,id,total,placed_at,free_shipping,discount_code,currency
c1,o1,19.99,2024-03-01T10:00:00Z,true,,usd
c2,o2,5,2024-03-02T10:00:00Z,0,WELCOME10,EUR
c404,o3,10,2024-03-03T10:00:00Z,0,,EUR
c1,o4,abc,2024-03-03T10:00:00Z,0,,EUR
c1,o5,10,03/03/2024,0,,EUR
,o6,10,2024-03-03T10:00:00Z,0,,EUR
c1,,10,2024-03-03T10:00:00Z,0,,EUR
c2,o7,12.50,2024-03-04T10:00:00Z,,,
c2,o8,1e13,2024-03-04T10:00:00Z,,,
c2,o9,12.50,2024-03-04T10:00:00Z,perhaps,,
",
        );
        let report = import(&store, ImportKind::Orders, &orders, false).await;
        let f = orders.display().to_string();
        assert_eq!(
            errors(&report),
            vec![
                format!("{f}:4: unknown customer_id \"c404\""),
                format!("{f}:5: total: not a decimal number: \"abc\""),
                format!("{f}:6: placed_at: not an RFC 3339 timestamp: \"03/03/2024\""),
                format!("{f}:7: missing customer_id"),
                format!("{f}:8: missing id"),
                format!("{f}:10: total: out of range: \"1e13\""),
                format!(
                    "{f}:11: free_shipping: not a boolean (true/false, 1/0, yes/no): \"perhaps\""
                ),
            ],
            "{backend}"
        );
        assert_eq!((report.imported, report.rejected), (3, 7), "{backend}");
        assert_eq!(count(&store, "orders").await, 3, "{backend}");

        let bad_json =
            r#"{"customer_id":"c1","kind":"add_to_cart","occurred_at":"2024-03-01T09:05:00Z""#;
        let events_text = [
            r#"{"customer_id":"c1","kind":"visit","occurred_at":"2024-03-01T09:00:00Z","properties":{"source":"ads"}}"#,
            "",
            bad_json,
            r#"{"id":"e9","customer_id":"c404","kind":"visit","occurred_at":"2024-03-01T09:00:00Z"}"#,
            r#"{"customer_id":"c2","kind":"visit","occurred_at":"2024-03-01T09:00:00Z","colour":"red"}"#,
            r#"{"customer_id":"c2","kind":"visit","occurred_at":"2024-03-01T09:00:00Z","properties":[1]}"#,
            "[1, 2]",
            r#"{"customer_id":"c2","occurred_at":"2024-03-01T09:00:00Z"}"#,
            r#"{"customer_id":"c2","kind":"visit","occurred_at":"2024-03-01"}"#,
            r#"{"customer_id":"c2","kind":"email_open","occurred_at":"2024-03-05T08:00:00+02:00","properties":{"campaign":"sale"}}"#,
        ]
        .join("\n");
        let events = write(dir.path(), "events.jsonl", &events_text);
        let report = import(&store, ImportKind::Events, &events, false).await;
        let f = events.display().to_string();
        let json_error = serde_json::from_str::<serde_json::Value>(bad_json).unwrap_err();
        assert_eq!(
            errors(&report),
            vec![
                format!("{f}:3: bad JSON: {json_error}"),
                format!("{f}:4: unknown customer_id \"c404\""),
                format!("{f}:5: unknown field(s) colour"),
                format!("{f}:6: properties: not a JSON object"),
                format!("{f}:7: bad JSON: expected an object"),
                format!("{f}:8: missing kind"),
                format!("{f}:9: occurred_at: not an RFC 3339 timestamp: \"2024-03-01\""),
            ],
            "{backend}"
        );
        assert_eq!((report.imported, report.rejected), (2, 7), "{backend}");
        assert_eq!(count(&store, "events").await, 2, "{backend}");

        let suppressions = write(
            dir.path(),
            "suppressions.csv",
            "identifier_kind,identifier,reason,created_at
email,ann@example.com,unsubscribed,2024-01-01T00:00:00Z
fax,123,,
phone,,,
Phone,+14155550100,,
",
        );
        let report = import(&store, ImportKind::Suppressions, &suppressions, false).await;
        let f = suppressions.display().to_string();
        assert_eq!(
            errors(&report),
            vec![
                format!(
                    "{f}:3: identifier_kind: expected email, phone or customer_id, found \"fax\""
                ),
                format!("{f}:4: missing identifier"),
            ],
            "{backend}"
        );
        assert_eq!(count(&store, "suppressions").await, 2, "{backend}");
        store.close().await;
    }
}

#[tokio::test]
async fn file_level_problems_are_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in testkit::every_backend(dir.path()).await {
        let typo = write(
            dir.path(),
            "typo.csv",
            "id,emial,Phone,colour\nc1,a@b.c,1,red\n",
        );
        let err = store
            .import(ImportKind::Customers, &typo, ImportOptions::default())
            .await
            .unwrap_err()
            .to_string();
        let f = typo.display().to_string();
        assert!(
            err.starts_with(&format!(
                "{f}:1: unknown column(s) emial, colour for customers; expected id, email,"
            )),
            "{backend}: {err}"
        );
        let no_total = write(dir.path(), "no_total.csv", "id,customer_id,placed_at\n");
        let err = store
            .import(ImportKind::Orders, &no_total, ImportOptions::default())
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}:1: missing column(s) total for orders",
                no_total.display()
            )
        );
        let xlsx = write(dir.path(), "customers.xlsx", "");
        assert!(store
            .import(ImportKind::Customers, &xlsx, ImportOptions::default())
            .await
            .is_err());
        assert!(store
            .import(
                ImportKind::Customers,
                &dir.path().join("absent.csv"),
                ImportOptions::default()
            )
            .await
            .is_err());
        assert_eq!(count(&store, "customers").await, 0, "{backend}");
        store.close().await;
    }
}

#[tokio::test]
async fn strict_import_with_a_bad_row_leaves_tables_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in testkit::every_backend(dir.path()).await {
        let first = write(
            dir.path(),
            "first.csv",
            "id,email\nc1,old@example.com\nc2,two@example.com\n",
        );
        let report = import(&store, ImportKind::Customers, &first, true).await;
        assert_eq!(
            (report.imported, report.rejected, report.rolled_back),
            (2, 0, false)
        );
        let before = dump(&store, "customers").await;

        // A clean prefix bigger than one batch, then bad rows: nothing of it may land.
        let mut text = String::from("id,email,created_at\nc1,new@example.com,\n");
        for i in 0..6000 {
            text.push_str(&format!("n{i},n{i}@example.com,2024-01-01T00:00:00Z\n"));
        }
        text.push_str("bad1,x@example.com,never\n");
        text.push_str(",nobody@example.com,\n");
        let path = write(dir.path(), "strict.csv", &text);
        let report = import(&store, ImportKind::Customers, &path, true).await;
        let f = path.display().to_string();
        assert_eq!(
            errors(&report),
            vec![
                format!("{f}:6003: created_at: not an RFC 3339 timestamp: \"never\""),
                format!("{f}:6004: missing id"),
            ],
            "{backend}"
        );
        assert_eq!(
            (report.imported, report.rejected, report.rolled_back),
            (0, 2, true)
        );
        assert!(report
            .to_string()
            .ends_with("0 imported, 2 rejected (strict: nothing written)"));
        assert_eq!(dump(&store, "customers").await, before, "{backend}");

        // An unknown customer is a bad row too.
        let orders = write(
            dir.path(),
            "orders.jsonl",
            "{\"id\":\"o1\",\"customer_id\":\"c1\",\"placed_at\":\"2024-03-01T10:00:00Z\",\"total\":10}\n\
             {\"id\":\"o2\",\"customer_id\":\"zz\",\"placed_at\":\"2024-03-01T10:00:00Z\",\"total\":10}\n",
        );
        let report = import(&store, ImportKind::Orders, &orders, true).await;
        assert_eq!(
            errors(&report),
            vec![format!(
                "{}:2: unknown customer_id \"zz\"",
                orders.display()
            )]
        );
        assert_eq!(count(&store, "orders").await, 0, "{backend}");

        // Strict with a clean file imports everything.
        let report = import(&store, ImportKind::Customers, &first, true).await;
        assert_eq!((report.imported, report.rejected), (2, 0));
        store.close().await;
    }
}

#[tokio::test]
async fn reimport_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in testkit::every_backend(dir.path()).await {
        let customers = write(
            dir.path(),
            "c.csv",
            "id,email,created_at\nc1,a@example.com,2024-01-01T00:00:00Z\nc2,b@example.com,\nc1,a2@example.com,\n",
        );
        let orders = write(
            dir.path(),
            "o.csv",
            "id,customer_id,placed_at,total\no1,c1,2024-02-01T00:00:00Z,10.5\no2,c2,2024-02-02T00:00:00Z,3\n",
        );
        // No ids: the derived ones make a second import (and a duplicate line) land on the same rows.
        let events = write(
            dir.path(),
            "e.ndjson",
            "{\"customer_id\":\"c1\",\"kind\":\"visit\",\"occurred_at\":\"2024-02-01T00:00:00Z\",\"properties\":{\"a\":1,\"b\":2}}\n\
             {\"customer_id\":\"c1\",\"kind\":\"visit\",\"occurred_at\":\"2024-02-01T01:00:00+01:00\",\"properties\":{\"b\":2,\"a\":1}}\n\
             {\"customer_id\":\"c2\",\"kind\":\"add_to_cart\",\"occurred_at\":\"2024-02-03T00:00:00Z\"}\n",
        );
        let suppressions = write(
            dir.path(),
            "s.csv",
            "identifier_kind,identifier,reason\nemail,a@example.com,unsubscribed\n",
        );
        let mut dumps = Vec::new();
        for round in 0..2 {
            for (kind, path) in [
                (ImportKind::Customers, &customers),
                (ImportKind::Orders, &orders),
                (ImportKind::Events, &events),
                (ImportKind::Suppressions, &suppressions),
            ] {
                let report = import(&store, kind, path, false).await;
                assert!(report.is_clean(), "{backend} round {round}: {report}");
            }
            assert_eq!(count(&store, "customers").await, 2, "{backend}");
            assert_eq!(count(&store, "orders").await, 2, "{backend}");
            assert_eq!(count(&store, "events").await, 2, "{backend}");
            assert_eq!(count(&store, "suppressions").await, 1, "{backend}");
            let mut d = Vec::new();
            for t in ["customers", "orders", "events", "suppressions"] {
                d.extend(dump(&store, t).await);
            }
            dumps.push(d);
        }
        assert_eq!(dumps[0], dumps[1], "{backend}");
        // The last line of a file wins for a repeated id.
        assert!(dumps[0][0].starts_with("c1|a2@example.com"), "{backend}");
        store.close().await;
    }
}

#[tokio::test]
async fn csv_and_jsonl_give_identical_rows() {
    let dir = tempfile::tempdir().unwrap();
    let csv_dir = dir.path().join("csv");
    let json_dir = dir.path().join("json");
    std::fs::create_dir_all(&csv_dir).unwrap();
    std::fs::create_dir_all(&json_dir).unwrap();
    let mut by_backend: Vec<Vec<(&str, Store)>> = vec![
        testkit::every_backend(&csv_dir).await,
        testkit::every_backend(&json_dir).await,
    ];
    let json_stores = by_backend.pop().unwrap();
    let csv_stores = by_backend.pop().unwrap();

    let customers_csv = write(
        dir.path(),
        "customers.csv",
        "consent_email,id,email,phone,first_name,last_name,country,city,postal_code,birth_date,gender,created_at,consent_ads
yes,c1,Ann@Example.com,+1 415 555 0100,Ann,Lee,us,Austin,78701,1990-05-01,female,2024-01-02T03:04:05Z,TRUE
0,c2,,,Bob,,de,,,1985-02-03T00:00:00Z,,2024-02-03T00:00:00+01:00,no
",
    );
    let customers_json = write(
        dir.path(),
        "customers.jsonl",
        r#"{"id":"c1","email":"Ann@Example.com","phone":"+1 415 555 0100","first_name":"Ann","last_name":"Lee","country":"US","city":"Austin","postal_code":"78701","birth_date":"1990-05-01","gender":"female","created_at":"2024-01-02T03:04:05Z","consent_ads":true,"consent_email":"yes"}
{"id":"c2","email":null,"first_name":"Bob","country":"DE","birth_date":"1985-02-03","created_at":"2024-02-02T23:00:00Z","consent_ads":0,"consent_email":false}
"#,
    );
    let orders_csv = write(
        dir.path(),
        "orders.csv",
        "id,customer_id,placed_at,total,currency,discount_code,free_shipping
o1,c1,2024-03-01T10:00:00Z,19.99,USD,,yes
o2,c2,2024-03-02T10:00:00Z,5,EUR,WELCOME10,0
",
    );
    let orders_json = write(
        dir.path(),
        "orders.ndjson",
        r#"{"id":"o1","customer_id":"c1","placed_at":"2024-03-01T10:00:00Z","total":19.99,"currency":"USD","free_shipping":true}
{"id":"o2","customer_id":"c2","placed_at":"2024-03-02T11:00:00+01:00","total":"5.00","currency":"EUR","discount_code":"WELCOME10","free_shipping":"0"}
"#,
    );
    let events_csv = write(
        dir.path(),
        "events.csv",
        "customer_id,kind,occurred_at,properties,id
c1,visit,2024-03-01T10:00:00+01:00,\"{\"\"source\"\":\"\"ads\"\",\"\"n\"\":1}\",
c2,product_view,2024-03-02T09:00:00Z,,e2
",
    );
    let events_json = write(
        dir.path(),
        "events.jsonl",
        r#"{"customer_id":"c1","kind":"visit","occurred_at":"2024-03-01T09:00:00Z","properties":{"n":1,"source":"ads"}}
{"id":"e2","customer_id":"c2","kind":"product_view","occurred_at":"2024-03-02T09:00:00Z","properties":null}
"#,
    );

    for ((backend, a), (_, b)) in csv_stores.iter().zip(json_stores.iter()) {
        for (kind, csv, json) in [
            (ImportKind::Customers, &customers_csv, &customers_json),
            (ImportKind::Orders, &orders_csv, &orders_json),
            (ImportKind::Events, &events_csv, &events_json),
        ] {
            let r = import(a, kind, csv, false).await;
            assert!(r.is_clean() && r.imported == 2, "{backend} {kind}: {r}");
            let r = import(b, kind, json, false).await;
            assert!(r.is_clean() && r.imported == 2, "{backend} {kind}: {r}");
        }
        for table in ["customers", "orders", "events"] {
            let rows = dump(a, table).await;
            assert_eq!(rows.len(), 2);
            assert_eq!(rows, dump(b, table).await, "{backend} {table}");
        }
        a.close().await;
        b.close().await;
    }
}

#[tokio::test]
async fn load_synthetic_writes_the_generated_shop() {
    let dir = tempfile::tempdir().unwrap();
    let as_of = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
    let customers = 3000;
    let mut generator = ShopGenerator::new(customers, 11, as_of);
    let (mut orders, mut events) = (0i64, 0i64);
    while let Some(chunk) = generator.next_chunk(700) {
        orders += chunk.orders.len() as i64;
        events += chunk.events.len() as i64;
    }
    for (backend, store) in testkit::every_backend(dir.path()).await {
        for _ in 0..2 {
            let report = store
                .load_synthetic(customers, 11, as_of)
                .await
                .expect("load");
            assert_eq!(
                (
                    report.customers as i64,
                    report.orders as i64,
                    report.events as i64
                ),
                (customers as i64, orders, events),
                "{backend}"
            );
            assert_eq!(
                count(&store, "customers").await,
                customers as i64,
                "{backend}"
            );
            assert_eq!(count(&store, "orders").await, orders, "{backend}");
            assert_eq!(count(&store, "events").await, events, "{backend}");
        }
        store.close().await;
    }
}

/// Load speed at `CAMPAIGND_BENCH_CUSTOMERS` customers (default 100k); run with
/// `cargo test --release -p campaignd-store --test import -- --ignored --nocapture load_speed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn load_speed() {
    let customers: u64 = std::env::var("CAMPAIGND_BENCH_CUSTOMERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let as_of = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
    for (backend, store) in testkit::every_backend(dir.path()).await {
        let r = store
            .load_synthetic(customers, 1, as_of)
            .await
            .expect("load");
        println!(
            "{backend}: {} customers, {} orders, {} events = {} rows in {:.1}s: {:.0} rows/s",
            r.customers,
            r.orders,
            r.events,
            r.rows(),
            r.elapsed.as_secs_f64(),
            r.rows_per_sec()
        );
        store.close().await;
    }
}

/// Values that would break a naive bulk path (COPY's text format on Postgres, a JSON batch on SQLite):
/// tabs, backslashes, a literal `\N`, quotes, newlines and carriage returns arrive byte for byte on both
/// backends; a NUL, which Postgres text cannot hold, is refused by line on both and the rest is written.
#[tokio::test]
async fn awkward_text_round_trips_and_nul_is_refused_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let customers = write(
        dir.path(),
        "customers.csv",
        "id,first_name,last_name,city\n\
         c1,\"tab\there\",back\\slash,\\N\n\
         c2,\"say \"\"hi\"\"\",\"two\nlines\",\"cr\rin\"\n\
         c3,nul\0here,,\n\
         c4,{\"json\":1},'quote',\\t\\n\n",
    );
    let events = write(
        dir.path(),
        "events.jsonl",
        "{\"id\":\"e1\",\"customer_id\":\"c1\",\"kind\":\"visit\",\"occurred_at\":\"2024-03-01T10:00:00Z\",\
         \"properties\":{\"q\":\"a\\tb\\\\c\\nd\",\"k\\\\\":\"\\\\N\"}}\n\
         {\"id\":\"e2\",\"customer_id\":\"c1\",\"kind\":\"vi\\u0000sit\",\"occurred_at\":\"2024-03-01T10:00:00Z\"}\n",
    );
    for (backend, store) in testkit::every_backend(dir.path()).await {
        let r = import(&store, ImportKind::Customers, &customers, false).await;
        assert_eq!(
            errors(&r),
            vec![format!(
                "{}:5: first_name: contains a NUL character",
                customers.display()
            )],
            "{backend}"
        );
        assert_eq!(r.imported, 3, "{backend}");
        let r = import(&store, ImportKind::Events, &events, false).await;
        assert_eq!(
            errors(&r),
            vec![format!(
                "{}:2: kind: contains a NUL character",
                events.display()
            )],
            "{backend}"
        );
        let rows = dump(&store, "customers").await;
        let names: Vec<String> = rows
            .iter()
            .map(|r| {
                let f: Vec<&str> = r.split('|').collect();
                format!("{}|{}|{}|{}", f[0], f[3], f[4], f[6])
            })
            .collect();
        assert_eq!(
            names,
            vec![
                "c1|tab\there|back\\slash|\\N",
                "c2|say \"hi\"|two\nlines|cr\rin",
                "c4|{\"json\":1}|'quote'|\\t\\n",
            ],
            "{backend}"
        );
        let props: Vec<String> = match store.pool() {
            Pool::Sqlite(p) => sqlx::query_scalar("SELECT properties FROM events")
                .fetch_all(p)
                .await
                .unwrap(),
            Pool::Postgres(p) => sqlx::query_scalar("SELECT properties::text FROM events")
                .fetch_all(p)
                .await
                .unwrap(),
        };
        assert_eq!(props.len(), 1, "{backend}");
        let v: serde_json::Value = serde_json::from_str(&props[0]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"q": "a\tb\\c\nd", "k\\": "\\N"}),
            "{backend}"
        );
        store.close().await;
    }
}

/// The bulk paths write like any other writer: re-importing a customer whose email changed bumps its
/// `identity_version` (migration 0011's trigger) and one re-imported unchanged keeps it, on both backends;
/// after an orders and an events import (on Postgres a bulk transaction that sets the customer keys aside)
/// the keys are back, so a row naming no customer is still refused by the database itself.
#[tokio::test]
async fn bulk_writes_fire_identity_triggers_and_keep_customer_keys() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(
        dir.path(),
        "first.csv",
        "id,email\nc1,one@example.com\nc2,two@example.com\n",
    );
    let second = write(
        dir.path(),
        "second.csv",
        "id,email\nc1,new@example.com\nc2,two@example.com\n",
    );
    let orders = write(
        dir.path(),
        "orders.csv",
        "id,customer_id,placed_at,total\no1,c1,2024-03-01T10:00:00Z,10\no2,zz,2024-03-01T10:00:00Z,5\n",
    );
    let events = write(
        dir.path(),
        "events.csv",
        "id,customer_id,kind,occurred_at\ne1,c2,visit,2024-03-01T10:00:00Z\n",
    );
    for (backend, store) in testkit::every_backend(dir.path()).await {
        for path in [&first, &second] {
            let r = import(&store, ImportKind::Customers, path, false).await;
            assert_eq!((r.imported, r.rejected), (2, 0), "{backend}");
        }
        let sql = "SELECT id || ':' || identity_version FROM customers ORDER BY id";
        let versions: Vec<String> = match store.pool() {
            Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
            Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
        };
        assert_eq!(versions, vec!["c1:1", "c2:0"], "{backend}");

        let r = import(&store, ImportKind::Orders, &orders, false).await;
        assert_eq!(
            errors(&r),
            vec![format!(
                "{}:3: unknown customer_id \"zz\"",
                orders.display()
            )],
            "{backend}"
        );
        assert_eq!(r.imported, 1, "{backend}");
        let r = import(&store, ImportKind::Events, &events, false).await;
        assert_eq!((r.imported, r.rejected), (1, 0), "{backend}");
        assert_eq!(count(&store, "orders").await, 1, "{backend}");
        assert_eq!(count(&store, "events").await, 1, "{backend}");

        let orphan = match store.pool() {
            Pool::Sqlite(p) => sqlx::query(
                "INSERT INTO orders (id, customer_id, placed_at, total) VALUES ('o9', 'zz', 0, 1)",
            )
            .execute(p)
            .await
            .map(|_| ()),
            Pool::Postgres(p) => sqlx::query(
                "INSERT INTO orders (id, customer_id, placed_at, total) VALUES ('o9', 'zz', now(), 1)",
            )
            .execute(p)
            .await
            .map(|_| ()),
        };
        let err = orphan.expect_err("an order naming no customer is refused");
        assert!(
            err.to_string().to_lowercase().contains("foreign key"),
            "{backend}: {err}"
        );
        if let Pool::Postgres(p) = store.pool() {
            let keys: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_constraint WHERE contype = 'f' \
                 AND confrelid = 'customers'::regclass \
                 AND conrelid IN ('orders'::regclass, 'events'::regclass) AND convalidated",
            )
            .fetch_one(p)
            .await
            .unwrap();
            assert_eq!(keys, 2, "{backend}");
        }
        store.close().await;
    }
}
