//! Daily delivery metrics for Meta (DESIGN §8) from the Insights API: per ad,
//! `GET /{ad_id}/insights?fields=impressions,clicks,spend,actions,action_values&time_increment=1
//! &time_range={"since":"YYYY-MM-DD","until":"YYYY-MM-DD"}`, one row per day, paged by
//! `paging.cursors.after` while `paging.next` is present (the `next` URL itself is not followed: it may
//! carry the token and points at Meta's host, not the configured `base_url`).
//!
//! Meta sends every number as a string. Conversions and revenue are the `actions` / `action_values`
//! entries whose `action_type` is the configured `purchase_action_type` (default
//! `offsite_conversion.fb_pixel_purchase`; `purchase` is the omni-channel alternative). Throttling (code
//! 80000, insights) is retried by [`super::MetaPolicy`].
//!
//! A child of `client` so it shares the destination's kit, token and Meta error policy.

use super::{MetaDestination, Paging};
use crate::error::ConnectorError;
use crate::http::TokenSource;
use crate::model::MetricsRow;
use crate::traits::MetricsSource;
use async_trait::async_trait;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;

/// The purchase action type used when the config names none (the Meta pixel's purchase event).
pub const DEFAULT_PURCHASE_ACTION_TYPE: &str = "offsite_conversion.fb_pixel_purchase";
/// Insights rows requested per page (Meta may return fewer).
const INSIGHTS_PAGE_LIMIT: usize = 100;
/// Fields requested from the insights edge.
const INSIGHTS_FIELDS: &str = "impressions,clicks,spend,actions,action_values";

#[derive(Debug, Deserialize)]
struct InsightsPage {
    #[serde(default)]
    data: Vec<InsightsRow>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
struct InsightsRow {
    date_start: String,
    #[serde(default)]
    impressions: Option<String>,
    #[serde(default)]
    clicks: Option<String>,
    #[serde(default)]
    spend: Option<String>,
    #[serde(default)]
    actions: Vec<ActionStat>,
    #[serde(default)]
    action_values: Vec<ActionStat>,
    #[serde(default)]
    account_currency: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ActionStat {
    action_type: String,
    value: String,
}

/// The summed value of `action_type` entries (Meta sends at most one per type, but be lenient).
fn action_sum(stats: &[ActionStat], action_type: &str) -> Result<f64, String> {
    stats
        .iter()
        .filter(|a| a.action_type == action_type)
        .map(|a| {
            a.value
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("{action_type} value {:?} is not a number", a.value))
        })
        .sum()
}

fn count(value: Option<&str>, field: &str) -> Result<u64, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(0),
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| format!("{field} {v:?} is not a count")),
    }
}

fn amount(value: Option<&str>, field: &str) -> Result<f64, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(0.0),
        Some(v) => v
            .parse::<f64>()
            .map_err(|_| format!("{field} {v:?} is not a number")),
    }
}

impl MetaDestination {
    fn insights_row(&self, ad_id: &str, r: &InsightsRow) -> Result<MetricsRow, String> {
        let date = NaiveDate::parse_from_str(&r.date_start, "%Y-%m-%d")
            .map_err(|_| format!("date_start {:?} is not YYYY-MM-DD", r.date_start))?;
        Ok(MetricsRow {
            date,
            audience_id: None,
            ad_id: Some(ad_id.to_string()),
            creative_id: None,
            impressions: count(r.impressions.as_deref(), "impressions")?,
            clicks: count(r.clicks.as_deref(), "clicks")?,
            conversions: action_sum(&r.actions, &self.purchase_action_type)?,
            spend: amount(r.spend.as_deref(), "spend")?,
            revenue: action_sum(&r.action_values, &self.purchase_action_type)?,
            currency: r.account_currency.clone(),
        })
    }

    /// Every daily insights row of one ad over the range, all pages.
    async fn ad_insights(
        &self,
        ad_id: &str,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<Vec<MetricsRow>, ConnectorError> {
        const OP: &str = "ad insights";
        let url = self.url(&format!("{ad_id}/insights"));
        let range = json!({
            "since": since.format("%Y-%m-%d").to_string(),
            "until": until.format("%Y-%m-%d").to_string(),
        })
        .to_string();
        let mut rows = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let cursor = after.clone();
            let reply = self
                .kit
                .send_with_retry(
                    OP,
                    &self.policy,
                    Some(&self.token as &dyn TokenSource),
                    |c, t| {
                        let mut query = vec![
                            ("fields", INSIGHTS_FIELDS.to_string()),
                            ("time_increment", "1".to_string()),
                            ("time_range", range.clone()),
                            ("limit", INSIGHTS_PAGE_LIMIT.to_string()),
                        ];
                        if let Some(a) = &cursor {
                            query.push(("after", a.clone()));
                        }
                        c.get(&url)
                            .query(&query)
                            .bearer_auth(t.map(|s| s.expose()).unwrap_or_default())
                    },
                )
                .await?;
            let page: InsightsPage = self.parse(OP, &reply.body)?;
            for r in &page.data {
                rows.push(
                    self.insights_row(ad_id, r)
                        .map_err(|m| self.invalid_response(OP, m))?,
                );
            }
            let next_cursor = page
                .paging
                .as_ref()
                .filter(|p| p.next.is_some())
                .and_then(|p| p.cursors.as_ref())
                .and_then(|c| c.after.clone());
            match next_cursor {
                Some(c) if !page.data.is_empty() && Some(&c) != after.as_ref() => after = Some(c),
                _ => return Ok(rows),
            }
        }
    }
}

#[async_trait]
impl MetricsSource for MetaDestination {
    fn name(&self) -> &str {
        &self.name
    }

    /// `object_ids` are ad ids (the `ad_id` of creative sets, `ad_ids` of syncs).
    async fn daily_metrics(
        &self,
        object_ids: &[String],
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<Vec<MetricsRow>, ConnectorError> {
        if since > until {
            return Err(ConnectorError::Invalid {
                destination: self.name.clone(),
                message: format!("metrics range starts after it ends ({since} > {until})"),
            });
        }
        let mut out = Vec::new();
        for ad_id in object_ids {
            if ad_id.is_empty() || !ad_id.chars().all(|c| c.is_ascii_digit()) {
                return Err(ConnectorError::Invalid {
                    destination: self.name.clone(),
                    message: format!("ad id `{ad_id}` is not a numeric Graph id"),
                });
            }
            out.extend(self.ad_insights(ad_id, since, until).await?);
        }
        Ok(out)
    }
}
