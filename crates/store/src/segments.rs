//! Segment materialisation: who is in each segment now, who joined and who left.
//!
//! A recompute never loops over customers in Rust: the segment's query fills a staging table inside
//! the database, and the diff against the previous membership, the change log and the new membership
//! are all written by set-based statements in one transaction. A crash mid-recompute leaves the last
//! committed membership intact. A run holds one connection ([`SegmentSession`]) on which it first
//! builds the per-customer aggregate tables its compiled rules filter (temporary tables, so they exist
//! on that connection only), then recomputes each segment.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::Serialize;
use sqlx::Row;

use campaignd_core::rules::{AggregateTable, CompiledQuery, SqlParam};
use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Sqlite};

use crate::bind::{on_pool, BindParams, SQLITE_BEGIN_WRITE};
use crate::runs::to_time;
use crate::{Pool, Store, StoreError};

/// How a segment's members are selected, ready to run on this store's dialect.
#[derive(Debug, Clone)]
pub enum SegmentQuery {
    /// A compiled rule (or template); its parameters are bound, never interpolated.
    Compiled(CompiledQuery),
    /// The user's own `SELECT`, run in a read-only transaction; `excludes` are applied around it.
    UserSql(String),
}

/// Everything needed to recompute one segment.
#[derive(Debug, Clone)]
pub struct SegmentPlan {
    /// The segment's name.
    pub name: String,
    /// The human description from the config.
    pub description: Option<String>,
    /// The rule text, template call or SQL as the user wrote it (for `segments show`).
    pub source: String,
    /// The query that yields `customer_id`s.
    pub query: SegmentQuery,
    /// Segments whose members are taken out (already recomputed earlier in the same run).
    pub excludes: Vec<String>,
}

/// What a recompute did to one segment.
#[derive(Debug, Clone, Serialize)]
pub struct RecomputeOutcome {
    /// The segment's name.
    pub segment: String,
    /// Members after the recompute.
    pub size: i64,
    /// Customers who entered the segment.
    pub joined: i64,
    /// Customers who left it.
    pub left: i64,
    /// Ids a `sql` segment returned that are not customers, left out of the segment (always 0 for
    /// rules and templates, which select from `customers`).
    pub dropped: i64,
}

/// A segment as last recomputed, for `segments list/show` and the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentSummary {
    /// The segment's name.
    pub name: String,
    /// The human description.
    pub description: Option<String>,
    /// Rule, template call or SQL as written.
    pub source: String,
    /// The SQL that ran last, with placeholders (for a rule: its filter over the run's aggregate
    /// tables).
    pub compiled_sql: Option<String>,
    /// Current member count.
    pub size: i64,
    /// Joined on the last run.
    pub last_joined: i64,
    /// Left on the last run.
    pub last_left: i64,
    /// Ids the last run's `sql` returned that are not customers (left out of the segment).
    pub last_dropped: i64,
    /// When it was last recomputed.
    pub computed_at: Option<DateTime<Utc>>,
}

/// One member with the contact columns `segments members --format csv` prints.
#[derive(Debug, Clone, Serialize)]
pub struct MemberRow {
    /// The customer's id.
    pub customer_id: String,
    /// Email as stored (may be invalid).
    pub email: Option<String>,
    /// Phone as stored.
    pub phone: Option<String>,
    /// When this customer last entered the segment.
    pub joined_at: DateTime<Utc>,
}

/// Per-connection scratch tables: the segment's members as just computed, and the two halves of the
/// diff against the stored membership. They are temporary (never shared, never logged to the WAL).
const STAGING_DDL: [&str; 3] = [
    "CREATE TEMP TABLE IF NOT EXISTS staging_members (customer_id TEXT PRIMARY KEY)",
    "CREATE TEMP TABLE IF NOT EXISTS staging_joined (customer_id TEXT PRIMARY KEY)",
    "CREATE TEMP TABLE IF NOT EXISTS staging_left (customer_id TEXT PRIMARY KEY)",
];
/// The same scratch tables on Postgres, without an index: every id in them is distinct already (the
/// staging query is a `SELECT DISTINCT`, see [`with_excludes`], and the diff halves are drawn from it
/// and from the membership's key), no statement looks one id up in them (the diff reads them whole,
/// by hash joins over their fresh statistics), and maintaining a B-tree per staged id was a
/// measurable share of a first recompute at 1M customers (issue 13).
const STAGING_DDL_POSTGRES: [&str; 3] = [
    "CREATE TEMP TABLE IF NOT EXISTS staging_members (customer_id TEXT NOT NULL)",
    "CREATE TEMP TABLE IF NOT EXISTS staging_joined (customer_id TEXT NOT NULL)",
    "CREATE TEMP TABLE IF NOT EXISTS staging_left (customer_id TEXT NOT NULL)",
];
/// Empties the scratch tables (SQLite's `DELETE` without `WHERE` truncates; Postgres has `TRUNCATE`,
/// which leaves no dead rows behind for the next segment's statements to wade through).
const STAGING_CLEAR_SQLITE: &str = "DELETE FROM staging_members";
const STAGING_CLEAR_SQLITE_DIFF: [&str; 2] =
    ["DELETE FROM staging_joined", "DELETE FROM staging_left"];
const STAGING_CLEAR_POSTGRES: &str = "TRUNCATE staging_members, staging_joined, staging_left";
/// Postgres never analyses temporary tables by itself; without statistics the planner takes a freshly
/// filled staging table for empty and may pick a nested loop over it.
const STAGING_ANALYZE: &str = "ANALYZE staging_members";
/// A recompute session runs on Postgres with JIT compilation off, and the connection's setting is
/// restored when the session closes. A compiled rule is one expression per rule node, and an
/// aggregate pass one expression per value the run's rules read; their estimated cost passes
/// `jit_above_cost` as soon as the rules or the shop are large: Postgres then hands the whole
/// expression to LLVM, whose compile time grows much faster than the expression. Measured on
/// Postgres 15 with the widest rule the parser accepts (3,333 comparisons, 6,666 correlated subqueries,
/// the query shape before the shared aggregate pass) on *empty* tables: more than 5 minutes with
/// `jit = on` (the default), 3.7 s with it off (of which 1.5 s planning).
const STAGE_JIT_OFF: &str = "SET jit = off";
const STAGE_JIT_RESET: &str = "RESET jit";
const DIFF_ANALYZE: &str = "ANALYZE staging_joined, staging_left";
/// `sql` segments may return ids that are not customers (a typo, a stale table): they are taken out
/// before the diff, and counted.
const DROP_NON_CUSTOMERS: &str = "DELETE FROM staging_members \
     WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = staging_members.customer_id)";
/// The diff is computed into tables of its own before anything is written, so no statement reads the
/// table it writes. (Inserting into `segment_memberships` with an anti-join over `segment_memberships`
/// itself made Postgres scan, per staged row, the rows the same statement had just inserted: quadratic
/// on a first recompute, whose statistics say the table is empty.) Every statement below is one pass
/// or one index lookup per row, whatever plan is picked.
const DIFF_JOINED: &str = "INSERT INTO staging_joined (customer_id) SELECT s.customer_id FROM staging_members s \
     WHERE NOT EXISTS (SELECT 1 FROM segment_memberships m WHERE m.segment = $1 AND m.customer_id = s.customer_id)";
const DIFF_LEFT: &str = "INSERT INTO staging_left (customer_id) SELECT m.customer_id FROM segment_memberships m \
     WHERE m.segment = $1 AND NOT EXISTS (SELECT 1 FROM staging_members s WHERE s.customer_id = m.customer_id)";
const RECORD_JOINED: &str =
    "INSERT INTO segment_changes (run_id, segment, customer_id, change, at) \
     SELECT $1, $2, j.customer_id, 'joined', $3 FROM staging_joined j";
/// [`RECORD_JOINED`] and [`INSERT_JOINED`] on Postgres: the joined ids in key order, so each B-tree
/// (`segment_memberships`' key and its bytewise twin, `segment_changes_customer`) takes them as one
/// ascending run within the segment's key range, page after page, instead of one random leaf per id.
/// On a first recompute at 1M customers, inserting a 260k-member segment in staging order touched
/// leaf pages all over indexes larger than `shared_buffers` (issue 13).
const RECORD_JOINED_SORTED: &str =
    "INSERT INTO segment_changes (run_id, segment, customer_id, change, at) \
     SELECT $1, $2, j.customer_id, 'joined', $3 FROM staging_joined j ORDER BY j.customer_id";
const RECORD_LEFT: &str = "INSERT INTO segment_changes (run_id, segment, customer_id, change, at) \
     SELECT $1, $2, l.customer_id, 'left', $3 FROM staging_left l";
const DELETE_LEFT: &str = "DELETE FROM segment_memberships WHERE segment = $1 \
     AND customer_id IN (SELECT l.customer_id FROM staging_left l)";
/// `WHERE true` keeps SQLite's parser from reading `ON CONFLICT` as a join constraint.
const INSERT_JOINED: &str = "INSERT INTO segment_memberships (segment, customer_id, joined_at) \
     SELECT $1, j.customer_id, $2 FROM staging_joined j WHERE true ON CONFLICT DO NOTHING";
/// [`INSERT_JOINED`] on Postgres: in key order (see [`RECORD_JOINED_SORTED`]) and without
/// `ON CONFLICT`. Every id in `staging_joined` is absent from the segment's stored membership (the
/// anti-join of [`DIFF_JOINED`] in the same transaction), and [`SEGMENT_LOCK`] keeps any other
/// recompute of the segment from inserting between that diff and this insert, so no row can conflict.
/// `ON CONFLICT` made each row a speculative insertion: an extra probe of the key and an extra WAL
/// record per row; measured with `EXPLAIN (ANALYZE, WAL)` on a 1M-customer store, 260,415 members
/// into an empty segment took 1.70 s with it and 1.25 s without (1.05M WAL records against 0.79M).
/// Were a conflict to happen anyway, the statement fails and the transaction rolls back: nothing is
/// half-written.
const INSERT_JOINED_PLAIN_SORTED: &str =
    "INSERT INTO segment_memberships (segment, customer_id, joined_at) \
     SELECT $1, j.customer_id, $2 FROM staging_joined j ORDER BY j.customer_id";
/// Serialises the write transactions of one segment's recomputes on Postgres (a transaction-level
/// advisory lock keyed by the segment's name, released at commit or rollback), taken before the
/// diff: a second recompute of the same segment waits, then diffs against the first one's
/// committed membership (each statement of a `READ COMMITTED` transaction reads a fresh snapshot),
/// so [`INSERT_JOINED_PLAIN_SORTED`] never meets a row it did not see. Two names with the same hash
/// only wait for each other. SQLite needs none: its write transaction (`BEGIN IMMEDIATE`) already
/// excludes every other writer. The first key is campaignd's lock class for segments (the bytes
/// `cmpd`), so the lock cannot collide with an application's single-key advisory locks.
const SEGMENT_LOCK: &str = "SELECT pg_advisory_xact_lock(1668116580, hashtext($1))";
const COUNT_MEMBERS: &str = "SELECT COUNT(*) FROM segment_memberships WHERE segment = $1";
const UPSERT_SEGMENT: &str = "INSERT INTO segments (name, description, source, compiled_sql, size, last_run_id, last_joined, last_left, computed_at, last_dropped) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (name) DO UPDATE SET description = excluded.description, source = excluded.source, \
     compiled_sql = excluded.compiled_sql, size = excluded.size, last_run_id = excluded.last_run_id, \
     last_joined = excluded.last_joined, last_left = excluded.last_left, computed_at = excluded.computed_at, \
     last_dropped = excluded.last_dropped";
const RECORD_SIZE: &str =
    "INSERT INTO segment_sizes (segment, run_id, at, size) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (segment, run_id) DO UPDATE SET size = excluded.size, at = excluded.at";
const STAGE_BATCH: usize = 5_000;

/// Wraps a query yielding `customer_id` so that excluded segments' members are left out.
fn with_excludes(inner: &str, excludes: &[String], next_param: usize) -> String {
    let mut sql = format!("SELECT DISTINCT q.customer_id FROM ({inner}) q");
    for (i, _) in excludes.iter().enumerate() {
        let kw = if i == 0 { "WHERE" } else { "AND" };
        sql.push_str(&format!(
            " {kw} NOT EXISTS (SELECT 1 FROM segment_memberships x{i} WHERE x{i}.segment = ${} AND x{i}.customer_id = q.customer_id)",
            next_param + i
        ));
    }
    sql
}

/// Rewrites SQLite `?` placeholders as `$N` so that extra parameters can be appended after them.
fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut in_string = false;
    for ch in sql.chars() {
        match ch {
            '\'' => {
                in_string = !in_string;
                out.push(ch);
            }
            '?' if !in_string => {
                n += 1;
                out.push_str(&format!("${n}"));
            }
            _ => out.push(ch),
        }
    }
    out
}

/// Copies a batch of customer ids into the staging table (a macro so each backend's branch of
/// `on_pool!` gets its own concrete query type).
macro_rules! stage_ids {
    ($tx:expr, $ids:expr) => {
        async {
            let ids: &[String] = $ids;
            if !ids.is_empty() {
                let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("(${i})")).collect();
                let sql = format!(
                    "INSERT INTO staging_members (customer_id) VALUES {} ON CONFLICT DO NOTHING",
                    placeholders.join(", ")
                );
                let mut q = sqlx::query(&sql);
                for id in ids {
                    q = q.bind(id.as_str());
                }
                q.execute(&mut *$tx).await?;
            }
            Ok::<(), sqlx::Error>(())
        }
    };
}

/// A pooled connection of either backend, held for a whole recompute run: the run's aggregate tables
/// are temporary, so they exist only on the connection that built them.
enum SessionConn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

/// Runs `$body` with `$conn` bound to the session's connection and `$pool` to the store's pool of the
/// same backend (compiled once per backend, like `on_pool!`); on Postgres within the store's
/// operation timeout.
macro_rules! on_conn {
    ($session:expr, $pool:ident, $conn:ident => $body:expr) => {{
        let store = $session.store;
        match (&mut $session.conn, store.pool()) {
            (SessionConn::Sqlite($conn), Pool::Sqlite($pool)) => {
                let _ = &$pool;
                $body
            }
            (SessionConn::Postgres($conn), Pool::Postgres($pool)) => {
                let _ = &$pool;
                store.bounded(async { Ok::<_, StoreError>($body) }).await?
            }
            _ => {
                return Err(StoreError::Corrupt(
                    "a segment session's connection is not of its store's backend".into(),
                ))
            }
        }
    }};
}

/// One recompute run's hold on the database: a connection with the staging tables and, once
/// [`SegmentSession::build_aggregates`] ran, the run's per-customer aggregate tables that every
/// compiled segment of the run filters. Call [`SegmentSession::close`] when done (also after an
/// error), which drops the aggregate tables so the pooled connection does not keep them.
pub struct SegmentSession<'s> {
    store: &'s Store,
    conn: SessionConn,
    /// Aggregate tables built on this connection.
    tables: Vec<String>,
}

impl Store {
    /// Opens a recompute session: one connection, its staging tables created, and on Postgres JIT
    /// compilation off until [`SegmentSession::close`] (see [`STAGE_JIT_OFF`]).
    pub async fn segment_session(&self) -> Result<SegmentSession<'_>, StoreError> {
        let conn = match self.pool() {
            Pool::Sqlite(pool) => SessionConn::Sqlite(pool.acquire().await?),
            Pool::Postgres(pool) => {
                SessionConn::Postgres(self.bounded(async { Ok(pool.acquire().await?) }).await?)
            }
        };
        let mut session = SegmentSession {
            store: self,
            conn,
            tables: Vec::new(),
        };
        let jit = matches!(self.pool(), Pool::Postgres(_));
        let ddl = if jit {
            STAGING_DDL_POSTGRES
        } else {
            STAGING_DDL
        };
        on_conn!(session, pool, conn => {
            for ddl in ddl {
                sqlx::query(ddl).execute(&mut **conn).await?;
            }
            if jit {
                sqlx::query(STAGE_JIT_OFF).execute(&mut **conn).await?;
            }
        });
        Ok(session)
    }

    /// Recomputes one segment on its own (a session of one segment with no aggregate tables, so the
    /// plan's query must be self-contained, as [`campaignd_core::rules::compile_segment`] makes it)
    /// and records the diff, all in one transaction.
    pub async fn recompute_segment(
        &self,
        plan: &SegmentPlan,
        run_id: i64,
        now: DateTime<Utc>,
    ) -> Result<RecomputeOutcome, StoreError> {
        let mut session = self.segment_session().await?;
        let outcome = session.recompute(plan, run_id, now).await;
        let closed = session.close().await;
        let outcome = outcome?;
        closed?;
        Ok(outcome)
    }

    /// How many rows a self-contained compiled segment query returns, counted in the database
    /// (`SELECT COUNT(*)` over it).
    pub async fn count_matches(&self, query: &CompiledQuery) -> Result<i64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM ({}) counted", query.sql);
        let n: i64 = on_pool!(self, pool => {
            sqlx::query(&sql).bind_params(&query.params).fetch_one(pool).await?.try_get(0)?
        });
        Ok(n)
    }
    /// Every recomputed segment, by name.
    pub async fn segment_summaries(&self) -> Result<Vec<SegmentSummary>, StoreError> {
        const SQL: &str = "SELECT name, description, source, compiled_sql, size, last_joined, last_left, last_dropped, computed_at \
             FROM segments ORDER BY name";
        let rows = on_pool!(self, pool => {
            sqlx::query(SQL).fetch_all(pool).await?.iter().map(|r| -> Result<SegmentSummary, sqlx::Error> {
                Ok(SegmentSummary {
                    name: r.try_get("name")?,
                    description: r.try_get("description")?,
                    source: r.try_get("source")?,
                    compiled_sql: r.try_get("compiled_sql")?,
                    size: r.try_get("size")?,
                    last_joined: r.try_get("last_joined")?,
                    last_left: r.try_get("last_left")?,
                    last_dropped: r.try_get("last_dropped")?,
                    computed_at: r
                        .try_get::<Option<i64>, _>("computed_at")?
                        .map(|t| to_time("computed_at", t))
                        .transpose()?,
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// The current members of a segment with their contact columns, in customer id order.
    pub async fn segment_members(&self, segment: &str) -> Result<Vec<MemberRow>, StoreError> {
        const SQL: &str = "SELECT m.customer_id, c.email, c.phone, m.joined_at FROM segment_memberships m \
             LEFT JOIN customers c ON c.id = m.customer_id WHERE m.segment = $1 ORDER BY m.customer_id";
        let rows = on_pool!(self, pool => {
            sqlx::query(SQL).bind(segment).fetch_all(pool).await?.iter().map(|r| -> Result<MemberRow, sqlx::Error> {
                Ok(MemberRow {
                    customer_id: r.try_get("customer_id")?,
                    email: r.try_get("email")?,
                    phone: r.try_get("phone")?,
                    joined_at: to_time("joined_at", r.try_get("joined_at")?)?,
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }
}

impl SegmentSession<'_> {
    /// Builds the run's aggregate tables on this connection (dropping any left by an earlier run on
    /// it) with the statements [`AggregateTable::statements`] lists: per table one `GROUP BY` pass
    /// over orders and one over events into scratch tables keyed by customer id, then the visible
    /// customers joined to them.
    pub async fn build_aggregates(&mut self, tables: &[AggregateTable]) -> Result<(), StoreError> {
        for table in tables {
            let agg_err = |e: sqlx::Error| StoreError::Segment {
                segment: format!("(aggregates {})", table.name),
                message: e.to_string(),
            };
            let drops: Vec<String> = table
                .tables
                .iter()
                .map(|t| format!("DROP TABLE IF EXISTS {t}"))
                .collect();
            // Recorded first, so `close` drops whatever a failed build left.
            self.tables.extend(table.tables.iter().cloned());
            on_conn!(self, pool, conn => {
                for drop in &drops {
                    sqlx::query(drop).execute(&mut **conn).await?;
                }
                for statement in &table.statements {
                    sqlx::query(&statement.sql)
                        .bind_params(&statement.params)
                        .execute(&mut **conn)
                        .await
                        .map_err(agg_err)?;
                }
            });
        }
        Ok(())
    }

    /// How many rows a compiled query of this run returns, counted in the database on this session's
    /// connection (so it can read the aggregate tables): the bare baseline benchmarks compare a
    /// recompute with.
    pub async fn count_matches(&mut self, query: &CompiledQuery) -> Result<i64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM ({}) counted", query.sql);
        let n: i64 = on_conn!(self, pool, conn => {
            sqlx::query(&sql).bind_params(&query.params).fetch_one(&mut **conn).await?.try_get(0)?
        });
        Ok(n)
    }

    /// Drops the aggregate tables and restores the connection's settings, returning it to the pool
    /// as it was taken.
    pub async fn close(mut self) -> Result<(), StoreError> {
        let drops: Vec<String> = self
            .tables
            .drain(..)
            .map(|t| format!("DROP TABLE IF EXISTS {t}"))
            .collect();
        let jit = matches!(self.store.pool(), Pool::Postgres(_));
        on_conn!(self, pool, conn => {
            for sql in &drops {
                sqlx::query(sql).execute(&mut **conn).await?;
            }
            if jit {
                sqlx::query(STAGE_JIT_RESET).execute(&mut **conn).await?;
            }
        });
        Ok(())
    }

    /// Recomputes one segment of the run and records the diff, all in one transaction. The plan's
    /// compiled query may read the aggregate tables built on this session.
    pub async fn recompute(
        &mut self,
        plan: &SegmentPlan,
        run_id: i64,
        now: DateTime<Utc>,
    ) -> Result<RecomputeOutcome, StoreError> {
        let seg_err = |e: sqlx::Error| StoreError::Segment {
            segment: plan.name.clone(),
            message: e.to_string(),
        };
        let (ro_on, ro_off) = match self.store.pool() {
            Pool::Sqlite(_) => ("PRAGMA query_only = ON", "PRAGMA query_only = OFF"),
            Pool::Postgres(_) => ("BEGIN READ ONLY", "ROLLBACK"),
        };
        let (stage_sql, stage_params, compiled_sql) = match &plan.query {
            SegmentQuery::Compiled(q) => {
                let inner = match self.store.pool() {
                    Pool::Sqlite(_) => numbered_placeholders(&q.sql),
                    Pool::Postgres(_) => q.sql.clone(),
                };
                let mut params = q.params.clone();
                params.extend(plan.excludes.iter().cloned().map(SqlParam::Text));
                let sql = format!(
                    "INSERT INTO staging_members (customer_id) {}",
                    with_excludes(&inner, &plan.excludes, q.params.len() + 1)
                );
                (Some(sql), params, q.sql.clone())
            }
            SegmentQuery::UserSql(sql) => (None, Vec::new(), sql.clone()),
        };
        let at = now.timestamp();
        let pg = matches!(self.store.pool(), Pool::Postgres(_));
        let (clear, clear_more, analyze, begin, record_joined, insert_joined) =
            match self.store.pool() {
                Pool::Sqlite(_) => (
                    STAGING_CLEAR_SQLITE,
                    &STAGING_CLEAR_SQLITE_DIFF[..],
                    false,
                    SQLITE_BEGIN_WRITE,
                    RECORD_JOINED,
                    INSERT_JOINED,
                ),
                Pool::Postgres(_) => (
                    STAGING_CLEAR_POSTGRES,
                    &[][..],
                    true,
                    "BEGIN",
                    RECORD_JOINED_SORTED,
                    INSERT_JOINED_PLAIN_SORTED,
                ),
            };
        let (joined, left, size, dropped) = on_conn!(self, pool, conn => {
            for sql in std::iter::once(clear).chain(clear_more.iter().copied()) {
                sqlx::query(sql).execute(&mut **conn).await?;
            }
            // Staging only reads the shop's tables and writes this connection's temporary ones, so it
            // runs before the write transaction: other writers wait only for the diff, not the query.
            match &stage_sql {
                Some(sql) => {
                    sqlx::query(sql).bind_params(&stage_params).execute(&mut **conn).await.map_err(seg_err)?;
                }
                None => {
                    // The user's SQL runs on a second connection that cannot write, and its rows are
                    // copied into the staging table in batches.
                    let user_sql = with_excludes(&compiled_sql, &plan.excludes, 1);
                    let mut reader = pool.acquire().await?;
                    sqlx::query(ro_on).execute(&mut *reader).await?;
                    let copied: Result<(), sqlx::Error> = async {
                        let mut q = sqlx::query(&user_sql);
                        for name in &plan.excludes {
                            q = q.bind(name);
                        }
                        let mut rows = q.fetch(&mut *reader);
                        let mut batch: Vec<String> = Vec::with_capacity(STAGE_BATCH);
                        while let Some(row) = rows.try_next().await? {
                            batch.push(row.try_get::<String, _>("customer_id")?);
                            if batch.len() == STAGE_BATCH {
                                stage_ids!(*conn, &batch).await?;
                                batch.clear();
                            }
                        }
                        stage_ids!(*conn, &batch).await
                    }
                    .await;
                    let reset = sqlx::query(ro_off).execute(&mut *reader).await;
                    copied.map_err(seg_err)?;
                    reset?;
                }
            }
            let dropped = if stage_sql.is_none() {
                sqlx::query(DROP_NON_CUSTOMERS).execute(&mut **conn).await?.rows_affected() as i64
            } else {
                0
            };
            if analyze {
                sqlx::query(STAGING_ANALYZE).execute(&mut **conn).await?;
            }
            let mut tx = sqlx::Connection::begin_with(&mut **conn, begin).await?;
            if pg {
                sqlx::query(SEGMENT_LOCK).bind(&plan.name).execute(&mut *tx).await?;
            }
            sqlx::query(DIFF_JOINED).bind(&plan.name).execute(&mut *tx).await?;
            sqlx::query(DIFF_LEFT).bind(&plan.name).execute(&mut *tx).await?;
            if analyze {
                sqlx::query(DIFF_ANALYZE).execute(&mut *tx).await?;
            }
            let joined = sqlx::query(record_joined).bind(run_id).bind(&plan.name).bind(at)
                .execute(&mut *tx).await?.rows_affected() as i64;
            let left = sqlx::query(RECORD_LEFT).bind(run_id).bind(&plan.name).bind(at)
                .execute(&mut *tx).await?.rows_affected() as i64;
            sqlx::query(DELETE_LEFT).bind(&plan.name).execute(&mut *tx).await?;
            sqlx::query(insert_joined).bind(&plan.name).bind(at).execute(&mut *tx).await?;
            let size: i64 = sqlx::query_scalar(COUNT_MEMBERS).bind(&plan.name).fetch_one(&mut *tx).await?;
            sqlx::query(UPSERT_SEGMENT)
                .bind(&plan.name).bind(&plan.description).bind(&plan.source).bind(&compiled_sql)
                .bind(size).bind(run_id).bind(joined).bind(left).bind(at).bind(dropped)
                .execute(&mut *tx).await?;
            sqlx::query(RECORD_SIZE).bind(&plan.name).bind(run_id).bind(at).bind(size)
                .execute(&mut *tx).await?;
            tx.commit().await?;
            for sql in std::iter::once(clear).chain(clear_more.iter().copied()) {
                sqlx::query(sql).execute(&mut **conn).await?;
            }
            (joined, left, size, dropped)
        });
        if dropped > 0 {
            tracing::warn!(
                segment = %plan.name,
                dropped,
                "the segment's SQL returned ids that are not customers; they were left out"
            );
        }
        Ok(RecomputeOutcome {
            segment: plan.name.clone(),
            size,
            joined,
            left,
            dropped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_outside_strings() {
        let cases = [
            ("a = ? AND b = ?", "a = $1 AND b = $2"),
            ("x = '?' AND y = ?", "x = '?' AND y = $1"),
            ("no params", "no params"),
        ];
        for (input, want) in cases {
            assert_eq!(numbered_placeholders(input), want);
        }
    }

    #[test]
    fn wraps_excludes_with_following_params() {
        let sql = with_excludes("SELECT 1 AS customer_id", &["a".into(), "b".into()], 3);
        assert!(sql.contains("x0.segment = $3"));
        assert!(sql.contains("AND NOT EXISTS"));
        assert!(sql.contains("x1.segment = $4"));
    }
}
