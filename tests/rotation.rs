//! End-to-end creative rotation, metrics pull and report through the real binary against the sandbox
//! (simulated ads with deterministic daily metrics), on SQLite always and on Postgres when
//! CAMPAIGND_TEST_PG_URL is set: ten simulated weeks per strategy with `--as-of`, Thompson sampling
//! finding the creative that converts twice as well, retirement, a failed swap recording nothing, a
//! re-pull not double counting, and the report's table, CSV and JSON agreeing with hand-computed sums.

mod common;

use std::collections::BTreeMap;

use campaignd_store::creatives::RotationRecord;
use campaignd_store::Store;
use chrono::{Duration, TimeZone, Utc};
use common::Env;

const WEEKS: i64 = 10;

fn segment(name: &str) -> String {
    format!("[[segment]]\nname = \"{name}\"\nsql = \"SELECT id AS customer_id FROM customers\"\n\n")
}

/// Four sets on four segments, one sandbox ad each (no audience of that name: 2,000 simulated people).
/// Creative 900002 converts at 8%, twice 900001's 4%; 900003 converts at 1%.
fn config(store_url: &str, extra_sandbox: &str) -> String {
    let mut c = format!("[store]\nurl = \"{store_url}\"\n\n");
    for s in ["seg_rr", "seg_best", "seg_ts", "seg_retire"] {
        c.push_str(&segment(s));
    }
    c.push_str(&format!(
        r#"
[destinations.sandbox]
kind = "sandbox"
path = "{{DIR}}/sandbox"
creative_cvr = {{ "900001" = 0.04, "900002" = 0.08, "900003" = 0.01 }}
{extra_sandbox}

[[creative_set]]
name = "rr"
segment = "seg_rr"
destination = "sandbox"
object_id = "ad-rr"
rotate_every = "7d"
strategy = "round_robin"
variants = [
  {{ id = "rr_a", creative_id = "900001" }},
  {{ id = "rr_b", creative_id = "900002" }},
  {{ id = "rr_c", creative_id = "900003" }},
]

[[creative_set]]
name = "best"
segment = "seg_best"
destination = "sandbox"
object_id = "ad-best"
rotate_every = "7d"
strategy = "best_ctr"
min_impressions = 10000
variants = [
  {{ id = "best_a", creative_id = "900001" }},
  {{ id = "best_b", creative_id = "900002" }},
  {{ id = "best_c", creative_id = "900003" }},
]

[[creative_set]]
name = "ts"
segment = "seg_ts"
destination = "sandbox"
object_id = "ad-ts"
rotate_every = "7d"
strategy = "thompson"
seed = 11
variants = [
  {{ id = "ts_a", name = "Your items are almost gone!", creative_id = "900001" }},
  {{ id = "ts_b", name = "Still thinking about it?", creative_id = "900002" }},
]

[[creative_set]]
name = "retire"
segment = "seg_retire"
destination = "sandbox"
object_id = "ad-retire"
rotate_every = "7d"
strategy = "round_robin"
min_impressions = 10000
retire_below_cvr = 0.02
variants = [
  {{ id = "ret_a", creative_id = "900001" }},
  {{ id = "ret_c", creative_id = "900003" }},
  {{ id = "ret_b", creative_id = "900002" }},
]
"#
    ));
    c
}

fn start() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 3, 0, 0, 0)
        .single()
        .expect("time")
}

fn run(env: &Env, args: &[&str]) -> String {
    let out = env.cmd().args(args).assert().success();
    String::from_utf8_lossy(&out.get_output().stdout).to_string()
}

/// Ten weeks: rotate at the start of each week, pull that week's days at its end.
fn simulate(env: &Env) {
    for w in 0..WEEKS {
        let t = start() + Duration::weeks(w);
        run(env, &["rotate", "--as-of", &t.to_rfc3339()]);
        let since = t.date_naive();
        let until = since + Duration::days(6);
        run(
            env,
            &[
                "metrics",
                "pull",
                "--since",
                &since.to_string(),
                "--until",
                &until.to_string(),
            ],
        );
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn history(store_url: &str, set: &str) -> Vec<RotationRecord> {
    rt().block_on(async {
        let store = Store::connect(store_url).await.expect("store");
        let h = store.rotation_history(set).await.expect("history");
        store.close().await;
        h
    })
}

fn live_per_week(h: &[RotationRecord]) -> Vec<String> {
    (0..WEEKS)
        .map(|w| {
            let noon = (start() + Duration::weeks(w) + Duration::hours(12)).timestamp();
            h.iter()
                .find(|r| r.covers(noon))
                .map(|r| r.variant_id.clone())
                .unwrap_or_default()
        })
        .collect()
}

fn report_json(env: &Env, by: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let until = (start() + Duration::weeks(WEEKS) - Duration::days(1)).date_naive();
    let out = run(
        env,
        &[
            "report",
            "--since",
            "2025-03-03",
            "--until",
            &until.to_string(),
            "--by",
            by,
            "--format",
            "json",
        ],
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json array");
    rows.into_iter()
        .map(|r| r.as_object().cloned().expect("object row"))
        .collect()
}

fn num(row: &serde_json::Map<String, serde_json::Value>, k: &str) -> f64 {
    row.get(k)
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| panic!("{k} in {row:?}"))
}

fn strategies_over_ten_weeks(store_url: &str) {
    let env = Env::new(&config(store_url, ""));
    let url = store_url.replace("{DIR}", &env.dir.path().display().to_string());
    simulate(&env);

    // round_robin: every variant in turn.
    let rr = live_per_week(&history(&url, "rr"));
    assert_eq!(
        rr,
        ["rr_a", "rr_b", "rr_c", "rr_a", "rr_b", "rr_c", "rr_a", "rr_b", "rr_c", "rr_a"],
        "round robin"
    );

    // best_ctr: explores each variant once (70k+ impressions a week > min_impressions), then keeps the
    // best CTR for every remaining week.
    let best = live_per_week(&history(&url, "best"));
    assert_eq!(&best[..3], ["best_a", "best_b", "best_c"], "{best:?}");
    let rows = report_json(&env, "segment,creative");
    let ctr_of = |id: &str| {
        rows.iter()
            .find(|r| r["creative"] == id)
            .map(|r| num(r, "clicks") / num(r, "impressions"))
            .expect("row")
    };
    let first3 = ["best_a", "best_b", "best_c"];
    let winner = first3
        .iter()
        .copied()
        .max_by(|a, b| ctr_of(a).total_cmp(&ctr_of(b)))
        .expect("winner");
    // The winner is judged on its first week; later weeks only add to it, so it stays.
    assert!(
        best[3..].iter().all(|v| v == winner),
        "best_ctr after exploring: {best:?}, winner {winner}"
    );

    // thompson: ts_b converts at twice ts_a's rate. Margin: ts_b live in at least 7 of the 10 weeks
    // (week 1 always shows the first variant; one more exploratory week is tolerated twice over).
    let ts = live_per_week(&history(&url, "ts"));
    let b_weeks = ts.iter().filter(|v| *v == "ts_b").count();
    assert_eq!(ts[0], "ts_a", "first rotate makes the first variant live");
    assert!(b_weeks >= 7, "ts_b live {b_weeks}/10 weeks: {ts:?}");
    // The sandbox shows the creative the history says is live.
    let state =
        campaignd_connectors::sandbox::creatives(&env.dir.path().join("sandbox")).expect("state");
    assert_eq!(
        state.objects["ad-ts"].creative_id,
        if ts[9] == "ts_b" { "900002" } else { "900001" }
    );

    // retirement: ret_c (1% CVR < 2%) is retired once judged and never comes back.
    let h = history(&url, "retire");
    let ret = live_per_week(&h);
    assert_eq!(&ret[..2], ["ret_a", "ret_c"], "{ret:?}");
    assert_eq!(
        ret.iter().filter(|v| *v == "ret_c").count(),
        1,
        "retired variant came back: {ret:?}"
    );
    assert!(
        ret[2..].iter().all(|v| v == "ret_a" || v == "ret_b"),
        "{ret:?}"
    );

    // Rerunning a period that is not over changes nothing.
    let before = history(&url, "rr").len();
    let t = start() + Duration::weeks(WEEKS - 1) + Duration::days(1);
    let out = run(&env, &["rotate", "--as-of", &t.to_rfc3339(), "--dry-run"]);
    assert!(out.contains("not due"), "{out}");
    run(&env, &["rotate", "--as-of", &t.to_rfc3339()]);
    assert_eq!(history(&url, "rr").len(), before);

    // The report equals hand-computed sums of the daily rows; a re-pull of the same days changes
    // nothing.
    let daily = report_json(&env, "segment,channel,creative,day");
    let by_creative = report_json(&env, "segment,channel,creative");
    let mut sums: BTreeMap<(String, String), [f64; 5]> = BTreeMap::new();
    for r in &daily {
        let key = (
            r["segment"].as_str().unwrap_or("").to_string(),
            r["creative"].as_str().unwrap_or("").to_string(),
        );
        let e = sums.entry(key).or_default();
        for (i, k) in ["impressions", "clicks", "conversions", "spend", "revenue"]
            .iter()
            .enumerate()
        {
            e[i] += num(r, k);
        }
    }
    assert_eq!(sums.len(), by_creative.len());
    for r in &by_creative {
        let key = (
            r["segment"].as_str().unwrap_or("").to_string(),
            r["creative"].as_str().unwrap_or("").to_string(),
        );
        let want = sums[&key];
        for (i, k) in ["impressions", "clicks", "conversions", "spend", "revenue"]
            .iter()
            .enumerate()
        {
            assert!(
                (num(r, k) - want[i]).abs() < 1e-6,
                "{key:?} {k}: {} vs {}",
                num(r, k),
                want[i]
            );
        }
        let ctr = want[1] / want[0];
        assert!((num(r, "ctr") - ctr).abs() < 1e-12, "{key:?} ctr");
        let cvr = want[2] / want[1];
        assert!((num(r, "cvr") - cvr).abs() < 1e-12, "{key:?} cvr");
        assert!(
            (num(r, "roas") - want[4] / want[3]).abs() < 1e-9,
            "{key:?} roas"
        );
    }
    let total_before: f64 = by_creative.iter().map(|r| num(r, "impressions")).sum();
    assert!(
        total_before > 100_000.0,
        "believable delivery: {total_before}"
    );
    run(
        &env,
        &[
            "metrics",
            "pull",
            "--since",
            "2025-03-03",
            "--until",
            "2025-05-11",
        ],
    );
    run(
        &env,
        &[
            "metrics",
            "pull",
            "--since",
            "2025-03-10",
            "--until",
            "2025-03-16",
        ],
    );
    let after = report_json(&env, "segment,channel,creative");
    assert_eq!(after.len(), by_creative.len());
    for (a, b) in after.iter().zip(&by_creative) {
        assert_eq!(a["segment"], b["segment"]);
        assert_eq!(a["creative"], b["creative"]);
        for k in [
            "impressions",
            "clicks",
            "conversions",
            "spend",
            "revenue",
            "ctr",
            "cvr",
            "cpa",
            "roas",
        ] {
            assert!(
                (num(a, k) - num(b, k)).abs() < 1e-9,
                "re-pull changed {k}: {a:?} vs {b:?}"
            );
        }
    }

    // Table, CSV and JSON carry the same numbers.
    let until = (start() + Duration::weeks(WEEKS) - Duration::days(1))
        .date_naive()
        .to_string();
    let args = |fmt: &'static str| -> Vec<String> {
        [
            "report",
            "--since",
            "2025-03-03",
            "--until",
            &until,
            "--by",
            "segment,channel,creative",
            "--format",
            fmt,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let csv_text = run(
        &env,
        &args("csv").iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let table = run(
        &env,
        &args("table").iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // No field here needs quoting, so a split parses it.
    let mut csv_lines = csv_text
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>());
    let header = csv_lines.next().expect("header");
    assert_eq!(
        header,
        [
            "segment",
            "channel",
            "creative",
            "impressions",
            "clicks",
            "conversions",
            "spend",
            "revenue",
            "ctr",
            "cvr",
            "cpa",
            "roas"
        ]
    );
    let csv_rows: Vec<Vec<String>> = csv_lines.collect();
    let table_rows: Vec<Vec<String>> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(csv_rows.len(), by_creative.len());
    assert_eq!(table_rows.len(), by_creative.len());
    for ((c, t), j) in csv_rows.iter().zip(&table_rows).zip(&by_creative) {
        assert_eq!(c[0], j["segment"].as_str().unwrap_or(""));
        assert_eq!(c[2], j["creative"].as_str().unwrap_or(""));
        assert_eq!(t[0], c[0]);
        assert_eq!(t[2], c[2]);
        let cf = |i: usize| c[i].parse::<f64>().expect("csv number");
        assert_eq!(cf(3), num(j, "impressions"));
        assert_eq!(cf(4), num(j, "clicks"));
        assert!((cf(6) - num(j, "spend")).abs() < 1e-9);
        assert!((cf(8) - num(j, "ctr")).abs() < 1e-15);
        assert_eq!(t[3], format!("{}", num(j, "impressions")));
        assert_eq!(t[4], format!("{}", num(j, "clicks")));
        assert_eq!(t[5], format!("{:.1}", num(j, "conversions")));
        assert_eq!(t[6], format!("{:.2}", num(j, "spend")));
        assert_eq!(t[7], format!("{:.2}", num(j, "revenue")));
        assert_eq!(t[8], format!("{:.2}%", num(j, "ctr") * 100.0));
        assert_eq!(t[9], format!("{:.2}%", num(j, "cvr") * 100.0));
    }

    // Runs are recorded for both jobs.
    let runs = run(&env, &["runs", "--json", "--limit", "100"]);
    let runs: Vec<serde_json::Value> = serde_json::from_str(&runs).expect("runs json");
    assert!(runs
        .iter()
        .any(|r| r["job"] == "rotate" && r["outcome"] == "success"));
    assert!(runs
        .iter()
        .any(|r| r["job"] == "metrics" && r["outcome"] == "success"));
}

#[test]
fn strategies_over_ten_weeks_sqlite() {
    strategies_over_ten_weeks("sqlite://{DIR}/campaignd.db");
}

#[test]
fn strategies_over_ten_weeks_postgres() {
    let Some(url) = rt()
        .block_on(campaignd_store::testkit::fresh_pg_database())
        .expect("pg")
    else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
        return;
    };
    strategies_over_ten_weeks(&url);
}

fn failed_swap_records_nothing(store_url: &str) {
    // 900002 is refused by the platform: the rotation to rr_b fails.
    let env = Env::new(&config(store_url, "reject_creatives = [\"900002\"]"));
    let url = store_url.replace("{DIR}", &env.dir.path().display().to_string());
    run(&env, &["rotate", "--as-of", &start().to_rfc3339()]);
    let before = history(&url, "rr");
    assert_eq!(before.len(), 1);
    let t = start() + Duration::weeks(1);
    let out = env
        .cmd()
        .args(["rotate", "--as-of", &t.to_rfc3339()])
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains("FAILED") && stdout.contains("900002"),
        "{stdout}"
    );
    assert_eq!(
        history(&url, "rr"),
        before,
        "a failed swap changed the history"
    );
    let state =
        campaignd_connectors::sandbox::creatives(&env.dir.path().join("sandbox")).expect("state");
    assert_eq!(state.objects["ad-rr"].creative_id, "900001");
    let runs = run(&env, &["runs", "--json"]);
    let runs: Vec<serde_json::Value> = serde_json::from_str(&runs).expect("runs json");
    let last = runs
        .iter()
        .find(|r| r["job"] == "rotate")
        .expect("rotate run");
    assert_eq!(last["outcome"], "partial", "{last}");
    assert!(
        last["error"].as_str().unwrap_or("").contains("rr"),
        "{last}"
    );
}

#[test]
fn failed_swap_records_nothing_sqlite() {
    failed_swap_records_nothing("sqlite://{DIR}/campaignd.db");
}

#[test]
fn failed_swap_records_nothing_postgres() {
    let Some(url) = rt()
        .block_on(campaignd_store::testkit::fresh_pg_database())
        .expect("pg")
    else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
        return;
    };
    failed_swap_records_nothing(&url);
}

#[test]
fn bad_creative_set_is_a_usage_error_naming_set_and_key() {
    let body = format!(
        "{}\n[destinations.sandbox]\nkind = \"sandbox\"\npath = \"{{DIR}}/sandbox\"\n\n[[creative_set]]\nname = \"oops\"\nsegment = \"seg_rr\"\ndestination = \"sandbox\"\nobject_id = \"x\"\nrotate_every = \"soon\"\nvariants = [{{ id = \"a\", creative_id = \"1\" }}]\n",
        segment("seg_rr")
    );
    let env = Env::new(&body);
    let out = env.cmd().args(["rotate"]).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("\"oops\"") && err.contains("rotate_every"),
        "{err}"
    );
    let out = env
        .cmd()
        .args(["report", "--by", "segment,campaign"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("campaign"), "{err}");
}
