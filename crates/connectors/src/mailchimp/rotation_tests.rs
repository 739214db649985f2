//! Template swap and campaign report tests against the stateful fake Mailchimp over loopback HTTP.

use super::{MailchimpConfig, MailchimpDestination};
use crate::test_support::{secrets, with_test_http};
use crate::{ConnectorError, CreativeSwapper, MetricsSource};
use campaignd_fakes::mailchimp::FakeReport;
use campaignd_fakes::FakeMailchimp;
use chrono::NaiveDate;
use serde_json::json;
use std::sync::Arc;

const KEY: &str = "fedcba9876543210fedcba9876543210-us21";
const LIST: &str = "a1b2c3d4e5";

fn build(fake: &FakeMailchimp, key: &str) -> Arc<MailchimpDestination> {
    let secrets = secrets(&[("MC_KEY", key)]);
    let config: MailchimpConfig = serde_json::from_value(with_test_http(
        json!({
            "base_url": fake.base_url(),
            "list_id": LIST,
            "api_key": {"env": "MC_KEY"},
        }),
        5_000,
        4,
    ))
    .expect("config");
    Arc::new(MailchimpDestination::from_config("mc", config, &secrets).expect("destination"))
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).expect("date")
}

#[tokio::test]
async fn swap_puts_the_template_into_the_campaign() {
    let fake = FakeMailchimp::start(KEY, LIST).await.expect("fake");
    fake.seed_templates([2001, 2002]);
    fake.seed_campaign("c0ffee01", "save", Some(2001));
    let s: Arc<dyn CreativeSwapper> = build(&fake, KEY);

    s.swap_creative("c0ffee01", "2002").await.expect("swap");
    assert_eq!(
        fake.campaign("c0ffee01").expect("campaign").template_id,
        Some(2002)
    );
    assert!(matches!(
        s.set_active("c0ffee01", false).await,
        Err(ConnectorError::Unsupported { .. })
    ));
}

#[tokio::test]
async fn a_refused_swap_is_an_error() {
    let fake = FakeMailchimp::start(KEY, LIST).await.expect("fake");
    fake.seed_templates([2001, 2002]);
    fake.seed_campaign("c0ffee01", "sent", Some(2001));
    let s: Arc<dyn CreativeSwapper> = build(&fake, KEY);

    let err = s.swap_creative("c0ffee01", "2002").await.expect_err("sent");
    assert!(
        matches!(err, ConnectorError::Api { status: 400, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("already been sent"), "{err}");
    let err = s
        .swap_creative("nope0001", "2002")
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, ConnectorError::Api { status: 404, .. }),
        "{err}"
    );
    assert!(s.swap_creative("c0ffee01", "x1").await.is_err());
    assert_eq!(
        fake.campaign("c0ffee01").expect("campaign").template_id,
        Some(2001)
    );

    // A wrong key: an auth error that never shows the key.
    let wrong = "0000000000000000wrongwrongwrong00-us21";
    let err = build(&fake, wrong)
        .swap_creative("c0ffee01", "2002")
        .await
        .expect_err("bad key");
    assert!(matches!(err, ConnectorError::Auth { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains(wrong));
}

#[tokio::test]
async fn reports_become_one_row_per_sent_campaign_in_range() {
    let fake = FakeMailchimp::start(KEY, LIST).await.expect("fake");
    for (i, d) in [(1u64, 2u32), (2, 4), (3, 6), (4, 12)] {
        fake.seed_report(
            &format!("camp{i:04}"),
            FakeReport {
                send_time: format!("2026-11-{d:02}T09:30:00+00:00"),
                emails_sent: 1000 * i,
                opens_total: 400 * i,
                clicks_total: 50 * i,
                unique_clicks: 40 * i,
                total_orders: 3 * i,
                total_revenue: 123.45 * i as f64,
            },
        );
    }
    fake.seed_campaign("camp0009", "save", None);
    // Two throttled replies (bare 429, no Retry-After) on the way.
    fake.faults().too_many_requests_next(2, 0);

    let m: Arc<dyn MetricsSource> = build(&fake, KEY);
    let ids: Vec<String> = ["camp0001", "camp0002", "camp0003", "camp0004", "camp0009"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows = m
        .daily_metrics(&ids, day(1), day(7))
        .await
        .expect("metrics");
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (r, (i, d)) in rows.iter().zip([(1u64, 2u32), (2, 4), (3, 6)]) {
        assert_eq!(r.date, day(d));
        assert_eq!(r.ad_id.as_deref(), Some(format!("camp{i:04}").as_str()));
        assert_eq!(r.impressions, 1000 * i);
        assert_eq!(r.clicks, 50 * i);
        assert!((r.conversions - 3.0 * i as f64).abs() < 1e-9);
        assert!((r.revenue - 123.45 * i as f64).abs() < 1e-9);
        assert_eq!(r.spend, 0.0);
        assert_eq!(r.currency.as_deref(), Some("USD"));
    }
    // Re-pulling gives the same rows.
    assert_eq!(
        m.daily_metrics(&ids, day(1), day(7)).await.expect("again"),
        rows
    );

    fake.faults().too_many_requests_next(10, 0);
    let err = m
        .daily_metrics(&ids, day(1), day(7))
        .await
        .expect_err("throttled");
    assert!(err.is_transient(), "{err}");
    assert!(!format!("{err:?}").contains(KEY));
}
