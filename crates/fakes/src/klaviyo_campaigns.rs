//! The campaigns half of the fake Klaviyo API: campaigns with messages whose template
//! `POST /campaign-message-assign-template` replaces (unknown message or template: 404, nothing changes),
//! `GET /campaigns/{id}` with `send_time`, `GET /campaigns/{id}/campaign-messages`, and
//! `POST /campaign-values-reports` serving per-campaign totals that tests seed, Klaviyo-strict: the
//! `statistics` must be known names, `timeframe` is required (a custom `{start, end}` at most a year long,
//! or a `key`), `conversion_metric_id` is required when conversion statistics are asked for, and `filter`
//! must be `equals(campaign_id,"x")` or `contains-any(campaign_id,["x",...])`. A campaign counts in a
//! report when its send time falls inside the timeframe (Klaviyo attributes campaign performance to the
//! send). Throttle with `faults().throttle_next(n)` (429 with `Retry-After`).
//!
//! A child of `klaviyo` so it shares the fake's key check, error documents and state.

use super::{error, invalid, FakeKlaviyo, KlState};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One campaign's report totals, as tests seed them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FakeCampaignStats {
    /// Delivered emails.
    pub delivered: u64,
    /// Opens.
    pub opens: u64,
    /// Clicks.
    pub clicks: u64,
    /// Conversions (of the conversion metric).
    pub conversions: u64,
    /// Conversion value.
    pub conversion_value: f64,
}

/// One campaign in the fake.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FakeKlaviyoCampaign {
    /// ISO 8601 send time, empty while a draft.
    pub send_time: String,
    /// Message id → template id assigned.
    pub messages: BTreeMap<String, String>,
    /// Report totals.
    pub stats: FakeCampaignStats,
}

#[derive(Debug, Default)]
pub(super) struct CampaignsInner {
    campaigns: BTreeMap<String, FakeKlaviyoCampaign>,
    templates: BTreeSet<String>,
    conversion_metric: String,
    report_calls: usize,
}

impl FakeKlaviyo {
    /// Registers reusable templates.
    pub fn seed_templates<I: IntoIterator<Item = S>, S: Into<String>>(&self, ids: I) {
        self.state
            .lock()
            .campaigns
            .templates
            .extend(ids.into_iter().map(Into::into));
    }

    /// Creates a campaign with one email message (`{id}-m1`) carrying `template`; `send_time` empty for a
    /// draft.
    pub fn seed_campaign(
        &self,
        id: &str,
        send_time: &str,
        template: &str,
        stats: FakeCampaignStats,
    ) {
        let mut inner = self.state.lock();
        inner.campaigns.templates.insert(template.to_string());
        inner.campaigns.campaigns.insert(
            id.to_string(),
            FakeKlaviyoCampaign {
                send_time: send_time.to_string(),
                messages: BTreeMap::from([(format!("{id}m1"), template.to_string())]),
                stats,
            },
        );
    }

    /// The metric id reports accept as `conversion_metric_id`.
    pub fn set_conversion_metric(&self, id: &str) {
        self.state.lock().campaigns.conversion_metric = id.to_string();
    }

    /// A campaign's state.
    pub fn campaign(&self, id: &str) -> Option<FakeKlaviyoCampaign> {
        self.state.lock().campaigns.campaigns.get(id).cloned()
    }

    /// Values-report requests answered.
    pub fn report_calls(&self) -> usize {
        self.state.lock().campaigns.report_calls
    }
}

fn not_found(detail: &str) -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "Not found.", detail)
}

/// `GET /campaigns/{id}`.
pub(super) async fn get_campaign(
    State(st): State<Arc<KlState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = st.check(&headers) {
        return r;
    }
    let inner = st.lock();
    let Some(c) = inner.campaigns.campaigns.get(&id) else {
        return not_found(&format!("A campaign with id {id} does not exist."));
    };
    let send_time = if c.send_time.is_empty() {
        Value::Null
    } else {
        json!(c.send_time)
    };
    let status = if c.send_time.is_empty() {
        "Draft"
    } else {
        "Sent"
    };
    Json(json!({"data": {"type": "campaign", "id": id, "attributes": {"name": id, "status": status, "send_time": send_time}}}))
        .into_response()
}

/// `GET /campaigns/{id}/campaign-messages`.
pub(super) async fn campaign_messages(
    State(st): State<Arc<KlState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = st.check(&headers) {
        return r;
    }
    let inner = st.lock();
    let Some(c) = inner.campaigns.campaigns.get(&id) else {
        return not_found(&format!("A campaign with id {id} does not exist."));
    };
    let data: Vec<Value> = c
        .messages
        .keys()
        .map(|m| json!({"type": "campaign-message", "id": m, "attributes": {"definition": {"channel": "email"}}}))
        .collect();
    Json(json!({"data": data, "links": {"self": "", "next": null}})).into_response()
}

/// `POST /campaign-message-assign-template`.
pub(super) async fn assign_template(
    State(st): State<Arc<KlState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match st.body(&headers, &body, &super::spec::ASSIGN_TEMPLATE) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let data = &body["data"];
    if data["type"] != "campaign-message" {
        return invalid("data.type must be `campaign-message`.");
    }
    let (Some(message), Some(template)) = (
        data["id"].as_str(),
        data.pointer("/relationships/template/data/id")
            .and_then(Value::as_str),
    ) else {
        return invalid("data.id and data.relationships.template.data.id are required.");
    };
    if data
        .pointer("/relationships/template/data/type")
        .and_then(Value::as_str)
        != Some("template")
    {
        return invalid("relationships.template.data.type must be `template`.");
    }
    let mut inner = st.lock();
    if !inner.campaigns.templates.contains(template) {
        return not_found(&format!("A template with id {template} does not exist."));
    }
    let Some(slot) = inner
        .campaigns
        .campaigns
        .values_mut()
        .find_map(|c| c.messages.get_mut(message))
    else {
        return not_found(&format!(
            "A campaign message with id {message} does not exist."
        ));
    };
    *slot = template.to_string();
    Json(json!({"data": {"type": "campaign-message", "id": message, "attributes": {}}}))
        .into_response()
}

/// Campaign ids from `equals(campaign_id,"x")` or `contains-any(campaign_id,["x","y"])`.
fn campaign_filter(filter: &str) -> Option<Vec<String>> {
    if let Some(rest) = filter.strip_prefix("equals(campaign_id,") {
        let v: String = serde_json::from_str(rest.strip_suffix(')')?).ok()?;
        return Some(vec![v]);
    }
    let rest = filter.strip_prefix("contains-any(campaign_id,")?;
    serde_json::from_str(rest.strip_suffix(')')?).ok()
}

/// `POST /campaign-values-reports`.
pub(super) async fn values_report(
    State(st): State<Arc<KlState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match st.body(&headers, &body, &super::spec::VALUES_REPORT) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let attrs = &body["data"]["attributes"];
    if body["data"]["type"] != "campaign-values-report" {
        return invalid("data.type must be `campaign-values-report`.");
    }
    let Some(stats) = attrs["statistics"].as_array().filter(|s| !s.is_empty()) else {
        return invalid("statistics is required.");
    };
    let stats: Vec<&str> = stats.iter().filter_map(Value::as_str).collect();
    let (Some(start), Some(end)) = (
        attrs.pointer("/timeframe/start").and_then(Value::as_str),
        attrs.pointer("/timeframe/end").and_then(Value::as_str),
    ) else {
        return invalid("timeframe with start and end is required by this fake.");
    };
    let Some(ids) = attrs["filter"].as_str().and_then(campaign_filter) else {
        return invalid(
            "filter must be equals(campaign_id,...) or contains-any(campaign_id,[...]).",
        );
    };
    let mut inner = st.lock();
    let metric = attrs["conversion_metric_id"].as_str().unwrap_or_default();
    if metric.is_empty() || metric != inner.campaigns.conversion_metric {
        return invalid("conversion_metric_id must be a valid metric id.");
    }
    inner.campaigns.report_calls += 1;
    // Same-format ISO strings compare chronologically.
    let in_frame = |t: &str| {
        !t.is_empty()
            && t[..19.min(t.len())] >= start[..19.min(start.len())]
            && t[..19.min(t.len())] < end[..19.min(end.len())]
    };
    let results: Vec<Value> = inner
        .campaigns
        .campaigns
        .iter()
        .filter(|(id, c)| ids.contains(id) && in_frame(&c.send_time))
        .map(|(id, c)| {
            let mut s = serde_json::Map::new();
            for name in &stats {
                let v = match *name {
                    "delivered" => json!(c.stats.delivered),
                    "opens" => json!(c.stats.opens),
                    "clicks" => json!(c.stats.clicks),
                    "conversions" => json!(c.stats.conversions),
                    "conversion_value" => json!(c.stats.conversion_value),
                    _ => json!(0.0),
                };
                s.insert((*name).to_string(), v);
            }
            let message = c.messages.keys().next().cloned().unwrap_or_default();
            json!({"groupings": {"send_channel": "email", "campaign_id": id, "campaign_message_id": message}, "statistics": s})
        })
        .collect();
    Json(json!({"data": {"type": "campaign-values-report", "id": "fake-report", "attributes": {"results": results}}}))
        .into_response()
}
