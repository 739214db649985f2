//! Fast bulk upserts of the shop's input tables, used by `import`, `demo` and the benchmarks.
//!
//! Row-at-a-time inserts cap out at a few thousand rows a second; a million-customer demo needs far more.
//! Rows are therefore written as multi-row `INSERT ... ON CONFLICT (key) DO UPDATE SET ...` statements
//! (one statement text per backend thanks to `$N` placeholders, chunked to stay well under both backends'
//! bind-parameter limits), with values bound per backend: timestamps as unix seconds on SQLite and
//! `timestamptz` on Postgres, dates as `YYYY-MM-DD` text or `date`, JSON as text or `jsonb`.
//!
//! Upserting by primary key makes every load idempotent: importing the same file twice leaves the same
//! rows. Events without an id get a stable one derived from their content ([`stable_event_id`]) for the
//! same reason.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use campaignd_core::identifiers::suppression_key;
use campaignd_core::model::{Customer, Event, Order, Suppression};
use campaignd_core::progress::Progress;
use campaignd_core::synth::{ShopChunk, ShopGenerator};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Postgres, Sqlite, Transaction};

use crate::bind::SQLITE_BEGIN_WRITE;
use crate::{Pool, Store, StoreError};

/// Rows per statement on SQLite. Measured (100k customers, 1M rows): sqlx-sqlite gets slower per row as
/// statements grow (1000 rows: 14k rows/s; 100: 90k; 10-25: 120-150k), so statements stay small; there
/// is no network round trip to amortise.
const SQLITE_ROWS_PER_STATEMENT: usize = 16;
/// Rows per statement on Postgres, where each statement is a round trip: 1000 rows measured fastest
/// (≈66k rows/s against 52-55k at 100-300).
const POSTGRES_ROWS_PER_STATEMENT: usize = 1000;
/// Bind parameters per statement at most: under SQLite's default limit (32766) and Postgres' (65535).
const MAX_PARAMS_PER_STATEMENT: usize = 32_000;
/// Customers per generated chunk (≈20k rows with their orders and events), each written in one transaction.
const SYNTH_CHUNK_CUSTOMERS: usize = 2000;

/// A write transaction on either backend, so callers can group several upserts (and their own checks)
/// into one atomic unit — `import --strict` writes a whole file in one.
pub enum LoadTx<'c> {
    /// A transaction on a SQLite connection.
    Sqlite(Transaction<'c, Sqlite>),
    /// A transaction on a Postgres connection.
    Postgres(Transaction<'c, Postgres>),
}

/// What [`Store::load_synthetic`] wrote and how fast, for `demo` output and benchmark reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Customers written.
    pub customers: u64,
    /// Orders written.
    pub orders: u64,
    /// Events written.
    pub events: u64,
    /// Wall-clock time of the whole load, generation included.
    pub elapsed: Duration,
}

impl LoadReport {
    /// All rows written, every table together.
    pub fn rows(&self) -> u64 {
        self.customers + self.orders + self.events
    }

    /// Rows written per second of wall-clock time: the figure benchmarks compare.
    pub fn rows_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.rows() as f64 / secs
        } else {
            0.0
        }
    }
}

/// The id an event gets when its source has none: hex SHA-256 of `customer_id|kind|occurred_at|properties`
/// (time in RFC 3339 UTC, properties as compact JSON with sorted keys), so the same event imported twice
/// is one row, and the same event from a CSV and a JSON Lines file is the same row.
pub fn stable_event_id(event: &Event) -> String {
    let mut h = Sha256::new();
    h.update(event.customer_id.as_bytes());
    h.update(b"|");
    h.update(event.kind.as_bytes());
    h.update(b"|");
    h.update(
        event
            .occurred_at
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
            .as_bytes(),
    );
    h.update(b"|");
    if let Some(p) = &event.properties {
        let mut canonical = String::new();
        canonical_json(p, &mut canonical);
        h.update(canonical.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Compact JSON with object keys sorted at every level, so the derived id does not depend on the key order
/// of the source (nor on whether serde_json preserves insertion order in this build).
fn canonical_json(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(v, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// One bound value, borrowed from the caller's rows where possible; converted per backend at bind time.
enum Val<'a> {
    Text(Option<Cow<'a, str>>),
    Bool(bool),
    Float(f64),
    Ts(Option<DateTime<Utc>>),
    Date(Option<NaiveDate>),
    Json(Option<&'a serde_json::Value>),
}

fn text(v: &Option<String>) -> Val<'_> {
    Val::Text(v.as_deref().map(Cow::Borrowed))
}

fn req(v: &str) -> Val<'_> {
    Val::Text(Some(Cow::Borrowed(v)))
}

/// One input table: its columns in bind order, conflict key and what an upsert overwrites.
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    key: &'static str,
    set: &'static str,
}

const CUSTOMERS: Table = Table {
    name: "customers",
    columns: &[
        "id",
        "email",
        "phone",
        "first_name",
        "last_name",
        "country",
        "city",
        "region",
        "postal_code",
        "birth_date",
        "gender",
        "created_at",
        "consent_ads",
        "consent_email",
    ],
    key: "id",
    set: "email = excluded.email, phone = excluded.phone, first_name = excluded.first_name, \
          last_name = excluded.last_name, country = excluded.country, city = excluded.city, \
          region = excluded.region, postal_code = excluded.postal_code, birth_date = excluded.birth_date, \
          gender = excluded.gender,           created_at = excluded.created_at, consent_ads = excluded.consent_ads, \
          consent_email = excluded.consent_email",
};

const ORDERS: Table = Table {
    name: "orders",
    columns: &[
        "id",
        "customer_id",
        "placed_at",
        "total",
        "currency",
        "discount_code",
        "free_shipping",
    ],
    key: "id",
    set: "customer_id = excluded.customer_id, placed_at = excluded.placed_at, total = excluded.total, \
          currency = excluded.currency, discount_code = excluded.discount_code, \
          free_shipping = excluded.free_shipping",
};

const EVENTS: Table = Table {
    name: "events",
    columns: &["id", "customer_id", "kind", "occurred_at", "properties"],
    key: "id",
    set: "customer_id = excluded.customer_id, kind = excluded.kind, occurred_at = excluded.occurred_at, \
          properties = excluded.properties",
};

/// A suppression keeps the earliest time the person opted out, so re-importing a list without times (which
/// default to "now") does not make old opt-outs look new.
const SUPPRESSIONS: Table = Table {
    name: "suppressions",
    columns: &["identifier_kind", "identifier", "reason", "created_at"],
    key: "identifier_kind, identifier",
    set: "reason = excluded.reason, created_at = CASE WHEN excluded.created_at < suppressions.created_at \
          THEN excluded.created_at ELSE suppressions.created_at END",
};

/// The upsert statement for `rows` rows of `table`.
fn upsert_sql(table: &Table, rows: usize) -> String {
    let cols = table.columns.len();
    let mut sql = String::with_capacity(64 + rows * cols * 6 + table.set.len());
    sql.push_str("INSERT INTO ");
    sql.push_str(table.name);
    sql.push_str(" (");
    sql.push_str(&table.columns.join(", "));
    sql.push_str(") VALUES ");
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (");
    sql.push_str(table.key);
    sql.push_str(") DO UPDATE SET ");
    sql.push_str(table.set);
    sql
}

/// Indices of the rows to write: the last occurrence of every key, in input order. A multi-row upsert may
/// not touch one key twice on Postgres, and "last one wins" is what a sequence of single upserts would do.
fn last_of_each<K: Hash + Eq>(keys: impl Iterator<Item = K>) -> Vec<usize> {
    let mut last: HashMap<K, usize> = HashMap::new();
    let mut n = 0;
    for (i, k) in keys.enumerate() {
        last.insert(k, i);
        n = i + 1;
    }
    if last.len() == n {
        return (0..n).collect();
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    keep
}

impl<'c> LoadTx<'c> {
    /// Makes every upsert of this transaction permanent.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            LoadTx::Sqlite(tx) => tx.commit().await?,
            LoadTx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Undoes every upsert of this transaction (what `import --strict` does when a row is bad).
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self {
            LoadTx::Sqlite(tx) => tx.rollback().await?,
            LoadTx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }

    /// Upserts customers by id; returns how many distinct customers were written.
    pub async fn upsert_customers(&mut self, rows: &[Customer]) -> Result<u64, StoreError> {
        let keep = last_of_each(rows.iter().map(|c| c.id.as_str()));
        let mut vals = Vec::with_capacity(keep.len() * CUSTOMERS.columns.len());
        for &i in &keep {
            let c = &rows[i];
            vals.extend([
                req(&c.id),
                text(&c.email),
                text(&c.phone),
                text(&c.first_name),
                text(&c.last_name),
                text(&c.country),
                text(&c.city),
                text(&c.region),
                text(&c.postal_code),
                Val::Date(c.birth_date),
                text(&c.gender),
                Val::Ts(c.created_at),
                Val::Bool(c.consent_ads),
                Val::Bool(c.consent_email),
            ]);
        }
        self.execute(&CUSTOMERS, &vals).await?;
        Ok(keep.len() as u64)
    }

    /// Upserts orders by id; returns how many distinct orders were written. Their customers must exist.
    pub async fn upsert_orders(&mut self, rows: &[Order]) -> Result<u64, StoreError> {
        let keep = last_of_each(rows.iter().map(|o| o.id.as_str()));
        let mut vals = Vec::with_capacity(keep.len() * ORDERS.columns.len());
        for &i in &keep {
            let o = &rows[i];
            vals.extend([
                req(&o.id),
                req(&o.customer_id),
                Val::Ts(Some(o.placed_at)),
                Val::Float(o.total),
                text(&o.currency),
                text(&o.discount_code),
                Val::Bool(o.free_shipping),
            ]);
        }
        self.execute(&ORDERS, &vals).await?;
        Ok(keep.len() as u64)
    }

    /// Upserts events by id, deriving [`stable_event_id`] for those without one; returns how many distinct
    /// events were written. Their customers must exist.
    pub async fn upsert_events(&mut self, rows: &[Event]) -> Result<u64, StoreError> {
        let ids: Vec<Cow<'_, str>> = rows
            .iter()
            .map(|e| match &e.id {
                Some(id) => Cow::Borrowed(id.as_str()),
                None => Cow::Owned(stable_event_id(e)),
            })
            .collect();
        let keep = last_of_each(ids.iter());
        let mut vals = Vec::with_capacity(keep.len() * EVENTS.columns.len());
        for &i in &keep {
            let e = &rows[i];
            vals.extend([
                Val::Text(Some(Cow::Borrowed(ids[i].as_ref()))),
                req(&e.customer_id),
                req(&e.kind),
                Val::Ts(Some(e.occurred_at)),
                Val::Json(e.properties.as_ref()),
            ]);
        }
        self.execute(&EVENTS, &vals).await?;
        Ok(keep.len() as u64)
    }

    /// Upserts suppressions by `(identifier_kind, identifier)`; a missing `created_at` means now. Returns
    /// how many distinct suppressions were written.
    pub async fn upsert_suppressions(&mut self, rows: &[Suppression]) -> Result<u64, StoreError> {
        let now = Utc::now();
        // Stored normalised so the sync matches customers with index lookups.
        let keys: Vec<(String, String)> = rows
            .iter()
            .map(|s| suppression_key(&s.identifier_kind, &s.identifier))
            .collect();
        let keep = last_of_each(keys.iter().map(|(k, i)| (k.as_str(), i.as_str())));
        let mut vals = Vec::with_capacity(keep.len() * SUPPRESSIONS.columns.len());
        for &i in &keep {
            let s = &rows[i];
            vals.extend([
                req(&keys[i].0),
                req(&keys[i].1),
                text(&s.reason),
                Val::Ts(Some(s.created_at.unwrap_or(now))),
            ]);
        }
        self.execute(&SUPPRESSIONS, &vals).await?;
        Ok(keep.len() as u64)
    }

    /// Writes one generated chunk: customers first, so orders and events find them.
    async fn write_chunk(&mut self, chunk: &ShopChunk) -> Result<(), StoreError> {
        self.upsert_customers(&chunk.customers).await?;
        self.upsert_orders(&chunk.orders).await?;
        self.upsert_events(&chunk.events).await?;
        Ok(())
    }

    /// Runs the upsert of `vals` (whole rows of `table`, flattened) in statements of bounded size. Full
    /// statements share one text, so each backend prepares it once and reuses it; the shorter tail is not
    /// kept in the statement cache.
    async fn execute(&mut self, table: &Table, vals: &[Val<'_>]) -> Result<(), StoreError> {
        let cols = table.columns.len();
        let max_rows = match self {
            LoadTx::Sqlite(_) => SQLITE_ROWS_PER_STATEMENT,
            LoadTx::Postgres(_) => POSTGRES_ROWS_PER_STATEMENT,
        };
        let rows_per_stmt = max_rows.min(MAX_PARAMS_PER_STATEMENT / cols).max(1);
        let mut full_sql: Option<String> = None;
        for chunk in vals.chunks(rows_per_stmt * cols) {
            let rows = chunk.len() / cols;
            let full = rows == rows_per_stmt;
            let tail_sql;
            let sql: &str = if full {
                full_sql.get_or_insert_with(|| upsert_sql(table, rows))
            } else {
                tail_sql = upsert_sql(table, rows);
                &tail_sql
            };
            match self {
                LoadTx::Sqlite(tx) => {
                    let mut q = sqlx::query(sql).persistent(full);
                    for v in chunk {
                        q = match v {
                            Val::Text(s) => q.bind(s.as_deref()),
                            Val::Bool(b) => q.bind(*b),
                            Val::Float(f) => q.bind(*f),
                            Val::Ts(t) => q.bind(t.map(|t| t.timestamp())),
                            Val::Date(d) => q.bind(d.map(|d| d.format("%Y-%m-%d").to_string())),
                            Val::Json(j) => q.bind(j.map(|j| j.to_string())),
                        };
                    }
                    q.execute(&mut **tx).await?;
                }
                LoadTx::Postgres(tx) => {
                    let mut q = sqlx::query(sql).persistent(full);
                    for v in chunk {
                        q = match v {
                            Val::Text(s) => q.bind(s.as_deref()),
                            Val::Bool(b) => q.bind(*b),
                            Val::Float(f) => q.bind(*f),
                            Val::Ts(t) => q.bind(*t),
                            Val::Date(d) => q.bind(*d),
                            Val::Json(j) => q.bind(j.map(sqlx::types::Json)),
                        };
                    }
                    q.execute(&mut **tx).await?;
                }
            }
        }
        Ok(())
    }
}

impl Store {
    /// Starts a write transaction for bulk upserts (see [`LoadTx`]).
    pub async fn begin_load(&self) -> Result<LoadTx<'static>, StoreError> {
        Ok(match self.pool() {
            Pool::Sqlite(p) => LoadTx::Sqlite(p.begin_with(SQLITE_BEGIN_WRITE).await?),
            Pool::Postgres(p) => LoadTx::Postgres(p.begin().await?),
        })
    }

    /// Upserts customers by id in a transaction of their own; returns how many were written.
    pub async fn upsert_customers(&self, rows: &[Customer]) -> Result<u64, StoreError> {
        let mut tx = self.begin_load().await?;
        let n = tx.upsert_customers(rows).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Upserts orders by id in a transaction of their own; returns how many were written.
    pub async fn upsert_orders(&self, rows: &[Order]) -> Result<u64, StoreError> {
        let mut tx = self.begin_load().await?;
        let n = tx.upsert_orders(rows).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Upserts events by (possibly derived) id in a transaction of their own; returns how many were written.
    pub async fn upsert_events(&self, rows: &[Event]) -> Result<u64, StoreError> {
        let mut tx = self.begin_load().await?;
        let n = tx.upsert_events(rows).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Upserts suppressions in a transaction of their own; returns how many were written.
    pub async fn upsert_suppressions(&self, rows: &[Suppression]) -> Result<u64, StoreError> {
        let mut tx = self.begin_load().await?;
        let n = tx.upsert_suppressions(rows).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Fills the store with a synthetic shop of `customers` customers (see `campaignd_core::synth`),
    /// reproducible from `seed`, history ending at `as_of`. Used by `demo` and the benchmarks.
    ///
    /// Generation runs on a blocking thread while the previous chunk is being written, each chunk in one
    /// transaction, so memory stays flat at any size. On SQLite the loading connection runs with
    /// `synchronous = OFF` (restored afterwards); on Postgres with `synchronous_commit = off`: a crash
    /// mid-load can lose the last chunks but never corrupts the database, and a demo load is re-runnable.
    pub async fn load_synthetic(
        &self,
        customers: u64,
        seed: u64,
        as_of: DateTime<Utc>,
    ) -> Result<LoadReport, StoreError> {
        self.load_synthetic_with_progress(customers, seed, as_of, &Progress::none())
            .await
    }

    /// [`Store::load_synthetic`], reporting the customers written so far to `progress`.
    pub async fn load_synthetic_with_progress(
        &self,
        customers: u64,
        seed: u64,
        as_of: DateTime<Utc>,
        progress: &Progress,
    ) -> Result<LoadReport, StoreError> {
        progress.start("load synthetic shop", "customers", Some(customers));
        let started = Instant::now();
        let (sender, mut chunks) = tokio::sync::mpsc::channel::<ShopChunk>(2);
        let producer = tokio::task::spawn_blocking(move || {
            let mut generator = ShopGenerator::new(customers, seed, as_of);
            while let Some(chunk) = generator.next_chunk(SYNTH_CHUNK_CUSTOMERS) {
                if sender.blocking_send(chunk).is_err() {
                    break; // the writer stopped on an error; it reports it
                }
            }
        });
        let mut report = LoadReport::default();
        let written = match self.pool() {
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("PRAGMA synchronous = OFF")
                    .execute(&mut *conn)
                    .await?;
                let mut result = Ok(());
                while let Some(chunk) = chunks.recv().await {
                    result = async {
                        let mut tx = LoadTx::Sqlite(conn.begin_with(SQLITE_BEGIN_WRITE).await?);
                        tx.write_chunk(&chunk).await?;
                        tx.commit().await
                    }
                    .await;
                    if result.is_err() {
                        break;
                    }
                    progress.advance(chunk.customers.len() as u64);
                    report.add(&chunk);
                }
                let restored = sqlx::query("PRAGMA synchronous = NORMAL")
                    .execute(&mut *conn)
                    .await;
                result.and(restored.map(|_| ()).map_err(StoreError::from))
            }
            Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("SET synchronous_commit = off")
                    .execute(&mut *conn)
                    .await?;
                let mut result = Ok(());
                while let Some(chunk) = chunks.recv().await {
                    result = async {
                        let mut tx = LoadTx::Postgres(conn.begin().await?);
                        tx.write_chunk(&chunk).await?;
                        tx.commit().await
                    }
                    .await;
                    if result.is_err() {
                        break;
                    }
                    progress.advance(chunk.customers.len() as u64);
                    report.add(&chunk);
                }
                let restored = sqlx::query("RESET synchronous_commit")
                    .execute(&mut *conn)
                    .await;
                result.and(restored.map(|_| ()).map_err(StoreError::from))
            }
        };
        progress.finish();
        drop(chunks);
        if let Err(e) = producer.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        written?;
        self.checkpoint().await?;
        report.elapsed = started.elapsed();
        tracing::info!(
            customers = report.customers,
            orders = report.orders,
            events = report.events,
            rows_per_sec = report.rows_per_sec() as u64,
            "synthetic shop loaded"
        );
        Ok(report)
    }
}

impl LoadReport {
    fn add(&mut self, chunk: &ShopChunk) {
        self.customers += chunk.customers.len() as u64;
        self.orders += chunk.orders.len() as u64;
        self.events += chunk.events.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_sql_numbers_placeholders_across_rows() {
        let sql = upsert_sql(&SUPPRESSIONS, 2);
        assert!(sql.starts_with(
            "INSERT INTO suppressions (identifier_kind, identifier, reason, created_at) VALUES \
             ($1, $2, $3, $4), ($5, $6, $7, $8) ON CONFLICT (identifier_kind, identifier) DO UPDATE SET"
        ));
    }

    #[test]
    fn last_of_each_keeps_last_occurrence_in_order() {
        assert_eq!(last_of_each(["a", "b", "c"].into_iter()), vec![0, 1, 2]);
        assert_eq!(
            last_of_each(["a", "b", "a", "c", "b"].into_iter()),
            vec![2, 3, 4]
        );
    }

    #[test]
    fn stable_event_id_ignores_time_notation_and_key_order() {
        let at = DateTime::parse_from_rfc3339("2025-01-02T03:04:05+01:00")
            .unwrap()
            .with_timezone(&Utc);
        let e1 = Event {
            id: None,
            customer_id: "c1".into(),
            kind: "visit".into(),
            occurred_at: at,
            properties: Some(serde_json::from_str(r#"{"b":1,"a":"x"}"#).unwrap()),
        };
        let mut e2 = e1.clone();
        e2.properties = Some(serde_json::from_str(r#"{"a":"x","b":1}"#).unwrap());
        assert_eq!(stable_event_id(&e1), stable_event_id(&e2));
        assert_eq!(stable_event_id(&e1).len(), 64);
        e2.kind = "product_view".into();
        assert_ne!(stable_event_id(&e1), stable_event_id(&e2));
    }
}
