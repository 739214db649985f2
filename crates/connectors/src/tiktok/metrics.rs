//! Daily metrics for TikTok (DESIGN §8) from the synchronous integrated report,
//! `GET /report/integrated/get/` with `report_type=BASIC`, `data_level=AUCTION_AD`,
//! `dimensions=["ad_id","stat_time_day"]`, `metrics=["impressions","clicks","conversion","spend",
//! "total_complete_payment_rate","total_purchase_value"]`, `start_date`/`end_date`, `filtering=[{"field_name":"adgroup_ids",
//! "filter_type":"IN","filter_value":"[...]"}]` (≤ 100 ids per request), paged by `page` / `page_size`
//! (≤ 1000) until `page_info.total_page`. TikTok caps a daily breakdown at 30 days per request, so longer
//! ranges are split. Metric values arrive as strings; `stat_time_day` as `YYYY-MM-DD 00:00:00`.
//! Revenue is web Complete Payment value (`total_complete_payment_rate`) plus in-app Purchase value
//! (`total_purchase_value`): see the module doc of `tiktok` for the SDK source of these names.
//!
//! A child of `client` so it shares the destination's kit, token and envelope policy.

use super::creative::digits;
use super::{PageInfo, TikTokDestination};
use crate::error::ConnectorError;
use crate::model::{AudienceSize, MetricsRow};
use crate::traits::{MetricsRange, MetricsSource};
use async_trait::async_trait;
use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Rows per report page (TikTok's maximum is 1000).
pub const REPORT_PAGE_SIZE: usize = 1000;
/// Longest range one daily report may span.
const MAX_DAYS_PER_REPORT: i64 = 30;
/// Most ids in one `filtering` entry.
const MAX_FILTER_IDS: usize = 100;
/// Metrics requested.
const METRICS: [&str; 6] = [
    "impressions",
    "clicks",
    "conversion",
    "spend",
    WEB_PURCHASE_VALUE,
    APP_PURCHASE_VALUE,
];
/// Web "Complete Payment" (pixel) value: TikTok names it `total_complete_payment_rate`.
const WEB_PURCHASE_VALUE: &str = "total_complete_payment_rate";
/// In-app "Purchase" event value.
const APP_PURCHASE_VALUE: &str = "total_purchase_value";

#[derive(Debug, Deserialize)]
struct Report {
    #[serde(default)]
    list: Vec<ReportRow>,
    #[serde(default)]
    page_info: Option<PageInfo>,
}

/// `GET /dmp/custom_audience/get/` data (`dmp_custom_audience_get.yml` response rule).
#[derive(Debug, Deserialize)]
struct AudienceDetailsList {
    #[serde(default)]
    list: Vec<AudienceDetailsEntry>,
}

#[derive(Debug, Deserialize)]
struct AudienceDetailsEntry {
    audience_details: AudienceDetails,
}

#[derive(Debug, Deserialize)]
struct AudienceDetails {
    #[serde(default)]
    cover_num: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ReportRow {
    dimensions: Map<String, Value>,
    #[serde(default)]
    metrics: Map<String, Value>,
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(m: &Map<String, Value>, key: &str) -> Result<f64, String> {
    match text(m.get(key)).as_deref() {
        None | Some("") | Some("-") => Ok(0.0),
        Some(s) => s
            .parse::<f64>()
            .map_err(|_| format!("{key} {s:?} is not a number")),
    }
}

fn count(m: &Map<String, Value>, key: &str) -> Result<u64, String> {
    match text(m.get(key)).as_deref() {
        None | Some("") | Some("-") => Ok(0),
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| format!("{key} {s:?} is not a count")),
    }
}

fn row(r: &ReportRow) -> Result<MetricsRow, String> {
    let day = text(r.dimensions.get("stat_time_day")).ok_or("row without stat_time_day")?;
    let date = NaiveDate::parse_from_str(day.get(..10).unwrap_or(&day), "%Y-%m-%d")
        .map_err(|_| format!("stat_time_day {day:?} is not a date"))?;
    let ad_id = text(r.dimensions.get("ad_id"));
    Ok(MetricsRow {
        date,
        audience_id: None,
        ad_id: ad_id.clone(),
        creative_id: ad_id,
        impressions: count(&r.metrics, "impressions")?,
        clicks: count(&r.metrics, "clicks")?,
        conversions: number(&r.metrics, "conversion")?,
        spend: number(&r.metrics, "spend")?,
        revenue: number(&r.metrics, WEB_PURCHASE_VALUE)? + number(&r.metrics, APP_PURCHASE_VALUE)?,
        currency: None,
    })
}

impl TikTokDestination {
    async fn report(
        &self,
        adgroup_ids: &[String],
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<MetricsRow>, ConnectorError> {
        const OP: &str = "ad report";
        let filtering = json!([{
            "field_name": "adgroup_ids",
            "filter_type": "IN",
            "filter_value": json!(adgroup_ids).to_string(),
        }])
        .to_string();
        let mut out = Vec::new();
        let mut page = 1u64;
        loop {
            let query = [
                ("advertiser_id", self.advertiser_id.clone()),
                ("report_type", "BASIC".to_string()),
                ("data_level", "AUCTION_AD".to_string()),
                ("dimensions", json!(["ad_id", "stat_time_day"]).to_string()),
                ("metrics", json!(METRICS).to_string()),
                ("start_date", start.format("%Y-%m-%d").to_string()),
                ("end_date", end.format("%Y-%m-%d").to_string()),
                ("filtering", filtering.clone()),
                ("page", page.to_string()),
                ("page_size", REPORT_PAGE_SIZE.to_string()),
            ];
            let data: Report = self.get_data(OP, "report/integrated/get/", &query).await?;
            for r in &data.list {
                out.push(row(r).map_err(|m| ConnectorError::InvalidResponse {
                    destination: self.name.clone(),
                    operation: OP.into(),
                    message: m,
                })?);
            }
            let total = data.page_info.and_then(|p| p.total_page).unwrap_or(0);
            if data.list.is_empty() || page >= total {
                return Ok(out);
            }
            page += 1;
        }
    }
}

#[async_trait]
impl MetricsSource for TikTokDestination {
    /// `object_ids` are ad group ids (the rotated object); rows come per ad and day.
    async fn metrics_in_range(
        &self,
        object_ids: &[String],
        MetricsRange { since, until }: MetricsRange,
    ) -> Result<Vec<MetricsRow>, ConnectorError> {
        if let Some(bad) = object_ids.iter().find(|id| !digits(id)) {
            return Err(self.invalid(format!("ad group id `{bad}` is not numeric")));
        }
        let mut out = Vec::new();
        for ids in object_ids.chunks(MAX_FILTER_IDS) {
            let mut start = since;
            while start <= until {
                let end = (start + Duration::days(MAX_DAYS_PER_REPORT - 1)).min(until);
                out.extend(self.report(ids, start, end).await?);
                start = end + Duration::days(1);
            }
        }
        Ok(out)
    }

    /// `GET /dmp/custom_audience/get/?custom_audience_ids=["id"]` → `audience_details.cover_num`. An
    /// audience still `pending:` (never created, TikTok creates from the first file) has no size.
    async fn audience_size(&self, remote_id: &str) -> Result<Option<AudienceSize>, ConnectorError> {
        const OP: &str = "audience size";
        if remote_id.starts_with(super::PENDING_PREFIX) {
            return Ok(None);
        }
        if !digits(remote_id) {
            return Err(self.invalid(format!("audience id `{remote_id}` is not numeric")));
        }
        let query = [
            ("advertiser_id", self.advertiser_id.clone()),
            ("custom_audience_ids", json!([remote_id]).to_string()),
        ];
        let data: AudienceDetailsList = self
            .get_data(OP, "dmp/custom_audience/get/", &query)
            .await?;
        let Some(entry) = data.list.first() else {
            return Ok(None);
        };
        let n = match entry.audience_details.cover_num.as_ref() {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => text(Some(v))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| ConnectorError::InvalidResponse {
                    destination: self.name.clone(),
                    operation: OP.into(),
                    message: format!("cover_num {v} is not a count"),
                })?,
        };
        Ok(Some(AudienceSize {
            lower: Some(n),
            upper: Some(n),
            match_rate_percent: None,
        }))
    }
}
