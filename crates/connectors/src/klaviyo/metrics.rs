//! Campaign metrics for Klaviyo (DESIGN §8) from the Reporting API, `POST /campaign-values-reports`
//! ("Query Campaign Values", revision 2026-07-15): `statistics` `delivered, opens, clicks, conversions,
//! conversion_value`, a custom `timeframe` `{start, end}` covering the requested days, the configured
//! `conversion_metric_id` (the "Placed Order" metric of the account, required) and a `filter` on the
//! campaign ids (`equals(campaign_id,"...")` or `contains-any(campaign_id,[...])`, ≤ 100 per call). The
//! report is one total per campaign, message and channel (like the Klaviyo UI, attributed by send date),
//! so each campaign yields one row dated on its `send_time` (`GET /campaigns/{id}`), kept when that date is
//! within the range: delivered → impressions, clicks, conversions, conversion value → revenue; spend 0.
//! The endpoint allows 225 calls a day, so campaigns are batched into one call.
//!
//! A child of `client` so it shares the destination's kit, key and revision header.

use super::creative::check_id;
use super::{KlaviyoDestination, Single};
use crate::error::ConnectorError;
use crate::model::MetricsRow;
use crate::traits::{MetricsRange, MetricsSource};
use async_trait::async_trait;
use chrono::{Duration, NaiveDate};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Campaign ids per report filter.
const MAX_FILTER_IDS: usize = 100;
/// Statistics requested.
const STATISTICS: [&str; 5] = [
    "delivered",
    "opens",
    "clicks",
    "conversions",
    "conversion_value",
];

#[derive(Debug, Deserialize)]
struct ReportDoc {
    data: ReportData,
}

#[derive(Debug, Deserialize)]
struct ReportData {
    attributes: ReportAttributes,
}

#[derive(Debug, Deserialize)]
struct ReportAttributes {
    #[serde(default)]
    results: Vec<ReportResult>,
}

#[derive(Debug, Deserialize)]
struct ReportResult {
    #[serde(default)]
    groupings: Map<String, Value>,
    #[serde(default)]
    statistics: Map<String, Value>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    delivered: f64,
    clicks: f64,
    conversions: f64,
    value: f64,
}

fn stat(m: &Map<String, Value>, key: &str) -> f64 {
    m.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn filter(ids: &[String]) -> String {
    match ids {
        [one] => format!("equals(campaign_id,{})", json!(one)),
        many => format!("contains-any(campaign_id,{})", json!(many)),
    }
}

impl KlaviyoDestination {
    /// Per-campaign totals over the timeframe.
    async fn values_report(
        &self,
        ids: &[String],
        metric: &str,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<BTreeMap<String, Totals>, ConnectorError> {
        const OP: &str = "campaign values report";
        let end = until + Duration::days(1);
        let body = json!({"data": {"type": "campaign-values-report", "attributes": {
            "statistics": STATISTICS,
            "timeframe": {
                "start": format!("{}T00:00:00+00:00", since.format("%Y-%m-%d")),
                "end": format!("{}T00:00:00+00:00", end.format("%Y-%m-%d")),
            },
            "conversion_metric_id": metric,
            "filter": filter(ids),
        }}});
        let url = self.kit.url("campaign-values-reports");
        let reply = self.send(OP, Method::POST, &url, &[], Some(&body)).await?;
        let doc: ReportDoc = self.kit.parse_json(OP, &reply)?;
        let mut out: BTreeMap<String, Totals> = BTreeMap::new();
        for r in &doc.data.attributes.results {
            let Some(id) = r.groupings.get("campaign_id").and_then(Value::as_str) else {
                continue;
            };
            let t = out.entry(id.to_string()).or_default();
            t.delivered += stat(&r.statistics, "delivered");
            t.clicks += stat(&r.statistics, "clicks");
            t.conversions += stat(&r.statistics, "conversions");
            t.value += stat(&r.statistics, "conversion_value");
        }
        Ok(out)
    }

    /// The UTC date a campaign was sent, if it was.
    async fn send_date(&self, id: &str) -> Result<Option<NaiveDate>, ConnectorError> {
        const OP: &str = "get campaign";
        let url = self.kit.url(&format!("campaigns/{id}"));
        let body = self.send(OP, Method::GET, &url, &[], None).await?;
        let doc: Single = self.kit.parse_json(OP, &body)?;
        let Some(t) = doc
            .data
            .attributes
            .get("send_time")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        else {
            return Ok(None);
        };
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| Some(t.with_timezone(&chrono::Utc).date_naive()))
            .map_err(|_| ConnectorError::InvalidResponse {
                destination: self.name.clone(),
                operation: OP.into(),
                message: format!("send_time {t:?} is not ISO 8601"),
            })
    }
}

#[async_trait]
impl MetricsSource for KlaviyoDestination {
    /// `object_ids` are campaign ids; one row per sent campaign whose send date is in range.
    async fn metrics_in_range(
        &self,
        object_ids: &[String],
        MetricsRange { since, until }: MetricsRange,
    ) -> Result<Vec<MetricsRow>, ConnectorError> {
        let Some(metric) = self.conversion_metric_id.clone() else {
            return Err(ConnectorError::Invalid {
                destination: self.name.clone(),
                message: "metrics need `conversion_metric_id` (the account's Placed Order metric id) in this destination".into(),
            });
        };
        for id in object_ids {
            check_id(self, "campaign id", id)?;
        }
        let mut sent = Vec::new();
        for id in object_ids {
            if let Some(date) = self.send_date(id).await? {
                if date >= since && date <= until {
                    sent.push((id.clone(), date));
                }
            }
        }
        let mut out = Vec::new();
        for chunk in sent.chunks(MAX_FILTER_IDS) {
            let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
            let totals = self.values_report(&ids, &metric, since, until).await?;
            for (id, date) in chunk {
                let t = totals.get(id).copied().unwrap_or_default();
                out.push(MetricsRow {
                    date: *date,
                    audience_id: None,
                    ad_id: Some(id.clone()),
                    creative_id: None,
                    impressions: t.delivered.max(0.0) as u64,
                    clicks: t.clicks.max(0.0) as u64,
                    conversions: t.conversions,
                    spend: 0.0,
                    revenue: t.value,
                    currency: None,
                });
            }
        }
        Ok(out)
    }
}
