//! The admin server's insight routes and page through the real daemon (`campaignd run` as a child)
//! over real HTTP: `/api/kpis`, `/api/lift`, `/api/fatigue`, `/api/segments`, the page and its
//! scripts. The JSON is checked against the store itself (the demo's SQLite store; on Postgres, when
//! CAMPAIGND_TEST_PG_URL is set, a shop imported and synced through the CLI), bad query parameters
//! against 400 with a message naming the parameter.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use campaignd_core::holdout::{default_salt, held_out};
use campaignd_store::kpis::{KpiQuery, Period};
use campaignd_store::Store;
use chrono::Utc;
use common::blocking;

/// A `campaignd run` child, killed on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `campaignd run` with no start-up tick (the store is already populated and must not change
/// under the test) and an admin port picked by the OS; returns it with its base URL.
async fn start(mut cmd: std::process::Command, log: &std::path::Path) -> (Daemon, String) {
    cmd.arg("run")
        .env("CAMPAIGND__ADMIN__BIND", "127.0.0.1:0")
        .env("CAMPAIGND__SCHEDULE__RUN_ON_START", "false")
        .env("CAMPAIGND__SCHEDULE__DEMO_IF_EMPTY", "false")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line
                .strip_prefix("campaignd running")
                .and_then(|l| l.split("http://").nth(1))
            {
                let _ = tx.send(addr.trim_end_matches('/').to_string());
            }
        }
    });
    let daemon = Daemon(child);
    let addr = blocking(move || rx.recv_timeout(Duration::from_secs(120))).await;
    let addr = addr.unwrap_or_else(|_| {
        panic!(
            "daemon did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    (daemon, format!("http://{addr}"))
}

/// Status, content type and body of a GET.
async fn get(url: &str) -> (u16, String, String) {
    let res = reqwest::get(url).await.unwrap();
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, ct, res.text().await.unwrap())
}

async fn get_json(url: &str) -> serde_json::Value {
    let (status, ct, body) = get(url).await;
    assert_eq!(status, 200, "{url}: {body}");
    assert!(ct.starts_with("application/json"), "{url}: {ct}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

/// JSON equality with numbers compared to 1e-12 relative (serde_json parses floats without
/// round-trip precision, so the last bit of a served ratio may differ from the store's value).
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::{Array, Number, Object};
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0)
        }
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b)),
        (Object(x), Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// A 400 whose JSON error or text names `mentions`.
async fn bad_request(url: &str, mentions: &str) {
    let (status, _, body) = get(url).await;
    assert_eq!(status, 400, "{url}: {body}");
    assert!(body.contains(mentions), "{url}: {body}");
}

/// Every route against the store; `lift` holds the expected (members, converters) per (audience,
/// group), computed by the caller without campaignd's lift code.
async fn check_routes(base: &str, store: &Store, lift: &BTreeMap<(String, String), (u64, u64)>) {
    // The page and the three assets it references.
    let (status, ct, page) = get(&format!("{base}/")).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    for (asset, kind) in [
        ("/assets/app.js", "text/javascript"),
        ("/assets/insights.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
    ] {
        assert!(page.contains(asset), "the page does not reference {asset}");
        let (status, ct, body) = get(&format!("{base}{asset}")).await;
        assert_eq!(status, 200, "{asset}");
        assert!(ct.starts_with(kind), "{asset}: {ct}");
        assert!(body.len() > 100, "{asset} is empty");
    }
    // The page script draws what the routes serve.
    let (_, _, script) = get(&format!("{base}/assets/insights.js")).await;
    for route in ["/api/kpis", "/api/lift", "/api/fatigue"] {
        assert!(script.contains(route), "insights.js does not fetch {route}");
    }

    // Lift: one row per sync with a holdout, counts as the store holds them.
    let rows = get_json(&format!("{base}/api/lift")).await;
    let rows = rows.as_array().expect("array");
    let audiences: std::collections::BTreeSet<&String> = lift.keys().map(|(a, _)| a).collect();
    assert_eq!(rows.len(), audiences.len(), "{rows:?}");
    for r in rows {
        let audience = r["audience"].as_str().expect("audience").to_string();
        for grp in ["treatment", "holdout"] {
            let (members, converters) = lift[&(audience.clone(), grp.to_string())];
            let g = &r["lift"][grp];
            assert_eq!(
                g["members"].as_u64(),
                Some(members),
                "{audience} {grp}: {g}"
            );
            assert_eq!(
                g["converters"].as_u64(),
                Some(converters),
                "{audience} {grp}: {g}"
            );
        }
        assert!(
            r["lift"]["treatment"]["converters"].as_u64() > Some(0),
            "{r}"
        );
        assert!(r["lift"]["conversion"]["method"].is_string(), "{r}");
    }
    bad_request(&format!("{base}/api/lift?window=0"), "window").await;
    bad_request(
        &format!("{base}/api/lift?window=soon"),
        "window: expected a whole number",
    )
    .await;
    bad_request(
        &format!("{base}/api/kpis?conversion_days=x"),
        "conversion_days: expected",
    )
    .await;

    // KPIs: exactly the store's rows for the same query.
    let until = Utc::now().date_naive();
    let served = get_json(&format!(
        "{base}/api/kpis?since=12w&until={until}&by=segment,month&conversion_days=30"
    ))
    .await;
    let query = KpiQuery {
        since: until - chrono::Duration::weeks(12),
        until,
        period: Period::Month,
        conversion_days: 30,
        segment: None,
    };
    let stored = serde_json::to_value(store.kpis(&query).await.unwrap()).unwrap();
    assert!(same_json(&served, &stored), "{served}\n!=\n{stored}");
    assert!(!served.as_array().unwrap().is_empty(), "no KPI rows");
    bad_request(&format!("{base}/api/kpis?by=segment,year"), "year").await;
    bad_request(&format!("{base}/api/kpis?until=someday"), "until").await;
    bad_request(
        &format!("{base}/api/kpis?conversion_days=0"),
        "conversion-days",
    )
    .await;

    // Fatigue: the early rotations the store recorded.
    let served = get_json(&format!("{base}/api/fatigue")).await;
    let stored = serde_json::to_value(store.early_rotations(50).await.unwrap()).unwrap();
    assert!(same_json(&served["early"], &stored), "{served} != {stored}");

    // Segments: every segment with the size the store holds.
    let served = get_json(&format!("{base}/api/segments")).await;
    let summaries = store.segment_summaries().await.unwrap();
    let list = served["segments"]
        .as_array()
        .unwrap_or_else(|| panic!("{served}"));
    assert_eq!(list.len(), summaries.len(), "{served}");
    for s in &summaries {
        let row = list
            .iter()
            .find(|r| r["name"] == s.name.as_str())
            .unwrap_or_else(|| panic!("{} missing: {served}", s.name));
        assert_eq!(row["size"].as_i64(), Some(s.size), "{row}");
    }
    bad_request(&format!("{base}/api/segments?since=yesterday"), "since").await;
}

/// SQLite: the demo's store (its campaign lies in the past, so the lift at now has converters).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_serve_the_demo_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = root.join("config/default.toml");
    let url = format!("sqlite://{}", db.display());
    let cmd = || {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("campaignd"));
        c.current_dir(dir.path())
            .env("CAMPAIGND__STORE__URL", &url)
            .arg("--config")
            .arg(&config);
        c
    };
    let mut demo = cmd();
    demo.args(["demo", "--customers", "2000", "--db"]).arg(&db);
    let out = blocking(move || demo.output().unwrap()).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: BTreeMap<(String, String), (u64, u64)> = common::sqlite_lift_figures(&db)
        .await
        .into_iter()
        .map(|(k, (m, c, _, _))| (k, (m, c)))
        .collect();
    let (_daemon, base) = start(cmd(), &dir.path().join("daemon.log")).await;
    let store = Store::connect(&url).await.unwrap();
    check_routes(&base, &store, &expected).await;
    store.close().await;
}

/// Postgres: a shop imported, recomputed and synced (with a holdout, dated 35 days ago) to the
/// sandbox through the CLI, then orders after the sync; expected lift from the documented hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_serve_a_postgres_store() {
    let Some(url) = campaignd_store::testkit::fresh_pg_database().await.unwrap() else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
        return;
    };
    let env = common::Env::new(&format!(
        r#"
[store]
url = "{url}"

[[segment]]
name = "buyers"
rule = "orders.count() >= 1"

[destinations.sandbox]
kind = "sandbox"
path = "{{DIR}}/sandbox"

[[sync]]
segment = "buyers"
destination = "sandbox"
audience_name = "Buyers"
holdout = 0.25
"#
    ));
    let n = 120;
    let synced_at = Utc::now() - chrono::Duration::days(35);
    let mut customers = String::from("id,email,country,consent_ads,consent_email,created_at\n");
    let mut orders = String::from("id,customer_id,placed_at,total\n");
    let mut response = orders.clone();
    for i in 1..=n {
        customers.push_str(&format!(
            "c{i:04},user{i}@example.com,US,true,true,2024-01-01T00:00:00Z\n"
        ));
        orders.push_str(&format!("o{i:04},c{i:04},2024-03-01T00:00:00Z,10\n"));
        if i % 4 == 0 {
            let t = synced_at + chrono::Duration::days(2);
            response.push_str(&format!("r{i:04},c{i:04},{},25\n", t.to_rfc3339()));
        }
    }
    env.write("customers.csv", &customers);
    env.write("orders.csv", &orders);
    env.write("response.csv", &response);
    let as_of = synced_at.to_rfc3339();
    for args in [
        vec!["import", "customers", "customers.csv"],
        vec!["import", "orders", "orders.csv"],
        vec!["segments", "recompute", "--as-of", "2024-06-01T00:00:00Z"],
        vec!["sync", "--as-of", &as_of],
        vec!["import", "orders", "response.csv"],
    ] {
        let mut cmd = env.cmd();
        cmd.args(&args);
        blocking(move || {
            cmd.assert().success();
        })
        .await;
    }
    let salt = default_salt("buyers", "sandbox");
    let mut expected: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for i in 1..=n {
        let grp = if held_out(&salt, 0.25, &format!("c{i:04}")) {
            "holdout"
        } else {
            "treatment"
        };
        let e = expected
            .entry(("Buyers".to_string(), grp.to_string()))
            .or_default();
        e.0 += 1;
        e.1 += u64::from(i % 4 == 0);
    }
    let (_daemon, base) = start(env.std_cmd(), &env.dir.path().join("daemon.log")).await;
    let store = Store::connect(&url).await.unwrap();
    check_routes(&base, &store, &expected).await;
    store.close().await;
}
