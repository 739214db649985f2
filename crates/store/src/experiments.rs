//! Holdout groups and the figures lift is computed from (DESIGN §6, §8).
//!
//! A sync with `holdout > 0` assigns each eligible member to `holdout` or `treatment` once (the group
//! itself is a pure hash, `campaignd_core::holdout`); `holdout_members` keeps the assignment and its
//! time. Held-out members are never sent. Lift reads, per group, set-based in SQL: members, members
//! who ordered within the window after their assignment, and the count, sum and sum of squares of
//! per-member revenue and of order totals — everything the intervals in `campaignd_core::stats` need.

use std::collections::HashMap;

use campaignd_core::stats::{GroupData, Sample};
use serde::Serialize;
use sqlx::Row;

use crate::bind::on_pool;
use crate::ledger::{bytewise, eligible_sql};
use crate::{Dialect, Store, StoreError};
use campaignd_core::model::Channel;

/// Which group a member of a sync with a holdout is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Kept out of the audience: never sent.
    Holdout,
    /// In the audience.
    Treatment,
}

impl Group {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Holdout => "holdout",
            Group::Treatment => "treatment",
        }
    }

    fn parse(s: &str) -> Result<Group, StoreError> {
        match s {
            "holdout" => Ok(Group::Holdout),
            "treatment" => Ok(Group::Treatment),
            other => Err(StoreError::Corrupt(format!(
                "holdout_members.grp is \"{other}\" (expected holdout or treatment)"
            ))),
        }
    }
}

/// One eligible member of a sync's segment and the group it was assigned to so far, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Customer id.
    pub customer_id: String,
    /// Its recorded group (`None`: never assigned).
    pub group: Option<Group>,
}

/// A sync that has assigned holdout groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldoutSync {
    /// Destination.
    pub destination: String,
    /// Audience name on it.
    pub audience: String,
    /// Segment synced.
    pub segment: String,
}

/// `expr` (unix seconds) as something comparable with `orders.placed_at` on this backend.
pub(crate) fn order_time(dialect: Dialect, secs_expr: &str) -> String {
    match dialect {
        Dialect::Sqlite => secs_expr.to_string(),
        Dialect::Postgres => format!("to_timestamp({secs_expr})"),
    }
}

/// The floating-point SQL type of this backend.
pub(crate) fn real(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "REAL",
        Dialect::Postgres => "DOUBLE PRECISION",
    }
}

impl Store {
    /// The next page (bytewise id order) of `segment`'s members who may be sent to a `consent` channel,
    /// with the group each was assigned by `(destination, audience)` so far.
    pub async fn holdout_page(
        &self,
        segment: &str,
        consent: Channel,
        destination: &str,
        audience: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<Assignment>, StoreError> {
        let c = bytewise(self);
        let sql = format!(
            "SELECT c.id, h.grp FROM segment_memberships m JOIN customers c ON c.id = m.customer_id \
             LEFT JOIN holdout_members h ON h.destination = $2 AND h.audience_name = $3 AND h.customer_id = c.id \
             WHERE m.segment = $1 AND m.customer_id{c} > $4 AND {} ORDER BY m.customer_id{c} LIMIT $5",
            eligible_sql(consent)
        );
        let rows: Vec<(String, Option<String>)> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(segment).bind(destination).bind(audience).bind(after).bind(limit)
            .fetch_all(pool).await?);
        rows.into_iter()
            .map(|(customer_id, g)| {
                Ok(Assignment {
                    customer_id,
                    group: g.as_deref().map(Group::parse).transpose()?,
                })
            })
            .collect()
    }

    /// Records (or changes, when the salt or share moved a member) the groups of `members`, assigned
    /// at `now`, in one transaction.
    pub async fn assign_groups(
        &self,
        destination: &str,
        audience: &str,
        segment: &str,
        members: &[(String, Group)],
        now: i64,
        run_id: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO holdout_members (destination, audience_name, segment, customer_id, grp, since, run_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (destination, audience_name, customer_id) DO UPDATE SET \
             grp = excluded.grp, since = excluded.since, run_id = excluded.run_id, segment = excluded.segment";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for (id, g) in members {
                sqlx::query(SQL).bind(destination).bind(audience).bind(segment).bind(id)
                    .bind(g.as_str()).bind(now).bind(run_id)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?
        });
        Ok(())
    }

    /// The recorded group of every assigned member of `(destination, audience)`.
    pub async fn holdout_groups(
        &self,
        destination: &str,
        audience: &str,
    ) -> Result<HashMap<String, Group>, StoreError> {
        const SQL: &str = "SELECT customer_id, grp FROM holdout_members WHERE destination = $1 AND audience_name = $2";
        let rows: Vec<(String, String)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(destination).bind(audience).fetch_all(pool).await?);
        rows.into_iter()
            .map(|(id, g)| Ok((id, Group::parse(&g)?)))
            .collect()
    }

    /// Every sync that has assigned groups, in (segment, destination, audience) order.
    pub async fn holdout_syncs(&self) -> Result<Vec<HoldoutSync>, StoreError> {
        const SQL: &str =
            "SELECT DISTINCT destination, audience_name, segment FROM holdout_members \
             ORDER BY segment, destination, audience_name";
        let rows: Vec<(String, String, String)> =
            on_pool!(self, pool => sqlx::query_as(SQL).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|(destination, audience, segment)| HoldoutSync {
                destination,
                audience,
                segment,
            })
            .collect())
    }

    /// Per group of `(destination, audience)`: what members assigned at or before `assigned_by` did in
    /// the `window_secs` after their assignment, counting only orders placed by `as_of`.
    pub async fn lift_figures(
        &self,
        destination: &str,
        audience: &str,
        window_secs: i64,
        assigned_by: i64,
        as_of: i64,
    ) -> Result<HashMap<Group, GroupData>, StoreError> {
        let d = self.dialect();
        let (lo, hi, cap) = (
            order_time(d, "g.since"),
            order_time(d, "g.since + $3"),
            order_time(d, "$5"),
        );
        let real = real(d);
        let window = format!(
            "o.customer_id = g.customer_id AND o.placed_at > {lo} AND o.placed_at <= {hi} AND o.placed_at <= {cap}"
        );
        let groups = "SELECT customer_id, grp, since FROM holdout_members \
             WHERE destination = $1 AND audience_name = $2 AND since <= $4";
        let per_member = format!(
            "WITH g AS ({groups}), per AS (\
               SELECT g.grp, g.customer_id, COUNT(o.id) AS n_orders, \
                      COALESCE(SUM(CAST(o.total AS {real})), 0) AS revenue \
               FROM g LEFT JOIN orders o ON {window} GROUP BY g.grp, g.customer_id) \
             SELECT grp, COUNT(*) AS members, \
                    COALESCE(SUM(CASE WHEN n_orders > 0 THEN 1 ELSE 0 END), 0) AS converters, \
                    CAST(COALESCE(SUM(revenue), 0) AS {real}) AS rev, \
                    CAST(COALESCE(SUM(revenue * revenue), 0) AS {real}) AS rev_sq \
             FROM per GROUP BY grp"
        );
        let per_order = format!(
            "WITH g AS ({groups}) \
             SELECT g.grp, COUNT(*) AS n, CAST(COALESCE(SUM(CAST(o.total AS {real})), 0) AS {real}) AS s, \
                    CAST(COALESCE(SUM(CAST(o.total AS {real}) * CAST(o.total AS {real})), 0) AS {real}) AS sq \
             FROM g JOIN orders o ON {window} GROUP BY g.grp"
        );
        let mut out: HashMap<Group, GroupData> = HashMap::new();
        on_pool!(self, pool => {
            let rows = sqlx::query(&per_member).bind(destination).bind(audience).bind(window_secs)
                .bind(assigned_by).bind(as_of).fetch_all(pool).await?;
            for r in &rows {
                let g = Group::parse(&r.try_get::<String, _>("grp")?)?;
                let members: i64 = r.try_get("members")?;
                let converters: i64 = r.try_get("converters")?;
                let f = out.entry(g).or_default();
                f.members = members as u64;
                f.converters = converters as u64;
                f.revenue_per_member = Sample {
                    n: members as u64,
                    sum: r.try_get("rev")?,
                    sum_sq: r.try_get("rev_sq")?,
                };
            }
            let rows = sqlx::query(&per_order).bind(destination).bind(audience).bind(window_secs)
                .bind(assigned_by).bind(as_of).fetch_all(pool).await?;
            for r in &rows {
                let g = Group::parse(&r.try_get::<String, _>("grp")?)?;
                let n: i64 = r.try_get("n")?;
                out.entry(g).or_default().order_totals = Sample {
                    n: n as u64,
                    sum: r.try_get("s")?,
                    sum_sq: r.try_get("sq")?,
                };
            }
        });
        Ok(out)
    }
}
