//! The ads half of the fake LinkedIn API: campaigns holding creatives whose `intendedStatus` changes by
//! Rest.li partial update (`POST /rest/adAccounts/{id}/creatives/{encoded urn}`, `X-RestLi-Method:
//! PARTIAL_UPDATE`, `{"patch": {"$set": {"intendedStatus"}}}` → 204), listed by the `criteria` finder
//! (`GET /rest/adAccounts/{id}/creatives?q=criteria&campaigns=List(urn%3A...)`), and per-creative daily
//! analytics that tests seed and `GET /rest/adAnalytics?q=analytics&pivot=CREATIVE&timeGranularity=DAILY
//! &dateRange=(start:(...),end:(...))&campaigns=List(...)&fields=...` serves. Queries are read raw, the
//! Rest.li 2.0 way: structure characters unencoded, URNs percent-encoded; anything else is a 400.
//! Throttle with `faults().throttle_next(n)` (a bare 429).
//!
//! A child of `linkedin` so it shares the fake's token and version checks and state.

use super::{li_error, FakeLinkedIn, LinkedInState};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// One day of one creative, as tests seed it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FakeCreativeDay {
    /// Impressions.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// External website conversions.
    pub conversions: u64,
    /// Cost in local currency.
    pub cost: f64,
    /// Conversion value in local currency.
    pub conversion_value: f64,
}

#[derive(Debug, Default)]
pub(super) struct AdsInner {
    /// creative id → (campaign id, intendedStatus).
    creatives: BTreeMap<String, (String, String)>,
    /// (creative id, (y, m, d)) → numbers.
    days: BTreeMap<(String, (i64, i64, i64)), FakeCreativeDay>,
    analytics_calls: usize,
}

impl FakeLinkedIn {
    /// Creates creatives (numeric ids) in a campaign; the first `ACTIVE`, the rest `PAUSED`.
    pub fn seed_campaign(&self, campaign_id: &str, creative_ids: &[&str]) {
        let mut inner = self.state.lock();
        for (i, c) in creative_ids.iter().enumerate() {
            let status = if i == 0 { "ACTIVE" } else { "PAUSED" };
            inner
                .ads
                .creatives
                .insert(c.to_string(), (campaign_id.to_string(), status.into()));
        }
    }

    /// A creative's `intendedStatus`.
    pub fn creative_status(&self, creative_id: &str) -> Option<String> {
        self.state
            .lock()
            .ads
            .creatives
            .get(creative_id)
            .map(|(_, s)| s.clone())
    }

    /// Sets one day of a creative's analytics.
    pub fn seed_creative_day(
        &self,
        creative_id: &str,
        (y, m, d): (i64, i64, i64),
        day: FakeCreativeDay,
    ) {
        self.state
            .lock()
            .ads
            .days
            .insert((creative_id.to_string(), (y, m, d)), day);
    }

    /// `adAnalytics` requests answered.
    pub fn analytics_calls(&self) -> usize {
        self.state.lock().ads.analytics_calls
    }
}

fn bad(message: &str) -> Response {
    li_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", 100, message)
}

fn not_found(message: &str) -> Response {
    li_error(StatusCode::NOT_FOUND, "NOT_FOUND", 0, message)
}

/// Raw `key=value` pairs of a Rest.li query (values not decoded).
fn raw_params(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Campaign ids from `List(urn%3Ali%3AsponsoredCampaign%3AN,...)`; raw `urn:` items are refused, as
/// LinkedIn refuses unencoded URNs inside Rest.li lists.
fn campaign_list(raw: Option<&String>) -> Result<Vec<String>, Response> {
    let inner = raw
        .and_then(|v| v.strip_prefix("List("))
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| bad("campaigns must be List(...)"))?;
    inner
        .split(',')
        .map(|item| {
            item.strip_prefix("urn%3Ali%3AsponsoredCampaign%3A")
                .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
                .map(str::to_string)
                .ok_or_else(|| bad(&format!("invalid campaign URN in List: {item}")))
        })
        .collect()
}

/// A calendar day as (year, month, day).
type Ymd = (i64, i64, i64);

/// `(year:Y,month:M,day:D)`.
fn ymd(s: &str) -> Option<Ymd> {
    let s = s.strip_prefix('(')?.strip_suffix(')')?;
    let mut y = None;
    let mut m = None;
    let mut d = None;
    for part in s.split(',') {
        let (k, v) = part.split_once(':')?;
        let v: i64 = v.parse().ok()?;
        match k {
            "year" => y = Some(v),
            "month" => m = Some(v),
            "day" => d = Some(v),
            _ => return None,
        }
    }
    Some((y?, m?, d?))
}

/// `(start:(...),end:(...))`.
fn date_range(raw: Option<&String>) -> Option<(Ymd, Ymd)> {
    let s = raw?.strip_prefix("(start:")?.strip_suffix(')')?;
    let (start, end) = s.split_once(",end:")?;
    Some((ymd(start)?, ymd(end)?))
}

/// Routes `/adAccounts/...` and `/adAnalytics`; `None` when the path is not ours.
pub(super) fn dispatch(
    st: &LinkedInState,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    if path == "/adAnalytics" && method == Method::GET {
        return Some(analytics(st, query));
    }
    let rest = path.strip_prefix("/adAccounts/")?;
    let (account, rest) = rest.split_once('/')?;
    if format!("urn:li:sponsoredAccount:{account}") != st.account {
        return Some(li_error(
            StatusCode::FORBIDDEN,
            "ACCESS_DENIED",
            100,
            "Not enough permissions to access this ad account",
        ));
    }
    if rest == "creatives" && method == Method::GET {
        return Some(find_creatives(st, query));
    }
    let urn = rest.strip_prefix("creatives/")?;
    if method != Method::POST {
        return None;
    }
    let restli = headers
        .get("x-restli-method")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !restli.eq_ignore_ascii_case("PARTIAL_UPDATE") {
        return Some(bad("X-RestLi-Method: PARTIAL_UPDATE is required"));
    }
    Some(partial_update(st, urn, body))
}

fn find_creatives(st: &LinkedInState, query: Option<&str>) -> Response {
    let p = raw_params(query);
    if p.get("q").map(String::as_str) != Some("criteria") {
        return bad("q=criteria is required");
    }
    let campaigns = match campaign_list(p.get("campaigns")) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let inner = st.lock();
    let elements: Vec<Value> = inner
        .ads
        .creatives
        .iter()
        .filter(|(_, (c, _))| campaigns.contains(c))
        .map(|(id, (c, s))| {
            json!({
                "id": format!("urn:li:sponsoredCreative:{id}"),
                "campaign": format!("urn:li:sponsoredCampaign:{c}"),
                "intendedStatus": s,
            })
        })
        .collect();
    Json(json!({"elements": elements, "metadata": {}})).into_response()
}

fn partial_update(st: &LinkedInState, encoded_urn: &str, body: &[u8]) -> Response {
    let Some(id) = encoded_urn.strip_prefix("urn%3Ali%3AsponsoredCreative%3A") else {
        return bad(&format!(
            "invalid creative key {encoded_urn} (URNs must be encoded)"
        ));
    };
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return bad("Invalid JSON");
    };
    let status = body
        .pointer("/patch/$set/intendedStatus")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !matches!(status, "ACTIVE" | "PAUSED" | "ARCHIVED") {
        return bad("patch.$set.intendedStatus must be ACTIVE, PAUSED or ARCHIVED");
    }
    let mut inner = st.lock();
    let Some(entry) = inner.ads.creatives.get_mut(id) else {
        return not_found(&format!(
            "Creative urn:li:sponsoredCreative:{id} does not exist"
        ));
    };
    entry.1 = status.to_string();
    StatusCode::NO_CONTENT.into_response()
}

fn analytics(st: &LinkedInState, query: Option<&str>) -> Response {
    let p = raw_params(query);
    let want = |k: &str, v: &str| p.get(k).map(String::as_str) == Some(v);
    if !(want("q", "analytics") && want("pivot", "CREATIVE") && want("timeGranularity", "DAILY")) {
        return bad("q=analytics, pivot=CREATIVE and timeGranularity=DAILY are required here");
    }
    let Some((start, end)) = date_range(p.get("dateRange")) else {
        return bad("dateRange must be (start:(year:Y,month:M,day:D),end:(...))");
    };
    let campaigns = match campaign_list(p.get("campaigns")) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let fields: Vec<&str> = p
        .get("fields")
        .map(|f| f.split(',').collect())
        .unwrap_or_default();
    let mut inner = st.lock();
    inner.ads.analytics_calls += 1;
    let elements: Vec<Value> = inner
        .ads
        .days
        .iter()
        .filter(|((c, d), _)| {
            *d >= start
                && *d <= end
                && inner
                    .ads
                    .creatives
                    .get(c)
                    .is_some_and(|(camp, _)| campaigns.contains(camp))
        })
        .map(|((c, (y, m, d)), v)| {
            let mut o = Map::new();
            let mut put = |k: &str, val: Value| {
                if fields.is_empty() || fields.contains(&k) {
                    o.insert(k.into(), val);
                }
            };
            put("impressions", json!(v.impressions));
            put("clicks", json!(v.clicks));
            put("externalWebsiteConversions", json!(v.conversions));
            put("costInLocalCurrency", json!(format!("{}", v.cost)));
            put(
                "conversionValueInLocalCurrency",
                json!(format!("{}", v.conversion_value)),
            );
            put(
                "pivotValues",
                json!([format!("urn:li:sponsoredCreative:{c}")]),
            );
            let date = json!({"year": y, "month": m, "day": d});
            put("dateRange", json!({"start": date, "end": date}));
            Value::Object(o)
        })
        .collect();
    Json(json!({"elements": elements, "paging": {"start": 0, "count": 10, "links": []}}))
        .into_response()
}
