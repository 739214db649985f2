//! The performance report (DESIGN §8): impressions, clicks, conversions, spend and revenue summed by
//! segment × channel × creative × week/day, with CTR = clicks / impressions, CVR = conversions / clicks,
//! CPA = spend / conversions and ROAS = revenue / spend. A ratio whose denominator is 0 is empty
//! (`None`, `null` in JSON, an empty CSV cell), never 0 or NaN.
//!
//! When `channel` is one of the dimensions, the report adds a total across channels for every
//! combination of the other dimensions (per segment, typically) that spans two or more channels: those
//! rows carry `channel = "(all)"` ([`ALL_CHANNELS`]) and follow the per-channel rows they sum. CLI (`campaignd
//! report`), the admin API (`/api/report`) and the report page all use [`report`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{Duration, NaiveDate};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use thiserror::Error;

use campaignd_core::metrics::Totals;
use campaignd_store::metrics::RollupDimension;
use campaignd_store::{Store, StoreError};

/// The `channel` value of rows that total a segment (and the other keys) across channels.
pub const ALL_CHANNELS: &str = "(all)";

/// Dimensions when none are given: the usual "which segment performs where with which creative".
pub const DEFAULT_DIMENSIONS: &str = "segment,channel,creative";

/// What the report is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportQuery {
    /// First day (inclusive, UTC).
    pub since: NaiveDate,
    /// Last day (inclusive, UTC).
    pub until: NaiveDate,
    /// Grouping dimensions, in column and sort order.
    pub by: Vec<Dimension>,
}

/// A dimension to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    /// The segment the delivery is attributed to.
    Segment,
    /// The destination's name.
    Channel,
    /// The creative (the creative set's variant id).
    Creative,
    /// The week, as its Monday (`YYYY-MM-DD`).
    Week,
    /// The day (`YYYY-MM-DD`).
    Day,
}

impl Dimension {
    /// The key's name in rows, CSV headers and `--by`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Segment => "segment",
            Dimension::Channel => "channel",
            Dimension::Creative => "creative",
            Dimension::Week => "week",
            Dimension::Day => "day",
        }
    }

    fn rollup(self) -> RollupDimension {
        match self {
            Dimension::Segment => RollupDimension::Segment,
            Dimension::Channel => RollupDimension::Channel,
            Dimension::Creative => RollupDimension::Creative,
            Dimension::Week => RollupDimension::Week,
            Dimension::Day => RollupDimension::Day,
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dimension {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "segment" => Ok(Dimension::Segment),
            "channel" => Ok(Dimension::Channel),
            "creative" => Ok(Dimension::Creative),
            "week" => Ok(Dimension::Week),
            "day" => Ok(Dimension::Day),
            other => Err(ReportError::BadDimension(other.to_string())),
        }
    }
}

/// Parses `segment,channel,week` (each at most once; empty = no grouping, one total row).
pub fn parse_dimensions(s: &str) -> Result<Vec<Dimension>, ReportError> {
    let mut out: Vec<Dimension> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let d: Dimension = part.parse()?;
        if out.contains(&d) {
            return Err(ReportError::BadDimension(format!("{part} (given twice)")));
        }
        out.push(d);
    }
    Ok(out)
}

/// Parses `--since`: a date (`2025-06-01`) or a trailing window ending at `until` (`30d`, `4w` = the
/// last 30 days / 4 weeks including `until`).
pub fn parse_since(s: &str, until: NaiveDate) -> Result<NaiveDate, ReportError> {
    let t = s.trim();
    if let Ok(d) = t.parse::<NaiveDate>() {
        return Ok(d);
    }
    let bad = || ReportError::BadSince(s.to_string());
    let (num, mult) = if let Some(n) = t.strip_suffix('d') {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('w') {
        (n, 7)
    } else {
        return Err(bad());
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    if n <= 0 || n > 100_000 {
        return Err(bad());
    }
    Ok(until - Duration::days(n * mult - 1))
}

/// A report that cannot be produced.
#[derive(Debug, Error)]
pub enum ReportError {
    /// `--by` names an unknown dimension.
    #[error("unknown report dimension \"{0}\" (expected segment, channel, creative, week or day)")]
    BadDimension(String),
    /// `--since` is neither a date nor a window.
    #[error("--since \"{0}\" is neither a date like 2025-06-01 nor a window like 30d or 4w")]
    BadSince(String),
    /// The range is empty.
    #[error("--since {since} is after --until {until}")]
    BadRange {
        /// First day.
        since: NaiveDate,
        /// Last day.
        until: NaiveDate,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One report line: the dimension values and the figures. Serialises flat: the keys first (by name),
/// then `impressions, clicks, conversions, spend, revenue, ctr, cvr, cpa, roas`, empty ratios as `null`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// Dimension name → value (`channel` is `(all)` on cross-channel totals).
    pub keys: BTreeMap<String, String>,
    /// Impressions (for email: delivered).
    pub impressions: i64,
    /// Clicks.
    pub clicks: i64,
    /// Conversions.
    pub conversions: f64,
    /// Spend, in the accounts' currency.
    pub spend: f64,
    /// Attributed revenue.
    pub revenue: f64,
    /// clicks / impressions.
    pub ctr: Option<f64>,
    /// conversions / clicks.
    pub cvr: Option<f64>,
    /// spend / conversions.
    pub cpa: Option<f64>,
    /// revenue / spend.
    pub roas: Option<f64>,
}

impl ReportRow {
    /// A row from summed figures, computing the ratios. Money is rounded to cents and conversions to
    /// 1e-6 first: sums of many floating-point cents carry noise in the last bits (and in a different
    /// order on each backend), which must not leak into reports or make two pulls look different.
    pub fn new(keys: BTreeMap<String, String>, t: &Totals) -> Self {
        let t = Totals {
            conversions: (t.conversions * 1e6).round() / 1e6,
            spend: (t.spend * 100.0).round() / 100.0,
            revenue: (t.revenue * 100.0).round() / 100.0,
            ..*t
        };
        ReportRow {
            keys,
            impressions: t.impressions,
            clicks: t.clicks,
            conversions: t.conversions,
            spend: t.spend,
            revenue: t.revenue,
            ctr: t.ctr(),
            cvr: t.cvr(),
            cpa: t.cpa(),
            roas: t.roas(),
        }
    }

    /// Whether this row totals across channels.
    pub fn is_all_channels(&self) -> bool {
        self.keys.get("channel").map(String::as_str) == Some(ALL_CHANNELS)
    }
}

impl Serialize for ReportRow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.keys.len() + 9))?;
        for (k, v) in &self.keys {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry("impressions", &self.impressions)?;
        map.serialize_entry("clicks", &self.clicks)?;
        map.serialize_entry("conversions", &self.conversions)?;
        map.serialize_entry("spend", &self.spend)?;
        map.serialize_entry("revenue", &self.revenue)?;
        map.serialize_entry("ctr", &self.ctr)?;
        map.serialize_entry("cvr", &self.cvr)?;
        map.serialize_entry("cpa", &self.cpa)?;
        map.serialize_entry("roas", &self.roas)?;
        map.end()
    }
}

/// Builds the report: one GROUP BY in the store for the requested dimensions and, when `channel` is
/// one of them, one more without it for the `(all)` totals. Rows are sorted by the dimensions in
/// order, each `(all)` row after the channels it sums.
pub async fn report(store: &Store, q: &ReportQuery) -> Result<Vec<ReportRow>, ReportError> {
    if q.since > q.until {
        return Err(ReportError::BadRange {
            since: q.since,
            until: q.until,
        });
    }
    let dims: Vec<RollupDimension> = q.by.iter().map(|d| d.rollup()).collect();
    let mut rows: Vec<ReportRow> = store
        .metrics_rollup(q.since, q.until, &dims)
        .await?
        .into_iter()
        .map(|r| {
            let keys =
                q.by.iter()
                    .map(|d| d.as_str().to_string())
                    .zip(r.keys)
                    .collect();
            ReportRow::new(keys, &r.totals)
        })
        .collect();
    if q.by.contains(&Dimension::Channel) {
        let others: Vec<Dimension> =
            q.by.iter()
                .copied()
                .filter(|d| *d != Dimension::Channel)
                .collect();
        // How many channels each group of the other keys spans: a total over one channel would
        // only repeat that channel's row.
        let mut spans: BTreeMap<Vec<String>, usize> = BTreeMap::new();
        for row in &rows {
            let k: Vec<String> = others
                .iter()
                .map(|d| row.keys.get(d.as_str()).cloned().unwrap_or_default())
                .collect();
            *spans.entry(k).or_default() += 1;
        }
        let dims: Vec<RollupDimension> = others.iter().map(|d| d.rollup()).collect();
        for r in store.metrics_rollup(q.since, q.until, &dims).await? {
            if spans.get(&r.keys).copied().unwrap_or(0) < 2 {
                continue;
            }
            let mut keys: BTreeMap<String, String> = others
                .iter()
                .map(|d| d.as_str().to_string())
                .zip(r.keys)
                .collect();
            keys.insert("channel".into(), ALL_CHANNELS.into());
            rows.push(ReportRow::new(keys, &r.totals));
        }
    }
    let sort_key = |r: &ReportRow| -> Vec<String> {
        q.by.iter()
            .map(|d| {
                let v = r.keys.get(d.as_str()).cloned().unwrap_or_default();
                if *d == Dimension::Channel && v == ALL_CHANNELS {
                    "\u{10FFFF}".to_string()
                } else {
                    v
                }
            })
            .collect()
    };
    rows.sort_by_cached_key(sort_key);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_and_since_parse() {
        assert_eq!(
            parse_dimensions("segment, channel,week").expect("dims"),
            vec![Dimension::Segment, Dimension::Channel, Dimension::Week]
        );
        assert!(parse_dimensions("segment,segment").is_err());
        assert!(parse_dimensions("campaign").is_err());
        assert_eq!(parse_dimensions("").expect("none"), vec![]);
        let until: NaiveDate = "2025-03-31".parse().expect("date");
        let cases = [
            ("30d", Some("2025-03-02")),
            ("1d", Some("2025-03-31")),
            ("2w", Some("2025-03-18")),
            ("2025-01-01", Some("2025-01-01")),
            ("0d", None),
            ("30x", None),
            ("yesterday", None),
        ];
        for (input, want) in cases {
            let got = parse_since(input, until).ok().map(|d| d.to_string());
            assert_eq!(got.as_deref(), want, "{input}");
        }
    }

    #[test]
    fn rows_serialise_flat_with_nulls_for_empty_ratios() {
        let keys = BTreeMap::from([
            ("segment".to_string(), "vip".to_string()),
            ("channel".to_string(), ALL_CHANNELS.to_string()),
        ]);
        let row = ReportRow::new(
            keys,
            &Totals {
                impressions: 0,
                clicks: 0,
                conversions: 0.0,
                spend: 0.0,
                revenue: 0.0,
            },
        );
        assert!(row.is_all_channels());
        let json = serde_json::to_string(&row).expect("json");
        assert_eq!(
            json,
            r#"{"channel":"(all)","segment":"vip","impressions":0,"clicks":0,"conversions":0.0,"spend":0.0,"revenue":0.0,"ctr":null,"cvr":null,"cpa":null,"roas":null}"#
        );
    }
}
