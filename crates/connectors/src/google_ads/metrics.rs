//! Daily metrics for Google Ads (DESIGN §8): one `googleAds:searchStream` GAQL query over `ad_group_ad`
//! for the requested ad groups,
//! `SELECT segments.date, ad_group.id, ad_group_ad.ad.id, metrics.impressions, metrics.clicks,
//! metrics.conversions, metrics.cost_micros, metrics.conversions_value FROM ad_group_ad
//! WHERE segments.date BETWEEN 'since' AND 'until' AND ad_group.id IN (...)`.
//! The stream answers a JSON array of result batches (no page tokens); `int64` fields arrive as strings,
//! doubles as numbers. Cost is in micros of the account currency, converted to major units. The row's ad
//! id is also its creative id (the rotated creative is an ad).
//!
//! Audience size (`audience_size`), on the audience API the destination uploads through:
//! - `customer_match`: `googleAds:search` of `SELECT user_list.size_for_search, user_list.size_for_display,
//!   user_list.match_rate_percentage FROM user_list WHERE user_list.id = {id}` (`UserList` fields of
//!   `google/ads/googleads/v25/resources/user_list.proto`: both sizes `int64`, JSON strings;
//!   `match_rate_percentage` `int32`);
//! - `data_manager`: `GET /accountTypes/GOOGLE_ADS/accounts/{cid}/userLists/{id}`, `sizeInfo.
//!   {searchNetworkMembersCount, displayNetworkMembersCount}` and `ingestedUserListInfo.contactIdInfo.
//!   matchRatePercentage` (`google/ads/datamanager/v1/user_list.proto`).
//!
//! The matched size reported is the larger of the search and display network sizes (Google reports a
//! list's size per network; the larger is the most people the list reaches anywhere).
//!
//! A child of `client` so it shares the destination's kit, OAuth token and Google error policy.

use super::creative::int_field;
use super::GoogleAdsDestination;
use crate::error::ConnectorError;
use crate::google_ads::GoogleApi;
use crate::model::{AudienceSize, MetricsRow};
use crate::traits::{MetricsRange, MetricsSource};
use async_trait::async_trait;
use chrono::NaiveDate;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
struct StreamBatch {
    #[serde(default)]
    results: Vec<Value>,
}

fn num(v: Option<&Value>, field: &str) -> Result<f64, String> {
    match v {
        None | Some(Value::Null) => Ok(0.0),
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| format!("{field} out of range")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("{field} {s:?} is not a number")),
        Some(other) => Err(format!("{field} {other} is not a number")),
    }
}

fn count(v: Option<&Value>, field: &str) -> Result<u64, String> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("{field} {n} is not a count")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{field} {s:?} is not a count")),
        Some(other) => Err(format!("{field} {other} is not a count")),
    }
}

fn row(r: &Value) -> Result<MetricsRow, String> {
    let date = r
        .pointer("/segments/date")
        .and_then(Value::as_str)
        .ok_or("row without segments.date")?;
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| format!("segments.date {date:?} is not YYYY-MM-DD"))?;
    let ad_id = int_field(r.pointer("/adGroupAd/ad/id"));
    let m = r.get("metrics");
    let field = |k: &str| m.and_then(|m| m.get(k));
    Ok(MetricsRow {
        date,
        audience_id: None,
        ad_id: ad_id.clone(),
        creative_id: ad_id,
        impressions: count(field("impressions"), "impressions")?,
        clicks: count(field("clicks"), "clicks")?,
        conversions: num(field("conversions"), "conversions")?,
        spend: num(field("costMicros"), "costMicros")? / 1_000_000.0,
        revenue: num(field("conversionsValue"), "conversionsValue")?,
        currency: None,
    })
}

/// Optional count: a missing field is unknown (`None`), a present one must be a count.
fn opt_count(v: Option<&Value>, field: &str) -> Result<Option<u64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        some => count(some, field).map(Some),
    }
}

/// The size of one user list from its two network sizes and match rate (either API's JSON).
fn list_size(
    search: Option<&Value>,
    display: Option<&Value>,
    rate: Option<&Value>,
) -> Result<Option<AudienceSize>, String> {
    let search = opt_count(search, "search network size")?;
    let display = opt_count(display, "display network size")?;
    let rate = match rate {
        None | Some(Value::Null) => None,
        some => Some(num(some, "matchRatePercentage")?),
    };
    let matched = search.max(display);
    Ok(
        (matched.is_some() || rate.is_some()).then_some(AudienceSize {
            lower: matched,
            upper: matched,
            match_rate_percent: rate,
        }),
    )
}

#[async_trait]
impl MetricsSource for GoogleAdsDestination {
    /// `object_ids` are ad group ids (the `ad_group_id` of creative sets); rows come per ad and day.
    async fn metrics_in_range(
        &self,
        object_ids: &[String],
        MetricsRange { since, until }: MetricsRange,
    ) -> Result<Vec<MetricsRow>, ConnectorError> {
        const OP: &str = "ad metrics";
        if object_ids.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(bad) = object_ids
            .iter()
            .find(|id| id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(self.invalid(format!("ad group id `{bad}` is not numeric")));
        }
        let query = format!(
            "SELECT segments.date, ad_group.id, ad_group_ad.ad.id, metrics.impressions, metrics.clicks, \
             metrics.conversions, metrics.cost_micros, metrics.conversions_value FROM ad_group_ad \
             WHERE segments.date BETWEEN '{}' AND '{}' AND ad_group.id IN ({})",
            since.format("%Y-%m-%d"),
            until.format("%Y-%m-%d"),
            object_ids.join(", ")
        );
        let path = format!("customers/{}/googleAds:searchStream", self.customer_id);
        let reply = self.ads_send(OP, &path, &json!({ "query": query })).await?;
        let batches: Vec<StreamBatch> = self.kit.parse_json(OP, &reply.body)?;
        batches
            .iter()
            .flat_map(|b| b.results.iter())
            .map(|r| row(r).map_err(|m| self.kit.invalid_response(OP, m)))
            .collect()
    }

    /// The user list's size and match rate, from whichever audience API this destination uses.
    async fn audience_size(&self, remote_id: &str) -> Result<Option<AudienceSize>, ConnectorError> {
        const OP: &str = "user list size";
        if remote_id.is_empty() || !remote_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(self.invalid(format!("user list id `{remote_id}` is not numeric")));
        }
        let size = match self.api {
            GoogleApi::CustomerMatch => {
                let query = format!(
                    "SELECT user_list.id, user_list.size_for_search, user_list.size_for_display, \
                     user_list.match_rate_percentage FROM user_list WHERE user_list.id = {remote_id}"
                );
                let path = format!("customers/{}/googleAds:search", self.customer_id);
                let reply = self
                    .send(
                        OP,
                        Method::POST,
                        &path,
                        &[],
                        Some(&json!({ "query": query })),
                    )
                    .await?;
                let page: Value = self.kit.parse_json(OP, &reply.body)?;
                let Some(list) = page.pointer("/results/0/userList") else {
                    return Ok(None);
                };
                list_size(
                    list.get("sizeForSearch"),
                    list.get("sizeForDisplay"),
                    list.get("matchRatePercentage"),
                )
            }
            GoogleApi::DataManager => {
                let path = format!(
                    "accountTypes/GOOGLE_ADS/accounts/{}/userLists/{remote_id}",
                    self.customer_id
                );
                let reply = self.send(OP, Method::GET, &path, &[], None).await?;
                let list: Value = self.kit.parse_json(OP, &reply.body)?;
                list_size(
                    list.pointer("/sizeInfo/searchNetworkMembersCount"),
                    list.pointer("/sizeInfo/displayNetworkMembersCount"),
                    list.pointer("/ingestedUserListInfo/contactIdInfo/matchRatePercentage"),
                )
            }
        };
        size.map_err(|m| self.kit.invalid_response(OP, m))
    }
}
