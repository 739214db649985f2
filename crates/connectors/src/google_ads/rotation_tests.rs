//! Creative swap and GAQL metrics tests against the stateful fake Google Ads over loopback HTTP.

use super::{GoogleAdsConfig, GoogleAdsDestination};
use crate::test_support::{config_from, secrets, with_test_http};
use crate::{ConnectorError, CreativeSwapper, MetricsSource};
use campaignd_fakes::google_ads::{FakeAdStats, GoogleFakeConfig};
use campaignd_fakes::FakeGoogleAds;
use chrono::NaiveDate;
use serde_json::{json, Value};
use std::sync::Arc;

const DEV_TOKEN: &str = "devtok-SECRET-rotation-0123";
const CLIENT_ID: &str = "client-id-123.apps.example";
const CLIENT_SECRET: &str = "client-SECRET-abcdef";
const REFRESH: &str = "1//refresh-SECRET-xyz987";

async fn fake() -> FakeGoogleAds {
    FakeGoogleAds::start(GoogleFakeConfig {
        developer_token: DEV_TOKEN.into(),
        customer_id: "1234567890".into(),
        login_customer_id: None,
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        refresh_token: REFRESH.into(),
    })
    .await
    .expect("fake google")
}

fn build(fake: &FakeGoogleAds, dev_token: &str, extra: Value) -> Arc<GoogleAdsDestination> {
    let secrets = secrets(&[
        ("G_DEV", dev_token),
        ("G_ID", CLIENT_ID),
        ("G_SECRET", CLIENT_SECRET),
        ("G_REFRESH", REFRESH),
    ]);
    // Explicit since data_manager became the default; the data_manager case below overrides it.
    let s = with_test_http(
        json!({
            "api": "customer_match",
            "base_url": fake.base_url(),
            "token_url": fake.token_url(),
            "customer_id": "123-456-7890",
            "developer_token": {"env": "G_DEV"},
            "client_id": {"env": "G_ID"},
            "client_secret": {"env": "G_SECRET"},
            "refresh_token": {"env": "G_REFRESH"},
        }),
        5_000,
        4,
    );
    let config: GoogleAdsConfig = config_from(s, &extra);
    Arc::new(GoogleAdsDestination::from_config("gads", config, &secrets).expect("destination"))
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).expect("date")
}

#[tokio::test]
async fn swap_enables_the_new_ad_and_pauses_the_others() {
    let fake = fake().await;
    fake.seed_ad_group("555", &["701", "702", "703"]);
    fake.seed_ad_group("556", &["801"]);
    let s: Arc<dyn CreativeSwapper> = build(&fake, DEV_TOKEN, json!({}));

    s.swap_creative("555", "702").await.expect("swap");
    assert_eq!(fake.ad_status("555", "702").as_deref(), Some("ENABLED"));
    assert_eq!(fake.ad_status("555", "701").as_deref(), Some("PAUSED"));
    assert_eq!(fake.ad_status("555", "703").as_deref(), Some("PAUSED"));
    // Other ad groups are untouched.
    assert_eq!(fake.ad_status("556", "801").as_deref(), Some("ENABLED"));
    // One atomic mutate.
    assert_eq!(fake.requests().count("POST", "/adGroupAds:mutate"), 1);

    s.set_active("555", false).await.expect("pause group");
    assert_eq!(fake.ad_group_status("555").as_deref(), Some("PAUSED"));
    s.set_active("555~701", true).await.expect("enable one ad");
    assert_eq!(fake.ad_status("555", "701").as_deref(), Some("ENABLED"));
}

#[tokio::test]
async fn a_failed_swap_is_an_error_and_changes_nothing() {
    let fake = fake().await;
    fake.seed_ad_group("555", &["701", "702"]);
    let s: Arc<dyn CreativeSwapper> = build(&fake, DEV_TOKEN, json!({}));

    let err = s
        .swap_creative("555", "999")
        .await
        .expect_err("not in group");
    assert!(err.to_string().contains("not in ad group 555"), "{err}");
    assert_eq!(fake.requests().count("POST", "/adGroupAds:mutate"), 0);

    // The platform refuses the mutate (ad not found): an API error.
    let err = s.set_active("555~999", true).await.expect_err("missing ad");
    assert!(
        matches!(err, ConnectorError::Api { status: 400, .. }),
        "{err}"
    );
    assert_eq!(fake.ad_status("555", "701").as_deref(), Some("ENABLED"));
    assert_eq!(fake.ad_status("555", "702").as_deref(), Some("PAUSED"));
}

#[tokio::test]
async fn a_bad_developer_token_fails_without_leaking_secrets() {
    let fake = fake().await;
    fake.seed_ad_group("555", &["701", "702"]);
    let wrong = "devtok-WRONG-SECRET-4242";
    let err = build(&fake, wrong, json!({}))
        .swap_creative("555", "702")
        .await
        .expect_err("bad developer token");
    let text = format!("{err} {err:?}");
    for secret in [wrong, CLIENT_SECRET, REFRESH] {
        assert!(!text.contains(secret), "{text}");
    }
    assert_eq!(fake.ad_status("555", "702").as_deref(), Some("PAUSED"));
}

#[tokio::test]
async fn metrics_stream_over_days_with_throttling_and_micros() {
    let fake = fake().await;
    fake.seed_ad_group("555", &["701", "702"]);
    fake.seed_ad_group("556", &["801"]);
    for d in 1..=5u32 {
        for (g, ad) in [("555", "701"), ("555", "702"), ("556", "801")] {
            let k = d as u64 * ad.parse::<u64>().expect("id") % 97 + 1;
            fake.seed_ad_stats(
                g,
                ad,
                &format!("2026-11-{d:02}"),
                FakeAdStats {
                    impressions: 100 * k,
                    clicks: 3 * k,
                    conversions: 0.5 * k as f64,
                    cost_micros: 1_250_000 * k,
                    conversions_value: 19.99 * k as f64,
                },
            );
        }
    }
    // A day past the range and an ad group not asked for.
    fake.seed_ad_stats(
        "555",
        "701",
        "2026-11-06",
        FakeAdStats {
            impressions: 1,
            ..FakeAdStats::default()
        },
    );
    fake.seed_ad_group("557", &["901"]);
    fake.seed_ad_stats(
        "557",
        "901",
        "2026-11-02",
        FakeAdStats {
            impressions: 1,
            ..FakeAdStats::default()
        },
    );
    fake.set_retry_delay_secs(0);

    let m: Arc<dyn MetricsSource> = build(&fake, DEV_TOKEN, json!({}));
    let groups = ["555".to_string(), "556".to_string()];
    let first = m
        .daily_metrics(&groups, day(1), day(5))
        .await
        .expect("metrics");
    // Re-pull with the stream throttled twice (429 RESOURCE_EXHAUSTED): same rows.
    fake.faults().throttle_next(2);
    let rows = m
        .daily_metrics(&groups, day(1), day(5))
        .await
        .expect("metrics");
    assert_eq!(rows, first);
    assert_eq!(rows.len(), 15, "{rows:?}");
    assert_eq!(fake.search_stream_calls(), 2);
    for r in &rows {
        let ad = r.ad_id.clone().expect("ad id");
        assert_eq!(r.creative_id.as_deref(), Some(ad.as_str()));
        let d = r.date.format("%d").to_string().parse::<u64>().expect("day");
        let k = d * ad.parse::<u64>().expect("id") % 97 + 1;
        assert_eq!(r.impressions, 100 * k);
        assert_eq!(r.clicks, 3 * k);
        assert!((r.conversions - 0.5 * k as f64).abs() < 1e-9);
        assert!((r.spend - 1.25 * k as f64).abs() < 1e-9, "{r:?}");
        assert!((r.revenue - 19.99 * k as f64).abs() < 1e-9);
    }
    assert!(rows
        .iter()
        .all(|r| r.date <= day(5) && r.ad_id.as_deref() != Some("901")));

    // Throttled past the budget: transient.
    fake.faults().throttle_next(10);
    let err = m
        .daily_metrics(&["555".to_string()], day(1), day(5))
        .await
        .expect_err("throttled");
    assert!(matches!(err, ConnectorError::Throttled { .. }), "{err}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn data_manager_destinations_rotate_through_the_ads_api() {
    let fake = fake().await;
    fake.seed_ad_group("555", &["701", "702"]);
    let d = build(
        &fake,
        DEV_TOKEN,
        json!({"api": "data_manager", "base_url": fake.data_manager_url(), "ads_base_url": fake.base_url()}),
    );
    d.swap_creative("555", "702").await.expect("swap");
    assert_eq!(fake.ad_status("555", "702").as_deref(), Some("ENABLED"));
}
