//! Row types of the shop's input tables (DESIGN §4), shared by import, the synthetic generator and the
//! plain-Rust reference evaluator of the rule language; and the two shapes every layer passes between
//! them: a customer's identifiers as stored ([`Contact`], what connectors normalise and the store reads
//! for a sync) and the consent [`Channel`] a destination requires.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// One shop customer: the identifiers every destination is sent ([`Contact`], one shape for import, the
/// synthetic shop, the reference evaluator and the sync) plus what only segments and consent read. Consent
/// flags default to `false`: nobody is sent anywhere without an explicit yes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Customer {
    /// The customer's id and raw identifiers, as a destination receives them.
    pub contact: Contact,
    /// When the customer first appeared (first-time-visitor and lapsed templates).
    pub created_at: Option<DateTime<Utc>>,
    /// Consent to ad and social platforms: without it a member is never sent to one.
    pub consent_ads: bool,
    /// Consent to email platforms: without it a member is never sent to one.
    pub consent_email: bool,
}

/// One order; `total` is in major units of `currency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The shop's order id: re-importing the same order updates it.
    pub id: String,
    /// Who placed it (must be a known customer).
    pub customer_id: String,
    /// When it was placed: recency, frequency, conversion windows and lift all count from it.
    pub placed_at: DateTime<Utc>,
    /// Order value in major units, rounded to cents on import on both backends.
    pub total: f64,
    /// ISO 4217 code, if the shop sells in more than one.
    pub currency: Option<String>,
    /// The discount code used, if any (the discount-hunter template).
    pub discount_code: Option<String>,
    /// Whether shipping was free (a rule attribute).
    pub free_shipping: bool,
}

/// One behavioural event (`visit`, `add_to_cart`, ...). `id` may be absent on import; the store then
/// derives a stable one from the row so re-importing the same file stays idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The shop's event id, or none (see above).
    pub id: Option<String>,
    /// Whose event it is.
    pub customer_id: String,
    /// What happened: `events(kind)` in rules (`visit`, `add_to_cart`, `checkout`, ...).
    pub kind: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Free-form details, kept as given.
    pub properties: Option<serde_json::Value>,
}

/// An opted-out or erased person: never synced, removed from every audience where present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppression {
    /// `email`, `phone` or `customer_id`.
    pub identifier_kind: String,
    /// The identifier, normalised when written so the sync's lookup matches it.
    pub identifier: String,
    /// Why (opt-out, erasure, ...), for the operator.
    pub reason: Option<String>,
    /// When it was recorded.
    pub created_at: Option<DateTime<Utc>>,
}

/// One customer's raw identifiers as the store holds them; the destination normalises and hashes them
/// itself because every platform wants something slightly different.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Contact {
    /// The shop's own customer id: the key every other table, every audience ledger and every rejection uses.
    pub customer_id: String,
    /// Email as the shop holds it; each connector normalises it the way its platform does.
    pub email: Option<String>,
    /// Phone as written, in any format; normalised to E.164 with the customer's country as the default region.
    pub phone: Option<String>,
    /// Given name (a match key on Meta and Google).
    pub first_name: Option<String>,
    /// Family name (a match key on Meta and Google).
    pub last_name: Option<String>,
    /// ISO alpha-2 country: also the default region for national phone numbers.
    pub country: Option<String>,
    /// Postal code as written; normalised per platform (US five digits, UK sector, ...).
    pub postal_code: Option<String>,
    /// Raw city (Meta `CT`).
    pub city: Option<String>,
    /// Raw state, province or region (Meta `ST`).
    pub region: Option<String>,
    /// Raw gender as the shop stored it (Meta `GEN` takes `m`/`f`).
    pub gender: Option<String>,
    /// Date of birth: `customer.age` in rules, Meta's `DOBY`/`DOBM`/`DOBD`.
    pub birth_date: Option<NaiveDate>,
}

impl Contact {
    /// Why this contact yields no member for a platform: an email or phone that was given but is invalid
    /// (the email first, as the primary key), or nothing usable at all. `uses_phone` is false for
    /// email-only platforms, whose members' phones do not matter.
    pub fn no_identifier(&self, uses_phone: bool) -> NoIdentifier {
        let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        if given(&self.email) {
            NoIdentifier::InvalidEmail
        } else if uses_phone && given(&self.phone) {
            NoIdentifier::InvalidPhone
        } else {
            NoIdentifier::None
        }
    }
}

/// Why a contact was not sent: the per-sync `no_identifier_reasons` counts, so a shop can see whether it
/// lacks identifiers or stores them wrongly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoIdentifier {
    /// A phone was given but libphonenumber found it invalid, and no other identifier was usable.
    InvalidPhone,
    /// An email was given but is not a valid address, and no other identifier was usable.
    InvalidEmail,
    /// Neither an email nor (where the platform takes one) a phone was given.
    None,
}

/// Which consent flag applies to a destination: `consent_ads` for ad/social, `consent_email` for email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Ad and social platforms (`consent_ads`).
    Ads,
    /// Email platforms (`consent_email`).
    Email,
}
