//! Template assignment and campaign values report tests against the stateful fake Klaviyo over loopback
//! HTTP.

use super::{KlaviyoConfig, KlaviyoDestination};
use crate::test_support::{config_from, secrets, with_test_http};
use crate::{ConnectorError, CreativeSwapper, MetricsSource};
use campaignd_fakes::klaviyo::FakeCampaignStats;
use campaignd_fakes::FakeKlaviyo;
use chrono::NaiveDate;
use serde_json::{json, Value};
use std::sync::Arc;

const KEY: &str = "pk_SECRET_rotation_0123456789abcdef";
const METRIC: &str = "VevE7N";

fn build(fake: &FakeKlaviyo, key: &str, extra: Value) -> Arc<KlaviyoDestination> {
    let secrets = secrets(&[("KL", key)]);
    let s = with_test_http(
        json!({
            "base_url": fake.base_url(),
            "api_key": {"env": "KL"},
        }),
        5_000,
        4,
    );
    let config: KlaviyoConfig = config_from(s, &extra);
    Arc::new(KlaviyoDestination::from_config("kl", config, &secrets).expect("destination"))
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).expect("date")
}

#[tokio::test]
async fn swap_assigns_the_template_to_the_campaign_message() {
    let fake = FakeKlaviyo::start(KEY).await.expect("fake");
    fake.seed_templates(["TplB"]);
    fake.seed_campaign("01CAMPAIGNA", "", "TplA", FakeCampaignStats::default());
    let s: Arc<dyn CreativeSwapper> = build(&fake, KEY, json!({}));

    s.swap_creative("01CAMPAIGNA", "TplB").await.expect("swap");
    let c = fake.campaign("01CAMPAIGNA").expect("campaign");
    assert_eq!(c.messages.values().collect::<Vec<_>>(), vec!["TplB"]);
    assert!(matches!(
        s.set_active("01CAMPAIGNA", true).await,
        Err(ConnectorError::Unsupported { .. })
    ));
}

#[tokio::test]
async fn a_refused_swap_is_an_error_without_the_key() {
    let fake = FakeKlaviyo::start(KEY).await.expect("fake");
    fake.seed_campaign("01CAMPAIGNA", "", "TplA", FakeCampaignStats::default());
    let s: Arc<dyn CreativeSwapper> = build(&fake, KEY, json!({}));

    let err = s
        .swap_creative("01CAMPAIGNA", "TplZ")
        .await
        .expect_err("unknown template");
    assert!(
        matches!(err, ConnectorError::Api { status: 404, .. }),
        "{err}"
    );
    let err = s
        .swap_creative("01NOPE", "TplA")
        .await
        .expect_err("unknown campaign");
    assert!(
        matches!(err, ConnectorError::Api { status: 404, .. }),
        "{err}"
    );
    assert!(s.swap_creative("../lists", "TplA").await.is_err());

    let wrong = "pk_WRONG_SECRET_feedfacecafe";
    let err = build(&fake, wrong, json!({}))
        .swap_creative("01CAMPAIGNA", "TplA")
        .await
        .expect_err("bad key");
    assert!(matches!(err, ConnectorError::Auth { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains(wrong));
    let c = fake.campaign("01CAMPAIGNA").expect("campaign");
    assert_eq!(c.messages.values().collect::<Vec<_>>(), vec!["TplA"]);
}

#[tokio::test]
async fn values_report_gives_one_row_per_sent_campaign() {
    let fake = FakeKlaviyo::start(KEY).await.expect("fake");
    fake.set_conversion_metric(METRIC);
    let campaigns = [
        ("01CAMPA", 2u32, 1u64),
        ("01CAMPB", 5, 2),
        ("01CAMPC", 9, 3),
    ];
    for (id, d, k) in campaigns {
        fake.seed_campaign(
            id,
            &format!("2026-11-{d:02}T15:00:00+00:00"),
            "TplA",
            FakeCampaignStats {
                delivered: 2000 * k,
                opens: 900 * k,
                clicks: 120 * k,
                conversions: 7 * k,
                conversion_value: 349.9 * k as f64,
            },
        );
    }
    fake.seed_campaign("01DRAFT", "", "TplA", FakeCampaignStats::default());
    let ids: Vec<String> = ["01CAMPA", "01CAMPB", "01CAMPC", "01DRAFT"]
        .iter()
        .map(|s| s.to_string())
        .collect();

    // Without the conversion metric configured, metrics are refused locally.
    let err = build(&fake, KEY, json!({}))
        .daily_metrics(&ids, day(1), day(7))
        .await
        .expect_err("needs conversion_metric_id");
    assert!(err.to_string().contains("conversion_metric_id"), "{err}");

    let m: Arc<dyn MetricsSource> = build(&fake, KEY, json!({"conversion_metric_id": METRIC}));
    fake.faults().too_many_requests_next(2, 0);
    let rows = m
        .daily_metrics(&ids, day(1), day(7))
        .await
        .expect("metrics");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(fake.report_calls(), 1, "one report call for all campaigns");
    for (r, (id, d, k)) in rows.iter().zip(campaigns) {
        assert_eq!(r.ad_id.as_deref(), Some(id));
        assert_eq!(r.date, day(d));
        assert_eq!(r.impressions, 2000 * k);
        assert_eq!(r.clicks, 120 * k);
        assert!((r.conversions - 7.0 * k as f64).abs() < 1e-9);
        assert!((r.revenue - 349.9 * k as f64).abs() < 1e-9);
        assert_eq!(r.spend, 0.0);
    }
    fake.faults().too_many_requests_next(10, 0);
    let err = m
        .daily_metrics(&ids, day(1), day(7))
        .await
        .expect_err("throttled");
    assert!(matches!(err, ConnectorError::Throttled { .. }), "{err}");
    assert!(!format!("{err:?}").contains(KEY));
}
