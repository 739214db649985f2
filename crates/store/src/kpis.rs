//! First-party KPIs per segment and period (DESIGN §8), from the shop's own orders and campaignd's
//! membership history — no platform involved. Set-based: one query per figure over every segment and
//! period at once.
//!
//! Membership history is `segment_changes`: every recompute writes a `joined` row for each member who
//! entered and a `left` row for each who went, at the recompute's "now". A membership interval is a
//! `joined` row up to the next `left` row of the same customer and segment (open while still a member).
//! Per segment and period:
//! - members: customers whose membership overlaps the period;
//! - orders, revenue, buyers: orders placed in the period while the customer was a member;
//! - AOV = revenue / orders; revenue per member = revenue / members;
//! - conversion: of the members who joined in the period, the share who ordered within
//!   `conversion_days` after joining;
//! - retention: of the period's buyers, the share who ordered again (anywhere) in the next period.

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;
use sqlx::Row;

use crate::bind::on_pool;
use crate::experiments::{order_time, real};
use crate::metrics::day_secs;
use crate::{Store, StoreError};

/// The length of one KPI row's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// A UTC day.
    Day,
    /// A week from Monday 00:00 UTC.
    Week,
    /// A calendar month (UTC).
    Month,
}

impl Period {
    /// The first day of the period containing `day`.
    pub fn start_of(self, day: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => day,
            Period::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
            Period::Month => day.with_day(1).unwrap_or(day),
        }
    }

    /// The first day of the next period after the one starting at `start`.
    pub fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => start + Duration::days(1),
            Period::Week => start + Duration::days(7),
            Period::Month => {
                let (y, m) = if start.month() == 12 {
                    (start.year() + 1, 1)
                } else {
                    (start.year(), start.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(start + Duration::days(31))
            }
        }
    }

    /// The periods (start days) covering `since..=until`.
    pub fn buckets(self, since: NaiveDate, until: NaiveDate) -> Vec<NaiveDate> {
        let mut out = Vec::new();
        let mut p = self.start_of(since);
        while p <= until {
            out.push(p);
            p = self.next(p);
        }
        out
    }
}

/// What a KPI query covers.
#[derive(Debug, Clone)]
pub struct KpiQuery {
    /// First day (its period is included whole).
    pub since: NaiveDate,
    /// Last day (its period is included whole).
    pub until: NaiveDate,
    /// Row period.
    pub period: Period,
    /// Days after joining within which an order counts as a conversion.
    pub conversion_days: i64,
    /// Only this segment.
    pub segment: Option<String>,
}

/// The KPIs of one segment in one period. Ratios are `None` when their denominator is 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiRow {
    /// Segment.
    pub segment: String,
    /// First day of the period.
    pub period: NaiveDate,
    /// Customers who were members at some point of the period.
    pub members: i64,
    /// Members who ordered in the period while members.
    pub buyers: i64,
    /// Their orders.
    pub orders: i64,
    /// Their orders' total.
    pub revenue: f64,
    /// revenue / orders.
    pub aov: Option<f64>,
    /// Members who joined in the period.
    pub joined: i64,
    /// Of those, members who ordered within `conversion_days` of joining.
    pub converted: i64,
    /// converted / joined.
    pub conversion_rate: Option<f64>,
    /// Buyers who ordered again in the next period.
    pub retained: i64,
    /// retained / buyers.
    pub retention: Option<f64>,
    /// revenue / members.
    pub revenue_per_member: Option<f64>,
}

fn ratio(n: f64, d: f64) -> Option<f64> {
    (d != 0.0).then(|| n / d)
}

impl Store {
    /// The KPIs of every segment (or `query.segment`) for each period of the query, segments in name
    /// order, periods oldest first; a segment with no member in a period has no row for it.
    pub async fn kpis(&self, query: &KpiQuery) -> Result<Vec<KpiRow>, StoreError> {
        let buckets = query.period.buckets(query.since, query.until);
        if buckets.is_empty() {
            return Ok(Vec::new());
        }
        let d = self.dialect();
        let values: Vec<String> = buckets
            .iter()
            .map(|b| {
                format!(
                    "(CAST({} AS BIGINT), CAST({} AS BIGINT), CAST({} AS BIGINT))",
                    day_secs(*b),
                    day_secs(query.period.next(*b)),
                    day_secs(query.period.next(query.period.next(*b)))
                )
            })
            .collect();
        let periods = format!(
            "p(p_start, p_end, p_next_end) AS (VALUES {})",
            values.join(", ")
        );
        let filter = "AND ($1 = '' OR j.segment = $1)";
        let iv = format!(
            "iv AS (SELECT j.segment, j.customer_id, j.at AS from_at, \
               COALESCE((SELECT MIN(l.at) FROM segment_changes l WHERE l.segment = j.segment \
                 AND l.customer_id = j.customer_id AND l.change = 'left' AND l.run_id > j.run_id), \
                 9000000000000) AS until_at \
             FROM segment_changes j WHERE j.change = 'joined' {filter})"
        );
        let real = real(d);
        let (o_from, o_until) = (
            order_time(
                d,
                "CASE WHEN p.p_start > iv.from_at THEN p.p_start ELSE iv.from_at END",
            ),
            order_time(
                d,
                "CASE WHEN p.p_end < iv.until_at THEN p.p_end ELSE iv.until_at END",
            ),
        );
        let main = format!(
            "WITH {periods}, {iv}, \
             mem AS (SELECT iv.segment, p.p_start, COUNT(DISTINCT iv.customer_id) AS members \
                     FROM iv JOIN p ON iv.from_at < p.p_end AND iv.until_at > p.p_start GROUP BY iv.segment, p.p_start), \
             ord AS (SELECT iv.segment, p.p_start, o.customer_id, o.total \
                     FROM iv JOIN p ON iv.from_at < p.p_end AND iv.until_at > p.p_start \
                     JOIN orders o ON o.customer_id = iv.customer_id AND o.placed_at >= {o_from} AND o.placed_at < {o_until}), \
             buy AS (SELECT segment, p_start, COUNT(DISTINCT customer_id) AS buyers, COUNT(*) AS orders, \
                            CAST(SUM(CAST(total AS {real})) AS {real}) AS revenue FROM ord GROUP BY segment, p_start), \
             ret AS (SELECT b.segment, b.p_start, COUNT(*) AS retained FROM \
                       (SELECT DISTINCT segment, p_start, customer_id FROM ord) b JOIN p ON p.p_start = b.p_start \
                     WHERE EXISTS (SELECT 1 FROM orders o2 WHERE o2.customer_id = b.customer_id \
                       AND o2.placed_at >= {n_lo} AND o2.placed_at < {n_hi}) GROUP BY b.segment, b.p_start), \
             conv AS (SELECT iv.segment, p.p_start, COUNT(*) AS joined, \
                        COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM orders o3 WHERE o3.customer_id = iv.customer_id \
                          AND o3.placed_at > {c_lo} AND o3.placed_at <= {c_hi}) THEN 1 ELSE 0 END), 0) AS converted \
                      FROM iv JOIN p ON iv.from_at >= p.p_start AND iv.from_at < p.p_end GROUP BY iv.segment, p.p_start) \
             SELECT mem.segment, mem.p_start, mem.members, COALESCE(buy.buyers, 0) AS buyers, \
                    COALESCE(buy.orders, 0) AS orders, CAST(COALESCE(buy.revenue, 0) AS {real}) AS revenue, \
                    COALESCE(conv.joined, 0) AS joined, COALESCE(conv.converted, 0) AS converted, \
                    COALESCE(ret.retained, 0) AS retained \
             FROM mem LEFT JOIN buy ON buy.segment = mem.segment AND buy.p_start = mem.p_start \
             LEFT JOIN conv ON conv.segment = mem.segment AND conv.p_start = mem.p_start \
             LEFT JOIN ret ON ret.segment = mem.segment AND ret.p_start = mem.p_start \
             ORDER BY mem.segment, mem.p_start",
            n_lo = order_time(d, "p.p_end"),
            n_hi = order_time(d, "p.p_next_end"),
            c_lo = order_time(d, "iv.from_at"),
            c_hi = order_time(d, &format!("iv.from_at + {}", query.conversion_days.max(0) * 86_400)),
        );
        let segment = query.segment.clone().unwrap_or_default();
        let rows = on_pool!(self, pool => {
            sqlx::query(&main).bind(&segment).fetch_all(pool).await?.iter().map(|r| -> Result<KpiRow, sqlx::Error> {
                let members: i64 = r.try_get("members")?;
                let buyers: i64 = r.try_get("buyers")?;
                let orders: i64 = r.try_get("orders")?;
                let revenue: f64 = r.try_get("revenue")?;
                let joined: i64 = r.try_get("joined")?;
                let converted: i64 = r.try_get("converted")?;
                let retained: i64 = r.try_get("retained")?;
                let start: i64 = r.try_get("p_start")?;
                Ok(KpiRow {
                    segment: r.try_get("segment")?,
                    period: crate::metrics::secs_day(start),
                    members,
                    buyers,
                    orders,
                    revenue,
                    aov: ratio(revenue, orders as f64),
                    joined,
                    converted,
                    conversion_rate: ratio(converted as f64, joined as f64),
                    retained,
                    retention: ratio(retained as f64, buyers as f64),
                    revenue_per_member: ratio(revenue, members as f64),
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_tile_the_range() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).expect("date");
        assert_eq!(
            Period::Week.buckets(d(2025, 6, 4), d(2025, 6, 17)),
            vec![d(2025, 6, 2), d(2025, 6, 9), d(2025, 6, 16)]
        );
        assert_eq!(
            Period::Month.buckets(d(2025, 11, 20), d(2026, 1, 2)),
            vec![d(2025, 11, 1), d(2025, 12, 1), d(2026, 1, 1)]
        );
        assert_eq!(Period::Day.buckets(d(2025, 1, 1), d(2025, 1, 2)).len(), 2);
    }
}
