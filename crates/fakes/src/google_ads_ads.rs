//! The ads half of the fake Google Ads API: ad groups and their ads (`ENABLED`/`PAUSED`), changed by
//! `adGroupAds:mutate` / `adGroups:mutate` (`update` + `updateMask: status`, atomic: one bad operation
//! fails the request and changes nothing), listed by `googleAds:search` over `ad_group_ad`, and per-ad
//! daily metrics that tests seed and `googleAds:searchStream` serves for a GAQL query over `ad_group_ad`
//! filtered by `segments.date BETWEEN 'a' AND 'b'` and `ad_group.id = n` / `IN (...)`, in batches of
//! [`STREAM_BATCH`] results (int64 fields as strings, doubles as numbers, cost in micros). Throttle it with
//! `faults().throttle_next(n)` (429 `RESOURCE_EXHAUSTED` with `retryDelay`).
//!
//! A child of `google_ads` so it shares the fake's auth checks, error shape and state.

use super::{bad_request, FakeGoogleAds, GoogleState};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Results per searchStream batch (small, so tests see several).
pub const STREAM_BATCH: usize = 4;

/// One day of one ad, as tests seed it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FakeAdStats {
    /// Impressions.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// Conversions (fractional in Google Ads).
    pub conversions: f64,
    /// Cost in micros.
    pub cost_micros: u64,
    /// Conversion value.
    pub conversions_value: f64,
}

#[derive(Debug, Default)]
pub(super) struct AdsInner {
    /// (ad group id, ad id) → status.
    ads: BTreeMap<(String, String), String>,
    /// ad group id → status.
    groups: BTreeMap<String, String>,
    /// (ad group id, ad id, date) → stats.
    stats: BTreeMap<(String, String, String), FakeAdStats>,
    stream_calls: usize,
}

impl FakeGoogleAds {
    /// Creates an ad group (ENABLED) holding these ads; the first is `ENABLED`, the rest `PAUSED`.
    pub fn seed_ad_group(&self, ad_group_id: &str, ad_ids: &[&str]) {
        let mut inner = self.state.lock();
        inner
            .ads
            .groups
            .insert(ad_group_id.to_string(), "ENABLED".into());
        for (i, ad) in ad_ids.iter().enumerate() {
            let status = if i == 0 { "ENABLED" } else { "PAUSED" };
            inner
                .ads
                .ads
                .insert((ad_group_id.to_string(), ad.to_string()), status.into());
        }
    }

    /// An ad's status (`ENABLED`, `PAUSED`), if it exists.
    pub fn ad_status(&self, ad_group_id: &str, ad_id: &str) -> Option<String> {
        self.state
            .lock()
            .ads
            .ads
            .get(&(ad_group_id.to_string(), ad_id.to_string()))
            .cloned()
    }

    /// An ad group's status.
    pub fn ad_group_status(&self, ad_group_id: &str) -> Option<String> {
        self.state.lock().ads.groups.get(ad_group_id).cloned()
    }

    /// Sets one day (`YYYY-MM-DD`) of an ad's metrics.
    pub fn seed_ad_stats(&self, ad_group_id: &str, ad_id: &str, date: &str, stats: FakeAdStats) {
        self.state.lock().ads.stats.insert(
            (ad_group_id.to_string(), ad_id.to_string(), date.to_string()),
            stats,
        );
    }

    /// searchStream requests answered.
    pub fn search_stream_calls(&self) -> usize {
        self.state.lock().ads.stream_calls
    }
}

fn query_error(message: &str) -> Response {
    bad_request(message, json!({"queryError": "UNEXPECTED_INPUT"}))
}

/// The ad group ids of `ad_group.id = n` or `ad_group.id IN (a, b)`.
fn ad_group_filter(query: &str) -> Option<Vec<String>> {
    let lower = query.to_lowercase();
    let where_at = lower.find(" where ")?;
    let pos = where_at + lower[where_at..].find("ad_group.id")?;
    let rest = query[pos + "ad_group.id".len()..].trim_start();
    let list = if let Some(r) = rest.strip_prefix('=') {
        r.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .map(str::to_string)
            .into_iter()
            .collect::<Vec<_>>()
    } else if rest.to_lowercase().starts_with("in") {
        let open = rest.find('(')?;
        let close = rest.find(')')?;
        rest[open + 1..close]
            .split(',')
            .map(|s| s.trim().to_string())
            .collect()
    } else {
        return None;
    };
    (!list.is_empty()
        && list
            .iter()
            .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())))
    .then_some(list)
}

/// `googleAds:search` over `ad_group_ad` (one page: ad groups hold few ads).
pub(super) fn search(st: &GoogleState, cid: &str, query: &str) -> Response {
    let Some(groups) = ad_group_filter(query) else {
        return query_error("Error in query: expected an ad_group.id condition.");
    };
    let skip_removed = query.contains("!= 'REMOVED'");
    let inner = st.lock();
    let results: Vec<Value> = inner
        .ads
        .ads
        .iter()
        .filter(|((g, _), s)| groups.contains(g) && !(skip_removed && s.as_str() == "REMOVED"))
        .map(|((g, a), s)| {
            json!({"adGroupAd": {"resourceName": format!("customers/{cid}/adGroupAds/{g}~{a}"), "ad": {"id": a}, "status": s}})
        })
        .collect();
    Json(json!({"results": results, "fieldMask": "adGroupAd.resourceName,adGroupAd.ad.id,adGroupAd.status"}))
        .into_response()
}

fn mutate_error(message: &str, index: usize) -> Response {
    bad_request(
        message,
        json!({"mutateError": "RESOURCE_NOT_FOUND", "index": index}),
    )
}

/// `adGroupAds:mutate` and `adGroups:mutate` with status updates; atomic.
pub(super) fn mutate(st: &GoogleState, cid: &str, body: &Value, ad_group_ads: bool) -> Response {
    let Some(ops) = body
        .get("operations")
        .and_then(Value::as_array)
        .filter(|o| !o.is_empty())
    else {
        return bad_request(
            "operations must not be empty",
            json!({"mutateError": "NO_OPERATIONS"}),
        );
    };
    let prefix = if ad_group_ads {
        format!("customers/{cid}/adGroupAds/")
    } else {
        format!("customers/{cid}/adGroups/")
    };
    let mut changes = Vec::new();
    let mut inner = st.lock();
    for (i, op) in ops.iter().enumerate() {
        if op.get("updateMask").and_then(Value::as_str) != Some("status") {
            return bad_request(
                "updateMask must be `status`",
                json!({"fieldMaskError": "FIELD_NOT_FOUND"}),
            );
        }
        let Some(update) = op.get("update") else {
            return bad_request(
                "only update operations are supported",
                json!({"mutateError": "OPERATION_NOT_SUPPORTED"}),
            );
        };
        let status = update
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !matches!(status, "ENABLED" | "PAUSED") {
            return bad_request(
                &format!("invalid status {status:?}"),
                json!({"requestError": "INVALID_ENUM_VALUE"}),
            );
        }
        let Some(id) = update
            .get("resourceName")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(&prefix))
        else {
            return mutate_error("resource name does not belong to this customer", i);
        };
        let exists = if ad_group_ads {
            id.split_once('~')
                .is_some_and(|(g, a)| inner.ads.ads.contains_key(&(g.to_string(), a.to_string())))
        } else {
            inner.ads.groups.contains_key(id)
        };
        if !exists {
            return mutate_error(&format!("resource {prefix}{id} was not found"), i);
        }
        changes.push((id.to_string(), status.to_string()));
    }
    let mut results = Vec::new();
    for (id, status) in changes {
        if ad_group_ads {
            if let Some((g, a)) = id.split_once('~') {
                inner.ads.ads.insert((g.to_string(), a.to_string()), status);
            }
        } else {
            inner.ads.groups.insert(id.clone(), status);
        }
        results.push(json!({"resourceName": format!("{prefix}{id}")}));
    }
    Json(json!({ "results": results })).into_response()
}

/// The two dates of `segments.date BETWEEN 'a' AND 'b'`.
fn date_range(query: &str) -> Option<(String, String)> {
    let lower = query.to_lowercase();
    let pos = lower.find("segments.date between")?;
    let mut quoted = query[pos..].split('\'').skip(1).step_by(2);
    Some((quoted.next()?.to_string(), quoted.next()?.to_string()))
}

/// `googleAds:searchStream` over `ad_group_ad` with metrics.
pub(super) fn search_stream(st: &GoogleState, body: &Value) -> Response {
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let lower = query.to_lowercase();
    if !lower.starts_with("select ") || !lower.contains(" from ad_group_ad") {
        return bad_request(
            "Error in query: only ad_group_ad is served by this fake.",
            json!({"queryError": "PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE"}),
        );
    }
    let select = &lower["select ".len()..lower.find(" from ").unwrap_or(lower.len())];
    let fields: Vec<&str> = select.split(',').map(str::trim).collect();
    if !fields.contains(&"segments.date") {
        return query_error("Error in query: daily rows need segments.date in SELECT.");
    }
    let Some((since, until)) = date_range(query) else {
        return query_error("Error in query: metrics need a finite segments.date range.");
    };
    let Some(groups) = ad_group_filter(query) else {
        return query_error("Error in query: expected an ad_group.id condition.");
    };
    let mut inner = st.lock();
    inner.ads.stream_calls += 1;
    let rows: Vec<Value> = inner
        .ads
        .stats
        .iter()
        .filter(|((g, _, d), _)| groups.contains(g) && *d >= since && *d <= until)
        .map(|((g, a, d), s)| {
            let mut metrics = serde_json::Map::new();
            let mut put = |field: &str, key: &str, v: Value| {
                if fields.contains(&field) {
                    metrics.insert(key.into(), v);
                }
            };
            put(
                "metrics.impressions",
                "impressions",
                json!(s.impressions.to_string()),
            );
            put("metrics.clicks", "clicks", json!(s.clicks.to_string()));
            put("metrics.conversions", "conversions", json!(s.conversions));
            put(
                "metrics.cost_micros",
                "costMicros",
                json!(s.cost_micros.to_string()),
            );
            put(
                "metrics.conversions_value",
                "conversionsValue",
                json!(s.conversions_value),
            );
            json!({
                "segments": {"date": d},
                "adGroup": {"id": g},
                "adGroupAd": {"ad": {"id": a}},
                "metrics": metrics,
            })
        })
        .collect();
    let batches: Vec<Value> = rows
        .chunks(STREAM_BATCH)
        .map(|c| json!({"results": c, "fieldMask": fields.join(","), "requestId": "fake-stream"}))
        .collect();
    Json(Value::Array(batches)).into_response()
}
