//! `campaignd import`: loads the shop's customers, orders, events or suppressions from CSV or JSON Lines.
//!
//! Shops export from everywhere, so files are messy: the importer takes what is good, and says exactly
//! what is not, as `FILE:LINE: reason` (physical line numbers; a CSV header is line 1), the way compilers
//! do, so a person can open the file at the spot. With `strict`, one bad row means nothing is written at
//! all (one transaction for the whole file, rolled back), and every error is still reported.
//!
//! The file is streamed: a blocking reader thread parses it into batches of [`BATCH_ROWS`] while the
//! previous batch is written, so memory stays flat whatever the file size. Each batch checks its orders'
//! and events' customers with one set-based query (a row naming no customer is reported by line, like
//! any bad row) and is upserted by id (see [`crate::load`]: one prepared statement stepped per row on
//! the connection's own thread on SQLite, `COPY` into a staging table and one set-based upsert on
//! Postgres), so re-importing the same file is idempotent.
//!
//! Transactions: on SQLite each batch commits on its own, so other writers (a sync's ledger) wait at
//! most one batch for their turn. On Postgres an orders or events file is one bulk transaction
//! ([`Store::begin_bulk_load`]): the foreign keys to `customers` are set aside and validated once, in
//! one pass, at commit, instead of a lookup and a row lock per written row, which was more than half of
//! the load's time. The trade-off a shop accepts with it: while such an import runs, other sessions'
//! reads of `customers`, `orders` and `events` wait for it (an `ACCESS EXCLUSIVE` lock), and a
//! database failure midway writes nothing of the file (re-running it is safe). Without `strict`,
//! customers and suppressions commit per batch on both backends.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::str::FromStr;

use campaignd_core::model::{Contact, Customer, Event, Order, Suppression};
use campaignd_core::money;
use campaignd_core::progress::Progress;
use chrono::{DateTime, NaiveDate, Utc};
use thiserror::Error;
use tokio::sync::mpsc;

use crate::load::{self, LoadTx};
use crate::{Store, StoreError};

/// Good rows written per transaction (and parsed ahead by the reader).
pub const BATCH_ROWS: usize = 5000;

/// Which input table a file fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// `customers` (DESIGN §4).
    Customers,
    /// `orders`; each order's customer must exist.
    Orders,
    /// `events`; each event's customer must exist; the id is optional.
    Events,
    /// `suppressions`: opted-out or erased identifiers.
    Suppressions,
}

impl ImportKind {
    /// The columns (CSV header names, JSON keys) a file of this kind may have, in table order: the
    /// columns of the table it loads into, so the importer and the loader name one list.
    pub fn columns(self) -> &'static [&'static str] {
        load::table_columns(self)
    }

    /// The columns a CSV header must name: without them no row could be valid.
    pub fn required_columns(self) -> &'static [&'static str] {
        match self {
            ImportKind::Customers => &["id"],
            ImportKind::Orders => &["id", "customer_id", "placed_at", "total"],
            ImportKind::Events => &["customer_id", "kind", "occurred_at"],
            ImportKind::Suppressions => &["identifier_kind", "identifier"],
        }
    }

    /// The kind's name as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Customers => "customers",
            ImportKind::Orders => "orders",
            ImportKind::Events => "events",
            ImportKind::Suppressions => "suppressions",
        }
    }
}

impl fmt::Display for ImportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An import kind the CLI does not know.
#[derive(Debug, Clone, Error)]
#[error("unknown import kind {0:?}: expected customers, orders, events or suppressions")]
pub struct UnknownImportKind(pub String);

impl FromStr for ImportKind {
    type Err = UnknownImportKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "customers" => Ok(ImportKind::Customers),
            "orders" => Ok(ImportKind::Orders),
            "events" => Ok(ImportKind::Events),
            "suppressions" => Ok(ImportKind::Suppressions),
            _ => Err(UnknownImportKind(s.to_string())),
        }
    }
}

/// How to treat bad rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Write nothing at all if any row is bad (`--strict`); otherwise skip bad rows and import the rest.
    pub strict: bool,
}

/// One rejected row: where it is and why, displayed as `FILE:LINE: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The file as it was named to the importer.
    pub file: String,
    /// Physical line of the file where the row starts (1-based; a CSV header is line 1).
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// The outcome of one import: counts of good and bad rows and every bad row's error, in line order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// The file as it was named to the importer.
    pub file: String,
    /// Rows written (0 when a strict import was rolled back).
    pub imported: u64,
    /// Rows rejected; one [`RowError`] each.
    pub rejected: u64,
    /// Why each rejected row was rejected, in line order.
    pub errors: Vec<RowError>,
    /// True when `strict` was set and a bad row made the import write nothing.
    pub rolled_back: bool,
}

impl ImportReport {
    /// Whether every row of the file was good.
    pub fn is_clean(&self) -> bool {
        self.rejected == 0
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.errors {
            writeln!(f, "{e}")?;
        }
        write!(
            f,
            "{}: {} imported, {} rejected",
            self.file, self.imported, self.rejected
        )?;
        if self.rolled_back {
            write!(f, " (strict: nothing written)")?;
        }
        Ok(())
    }
}

impl Store {
    /// Imports a CSV (`.csv`) or JSON Lines (`.jsonl`, `.ndjson`) file into the `kind` table, upserting by
    /// id. Bad rows are reported in the returned [`ImportReport`]; with `opts.strict` any bad row means
    /// nothing is written. Errors that concern the whole file (unreadable, unsupported extension, unknown
    /// or missing CSV columns) are returned as `Err` before anything is written.
    pub async fn import(
        &self,
        kind: ImportKind,
        path: &Path,
        opts: ImportOptions,
    ) -> Result<ImportReport, StoreError> {
        self.import_with_progress(kind, path, opts, &Progress::none())
            .await
    }

    /// [`Store::import`], reporting the bytes of the file read and written so far to `progress`.
    pub async fn import_with_progress(
        &self,
        kind: ImportKind,
        path: &Path,
        opts: ImportOptions,
        progress: &Progress,
    ) -> Result<ImportReport, StoreError> {
        let file = path.display().to_string();
        let format = match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Format::Csv,
            Some("jsonl") | Some("ndjson") => Format::Jsonl,
            _ => {
                return Err(StoreError::Io(format!(
                    "{file}: unsupported file type (expected .csv, .jsonl or .ndjson)"
                )))
            }
        };
        let handle =
            File::open(path).map_err(|e| StoreError::Io(format!("cannot read {file}: {e}")))?;
        let size = handle.metadata().ok().map(|m| m.len());

        let (sender, mut batches) = mpsc::channel::<Result<Batch, StoreError>>(2);
        let label = file.clone();
        let reader = tokio::task::spawn_blocking(move || {
            let mut out = BatchSender::new(kind, sender);
            let result = match format {
                Format::Csv => read_csv(kind, &label, handle, &mut out),
                Format::Jsonl => read_jsonl(kind, &label, handle, &mut out),
            };
            match result {
                Ok(()) => out.finish(),
                Err(e) => out.fail(e),
            }
        });

        let mut report = ImportReport {
            file: file.clone(),
            ..ImportReport::default()
        };
        let mut errors: Vec<(u64, String)> = Vec::new();
        // Orders and events on Postgres go through one bulk transaction for the whole file, which checks
        // their customer keys once at the end (see `Store::begin_bulk_load`); SQLite commits each batch,
        // so other writers wait at most one batch for their turn. `--strict` is one transaction anyway.
        let bulk = matches!(kind, ImportKind::Orders | ImportKind::Events)
            && matches!(self.pool(), crate::Pool::Postgres(_));
        let one_transaction = opts.strict || bulk;
        let mut whole_file: Option<LoadTx<'static>> = None;
        progress.start(&format!("import {kind} {file}"), "bytes", size);
        let mut done_bytes = 0;
        let result: Result<(), StoreError> = async {
            while let Some(batch) = batches.recv().await {
                let batch = batch?;
                progress.advance(batch.read_to.saturating_sub(done_bytes));
                done_bytes = done_bytes.max(batch.read_to);
                errors.extend(batch.errors);
                let mut tx = match whole_file.take() {
                    Some(tx) => tx,
                    None if bulk => self.begin_bulk_load().await?,
                    None => self.begin_load().await?,
                };
                let rows = check_customers(&mut tx, batch.rows, &mut errors).await?;
                // Under strict, once a row is bad the rest is only validated: it would be rolled back.
                if !opts.strict || errors.is_empty() {
                    report.imported += rows.upsert(&mut tx).await?;
                }
                if one_transaction {
                    whole_file = Some(tx);
                } else {
                    tx.commit().await?;
                }
            }
            Ok(())
        }
        .await;
        progress.finish();
        drop(batches);
        if let Err(e) = reader.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        result?;

        report.rejected = errors.len() as u64;
        if let Some(tx) = whole_file {
            if !opts.strict || errors.is_empty() {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
                report.imported = 0;
                report.rolled_back = true;
            }
        }
        errors.sort_by_key(|(line, _)| *line);
        report.errors = errors
            .into_iter()
            .map(|(line, reason)| RowError {
                file: file.clone(),
                line,
                reason,
            })
            .collect();
        Ok(report)
    }
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Csv,
    Jsonl,
}

/// Parsed rows of one kind with the line each came from.
enum Rows {
    Customers(Vec<(u64, Customer)>),
    Orders(Vec<(u64, Order)>),
    Events(Vec<(u64, Event)>),
    Suppressions(Vec<(u64, Suppression)>),
}

impl Rows {
    fn new(kind: ImportKind) -> Rows {
        match kind {
            ImportKind::Customers => Rows::Customers(Vec::new()),
            ImportKind::Orders => Rows::Orders(Vec::new()),
            ImportKind::Events => Rows::Events(Vec::new()),
            ImportKind::Suppressions => Rows::Suppressions(Vec::new()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Rows::Customers(v) => v.len(),
            Rows::Orders(v) => v.len(),
            Rows::Events(v) => v.len(),
            Rows::Suppressions(v) => v.len(),
        }
    }

    /// Parses one row's cells into this batch.
    fn push(&mut self, line: u64, cells: Cells) -> Result<(), String> {
        match self {
            Rows::Customers(v) => v.push((line, parse_customer(cells)?)),
            Rows::Orders(v) => v.push((line, parse_order(cells)?)),
            Rows::Events(v) => v.push((line, parse_event(cells)?)),
            Rows::Suppressions(v) => v.push((line, parse_suppression(cells)?)),
        }
        Ok(())
    }

    /// Upserts the rows; returns how many rows (lines) were imported.
    async fn upsert(self, tx: &mut LoadTx<'_>) -> Result<u64, StoreError> {
        fn strip<T>(v: Vec<(u64, T)>) -> Vec<T> {
            v.into_iter().map(|(_, r)| r).collect()
        }
        let n = self.len() as u64;
        match self {
            Rows::Customers(v) => tx.upsert_customers(&strip(v)).await?,
            Rows::Orders(v) => tx.upsert_orders(&strip(v)).await?,
            Rows::Events(v) => tx.upsert_events(&strip(v)).await?,
            Rows::Suppressions(v) => tx.upsert_suppressions(&strip(v)).await?,
        };
        Ok(n)
    }
}

/// What the reader hands the writer: good rows and the lines it rejected.
struct Batch {
    rows: Rows,
    errors: Vec<(u64, String)>,
    /// Bytes of the file read when the batch was shipped (for progress).
    read_to: u64,
}

/// Accumulates parsed rows on the reader thread and ships them in batches.
struct BatchSender {
    kind: ImportKind,
    current: Batch,
    sender: mpsc::Sender<Result<Batch, StoreError>>,
    closed: bool,
    /// Bytes of the file read so far, as the reader last said.
    read_to: u64,
}

impl BatchSender {
    fn new(kind: ImportKind, sender: mpsc::Sender<Result<Batch, StoreError>>) -> BatchSender {
        BatchSender {
            kind,
            current: Batch {
                rows: Rows::new(kind),
                errors: Vec::new(),
                read_to: 0,
            },
            sender,
            closed: false,
            read_to: 0,
        }
    }

    /// Notes how far into the file the reader is.
    fn read_to(&mut self, bytes: u64) {
        self.read_to = bytes;
    }

    /// Takes one row's cells (or the reason it could not even be split into cells).
    fn row(&mut self, line: u64, cells: Result<Cells, String>) {
        if let Err(reason) = cells.and_then(|c| self.current.rows.push(line, c)) {
            self.current.errors.push((line, reason));
        }
        if self.current.rows.len() + self.current.errors.len() >= BATCH_ROWS {
            self.flush();
        }
    }

    /// Whether the writer has stopped listening (it failed); reading on would be wasted.
    fn closed(&self) -> bool {
        self.closed
    }

    fn flush(&mut self) {
        let mut batch = std::mem::replace(
            &mut self.current,
            Batch {
                rows: Rows::new(self.kind),
                errors: Vec::new(),
                read_to: 0,
            },
        );
        batch.read_to = self.read_to;
        if self.sender.blocking_send(Ok(batch)).is_err() {
            self.closed = true;
        }
    }

    fn finish(mut self) {
        if self.current.rows.len() + self.current.errors.len() > 0 {
            self.flush();
        }
    }

    fn fail(self, error: StoreError) {
        // If the writer is gone it has an error of its own to report.
        let _ = self.sender.blocking_send(Err(error));
    }
}

/// Drops orders and events whose customer the store does not know (as seen by `tx`, so under strict
/// this includes rows written earlier in the same import), recording `unknown customer_id` for each.
/// Set-based: one query for the batch's distinct ids, not one per row.
async fn check_customers(
    tx: &mut LoadTx<'_>,
    rows: Rows,
    errors: &mut Vec<(u64, String)>,
) -> Result<Rows, StoreError> {
    fn keep<T>(
        rows: Vec<(u64, T)>,
        customer: impl Fn(&T) -> &str,
        known: &HashSet<String>,
        errors: &mut Vec<(u64, String)>,
    ) -> Vec<(u64, T)> {
        rows.into_iter()
            .filter(|(line, r)| {
                let id = customer(r);
                let ok = known.contains(id);
                if !ok {
                    errors.push((*line, format!("unknown customer_id {id:?}")));
                }
                ok
            })
            .collect()
    }
    let wanted: BTreeSet<&str> = match &rows {
        Rows::Orders(v) => v.iter().map(|(_, o)| o.customer_id.as_str()).collect(),
        Rows::Events(v) => v.iter().map(|(_, e)| e.customer_id.as_str()).collect(),
        Rows::Customers(_) | Rows::Suppressions(_) => return Ok(rows),
    };
    let known = existing_customers(tx, &wanted).await?;
    Ok(match rows {
        Rows::Orders(v) => Rows::Orders(keep(v, |o| &o.customer_id, &known, errors)),
        Rows::Events(v) => Rows::Events(keep(v, |e| &e.customer_id, &known, errors)),
        other => other,
    })
}

/// Which of `ids` are customers in the store (as seen by `tx`): one query per batch, the ids bound as
/// one value (a JSON array unpacked by `json_each` on SQLite, a `text[]` on Postgres).
async fn existing_customers(
    tx: &mut LoadTx<'_>,
    ids: &BTreeSet<&str>,
) -> Result<HashSet<String>, StoreError> {
    let ids: Vec<&str> = ids.iter().copied().collect();
    let found: Vec<String> = match tx {
        LoadTx::Sqlite(tx) => {
            let json = serde_json::to_string(&ids)
                .map_err(|e| StoreError::Unwritable(format!("customer ids: {e}")))?;
            sqlx::query_scalar(
                "SELECT id FROM customers WHERE id IN (SELECT j.value FROM json_each($1) AS j)",
            )
            .bind(json)
            .fetch_all(&mut **tx)
            .await?
        }
        LoadTx::Postgres(tx, _) => {
            sqlx::query_scalar("SELECT id FROM customers WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut **tx)
                .await?
        }
    };
    Ok(found.into_iter().collect())
}

// ---------------------------------------------------------------------------------------------------
// Reading: both formats produce `Cells`, one slot per column of the kind, so the row parsers are shared
// and a CSV and a JSON Lines file with the same data give the same rows.

/// One cell: text (CSV, JSON scalars) or a JSON value (a JSON Lines `properties` object).
enum Cell {
    Text(String),
    Json(serde_json::Value),
}

/// A row's cells, `(column, cell)`; an absent column or empty cell is `None`.
struct Cells {
    columns: &'static [&'static str],
    cells: Vec<Option<Cell>>,
}

impl Cells {
    fn new(kind: ImportKind) -> Cells {
        let columns = kind.columns();
        Cells {
            columns,
            cells: columns.iter().map(|_| None).collect(),
        }
    }

    fn take(&mut self, column: &str) -> Option<Cell> {
        let i = self.columns.iter().position(|c| *c == column)?;
        self.cells[i].take()
    }

    /// The column as text, `None` if empty.
    fn text(&mut self, column: &str) -> Result<Option<String>, String> {
        match self.take(column) {
            None => Ok(None),
            Some(Cell::Text(s)) if s.contains('\0') => {
                Err(format!("{column}: contains a NUL character"))
            }
            Some(Cell::Text(s)) => Ok(Some(s)),
            Some(Cell::Json(v)) => Ok(Some(v.to_string())),
        }
    }

    /// The column as text; a row without it is rejected as `missing COLUMN`.
    fn required(&mut self, column: &str) -> Result<String, String> {
        self.text(column)?
            .ok_or_else(|| format!("missing {column}"))
    }

    fn time(&mut self, column: &str) -> Result<Option<DateTime<Utc>>, String> {
        self.text(column)?
            .map(|s| parse_time(column, &s))
            .transpose()
    }

    fn required_time(&mut self, column: &str) -> Result<DateTime<Utc>, String> {
        parse_time(column, &self.required(column)?)
    }

    fn boolean(&mut self, column: &str) -> Result<bool, String> {
        match self.text(column)? {
            None => Ok(false),
            Some(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(format!(
                    "{column}: not a boolean (true/false, 1/0, yes/no): {s:?}"
                )),
            },
        }
    }
}

fn parse_time(column: &str, s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{column}: not an RFC 3339 timestamp: {s:?}"))
}

fn parse_customer(mut c: Cells) -> Result<Customer, String> {
    let id = c.required("id")?;
    let birth_date = match c.text("birth_date")? {
        None => None,
        Some(s) => Some(
            NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .or_else(|_| DateTime::parse_from_rfc3339(&s).map(|t| t.date_naive()))
                .map_err(|_| format!("birth_date: not a date (YYYY-MM-DD): {s:?}"))?,
        ),
    };
    // Stored as upper-case ISO alpha-2 whatever spelling the shop used; a value naming no country is a bad
    // row rather than a silently lost country (and with it the phone's default region).
    let country = match c.text("country")? {
        None => None,
        Some(s) => Some(
            campaignd_core::identifiers::country_alpha2(&s)
                .ok_or_else(|| {
                    format!(
                        "country: not a country (ISO 3166 alpha-2/alpha-3 code or English name): {s:?}"
                    )
                })?
                .to_string(),
        ),
    };
    Ok(Customer {
        contact: Contact {
            customer_id: id,
            email: c.text("email")?,
            phone: c.text("phone")?,
            first_name: c.text("first_name")?,
            last_name: c.text("last_name")?,
            country,
            city: c.text("city")?,
            region: c.text("region")?,
            postal_code: c.text("postal_code")?,
            birth_date,
            gender: c.text("gender")?,
        },
        created_at: c.time("created_at")?,
        consent_ads: c.boolean("consent_ads")?,
        consent_email: c.boolean("consent_email")?,
    })
}

fn parse_order(mut c: Cells) -> Result<Order, String> {
    let id = c.required("id")?;
    let customer_id = c.required("customer_id")?;
    let placed_at = c.required_time("placed_at")?;
    let raw = c.required("total")?;
    // One rule on both backends: cents, half away from zero (see `campaignd_core::money`).
    let total = money::parse_amount(&raw).map_err(|e| format!("total: {e}: {raw:?}"))?;
    Ok(Order {
        id,
        customer_id,
        placed_at,
        total,
        currency: c.text("currency")?.map(|s| s.to_uppercase()),
        discount_code: c.text("discount_code")?,
        free_shipping: c.boolean("free_shipping")?,
    })
}

fn parse_event(mut c: Cells) -> Result<Event, String> {
    let id = c.text("id")?;
    let customer_id = c.required("customer_id")?;
    let kind = c.required("kind")?;
    let occurred_at = c.required_time("occurred_at")?;
    let properties = match c.take("properties") {
        None => None,
        Some(Cell::Json(v)) => Some(v),
        Some(Cell::Text(s)) => Some(
            serde_json::from_str::<serde_json::Value>(&s)
                .map_err(|e| format!("properties: not valid JSON: {e}"))?,
        ),
    };
    if let Some(p) = &properties {
        if !p.is_object() {
            return Err("properties: not a JSON object".into());
        }
        // Postgres' jsonb refuses NUL characters; so would the whole batch.
        if p.to_string().contains("\\u0000") {
            return Err("properties: contains a NUL character".into());
        }
    }
    Ok(Event {
        id,
        customer_id,
        kind,
        occurred_at,
        properties,
    })
}

fn parse_suppression(mut c: Cells) -> Result<Suppression, String> {
    let raw_kind = c.required("identifier_kind")?;
    let identifier_kind = raw_kind.to_ascii_lowercase();
    if !matches!(identifier_kind.as_str(), "email" | "phone" | "customer_id") {
        return Err(format!(
            "identifier_kind: expected email, phone or customer_id, found {raw_kind:?}"
        ));
    }
    Ok(Suppression {
        identifier_kind,
        identifier: c.required("identifier")?,
        reason: c.text("reason")?,
        created_at: c.time("created_at")?,
    })
}

/// A cell as the parsers see it: trimmed, empty meaning NULL.
fn cell_text(s: &str) -> Option<Cell> {
    let s = s.trim();
    (!s.is_empty()).then(|| Cell::Text(s.to_string()))
}

/// Reads a CSV file: a header naming the kind's columns in any order, then one row per record.
fn read_csv(
    kind: ImportKind,
    file: &str,
    handle: File,
    out: &mut BatchSender,
) -> Result<(), StoreError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(RecordLines::new(handle));
    let headers = reader
        .headers()
        .map_err(|e| StoreError::Io(format!("{file}:1: cannot read the header: {e}")))?
        .clone();
    reader.get_mut().next_start();
    let columns = kind.columns();
    let mut slots = Vec::with_capacity(headers.len());
    let mut unknown = Vec::new();
    let mut seen = HashSet::new();
    for h in headers.iter() {
        let name = h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase();
        match columns.iter().position(|c| *c == name) {
            Some(i) => {
                if !seen.insert(i) {
                    return Err(StoreError::Io(format!("{file}:1: duplicate column {name}")));
                }
                slots.push(i);
            }
            None => unknown.push(h.trim().to_string()),
        }
    }
    if !unknown.is_empty() {
        return Err(StoreError::Io(format!(
            "{file}:1: unknown column(s) {} for {kind}; expected {}",
            unknown.join(", "),
            columns.join(", ")
        )));
    }
    let missing: Vec<&str> = kind
        .required_columns()
        .iter()
        .copied()
        .filter(|c| !headers.iter().any(|h| h.trim().eq_ignore_ascii_case(c)))
        .collect();
    if !missing.is_empty() {
        return Err(StoreError::Io(format!(
            "{file}:1: missing column(s) {} for {kind}",
            missing.join(", ")
        )));
    }

    let mut record = csv::StringRecord::new();
    loop {
        if out.closed() {
            return Ok(());
        }
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let bytes = reader.get_ref().bytes;
                out.read_to(bytes);
                let line = reader.get_mut().next_start();
                let cells = if record.len() != slots.len() {
                    Err(format!(
                        "expected {} fields, found {}",
                        slots.len(),
                        record.len()
                    ))
                } else {
                    let mut cells = Cells::new(kind);
                    for (slot, value) in slots.iter().zip(record.iter()) {
                        cells.cells[*slot] = cell_text(value);
                    }
                    Ok(cells)
                };
                out.row(line, cells);
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::Utf8 { .. } => {
                    let line = reader.get_mut().next_start();
                    out.row(line, Err("not valid UTF-8".into()));
                }
                _ => return Err(StoreError::Io(format!("cannot read {file}: {e}"))),
            },
        }
    }
}

/// Where the CSV lexer is, mirroring `csv-core`'s record rules (RFC 4180 quoting, `""` escapes, quotes
/// only special at the start of a field, empty lines skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    RecordStart,
    FieldStart,
    InField,
    InQuoted,
    QuoteInQuoted,
}

/// A reader that passes the CSV bytes through unchanged and notes the physical line each record starts
/// on. The csv crate's own positions point just after the previous record, which is wrong past empty
/// lines; error messages must name the line a person sees in an editor.
struct RecordLines<R> {
    inner: R,
    state: Lex,
    line: u64,
    starts: std::collections::VecDeque<u64>,
    /// Bytes passed through so far.
    bytes: u64,
}

impl<R> RecordLines<R> {
    fn new(inner: R) -> Self {
        RecordLines {
            inner,
            state: Lex::RecordStart,
            line: 1,
            starts: std::collections::VecDeque::new(),
            bytes: 0,
        }
    }

    /// The start line of the next record not yet claimed (records are claimed in order as they are read).
    fn next_start(&mut self) -> u64 {
        self.starts.pop_front().unwrap_or(self.line)
    }

    fn scan(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.state == Lex::RecordStart && b != b'\n' && b != b'\r' {
                self.starts.push_back(self.line);
                self.state = Lex::FieldStart;
            }
            if b == b'\n' {
                self.line += 1;
            }
            self.state = match (self.state, b) {
                (Lex::InQuoted, b'"') => Lex::QuoteInQuoted,
                (Lex::InQuoted, _) => Lex::InQuoted,
                (_, b'\n' | b'\r') => Lex::RecordStart,
                (Lex::QuoteInQuoted, b'"') => Lex::InQuoted,
                (Lex::FieldStart, b'"') => Lex::InQuoted,
                (_, b',') => Lex::FieldStart,
                _ => Lex::InField,
            };
        }
    }
}

impl<R: std::io::Read> std::io::Read for RecordLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scan(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Reads a JSON Lines file: one object per line, keys among the kind's columns; blank lines are skipped.
fn read_jsonl(
    kind: ImportKind,
    file: &str,
    handle: File,
    out: &mut BatchSender,
) -> Result<(), StoreError> {
    let mut reader = BufReader::with_capacity(1 << 16, handle);
    let mut buf = Vec::new();
    let mut line = 0u64;
    let mut bytes = 0u64;
    loop {
        if out.closed() {
            return Ok(());
        }
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| StoreError::Io(format!("cannot read {file}: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        bytes += n as u64;
        out.read_to(bytes);
        line += 1;
        // A UTF-8 byte order mark (as some Windows tools write) is not part of the first object.
        let bytes = match line {
            1 => buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf),
            _ => &buf,
        };
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t.trim(),
            Err(_) => {
                out.row(line, Err("not valid UTF-8".into()));
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        out.row(line, json_cells(kind, text));
    }
}

/// One JSON Lines object as cells: scalars become text (so `"1"`, `1` and `true` parse like CSV cells),
/// `null` and `""` are NULL, and `properties` may be an object.
fn json_cells(kind: ImportKind, text: &str) -> Result<Cells, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))?;
    let serde_json::Value::Object(map) = value else {
        return Err("bad JSON: expected an object".into());
    };
    let mut cells = Cells::new(kind);
    let mut unknown = Vec::new();
    for (key, v) in map {
        let Some(i) = cells.columns.iter().position(|c| *c == key) else {
            unknown.push(key);
            continue;
        };
        cells.cells[i] = match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => cell_text(&s),
            serde_json::Value::Bool(b) => Some(Cell::Text(b.to_string())),
            serde_json::Value::Number(n) => Some(Cell::Text(n.to_string())),
            v @ serde_json::Value::Object(_) if key == "properties" => Some(Cell::Json(v)),
            _ if key == "properties" => return Err("properties: not a JSON object".into()),
            _ => return Err(format!("{key}: expected a string, number or boolean")),
        };
    }
    if !unknown.is_empty() {
        return Err(format!("unknown field(s) {}", unknown.join(", ")));
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_cli_names() {
        for k in [
            ImportKind::Customers,
            ImportKind::Orders,
            ImportKind::Events,
            ImportKind::Suppressions,
        ] {
            assert_eq!(k.as_str().parse::<ImportKind>().unwrap(), k);
        }
        assert!("widgets".parse::<ImportKind>().is_err());
    }

    #[test]
    fn json_scalars_become_cells_like_csv() {
        let mut c = json_cells(
            ImportKind::Customers,
            r#"{"id": 7, "consent_ads": true, "consent_email": "no", "email": ""}"#,
        )
        .unwrap();
        assert_eq!(c.text("id").unwrap().as_deref(), Some("7"));
        assert!(c.boolean("consent_ads").unwrap());
        assert!(!c.boolean("consent_email").unwrap());
        assert_eq!(c.text("email").unwrap(), None);
    }

    #[test]
    fn record_lines_match_csv_records_past_blank_lines_quotes_and_crlf() {
        let text = "h1,h2\r\n\r\na,\"x\ny\"\r\n\n\n5\" tv,\"say \"\"hi\"\"\"\nlast,1";
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(RecordLines::new(text.as_bytes()));
        reader.headers().unwrap();
        assert_eq!(reader.get_mut().next_start(), 1);
        let mut got = Vec::new();
        let mut record = csv::StringRecord::new();
        while reader.read_record(&mut record).unwrap() {
            got.push((
                reader.get_mut().next_start(),
                record.get(0).unwrap().to_string(),
            ));
        }
        assert_eq!(
            got,
            vec![
                (3, "a".to_string()),
                (7, "5\" tv".to_string()),
                (8, "last".to_string())
            ]
        );
    }

    #[test]
    fn booleans_accept_the_documented_spellings() {
        let consent_ads = ImportKind::Customers
            .columns()
            .iter()
            .position(|c| *c == "consent_ads")
            .expect("a customers column");
        for (s, want) in [
            ("TRUE", true),
            ("yes", true),
            ("1", true),
            ("False", false),
            ("NO", false),
            ("0", false),
        ] {
            let mut c = Cells::new(ImportKind::Customers);
            c.cells[consent_ads] = cell_text(s);
            assert_eq!(c.boolean("consent_ads").unwrap(), want, "{s}");
        }
        let mut c = Cells::new(ImportKind::Customers);
        c.cells[consent_ads] = cell_text("maybe");
        assert_eq!(
            c.boolean("consent_ads").unwrap_err(),
            "consent_ads: not a boolean (true/false, 1/0, yes/no): \"maybe\""
        );
    }
}
