//! Daily metrics for LinkedIn (DESIGN §8) from the ad analytics finder:
//! `GET /adAnalytics?q=analytics&pivot=CREATIVE&timeGranularity=DAILY&dateRange=(start:(year:Y,month:M,
//! day:D),end:(...))&campaigns=List(urn%3Ali%3AsponsoredCampaign%3AN,...)&fields=impressions,clicks,
//! externalWebsiteConversions,costInLocalCurrency,conversionValueInLocalCurrency,dateRange,pivotValues`
//! (Rest.li 2.0 query syntax: structure characters raw, URNs percent-encoded; no pagination). One row per
//! creative and day; `costInLocalCurrency` and `conversionValueInLocalCurrency` arrive as strings.
//!
//! Matched size (issue 9): `GET /dmpSegments/{id}` (Microsoft Learn "DMP Segments" and "DMP Segment
//! Destinations", li-lms-2026-08): the `LINKEDIN` entry of `destinations[]` carries `status`,
//! `audienceSize` — "should be used for available audience for targeting", so it is the matched size —
//! and `matchedCount`, which "only returns matches for the last seven days", as does the segment's
//! `inputCount`; LinkedIn computes its match rate as `matchedCount / inputCount`, and so does campaignd.
//! A segment still `BUILDING` (no `audienceSize` yet) or unknown (404) reports no size.
//!
//! A child of `client` so it shares the destination's kit, OAuth token and version headers.

use super::creative::encode_urn;
use super::LinkedInDestination;
use crate::error::ConnectorError;
use crate::model::{AudienceSize, MetricsRow};
use crate::traits::{MetricsRange, MetricsSource};
use async_trait::async_trait;
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use serde_json::Value;

/// Fields requested from `adAnalytics`.
const FIELDS: &str = "impressions,clicks,externalWebsiteConversions,costInLocalCurrency,\
conversionValueInLocalCurrency,dateRange,pivotValues";

/// `GET /dmpSegments/{id}`: the fields the matched size is read from.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SegmentSizes {
    #[serde(default)]
    input_count: Option<Value>,
    #[serde(default)]
    destinations: Vec<SegmentDestination>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SegmentDestination {
    #[serde(default)]
    destination: String,
    #[serde(default)]
    audience_size: Option<Value>,
    #[serde(default)]
    matched_count: Option<Value>,
}

/// The matched size and LinkedIn's match rate from a fetched segment; `Ok(None)` while LinkedIn reports
/// no `audienceSize` for its `LINKEDIN` destination.
fn segment_size(seg: &SegmentSizes) -> Result<Option<AudienceSize>, String> {
    let Some(dest) = seg
        .destinations
        .iter()
        .find(|d| d.destination == "LINKEDIN")
    else {
        return Ok(None);
    };
    let present = |v: &Option<Value>| v.as_ref().filter(|v| !v.is_null()).is_some();
    if !present(&dest.audience_size) {
        return Ok(None);
    }
    let size = count(dest.audience_size.as_ref(), "audienceSize")?;
    let rate = if present(&dest.matched_count) && present(&seg.input_count) {
        let matched = count(dest.matched_count.as_ref(), "matchedCount")?;
        let input = count(seg.input_count.as_ref(), "inputCount")?;
        (input > 0).then(|| (matched as f64 / input as f64 * 100.0).min(100.0))
    } else {
        None
    };
    Ok(Some(AudienceSize {
        lower: Some(size),
        upper: Some(size),
        match_rate_percent: rate,
    }))
}

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
    /// `object_ids` are campaign ids or URNs; rows come per creative and day.
    async fn metrics_in_range(
        &self,
        object_ids: &[String],
        MetricsRange { since, until }: MetricsRange,
    ) -> Result<Vec<MetricsRow>, ConnectorError> {
        const OP: &str = "ad analytics";
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
        let analytics: Analytics = self.kit.parse_json(OP, &reply.body)?;
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

    /// `GET /dmpSegments/{id}`: `audienceSize` of the `LINKEDIN` destination and
    /// `matchedCount / inputCount` as the rate (see the module doc).
    async fn audience_size(&self, remote_id: &str) -> Result<Option<AudienceSize>, ConnectorError> {
        const OP: &str = "audience size";
        if remote_id.is_empty() || !remote_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(self.invalid(format!("DMP segment id `{remote_id}` is not numeric")));
        }
        let reply = match self
            .send(
                OP,
                reqwest::Method::GET,
                &format!("dmpSegments/{remote_id}"),
                &[],
                None,
                None,
            )
            .await
        {
            Ok(r) => r,
            Err(ConnectorError::Api { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let seg: SegmentSizes = self.kit.parse_json(OP, &reply.body)?;
        segment_size(&seg).map_err(|m| ConnectorError::InvalidResponse {
            destination: self.name.clone(),
            operation: OP.into(),
            message: m,
        })
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// A segment reply and the (size, match rate) read from it, if any.
    type SizeCase<'a> = (&'a str, Option<(u64, Option<f64>)>);

    /// Shapes from Microsoft Learn's "Monitor status of the DMP segments" sample (`destinations[]` with
    /// `audienceSize`, `matchedCount`, `status`; `inputCount` on the segment).
    #[test]
    fn segment_sizes_table() {
        let cases: &[SizeCase] = &[
            (
                r#"{"inputCount":2,"destinations":[{"audienceSize":240000,"destination":"LINKEDIN","matchedCount":2,"status":"READY"}]}"#,
                Some((240_000, Some(100.0))),
            ),
            (
                r#"{"inputCount":"400","destinations":[{"audienceSize":"300","destination":"LINKEDIN","matchedCount":"100"}]}"#,
                Some((300, Some(25.0))),
            ),
            (
                r#"{"destinations":[{"audienceSize":310,"destination":"LINKEDIN"}]}"#,
                Some((310, None)),
            ),
            (
                r#"{"destinations":[{"destination":"LINKEDIN","status":"BUILDING"}]}"#,
                None,
            ),
            (r#"{"inputCount":0,"destinations":[]}"#, None),
        ];
        for (json, want) in cases {
            let seg: SegmentSizes = serde_json::from_str(json).expect("parses");
            let got = segment_size(&seg)
                .expect("valid")
                .map(|s| (s.lower.expect("size"), s.match_rate_percent));
            assert_eq!(&got, want, "{json}");
        }
        let bad: SegmentSizes = serde_json::from_str(
            r#"{"destinations":[{"destination":"LINKEDIN","audienceSize":"lots"}]}"#,
        )
        .expect("parses");
        assert!(
            segment_size(&bad).is_err(),
            "a size that is no count is refused"
        );
    }
}
