//! Daily metrics for LinkedIn (DESIGN §8) from the ad analytics finder:
//! `GET /adAnalytics?q=analytics&pivot=CREATIVE&timeGranularity=DAILY&dateRange=(start:(year:Y,month:M,
//! day:D),end:(...))&campaigns=List(urn%3Ali%3AsponsoredCampaign%3AN,...)&fields=impressions,clicks,
//! externalWebsiteConversions,costInLocalCurrency,conversionValueInLocalCurrency,dateRange,pivotValues`
//! (Rest.li 2.0 query syntax: structure characters raw, URNs percent-encoded; no pagination). One row per
//! creative and day; `costInLocalCurrency` and `conversionValueInLocalCurrency` arrive as strings.
//!
//! A child of `client` so it shares the destination's kit, OAuth token and version headers.

use super::creative::encode_urn;
use super::LinkedInDestination;
use crate::error::ConnectorError;
use crate::model::MetricsRow;
use crate::traits::MetricsSource;
use async_trait::async_trait;
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use serde_json::Value;

/// Fields requested from `adAnalytics`.
const FIELDS: &str = "impressions,clicks,externalWebsiteConversions,costInLocalCurrency,\
conversionValueInLocalCurrency,dateRange,pivotValues";

#[derive(Debug, Deserialize)]
struct Analytics {
    #[serde(default)]
    elements: Vec<Element>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Element {
    date_range: DateRange,
    #[serde(default)]
    pivot_values: Vec<String>,
    #[serde(default)]
    impressions: Option<Value>,
    #[serde(default)]
    clicks: Option<Value>,
    #[serde(default)]
    external_website_conversions: Option<Value>,
    #[serde(default)]
    cost_in_local_currency: Option<Value>,
    #[serde(default)]
    conversion_value_in_local_currency: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct DateRange {
    start: Ymd,
}

#[derive(Debug, Deserialize)]
struct Ymd {
    year: i32,
    month: u32,
    day: u32,
}

fn num(v: Option<&Value>, field: &str) -> Result<f64, String> {
    match v {
        None | Some(Value::Null) => Ok(0.0),
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| format!("{field} out of range")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("{field} {s:?} is not a number")),
        Some(other) => Err(format!("{field} {other} is not a number")),
    }
}

fn count(v: Option<&Value>, field: &str) -> Result<u64, String> {
    let n = num(v, field)?;
    if n < 0.0 || n.fract() != 0.0 {
        return Err(format!("{field} {n} is not a count"));
    }
    Ok(n as u64)
}

fn date_param(d: NaiveDate) -> String {
    format!("(year:{},month:{},day:{})", d.year(), d.month(), d.day())
}

fn row(e: &Element) -> Result<MetricsRow, String> {
    let s = &e.date_range.start;
    let date =
        NaiveDate::from_ymd_opt(s.year, s.month, s.day).ok_or("dateRange.start is not a date")?;
    let creative = e
        .pivot_values
        .first()
        .map(|urn| urn.rsplit(':').next().unwrap_or(urn).to_string());
    Ok(MetricsRow {
        date,
        audience_id: None,
        ad_id: creative.clone(),
        creative_id: creative,
        impressions: count(e.impressions.as_ref(), "impressions")?,
        clicks: count(e.clicks.as_ref(), "clicks")?,
        conversions: num(
            e.external_website_conversions.as_ref(),
            "externalWebsiteConversions",
        )?,
        spend: num(e.cost_in_local_currency.as_ref(), "costInLocalCurrency")?,
        revenue: num(
            e.conversion_value_in_local_currency.as_ref(),
            "conversionValueInLocalCurrency",
        )?,
        currency: None,
    })
}

#[async_trait]
impl MetricsSource for LinkedInDestination {
    fn name(&self) -> &str {
        &self.name
    }

    /// `object_ids` are campaign ids or URNs; rows come per creative and day.
    async fn daily_metrics(
        &self,
        object_ids: &[String],
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<Vec<MetricsRow>, ConnectorError> {
        const OP: &str = "ad analytics";
        if since > until {
            return Err(self.invalid(format!(
                "metrics range starts after it ends ({since} > {until})"
            )));
        }
        if object_ids.is_empty() {
            return Ok(Vec::new());
        }
        let campaigns = object_ids
            .iter()
            .map(|id| self.urn("sponsoredCampaign", id).map(|u| encode_urn(&u)))
            .collect::<Result<Vec<_>, _>>()?;
        let path = format!(
            "adAnalytics?q=analytics&pivot=CREATIVE&timeGranularity=DAILY&dateRange=(start:{},end:{})\
             &campaigns=List({})&fields={FIELDS}",
            date_param(since),
            date_param(until),
            campaigns.join(",")
        );
        let reply = self
            .send(OP, reqwest::Method::GET, &path, &[], None, None)
            .await?;
        let analytics: Analytics = self.parse(OP, &reply.body)?;
        analytics
            .elements
            .iter()
            .map(|e| {
                row(e).map_err(|m| ConnectorError::InvalidResponse {
                    destination: self.name.clone(),
                    operation: OP.into(),
                    message: m,
                })
            })
            .collect()
    }
}
