//! The ads half of the fake Meta: ads whose live creative and status change with `POST /{ad_id}`
//! (`creative={"creative_id"}` or `status=ACTIVE|PAUSED`), and per-ad daily insights that tests seed and
//! `GET /{ad_id}/insights` serves the way Meta does: `time_range` JSON and `time_increment=1` required for
//! daily rows (without it the range is summed into one row), every number a string, `actions` /
//! `action_values` lists, and small pages ([`INSIGHTS_PAGE_SIZE`]) linked by `paging.cursors.after` and
//! `paging.next`. Throttle it with `set_throttle_code(80000)` + `faults().throttle_next(n)`.
//!
//! A child of `meta` so it shares the fake's token check, error envelope and state.

use super::{FakeMeta, MetaState};
use crate::skeleton::request_params;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[path = "meta_insights_fields.rs"]
mod insights_fields;
use insights_fields::{ADS_INSIGHTS_FIELDS, CUSTOM_AUDIENCE_FIELDS};

/// Insights rows per page at most (small, so tests exercise paging).
pub const INSIGHTS_PAGE_SIZE: usize = 3;

/// One ad as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAd {
    /// The creative currently live on the ad.
    pub creative_id: String,
    /// `ACTIVE` or `PAUSED`.
    pub status: String,
    /// Every creative the ad has carried, in order (the seeded one first).
    pub history: Vec<String>,
}

/// One day of one ad's delivery, as tests seed it (Meta's string formatting is applied when served).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FakeInsights {
    /// Impressions.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// Spend in account currency.
    pub spend: f64,
    /// `actions` entries: (action_type, count).
    pub actions: Vec<(String, f64)>,
    /// `action_values` entries: (action_type, value).
    pub action_values: Vec<(String, f64)>,
}

/// Ads state of the fake Meta.
#[derive(Debug, Default)]
pub(super) struct AdsInner {
    ads: BTreeMap<String, FakeAd>,
    creatives: BTreeSet<String>,
    /// (ad id, YYYY-MM-DD) → that day's numbers.
    insights: BTreeMap<(String, String), FakeInsights>,
    insights_calls: usize,
    /// The ad account's currency (`account_currency`), `USD` unless a test sets another.
    currency: Option<String>,
}

impl FakeMeta {
    /// Registers ad creatives (as if made under `/act_{id}/adcreatives`); only these can be swapped in.
    pub fn seed_creatives<I, S>(&self, ids: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut inner = self.state.lock();
        inner.ads.creatives.extend(ids.into_iter().map(Into::into));
    }

    /// Creates an ad carrying `creative_id` (registered as a creative too), `ACTIVE`.
    pub fn seed_ad(&self, ad_id: &str, creative_id: &str) {
        let mut inner = self.state.lock();
        inner.ads.creatives.insert(creative_id.to_string());
        inner.ads.ads.insert(
            ad_id.to_string(),
            FakeAd {
                creative_id: creative_id.to_string(),
                status: "ACTIVE".into(),
                history: vec![creative_id.to_string()],
            },
        );
    }

    /// The ad's current state.
    pub fn ad(&self, ad_id: &str) -> Option<FakeAd> {
        self.state.lock().ads.ads.get(ad_id).cloned()
    }

    /// Sets the ad account's currency (ISO 4217) served as `account_currency`.
    pub fn set_account_currency(&self, currency: &str) {
        self.state.lock().ads.currency = Some(currency.to_string());
    }

    /// Sets one day (`YYYY-MM-DD`) of an ad's insights.
    pub fn seed_insights(&self, ad_id: &str, date: &str, day: FakeInsights) {
        self.state
            .lock()
            .ads
            .insights
            .insert((ad_id.to_string(), date.to_string()), day);
    }

    /// Insights requests answered (throttled ones excluded).
    pub fn insights_calls(&self) -> usize {
        self.state.lock().ads.insights_calls
    }
}

fn parse_req(
    st: &MetaState,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Map<String, Value>, Box<Response>> {
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok());
    let params = request_params(query, ct, body).map_err(|e| {
        Box::new(st.error(
            StatusCode::BAD_REQUEST,
            100,
            None,
            &format!("(#100) {e}"),
            false,
        ))
    })?;
    st.check_auth(headers, &params)?;
    Ok(params)
}

fn invalid_param(st: &MetaState, message: &str) -> Response {
    st.error(
        StatusCode::BAD_REQUEST,
        100,
        None,
        &format!("(#100) {message}"),
        false,
    )
}

/// Meta's approximate size band of `n` matched people: `(lower, upper)` rounded to the hundred below and
/// above. The real bands are coarser and Meta's own; the fake only has to be a band around the truth.
pub fn approximate_bounds(n: usize) -> (usize, usize) {
    let lower = n - n % 100;
    (
        lower,
        if n.is_multiple_of(100) {
            n
        } else {
            lower + 100
        },
    )
}

/// `GET /{custom_audience_id}?fields=...`: the audience node, with only the fields asked for (a field the
/// `CustomAudience` spec does not have is refused); `approximate_count_lower_bound` /
/// `approximate_count_upper_bound` from [`approximate_bounds`] of its members.
pub(super) async fn audience_node(
    State(st): State<Arc<MetaState>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = match parse_req(&st, query.as_deref(), &headers, &[]) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let fields: Vec<&str> = params
        .get("fields")
        .and_then(Value::as_str)
        .unwrap_or("id")
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    if let Some(bad) = fields.iter().find(|f| !CUSTOM_AUDIENCE_FIELDS.contains(f)) {
        return st.error(
            StatusCode::BAD_REQUEST,
            100,
            None,
            &format!(
                "(#100) Tried accessing nonexisting field ({bad}) on node type (CustomAudience)"
            ),
            false,
        );
    }
    let inner = st.lock();
    let Some(a) = inner.audiences.iter().find(|a| a.id == id) else {
        drop(inner);
        return st.missing_object(&id, &Method::GET);
    };
    let (lower, upper) = approximate_bounds(a.members.len());
    let mut o = Map::new();
    o.insert("id".into(), json!(a.id));
    for f in fields {
        let v = match f {
            "name" => json!(a.name),
            "description" => json!(a.description),
            "approximate_count_lower_bound" => json!(lower),
            "approximate_count_upper_bound" => json!(upper),
            "subtype" => json!("CUSTOM"),
            _ => continue,
        };
        o.insert(f.to_string(), v);
    }
    Json(Value::Object(o)).into_response()
}

/// `POST /{ad_id}`: `creative={"creative_id"}` and/or `status`.
pub(super) async fn update_ad(
    State(st): State<Arc<MetaState>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match parse_req(&st, query.as_deref(), &headers, &body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let creative = match params.get("creative") {
        None => None,
        Some(v) => {
            let parsed = match v {
                Value::String(s) => serde_json::from_str::<Value>(s).ok(),
                other => Some(other.clone()),
            };
            match parsed
                .as_ref()
                .and_then(|c| c.get("creative_id"))
                .and_then(|c| match c {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }) {
                Some(c) => Some(c),
                None => {
                    return invalid_param(
                        &st,
                        "Param creative must be a JSON object with creative_id",
                    )
                }
            }
        }
    };
    let status = match params.get("status").and_then(Value::as_str) {
        None => None,
        Some(s @ ("ACTIVE" | "PAUSED")) => Some(s.to_string()),
        Some(other) => {
            return invalid_param(
                &st,
                &format!(
                "Param status must be one of {{ACTIVE, PAUSED, DELETED, ARCHIVED}}, got {other}"
            ),
            )
        }
    };
    if creative.is_none() && status.is_none() {
        return invalid_param(&st, "Nothing to update");
    }
    let mut inner = st.lock();
    if let Some(c) = &creative {
        if !inner.ads.creatives.contains(c) {
            drop(inner);
            return st.error(
                StatusCode::BAD_REQUEST,
                100,
                Some(1487390),
                &format!("(#100) Creative {c} does not exist or belongs to another ad account"),
                false,
            );
        }
    }
    let Some(ad) = inner.ads.ads.get_mut(&id) else {
        drop(inner);
        return st.missing_object(&id, &Method::POST);
    };
    if let Some(c) = creative {
        if ad.creative_id != c {
            ad.history.push(c.clone());
        }
        ad.creative_id = c;
    }
    if let Some(s) = status {
        ad.status = s;
    }
    Json(json!({"success": true})).into_response()
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn action_list(entries: &[(String, f64)]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|(t, v)| json!({"action_type": t, "value": number(*v)}))
            .collect(),
    )
}

/// `GET /{ad_id}/insights`.
pub(super) async fn insights(
    State(st): State<Arc<MetaState>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = match parse_req(&st, query.as_deref(), &headers, &[]) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let get = |k: &str| params.get(k).and_then(Value::as_str);
    let fields: Vec<&str> = get("fields")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    // The Graph API refuses a field the AdsInsights node does not have.
    if let Some(bad) = fields.iter().find(|f| !ADS_INSIGHTS_FIELDS.contains(f)) {
        return invalid_param(
            &st,
            &format!("{bad} is not valid for fields param. please check https://developers.facebook.com/docs/marketing-api/insights/parameters/ for all valid values"),
        );
    }
    let Some(range) = get("time_range").and_then(|r| serde_json::from_str::<Value>(r).ok()) else {
        return invalid_param(&st, "time_range must be a JSON object {since, until}");
    };
    let (Some(since), Some(until)) = (
        range.get("since").and_then(Value::as_str),
        range.get("until").and_then(Value::as_str),
    ) else {
        return invalid_param(&st, "time_range needs since and until");
    };
    let daily = match get("time_increment") {
        None => false,
        Some("1") => true,
        Some(other) => return invalid_param(&st, &format!("unsupported time_increment {other}")),
    };
    let limit = get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, INSIGHTS_PAGE_SIZE);
    let start = match get("after") {
        None => 0,
        Some(c) => match c.strip_prefix("insights-").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return invalid_param(&st, "Invalid cursor"),
        },
    };
    let mut inner = st.lock();
    if !inner.ads.ads.contains_key(&id) {
        drop(inner);
        return st.missing_object(&id, &Method::GET);
    }
    inner.ads.insights_calls += 1;
    let currency = inner.ads.currency.clone().unwrap_or_else(|| "USD".into());
    let days: Vec<(String, FakeInsights)> = inner
        .ads
        .insights
        .range((id.clone(), since.to_string())..=(id.clone(), until.to_string()))
        .map(|((_, d), v)| (d.clone(), v.clone()))
        .collect();
    drop(inner);
    let rows: Vec<(String, String, FakeInsights)> = if daily {
        days.into_iter().map(|(d, v)| (d.clone(), d, v)).collect()
    } else if days.is_empty() {
        Vec::new()
    } else {
        let mut sum = FakeInsights::default();
        for (_, v) in &days {
            sum.impressions += v.impressions;
            sum.clicks += v.clicks;
            sum.spend += v.spend;
            sum.actions.extend(v.actions.iter().cloned());
            sum.action_values.extend(v.action_values.iter().cloned());
        }
        vec![(since.to_string(), until.to_string(), sum)]
    };
    let total = rows.len();
    let end = (start + limit).min(total);
    let data: Vec<Value> = rows[start.min(total)..end]
        .iter()
        .map(|(from, to, v)| {
            let mut o = Map::new();
            o.insert("date_start".into(), json!(from));
            o.insert("date_stop".into(), json!(to));
            // Like the Graph API, only the fields asked for come back.
            if fields.contains(&"account_currency") {
                o.insert("account_currency".into(), json!(currency));
            }
            if fields.contains(&"impressions") {
                o.insert("impressions".into(), json!(v.impressions.to_string()));
            }
            if fields.contains(&"clicks") {
                o.insert("clicks".into(), json!(v.clicks.to_string()));
            }
            if fields.contains(&"spend") {
                o.insert("spend".into(), json!(number(v.spend)));
            }
            // Meta leaves `actions` out when there were none.
            if fields.contains(&"actions") && !v.actions.is_empty() {
                o.insert("actions".into(), action_list(&v.actions));
            }
            if fields.contains(&"action_values") && !v.action_values.is_empty() {
                o.insert("action_values".into(), action_list(&v.action_values));
            }
            Value::Object(o)
        })
        .collect();
    let mut paging = json!({"cursors": {"before": format!("insights-{start}"), "after": format!("insights-{end}")}});
    if end < total {
        let base = st.base_url.get().cloned().unwrap_or_default();
        paging["next"] = json!(format!(
            "{base}/{id}/insights?limit={limit}&after=insights-{end}&access_token={}",
            st.token
        ));
    }
    Json(json!({"data": data, "paging": paging})).into_response()
}
