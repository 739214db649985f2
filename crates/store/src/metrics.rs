//! Daily delivery metrics (DESIGN §8), one row per (day, destination, segment, creative), and the
//! rollups the report is built on. A pull replaces the days it covers for the segments it pulled, in one
//! transaction, so re-pulling never double counts; rollups are one set-based GROUP BY in the database.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;

use campaignd_core::metrics::Totals;

use crate::bind::on_pool;
use crate::{Dialect, Store, StoreError};

/// Rows per multi-row INSERT (11 parameters each, well under both backends' limits).
const INSERT_CHUNK: usize = 500;

/// One day of one segment's delivery on one destination for one creative.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyMetric {
    /// The day (UTC).
    pub day: NaiveDate,
    /// Destination name (the report's channel).
    pub destination: String,
    /// Segment the delivery is attributed to.
    pub segment: String,
    /// The creative set's variant id live that day, else the platform's creative id, else "".
    pub creative: String,
    /// The figures.
    pub totals: Totals,
    /// Account currency, when the platform says.
    pub currency: Option<String>,
}

/// A dimension of the rollup, in the store's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RollupDimension {
    /// The segment.
    Segment,
    /// The destination name.
    Channel,
    /// The creative (variant id).
    Creative,
    /// The ISO week, keyed by its Monday (`YYYY-MM-DD`).
    Week,
    /// The day (`YYYY-MM-DD`).
    Day,
}

impl RollupDimension {
    /// The SQL expression grouped on. Only these fixed texts ever reach the query; no user input does.
    fn expr(self) -> &'static str {
        match self {
            RollupDimension::Segment => "segment",
            RollupDimension::Channel => "destination",
            RollupDimension::Creative => "creative",
            // 1970-01-01 was a Thursday: (days + 3) % 7 is days since Monday.
            RollupDimension::Week => "(day - ((day / 86400 + 3) % 7) * 86400)",
            RollupDimension::Day => "day",
        }
    }

    fn is_date(self) -> bool {
        matches!(self, RollupDimension::Week | RollupDimension::Day)
    }
}

/// One rollup group: its key values in the order of the requested dimensions, and its sums.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollupRow {
    /// One value per requested dimension (dates as `YYYY-MM-DD`).
    pub keys: Vec<String>,
    /// Summed figures of the group.
    pub totals: Totals,
}

/// Unix seconds of 00:00 UTC of `day`, the form `metrics_daily.day` is stored in.
pub fn day_secs(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .unwrap_or_default()
}

/// The day of a `metrics_daily.day` value.
pub fn secs_day(secs: i64) -> NaiveDate {
    DateTime::from_timestamp(secs, 0)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

impl Store {
    fn real_type(&self) -> &'static str {
        match self.dialect() {
            Dialect::Sqlite => "REAL",
            Dialect::Postgres => "DOUBLE PRECISION",
        }
    }

    /// Replaces `destination`'s rows for `segments` on the days `since..=until` with `rows`, in one
    /// transaction: days a re-pull covers are replaced (a creative no longer attributed disappears),
    /// nothing is ever added twice. Rows sharing a key are summed first. Returns the rows stored.
    #[allow(clippy::too_many_arguments)]
    pub async fn replace_metrics(
        &self,
        destination: &str,
        segments: &[String],
        since: NaiveDate,
        until: NaiveDate,
        rows: &[DailyMetric],
        run_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut merged: BTreeMap<(i64, &str, &str), (Totals, Option<&str>)> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.destination == destination) {
            let e = merged
                .entry((day_secs(r.day), r.segment.as_str(), r.creative.as_str()))
                .or_insert((Totals::default(), None));
            e.0.add(&r.totals);
            if e.1.is_none() {
                e.1 = r.currency.as_deref();
            }
        }
        let merged: Vec<_> = merged.into_iter().collect();
        const DELETE: &str = "DELETE FROM metrics_daily WHERE destination = $1 AND segment = $2 \
             AND day >= $3 AND day <= $4";
        let (from, to) = (day_secs(since), day_secs(until));
        let pulled_at = now.timestamp();
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_write_sql()).await?;
            for segment in segments {
                sqlx::query(DELETE)
                    .bind(destination)
                    .bind(segment.as_str())
                    .bind(from)
                    .bind(to)
                    .execute(&mut *tx)
                    .await?;
            }
            for chunk in merged.chunks(INSERT_CHUNK) {
                let mut sql = String::from(
                    "INSERT INTO metrics_daily (day, destination, segment, creative, impressions, clicks, \
                     conversions, spend, revenue, currency, pulled_at, run_id) VALUES ",
                );
                for i in 0..chunk.len() {
                    let b = i * 12;
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11, b + 12
                    ));
                }
                sql.push_str(
                    " ON CONFLICT (day, destination, segment, creative) DO UPDATE SET \
                     impressions = excluded.impressions, clicks = excluded.clicks, \
                     conversions = excluded.conversions, spend = excluded.spend, revenue = excluded.revenue, \
                     currency = excluded.currency, pulled_at = excluded.pulled_at, run_id = excluded.run_id",
                );
                let mut q = sqlx::query(&sql);
                for ((day, segment, creative), (t, currency)) in chunk {
                    q = q
                        .bind(*day)
                        .bind(destination)
                        .bind(*segment)
                        .bind(*creative)
                        .bind(t.impressions)
                        .bind(t.clicks)
                        .bind(t.conversions)
                        .bind(t.spend)
                        .bind(t.revenue)
                        .bind(*currency)
                        .bind(pulled_at)
                        .bind(run_id);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?
        });
        Ok(merged.len() as u64)
    }

    /// Lifetime figures per creative of `segment` on `destination`, what the rotation strategies judge
    /// variants by.
    pub async fn creative_totals(
        &self,
        segment: &str,
        destination: &str,
    ) -> Result<BTreeMap<String, Totals>, StoreError> {
        let real = self.real_type();
        let sql = format!(
            "SELECT creative, CAST(SUM(impressions) AS BIGINT) AS impressions, \
             CAST(SUM(clicks) AS BIGINT) AS clicks, CAST(SUM(conversions) AS {real}) AS conversions, \
             CAST(SUM(spend) AS {real}) AS spend, CAST(SUM(revenue) AS {real}) AS revenue \
             FROM metrics_daily WHERE segment = $1 AND destination = $2 GROUP BY creative"
        );
        let out = on_pool!(self, pool => {
            let rows = sqlx::query(&sql).bind(segment).bind(destination).fetch_all(pool).await?;
            rows.iter()
                .map(|r| -> Result<(String, Totals), sqlx::Error> {
                    Ok((
                        r.try_get("creative")?,
                        totals(r)?,
                    ))
                })
                .collect::<Result<BTreeMap<_, _>, _>>()?
        });
        Ok(out)
    }

    /// Sums `metrics_daily` over `since..=until` grouped by `by` (in that order, also the sort order),
    /// in one GROUP BY. With no dimensions, one grand-total row (none when there is no data).
    pub async fn metrics_rollup(
        &self,
        since: NaiveDate,
        until: NaiveDate,
        by: &[RollupDimension],
    ) -> Result<Vec<RollupRow>, StoreError> {
        let real = self.real_type();
        let keys: Vec<String> = by
            .iter()
            .enumerate()
            .map(|(i, d)| format!("{} AS k{i}", d.expr()))
            .collect();
        let group: Vec<&str> = by.iter().map(|d| d.expr()).collect();
        let mut sql = String::from("SELECT ");
        for k in &keys {
            sql.push_str(k);
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "COUNT(*) AS n, CAST(SUM(impressions) AS BIGINT) AS impressions, \
             CAST(SUM(clicks) AS BIGINT) AS clicks, CAST(SUM(conversions) AS {real}) AS conversions, \
             CAST(SUM(spend) AS {real}) AS spend, CAST(SUM(revenue) AS {real}) AS revenue \
             FROM metrics_daily WHERE day >= $1 AND day <= $2"
        ));
        if !group.is_empty() {
            sql.push_str(&format!(
                " GROUP BY {} ORDER BY {}",
                group.join(", "),
                group.join(", ")
            ));
        }
        let rows = on_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(day_secs(since))
                .bind(day_secs(until))
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let n: i64 = r.try_get("n")?;
                if n == 0 {
                    continue;
                }
                let mut keys = Vec::with_capacity(by.len());
                for (i, d) in by.iter().enumerate() {
                    let col = format!("k{i}");
                    keys.push(if d.is_date() {
                        secs_day(r.try_get::<i64, _>(col.as_str())?).to_string()
                    } else {
                        r.try_get::<String, _>(col.as_str())?
                    });
                }
                out.push(RollupRow {
                    keys,
                    totals: totals(r)?,
                });
            }
            out
        });
        Ok(rows)
    }
}

/// The `impressions`, `clicks`, `conversions`, `spend` and `revenue` columns of a metrics row, as every
/// query over `metrics_daily` names its sums.
pub(crate) fn totals<R: Row>(r: &R) -> Result<Totals, sqlx::Error>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> f64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Totals {
        impressions: r.try_get("impressions")?,
        clicks: r.try_get("clicks")?,
        conversions: r.try_get("conversions")?,
        spend: r.try_get("spend")?,
        revenue: r.try_get("revenue")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[allow(clippy::too_many_arguments)]
    fn m(
        day: &str,
        dest: &str,
        seg: &str,
        creative: &str,
        imp: i64,
        clk: i64,
        conv: f64,
        spend: f64,
        rev: f64,
    ) -> DailyMetric {
        DailyMetric {
            day: day.parse().expect("date"),
            destination: dest.into(),
            segment: seg.into(),
            creative: creative.into(),
            totals: Totals {
                impressions: imp,
                clicks: clk,
                conversions: conv,
                spend,
                revenue: rev,
            },
            currency: Some("USD".into()),
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    async fn exercise(store: &Store) {
        let segs = vec!["vip".to_string(), "lapsed".to_string()];
        let rows = vec![
            m("2025-03-03", "meta", "vip", "a", 1000, 20, 2.0, 10.0, 100.0),
            m("2025-03-03", "meta", "vip", "a", 500, 5, 1.0, 5.0, 50.0), // same key: summed
            m("2025-03-04", "meta", "vip", "b", 800, 16, 0.0, 8.0, 0.0),
            m("2025-03-10", "meta", "lapsed", "", 0, 0, 0.0, 0.0, 0.0),
        ];
        let now = Utc::now();
        let n = store
            .replace_metrics(
                "meta",
                &segs,
                d("2025-03-01"),
                d("2025-03-10"),
                &rows,
                None,
                now,
            )
            .await
            .expect("replace");
        assert_eq!(n, 3);
        // A re-pull of the same days replaces, never adds; a creative no longer attributed disappears.
        let again = vec![
            m("2025-03-03", "meta", "vip", "a", 1500, 25, 3.0, 15.0, 150.0),
            m("2025-03-04", "meta", "vip", "a", 800, 16, 0.0, 8.0, 0.0),
        ];
        store
            .replace_metrics(
                "meta",
                &segs,
                d("2025-03-03"),
                d("2025-03-04"),
                &again,
                None,
                now,
            )
            .await
            .expect("re-pull");
        store
            .replace_metrics(
                "gads",
                &["vip".to_string()],
                d("2025-03-01"),
                d("2025-03-10"),
                &[m("2025-03-04", "gads", "vip", "x", 200, 10, 1.0, 4.0, 40.0)],
                None,
                now,
            )
            .await
            .expect("other destination");
        let totals = store.creative_totals("vip", "meta").await.expect("totals");
        assert_eq!(totals.len(), 1, "{totals:?}");
        assert_eq!(totals["a"].impressions, 2300);
        assert_eq!(totals["a"].clicks, 41);

        use RollupDimension::*;
        let rows = store
            .metrics_rollup(d("2025-03-01"), d("2025-03-31"), &[Segment, Channel])
            .await
            .expect("rollup");
        let got: Vec<(Vec<String>, i64, i64, f64)> = rows
            .iter()
            .map(|r| {
                (
                    r.keys.clone(),
                    r.totals.impressions,
                    r.totals.clicks,
                    r.totals.spend,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (vec!["lapsed".into(), "meta".into()], 0, 0, 0.0),
                (vec!["vip".into(), "gads".into()], 200, 10, 4.0),
                (vec!["vip".into(), "meta".into()], 2300, 41, 23.0),
            ]
        );
        let weeks = store
            .metrics_rollup(d("2025-03-01"), d("2025-03-31"), &[Week])
            .await
            .expect("weeks");
        let got: Vec<(String, i64)> = weeks
            .iter()
            .map(|r| (r.keys[0].clone(), r.totals.impressions))
            .collect();
        // 2025-03-03 is a Monday; 03-10 the next one.
        assert_eq!(
            got,
            vec![("2025-03-03".into(), 2500), ("2025-03-10".into(), 0)]
        );
        let all = store
            .metrics_rollup(d("2025-03-04"), d("2025-03-04"), &[])
            .await
            .expect("total");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].totals.impressions, 1000);
        assert!(store
            .metrics_rollup(d("2024-01-01"), d("2024-01-31"), &[])
            .await
            .expect("empty")
            .is_empty());
    }

    #[tokio::test]
    async fn metrics_replace_and_rollup_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = testkit::fresh_sqlite_store(dir.path())
            .await
            .expect("store");
        exercise(&store).await;
    }

    #[tokio::test]
    async fn metrics_replace_and_rollup_postgres() {
        let Some(store) = testkit::fresh_pg_store().await.expect("pg") else {
            eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
            return;
        };
        exercise(&store).await;
    }
}
