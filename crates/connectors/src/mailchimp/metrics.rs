//! Campaign metrics for Mailchimp (DESIGN §8) from `GET /reports/{campaign_id}` (Marketing API 3.0
//! "Get campaign report"): `emails_sent` is the delivered count (impressions for email), `clicks.clicks_total`
//! the clicks, `ecommerce.total_orders` the conversions and `ecommerce.total_revenue` the revenue (in
//! `ecommerce.currency_code`); spend is 0. A report is cumulative for one send, so each campaign yields one
//! row dated on its `send_time` (UTC date), kept only when that date is within the requested range. An
//! unsent campaign (404, or no `send_time`) yields no row.
//!
//! A child of `client` so it shares the destination's kit, API key and connection cap.

use super::creative::check_campaign_id;
use super::MailchimpDestination;
use crate::error::ConnectorError;
use crate::model::MetricsRow;
use crate::traits::{MetricsRange, MetricsSource};
use async_trait::async_trait;
use chrono::NaiveDate;
use serde::Deserialize;

/// Report fields requested (Mailchimp's `fields` parameter trims the large report body).
const REPORT_FIELDS: &str = "id,send_time,emails_sent,clicks.clicks_total,clicks.unique_clicks,\
ecommerce.total_orders,ecommerce.total_revenue,ecommerce.currency_code";

#[derive(Debug, Deserialize)]
struct Report {
    #[serde(default)]
    send_time: Option<String>,
    #[serde(default)]
    emails_sent: u64,
    #[serde(default)]
    clicks: Option<Clicks>,
    #[serde(default)]
    ecommerce: Option<Ecommerce>,
}

#[derive(Debug, Deserialize)]
struct Clicks {
    #[serde(default)]
    clicks_total: u64,
}

#[derive(Debug, Deserialize)]
struct Ecommerce {
    #[serde(default)]
    total_orders: f64,
    #[serde(default)]
    total_revenue: f64,
    #[serde(default)]
    currency_code: Option<String>,
}

/// The UTC date of an ISO 8601 `send_time` (`2026-11-03T10:00:00+00:00`).
fn send_date(send_time: &str) -> Option<NaiveDate> {
    chrono::DateTime::parse_from_rfc3339(send_time.trim())
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc).date_naive())
}

#[async_trait]
impl MetricsSource for MailchimpDestination {
    /// `object_ids` are campaign ids; one row per sent campaign whose send date is in range.
    async fn metrics_in_range(
        &self,
        object_ids: &[String],
        MetricsRange { since, until }: MetricsRange,
    ) -> Result<Vec<MetricsRow>, ConnectorError> {
        const OP: &str = "campaign report";
        let mut out = Vec::new();
        for id in object_ids {
            check_campaign_id(self, id)?;
            let url = self.kit.url(&format!("reports/{id}"));
            let query = [("fields", REPORT_FIELDS.to_string())];
            let body = match self
                .send(OP, reqwest::Method::GET, &url, &query, None)
                .await
            {
                Ok(b) => b,
                Err(ConnectorError::Api { status: 404, .. }) => {
                    tracing::debug!(destination = %self.name, campaign = %id, "no report (campaign not sent)");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let report: Report = self.kit.parse_json(OP, &body)?;
            let Some(date) = report.send_time.as_deref().filter(|t| !t.is_empty()) else {
                continue;
            };
            let date = send_date(date).ok_or_else(|| ConnectorError::InvalidResponse {
                destination: self.name.clone(),
                operation: OP.into(),
                message: format!("send_time {date:?} is not ISO 8601"),
            })?;
            if date < since || date > until {
                continue;
            }
            let ecommerce = report.ecommerce.as_ref();
            out.push(MetricsRow {
                date,
                audience_id: None,
                ad_id: Some(id.clone()),
                creative_id: None,
                impressions: report.emails_sent,
                clicks: report.clicks.as_ref().map_or(0, |c| c.clicks_total),
                conversions: ecommerce.map_or(0.0, |e| e.total_orders),
                spend: 0.0,
                revenue: ecommerce.map_or(0.0, |e| e.total_revenue),
                currency: ecommerce.and_then(|e| e.currency_code.clone()),
            });
        }
        Ok(out)
    }
}
