//! Row types of the shop's input tables (DESIGN §4), shared by import, the synthetic generator and the
//! plain-Rust reference evaluator of the rule language.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// One shop customer. Consent flags default to `false`: nobody is sent anywhere without an explicit yes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Customer {
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// ISO-3166 alpha-2, upper-case.
    pub country: Option<String>,
    pub city: Option<String>,
    /// State, province or region as the shop typed it (Meta's `ST` match key).
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub gender: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub consent_ads: bool,
    pub consent_email: bool,
}

/// One order; `total` is in major units of `currency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub customer_id: String,
    pub placed_at: DateTime<Utc>,
    pub total: f64,
    pub currency: Option<String>,
    pub discount_code: Option<String>,
    pub free_shipping: bool,
}

/// One behavioural event (`visit`, `add_to_cart`, ...). `id` may be absent on import; the store then
/// derives a stable one from the row so re-importing the same file stays idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: Option<String>,
    pub customer_id: String,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub properties: Option<serde_json::Value>,
}

/// An opted-out or erased person: never synced, removed from every audience where present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppression {
    /// `email`, `phone` or `customer_id`.
    pub identifier_kind: String,
    pub identifier: String,
    pub reason: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
}
