//! The ads half of the fake TikTok API: ad groups holding ads (`ENABLE`/`DISABLE`), listed by
//! `GET /ad/get/` (`filtering={"adgroup_ids": [...]}`, paged) and switched by `POST /ad/status/update/`
//! `{advertiser_id, ad_ids, operation_status}` (unknown ad ids: code 40002, nothing changes), and per-ad
//! daily stats that tests seed and `GET /report/integrated/get/` serves the way TikTok does: `BASIC` /
//! `AUCTION_AD` only, dimensions `ad_id` + `stat_time_day`, ≤ 30 days, `page_size` ≤ 1000 (the fake may
//! serve fewer per page, see [`FakeTikTok::set_report_page_cap`]), `filtering` by `adgroup_ids`, every
//! metric a string and `stat_time_day` as `YYYY-MM-DD 00:00:00`, all inside the `{code, message, data}`
//! envelope. Throttle with `faults().throttle_next(n)` (code 40100 at HTTP 200).
//!
//! A child of `tiktok` so it shares the fake's token check, envelope and state.

use super::{FakeTikTok, TikTokState};
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// One day of one ad, as tests seed it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FakeAdDay {
    /// Impressions.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// Conversions.
    pub conversion: u64,
    /// Spend in account currency.
    pub spend: f64,
    /// In-app purchase value (`total_purchase_value`, the App event "Purchase").
    pub total_purchase_value: f64,
    /// Web "Complete Payment" value (`total_complete_payment_rate`, despite its name).
    pub total_complete_payment_rate: f64,
    /// Web "Complete Payment" events (`complete_payment`).
    pub complete_payment: u64,
}

#[derive(Debug, Default)]
pub(super) struct AdsInner {
    /// ad id → (ad group id, status).
    ads: BTreeMap<String, (String, String)>,
    /// (ad id, date) → stats.
    days: BTreeMap<(String, String), FakeAdDay>,
    report_page_cap: Option<usize>,
    report_calls: usize,
}

impl FakeTikTok {
    /// Creates ads in an ad group; the first `ENABLE`, the rest `DISABLE`.
    pub fn seed_ad_group(&self, adgroup_id: &str, ad_ids: &[&str]) {
        let mut inner = self.state.lock();
        for (i, ad) in ad_ids.iter().enumerate() {
            let status = if i == 0 { "ENABLE" } else { "DISABLE" };
            inner
                .ads
                .ads
                .insert(ad.to_string(), (adgroup_id.to_string(), status.into()));
        }
    }

    /// An ad's operation status.
    pub fn ad_status(&self, ad_id: &str) -> Option<String> {
        self.state.lock().ads.ads.get(ad_id).map(|(_, s)| s.clone())
    }

    /// Sets one day (`YYYY-MM-DD`) of an ad's stats.
    pub fn seed_ad_day(&self, ad_id: &str, date: &str, day: FakeAdDay) {
        self.state
            .lock()
            .ads
            .days
            .insert((ad_id.to_string(), date.to_string()), day);
    }

    /// Serves at most `n` report rows per page whatever `page_size` asks (to exercise paging).
    pub fn set_report_page_cap(&self, n: usize) {
        self.state.lock().ads.report_page_cap = Some(n.max(1));
    }

    /// Report requests answered.
    pub fn report_calls(&self) -> usize {
        self.state.lock().ads.report_calls
    }
}

fn params(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn json_param(p: &BTreeMap<String, String>, key: &str) -> Option<Value> {
    p.get(key).and_then(|v| serde_json::from_str(v).ok())
}

fn page_of(p: &BTreeMap<String, String>, max: usize) -> Result<(usize, usize), String> {
    let page = p
        .get("page")
        .map(|v| v.parse::<usize>().map_err(|_| "page: Not a valid integer."))
        .transpose()?
        .unwrap_or(1);
    let size = p
        .get("page_size")
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| "page_size: Not a valid integer.")
        })
        .transpose()?
        .unwrap_or(10);
    if page == 0 || size == 0 || size > max {
        return Err(format!("page_size: Must be between 1 and {max}."));
    }
    Ok((page, size))
}

fn page_info(page: usize, size: usize, total: usize) -> Value {
    json!({"page": page, "page_size": size, "total_number": total, "total_page": total.div_ceil(size)})
}

/// `GET /ad/get/`.
pub(super) fn list_ads(
    st: &TikTokState,
    headers: &axum::http::HeaderMap,
    query: Option<&str>,
) -> Response {
    let p = params(query);
    if let Err(r) = st.check(headers, p.get("advertiser_id").map(String::as_str)) {
        return r;
    }
    let (page, size) = match page_of(&p, 1000) {
        Ok(x) => x,
        Err(e) => return st.error(40002, &e),
    };
    let groups: Vec<String> = json_param(&p, "filtering")
        .and_then(|f| f.get("adgroup_ids").cloned())
        .and_then(|g| serde_json::from_value(g).ok())
        .unwrap_or_default();
    let inner = st.lock();
    let all: Vec<Value> = inner
        .ads
        .ads
        .iter()
        .filter(|(_, (g, _))| groups.is_empty() || groups.contains(g))
        .map(|(id, (g, s))| json!({"ad_id": id, "adgroup_id": g, "operation_status": s}))
        .collect();
    let start = ((page - 1) * size).min(all.len());
    let end = (start + size).min(all.len());
    st.ok(json!({"list": &all[start..end], "page_info": page_info(page, size, all.len())}))
}

/// `POST /ad/status/update/` (body already checked for token and advertiser).
pub(super) fn update_status(st: &TikTokState, body: &Value) -> Response {
    let status = body
        .get("operation_status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !matches!(status, "ENABLE" | "DISABLE" | "DELETE") {
        return st.error(
            40002,
            "operation_status: Must be one of ENABLE, DISABLE, DELETE.",
        );
    }
    let Some(ids) = body
        .get("ad_ids")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty() && a.len() <= 20)
    else {
        return st.error(40002, "ad_ids: Length must be between 1 and 20.");
    };
    let ids: Vec<String> = ids
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let mut inner = st.lock();
    if let Some(missing) = ids.iter().find(|id| !inner.ads.ads.contains_key(*id)) {
        let msg = format!("ad_ids: ad {missing} does not exist.");
        drop(inner);
        return st.error(40002, &msg);
    }
    for id in &ids {
        if let Some(ad) = inner.ads.ads.get_mut(id) {
            ad.1 = status.to_string();
        }
    }
    drop(inner);
    st.ok(json!({"ad_ids": ids, "status": status}))
}

/// The report metrics the fake computes; any other name is refused (TikTok refuses names it does not know).
/// Names and meanings from the SDK's metric enum (`yml_files/smart_plus_material_report_breakdown.yml`):
/// `complete_payment` = web Complete Payment events, `total_complete_payment_rate` = their total value,
/// `total_purchase_value` = the App "Purchase" event's value.
const REPORT_METRICS: &[&str] = &[
    "impressions",
    "clicks",
    "conversion",
    "spend",
    "total_purchase_value",
    "total_complete_payment_rate",
    "complete_payment",
];

fn money(v: f64) -> String {
    format!("{v:.2}")
}

/// `GET /report/integrated/get/`.
pub(super) fn report(
    st: &TikTokState,
    headers: &axum::http::HeaderMap,
    query: Option<&str>,
) -> Response {
    let p = params(query);
    if let Err(r) = st.check(headers, p.get("advertiser_id").map(String::as_str)) {
        return r;
    }
    if p.get("report_type").map(String::as_str) != Some("BASIC")
        || p.get("data_level").map(String::as_str) != Some("AUCTION_AD")
    {
        return st.error(
            40002,
            "This fake serves report_type BASIC at data_level AUCTION_AD.",
        );
    }
    let dims: Vec<String> = json_param(&p, "dimensions")
        .and_then(|d| serde_json::from_value(d).ok())
        .unwrap_or_default();
    if !(dims.iter().any(|d| d == "ad_id") && dims.iter().any(|d| d == "stat_time_day")) {
        return st.error(
            40002,
            "dimensions: ad_id and stat_time_day are required here.",
        );
    }
    let metrics: Vec<String> =
        match json_param(&p, "metrics").and_then(|m| serde_json::from_value(m).ok()) {
            Some(m) => m,
            None => return st.error(40002, "metrics: Not a valid list."),
        };
    if let Some(bad) = metrics
        .iter()
        .find(|m| !REPORT_METRICS.contains(&m.as_str()))
    {
        return st.error(40002, &format!("metrics: Invalid metric {bad}."));
    }
    let (Some(start), Some(end)) = (p.get("start_date"), p.get("end_date")) else {
        return st.error(40002, "start_date and end_date are required.");
    };
    let parse = |d: &str| chrono_like_days(d);
    match (parse(start), parse(end)) {
        (Some(a), Some(b)) if a <= b && b - a < 30 => {}
        (Some(_), Some(_)) => {
            return st.error(
                40002,
                "The time range of stat_time_day must be within 30 days.",
            )
        }
        _ => return st.error(40002, "start_date/end_date: Not a valid date."),
    }
    let (page, size) = match page_of(&p, 1000) {
        Ok(x) => x,
        Err(e) => return st.error(40002, &e),
    };
    let groups: Vec<String> = json_param(&p, "filtering")
        .and_then(|f| f.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|f| f.get("field_name").and_then(Value::as_str) == Some("adgroup_ids"))
        .filter_map(|f| f.get("filter_value").and_then(Value::as_str))
        .filter_map(|v| serde_json::from_str::<Vec<String>>(v).ok())
        .flatten()
        .collect();
    let mut inner = st.lock();
    inner.ads.report_calls += 1;
    let served = inner.ads.report_page_cap.map_or(size, |c| c.min(size));
    let rows: Vec<Value> = inner
        .ads
        .days
        .iter()
        .filter(|((ad, d), _)| {
            d.as_str() >= start.as_str()
                && d.as_str() <= end.as_str()
                && inner
                    .ads
                    .ads
                    .get(ad)
                    .is_some_and(|(g, _)| groups.is_empty() || groups.contains(g))
        })
        .map(|((ad, d), v)| {
            let mut m = Map::new();
            for name in &metrics {
                let value = match name.as_str() {
                    "impressions" => v.impressions.to_string(),
                    "clicks" => v.clicks.to_string(),
                    "conversion" => v.conversion.to_string(),
                    "spend" => money(v.spend),
                    "total_purchase_value" => money(v.total_purchase_value),
                    "total_complete_payment_rate" => money(v.total_complete_payment_rate),
                    "complete_payment" => v.complete_payment.to_string(),
                    _ => continue,
                };
                m.insert(name.clone(), json!(value));
            }
            json!({"dimensions": {"ad_id": ad, "stat_time_day": format!("{d} 00:00:00")}, "metrics": m})
        })
        .collect();
    drop(inner);
    let start_at = ((page - 1) * served).min(rows.len());
    let end_at = (start_at + served).min(rows.len());
    st.ok(
        json!({"list": &rows[start_at..end_at], "page_info": page_info(page, served, rows.len())}),
    )
}

/// Days since 0000-03-01 of a `YYYY-MM-DD` date (enough to compare and subtract; no chrono in the fakes).
fn chrono_like_days(d: &str) -> Option<i64> {
    let mut it = d.split('-');
    let (y, m, day): (i64, i64, i64) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || it.next().is_some() {
        return None;
    }
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    Some(365 * y + y / 4 - y / 100 + y / 400 + (153 * m + 2) / 5 + day - 1)
}
