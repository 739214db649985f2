//! Daily delivery metrics for Meta (DESIGN §8) from the Insights API: per ad,
//! `GET /{ad_id}/insights?fields=impressions,clicks,spend,actions,action_values,account_currency&time_increment=1
//! &time_range={"since":"YYYY-MM-DD","until":"YYYY-MM-DD"}`, one row per day, paged by
//! `paging.cursors.after` while `paging.next` is present (the `next` URL itself is not followed: it may
//! carry the token and points at Meta's host, not the configured `base_url`).
//!
//! Fields checked against `AdsInsights` in facebook/facebook-business-sdk-codegen `api_specs/specs/
//! AdsInsights.json` (commit `ad2b0b6f`, 2026-04-15): `impressions`, `clicks`, `spend` (strings),
//! `actions` / `action_values` (`list<AdsActionStats>`), `account_currency` (string) — the Graph API
//! returns only the fields asked for, so the currency is requested explicitly. Parameters (`fields`,
//! `time_increment`, `time_range`, `limit`) are the `Ad` spec's `GET insights` params.
//!
//! Meta sends every number as a string. Conversions and revenue are the `actions` / `action_values`
//! entries of one purchase action type per row: the configured `purchase_action_type`, or else the first
//! present of [`DEFAULT_PURCHASE_ACTION_TYPES`] — `omni_purchase` (what Ads Manager calls "Purchases"),
//! `purchase`, `offsite_conversion.fb_pixel_purchase` (Meta reports the same purchases under several
//! types, so they are never summed). A day with clicks but none of those types logs a warning instead of
//! silently counting 0. Throttling (code 80000, insights) is retried by [`super::MetaPolicy`].
//!
//! A child of `client` so it shares the destination's kit, token and Meta error policy.

use super::{MetaDestination, Paging};
use crate::error::ConnectorError;
use crate::model::{AudienceSize, MetricsRow};
use crate::traits::{MetricsRange, MetricsSource};
use async_trait::async_trait;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;

/// The purchase action types tried, in order, when the config names none: the first present in a row
/// counts. `omni_purchase` is Ads Manager's "Purchases" column (all channels); `purchase` and the pixel's
/// `offsite_conversion.fb_pixel_purchase` appear on accounts and API versions that do not report it.
pub const DEFAULT_PURCHASE_ACTION_TYPES: [&str; 3] = [
    "omni_purchase",
    "purchase",
    "offsite_conversion.fb_pixel_purchase",
];
/// Insights rows requested per page (Meta may return fewer).
const INSIGHTS_PAGE_LIMIT: usize = 100;
/// Fields requested from the insights edge (all `AdsInsights` fields in the codegen spec).
const INSIGHTS_FIELDS: &str = "impressions,clicks,spend,actions,action_values,account_currency";

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

/// The custom audience node with its approximate size (`CustomAudience.json`: both bounds `int`).
#[derive(Debug, Deserialize)]
struct AudienceNode {
    #[serde(default)]
    approximate_count_lower_bound: Option<i64>,
    #[serde(default)]
    approximate_count_upper_bound: Option<i64>,
}

/// Meta's size band; a negative bound (Meta's "not available") is unknown, not a size.
fn size_of(node: &AudienceNode) -> Option<AudienceSize> {
    let known = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok());
    let (lower, upper) = (
        known(node.approximate_count_lower_bound),
        known(node.approximate_count_upper_bound),
    );
    (lower.is_some() || upper.is_some()).then_some(AudienceSize {
        lower,
        upper,
        match_rate_percent: None,
    })
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

/// Conversions and revenue of one insights row.
#[derive(Debug, Clone, PartialEq)]
struct Purchases {
    /// The action type counted, `None` when the row has none of the candidates.
    action_type: Option<String>,
    conversions: f64,
    revenue: f64,
}

/// Picks the first of `candidates` present in the row's `actions` or `action_values` and sums its
/// entries; none present means 0 and 0 with `action_type: None` (the caller decides whether to warn).
fn purchases(
    candidates: &[String],
    actions: &[ActionStat],
    values: &[ActionStat],
) -> Result<Purchases, String> {
    let present = |t: &str| {
        actions.iter().any(|a| a.action_type == t) || values.iter().any(|a| a.action_type == t)
    };
    let Some(chosen) = candidates.iter().find(|t| present(t)) else {
        return Ok(Purchases {
            action_type: None,
            conversions: 0.0,
            revenue: 0.0,
        });
    };
    Ok(Purchases {
        action_type: Some(chosen.clone()),
        conversions: action_sum(actions, chosen)?,
        revenue: action_sum(values, chosen)?,
    })
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
        let clicks = count(r.clicks.as_deref(), "clicks")?;
        let bought = purchases(&self.purchase_action_types, &r.actions, &r.action_values)?;
        if bought.action_type.is_none() && clicks > 0 {
            tracing::warn!(
                destination = %self.name,
                ad_id,
                date = %date,
                clicks,
                action_types = %self.purchase_action_types.join(","),
                "Meta insights: a day with clicks but none of the purchase action types; \
                 conversions and revenue recorded as 0 (set purchase_action_type if this account \
                 reports purchases under another type)"
            );
        }
        Ok(MetricsRow {
            date,
            audience_id: None,
            ad_id: Some(ad_id.to_string()),
            creative_id: None,
            impressions: count(r.impressions.as_deref(), "impressions")?,
            clicks,
            conversions: bought.conversions,
            spend: amount(r.spend.as_deref(), "spend")?,
            revenue: bought.revenue,
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
        let url = self.kit.url(&format!("{ad_id}/insights"));
        let range = json!({
            "since": since.format("%Y-%m-%d").to_string(),
            "until": until.format("%Y-%m-%d").to_string(),
        })
        .to_string();
        let mut rows = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let cursor = after.clone();
            let page: InsightsPage = self
                .kit
                .send_json(OP, &self.policy, |c| {
                    let mut query = vec![
                        ("fields", INSIGHTS_FIELDS.to_string()),
                        ("time_increment", "1".to_string()),
                        ("time_range", range.clone()),
                        ("limit", INSIGHTS_PAGE_LIMIT.to_string()),
                    ];
                    if let Some(a) = &cursor {
                        query.push(("after", a.clone()));
                    }
                    c.get(&url).query(&query)
                })
                .await?;
            for r in &page.data {
                rows.push(
                    self.insights_row(ad_id, r)
                        .map_err(|m| self.kit.invalid_response(OP, m))?,
                );
            }
            let next_cursor = page
                .paging
                .as_ref()
                .filter(|p| p.next.is_some())
                .and_then(|p| p.cursors.as_ref())
                .and_then(|c| c.after.clone());
            match crate::http::next_cursor(next_cursor, page.data.is_empty(), after.as_ref()) {
                Some(c) => after = Some(c),
                None => return Ok(rows),
            }
        }
    }
}

#[async_trait]
impl MetricsSource for MetaDestination {
    /// `object_ids` are ad ids (the `ad_id` of creative sets, `ad_ids` of syncs).
    async fn metrics_in_range(
        &self,
        object_ids: &[String],
        MetricsRange { since, until }: MetricsRange,
    ) -> Result<Vec<MetricsRow>, ConnectorError> {
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

    /// `GET /{audience_id}?fields=approximate_count_lower_bound,approximate_count_upper_bound`.
    async fn audience_size(&self, remote_id: &str) -> Result<Option<AudienceSize>, ConnectorError> {
        const OP: &str = "audience size";
        if remote_id.is_empty() || !remote_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(ConnectorError::Invalid {
                destination: self.name.clone(),
                message: format!("audience id `{remote_id}` is not a numeric Graph id"),
            });
        }
        let url = self.kit.url(remote_id);
        let node: AudienceNode = self
            .kit
            .send_json(OP, &self.policy, |c| {
                c.get(&url).query(&[(
                    "fields",
                    "approximate_count_lower_bound,approximate_count_upper_bound",
                )])
            })
            .await?;
        Ok(size_of(&node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(entries: &[(&str, &str)]) -> Vec<ActionStat> {
        entries
            .iter()
            .map(|(t, v)| ActionStat {
                action_type: t.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    /// Action types as Meta reports them (Insights API "actions" / "action_values" of AdsActionStats):
    /// the same purchases can appear as `omni_purchase`, `purchase` and the pixel type at once, so the
    /// first present wins and they are never added up.
    #[test]
    fn first_present_purchase_type_wins() {
        let default: Vec<String> = DEFAULT_PURCHASE_ACTION_TYPES.map(String::from).to_vec();
        let pixel = "offsite_conversion.fb_pixel_purchase";
        type Stats<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Stats, Stats, Option<&str>, f64, f64); 5] = [
            (
                &[("omni_purchase", "3"), ("purchase", "3"), (pixel, "2")],
                &[
                    ("omni_purchase", "90.5"),
                    ("purchase", "90.5"),
                    (pixel, "60"),
                ],
                Some("omni_purchase"),
                3.0,
                90.5,
            ),
            (
                &[("link_click", "40"), ("purchase", "2"), (pixel, "1")],
                &[("purchase", "80"), (pixel, "40")],
                Some("purchase"),
                2.0,
                80.0,
            ),
            (
                &[(pixel, "1")],
                &[(pixel, "19.99")],
                Some(pixel),
                1.0,
                19.99,
            ),
            // Present only in the values (a value without a count): still that type.
            (&[], &[("purchase", "5")], Some("purchase"), 0.0, 5.0),
            (&[("link_click", "40")], &[], None, 0.0, 0.0),
        ];
        for (actions, values, want_type, conv, rev) in cases {
            let got = purchases(&default, &stats(actions), &stats(values)).expect("parsed");
            assert_eq!(got.action_type.as_deref(), want_type, "{actions:?}");
            assert!((got.conversions - conv).abs() < 1e-9, "{got:?}");
            assert!((got.revenue - rev).abs() < 1e-9, "{got:?}");
        }
        // A configured type is the only candidate.
        let only_pixel = vec![pixel.to_string()];
        let got = purchases(
            &only_pixel,
            &stats(&[("omni_purchase", "3"), (pixel, "2")]),
            &stats(&[(pixel, "40")]),
        )
        .expect("parsed");
        assert_eq!(got.action_type.as_deref(), Some(pixel));
        assert!((got.conversions - 2.0).abs() < 1e-9);
        assert!(purchases(&default, &stats(&[("purchase", "two")]), &[]).is_err());
    }
}
