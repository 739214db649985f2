//! Ad enable/disable and integrated report tests against the stateful fake TikTok over loopback HTTP.

use super::{TikTokConfig, TikTokDestination};
use crate::test_support::{secrets, with_test_http};
use crate::{ConnectorError, CreativeSwapper, MetricsSource};
use campaignd_fakes::tiktok::FakeAdDay;
use campaignd_fakes::FakeTikTok;
use chrono::NaiveDate;
use serde_json::json;
use std::sync::Arc;

const TOKEN: &str = "tt-access-SECRET-0123456789abcdef";
const ADV: &str = "7000000000001";

fn build(fake: &FakeTikTok, token: &str) -> Arc<TikTokDestination> {
    let secrets = secrets(&[("TT", token)]);
    let config: TikTokConfig = serde_json::from_value(with_test_http(
        json!({
            "base_url": fake.base_url(),
            "advertiser_id": ADV,
            "access_token": {"env": "TT"},
        }),
        5_000,
        4,
    ))
    .expect("config");
    Arc::new(TikTokDestination::from_config("tt", config, &secrets).expect("destination"))
}

fn day(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).expect("date")
}

#[tokio::test]
async fn swap_enables_the_new_ad_and_disables_the_others() {
    let fake = FakeTikTok::start(TOKEN, ADV).await.expect("fake");
    fake.seed_ad_group("1700", &["1801", "1802", "1803"]);
    fake.seed_ad_group("1701", &["1901"]);
    let s: Arc<dyn CreativeSwapper> = build(&fake, TOKEN);

    s.swap_creative("1700", "1803").await.expect("swap");
    assert_eq!(fake.ad_status("1803").as_deref(), Some("ENABLE"));
    assert_eq!(fake.ad_status("1801").as_deref(), Some("DISABLE"));
    assert_eq!(fake.ad_status("1802").as_deref(), Some("DISABLE"));
    assert_eq!(fake.ad_status("1901").as_deref(), Some("ENABLE"));

    s.set_active("1803", false).await.expect("disable");
    assert_eq!(fake.ad_status("1803").as_deref(), Some("DISABLE"));
}

#[tokio::test]
async fn swap_in_a_large_ad_group_disables_in_batches_of_twenty() {
    let fake = FakeTikTok::start(TOKEN, ADV).await.expect("fake");
    let ids: Vec<String> = (0..45).map(|i| format!("{}", 2800 + i)).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    fake.seed_ad_group("1750", &refs);
    let s: Arc<dyn CreativeSwapper> = build(&fake, TOKEN);

    s.swap_creative("1750", "2844")
        .await
        .expect("swap past TikTok's 20-id cap");
    assert_eq!(fake.ad_status("2844").as_deref(), Some("ENABLE"));
    for id in ids.iter().filter(|id| id.as_str() != "2844") {
        assert_eq!(fake.ad_status(id).as_deref(), Some("DISABLE"), "ad {id}");
    }
}

#[tokio::test]
async fn a_refused_swap_is_an_error_without_the_token() {
    let fake = FakeTikTok::start(TOKEN, ADV).await.expect("fake");
    fake.seed_ad_group("1700", &["1801", "1802"]);
    let s: Arc<dyn CreativeSwapper> = build(&fake, TOKEN);

    let err = s
        .swap_creative("1700", "1999")
        .await
        .expect_err("not in group");
    assert!(err.to_string().contains("not in ad group"), "{err}");
    // The platform refuses an unknown ad with a non-zero envelope code at HTTP 200.
    let err = s.set_active("1999", true).await.expect_err("unknown ad");
    assert!(
        matches!(
            err,
            ConnectorError::Api {
                code: Some(40002),
                ..
            }
        ),
        "{err}"
    );

    let wrong = "tt-access-WRONG-SECRET-feedbeef";
    let err = build(&fake, wrong)
        .swap_creative("1700", "1802")
        .await
        .expect_err("bad token");
    assert!(matches!(err, ConnectorError::Auth { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains(wrong));
    assert_eq!(fake.ad_status("1801").as_deref(), Some("ENABLE"));
    assert_eq!(fake.ad_status("1802").as_deref(), Some("DISABLE"));
}

#[tokio::test]
async fn report_pages_splits_long_ranges_and_parses_strings() {
    let fake = FakeTikTok::start(TOKEN, ADV).await.expect("fake");
    fake.seed_ad_group("1700", &["1801", "1802"]);
    fake.seed_ad_group("1701", &["1901"]);
    // 40 days (Oct 25 .. Dec 3) for two ads of 1700, plus an ad of another group.
    let mut expected = Vec::new();
    let mut date = day(10, 25);
    let mut n = 1u64;
    while date <= day(12, 3) {
        for ad in ["1801", "1802", "1901"] {
            let d = FakeAdDay {
                impressions: 100 * n,
                clicks: 7 * n,
                conversion: n % 3,
                spend: 2.5 * n as f64,
                total_purchase_value: 10.75 * (n % 3) as f64,
                // Web Complete Payment value: revenue is web + app purchase value.
                total_complete_payment_rate: 4.5 * (n % 2) as f64,
                ..FakeAdDay::default()
            };
            fake.seed_ad_day(ad, &date.format("%Y-%m-%d").to_string(), d.clone());
            if ad != "1901" {
                expected.push((date, ad.to_string(), d));
            }
            n += 1;
        }
        date = date.succ_opt().expect("next day");
    }
    fake.set_report_page_cap(7);
    fake.faults().throttle_next(2);

    let m: Arc<dyn MetricsSource> = build(&fake, TOKEN);
    let rows = m
        .daily_metrics(&["1700".to_string()], day(10, 25), day(12, 3))
        .await
        .expect("metrics");
    assert_eq!(rows.len(), expected.len());
    // 30 + 10 days: two windows, 60 rows (9 pages of 7) and 20 rows (3 pages).
    assert_eq!(fake.report_calls(), 12);
    for (date, ad, d) in &expected {
        let r = rows
            .iter()
            .find(|r| r.date == *date && r.ad_id.as_deref() == Some(ad))
            .expect("row");
        assert_eq!(r.creative_id.as_deref(), Some(ad.as_str()));
        assert_eq!(r.impressions, d.impressions);
        assert_eq!(r.clicks, d.clicks);
        assert!((r.conversions - d.conversion as f64).abs() < 1e-9);
        assert!((r.spend - d.spend).abs() < 1e-9);
        assert!((r.revenue - d.total_purchase_value - d.total_complete_payment_rate).abs() < 1e-9);
    }

    // Throttled (code 40100) past the budget: transient.
    fake.faults().throttle_next(10);
    let err = m
        .daily_metrics(&["1700".to_string()], day(11, 1), day(11, 2))
        .await
        .expect_err("throttled");
    assert!(matches!(err, ConnectorError::Throttled { .. }), "{err}");
}
