//! Creative status and ad analytics tests against the stateful fake LinkedIn over loopback HTTP.

use super::{LinkedInConfig, LinkedInDestination};
use crate::test_support::{secrets, with_test_http};
use crate::{ConnectorError, CreativeSwapper, MetricsSource};
use campaignd_fakes::linkedin::FakeCreativeDay;
use campaignd_fakes::FakeLinkedIn;
use chrono::NaiveDate;
use serde_json::json;
use std::sync::Arc;

const CLIENT_ID: &str = "li-client-77";
const CLIENT_SECRET: &str = "li-client-SECRET-abc";
const REFRESH: &str = "AQX-refresh-SECRET-0987654321";

async fn fake() -> FakeLinkedIn {
    FakeLinkedIn::start("5150", CLIENT_ID, CLIENT_SECRET, REFRESH)
        .await
        .expect("fake linkedin")
}

fn build(fake: &FakeLinkedIn, refresh: &str) -> Arc<LinkedInDestination> {
    let secrets = secrets(&[
        ("LI_ID", CLIENT_ID),
        ("LI_SECRET", CLIENT_SECRET),
        ("LI_REFRESH", refresh),
    ]);
    let config: LinkedInConfig = serde_json::from_value(with_test_http(
        json!({
            "base_url": fake.base_url(),
            "token_url": fake.token_url(),
            "ad_account_id": "5150",
            "client_id": {"env": "LI_ID"},
            "client_secret": {"env": "LI_SECRET"},
            "refresh_token": {"env": "LI_REFRESH"},
        }),
        5_000,
        4,
    ))
    .expect("config");
    Arc::new(LinkedInDestination::from_config("li", config, &secrets).expect("destination"))
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).expect("date")
}

#[tokio::test]
async fn swap_activates_the_new_creative_and_pauses_the_others() {
    let fake = fake().await;
    fake.seed_campaign("3001", &["4001", "4002", "4003"]);
    fake.seed_campaign("3002", &["4101"]);
    let s: Arc<dyn CreativeSwapper> = build(&fake, REFRESH);

    s.swap_creative("urn:li:sponsoredCampaign:3001", "4002")
        .await
        .expect("swap");
    assert_eq!(fake.creative_status("4002").as_deref(), Some("ACTIVE"));
    assert_eq!(fake.creative_status("4001").as_deref(), Some("PAUSED"));
    assert_eq!(fake.creative_status("4003").as_deref(), Some("PAUSED"));
    assert_eq!(fake.creative_status("4101").as_deref(), Some("ACTIVE"));

    s.set_active("urn:li:sponsoredCreative:4003", true)
        .await
        .expect("activate");
    assert_eq!(fake.creative_status("4003").as_deref(), Some("ACTIVE"));
}

#[tokio::test]
async fn a_refused_swap_is_an_error_without_secrets() {
    let fake = fake().await;
    fake.seed_campaign("3001", &["4001", "4002"]);
    let s: Arc<dyn CreativeSwapper> = build(&fake, REFRESH);

    let err = s
        .swap_creative("3001", "4999")
        .await
        .expect_err("not in campaign");
    assert!(err.to_string().contains("is not a creative of"), "{err}");
    let err = s
        .set_active("4999", false)
        .await
        .expect_err("unknown creative");
    assert!(
        matches!(err, ConnectorError::Api { status: 404, .. }),
        "{err}"
    );
    assert!(s.swap_creative("campaign-x", "4002").await.is_err());

    let wrong = "AQX-refresh-WRONG-SECRET-1111";
    let err = build(&fake, wrong)
        .swap_creative("3001", "4002")
        .await
        .expect_err("bad refresh token");
    let text = format!("{err} {err:?}");
    for secret in [wrong, CLIENT_SECRET] {
        assert!(!text.contains(secret), "{text}");
    }
    assert_eq!(fake.creative_status("4001").as_deref(), Some("ACTIVE"));
    assert_eq!(fake.creative_status("4002").as_deref(), Some("PAUSED"));
}

#[tokio::test]
async fn analytics_rows_per_creative_and_day_through_throttling() {
    let fake = fake().await;
    fake.seed_campaign("3001", &["4001", "4002"]);
    fake.seed_campaign("3002", &["4101"]);
    fake.seed_campaign("3003", &["4201"]);
    for d in 1..=6i64 {
        for (k, c) in [(1i64, "4001"), (2, "4002"), (3, "4101"), (4, "4201")] {
            fake.seed_creative_day(
                c,
                (2026, 11, d),
                FakeCreativeDay {
                    impressions: (500 * d * k) as u64,
                    clicks: (5 * d + k) as u64,
                    conversions: (d % 2 + k) as u64,
                    cost: 3.75 * (d * k) as f64,
                    conversion_value: 12.5 * k as f64,
                },
            );
        }
    }
    let m: Arc<dyn MetricsSource> = build(&fake, REFRESH);
    let campaigns = vec![
        "3001".to_string(),
        "urn:li:sponsoredCampaign:3002".to_string(),
    ];
    // The first call also fetches a token; throttle after it so the 429s land on analytics.
    let rows = m
        .daily_metrics(&campaigns, day(2), day(5))
        .await
        .expect("metrics");
    assert_eq!(rows.len(), 12, "{rows:?}");
    fake.faults().throttle_next(2);
    let again = m
        .daily_metrics(&campaigns, day(2), day(5))
        .await
        .expect("re-pull");
    assert_eq!(again, rows);
    for r in &rows {
        let d = i64::from(r.date.format("%d").to_string().parse::<u8>().expect("day"));
        let k = match r.creative_id.as_deref() {
            Some("4001") => 1,
            Some("4002") => 2,
            Some("4101") => 3,
            other => panic!("unexpected creative {other:?}"),
        };
        assert_eq!(r.impressions, (500 * d * k) as u64);
        assert_eq!(r.clicks, (5 * d + k) as u64);
        assert!((r.conversions - (d % 2 + k) as f64).abs() < 1e-9);
        assert!((r.spend - 3.75 * (d * k) as f64).abs() < 1e-9);
        assert!((r.revenue - 12.5 * k as f64).abs() < 1e-9);
    }
    fake.faults().throttle_next(10);
    let err = m
        .daily_metrics(&campaigns, day(2), day(5))
        .await
        .expect_err("throttled");
    assert!(matches!(err, ConnectorError::Throttled { .. }), "{err}");
}

/// The matched size of a DMP segment (`GET /dmpSegments/{id}`): `audienceSize` of its LINKEDIN
/// destination, and `matchedCount / inputCount` as the rate; an unknown segment has no size.
#[tokio::test]
async fn audience_size_reads_the_segments_destination() {
    use crate::test_support::{email_contact, email_hash, prepare_all};
    use crate::AudienceDestination;
    let fake = fake().await;
    let d = build(&fake, REFRESH);
    let aud = d
        .find_or_create_audience("sized", "")
        .await
        .expect("segment");
    fake.reject_emails([email_hash(3)]);
    d.add_members(&aud, &prepare_all(d.as_ref(), 0..4, email_contact))
        .await
        .expect("add");
    let size = d
        .audience_size(&aud.remote_id)
        .await
        .expect("read")
        .expect("reported");
    assert_eq!((size.lower, size.upper), (Some(3), Some(3)));
    assert_eq!(size.match_rate_percent, Some(75.0), "3 matched of 4 sent");
    assert_eq!(d.audience_size("999999").await.expect("404"), None);
    assert!(d.audience_size("../x").await.is_err());
}
