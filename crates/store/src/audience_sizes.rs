//! Platform-reported audience sizes (issue 9, match rates): what Meta, Google or TikTok say they matched
//! of an audience campaignd syncs, one row per (day, destination, audience), written by the metrics job.
//! Read back with the members campaignd holds on that audience (its ledger) and the latest sync run's
//! counts, so the admin API, the report page and `segments list` can show platform size next to members
//! sent.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::bind::on_pool;
use crate::metrics::day_secs;
use crate::runs::to_time;
use crate::{Store, StoreError};

/// One platform-reported size of one audience on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudienceSizeRecord {
    /// The day it was pulled (UTC).
    pub day: NaiveDate,
    /// Destination name.
    pub destination: String,
    /// Audience name on the destination.
    pub audience_name: String,
    /// The segment synced into it.
    pub segment: String,
    /// The platform's id of the audience.
    pub remote_id: String,
    /// Matched people, lower bound (`None` = not reported).
    pub lower: Option<i64>,
    /// Matched people, upper bound.
    pub upper: Option<i64>,
    /// The platform's own match rate, percent.
    pub match_rate_percent: Option<f64>,
    /// When it was pulled.
    pub pulled_at: DateTime<Utc>,
    /// The metrics run that pulled it.
    pub run_id: Option<i64>,
}

fn day_of(secs: i64) -> Result<NaiveDate, sqlx::Error> {
    Ok(to_time("day", secs)?.date_naive())
}

impl Store {
    /// Records (or replaces, for the same day) one audience's platform-reported size.
    pub async fn record_audience_size(&self, r: &AudienceSizeRecord) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO audience_sizes (day, destination, audience_name, segment, remote_id, \
             lower_bound, upper_bound, match_rate_percent, pulled_at, run_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (day, destination, audience_name) DO UPDATE SET segment = excluded.segment, \
             remote_id = excluded.remote_id, lower_bound = excluded.lower_bound, \
             upper_bound = excluded.upper_bound, match_rate_percent = excluded.match_rate_percent, \
             pulled_at = excluded.pulled_at, run_id = excluded.run_id";
        on_pool!(self, pool => sqlx::query(SQL)
            .bind(day_secs(r.day)).bind(&r.destination).bind(&r.audience_name).bind(&r.segment)
            .bind(&r.remote_id).bind(r.lower).bind(r.upper).bind(r.match_rate_percent)
            .bind(r.pulled_at.timestamp()).bind(r.run_id)
            .execute(pool).await.map(|_| ())?);
        Ok(())
    }

    /// The latest size of every audience that has one, by (destination, audience name).
    pub async fn latest_audience_sizes(
        &self,
    ) -> Result<BTreeMap<(String, String), AudienceSizeRecord>, StoreError> {
        const SQL: &str = "SELECT s.day, s.destination, s.audience_name, s.segment, s.remote_id, \
             s.lower_bound, s.upper_bound, s.match_rate_percent, s.pulled_at, s.run_id \
             FROM audience_sizes s WHERE s.day = (SELECT MAX(l.day) FROM audience_sizes l \
             WHERE l.destination = s.destination AND l.audience_name = s.audience_name)";
        let rows = on_pool!(self, pool => {
            let rows = sqlx::query(SQL).fetch_all(pool).await?;
            rows.iter()
                .map(|r| -> Result<AudienceSizeRecord, sqlx::Error> {
                    Ok(AudienceSizeRecord {
                        day: day_of(r.try_get("day")?)?,
                        destination: r.try_get("destination")?,
                        audience_name: r.try_get("audience_name")?,
                        segment: r.try_get("segment")?,
                        remote_id: r.try_get("remote_id")?,
                        lower: r.try_get("lower_bound")?,
                        upper: r.try_get("upper_bound")?,
                        match_rate_percent: r.try_get("match_rate_percent")?,
                        pulled_at: to_time("pulled_at", r.try_get("pulled_at")?)?,
                        run_id: r.try_get("run_id")?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows
            .into_iter()
            .map(|r| ((r.destination.clone(), r.audience_name.clone()), r))
            .collect())
    }

    /// Members campaignd holds on each audience (rows of its sync ledger: accepted by the platform), by
    /// (destination, audience name).
    pub async fn ledger_counts(&self) -> Result<BTreeMap<(String, String), i64>, StoreError> {
        const SQL: &str = "SELECT destination, audience_name, COUNT(*) AS n FROM sync_ledger \
             GROUP BY destination, audience_name";
        let rows: Vec<(String, String, i64)> =
            on_pool!(self, pool => sqlx::query_as(SQL).fetch_all(pool).await?);
        Ok(rows.into_iter().map(|(d, a, n)| ((d, a), n)).collect())
    }

    /// The counts of the latest finished sync run of every target (`"segment -> destination"`).
    pub async fn latest_sync_counts(
        &self,
    ) -> Result<BTreeMap<String, serde_json::Value>, StoreError> {
        const SQL: &str = "SELECT target, counts FROM runs WHERE id IN (SELECT MAX(id) FROM runs \
             WHERE job = 'sync' AND finished_at IS NOT NULL AND target IS NOT NULL GROUP BY target)";
        let rows: Vec<(String, String)> =
            on_pool!(self, pool => sqlx::query_as(SQL).fetch_all(pool).await?);
        rows.into_iter()
            .map(|(target, counts)| {
                serde_json::from_str(&counts)
                    .map(|c| (target.clone(), c))
                    .map_err(|e| StoreError::Corrupt(format!("run counts of sync {target}: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(day: u32, lower: Option<i64>) -> AudienceSizeRecord {
        AudienceSizeRecord {
            day: NaiveDate::from_ymd_opt(2026, 11, day).expect("date"),
            destination: "meta".into(),
            audience_name: "Buyers".into(),
            segment: "buyers".into(),
            remote_id: "238".into(),
            lower,
            upper: lower.map(|l| l + 100),
            match_rate_percent: None,
            pulled_at: to_time("pulled_at", 1_700_000_000 + i64::from(day)).unwrap(),
            run_id: Some(i64::from(day)),
        }
    }

    #[tokio::test]
    async fn latest_size_per_audience_and_same_day_replaces() {
        let dir = tempfile::tempdir().expect("dir");
        let store = crate::testkit::fresh_sqlite_store(dir.path())
            .await
            .expect("store");
        store
            .record_audience_size(&record(1, Some(100)))
            .await
            .expect("day 1");
        store
            .record_audience_size(&record(3, Some(200)))
            .await
            .expect("day 3");
        store
            .record_audience_size(&record(3, Some(300)))
            .await
            .expect("day 3 again");
        store
            .record_audience_size(&record(2, None))
            .await
            .expect("day 2");
        let latest = store.latest_audience_sizes().await.expect("read");
        assert_eq!(latest.len(), 1);
        let r = &latest[&("meta".to_string(), "Buyers".to_string())];
        assert_eq!(
            (r.day.to_string().as_str(), r.lower, r.upper),
            ("2026-11-03", Some(300), Some(400))
        );
    }
}
