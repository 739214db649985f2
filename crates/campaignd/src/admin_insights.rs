//! The admin API's issue-11 routes: `/api/kpis` (first-party KPIs per segment and period),
//! `/api/lift` (treatment vs holdout per sync with 95 % intervals and flags) and `/api/fatigue`
//! (early rotations with their reason), plus the page script that draws them. Kept apart from
//! `admin.rs` so the base server stays small; the data routes sit behind the same bearer check.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use campaignd_engine::lift::{lift_report, LiftQuery, DEFAULT_WINDOW_DAYS};

use crate::admin::AdminState;

const INSIGHTS_JS: &str = include_str!("../assets/insights.js");

/// Data routes (the caller puts them behind the token check).
pub fn data_routes() -> Router<AdminState> {
    Router::new()
        .route("/api/kpis", get(api_kpis))
        .route("/api/lift", get(api_lift))
        .route("/api/fatigue", get(api_fatigue))
}

/// The page script (public, like the other assets).
pub fn asset_routes() -> Router<AdminState> {
    Router::new().route(
        "/assets/insights.js",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                INSIGHTS_JS,
            )
                .into_response()
        }),
    )
}

fn bad(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

fn failed(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "admin API query failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": "store query failed (see the daemon's log)" })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct KpiParams {
    since: Option<String>,
    until: Option<String>,
    by: Option<String>,
    /// Text, parsed by [`days_param`] so a bad value gets a message naming the parameter (axum's
    /// own rejection says only "invalid digit found in string").
    conversion_days: Option<String>,
    segment: Option<String>,
}

/// A whole number of days from a query parameter, or the message of the 400 that names it.
fn days_param(name: &str, value: Option<&str>, default: i64) -> Result<i64, String> {
    match value {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("{name}: expected a whole number of days, got \"{v}\"")),
    }
}

/// `/api/kpis?since=8w&by=segment,week&conversion_days=30`: a JSON array of KPI rows.
async fn api_kpis(State(state): State<AdminState>, Query(q): Query<KpiParams>) -> Response {
    let until = match q.until.as_deref() {
        Some(u) => match u.parse::<chrono::NaiveDate>() {
            Ok(d) => d,
            Err(e) => return bad(format!("until: {e}")),
        },
        None => Utc::now().date_naive(),
    };
    let conversion_days = match days_param("conversion_days", q.conversion_days.as_deref(), 30) {
        Ok(d) => d,
        Err(message) => return bad(message),
    };
    let query = match crate::insights::kpi_query(
        q.since.as_deref().unwrap_or("8w"),
        until,
        q.by.as_deref().unwrap_or("segment,week"),
        conversion_days,
        q.segment,
    ) {
        Ok(q) => q,
        Err(e) => return bad(format!("{:#}", e.error)),
    };
    match state.store.kpis(&query).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct LiftParams {
    /// Text, parsed by [`days_param`].
    window: Option<String>,
    segment: Option<String>,
}

/// `/api/lift?window=30`: a JSON array, one entry per sync with a holdout.
async fn api_lift(State(state): State<AdminState>, Query(q): Query<LiftParams>) -> Response {
    let window = match days_param("window", q.window.as_deref(), DEFAULT_WINDOW_DAYS) {
        Ok(w) => w,
        Err(message) => return bad(message),
    };
    if window <= 0 {
        return bad("window must be at least 1 day".into());
    }
    let query = LiftQuery {
        window_days: window,
        as_of: Utc::now(),
        segment: q.segment,
    };
    match lift_report(&state.store, &state.settings, &query).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => failed(e),
    }
}

/// `/api/fatigue`: the latest early rotations with their reason.
async fn api_fatigue(State(state): State<AdminState>) -> Response {
    match state.store.early_rotations(50).await {
        Ok(early) => Json(json!({ "early": early })).into_response(),
        Err(e) => failed(e),
    }
}
