//! The figures creative fatigue and discounted Thompson sampling judge (DESIGN §7): one creative's
//! delivery over a window of days, every creative's delivery day by day, and the rotations that
//! happened early with their reason (for the report page).

use std::collections::BTreeMap;

use campaignd_core::metrics::Totals;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::bind::on_pool;
use crate::experiments::real;
use crate::metrics::totals;
use crate::runs::to_time;
use crate::{Store, StoreError};

/// A rotation made before its period was over, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EarlyRotation {
    /// Creative set.
    pub set_name: String,
    /// Variant that went live.
    pub variant_id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The recorded reason (the fatigue figures).
    pub reason: String,
}

impl Store {
    /// `creative`'s summed delivery for `segment` on `destination` on the days `from <= day < until`
    /// (unix seconds of 00:00 UTC).
    pub async fn creative_window_totals(
        &self,
        segment: &str,
        destination: &str,
        creative: &str,
        from: i64,
        until: i64,
    ) -> Result<Totals, StoreError> {
        let real = real(self.dialect());
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(impressions), 0) AS BIGINT) AS impressions, \
             CAST(COALESCE(SUM(clicks), 0) AS BIGINT) AS clicks, \
             CAST(COALESCE(SUM(conversions), 0) AS {real}) AS conversions, \
             CAST(COALESCE(SUM(spend), 0) AS {real}) AS spend, CAST(COALESCE(SUM(revenue), 0) AS {real}) AS revenue \
             FROM metrics_daily WHERE segment = $1 AND destination = $2 AND creative = $3 AND day >= $4 AND day < $5"
        );
        let t = on_pool!(self, pool => {
            let r = sqlx::query(&sql).bind(segment).bind(destination).bind(creative).bind(from).bind(until)
                .fetch_one(pool).await?;
            totals(&r)?
        });
        Ok(t)
    }

    /// Every creative's delivery for `segment` on `destination`, day by day (oldest first).
    pub async fn creative_daily(
        &self,
        segment: &str,
        destination: &str,
    ) -> Result<BTreeMap<String, Vec<(i64, Totals)>>, StoreError> {
        const SQL: &str = "SELECT creative, day, impressions, clicks, conversions, spend, revenue \
             FROM metrics_daily WHERE segment = $1 AND destination = $2 ORDER BY creative, day";
        let mut out: BTreeMap<String, Vec<(i64, Totals)>> = BTreeMap::new();
        on_pool!(self, pool => {
            for r in sqlx::query(SQL).bind(segment).bind(destination).fetch_all(pool).await? {
                let creative: String = r.try_get("creative")?;
                out.entry(creative).or_default().push((
                    r.try_get("day")?,
                    totals(&r)?,
                ));
            }
        });
        Ok(out)
    }

    /// Rotations recorded with a reason (early, for fatigue), newest first.
    pub async fn early_rotations(&self, limit: i64) -> Result<Vec<EarlyRotation>, StoreError> {
        const SQL: &str = "SELECT set_name, variant_id, live_from, reason FROM creative_rotations \
             WHERE reason IS NOT NULL ORDER BY live_from DESC, id DESC LIMIT $1";
        let rows = on_pool!(self, pool => {
            sqlx::query(SQL).bind(limit).fetch_all(pool).await?.iter().map(|r| -> Result<EarlyRotation, sqlx::Error> {
                Ok(EarlyRotation {
                    set_name: r.try_get("set_name")?,
                    variant_id: r.try_get("variant_id")?,
                    at: to_time("live_from", r.try_get("live_from")?)?,
                    reason: r.try_get("reason")?,
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }
}
