//! Match rates per segment × destination (issue 9): the members campaignd holds on each synced audience
//! (its ledger: what the platform accepted), the identifier coverage the latest sync run recorded
//! (`identifiers: {email, phone, address}` in its counts — a missing key is unknown, never zero), and
//! the platform's own matched size pulled by the metrics job. Shared by `/api/segments`, the report page
//! and `campaignd segments list`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::Value;

use campaignd_store::{Store, StoreError};

use crate::Settings;

/// The identifier kinds a sync run counts.
pub const IDENTIFIER_KINDS: [&str; 3] = ["email", "phone", "address"];

/// What the platform reported for the audience.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlatformSize {
    /// Day it was pulled.
    pub day: NaiveDate,
    /// Matched people, lower bound.
    pub lower: Option<i64>,
    /// Matched people, upper bound.
    pub upper: Option<i64>,
    /// The platform's own match rate, percent.
    pub match_rate_percent: Option<f64>,
}

/// One synced audience's match figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudienceMatch {
    /// Segment synced.
    pub segment: String,
    /// Destination name.
    pub destination: String,
    /// Audience name on the destination.
    pub audience: String,
    /// Members campaignd holds on the audience (accepted by the platform).
    pub members_sent: i64,
    /// Members carrying each identifier kind in the latest sync run; `None` for a kind (or the whole
    /// map) that run did not record.
    pub identifiers: Option<BTreeMap<String, Option<u64>>>,
    /// The latest platform-reported size, if the platform reports one and it was pulled.
    pub platform_size: Option<PlatformSize>,
    /// Platform matched (lower bound, or the platform's own rate) as a percentage of members sent.
    pub matched_percent: Option<f64>,
}

/// Identifier coverage from a sync run's counts: `None` when the run recorded none, and per kind `None`
/// when that kind is missing or not a count.
pub fn identifier_coverage(counts: &Value) -> Option<BTreeMap<String, Option<u64>>> {
    let ids = counts.get("identifiers")?.as_object()?;
    Some(
        IDENTIFIER_KINDS
            .iter()
            .map(|k| (k.to_string(), ids.get(*k).and_then(Value::as_u64)))
            .collect(),
    )
}

/// Matched as a percentage of sent: the platform's own rate when it reports one, else its lower bound
/// over the members sent; unknown when either side is.
pub fn matched_percent(members_sent: i64, size: Option<&PlatformSize>) -> Option<f64> {
    let size = size?;
    if let Some(rate) = size.match_rate_percent {
        return Some(rate);
    }
    let lower = size.lower?;
    (members_sent > 0).then(|| 100.0 * lower as f64 / members_sent as f64)
}

/// The match figures of every `[[sync]]` in the configuration, in config order.
pub async fn audience_matches(
    store: &Store,
    settings: &Settings,
) -> Result<Vec<AudienceMatch>, StoreError> {
    let sizes = store.latest_audience_sizes().await?;
    let ledger = store.ledger_counts().await?;
    let counts = store.latest_sync_counts().await?;
    Ok(settings
        .syncs
        .iter()
        .map(|s| {
            let key = (s.destination.clone(), s.audience().to_string());
            let platform_size = sizes.get(&key).map(|r| PlatformSize {
                day: r.day,
                lower: r.lower,
                upper: r.upper,
                match_rate_percent: r.match_rate_percent,
            });
            let members_sent = ledger.get(&key).copied().unwrap_or(0);
            let target = format!("{} -> {}", s.segment, s.destination);
            AudienceMatch {
                segment: s.segment.clone(),
                destination: s.destination.clone(),
                audience: s.audience().to_string(),
                members_sent,
                identifiers: counts.get(&target).and_then(identifier_coverage),
                matched_percent: matched_percent(members_sent, platform_size.as_ref()),
                platform_size,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coverage_treats_missing_as_unknown() {
        let cases = [
            (json!({"added": 3}), None),
            (
                json!({"identifiers": {"email": 10, "phone": 4, "address": 0}}),
                Some([Some(10), Some(4), Some(0)]),
            ),
            (
                json!({"identifiers": {"email": 10}}),
                Some([Some(10), None, None]),
            ),
            (
                json!({"identifiers": {"email": "ten", "phone": -1}}),
                Some([None, None, None]),
            ),
        ];
        for (counts, want) in cases {
            let got = identifier_coverage(&counts);
            let want = want.map(|w| {
                IDENTIFIER_KINDS
                    .iter()
                    .zip(w)
                    .map(|(k, v)| (k.to_string(), v))
                    .collect::<BTreeMap<_, _>>()
            });
            assert_eq!(got, want, "{counts}");
        }
    }

    #[test]
    fn matched_percent_prefers_the_platform_rate() {
        let size = |lower: Option<i64>, rate: Option<f64>| PlatformSize {
            day: NaiveDate::from_ymd_opt(2026, 12, 1).expect("date"),
            lower,
            upper: lower,
            match_rate_percent: rate,
        };
        let cases = [
            (200, Some(size(Some(150), None)), Some(75.0)),
            (200, Some(size(Some(150), Some(63.0))), Some(63.0)),
            (0, Some(size(Some(150), None)), None),
            (200, Some(size(None, None)), None),
            (200, None, None),
        ];
        for (sent, s, want) in cases {
            assert_eq!(matched_percent(sent, s.as_ref()), want, "{sent} {s:?}");
        }
    }
}
