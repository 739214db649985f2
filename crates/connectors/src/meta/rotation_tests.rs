//! Creative swap and insights tests against the stateful fake Meta over loopback HTTP.

use super::{MetaConfig, MetaDestination};
use crate::test_support::{extend_section, secrets, with_test_http};
use crate::{ConnectorError, CreativeSwapper, MetricsSource};
use campaignd_fakes::meta::FakeInsights;
use campaignd_fakes::FakeMeta;
use chrono::NaiveDate;
use serde_json::{json, Value};
use std::sync::Arc;

const TOKEN: &str = "EAAG-rotation-token-0123456789";

fn section(fake: &FakeMeta, extra: Value) -> Value {
    let mut s = with_test_http(
        json!({
            "base_url": fake.base_url(),
            "ad_account_id": "act_1234",
            "access_token": {"env": "META_TOKEN"},
        }),
        5_000,
        4,
    );
    extend_section(&mut s, &extra);
    s
}

fn build(fake: &FakeMeta, token: &str, extra: Value) -> Arc<MetaDestination> {
    let config: MetaConfig = serde_json::from_value(section(fake, extra)).expect("config");
    Arc::new(
        MetaDestination::from_config("fb", config, &secrets(&[("META_TOKEN", token)]))
            .expect("destination"),
    )
}

fn swapper(fake: &FakeMeta, token: &str) -> Arc<dyn CreativeSwapper> {
    build(fake, token, json!({}))
}

fn metrics(fake: &FakeMeta, extra: Value) -> Arc<dyn MetricsSource> {
    build(fake, TOKEN, extra)
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).expect("date")
}

#[tokio::test]
async fn swap_makes_the_new_creative_live_and_pause_resume_work() {
    let fake = FakeMeta::start(TOKEN, "1234").await.expect("fake");
    fake.seed_ad("120200000000001", "900001");
    fake.seed_creatives(["900002"]);
    let s = swapper(&fake, TOKEN);
    assert_eq!(s.name(), "fb");

    s.swap_creative("120200000000001", "900002")
        .await
        .expect("swap");
    let ad = fake.ad("120200000000001").expect("ad");
    assert_eq!(ad.creative_id, "900002");
    assert_eq!(ad.history, vec!["900001", "900002"]);

    s.set_active("120200000000001", false).await.expect("pause");
    assert_eq!(fake.ad("120200000000001").expect("ad").status, "PAUSED");
    s.set_active("120200000000001", true).await.expect("resume");
    assert_eq!(fake.ad("120200000000001").expect("ad").status, "ACTIVE");
}

#[tokio::test]
async fn a_refused_swap_is_an_error_and_changes_nothing() {
    let fake = FakeMeta::start(TOKEN, "1234").await.expect("fake");
    fake.seed_ad("120200000000001", "900001");
    let s = swapper(&fake, TOKEN);

    // A creative the account does not have: Meta answers (#100).
    let err = s
        .swap_creative("120200000000001", "900777")
        .await
        .expect_err("unknown creative");
    assert!(
        matches!(
            err,
            ConnectorError::Api {
                code: Some(100),
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_transient());
    // An ad that does not exist.
    let err = s
        .swap_creative("120200000000999", "900001")
        .await
        .expect_err("unknown ad");
    assert!(err.to_string().contains("does not exist"), "{err}");
    // Not an id at all: refused before sending.
    let before = fake.requests().all().len();
    assert!(s.swap_creative("1/users", "900001").await.is_err());
    assert_eq!(fake.requests().all().len(), before);
    assert_eq!(
        fake.ad("120200000000001").expect("ad").creative_id,
        "900001"
    );
}

#[tokio::test]
async fn a_bad_token_fails_the_swap_without_leaking_it() {
    let fake = FakeMeta::start(TOKEN, "1234").await.expect("fake");
    fake.seed_ad("120200000000001", "900001");
    fake.seed_creatives(["900002"]);
    let wrong = "EAAG-wrong-secret-token-987654";
    let err = swapper(&fake, wrong)
        .swap_creative("120200000000001", "900002")
        .await
        .expect_err("bad token");
    assert!(matches!(err, ConnectorError::Auth { .. }), "{err}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains(wrong), "{text}");
    assert_eq!(
        fake.ad("120200000000001").expect("ad").creative_id,
        "900001"
    );
}

fn seed_week(fake: &FakeMeta, ad: &str) {
    for d in 1..=7u32 {
        fake.seed_insights(
            ad,
            &format!("2026-11-{d:02}"),
            FakeInsights {
                impressions: 1000 * d as u64,
                clicks: 10 * d as u64,
                spend: 12.5 * d as f64,
                actions: vec![
                    ("link_click".into(), 10.0 * d as f64),
                    ("offsite_conversion.fb_pixel_purchase".into(), d as f64),
                    ("purchase".into(), 2.0 * d as f64),
                ],
                action_values: vec![
                    (
                        "offsite_conversion.fb_pixel_purchase".into(),
                        40.25 * d as f64,
                    ),
                    ("purchase".into(), 80.5 * d as f64),
                ],
            },
        );
    }
}

#[tokio::test]
async fn insights_are_paged_throttled_and_parsed_from_strings() {
    let fake = FakeMeta::start(TOKEN, "1234").await.expect("fake");
    fake.seed_ad("120200000000001", "900001");
    fake.seed_ad("120200000000002", "900002");
    seed_week(&fake, "120200000000001");
    seed_week(&fake, "120200000000002");
    // A day outside the range must not come back.
    fake.seed_insights(
        "120200000000001",
        "2026-11-09",
        FakeInsights {
            impressions: 5,
            ..FakeInsights::default()
        },
    );
    fake.set_throttle_code(80000);
    fake.faults().throttle_next(2);
    fake.set_account_currency("EUR");

    let m = metrics(&fake, json!({}));
    let ids = vec!["120200000000001".to_string(), "120200000000002".to_string()];
    let rows = m
        .daily_metrics(&ids, day(1), day(7))
        .await
        .expect("metrics");
    assert_eq!(rows.len(), 14);
    // 7 days at 3 per page: three pages per ad.
    assert_eq!(fake.insights_calls(), 6);
    for r in &rows {
        let d = r.date.format("%d").to_string().parse::<u32>().expect("day") as f64;
        assert!(ids.contains(r.ad_id.as_ref().expect("ad id")));
        assert_eq!(r.impressions, 1000 * d as u64);
        assert_eq!(r.clicks, 10 * d as u64);
        assert!((r.spend - 12.5 * d).abs() < 1e-9, "{r:?}");
        // Default action types: no `omni_purchase` in these rows, so `purchase` (the first present)
        // counts — not the pixel type the connector used to default to.
        assert!((r.conversions - 2.0 * d).abs() < 1e-9, "{r:?}");
        assert!((r.revenue - 80.5 * d).abs() < 1e-9, "{r:?}");
        // Requested in `fields`, so the fake (like the Graph API) returns it.
        assert_eq!(r.currency.as_deref(), Some("EUR"), "{r:?}");
    }
    let total_spend: f64 = rows.iter().map(|r| r.spend).sum();
    assert!((total_spend - 2.0 * 12.5 * 28.0).abs() < 1e-9);

    // `purchase` as the configured action type.
    let m = metrics(&fake, json!({"purchase_action_type": "purchase"}));
    let rows = m
        .daily_metrics(&ids[..1], day(2), day(2))
        .await
        .expect("metrics");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].date, day(2));
    assert!((rows[0].conversions - 4.0).abs() < 1e-9);
    assert!((rows[0].revenue - 161.0).abs() < 1e-9);

    // The pixel type configured: only it counts.
    let m = metrics(
        &fake,
        json!({"purchase_action_type": "offsite_conversion.fb_pixel_purchase"}),
    );
    let rows = m
        .daily_metrics(&ids[..1], day(2), day(2))
        .await
        .expect("metrics");
    assert!((rows[0].conversions - 2.0).abs() < 1e-9);
    assert!((rows[0].revenue - 80.5).abs() < 1e-9);
}

/// `omni_purchase` (Ads Manager's "Purchases") wins over the other types when present, and a day with
/// clicks but no purchase type still comes back (counted 0, with a warning logged).
#[tokio::test]
async fn omni_purchase_is_the_default_and_unknown_fields_are_refused() {
    let fake = FakeMeta::start(TOKEN, "1234").await.expect("fake");
    fake.seed_ad("120200000000001", "900001");
    fake.seed_insights(
        "120200000000001",
        "2026-11-01",
        FakeInsights {
            clicks: 30,
            actions: vec![("omni_purchase".into(), 3.0), ("purchase".into(), 3.0)],
            action_values: vec![("omni_purchase".into(), 99.0), ("purchase".into(), 99.0)],
            ..FakeInsights::default()
        },
    );
    fake.seed_insights(
        "120200000000001",
        "2026-11-02",
        FakeInsights {
            clicks: 12,
            actions: vec![("link_click".into(), 12.0)],
            ..FakeInsights::default()
        },
    );
    let rows = metrics(&fake, json!({}))
        .daily_metrics(&["120200000000001".to_string()], day(1), day(2))
        .await
        .expect("metrics");
    assert_eq!(rows.len(), 2);
    assert!((rows[0].conversions - 3.0).abs() < 1e-9);
    assert!((rows[0].revenue - 99.0).abs() < 1e-9);
    assert_eq!(rows[0].currency.as_deref(), Some("USD"));
    assert_eq!((rows[1].clicks, rows[1].conversions), (12, 0.0));
    // A field AdsInsights does not have is refused, as the Graph API does (#100).
    let resp = reqwest::Client::new()
        .get(format!("{}/120200000000001/insights", fake.base_url()))
        .query(&[
            ("fields", "impressions,purchase_value"),
            (
                "time_range",
                r#"{"since":"2026-11-01","until":"2026-11-02"}"#,
            ),
            ("access_token", TOKEN),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 400);
    let body = resp.text().await.expect("body");
    assert!(
        body.contains("purchase_value is not valid for fields param"),
        "{body}"
    );
}

#[tokio::test]
async fn insights_throttled_past_the_budget_is_transient() {
    let fake = FakeMeta::start(TOKEN, "1234").await.expect("fake");
    fake.seed_ad("120200000000001", "900001");
    seed_week(&fake, "120200000000001");
    fake.set_throttle_code(80000);
    fake.faults().throttle_next(10);
    let err = metrics(&fake, json!({}))
        .daily_metrics(&["120200000000001".to_string()], day(1), day(7))
        .await
        .expect_err("throttled");
    assert!(matches!(err, ConnectorError::Throttled { .. }), "{err}");
    assert!(err.is_transient());
    assert!(!format!("{err:?}").contains(TOKEN));
}
