//! The campaigns half of the fake Mailchimp: campaigns whose content a template replaces
//! (`PUT /campaigns/{id}/content` `{"template": {"id": N}}`, refused once the campaign is sent, or for an
//! unknown template), and campaign reports (`GET /reports/{id}`, 404 until sent) that tests seed, in
//! Mailchimp's report shape (`emails_sent`, `opens`, `clicks`, `ecommerce`, `send_time`), trimmed by the
//! `fields` parameter.
//!
//! A child of `mailchimp` so it shares the fake's key check, problem replies and state.

use super::{bad_request, problem, FakeMailchimp, McState};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One campaign's report numbers, as tests seed them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FakeReport {
    /// ISO 8601 send time.
    pub send_time: String,
    /// Emails sent.
    pub emails_sent: u64,
    /// Total opens.
    pub opens_total: u64,
    /// Total clicks.
    pub clicks_total: u64,
    /// Unique clicks.
    pub unique_clicks: u64,
    /// E-commerce orders.
    pub total_orders: u64,
    /// E-commerce revenue.
    pub total_revenue: f64,
}

/// One campaign in the fake.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FakeCampaign {
    /// Template whose content the campaign carries.
    pub template_id: Option<u64>,
    /// `save` (draft), `paused` or `sent`.
    pub status: String,
    /// Report once sent.
    pub report: Option<FakeReport>,
}

#[derive(Debug, Default)]
pub(super) struct CampaignsInner {
    campaigns: BTreeMap<String, FakeCampaign>,
    templates: BTreeSet<u64>,
}

impl FakeMailchimp {
    /// Registers saved templates.
    pub fn seed_templates<I: IntoIterator<Item = u64>>(&self, ids: I) {
        self.state.lock().campaigns.templates.extend(ids);
    }

    /// Creates or replaces a campaign with this status (`save`, `paused`, `sent`).
    pub fn seed_campaign(&self, id: &str, status: &str, template_id: Option<u64>) {
        let mut inner = self.state.lock();
        let c = inner.campaigns.campaigns.entry(id.to_string()).or_default();
        c.status = status.to_string();
        c.template_id = template_id;
    }

    /// Marks a campaign sent with this report.
    pub fn seed_report(&self, id: &str, report: FakeReport) {
        let mut inner = self.state.lock();
        let c = inner.campaigns.campaigns.entry(id.to_string()).or_default();
        c.status = "sent".into();
        c.report = Some(report);
    }

    /// A campaign's current state.
    pub fn campaign(&self, id: &str) -> Option<FakeCampaign> {
        self.state.lock().campaigns.campaigns.get(id).cloned()
    }
}

fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "Resource Not Found",
        "The requested resource could not be found.",
    )
}

/// `PUT /campaigns/{id}/content`.
pub(super) async fn set_content(
    State(st): State<Arc<McState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = st.auth_error(&headers) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("The request body must be JSON.");
    };
    if let Err(v) = crate::schema::check(&body, &super::spec::SET_CONTENT) {
        return bad_request(&v.to_string());
    }
    let Some(template) = body.pointer("/template/id").and_then(Value::as_u64) else {
        return bad_request("template.id must be an integer.");
    };
    let mut inner = st.lock();
    if !inner.campaigns.templates.contains(&template) {
        return bad_request(&format!("The template {template} does not exist."));
    }
    let Some(c) = inner.campaigns.campaigns.get_mut(&id) else {
        return not_found();
    };
    if c.status == "sent" {
        return bad_request(
            "This campaign has already been sent and its content cannot be changed.",
        );
    }
    c.template_id = Some(template);
    Json(json!({"plain_text": "", "html": format!("<html><!-- template {template} --></html>")}))
        .into_response()
}

/// Keeps only the dotted `fields` of a report (Mailchimp's partial response).
fn trim(full: Value, fields: Option<&str>) -> Value {
    let Some(fields) = fields else { return full };
    let mut out = Map::new();
    for f in fields.split(',').map(str::trim) {
        let mut src = &full;
        let mut dst = &mut out;
        let parts: Vec<&str> = f.split('.').collect();
        for (i, p) in parts.iter().enumerate() {
            let Some(v) = src.get(*p) else { break };
            if i + 1 == parts.len() {
                dst.insert((*p).to_string(), v.clone());
            } else {
                src = v;
                let entry = dst
                    .entry((*p).to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                match entry.as_object_mut() {
                    Some(m) => dst = m,
                    None => break,
                }
            }
        }
    }
    Value::Object(out)
}

/// `GET /reports/{id}`.
pub(super) async fn report(
    State(st): State<Arc<McState>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = st.auth_error(&headers) {
        return r;
    }
    let fields: Option<String> = query.as_deref().and_then(|q| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == "fields")
            .map(|(_, v)| v)
    });
    let inner = st.lock();
    let Some(r) = inner
        .campaigns
        .campaigns
        .get(&id)
        .and_then(|c| c.report.clone())
    else {
        return not_found();
    };
    let full = json!({
        "id": id,
        "type": "regular",
        "list_id": st.list_id,
        "send_time": r.send_time,
        "emails_sent": r.emails_sent,
        "opens": {"opens_total": r.opens_total, "unique_opens": r.opens_total, "open_rate": 0.0},
        "clicks": {"clicks_total": r.clicks_total, "unique_clicks": r.unique_clicks,
                   "unique_subscriber_clicks": r.unique_clicks, "click_rate": 0.0},
        "ecommerce": {"total_orders": r.total_orders, "total_spent": r.total_revenue,
                      "total_revenue": r.total_revenue, "currency_code": "USD"},
    });
    Json(trim(full, fields.as_deref())).into_response()
}
