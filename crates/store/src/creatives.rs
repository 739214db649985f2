//! Creative rotation history (DESIGN §7): which variant of a creative set was live on which platform
//! object, for which segment and destination, from when to when; and which variants were retired. The
//! rotate job reads it to know what is live and since when; the metrics pull reads it to attribute each
//! day to the creative that was live.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::bind::on_pool;
use crate::runs::to_time;
use crate::{Store, StoreError};

/// One period of one variant being live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationRecord {
    /// The creative set.
    pub set_name: String,
    /// Segment that saw it.
    pub segment: String,
    /// Destination (channel) it ran on.
    pub destination: String,
    /// Platform object whose creative it was.
    pub object_id: String,
    /// The set's variant id.
    pub variant_id: String,
    /// The platform's creative id.
    pub creative_id: String,
    /// Live from (inclusive).
    pub live_from: DateTime<Utc>,
    /// Live until (exclusive); `None` while live.
    pub live_until: Option<DateTime<Utc>>,
}

impl RotationRecord {
    /// Whether this period covers the instant `t` (unix seconds).
    pub fn covers(&self, t: i64) -> bool {
        self.live_from.timestamp() <= t && self.live_until.is_none_or(|u| t < u.timestamp())
    }
}

/// A variant going live: what [`Store::record_rotation`] writes.
#[derive(Debug, Clone)]
pub struct NewRotation<'a> {
    /// The creative set.
    pub set_name: &'a str,
    /// Segment that sees it.
    pub segment: &'a str,
    /// Destination it runs on.
    pub destination: &'a str,
    /// Platform object.
    pub object_id: &'a str,
    /// Variant going live.
    pub variant_id: &'a str,
    /// Its platform creative id.
    pub creative_id: &'a str,
    /// When (the previous period ends at the same instant).
    pub at: DateTime<Utc>,
    /// The rotate run.
    pub run_id: Option<i64>,
    /// Why it went live before the previous period was over (fatigue), if it did.
    pub reason: Option<&'a str>,
}

/// A variant being retired, with the figures that condemned it.
#[derive(Debug, Clone)]
pub struct Retirement<'a> {
    /// Variant id.
    pub variant_id: &'a str,
    /// Impressions at retirement.
    pub impressions: i64,
    /// Clicks at retirement.
    pub clicks: i64,
    /// Conversions at retirement.
    pub conversions: f64,
}

const COLUMNS: &str =
    "set_name, segment, destination, object_id, variant_id, creative_id, live_from, live_until";

/// Decodes a [`RotationRecord`] from a row of either backend (a macro: the row types differ).
macro_rules! rotation_record {
    ($r:expr) => {
        (|| -> Result<RotationRecord, sqlx::Error> {
            let r = $r;
            Ok(RotationRecord {
                set_name: r.try_get("set_name")?,
                segment: r.try_get("segment")?,
                destination: r.try_get("destination")?,
                object_id: r.try_get("object_id")?,
                variant_id: r.try_get("variant_id")?,
                creative_id: r.try_get("creative_id")?,
                live_from: to_time("live_from", r.try_get("live_from")?)?,
                live_until: r
                    .try_get::<Option<i64>, _>("live_until")?
                    .map(|t| to_time("live_until", t))
                    .transpose()?,
            })
        })()
    };
}

/// Inserts retirements inside an open transaction `$tx` (a second retirement of the same variant is
/// ignored).
macro_rules! retire_in {
    ($tx:expr, $set:expr, $retirements:expr, $at:expr, $run:expr) => {
        for r in $retirements {
            sqlx::query(RETIRE)
                .bind($set)
                .bind(r.variant_id)
                .bind($at)
                .bind(r.impressions)
                .bind(r.clicks)
                .bind(r.conversions)
                .bind($run)
                .execute(&mut *$tx)
                .await?;
        }
    };
}

const RETIRE: &str =
    "INSERT INTO creative_retirements (set_name, variant_id, retired_at, impressions, \
     clicks, conversions, run_id) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (set_name, variant_id) DO NOTHING";

impl Store {
    /// The variant live now for `set_name`, if the set ever rotated.
    pub async fn current_rotation(
        &self,
        set_name: &str,
    ) -> Result<Option<RotationRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM creative_rotations WHERE set_name = $1 AND live_until IS NULL"
        );
        let row = on_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(set_name).fetch_optional(pool).await?;
            row.as_ref().map(|r| rotation_record!(r)).transpose()?
        });
        Ok(row)
    }

    /// How many periods the set has had (the next period's number for seeded strategies).
    pub async fn rotation_count(&self, set_name: &str) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM creative_rotations WHERE set_name = $1";
        let n: i64 =
            on_pool!(self, pool => sqlx::query_scalar(SQL).bind(set_name).fetch_one(pool).await?);
        Ok(n)
    }

    /// The set's whole history, oldest first.
    pub async fn rotation_history(
        &self,
        set_name: &str,
    ) -> Result<Vec<RotationRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM creative_rotations WHERE set_name = $1 ORDER BY live_from, id"
        );
        let rows = on_pool!(self, pool => {
            let rows = sqlx::query(&sql).bind(set_name).fetch_all(pool).await?;
            rows.iter().map(|r| rotation_record!(r)).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Every period on `destination` that overlaps `[from, until)` (unix seconds), for attributing
    /// metrics days to creatives.
    pub async fn rotations_between(
        &self,
        destination: &str,
        from: i64,
        until: i64,
    ) -> Result<Vec<RotationRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM creative_rotations WHERE destination = $1 AND live_from < $3 \
             AND (live_until IS NULL OR live_until > $2) ORDER BY live_from, id"
        );
        let rows = on_pool!(self, pool => {
            let rows = sqlx::query(&sql).bind(destination).bind(from).bind(until).fetch_all(pool).await?;
            rows.iter().map(|r| rotation_record!(r)).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Ends the set's live period (if any) and starts `new`'s at the same instant, recording
    /// `retirements` with it, in one transaction: history never shows two live variants or a gap, and
    /// a failure writes nothing.
    pub async fn record_rotation(
        &self,
        new: &NewRotation<'_>,
        retirements: &[Retirement<'_>],
    ) -> Result<(), StoreError> {
        const CLOSE: &str =
            "UPDATE creative_rotations SET live_until = $1 WHERE set_name = $2 AND live_until IS NULL";
        const OPEN: &str = "INSERT INTO creative_rotations (set_name, segment, destination, object_id, \
             variant_id, creative_id, live_from, live_until, run_id, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9)";
        let at = new.at.timestamp();
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_write_sql()).await?;
            sqlx::query(CLOSE).bind(at).bind(new.set_name).execute(&mut *tx).await?;
            sqlx::query(OPEN)
                .bind(new.set_name)
                .bind(new.segment)
                .bind(new.destination)
                .bind(new.object_id)
                .bind(new.variant_id)
                .bind(new.creative_id)
                .bind(at)
                .bind(new.run_id)
                .bind(new.reason)
                .execute(&mut *tx)
                .await?;
            retire_in!(tx, new.set_name, retirements, at, new.run_id);
            tx.commit().await?
        });
        Ok(())
    }

    /// Records retirements on their own (the live variant stays), in one transaction.
    pub async fn retire_variants(
        &self,
        set_name: &str,
        retirements: &[Retirement<'_>],
        at: DateTime<Utc>,
        run_id: Option<i64>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_write_sql()).await?;
            retire_in!(tx, set_name, retirements, at.timestamp(), run_id);
            tx.commit().await?
        });
        Ok(())
    }

    /// The set's retired variants with when they were retired.
    pub async fn retired_variants(
        &self,
        set_name: &str,
    ) -> Result<BTreeMap<String, DateTime<Utc>>, StoreError> {
        const SQL: &str =
            "SELECT variant_id, retired_at FROM creative_retirements WHERE set_name = $1";
        let rows = on_pool!(self, pool => {
            let rows = sqlx::query(SQL).bind(set_name).fetch_all(pool).await?;
            rows.iter()
                .map(|r| -> Result<(String, DateTime<Utc>), sqlx::Error> {
                    Ok((r.try_get("variant_id")?, to_time("retired_at", r.try_get("retired_at")?)?))
                })
                .collect::<Result<BTreeMap<_, _>, _>>()?
        });
        Ok(rows)
    }
}
