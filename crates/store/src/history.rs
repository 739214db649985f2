//! Read-only views for the daemon's admin API and report page: segment sizes over time (from
//! `segment_sizes`, one point per recompute) and whether the store holds any shop data yet.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::bind::on_pool;
use crate::runs::to_time;
use crate::{Store, StoreError};

/// One recorded size of a segment.
#[derive(Debug, Clone, Serialize)]
pub struct SizePoint {
    /// The segment's name.
    pub segment: String,
    /// The recompute run that measured it.
    pub run_id: i64,
    /// The "now" of that recompute.
    pub at: DateTime<Utc>,
    /// Members at that time.
    pub size: i64,
}

impl Store {
    /// Sizes of every segment recorded since `since` (inclusive), oldest first.
    pub async fn segment_size_history(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<SizePoint>, StoreError> {
        const SQL: &str = "SELECT segment, run_id, at, size FROM segment_sizes WHERE at >= $1 \
             ORDER BY at, segment";
        let rows = on_pool!(self, pool => {
            sqlx::query(SQL).bind(since.timestamp()).fetch_all(pool).await?.iter().map(|r| -> Result<SizePoint, sqlx::Error> {
                Ok(SizePoint {
                    segment: r.try_get("segment")?,
                    run_id: r.try_get("run_id")?,
                    at: to_time("at", r.try_get("at")?)?,
                    size: r.try_get("size")?,
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// True when there are no customers at all (a fresh install: the daemon may generate demo data).
    pub async fn has_no_customers(&self) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM customers LIMIT 1) c";
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar(SQL).fetch_one(pool).await?);
        Ok(n == 0)
    }

    /// Round-trips a trivial query: the health check's "is the database answering".
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?);
        Ok(())
    }
}
