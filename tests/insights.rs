//! End-to-end KPIs, holdouts, lift and creative fatigue through the real binary (issue 11), on SQLite
//! always and on Postgres when CAMPAIGND_TEST_PG_URL is set:
//! - a holdout never reaches the platform: the fake Meta never receives a held-out customer's hash,
//!   and a holdout added later removes the held-out members already synced;
//! - the lift `report --lift` prints agrees with an independent plain-Rust recomputation (Wilson,
//!   Newcombe, Welch) from the orders the test itself wrote;
//! - `kpis` counts the orders of segment members per period;
//! - a creative whose CTR decays (the sandbox's `creative_fatigue`) is rotated before its period is
//!   over, with the reason recorded, while an identical set without fatigue is not.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use campaignd_core::holdout::{default_salt, held_out};
use campaignd_core::identifiers::sha256_hex;
use campaignd_fakes::FakeMeta;
use campaignd_store::experiments::Group;
use campaignd_store::Store;
use chrono::{Duration, TimeZone, Utc};
use common::{blocking, Env};

const TOKEN: &str = "meta-test-token-123";
const N: usize = 600;
const SHARE: f64 = 0.25;

fn id(i: usize) -> String {
    format!("c{i:04}")
}

fn hash(i: usize) -> String {
    sha256_hex(&format!("user{i}@example.com"))
}

/// Sync A holds out SHARE from the start; sync B exists when `b` is given (its extra keys).
fn config(store_url: &str, base_url: &str, b: Option<&str>) -> String {
    let b = b
        .map(|extra| {
            format!(
                "[[sync]]\nsegment = \"buyers\"\ndestination = \"meta_ads\"\naudience_name = \"Buyers B\"\n{extra}\n"
            )
        })
        .unwrap_or_default();
    format!(
        r#"
[store]
url = "{store_url}"

[[segment]]
name = "buyers"
rule = 'orders.count() >= 1'

[destinations.meta_ads]
kind = "meta"
base_url = "{base_url}"
ad_account_id = "act_1234567890"
access_token = {{ env = "META_ACCESS_TOKEN" }}

[[sync]]
segment = "buyers"
destination = "meta_ads"
audience_name = "Buyers A"
holdout = {SHARE}

{b}"#
    )
}

fn run_ok(env: &Arc<Env>, args: Vec<String>) -> impl FnOnce() -> String + Send + 'static {
    let env = env.clone();
    move || {
        let out = env
            .cmd()
            .env("META_ACCESS_TOKEN", TOKEN)
            .args(&args)
            .assert()
            .success();
        String::from_utf8_lossy(&out.get_output().stdout).to_string()
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Wilson score interval, written out again from Wilson (1927) for the test.
fn wilson(x: f64, n: f64) -> (f64, f64) {
    let z = 1.959_963_984_540_054_f64;
    let p = x / n;
    let c = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let h = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (c - h, c + h)
}

fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    (
        m,
        xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holdout_never_leaves_and_lift_matches_an_independent_computation_sqlite() {
    holdout_and_lift("sqlite://{DIR}/shop.db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holdout_never_leaves_and_lift_matches_an_independent_computation_postgres() {
    let Some(url) = campaignd_store::testkit::fresh_pg_database().await.unwrap() else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
        return;
    };
    holdout_and_lift(&url).await;
}

async fn holdout_and_lift(store_url: &str) {
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    let env = Arc::new(Env::new(&config(store_url, fake.base_url(), None)));
    let url = store_url.replace("{DIR}", &env.dir.path().display().to_string());
    let mut customers = String::from("id,email,country,consent_ads,consent_email,created_at\n");
    let mut orders = String::from("id,customer_id,placed_at,total\n");
    for i in 1..=N {
        customers.push_str(&format!(
            "{},user{i}@example.com,US,true,true,2024-01-01T00:00:00Z\n",
            id(i)
        ));
        orders.push_str(&format!("o{i:04},{},2024-03-01T00:00:00Z,10\n", id(i)));
    }
    env.write("customers.csv", &customers);
    env.write("orders.csv", &orders);
    for a in [
        args(&["import", "customers", "customers.csv"]),
        args(&["import", "orders", "orders.csv"]),
        args(&["segments", "recompute", "--as-of", "2024-06-01T00:00:00Z"]),
    ] {
        blocking(run_ok(&env, a)).await;
    }

    // The groups by the documented rule: SHA-256(salt ‖ 0 ‖ id) bucket under the share.
    let salt = default_salt("buyers", "meta_ads");
    let holdout: BTreeSet<usize> = (1..=N)
        .filter(|&i| held_out(&salt, SHARE, &id(i)))
        .collect();
    let treatment: BTreeSet<usize> = (1..=N).filter(|i| !holdout.contains(i)).collect();
    assert!((100..200).contains(&holdout.len()), "{}", holdout.len());
    let hashes = |s: &BTreeSet<usize>| s.iter().map(|&i| hash(i)).collect::<BTreeSet<_>>();

    let out = blocking(run_ok(&env, args(&["sync"]))).await;
    assert!(
        out.contains(&format!("{} held out", holdout.len())),
        "{out}"
    );
    let a = fake.audience_id("Buyers A").expect("audience A");
    assert_eq!(
        fake.members(&a),
        hashes(&treatment),
        "A holds exactly the treatment"
    );
    // On the platform's side: no held-out hash was ever received, in any request.
    let received = fake.added_values();
    assert!(
        received.is_disjoint(&hashes(&holdout)),
        "a held-out hash reached the fake"
    );

    // The store recorded the same groups.
    let store = Store::connect(&url).await.unwrap();
    let groups = store.holdout_groups("meta_ads", "Buyers A").await.unwrap();
    let recorded: BTreeSet<String> = groups
        .iter()
        .filter(|(_, g)| **g == Group::Holdout)
        .map(|(c, _)| c.clone())
        .collect();
    assert_eq!(
        recorded,
        holdout.iter().map(|&i| id(i)).collect::<BTreeSet<_>>()
    );

    // A second sync of the segment without a holdout sends everyone.
    std::fs::write(&env.config, config(&url, fake.base_url(), Some(""))).unwrap();
    blocking(run_ok(&env, args(&["sync"]))).await;
    let b = fake.audience_id("Buyers B").expect("audience B");
    assert_eq!(fake.members(&b).len(), N, "B has no holdout yet");

    // A holdout added later: the held-out members B already holds are removed.
    let with_holdout = format!("holdout = {SHARE}");
    std::fs::write(
        &env.config,
        config(&url, fake.base_url(), Some(&with_holdout)),
    )
    .unwrap();
    let out = blocking(run_ok(&env, args(&["sync"]))).await;
    assert!(out.contains("held out"), "{out}");
    assert_eq!(
        fake.members(&b),
        hashes(&treatment),
        "B lost its held-out members"
    );
    // Another run sends nothing new, and A's held-out members were never sent at all.
    let calls = fake.users_calls();
    blocking(run_ok(&env, args(&["sync"]))).await;
    assert_eq!(fake.users_calls(), calls);
    assert_eq!(fake.members(&a), hashes(&treatment));

    // The shop's response: orders a day after assignment. Treatment i converts when i % 3 == 0,
    // holdout when i % 6 == 0, for 10 + (i % 7) * 5.
    let t0 = Utc::now() + Duration::days(1);
    let total = |i: usize| 10.0 + (i % 7) as f64 * 5.0;
    let converts = |i: usize| {
        if holdout.contains(&i) {
            i.is_multiple_of(6)
        } else {
            i.is_multiple_of(3)
        }
    };
    let mut response = String::from("id,customer_id,placed_at,total\n");
    for i in (1..=N).filter(|&i| converts(i)) {
        response.push_str(&format!(
            "r{i:04},{},{},{}\n",
            id(i),
            t0.to_rfc3339(),
            total(i)
        ));
    }
    env.write("response.csv", &response);
    blocking(run_ok(&env, args(&["import", "orders", "response.csv"]))).await;

    let as_of = (Utc::now() + Duration::days(20)).to_rfc3339();
    let out = blocking(run_ok(
        &env,
        args(&["report", "--lift", "--format", "json", "--as-of", &as_of]),
    ))
    .await;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json");
    assert_eq!(rows.len(), 2, "{out}");
    let row = rows
        .iter()
        .find(|r| r["audience"] == "Buyers A")
        .expect("A's lift");
    let l = &row["lift"];

    // Independent recomputation from the test's own data.
    let (nt, nh) = (treatment.len() as f64, holdout.len() as f64);
    let xt = treatment.iter().filter(|&&i| converts(i)).count() as f64;
    let xh = holdout.iter().filter(|&&i| converts(i)).count() as f64;
    assert_eq!(l["treatment"]["members"].as_f64(), Some(nt));
    assert_eq!(l["holdout"]["members"].as_f64(), Some(nh));
    assert_eq!(l["treatment"]["converters"].as_f64(), Some(xt));
    assert_eq!(l["holdout"]["converters"].as_f64(), Some(xh));
    let (pt, ph) = (xt / nt, xh / nh);
    let (lt, ut) = wilson(xt, nt);
    let (lh, uh) = wilson(xh, nh);
    let lo = pt - ph - ((pt - lt).powi(2) + (uh - ph).powi(2)).sqrt();
    let hi = pt - ph + ((ut - pt).powi(2) + (ph - lh).powi(2)).sqrt();
    let conv = &l["conversion"];
    let f = |v: &serde_json::Value| v.as_f64().expect("number");
    assert!(close(f(&conv["absolute"]), pt - ph, 1e-12), "{conv}");
    assert!(
        close(f(&conv["absolute_interval"]["low"]), lo, 1e-9),
        "{conv} vs {lo}"
    );
    assert!(
        close(f(&conv["absolute_interval"]["high"]), hi, 1e-9),
        "{conv} vs {hi}"
    );
    assert!(lo > 0.0, "a 33% vs 17% conversion is a real lift: {conv}");
    assert_eq!(l["indistinguishable"], false);
    assert!(
        close(f(&l["treatment"]["conversion_interval"]["low"]), lt, 1e-9),
        "{l}"
    );

    // Revenue per member: Welch's interval is centred on the difference of means, and its
    // half-width is t(0.975, df) standard errors with df in the hundreds (t between 1.96 and 1.975).
    let per_member = |s: &BTreeSet<usize>| {
        s.iter()
            .map(|&i| if converts(i) { total(i) } else { 0.0 })
            .collect::<Vec<_>>()
    };
    let (mt, vt) = mean_var(&per_member(&treatment));
    let (mh, vh) = mean_var(&per_member(&holdout));
    let se = (vt / nt + vh / nh).sqrt();
    let rpm = &l["revenue_per_member"];
    assert!(close(f(&rpm["absolute"]), mt - mh, 1e-9), "{rpm}");
    let (rlo, rhi) = (
        f(&rpm["absolute_interval"]["low"]),
        f(&rpm["absolute_interval"]["high"]),
    );
    assert!(close((rlo + rhi) / 2.0, mt - mh, 1e-9), "{rpm}");
    let t = (rhi - rlo) / 2.0 / se;
    assert!((1.96..1.975).contains(&t), "t = {t}");

    // The table form names the methods and the flag state.
    let table = blocking(run_ok(&env, args(&["report", "--lift", "--as-of", &as_of]))).await;
    assert!(table.contains("Newcombe hybrid score interval"), "{table}");
    assert!(table.contains("Welch t interval"), "{table}");

    // KPIs: the month of the response orders counts exactly them, for all N members.
    let until = (t0 + Duration::days(1)).date_naive().to_string();
    let out = blocking(run_ok(
        &env,
        args(&[
            "kpis",
            "--since",
            "2024-06-01",
            "--until",
            &until,
            "--by",
            "segment,month",
            "--format",
            "json",
        ]),
    ))
    .await;
    let kpis: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json");
    let month = t0.date_naive().format("%Y-%m-01").to_string();
    let k = kpis
        .iter()
        .find(|r| r["segment"] == "buyers" && r["period"] == month.as_str())
        .unwrap_or_else(|| panic!("{month} in {out}"));
    let n_orders = (1..=N).filter(|&i| converts(i)).count();
    let revenue: f64 = (1..=N).filter(|&i| converts(i)).map(total).sum();
    assert_eq!(k["members"].as_u64(), Some(N as u64), "{k}");
    assert_eq!(k["orders"].as_u64(), Some(n_orders as u64), "{k}");
    assert!(close(f(&k["revenue"]), revenue, 1e-6), "{k}");
    assert!(close(f(&k["aov"]), revenue / n_orders as f64, 1e-9), "{k}");
    assert!(
        close(f(&k["revenue_per_member"]), revenue / N as f64, 1e-9),
        "{k}"
    );
    // The March 2024 orders came before anyone joined (recompute of 2024-06-01): not counted.
    assert!(kpis.iter().all(|r| r["period"] != "2024-03-01"), "{out}");
    store.close().await;
}

fn fatigue_config(store_url: &str) -> String {
    let set = |name: &str, object: &str, fatigue: &str| {
        format!(
            r#"
[[creative_set]]
name = "{name}"
segment = "everyone"
destination = "sandbox"
object_id = "{object}"
rotate_every = "14d"
strategy = "round_robin"
{fatigue}
variants = [
  {{ id = "{name}_a", creative_id = "900001" }},
  {{ id = "{name}_b", creative_id = "900002" }},
]
"#
        )
    };
    format!(
        r#"
[store]
url = "{store_url}"

[[segment]]
name = "everyone"
sql = "SELECT id AS customer_id FROM customers"

[destinations.sandbox]
kind = "sandbox"
path = "{{DIR}}/sandbox"
creative_fatigue = {{ "900001" = 0.15 }}
{}{}"#,
        set(
            "watched",
            "ad-watched",
            r#"fatigue = { metric = "ctr", below = 0.7, min_impressions = 1000, window = "2d" }"#
        ),
        set("unwatched", "ad-unwatched", "")
    )
}

fn fatigue_rotates_early(store_url: &str) {
    let env = Env::new(&fatigue_config(store_url));
    let url = store_url.replace("{DIR}", &env.dir.path().display().to_string());
    let start = Utc
        .with_ymd_and_hms(2025, 3, 3, 0, 0, 0)
        .single()
        .expect("time");
    let run = |a: &[&str]| {
        let out = env.cmd().args(a).assert().success();
        String::from_utf8_lossy(&out.get_output().stdout).to_string()
    };
    let mut early_day = None;
    for d in 0..12 {
        let t = start + Duration::days(d);
        let out = run(&["rotate", "--as-of", &t.to_rfc3339()]);
        if early_day.is_none() && out.contains("early: fatigue") {
            early_day = Some(d);
            assert!(out.contains("watched"), "{out}");
        }
        let day = t.date_naive().to_string();
        run(&["metrics", "pull", "--since", &day, "--until", &day]);
    }
    let day = early_day.expect("the fatigued creative rotated early");
    // It needs a 2-day baseline, 2 recent days after it and a 30 % fall at 15 % a day.
    assert!((4..12).contains(&day), "day {day}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (watched, unwatched, early) = rt.block_on(async {
        let store = Store::connect(&url).await.expect("store");
        let w = store.rotation_history("watched").await.expect("history");
        let u = store.rotation_history("unwatched").await.expect("history");
        let e = store.early_rotations(10).await.expect("early");
        store.close().await;
        (w, u, e)
    });
    let variants: Vec<&str> = watched.iter().map(|r| r.variant_id.as_str()).collect();
    assert_eq!(&variants[..2], ["watched_a", "watched_b"], "{variants:?}");
    assert_eq!(
        watched[1].live_from,
        start + Duration::days(day),
        "rotated on the day fatigue was detected"
    );
    // The same decaying creative without a fatigue rule waits for its 14 days.
    assert_eq!(unwatched.len(), 1, "{unwatched:?}");
    let reasons: BTreeMap<&str, &str> = early
        .iter()
        .map(|e| (e.set_name.as_str(), e.reason.as_str()))
        .collect();
    let reason = reasons.get("watched").expect("reason recorded");
    assert!(reason.starts_with("fatigue: ctr"), "{reason}");
    assert!(reason.contains("of its first period"), "{reason}");
    assert!(!reasons.contains_key("unwatched"));
}

#[test]
fn fatigued_creative_rotates_early_sqlite() {
    fatigue_rotates_early("sqlite://{DIR}/shop.db");
}

#[test]
fn fatigued_creative_rotates_early_postgres() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let Some(url) = rt
        .block_on(campaignd_store::testkit::fresh_pg_database())
        .unwrap()
    else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
        return;
    };
    fatigue_rotates_early(&url);
}

/// `campaignd demo` shows the KPI table and the lift with its interval (the default config holds out
/// 20 % of cart abandoners and lapsed buyers; the sandbox converts treated members at 18 %, others at 8 %).
#[test]
fn demo_prints_kpis_and_lift() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = assert_cmd::Command::cargo_bin("campaignd")
        .unwrap()
        .current_dir(dir.path())
        .arg("--config")
        .arg(root.join("config/default.toml"))
        .args([
            "demo",
            "--customers",
            "3000",
            "--as-of",
            "2025-06-01T00:00:00Z",
        ])
        .arg("--db")
        .arg(dir.path().join("demo.db"))
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("first-party KPIs by segment"), "{text}");
    assert!(
        regex_like(&text, "cart_abandoners", "held out (holdout, never sent)"),
        "{text}"
    );
    assert!(text.contains("lift, treatment vs holdout"), "{text}");
    assert!(text.contains("lapsed -> sandbox (Lapsed buyers)"), "{text}");
    assert!(text.contains("Newcombe hybrid score interval"), "{text}");
    // The sandbox fades the urgency creative (`creative_fatigue`), so the set's fatigue rule rotates it
    // out before its week is over, and the store records why.
    assert!(
        text.contains("early rotations (creative fatigue, before the set's period was over)"),
        "{text}"
    );
    assert!(
        regex_like(&text, "urgency →", "fatigue: ctr"),
        "no early rotation of the fading creative: {text}"
    );
    let early = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = format!("sqlite://{}", dir.path().join("demo.db").display());
        let store = campaignd_store::Store::connect(&url).await.expect("store");
        let early = store.early_rotations(50).await.expect("early rotations");
        store.close().await;
        early
    });
    assert!(!early.is_empty(), "the demo recorded no early rotation");
    for r in &early {
        assert_eq!(r.set_name, "abandoners-sandbox");
        assert_ne!(
            r.variant_id, "urgency",
            "the fading creative was rotated in: {}",
            r.reason
        );
        assert!(r.reason.starts_with("fatigue: ctr"), "{}", r.reason);
    }
}

/// Whether some line contains both `a` and `b`.
fn regex_like(text: &str, a: &str, b: &str) -> bool {
    text.lines().any(|l| l.contains(a) && l.contains(b))
}

/// `campaignd demo` places its campaign in the past (the sync 35 days before now, the simulated
/// orders in the 30 days after it), so `report --lift` at the real now — no `--as-of` — sees the
/// converters, with exactly the figures the store holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_campaign_lies_in_the_past_so_lift_at_now_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = root.join("config/default.toml");
    let cmd = |args: &[&str]| {
        let mut c = assert_cmd::Command::cargo_bin("campaignd").unwrap();
        c.current_dir(dir.path())
            .env(
                "CAMPAIGND__STORE__URL",
                format!("sqlite://{}", db.display()),
            )
            .arg("--config")
            .arg(&config)
            .args(args);
        c
    };
    let mut demo = cmd(&["demo", "--customers", "2000", "--db"]);
    demo.arg(&db);
    blocking(move || {
        demo.assert().success();
    })
    .await;
    let mut report = cmd(&["report", "--lift", "--format", "json"]);
    let out = blocking(move || {
        String::from_utf8_lossy(&report.assert().success().get_output().stdout).to_string()
    })
    .await;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json");
    let expected = common::sqlite_lift_figures(&db).await;
    assert!(rows.len() >= 2, "{out}");
    for r in &rows {
        let audience = r["audience"].as_str().expect("audience").to_string();
        for grp in ["treatment", "holdout"] {
            let g = &r["lift"][grp];
            let (members, converters, orders, revenue) = expected
                .get(&(audience.clone(), grp.to_string()))
                .copied()
                .unwrap_or_else(|| panic!("{audience}/{grp} not in the store"));
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
            assert_eq!(g["orders"].as_u64(), Some(orders), "{audience} {grp}: {g}");
            let got = g["revenue"].as_f64().expect("revenue");
            assert!(
                close(got, revenue, 1e-6),
                "{audience} {grp}: {got} vs {revenue}"
            );
        }
        let treated = r["lift"]["treatment"]["converters"].as_u64().unwrap_or(0);
        assert!(treated > 0, "no treated converter at now: {r}");
    }
    // The sync run records when it ran (now) and the as-of it used (35 days earlier).
    let mut runs = cmd(&["runs", "--json", "--job", "sync"]);
    let out = blocking(move || {
        String::from_utf8_lossy(&runs.assert().success().get_output().stdout).to_string()
    })
    .await;
    let runs: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json");
    let sync = runs
        .iter()
        .find(|r| r["job"] == "sync")
        .expect("a sync run");
    let started: chrono::DateTime<Utc> = sync["started_at"].as_str().unwrap().parse().unwrap();
    let as_of: chrono::DateTime<Utc> = sync["counts"]["as_of"]
        .as_str()
        .unwrap_or_else(|| panic!("no as_of in {sync}"))
        .parse()
        .unwrap();
    assert!((Utc::now() - started).num_minutes() < 30, "{sync}");
    // `started_at` is kept to the second, the as-of to the nanosecond: 35 days give or take the
    // seconds the demo took before its sync.
    let off = (started - as_of - chrono::Duration::days(35))
        .num_seconds()
        .abs();
    assert!(off < 600, "{off}s off 35 days: {sync}");
}

/// `sync --as-of` dates the holdout assignments in the past on both backends, so orders placed
/// after that instant count in `report --lift` at now; an as-of in the future is refused (exit 2).
async fn sync_as_of_dates_the_assignments(store_url: &str) {
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    let env = Arc::new(Env::new(&config(store_url, fake.base_url(), None)));
    let n = 200;
    let mut customers = String::from("id,email,country,consent_ads,consent_email,created_at\n");
    let mut orders = String::from("id,customer_id,placed_at,total\n");
    for i in 1..=n {
        customers.push_str(&format!(
            "{},user{i}@example.com,US,true,true,2024-01-01T00:00:00Z\n",
            id(i)
        ));
        orders.push_str(&format!("o{i:04},{},2024-03-01T00:00:00Z,10\n", id(i)));
    }
    env.write("customers.csv", &customers);
    env.write("orders.csv", &orders);
    for a in [
        args(&["import", "customers", "customers.csv"]),
        args(&["import", "orders", "orders.csv"]),
        args(&["segments", "recompute", "--as-of", "2024-06-01T00:00:00Z"]),
    ] {
        blocking(run_ok(&env, a)).await;
    }
    let future = (Utc::now() + Duration::days(2)).to_rfc3339();
    let e = env.clone();
    let refused = blocking(move || {
        let out = e
            .cmd()
            .env("META_ACCESS_TOKEN", TOKEN)
            .args(["sync", "--as-of", &future])
            .assert()
            .code(2);
        String::from_utf8_lossy(&out.get_output().stderr).to_string()
    })
    .await;
    assert!(refused.contains("in the future"), "{refused}");

    let synced_at = Utc::now() - Duration::days(35);
    blocking(run_ok(
        &env,
        args(&["sync", "--as-of", &synced_at.to_rfc3339()]),
    ))
    .await;
    let salt = default_salt("buyers", "meta_ads");
    let holdout: BTreeSet<usize> = (1..=n)
        .filter(|&i| held_out(&salt, SHARE, &id(i)))
        .collect();
    // Every third customer orders 3 days after the sync; one more order 40 days after it (outside
    // the 30-day window) must not count.
    let converts = |i: usize| i.is_multiple_of(3);
    let mut response = String::from("id,customer_id,placed_at,total\n");
    for i in (1..=n).filter(|&i| converts(i)) {
        let t = synced_at + Duration::days(3);
        response.push_str(&format!("r{i:04},{},{},20\n", id(i), t.to_rfc3339()));
    }
    let late = synced_at + Duration::days(31);
    response.push_str(&format!("late,{},{},20\n", id(1), late.to_rfc3339()));
    env.write("response.csv", &response);
    blocking(run_ok(&env, args(&["import", "orders", "response.csv"]))).await;

    let out = blocking(run_ok(
        &env,
        args(&["report", "--lift", "--format", "json"]),
    ))
    .await;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json");
    let l = &rows[0]["lift"];
    let count = |held: bool| {
        (1..=n)
            .filter(|i| holdout.contains(i) == held && converts(*i))
            .count() as u64
    };
    assert_eq!(
        l["holdout"]["members"].as_u64(),
        Some(holdout.len() as u64),
        "{l}"
    );
    assert_eq!(
        l["treatment"]["converters"].as_u64(),
        Some(count(false)),
        "{l}"
    );
    assert_eq!(
        l["holdout"]["converters"].as_u64(),
        Some(count(true)),
        "{l}"
    );
    assert!(count(false) > 0 && count(true) > 0);
    assert_eq!(
        l["treatment"]["orders"].as_u64().unwrap() + l["holdout"]["orders"].as_u64().unwrap(),
        count(false) + count(true),
        "the order 31 days after the sync is outside the window: {l}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_as_of_dates_the_assignments_sqlite() {
    sync_as_of_dates_the_assignments("sqlite://{DIR}/shop.db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_as_of_dates_the_assignments_postgres() {
    let Some(url) = campaignd_store::testkit::fresh_pg_database().await.unwrap() else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
        return;
    };
    sync_as_of_dates_the_assignments(&url).await;
}
