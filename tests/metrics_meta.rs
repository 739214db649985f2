//! Creative rotation and metrics pull through the real binary against the stateful fake Meta: the first
//! `rotate` swaps the ad to the first variant, `metrics pull` reads paged, throttled insights (numbers as
//! strings, purchases from `actions`), a re-pull of the same days does not double count, and the report
//! equals sums computed by hand from the seeded days.

mod common;

use std::sync::Arc;

use campaignd_fakes::meta::FakeInsights;
use campaignd_fakes::FakeMeta;
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
