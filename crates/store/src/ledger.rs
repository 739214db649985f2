//! The sync ledger: which customers (and exactly which identifier payloads) each destination audience
//! holds, advanced only per acknowledged batch.
//!
//! The diff between a segment and its audience is computed here, in the database: every ledger row
//! records the customer `identity_version` its payload was prepared from (migration 0011: triggers
//! change it with any identifier column), so [`Store::sync_changes`] returns only members who joined
//! or whose identifiers changed, and [`Store::sync_departures`] only held members who must leave. Both
//! are keyset-paged in bytewise customer-id order (`COLLATE "C"` on Postgres, SQLite's default BINARY),
//! so memory stays flat in the audience size, an unchanged member costs an index lookup and nothing
//! else, and a crashed run resumes from the ledger without resending acknowledged batches. Ledger
//! writes take one statement per batch, the batch bound as one value (SQLite: a JSON array read with
//! `json_each`; Postgres: arrays read with `UNNEST`/`ANY`).

use chrono::NaiveDate;
use sqlx::Row;

use crate::bind::on_pool;
use crate::{Store, StoreError};

/// Which consent flag a destination's channel requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// `consent_ads`: ad and social platforms.
    Ads,
    /// `consent_email`: email platforms.
    Email,
}

impl Consent {
    pub(crate) fn column(self) -> &'static str {
        match self {
            Consent::Ads => "consent_ads",
            Consent::Email => "consent_email",
        }
    }
}

/// A remote audience campaignd manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceRecord {
    /// The platform's id for it.
    pub remote_id: String,
    /// Adopted (members unknown) or `--full`: the next mirror sync must replace its contents.
    pub needs_replace: bool,
    /// The connector mapping version the ledger was last fully prepared with (`None`: never, or before
    /// the ledger kept it): a different current version makes the next sync prepare every member again.
    pub mapping: Option<String>,
}

/// A segment member eligible to be sent, with the raw contact columns connectors normalise.
#[derive(Debug, Clone, Default)]
pub struct Candidate {
    /// Customer id.
    pub customer_id: String,
    /// Raw email.
    pub email: Option<String>,
    /// Raw phone.
    pub phone: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// ISO alpha-2 country.
    pub country: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State, province or region.
    pub region: Option<String>,
    /// Gender as stored.
    pub gender: Option<String>,
    /// Birth date.
    pub birth_date: Option<NaiveDate>,
    /// The customer's identity version when read (changes with any identifier column, see migration
    /// 0011): recorded in the ledger with the payload, so the next sync skips the member while it holds.
    pub identity_version: i64,
}

/// A member the diff query found to need preparing: new to the audience, or held with identifiers
/// that changed since (or prepared by an older mapping).
#[derive(Debug, Clone)]
pub struct Changed {
    /// The member's identifier columns.
    pub candidate: Candidate,
    /// The audience already holds the member (its ledger row is read separately, only if the new
    /// payload differs).
    pub held: bool,
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
    /// The customer identity version the payload was prepared from (`None`: unknown, so the next sync
    /// prepares the member again).
    pub identity_version: Option<i64>,
    /// Identifier kinds the payload carries: bit 1 email, 2 phone, 4 address.
    pub kinds: i64,
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

/// `c` is on the suppression list by id, normalised email or phone digits (index lookups on the
/// suppressions primary key; identifiers are normalised when written).
fn suppressed_sql() -> String {
    format!(
        "(EXISTS (SELECT 1 FROM suppressions s WHERE s.identifier_kind = 'customer_id' AND s.identifier = c.id) \
         OR EXISTS (SELECT 1 FROM suppressions s WHERE s.identifier_kind = 'email' AND s.identifier = LOWER(TRIM(c.email))) \
         OR EXISTS (SELECT 1 FROM suppressions s WHERE s.identifier_kind = 'phone' AND s.identifier = {PHONE_DIGITS}))"
    )
}

/// `c` may be sent to a destination needing `consent`.
pub(crate) fn eligible_sql(consent: Consent) -> String {
    format!(
        "(c.{} = TRUE AND NOT {})",
        consent.column(),
        suppressed_sql()
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
/// row, then three fresh ones per row (customer id, fingerprint, payload).
pub(crate) fn values_rows(rows: usize, shared: usize) -> String {
    let per_row = 3;
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
        sql.push_str(&format!("${}, ${}, ${})", base + 1, base + 2, base + 3));
    }
    sql
}

/// A ledger row with its identity version and kinds.
fn full_entry(
    (customer_id, fingerprint, payload, identity_version, kinds): (
        String,
        String,
        String,
        Option<i64>,
        i64,
    ),
) -> LedgerEntry {
    LedgerEntry {
        customer_id,
        fingerprint,
        payload,
        identity_version,
        kinds,
    }
}

/// `ids` as one JSON array text: SQLite reads a whole batch from one bound value with `json_each`.
fn json_list(ids: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn entries(rows: Vec<(String, String, String)>) -> Vec<LedgerEntry> {
    rows.into_iter()
        .map(|(customer_id, fingerprint, payload)| LedgerEntry {
            customer_id,
            fingerprint,
            payload,
            identity_version: None,
            kinds: 0,
        })
        .collect()
}

/// Identifier columns of `c`, in [`Candidate`] order after the id: the one list every candidate query
/// selects.
const CANDIDATE_COLUMNS: &str =
    "c.id, c.email, c.phone, c.first_name, c.last_name, c.country, c.postal_code, \
     c.city, c.region, c.gender, c.birth_date, c.identity_version";

/// A row selected with [`CANDIDATE_COLUMNS`] first.
fn candidate_of<R>(r: &R) -> Result<Candidate, sqlx::Error>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<NaiveDate>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Candidate {
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
        identity_version: r.try_get(11)?,
    })
}

/// `c` is kept out of this audience by its holdout (only when the sync has one: assignments of an
/// earlier configuration with a holdout do not count once it is gone). `$d`/`$a` are the parameters
/// holding destination and audience name.
fn not_held_out_sql(holdout: bool, d: usize, a: usize) -> String {
    if holdout {
        format!(
            " AND NOT EXISTS (SELECT 1 FROM holdout_members h WHERE h.destination = ${d} AND h.audience_name = ${a} \
             AND h.customer_id = c.id AND h.grp = 'holdout')"
        )
    } else {
        String::new()
    }
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

    /// Counts a segment's members and those left out for missing consent or suppression, in one pass.
    pub async fn sync_exclusions(
        &self,
        segment: &str,
        consent: Consent,
    ) -> Result<Exclusions, StoreError> {
        let sql = format!(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN c.{col} = TRUE THEN 0 ELSE 1 END), 0), \
                    COALESCE(SUM(CASE WHEN c.{col} = TRUE AND {sup} THEN 1 ELSE 0 END), 0) \
             FROM segment_memberships m JOIN customers c ON c.id = m.customer_id WHERE m.segment = $1",
            col = consent.column(),
            sup = suppressed_sql()
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
        consent: Consent,
        after: &str,
        limit: i64,
    ) -> Result<Vec<Candidate>, StoreError> {
        let c = bytewise(self);
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS} \
             FROM segment_memberships m JOIN customers c ON c.id = m.customer_id \
             WHERE m.segment = $1 AND m.customer_id{c} > $2 AND {} ORDER BY m.customer_id{c} LIMIT $3",
            eligible_sql(consent)
        );
        let rows = on_pool!(self, pool => {
            sqlx::query(&sql).bind(segment).bind(after).bind(limit).fetch_all(pool).await?
                .iter()
                .map(candidate_of)
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// The next page (bytewise customer-id order) of the diff's members side: eligible segment members
    /// (minus the sync's holdout) the audience does not hold, or holds prepared from other identifier
    /// values (`remap`: whatever it was prepared from, the connector's mapping having changed). An
    /// unchanged member is skipped by the database: its identifiers are neither read nor hashed.
    #[allow(clippy::too_many_arguments)]
    pub async fn sync_changes(
        &self,
        segment: &str,
        consent: Consent,
        destination: &str,
        audience_name: &str,
        holdout: bool,
        remap: bool,
        after: &str,
        limit: i64,
    ) -> Result<Vec<Changed>, StoreError> {
        let c = bytewise(self);
        let changed = if remap {
            ""
        } else {
            " AND (l.customer_id IS NULL OR l.identity_version IS NULL OR l.identity_version <> c.identity_version)"
        };
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS}, CAST(CASE WHEN l.customer_id IS NULL THEN 0 ELSE 1 END AS BIGINT) \
             FROM segment_memberships m JOIN customers c ON c.id = m.customer_id \
             LEFT JOIN sync_ledger l ON l.destination = $2 AND l.audience_name = $3 AND l.customer_id = m.customer_id \
             WHERE m.segment = $1 AND m.customer_id{c} > $4 AND {}{}{changed} \
             ORDER BY m.customer_id{c} LIMIT $5",
            eligible_sql(consent),
            not_held_out_sql(holdout, 2, 3),
        );
        let rows = on_pool!(self, pool => {
            sqlx::query(&sql).bind(segment).bind(destination).bind(audience_name).bind(after).bind(limit)
                .fetch_all(pool).await?
                .iter()
                .map(|r| -> Result<Changed, sqlx::Error> {
                    let held: i64 = r.try_get(12)?;
                    Ok(Changed { candidate: candidate_of(r)?, held: held != 0 })
                })
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// The next page (bytewise customer-id order) of the diff's ledger side: members the audience holds
    /// who must leave it — in `mirror` mode everyone no longer an eligible member of the segment, in
    /// upsert mode only those who may no longer be sent at all (gone, consent withdrawn, suppressed);
    /// in both, members the sync's holdout now keeps out.
    #[allow(clippy::too_many_arguments)]
    pub async fn sync_departures(
        &self,
        segment: &str,
        consent: Consent,
        destination: &str,
        audience_name: &str,
        holdout: bool,
        mirror: bool,
        after: &str,
        limit: i64,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let c = bytewise(self);
        // `$5` (the segment) exists only in mirror mode: Postgres refuses unused parameters.
        let membership = if mirror {
            " AND EXISTS (SELECT 1 FROM segment_memberships m WHERE m.segment = $5 AND m.customer_id = c.id)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT l.customer_id, l.fingerprint, l.payload, l.identity_version, l.kinds FROM sync_ledger l \
             WHERE l.destination = $1 AND l.audience_name = $2 AND l.customer_id{c} > $3 \
             AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = l.customer_id AND {}{membership}{}) \
             ORDER BY l.customer_id{c} LIMIT $4",
            eligible_sql(consent),
            not_held_out_sql(holdout, 1, 2),
        );
        let rows: Vec<(String, String, String, Option<i64>, i64)> = on_pool!(self, pool => {
            let q = sqlx::query_as(&sql).bind(destination).bind(audience_name).bind(after).bind(limit);
            let q = if mirror { q.bind(segment) } else { q };
            q.fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(full_entry).collect())
    }

    /// The ledger rows of `ids` in this audience (those it holds), keyed by customer id: read only for
    /// changed members, to compare their new payload with the held one.
    pub async fn ledger_entries(
        &self,
        destination: &str,
        audience_name: &str,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, LedgerEntry>, StoreError> {
        let mut out = std::collections::HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(out);
        }
        const HEAD: &str =
            "SELECT customer_id, fingerprint, payload, identity_version, kinds FROM sync_ledger \
             WHERE destination = $1 AND audience_name = $2 AND customer_id ";
        let rows: Vec<(String, String, String, Option<i64>, i64)> = match self.pool() {
            crate::Pool::Sqlite(pool) => {
                let sql = format!("{HEAD}IN (SELECT value FROM json_each($3))");
                sqlx::query_as(&sql)
                    .bind(destination)
                    .bind(audience_name)
                    .bind(json_list(ids)?)
                    .fetch_all(pool)
                    .await?
            }
            crate::Pool::Postgres(pool) => {
                let sql = format!("{HEAD}= ANY($3)");
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
        for row in rows {
            let e = full_entry(row);
            out.insert(e.customer_id.clone(), e);
        }
        Ok(out)
    }

    /// Re-stamps held members with the identity version they were just prepared from, their payload
    /// being unchanged (an identifier column the platform does not take changed, or the ledger predates
    /// versions): nothing is sent, and the next sync skips them.
    pub async fn restamp_ledger(
        &self,
        destination: &str,
        audience_name: &str,
        stamps: &[(String, i64)],
    ) -> Result<(), StoreError> {
        if stamps.is_empty() {
            return Ok(());
        }
        match self.pool() {
            crate::Pool::Sqlite(pool) => {
                const SQL: &str = "UPDATE sync_ledger SET identity_version = s.v \
                     FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS v FROM json_each($3)) AS s \
                     WHERE sync_ledger.destination = $1 AND sync_ledger.audience_name = $2 AND sync_ledger.customer_id = s.id";
                let json = serde_json::to_string(stamps)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query(SQL)
                    .bind(destination)
                    .bind(audience_name)
                    .bind(json)
                    .execute(pool)
                    .await?;
            }
            crate::Pool::Postgres(pool) => {
                const SQL: &str = "UPDATE sync_ledger l SET identity_version = s.v \
                     FROM UNNEST($3::text[], $4::int8[]) AS s(id, v) \
                     WHERE l.destination = $1 AND l.audience_name = $2 AND l.customer_id = s.id";
                let (ids, versions): (Vec<&str>, Vec<i64>) =
                    stamps.iter().map(|(id, v)| (id.as_str(), *v)).unzip();
                self.bounded(async {
                    Ok::<_, StoreError>(
                        sqlx::query(SQL)
                            .bind(destination)
                            .bind(audience_name)
                            .bind(&ids)
                            .bind(&versions)
                            .execute(pool)
                            .await?,
                    )
                })
                .await?;
            }
        }
        Ok(())
    }

    /// How many members the audience holds with an email, a phone and an address (the run's
    /// `identifiers` counts), from the ledger's kinds: no payload is read.
    pub async fn held_kinds(
        &self,
        destination: &str,
        audience_name: &str,
    ) -> Result<(i64, i64, i64), StoreError> {
        const SQL: &str = "SELECT CAST(COALESCE(SUM(kinds & 1), 0) AS BIGINT), CAST(COALESCE(SUM((kinds & 2) / 2), 0) AS BIGINT), \
             CAST(COALESCE(SUM((kinds & 4) / 4), 0) AS BIGINT) FROM sync_ledger WHERE destination = $1 AND audience_name = $2";
        let row: (i64, i64, i64) = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(destination).bind(audience_name).fetch_one(pool).await?);
        Ok(row)
    }

    /// Records the connector mapping version the whole audience was just prepared with (after a sync
    /// went through every member without error).
    pub async fn set_audience_mapping(
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
            "SELECT customer_id, fingerprint, payload FROM sync_ledger \
             WHERE destination = $1 AND audience_name = $2 AND customer_id{c} > $3 \
             ORDER BY customer_id{c} LIMIT $4"
        );
        let rows: Vec<(String, String, String)> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(destination).bind(audience_name).bind(after).bind(limit).fetch_all(pool).await?);
        Ok(entries(rows))
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
        const REJECT: &str = "INSERT INTO sync_rejections (run_id, destination, audience_name, customer_id, action, reason, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)";
        // One statement per batch for the additions and one for the removals, each reading the whole
        // batch from bound arrays (SQLite: one JSON text through `json_each`; Postgres: `UNNEST`).
        const ADD_SQLITE: &str = "INSERT INTO sync_ledger (destination, audience_name, synced_at, run_id, customer_id, fingerprint, payload, identity_version, kinds) \
             SELECT $1, $2, $3, $4, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]'), \
             json_extract(j.value, '$[3]'), json_extract(j.value, '$[4]') FROM json_each($5) j WHERE true";
        const ADD_POSTGRES: &str = "INSERT INTO sync_ledger (destination, audience_name, synced_at, run_id, customer_id, fingerprint, payload, identity_version, kinds) \
             SELECT $1, $2, $3, $4, a.id, a.fp, a.payload, a.v, a.k FROM UNNEST($5::text[], $6::text[], $7::text[], $8::int8[], $9::int8[]) AS a(id, fp, payload, v, k)";
        const ADD_TAIL: &str = " ON CONFLICT (destination, audience_name, customer_id) DO UPDATE SET \
             fingerprint = excluded.fingerprint, payload = excluded.payload, synced_at = excluded.synced_at, run_id = excluded.run_id, \
             identity_version = excluded.identity_version, kinds = excluded.kinds";
        const REMOVE_HEAD: &str = "DELETE FROM sync_ledger WHERE destination = $1 AND audience_name = $2 AND customer_id ";
        // The rejections and the job row, the same statements on either backend's transaction.
        macro_rules! finish {
            ($tx:ident) => {
                for (id, action, reason) in rejected {
                    sqlx::query(REJECT)
                        .bind(run_id)
                        .bind(destination)
                        .bind(audience_name)
                        .bind(id)
                        .bind(action)
                        .bind(reason)
                        .bind(now)
                        .execute(&mut *$tx)
                        .await?;
                }
                if let Some(job) = job_id {
                    sqlx::query(crate::remote_jobs::DELETE_JOB)
                        .bind(destination)
                        .bind(audience_name)
                        .bind(job)
                        .execute(&mut *$tx)
                        .await?;
                }
            };
        }
        match self.pool() {
            crate::Pool::Sqlite(pool) => {
                let mut tx = pool.begin_with(self.begin_write_sql()).await?;
                if !added.is_empty() {
                    let rows: Vec<(&str, &str, &str, Option<i64>, i64)> = added
                        .iter()
                        .map(|m| {
                            (
                                m.customer_id.as_str(),
                                m.fingerprint.as_str(),
                                m.payload.as_str(),
                                m.identity_version,
                                m.kinds,
                            )
                        })
                        .collect();
                    let json = serde_json::to_string(&rows)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    sqlx::query(&format!("{ADD_SQLITE}{ADD_TAIL}"))
                        .bind(destination)
                        .bind(audience_name)
                        .bind(now)
                        .bind(run_id)
                        .bind(json)
                        .execute(&mut *tx)
                        .await?;
                }
                if !removed.is_empty() {
                    sqlx::query(&format!(
                        "{REMOVE_HEAD}IN (SELECT value FROM json_each($3))"
                    ))
                    .bind(destination)
                    .bind(audience_name)
                    .bind(json_list(removed)?)
                    .execute(&mut *tx)
                    .await?;
                }
                finish!(tx);
                tx.commit().await?
            }
            crate::Pool::Postgres(pool) => {
                self.bounded(async {
                    let mut tx = pool.begin_with(self.begin_write_sql()).await?;
                    if !added.is_empty() {
                        let ids: Vec<&str> = added.iter().map(|m| m.customer_id.as_str()).collect();
                        let fps: Vec<&str> = added.iter().map(|m| m.fingerprint.as_str()).collect();
                        let payloads: Vec<&str> =
                            added.iter().map(|m| m.payload.as_str()).collect();
                        let versions: Vec<Option<i64>> =
                            added.iter().map(|m| m.identity_version).collect();
                        let kinds: Vec<i64> = added.iter().map(|m| m.kinds).collect();
                        sqlx::query(&format!("{ADD_POSTGRES}{ADD_TAIL}"))
                            .bind(destination)
                            .bind(audience_name)
                            .bind(now)
                            .bind(run_id)
                            .bind(&ids)
                            .bind(&fps)
                            .bind(&payloads)
                            .bind(&versions)
                            .bind(&kinds)
                            .execute(&mut *tx)
                            .await?;
                    }
                    if !removed.is_empty() {
                        sqlx::query(&format!("{REMOVE_HEAD}= ANY($3)"))
                            .bind(destination)
                            .bind(audience_name)
                            .bind(removed)
                            .execute(&mut *tx)
                            .await?;
                    }
                    finish!(tx);
                    tx.commit().await?;
                    Ok::<_, StoreError>(())
                })
                .await?
            }
        }
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
