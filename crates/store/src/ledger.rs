//! The sync ledger: which customers (and exactly which identifier payloads) each destination audience
//! holds, advanced only per acknowledged batch.
//!
//! A sync that compares every member (the first one, a changed mapping, `--full`) reads the segment's
//! eligible members and the ledger as two keyset-paged streams in the same customer-id order
//! (bytewise: `COLLATE "C"` on Postgres, SQLite's default BINARY) and merges them, so memory stays
//! flat in the audience size, nothing is written for unchanged members, and a crashed run resumes
//! from the ledger without resending acknowledged batches. Each ledger row keeps the
//! `customers.identity_version` its payload was prepared from, so an incremental sync reads only the
//! diff ([`Store::diff_page`]): pages of the eligible members the audience does not hold at their
//! current version and of the ledger rows of members no longer eligible as recorded, both over the
//! same id range, comparing `(customer id, identity_version)` pairs only. On SQLite that is one pass
//! per side over the covering indexes `sync_ledger_diff` and `customers_sync` (migration 0012),
//! stepped side by side on a pooled connection's own handle and merged in Rust, which also counts the
//! exclusions and the identifier kinds held unchanged; on Postgres a `FULL JOIN` of the same pairs.
//! Payloads and identifier columns are read only for the rows a page returns.
//!
//! An acknowledged batch is written in one transaction. On SQLite its members' ledger rows go through one
//! prepared 64-row upsert on the connection's own handle (rusqlite over sqlx's `lock_handle`, as the
//! bulk loads in [`crate::load`] do), since sqlx re-resolved each of a statement's hundreds of parameters
//! by name on every execution; on Postgres they go as multi-row statements through sqlx.

use campaignd_core::model::{Channel, Contact};
use sqlx::Row;

use crate::bind::on_pool;
use crate::{Store, StoreError};

/// The `customers` column holding the consent `channel` requires.
pub(crate) fn consent_column(channel: Channel) -> &'static str {
    match channel {
        Channel::Ads => "consent_ads",
        Channel::Email => "consent_email",
    }
}

/// A remote audience campaignd manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceRecord {
    /// The platform's id for it.
    pub remote_id: String,
    /// Adopted (members unknown) or `--full`: the next mirror sync must replace its contents.
    pub needs_replace: bool,
    /// The mapping the ledger's payloads were prepared with (the connector's fingerprint of a fixed
    /// probe contact), recorded after a complete sync; `None` or a different value makes the next
    /// sync compare every member instead of only those whose identifiers changed.
    pub mapping: Option<String>,
}

/// A segment member eligible to be sent: the raw contact columns connectors normalise, and the version
/// they were read at.
#[derive(Debug, Clone, Default)]
pub struct Candidate {
    /// The customer's identifiers as stored (`contact.customer_id` is the key).
    pub contact: Contact,
    /// The customer's `identity_version` when this row was read: recorded in the ledger with the
    /// payload prepared from these columns, so a later sync knows whether they changed since.
    pub identity_version: i64,
}

/// One member as a platform holds it: what was (or will be) sent, and its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Customer id.
    pub customer_id: String,
    /// Hash of the payload, to notice changed identifiers.
    pub fingerprint: String,
    /// The exact JSON payload sent (hashed where the platform takes hashes).
    pub payload: String,
    /// The customer's `identity_version` the payload was prepared from; `None` when unknown (rows
    /// from before versions were kept, or from a remote job), which only makes the next sync compare
    /// the member again.
    pub identity_version: Option<i64>,
    /// The identifier kinds the payload carries ([`KINDS_EMAIL`] | [`KINDS_PHONE`] |
    /// [`KINDS_ADDRESS`]); `None` when unknown, which also makes the next sync compare the member.
    pub kinds: Option<i64>,
}

/// A ledger row as read: customer id, fingerprint, payload, identity version, kinds.
type HeldRow = (String, String, String, Option<i64>, Option<i64>);

/// The ledger columns a [`HeldRow`] reads.
const HELD_COLUMNS: &str = "l.customer_id, l.fingerprint, l.payload, l.identity_version, l.kinds";

/// The customer columns [`candidate`] reads, in its order.
const CANDIDATE_COLUMNS: &str =
    "c.id, c.email, c.phone, c.first_name, c.last_name, c.country, c.postal_code, \
     c.city, c.region, c.gender, c.birth_date, c.identity_version";

fn held_entry(
    (customer_id, fingerprint, payload, identity_version, kinds): HeldRow,
) -> LedgerEntry {
    LedgerEntry {
        customer_id,
        fingerprint,
        payload,
        identity_version,
        kinds,
    }
}

/// A row of [`CANDIDATE_COLUMNS`] as a [`Candidate`].
fn candidate<R: Row>(r: &R) -> Result<Candidate, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<chrono::NaiveDate>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Candidate {
        contact: Contact {
            customer_id: r.try_get(0)?,
            email: r.try_get(1)?,
            phone: r.try_get(2)?,
            first_name: r.try_get(3)?,
            last_name: r.try_get(4)?,
            country: r.try_get(5)?,
            postal_code: r.try_get(6)?,
            city: r.try_get(7)?,
            region: r.try_get(8)?,
            gender: r.try_get(9)?,
            birth_date: r.try_get(10)?,
        },
        identity_version: r.try_get(11)?,
    })
}

/// `ids` as one JSON array, bound as a single value that SQLite's `json_each` unpacks.
fn json_ids(ids: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(ids).map_err(|e| StoreError::Unwritable(format!("customer ids: {e}")))
}

/// [`LedgerEntry::kinds`] bit: the payload carries an email.
pub const KINDS_EMAIL: i64 = 1;
/// [`LedgerEntry::kinds`] bit: the payload carries a phone.
pub const KINDS_PHONE: i64 = 2;
/// [`LedgerEntry::kinds`] bit: the payload carries a name and postal address.
pub const KINDS_ADDRESS: i64 = 4;

/// The [`LedgerEntry::kinds`] value of a payload carrying these identifier kinds.
pub fn kind_bits(email: bool, phone: bool, address: bool) -> i64 {
    let bit = |on: bool, b: i64| if on { b } else { 0 };
    bit(email, KINDS_EMAIL) | bit(phone, KINDS_PHONE) | bit(address, KINDS_ADDRESS)
}

/// How many members carry each identifier kind: the basis of match rates by identifier (a sync
/// records it as `identifiers` in its run's counts; [`Store::diff_page`] counts those of the members
/// held unchanged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct KindCounts {
    /// Members sent with an email.
    pub email: i64,
    /// Members sent with a phone.
    pub phone: i64,
    /// Members sent with name + postal code (Meta) or Google's address info.
    pub address: i64,
}

impl KindCounts {
    /// Counts one member whose payload carries the kinds `bits` (see [`kind_bits`]).
    pub fn add_bits(&mut self, bits: i64) {
        self.email += i64::from(bits & KINDS_EMAIL != 0);
        self.phone += i64::from(bits & KINDS_PHONE != 0);
        self.address += i64::from(bits & KINDS_ADDRESS != 0);
    }

    /// Adds another count to this one.
    pub fn add(&mut self, other: &KindCounts) {
        self.email += other.email;
        self.phone += other.phone;
        self.address += other.address;
    }

    /// This count less `part` of it (the members of `part` are among these).
    pub fn less(&self, part: &KindCounts) -> KindCounts {
        KindCounts {
            email: self.email - part.email,
            phone: self.phone - part.phone,
            address: self.address - part.address,
        }
    }
}

/// What the platform did with one batch, as the ledger records it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Acknowledged<'a> {
    /// Accepted additions: now held.
    pub added: &'a [LedgerEntry],
    /// Accepted removals (customer ids): no longer held.
    pub removed: &'a [String],
    /// Refused rows: (customer id, action, reason), logged and retried next run.
    pub rejected: &'a [(String, String, String)],
}

/// Who in a segment may be sent, and why the others may not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exclusions {
    /// Members of the segment (with a customer row).
    pub members: i64,
    /// Members without the channel's consent.
    pub no_consent: i64,
    /// Members with consent but on the suppression list.
    pub suppressed: i64,
}

/// Digits of a phone number, in SQL: the form phone suppressions are stored in.
const PHONE_DIGITS: &str = "REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(COALESCE(c.phone, ''), '+', ''), ' ', ''), '-', ''), '(', ''), ')', ''), '.', '')";

/// Which kinds of identifier the suppression list holds at all: a kind it holds none of needs no
/// per-member lookup (normalising every member's email and phone in SQL costs more than the lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SuppressionKinds {
    customer_id: bool,
    email: bool,
    phone: bool,
}

impl SuppressionKinds {
    /// Every kind: the check that is right whatever the list holds.
    const ALL: SuppressionKinds = SuppressionKinds {
        customer_id: true,
        email: true,
        phone: true,
    };
}

/// `c` is on the suppression list by id, normalised email or phone digits (index lookups on the
/// suppressions primary key; identifiers are normalised when written), checking only the `kinds`
/// the list holds.
fn suppressed_sql(kinds: SuppressionKinds) -> String {
    let mut checks = Vec::new();
    if kinds.customer_id {
        checks.push("EXISTS (SELECT 1 FROM suppressions s WHERE s.identifier_kind = 'customer_id' AND s.identifier = c.id)".to_string());
    }
    if kinds.email {
        checks.push("EXISTS (SELECT 1 FROM suppressions s WHERE s.identifier_kind = 'email' AND s.identifier = LOWER(TRIM(c.email)))".to_string());
    }
    if kinds.phone {
        checks.push(format!(
            "EXISTS (SELECT 1 FROM suppressions s WHERE s.identifier_kind = 'phone' AND s.identifier = {PHONE_DIGITS})"
        ));
    }
    if checks.is_empty() {
        return "(1 = 0)".to_string();
    }
    format!("({})", checks.join(" OR "))
}

/// `c` may be sent to a destination needing `consent`.
pub(crate) fn eligible_sql(consent: Channel) -> String {
    eligible_sql_with(consent, SuppressionKinds::ALL)
}

/// [`eligible_sql`] for a suppression list holding only `kinds`.
fn eligible_sql_with(consent: Channel, kinds: SuppressionKinds) -> String {
    format!(
        "(c.{} = TRUE AND NOT {})",
        consent_column(consent),
        suppressed_sql(kinds)
    )
}

/// The ordering both merge streams share: bytewise, so Rust's `str` ordering agrees with the database.
pub(crate) fn bytewise(store: &Store) -> &'static str {
    match store.pool() {
        crate::Pool::Sqlite(_) => "",
        crate::Pool::Postgres(_) => " COLLATE \"C\"",
    }
}

/// Rows per multi-row statement: sqlx-sqlite slows down sharply on long statements, Postgres prefers them.
pub(crate) fn rows_per_statement(store: &Store) -> usize {
    match store.pool() {
        crate::Pool::Sqlite(_) => 32,
        crate::Pool::Postgres(_) => 1000,
    }
}

/// `($1, $2, $3, $4, $5), ($1, $2, $6, $7, $8), ...`: the `shared` leading parameters repeated in every
/// row, then `per_row` fresh ones per row (e.g. customer id, fingerprint, payload).
pub(crate) fn values_rows(rows: usize, shared: usize, per_row: usize) -> String {
    let mut sql = String::new();
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for s in 1..=shared {
            sql.push_str(&format!("${s}, "));
        }
        let base = shared + r * per_row;
        for k in 1..=per_row {
            if k > 1 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", base + k));
        }
        sql.push(')');
    }
    sql
}

/// The start of the ledger upsert of acknowledged members; the rows follow.
const ADD_HEAD: &str = "INSERT INTO sync_ledger (destination, audience_name, synced_at, run_id, customer_id, fingerprint, payload, identity_version, kinds) VALUES ";
/// The end of the ledger upsert: a member already held gets the new payload and version.
const ADD_TAIL: &str = " ON CONFLICT (destination, audience_name, customer_id) DO UPDATE SET \
     fingerprint = excluded.fingerprint, payload = excluded.payload, synced_at = excluded.synced_at, run_id = excluded.run_id, \
     identity_version = excluded.identity_version, kinds = excluded.kinds";
/// Rows per step of the SQLite ledger upsert on the connection's own handle ([`sqlite_upsert_added`]).
const SQLITE_ADDED_ROWS_PER_STEP: usize = 64;

/// The values every row of one acknowledged batch shares.
struct AddedHead<'a> {
    destination: &'a str,
    audience_name: &'a str,
    now: i64,
    run_id: i64,
}

/// Writes the acknowledged members of a batch into the ledger inside the batch's transaction, the way
/// each backend does it fastest.
trait UpsertAdded {
    /// Upserts `added` for `head`'s audience; `chunk_rows` rows per statement where statements are
    /// built per chunk.
    async fn upsert_added(
        &mut self,
        head: &AddedHead<'_>,
        added: &[LedgerEntry],
        chunk_rows: usize,
    ) -> Result<(), StoreError>;
}

impl UpsertAdded for sqlx::Transaction<'_, sqlx::Postgres> {
    /// Multi-row statements of `chunk_rows` rows through sqlx.
    async fn upsert_added(
        &mut self,
        head: &AddedHead<'_>,
        added: &[LedgerEntry],
        chunk_rows: usize,
    ) -> Result<(), StoreError> {
        for chunk in added.chunks(chunk_rows) {
            let sql = format!("{ADD_HEAD}{}{ADD_TAIL}", values_rows(chunk.len(), 4, 5));
            let mut q = sqlx::query(&sql)
                .bind(head.destination)
                .bind(head.audience_name)
                .bind(head.now)
                .bind(head.run_id);
            for m in chunk {
                q = q
                    .bind(&m.customer_id)
                    .bind(&m.fingerprint)
                    .bind(&m.payload)
                    .bind(m.identity_version)
                    .bind(m.kinds);
            }
            q.execute(&mut **self).await?;
        }
        Ok(())
    }
}

impl UpsertAdded for sqlx::Transaction<'_, sqlx::Sqlite> {
    /// On the connection's own handle: sqlx-sqlite resolved every one of a statement's hundreds of
    /// parameters by name on each execution (`sqlite3_bind_parameter_name` was a visible share of a
    /// first sync's CPU, issue 13) and handed each statement to its worker thread.
    async fn upsert_added(
        &mut self,
        head: &AddedHead<'_>,
        added: &[LedgerEntry],
        _chunk_rows: usize,
    ) -> Result<(), StoreError> {
        if added.is_empty() {
            return Ok(());
        }
        let mut locked = self.lock_handle().await?;
        // SAFETY: `locked` keeps sqlx's worker off this connection until it is dropped, after the call;
        // the handle stays open because the transaction borrows the connection.
        unsafe { sqlite_upsert_added(locked.as_raw_handle(), head, added) }
    }
}

/// The ledger upsert of `added` through SQLite's C API on `db`, the handle of the sqlx connection whose
/// transaction is open: one prepared statement of [`SQLITE_ADDED_ROWS_PER_STEP`] rows, its shared
/// values bound once, reused for every full group (the last, shorter group gets its own).
///
/// # Safety
///
/// `db` must be the open handle of a connection that nothing else uses until this returns: the caller
/// holds sqlx's [`sqlx::sqlite::LockedSqliteHandle`] for it.
unsafe fn sqlite_upsert_added(
    db: std::ptr::NonNull<rusqlite::ffi::sqlite3>,
    head: &AddedHead<'_>,
    added: &[LedgerEntry],
) -> Result<(), StoreError> {
    let failed = |source| StoreError::SqliteWrite {
        table: "sync_ledger",
        source,
    };
    // SAFETY: the caller guarantees `db` is open and exclusively ours for this call. A connection made
    // with `from_handle` does not own the handle and is dropped, its statements finalized first, before
    // this function returns. Its statements run inside the transaction sqlx opened on the connection.
    let conn = unsafe { rusqlite::Connection::from_handle(db.as_ptr()) }.map_err(failed)?;
    let prepare = |rows: usize| -> Result<rusqlite::Statement<'_>, StoreError> {
        // `?N` numbers the same parameters as `$N` does for sqlx.
        let sql = format!(
            "{ADD_HEAD}{}{ADD_TAIL}",
            values_rows(rows, 4, 5).replace('$', "?")
        );
        let mut stmt = conn.prepare(&sql).map_err(failed)?;
        stmt.raw_bind_parameter(1, head.destination)
            .map_err(failed)?;
        stmt.raw_bind_parameter(2, head.audience_name)
            .map_err(failed)?;
        stmt.raw_bind_parameter(3, head.now).map_err(failed)?;
        stmt.raw_bind_parameter(4, head.run_id).map_err(failed)?;
        Ok(stmt)
    };
    let mut full = None;
    for group in added.chunks(SQLITE_ADDED_ROWS_PER_STEP) {
        let mut short;
        let stmt = if group.len() == SQLITE_ADDED_ROWS_PER_STEP {
            match &mut full {
                Some(stmt) => stmt,
                None => full.insert(prepare(group.len())?),
            }
        } else {
            short = prepare(group.len())?;
            &mut short
        };
        for (r, m) in group.iter().enumerate() {
            let base = 4 + r * 5;
            stmt.raw_bind_parameter(base + 1, m.customer_id.as_str())
                .map_err(failed)?;
            stmt.raw_bind_parameter(base + 2, m.fingerprint.as_str())
                .map_err(failed)?;
            stmt.raw_bind_parameter(base + 3, m.payload.as_str())
                .map_err(failed)?;
            stmt.raw_bind_parameter(base + 4, m.identity_version)
                .map_err(failed)?;
            stmt.raw_bind_parameter(base + 5, m.kinds).map_err(failed)?;
        }
        stmt.raw_execute().map_err(failed)?;
    }
    Ok(())
}

pub(crate) fn entries(rows: Vec<(String, String, String)>) -> Vec<LedgerEntry> {
    rows.into_iter()
        .map(|(customer_id, fingerprint, payload)| LedgerEntry {
            customer_id,
            fingerprint,
            payload,
            identity_version: None,
            kinds: None,
        })
        .collect()
}

impl Store {
    /// The remote audience recorded for `(destination, audience_name)`, if any.
    pub async fn audience(
        &self,
        destination: &str,
        audience_name: &str,
    ) -> Result<Option<AudienceRecord>, StoreError> {
        const SQL: &str = "SELECT remote_id, needs_replace, mapping FROM destination_audiences WHERE destination = $1 AND audience_name = $2";
        let row: Option<(String, i64, Option<String>)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(destination).bind(audience_name).fetch_optional(pool).await?);
        Ok(row.map(|(remote_id, flag, mapping)| AudienceRecord {
            remote_id,
            needs_replace: flag != 0,
            mapping,
        }))
    }

    /// Records the remote audience and whether its contents must be replaced on the next sync.
    pub async fn save_audience(
        &self,
        destination: &str,
        audience_name: &str,
        record: &AudienceRecord,
        now: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO destination_audiences (destination, audience_name, remote_id, needs_replace, created_at, mapping) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (destination, audience_name) DO UPDATE SET \
             remote_id = excluded.remote_id, needs_replace = excluded.needs_replace, mapping = excluded.mapping";
        on_pool!(self, pool => sqlx::query(SQL)
            .bind(destination).bind(audience_name).bind(&record.remote_id)
            .bind(i64::from(record.needs_replace)).bind(now).bind(&record.mapping)
            .execute(pool).await.map(|_| ())?);
        Ok(())
    }

    /// Records the mapping a complete sync built the audience's ledger with (see
    /// [`AudienceRecord::mapping`]), so later syncs may look at changed members only.
    pub async fn save_mapping(
        &self,
        destination: &str,
        audience_name: &str,
        mapping: &str,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE destination_audiences SET mapping = $3 WHERE destination = $1 AND audience_name = $2";
        on_pool!(self, pool => sqlx::query(SQL).bind(destination).bind(audience_name).bind(mapping)
            .execute(pool).await.map(|_| ())?);
        Ok(())
    }

    /// Counts a segment's members and those left out for missing consent or suppression, in one pass.
    pub async fn sync_exclusions(
        &self,
        segment: &str,
        consent: Channel,
    ) -> Result<Exclusions, StoreError> {
        let sql = format!(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN c.{col} = TRUE THEN 0 ELSE 1 END), 0), \
                    COALESCE(SUM(CASE WHEN c.{col} = TRUE AND {sup} THEN 1 ELSE 0 END), 0) \
             FROM segment_memberships m JOIN customers c ON c.id = m.customer_id WHERE m.segment = $1",
            col = consent_column(consent),
            sup = suppressed_sql(self.suppression_kinds().await?)
        );
        let (members, no_consent, suppressed): (i64, i64, i64) = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(segment).fetch_one(pool).await?);
        Ok(Exclusions {
            members,
            no_consent,
            suppressed,
        })
    }

    /// The next page (bytewise customer-id order) of segment members who may be sent to a `consent`
    /// channel.
    pub async fn sync_candidates(
        &self,
        segment: &str,
        consent: Channel,
        after: &str,
        limit: i64,
    ) -> Result<Vec<Candidate>, StoreError> {
        let c = bytewise(self);
        let eligible = eligible_sql_with(consent, self.suppression_kinds().await?);
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS} FROM segment_memberships m JOIN customers c ON c.id = m.customer_id \
             WHERE m.segment = $1 AND m.customer_id{c} > $2 AND {eligible} ORDER BY m.customer_id{c} LIMIT $3"
        );
        let rows = on_pool!(self, pool => sqlx::query(&sql).bind(segment).bind(after).bind(limit)
            .fetch_all(pool).await?.iter().map(candidate).collect::<Result<Vec<_>, _>>()?);
        Ok(rows)
    }

    /// The customer rows of `ids` (bytewise id order), read for the members a diff page returns:
    /// the only identifier columns an incremental sync reads.
    async fn candidates_by_id(&self, ids: &[String]) -> Result<Vec<Candidate>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = match self.pool() {
            crate::Pool::Sqlite(pool) => {
                let sql = format!(
                    "SELECT {CANDIDATE_COLUMNS} FROM customers c \
                     WHERE c.id IN (SELECT value FROM json_each($1)) ORDER BY c.id"
                );
                sqlx::query(&sql)
                    .bind(json_ids(ids)?)
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(candidate)
                    .collect::<Result<Vec<_>, _>>()?
            }
            crate::Pool::Postgres(pool) => {
                let sql = format!(
                    "SELECT {CANDIDATE_COLUMNS} FROM customers c WHERE c.id = ANY($1) ORDER BY c.id COLLATE \"C\""
                );
                self.bounded(async {
                    Ok::<_, StoreError>(
                        sqlx::query(&sql)
                            .bind(ids)
                            .fetch_all(pool)
                            .await?
                            .iter()
                            .map(candidate)
                            .collect::<Result<Vec<_>, _>>()?,
                    )
                })
                .await?
            }
        };
        Ok(rows)
    }

    /// Which of `ids` may still be sent to a `consent` channel (exist, consent given, not suppressed):
    /// an upsert sync keeps them, and removes the rest.
    pub async fn still_eligible(
        &self,
        consent: Channel,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut out = std::collections::HashSet::new();
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT c.id FROM customers c WHERE c.id IN ({}) AND {}",
                placeholders.join(", "),
                eligible_sql(consent)
            );
            let found: Vec<String> = on_pool!(self, pool => {
                let mut q = sqlx::query_scalar(&sql);
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(pool).await?
            });
            out.extend(found);
        }
        Ok(out)
    }

    /// The next page (bytewise customer-id order) of what the audience holds.
    pub async fn ledger_page(
        &self,
        destination: &str,
        audience_name: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let c = bytewise(self);
        let sql = format!(
            "SELECT {HELD_COLUMNS} FROM sync_ledger l \
             WHERE l.destination = $1 AND l.audience_name = $2 AND l.customer_id{c} > $3 \
             ORDER BY l.customer_id{c} LIMIT $4"
        );
        let rows: Vec<HeldRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(destination).bind(audience_name).bind(after).bind(limit).fetch_all(pool).await?);
        Ok(rows.into_iter().map(held_entry).collect())
    }

    /// The ledger rows of `ids` (bytewise id order), read for the members a diff page returns: the
    /// only payloads an incremental sync reads.
    async fn held_by_id(
        &self,
        destination: &str,
        audience_name: &str,
        ids: &[String],
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<HeldRow> = match self.pool() {
            crate::Pool::Sqlite(pool) => {
                let sql = format!(
                    "SELECT {HELD_COLUMNS} FROM sync_ledger l WHERE l.destination = $1 AND l.audience_name = $2 \
                     AND l.customer_id IN (SELECT value FROM json_each($3)) ORDER BY l.customer_id"
                );
                sqlx::query_as(&sql)
                    .bind(destination)
                    .bind(audience_name)
                    .bind(json_ids(ids)?)
                    .fetch_all(pool)
                    .await?
            }
            crate::Pool::Postgres(pool) => {
                let sql = format!(
                    "SELECT {HELD_COLUMNS} FROM sync_ledger l WHERE l.destination = $1 AND l.audience_name = $2 \
                     AND l.customer_id = ANY($3) ORDER BY l.customer_id COLLATE \"C\""
                );
                self.bounded(async {
                    Ok::<_, StoreError>(
                        sqlx::query_as(&sql)
                            .bind(destination)
                            .bind(audience_name)
                            .bind(ids)
                            .fetch_all(pool)
                            .await?,
                    )
                })
                .await?
            }
        };
        Ok(rows.into_iter().map(held_entry).collect())
    }

    /// Records that held members' identifiers changed without changing what the platform holds (the
    /// same payload prepared from a newer `identity_version`): `(customer id, version, kinds)`, so
    /// later syncs skip them again.
    pub async fn restamp_ledger(
        &self,
        destination: &str,
        audience_name: &str,
        versions: &[(String, i64, i64)],
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE sync_ledger SET identity_version = $4, kinds = $5 \
             WHERE destination = $1 AND audience_name = $2 AND customer_id = $3";
        if versions.is_empty() {
            return Ok(());
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_write_sql()).await?;
            for (id, version, kinds) in versions {
                sqlx::query(SQL).bind(destination).bind(audience_name).bind(id).bind(version).bind(kinds)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?
        });
        Ok(())
    }

    /// How many of the rows the audience's ledger holds with known kinds carry each identifier kind
    /// (one pass over its covering index): on Postgres, read at the start of a diff, less the rows
    /// [`Store::diff_page`] returns for changes, it counts the identifiers of the members held
    /// unchanged without preparing them.
    async fn held_kinds(
        &self,
        destination: &str,
        audience_name: &str,
    ) -> Result<KindCounts, StoreError> {
        let sql = format!(
            "SELECT COALESCE(SUM(CASE WHEN (kinds & {KINDS_EMAIL}) <> 0 THEN 1 ELSE 0 END), 0), \
                    COALESCE(SUM(CASE WHEN (kinds & {KINDS_PHONE}) <> 0 THEN 1 ELSE 0 END), 0), \
                    COALESCE(SUM(CASE WHEN (kinds & {KINDS_ADDRESS}) <> 0 THEN 1 ELSE 0 END), 0) \
             FROM sync_ledger WHERE destination = $1 AND audience_name = $2 AND kinds IS NOT NULL"
        );
        let (email, phone, address): (i64, i64, i64) = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(destination).bind(audience_name).fetch_one(pool).await?);
        Ok(KindCounts {
            email,
            phone,
            address,
        })
    }

    /// Which identifier kinds the suppression list holds (three primary-key probes).
    async fn suppression_kinds(&self) -> Result<SuppressionKinds, StoreError> {
        const SQL: &str = "SELECT \
             EXISTS (SELECT 1 FROM suppressions WHERE identifier_kind = 'customer_id'), \
             EXISTS (SELECT 1 FROM suppressions WHERE identifier_kind = 'email'), \
             EXISTS (SELECT 1 FROM suppressions WHERE identifier_kind = 'phone')";
        let (customer_id, email, phone): (bool, bool, bool) =
            on_pool!(self, pool => sqlx::query_as(SQL).fetch_one(pool).await?);
        Ok(SuppressionKinds {
            customer_id,
            email,
            phone,
        })
    }

    /// Advances the ledger for one acknowledged batch, in one transaction: accepted additions are
    /// recorded as held, accepted removals forgotten, and every rejected row is logged with its reason
    /// (and, being absent from the ledger, retried by the next run).
    #[allow(clippy::too_many_arguments)]
    pub async fn acknowledge_batch(
        &self,
        destination: &str,
        audience_name: &str,
        run_id: i64,
        now: i64,
        added: &[LedgerEntry],
        removed: &[String],
        rejected: &[(String, String, String)],
    ) -> Result<(), StoreError> {
        let batch = Acknowledged {
            added,
            removed,
            rejected,
        };
        self.acknowledge(destination, audience_name, run_id, now, &batch, None)
            .await
    }

    /// Like [`Store::acknowledge_batch`] for a batch that ran as remote job `job_id`: the job row and
    /// its stored members are deleted in the same transaction, so the job is polled again after a
    /// crash until, and only until, its outcome is in the ledger.
    #[allow(clippy::too_many_arguments)]
    pub async fn acknowledge_job(
        &self,
        destination: &str,
        audience_name: &str,
        job_id: &str,
        run_id: i64,
        now: i64,
        batch: &Acknowledged<'_>,
    ) -> Result<(), StoreError> {
        self.acknowledge(destination, audience_name, run_id, now, batch, Some(job_id))
            .await
    }

    async fn acknowledge(
        &self,
        destination: &str,
        audience_name: &str,
        run_id: i64,
        now: i64,
        batch: &Acknowledged<'_>,
        job_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let Acknowledged {
            added,
            removed,
            rejected,
        } = *batch;
        const REMOVE_HEAD: &str = "DELETE FROM sync_ledger WHERE destination = $1 AND audience_name = $2 AND customer_id IN ";
        const REJECT: &str = "INSERT INTO sync_rejections (run_id, destination, audience_name, customer_id, action, reason, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let chunk_rows = rows_per_statement(self);
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_write_sql()).await?;
            let head = AddedHead { destination, audience_name, now, run_id };
            tx.upsert_added(&head, added, chunk_rows).await?;
            for chunk in removed.chunks(chunk_rows) {
                let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
                let sql = format!("{REMOVE_HEAD}({})", placeholders.join(", "));
                let mut q = sqlx::query(&sql).bind(destination).bind(audience_name);
                for id in chunk {
                    q = q.bind(id);
                }
                q.execute(&mut *tx).await?;
            }
            for (id, action, reason) in rejected {
                sqlx::query(REJECT).bind(run_id).bind(destination).bind(audience_name).bind(id)
                    .bind(action).bind(reason).bind(now)
                    .execute(&mut *tx).await?;
            }
            if let Some(job) = job_id {
                sqlx::query(crate::remote_jobs::DELETE_JOB).bind(destination).bind(audience_name).bind(job)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?
        });
        Ok(())
    }

    /// Marks an adopted audience as replaced: from now on only differences are sent.
    pub async fn mark_replaced(
        &self,
        destination: &str,
        audience_name: &str,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE destination_audiences SET needs_replace = 0 WHERE destination = $1 AND audience_name = $2";
        on_pool!(self, pool => sqlx::query(SQL).bind(destination).bind(audience_name)
            .execute(pool).await.map(|_| ())?);
        Ok(())
    }

    /// Forgets what an audience holds (a `--full` resync re-sends everyone).
    pub async fn clear_ledger(
        &self,
        destination: &str,
        audience_name: &str,
    ) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM sync_ledger WHERE destination = $1 AND audience_name = $2";
        on_pool!(self, pool => sqlx::query(SQL).bind(destination).bind(audience_name)
            .execute(pool).await.map(|_| ())?);
        Ok(())
    }

    /// Rejections recorded by a run: (customer id, action, reason).
    pub async fn run_rejections(
        &self,
        run_id: i64,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        const SQL: &str = "SELECT customer_id, action, reason FROM sync_rejections WHERE run_id = $1 ORDER BY customer_id";
        let rows: Vec<(String, String, String)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(run_id).fetch_all(pool).await?);
        Ok(rows)
    }
}

/// Where an incremental diff stands ([`Store::diff_page`]) and what it has counted so far.
#[derive(Debug, Clone, Default)]
pub struct DiffCursor {
    /// Customer ids up to this one are compared on both sides.
    after: String,
    /// A page was read.
    started: bool,
    /// Both sides are compared to their end.
    done: bool,
    /// The segment's exclusion counts: of the members compared so far on SQLite, of the whole
    /// segment from the first page on on Postgres (`exclusions_complete`).
    exclusions: Exclusions,
    exclusions_complete: bool,
    /// The identifier kinds of the members held unchanged: on SQLite those compared so far, on
    /// Postgres those of every known-kinds ledger row less the changed ones returned so far.
    unchanged_kinds: KindCounts,
}

impl DiffCursor {
    /// Both sides are compared to their end: there is no next page.
    pub fn done(&self) -> bool {
        self.done
    }

    /// The segment's members and those left out for consent or suppression, once the counts cover
    /// the whole segment (SQLite counts them in the diff's own pass, so only once it is done).
    pub fn exclusions(&self) -> Option<Exclusions> {
        (self.exclusions_complete || self.done).then_some(self.exclusions)
    }

    /// Once done, how many members the audience holds unchanged (never prepared by this sync) carry
    /// each identifier kind.
    pub fn unchanged_kinds(&self) -> Option<KindCounts> {
        self.done.then_some(self.unchanged_kinds)
    }
}

/// One page of an incremental diff: both sides complete over the same customer-id range, each in
/// bytewise id order.
#[derive(Debug, Clone, Default)]
pub struct DiffPage {
    /// Eligible members the audience does not hold as they are now (joined, identifiers changed, or
    /// held from an unknown version), with their identifier columns.
    pub joined: Vec<Candidate>,
    /// What the audience holds for members that are not eligible members as recorded (left, lost
    /// consent, suppressed, identifiers changed, or unknown kinds).
    pub held: Vec<LedgerEntry>,
    /// Where the next page starts, and the counts so far.
    pub cursor: DiffCursor,
}

impl Store {
    /// The next page of the diff of `segment`'s eligible members (on a `consent` channel) against what
    /// the audience `(destination, audience_name)` holds, after `cursor` (start from
    /// `DiffCursor::default()`), holding at most `limit` rows on either side. Only `(customer id,
    /// identity_version)` pairs are compared; identifier columns and payloads are read only for the
    /// rows returned.
    ///
    /// SQLite: one pass in customer-id order, on a pooled connection's own handle off the async
    /// threads, stepping two index-ordered scans side by side (the eligible members with their
    /// versions, through `customers_sync`; the ledger's pairs, through `sync_ledger_diff`) and merging
    /// them here; the same pass counts the exclusions and the kinds held unchanged, so a sync whose
    /// changes fit one page reads each side once and nothing else. Postgres: a `FULL JOIN` of the same
    /// two sides keeping the changed ids, its counts from two aggregates at the first page.
    pub async fn diff_page(
        &self,
        segment: &str,
        consent: Channel,
        destination: &str,
        audience_name: &str,
        cursor: &DiffCursor,
        limit: usize,
    ) -> Result<DiffPage, StoreError> {
        let mut next = cursor.clone();
        if next.done {
            return Ok(DiffPage {
                cursor: next,
                ..DiffPage::default()
            });
        }
        let limit = limit.max(1);
        let kinds = self.suppression_kinds().await?;
        let (joined_ids, held_ids) = match self.pool() {
            crate::Pool::Sqlite(pool) => {
                let scan = DiffScan {
                    members: format!(
                        "SELECT m.customer_id, c.identity_version, \
                         CASE WHEN c.{col} = TRUE THEN (CASE WHEN {sup} THEN {SUPPRESSED} ELSE {ELIGIBLE} END) ELSE {NO_CONSENT} END \
                         FROM segment_memberships m JOIN customers c ON c.id = m.customer_id \
                         WHERE m.segment = ?1 AND m.customer_id > ?2 ORDER BY m.customer_id",
                        col = consent_column(consent),
                        sup = suppressed_sql(kinds),
                    ),
                    ledger: "SELECT customer_id, identity_version, kinds FROM sync_ledger INDEXED BY sync_ledger_diff \
                             WHERE destination = ?1 AND audience_name = ?2 AND customer_id > ?3 ORDER BY customer_id"
                        .to_string(),
                    segment: segment.to_string(),
                    destination: destination.to_string(),
                    audience: audience_name.to_string(),
                    limit,
                };
                let mut conn = pool.acquire().await?;
                let runtime = tokio::runtime::Handle::current();
                let (ids, scanned) = tokio::task::spawn_blocking(move || {
                    let mut locked = runtime.block_on(conn.lock_handle())?;
                    // SAFETY: `locked` keeps sqlx's worker off this connection until it is dropped,
                    // after the call; the pooled connection it borrows keeps the handle open.
                    unsafe { scan.run(locked.as_raw_handle(), next) }.map_err(|source| {
                        StoreError::SqliteRead {
                            what: "the sync diff",
                            source,
                        }
                    })
                })
                .await
                .map_err(|e| StoreError::Io(format!("diff scan worker: {e}")))??;
                next = scanned;
                ids
            }
            crate::Pool::Postgres(pool) => {
                let scope = (segment, consent, destination, audience_name);
                self.pg_diff_ids(pool, scope, &mut next, limit, kinds)
                    .await?
            }
        };
        let joined = self.candidates_by_id(&joined_ids).await?;
        let held = self
            .held_by_id(destination, audience_name, &held_ids)
            .await?;
        if matches!(self.pool(), crate::Pool::Postgres(_)) {
            for bits in held.iter().filter_map(|h| h.kinds) {
                let mut one = KindCounts::default();
                one.add_bits(bits);
                next.unchanged_kinds = next.unchanged_kinds.less(&one);
            }
        }
        Ok(DiffPage {
            joined,
            held,
            cursor: next,
        })
    }

    /// The Postgres half of [`Store::diff_page`]: the changed ids of the next page, from one `FULL JOIN`
    /// of the eligible members' and the ledger's `(id, version)` pairs; the counts at the first page.
    async fn pg_diff_ids(
        &self,
        pool: &sqlx::PgPool,
        (segment, consent, destination, audience_name): (&str, Channel, &str, &str),
        cursor: &mut DiffCursor,
        limit: usize,
        kinds: SuppressionKinds,
    ) -> Result<ChangedIds, StoreError> {
        if !cursor.started {
            cursor.exclusions = self.sync_exclusions(segment, consent).await?;
            cursor.exclusions_complete = true;
            cursor.unchanged_kinds = self.held_kinds(destination, audience_name).await?;
        }
        cursor.started = true;
        let sql = format!(
            "SELECT COALESCE(e.id, l.id) AS id, e.id IS NOT NULL AS want, l.id IS NOT NULL AS have FROM \
             (SELECT m.customer_id COLLATE \"C\" AS id, c.identity_version AS v FROM segment_memberships m \
              JOIN customers c ON c.id = m.customer_id \
              WHERE m.segment = $1 AND m.customer_id COLLATE \"C\" > $2 AND {eligible}) e \
             FULL JOIN (SELECT l.customer_id COLLATE \"C\" AS id, l.identity_version AS v, l.kinds FROM sync_ledger l \
              WHERE l.destination = $3 AND l.audience_name = $4 AND l.customer_id COLLATE \"C\" > $2) l ON l.id = e.id \
             WHERE e.id IS NULL OR l.id IS NULL OR l.kinds IS NULL OR l.v IS DISTINCT FROM e.v \
             ORDER BY 1 LIMIT $5",
            eligible = eligible_sql_with(consent, kinds),
        );
        let rows: Vec<(String, bool, bool)> = self
            .bounded(async {
                Ok::<_, StoreError>(
                    sqlx::query_as(&sql)
                        .bind(segment)
                        .bind(&cursor.after)
                        .bind(destination)
                        .bind(audience_name)
                        .bind(limit as i64)
                        .fetch_all(pool)
                        .await?,
                )
            })
            .await?;
        cursor.done = rows.len() < limit;
        if let Some((last, _, _)) = rows.last() {
            cursor.after.clone_from(last);
        }
        let mut joined = Vec::new();
        let mut held = Vec::new();
        for (id, want, have) in rows {
            if want && have {
                joined.push(id.clone());
                held.push(id);
            } else if want {
                joined.push(id);
            } else if have {
                held.push(id);
            }
        }
        Ok((joined, held))
    }
}

/// [`DiffScan`]'s member scan: the member may not be sent for lack of the channel's consent.
const NO_CONSENT: i64 = 0;
/// [`DiffScan`]'s member scan: the member has consent but is suppressed.
const SUPPRESSED: i64 = 1;
/// [`DiffScan`]'s member scan: the member may be sent.
const ELIGIBLE: i64 = 2;

/// The changed customer ids of one diff page: (desired side, held side), each in id order.
type ChangedIds = (Vec<String>, Vec<String>);

/// The SQLite diff pass of [`Store::diff_page`]: its two scans and their parameters.
struct DiffScan {
    /// `(customer id, identity_version, eligibility)` of the segment's members after `?2`, in id order.
    members: String,
    /// `(customer id, identity_version, kinds)` of the audience's ledger rows after `?3`, in id order.
    ledger: String,
    segment: String,
    destination: String,
    audience: String,
    limit: usize,
}

/// The row a scan is at: its id (a buffer reused row to row), version and third column.
#[derive(Default)]
struct ScanHead {
    live: bool,
    id: String,
    version: Option<i64>,
    extra: Option<i64>,
}

impl ScanHead {
    /// Moves to the scan's next row (`live` false past its end).
    fn advance(&mut self, rows: &mut rusqlite::Rows<'_>) -> rusqlite::Result<()> {
        match rows.next()? {
            Some(r) => {
                let id = r.get_ref(0)?;
                let id = id.as_str().map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(0, id.data_type(), Box::new(e))
                })?;
                self.id.clear();
                self.id.push_str(id);
                self.version = r.get(1)?;
                self.extra = r.get(2)?;
                self.live = true;
            }
            None => self.live = false,
        }
        Ok(())
    }
}

impl DiffScan {
    /// Merges the two scans from `cursor` until either side has `limit` changes or both end, counting
    /// on the way; returns the changed ids of each side and the cursor after them.
    ///
    /// # Safety
    ///
    /// `db` must be the open handle of a connection that nothing else uses until this returns: the
    /// caller holds sqlx's [`sqlx::sqlite::LockedSqliteHandle`] for it.
    unsafe fn run(
        &self,
        db: std::ptr::NonNull<rusqlite::ffi::sqlite3>,
        mut cursor: DiffCursor,
    ) -> rusqlite::Result<(ChangedIds, DiffCursor)> {
        // SAFETY: the caller guarantees `db` is open and exclusively ours for this call. A connection
        // made with `from_handle` does not own the handle, and it is dropped, after its statements,
        // before this returns. Both statements are open at once, so they read one snapshot.
        let conn = unsafe { rusqlite::Connection::from_handle(db.as_ptr()) }?;
        let mut members_stmt = conn.prepare(&self.members)?;
        let mut ledger_stmt = conn.prepare(&self.ledger)?;
        let mut members = members_stmt.query(rusqlite::params![self.segment, cursor.after])?;
        let mut ledger = ledger_stmt.query(rusqlite::params![
            self.destination,
            self.audience,
            cursor.after
        ])?;
        let (mut m, mut l) = (ScanHead::default(), ScanHead::default());
        m.advance(&mut members)?;
        l.advance(&mut ledger)?;
        let (mut joined, mut held) = (Vec::new(), Vec::new());
        cursor.started = true;
        loop {
            if joined.len() >= self.limit || held.len() >= self.limit {
                break;
            }
            let order = match (m.live, l.live) {
                (false, false) => {
                    cursor.done = true;
                    break;
                }
                (true, false) => std::cmp::Ordering::Less,
                (false, true) => std::cmp::Ordering::Greater,
                (true, true) => m.id.as_str().cmp(l.id.as_str()),
            };
            let mut eligible = false;
            if order.is_le() {
                cursor.exclusions.members += 1;
                match m.extra {
                    Some(ELIGIBLE) => eligible = true,
                    Some(SUPPRESSED) => cursor.exclusions.suppressed += 1,
                    _ => cursor.exclusions.no_consent += 1,
                }
            }
            match order {
                std::cmp::Ordering::Less => {
                    if eligible {
                        joined.push(m.id.clone());
                    }
                    cursor.after.clone_from(&m.id);
                    m.advance(&mut members)?;
                }
                std::cmp::Ordering::Greater => {
                    held.push(l.id.clone());
                    cursor.after.clone_from(&l.id);
                    l.advance(&mut ledger)?;
                }
                std::cmp::Ordering::Equal => {
                    match l.extra {
                        Some(bits) if eligible && l.version == m.version => {
                            cursor.unchanged_kinds.add_bits(bits);
                        }
                        _ => {
                            if eligible {
                                joined.push(m.id.clone());
                            }
                            held.push(l.id.clone());
                        }
                    }
                    cursor.after.clone_from(&m.id);
                    m.advance(&mut members)?;
                    l.advance(&mut ledger)?;
                }
            }
        }
        Ok(((joined, held), cursor))
    }
}
