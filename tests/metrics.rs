//! Creative rotation and metrics pull through the real binary against stateful fake platforms. Meta: the
//! first `rotate` swaps the ad to the first variant, `metrics pull` reads paged, throttled insights
//! (numbers as strings, purchases from `actions`), a re-pull of the same days does not double count, and
//! the report equals sums computed by hand from the seeded days. Mailchimp: the campaign's template is
//! swapped, its report becomes one day of delivered/clicks/orders/revenue, and with no spend ROAS is
//! empty, not 0 or NaN.

mod common;

use std::sync::Arc;

use campaignd_fakes::mailchimp::FakeReport;
use campaignd_fakes::meta::FakeInsights;
use campaignd_fakes::{FakeMailchimp, FakeMeta};
use common::{blocking, Env};

const TOKEN: &str = "meta-metrics-token";
const PURCHASE: &str = "offsite_conversion.fb_pixel_purchase";

fn config(base_url: &str) -> String {
    format!(
        r#"
[store]
url = "sqlite://{{DIR}}/shop.db"

[[segment]]
name = "cart_abandoners"
rule = "orders.count() >= 1"

[destinations.meta_ads]
kind = "meta"
base_url = "{base_url}"
ad_account_id = "act_1234567890"
access_token = {{ env = "META_ACCESS_TOKEN" }}
retry = {{ max_attempts = 6, initial_backoff_ms = 10, max_backoff_ms = 50 }}

[[creative_set]]
name = "abandoners-meta"
segment = "cart_abandoners"
destination = "meta_ads"
ad_id = "120200000000001"
rotate_every = "14d"
strategy = "round_robin"
variants = [
  {{ id = "urgency",  name = "Your items are almost gone!", creative_id = "900001" }},
  {{ id = "reminder", name = "Still thinking about it?",    creative_id = "900002" }},
]
"#
    )
}

fn run(env: &Arc<Env>, args: Vec<&'static str>) -> impl FnOnce() -> String + Send + 'static {
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

fn day(impressions: u64, clicks: u64, spend: f64, purchases: f64, revenue: f64) -> FakeInsights {
    FakeInsights {
        impressions,
        clicks,
        spend,
        actions: vec![
            (PURCHASE.into(), purchases),
            ("link_click".into(), clicks as f64),
        ],
        action_values: vec![(PURCHASE.into(), revenue)],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_rotation_metrics_and_report() {
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    fake.seed_creatives(["900001", "900002", "900003"]);
    fake.seed_ad("120200000000001", "900003");
    let env = Arc::new(Env::new(&config(fake.base_url())));

    // The first rotate makes the first variant live on the ad.
    blocking(run(&env, vec!["rotate", "--as-of", "2025-06-01T00:00:00Z"])).await;
    assert_eq!(fake.ad("120200000000001").unwrap().creative_id, "900001");

    // Five days of delivery (more than one insights page), pulled under throttling.
    let days = [
        ("2025-06-01", day(1000, 30, 12.5, 2.0, 80.0)),
        ("2025-06-02", day(1200, 36, 14.0, 3.0, 120.0)),
        ("2025-06-03", day(900, 18, 10.25, 1.0, 40.0)),
        ("2025-06-04", day(1100, 44, 13.75, 4.0, 150.5)),
        ("2025-06-05", day(800, 0, 9.0, 0.0, 0.0)),
    ];
    for (date, numbers) in &days {
        fake.seed_insights("120200000000001", date, numbers.clone());
    }
    fake.set_throttle_code(80000);
    fake.faults().throttle_next(2);
    let pull = vec![
        "metrics",
        "pull",
        "--since",
        "2025-06-01",
        "--until",
        "2025-06-05",
    ];
    blocking(run(&env, pull.clone())).await;
    assert!(
        fake.insights_calls() >= 2,
        "five days at three rows a page need two pages"
    );
    // Re-pulling the same days replaces them: the report below must not double.
    blocking(run(&env, pull)).await;

    let json = blocking(run(
        &env,
        vec![
            "report",
            "--since",
            "2025-06-01",
            "--until",
            "2025-06-05",
            "--by",
            "segment,channel,creative",
            "--format",
            "json",
        ],
    ))
    .await;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let row = rows
        .iter()
        .find(|r| r["channel"] == "meta_ads" && r["segment"] == "cart_abandoners")
        .unwrap_or_else(|| panic!("no meta_ads row in {json}"));
    let (imp, clk, spend, conv, rev) =
        days.iter().fold((0u64, 0u64, 0.0, 0.0, 0.0), |a, (_, d)| {
            (
                a.0 + d.impressions,
                a.1 + d.clicks,
                a.2 + d.spend,
                a.3 + d.actions[0].1,
                a.4 + d.action_values[0].1,
            )
        });
    assert_eq!(
        row["creative"], "urgency",
        "days attribute to the creative live then"
    );
    assert_eq!(row["impressions"].as_f64().unwrap(), imp as f64);
    assert_eq!(row["clicks"].as_f64().unwrap(), clk as f64);
    assert!((row["spend"].as_f64().unwrap() - spend).abs() < 1e-6);
    assert!((row["conversions"].as_f64().unwrap() - conv).abs() < 1e-6);
    assert!((row["revenue"].as_f64().unwrap() - rev).abs() < 1e-6);
    let ctr = clk as f64 / imp as f64;
    assert!((row["ctr"].as_f64().unwrap() - ctr).abs() < 1e-9);
    assert!((row["cvr"].as_f64().unwrap() - conv / clk as f64).abs() < 1e-9);
    assert!((row["roas"].as_f64().unwrap() - rev / spend).abs() < 1e-6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailchimp_template_rotation_and_campaign_report() {
    const KEY: &str = "0123456789abcdef-us21";
    let fake = FakeMailchimp::start(KEY, "a1b2c3d4").await.unwrap();
    fake.seed_templates([101, 102]);
    fake.seed_campaign("c0ffee42", "save", None);
    let env = Arc::new(Env::new(&format!(
        r#"
[store]
url = "sqlite://{{DIR}}/shop.db"

[[segment]]
name = "lapsed"
rule = "orders.count() >= 1"

[destinations.newsletter]
kind = "mailchimp"
base_url = "{}"
list_id = "a1b2c3d4"
api_key = {{ env = "MAILCHIMP_API_KEY" }}

[[creative_set]]
name = "lapsed-email"
segment = "lapsed"
destination = "newsletter"
campaign_id = "c0ffee42"
strategy = "round_robin"
variants = [
  {{ id = "winback", name = "We miss you", creative_id = "101" }},
  {{ id = "discount", name = "15% off", creative_id = "102" }},
]
"#,
        fake.base_url()
    )));
    let run_mc = |args: Vec<&'static str>| {
        let env = env.clone();
        move || {
            let out = env
                .cmd()
                .env("MAILCHIMP_API_KEY", KEY)
                .args(&args)
                .assert()
                .success();
            String::from_utf8_lossy(&out.get_output().stdout).to_string()
        }
    };
    blocking(run_mc(vec!["rotate", "--as-of", "2025-06-01T00:00:00Z"])).await;
    assert_eq!(fake.campaign("c0ffee42").unwrap().template_id, Some(101));

    fake.seed_report(
        "c0ffee42",
        FakeReport {
            send_time: "2025-06-03T09:00:00+00:00".into(),
            emails_sent: 5000,
            opens_total: 2100,
            clicks_total: 400,
            unique_clicks: 310,
            total_orders: 25,
            total_revenue: 1875.5,
        },
    );
    let pull = vec![
        "metrics",
        "pull",
        "--since",
        "2025-06-01",
        "--until",
        "2025-06-07",
    ];
    blocking(run_mc(pull.clone())).await;
    blocking(run_mc(pull)).await;
    let json = blocking(run_mc(vec![
        "report",
        "--since",
        "2025-06-01",
        "--until",
        "2025-06-07",
        "--by",
        "segment,channel,creative",
        "--format",
        "json",
    ]))
    .await;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let row = rows
        .iter()
        .find(|r| r["channel"] == "newsletter")
        .unwrap_or_else(|| panic!("no newsletter row in {json}"));
    assert_eq!(row["segment"], "lapsed");
    assert_eq!(row["creative"], "winback");
    assert_eq!(
        row["impressions"].as_f64().unwrap(),
        5000.0,
        "email impressions are deliveries"
    );
    assert_eq!(row["clicks"].as_f64().unwrap(), 400.0);
    assert_eq!(row["conversions"].as_f64().unwrap(), 25.0);
    assert!((row["revenue"].as_f64().unwrap() - 1875.5).abs() < 1e-6);
    assert!((row["ctr"].as_f64().unwrap() - 400.0 / 5000.0).abs() < 1e-9);
    assert!((row["cvr"].as_f64().unwrap() - 25.0 / 400.0).abs() < 1e-9);
    assert_eq!(
        row["cpa"].as_f64(),
        Some(0.0),
        "spend 0 over 25 conversions is a CPA of 0: {row}"
    );
    assert!(
        row["roas"].is_null(),
        "no spend: ROAS has a zero denominator and is empty, not 0 or NaN: {row}"
    );
}

/// Match rates end to end: `sync` sends 150 buyers to Meta, `metrics pull` reads the audience's
/// approximate size back (the fake's band around what it holds: 100–200) and stores it, and
/// `segments list` shows members sent next to the platform's matched size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_audience_size_is_pulled_and_listed() {
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    let env = Arc::new(Env::new(&format!(
        r#"
[store]
url = "sqlite://{{DIR}}/shop.db"

[[segment]]
name = "buyers"
rule = "orders.count() >= 1"

[destinations.meta_ads]
kind = "meta"
base_url = "{}"
ad_account_id = "act_1234567890"
access_token = {{ env = "META_ACCESS_TOKEN" }}

[[sync]]
segment = "buyers"
destination = "meta_ads"
mode = "mirror"
audience_name = "Buyers"
"#,
        fake.base_url()
    )));
    let mut customers = String::from("id,email,country,consent_ads,consent_email,created_at\n");
    let mut orders = String::from("id,customer_id,placed_at,total\n");
    for i in 1..=150 {
        customers.push_str(&format!(
            "c{i:04},buyer{i}@example.com,US,true,true,2024-01-01T00:00:00Z\n"
        ));
        orders.push_str(&format!("o{i:04},c{i:04},2024-03-01T00:00:00Z,10\n"));
    }
    env.write("customers.csv", &customers);
    env.write("orders.csv", &orders);
    blocking(run(&env, vec!["import", "customers", "customers.csv"])).await;
    blocking(run(&env, vec!["import", "orders", "orders.csv"])).await;
    blocking(run(
        &env,
        vec!["segments", "recompute", "--as-of", "2024-06-01T00:00:00Z"],
    ))
    .await;
    blocking(run(&env, vec!["sync"])).await;
    let id = fake.audience_id("Buyers").expect("audience created");
    assert_eq!(fake.members(&id).len(), 150);

    let before = blocking(run(&env, vec!["segments", "list"])).await;
    let line = before
        .lines()
        .find(|l| l.starts_with("buyers -> meta_ads (Buyers)"))
        .unwrap_or_else(|| panic!("no match line in {before}"));
    assert_eq!(
        line.split_whitespace().nth(4),
        Some("150"),
        "members sent: {line}"
    );
    assert_eq!(
        line.split_whitespace().nth(5),
        Some("-"),
        "no size before a pull: {line}"
    );

    blocking(run(
        &env,
        vec![
            "metrics",
            "pull",
            "--since",
            "2025-06-01",
            "--until",
            "2025-06-01",
        ],
    ))
    .await;
    let after = blocking(run(&env, vec!["segments", "list"])).await;
    let line = after
        .lines()
        .find(|l| l.starts_with("buyers -> meta_ads (Buyers)"))
        .unwrap_or_else(|| panic!("no match line in {after}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[4..7], ["150", "100-200", "66.7%"], "{line}");

    // The metrics run itself records the size and rate per segment × destination, and `runs` shows it.
    let runs = blocking(run(&env, vec!["runs", "--json"])).await;
    let runs: serde_json::Value = serde_json::from_str(&runs).expect("runs json");
    let metrics = runs
        .as_array()
        .and_then(|r| r.iter().find(|r| r["job"] == "metrics"))
        .unwrap_or_else(|| panic!("no metrics run in {runs}"));
    assert_eq!(
        metrics["counts"]["match_sizes"],
        serde_json::json!([{
            "segment": "buyers", "destination": "meta_ads", "audience": "Buyers",
            "lower": 100, "upper": 200, "members_sent": 150,
            "match_rate_percent": 100.0 * 100.0 / 150.0,
        }]),
        "{metrics}"
    );
    let text = blocking(run(&env, vec!["runs"])).await;
    assert!(
        text.contains("matched: buyers -> meta_ads \"Buyers\" 100..200 of 150 sent (66.7%)"),
        "{text}"
    );
}
