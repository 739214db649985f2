//! Lift per segment and destination (DESIGN §8): each sync with a holdout compares the members it sent
//! (treatment) with the members it kept back (holdout) on the shop's own orders in the days after each
//! member's assignment — conversion, revenue per member and AOV, absolute and relative differences with
//! 95 % intervals (methods in `campaignd_core::stats`). Small groups are warned about and syncs whose
//! lift is indistinguishable from zero are flagged, so an operator can retire the segment.

use chrono::{DateTime, Utc};
use serde::Serialize;

use campaignd_core::stats::{self, Lift};
use campaignd_store::experiments::Group;
use campaignd_store::{Store, StoreError};

use crate::settings::Settings;

/// Days after assignment within which an order counts, when not given.
pub const DEFAULT_WINDOW_DAYS: i64 = 30;
/// Confidence of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// What a lift report covers.
#[derive(Debug, Clone)]
pub struct LiftQuery {
    /// Days after assignment within which an order counts.
    pub window_days: i64,
    /// "Now": orders after it are not counted.
    pub as_of: DateTime<Utc>,
    /// Only this segment.
    pub segment: Option<String>,
}

/// The lift of one sync.
#[derive(Debug, Clone, Serialize)]
pub struct LiftRow {
    /// Segment.
    pub segment: String,
    /// Destination.
    pub destination: String,
    /// Audience on it.
    pub audience: String,
    /// The configured holdout share (`None`: the sync no longer has one; its history still counts).
    pub holdout_share: Option<f64>,
    /// Days after assignment counted.
    pub window_days: i64,
    /// Groups, differences, intervals, warnings.
    pub lift: Lift,
}

/// The lift of every sync that has assigned groups.
pub async fn lift_report(
    store: &Store,
    settings: &Settings,
    query: &LiftQuery,
) -> Result<Vec<LiftRow>, StoreError> {
    let window = query.window_days.max(1) * 86_400;
    let as_of = query.as_of.timestamp();
    let mut out = Vec::new();
    for s in store.holdout_syncs().await? {
        if query.segment.as_ref().is_some_and(|g| *g != s.segment) {
            continue;
        }
        let figures = store
            .lift_figures(&s.destination, &s.audience, window, as_of, as_of)
            .await?;
        let get = |g: Group| figures.get(&g).copied().unwrap_or_default();
        let lift = stats::lift(&get(Group::Treatment), &get(Group::Holdout), CONFIDENCE);
        let holdout_share = settings
            .syncs
            .iter()
            .find(|c| c.destination == s.destination && c.audience() == s.audience)
            .and_then(|c| settings.holdout_plan(c))
            .map(|p| p.share);
        out.push(LiftRow {
            segment: s.segment,
            destination: s.destination,
            audience: s.audience,
            holdout_share,
            window_days: query.window_days,
            lift,
        });
    }
    Ok(out)
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.2}%", 100.0 * x)).unwrap_or_default()
}

fn money(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_default()
}

fn interval(i: Option<stats::Interval>, f: fn(Option<f64>) -> String) -> String {
    i.map(|i| format!("[{}, {}]", f(Some(i.low)), f(Some(i.high))))
        .unwrap_or_else(|| "-".into())
}

/// The lift as text for people: one block per sync, with the methods and the flags.
pub fn render_lift(rows: &[LiftRow]) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        out.push_str(
            "no sync has a holdout yet (set `holdout = 0.1` on a [[sync]] and run sync)\n",
        );
        return out;
    }
    for r in rows {
        let l = &r.lift;
        out.push_str(&format!(
            "{} -> {} ({}): treatment {} vs holdout {} members, orders within {}d of assignment\n",
            r.segment,
            r.destination,
            r.audience,
            l.treatment.members,
            l.holdout.members,
            r.window_days
        ));
        out.push_str(&format!(
            "  conversion          {:>8} vs {:>8}  lift {:>8} {}  relative {} {}\n",
            pct(l.treatment.conversion_rate),
            pct(l.holdout.conversion_rate),
            pct(l.conversion.absolute),
            interval(l.conversion.absolute_interval, pct),
            pct(l.conversion.relative),
            interval(l.conversion.relative_interval, pct),
        ));
        out.push_str(&format!(
            "  revenue per member  {:>8} vs {:>8}  lift {:>8} {}  relative {} {}\n",
            money(l.treatment.revenue_per_member),
            money(l.holdout.revenue_per_member),
            money(l.revenue_per_member.absolute),
            interval(l.revenue_per_member.absolute_interval, money),
            pct(l.revenue_per_member.relative),
            interval(l.revenue_per_member.relative_interval, pct),
        ));
        out.push_str(&format!(
            "  AOV                 {:>8} vs {:>8}  lift {:>8} {}\n",
            money(l.treatment.aov),
            money(l.holdout.aov),
            money(l.aov.absolute),
            interval(l.aov.absolute_interval, money),
        ));
        for w in &l.warnings {
            out.push_str(&format!("  warning: {w}\n"));
        }
        if l.indistinguishable {
            out.push_str("  flag: lift not distinguishable from zero over the window — consider retiring this segment\n");
        }
    }
    out.push_str(&format!(
        "intervals: {:.0}% — conversion: {}; revenue per member and AOV: {}\n",
        CONFIDENCE * 100.0,
        rows[0].lift.conversion.method,
        rows[0].lift.revenue_per_member.method
    ));
    out
}
