//! Leader leases: several `campaignd run` replicas share one database, and for each scheduled job the
//! replica holding that job's lease runs it. A lease is a row per job with the holder's id and an expiry
//! in the database's own clock (so replicas' clocks need not agree); it is taken or renewed by one
//! conditional UPSERT, which the database serialises, so two replicas can never both win. A dead
//! leader stops renewing and its lease lapses after the configured time; the next replica to tick takes
//! over.
//!
//! Each claim also names the cron slot (`tick`) it is for, and a claim only succeeds for a slot later
//! than the last one claimed: a replica whose scheduler fires late cannot run a tick a second time.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::bind::on_pool;
use crate::holder::Holder;
use crate::runs::to_time;
use crate::{Pool, Store, StoreError};

/// One job's lease, for the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseRecord {
    /// The scheduled job's name.
    pub job: String,
    /// The replica holding (or last holding) it.
    pub holder: String,
    /// When it lapses unless renewed.
    pub expires_at: DateTime<Utc>,
    /// The cron slot last claimed.
    pub last_tick: DateTime<Utc>,
    /// When the current holder first took it.
    pub acquired_at: DateTime<Utc>,
}

/// One claimed tick: which replica ran which cron slot of which job.
#[derive(Debug, Clone, Serialize)]
pub struct TickRecord {
    /// The scheduled job's name.
    pub job: String,
    /// The cron slot, unix seconds.
    pub tick: i64,
    /// The replica that claimed it.
    pub holder: String,
    /// When it was claimed.
    pub claimed_at: DateTime<Utc>,
}

/// "Now" in unix seconds, evaluated by the database so every replica uses the same clock.
pub(crate) fn now_sql(pool: &Pool) -> &'static str {
    match pool {
        Pool::Sqlite(_) => "CAST(strftime('%s','now') AS INTEGER)",
        Pool::Postgres(_) => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS BIGINT)",
    }
}

impl Store {
    /// Claims `tick` of `job` for `holder` for `ttl_secs`: succeeds when nobody holds the lease, the
    /// lease has lapsed, or `holder` already holds it — and `tick` is later than the last tick claimed.
    /// Returns whether this replica should run the tick. A successful claim is logged in `job_ticks`.
    pub async fn claim_lease(
        &self,
        job: &str,
        holder: &str,
        tick: i64,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        let now = now_sql(self.pool());
        let sql = format!(
            "INSERT INTO leases (job, holder, expires_at, last_tick, acquired_at) \
             VALUES ($1, $2, {now} + $3, $4, {now}) \
             ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, \
             last_tick = excluded.last_tick, \
             acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END \
             WHERE (leases.holder = excluded.holder OR leases.expires_at <= {now}) \
             AND leases.last_tick < excluded.last_tick \
             RETURNING holder"
        );
        let log = format!(
            "INSERT INTO job_ticks (job, tick, holder, claimed_at) VALUES ($1, $2, $3, {now})"
        );
        let won = on_pool!(self, pool => {
            let row: Option<String> = sqlx::query_scalar(&sql)
                .bind(job)
                .bind(holder)
                .bind(ttl_secs)
                .bind(tick)
                .fetch_optional(pool)
                .await?;
            let won = row.as_deref() == Some(holder);
            if won {
                sqlx::query(&log).bind(job).bind(tick).bind(holder).execute(pool).await?;
            }
            won
        });
        Ok(won)
    }

    /// Extends `holder`'s lease on `job` by `ttl_secs` from now; false when it is no longer held (it
    /// lapsed and another replica took it), in which case the job should stop at its next batch.
    pub async fn renew_lease(
        &self,
        job: &str,
        holder: &str,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        let now = now_sql(self.pool());
        let sql = format!(
            "UPDATE leases SET expires_at = {now} + $1 WHERE job = $2 AND holder = $3 AND expires_at > {now}"
        );
        let n = on_pool!(self, pool => sqlx::query(&sql)
            .bind(ttl_secs)
            .bind(job)
            .bind(holder)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Lets every lease `holder` holds lapse now, so another replica can take over at its next tick
    /// instead of waiting for the expiry (a graceful shutdown).
    pub async fn release_leases(&self, holder: &str) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE leases SET expires_at = 0 WHERE holder = $1";
        let n = on_pool!(self, pool => sqlx::query(SQL)
            .bind(holder)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n)
    }

    /// Lets lapse now every live lease whose holder is provably dead — a process on this host whose pid
    /// is gone ([`Holder::is_provably_dead`]) — so a restarted daemon takes over at once instead of
    /// waiting out the dead process's lease. Returns the leases it released. The release is conditional
    /// on the holder being unchanged, so it never takes a lease from a live replica that claimed it since.
    pub async fn release_dead_leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        let now = now_sql(self.pool());
        let release =
            format!("UPDATE leases SET expires_at = 0 WHERE job = $1 AND holder = $2 AND expires_at > {now}");
        let mut released = Vec::new();
        for lease in self.live_leases().await? {
            let dead = Holder::parse(&lease.holder).is_some_and(|h| h.is_provably_dead());
            if !dead {
                continue;
            }
            let n = on_pool!(self, pool => sqlx::query(&release)
                .bind(lease.job.as_str())
                .bind(lease.holder.as_str())
                .execute(pool)
                .await?
                .rows_affected());
            if n == 1 {
                released.push(lease);
            }
        }
        Ok(released)
    }

    /// The leases that have not lapsed yet.
    async fn live_leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        let now = now_sql(self.pool());
        let sql = format!(
            "SELECT job, holder, expires_at, last_tick, acquired_at FROM leases WHERE expires_at > {now} ORDER BY job"
        );
        self.lease_rows(&sql).await
    }

    /// Every job's lease, by job name.
    pub async fn leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        self.lease_rows(
            "SELECT job, holder, expires_at, last_tick, acquired_at FROM leases ORDER BY job",
        )
        .await
    }

    async fn lease_rows(&self, sql: &str) -> Result<Vec<LeaseRecord>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query(sql).fetch_all(pool).await?.iter().map(|r| -> Result<LeaseRecord, sqlx::Error> {
                Ok(LeaseRecord {
                    job: r.try_get("job")?,
                    holder: r.try_get("holder")?,
                    expires_at: to_time("expires_at", r.try_get("expires_at")?)?,
                    last_tick: to_time("last_tick", r.try_get("last_tick")?)?,
                    acquired_at: to_time("acquired_at", r.try_get("acquired_at")?)?,
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// The claimed ticks of `job` (all jobs when `None`), oldest first, at most `limit`.
    pub async fn claimed_ticks(
        &self,
        job: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TickRecord>, StoreError> {
        const SQL: &str = "SELECT job, tick, holder, claimed_at FROM job_ticks \
             WHERE ($1 IS NULL OR job = $1) ORDER BY tick, job LIMIT $2";
        let rows = on_pool!(self, pool => {
            sqlx::query(SQL).bind(job).bind(limit).fetch_all(pool).await?.iter().map(|r| -> Result<TickRecord, sqlx::Error> {
                Ok(TickRecord {
                    job: r.try_get("job")?,
                    tick: r.try_get("tick")?,
                    holder: r.try_get("holder")?,
                    claimed_at: to_time("claimed_at", r.try_get("claimed_at")?)?,
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use crate::holder::Holder;
    use crate::testkit::{every_backend, fresh_pg_store};
    use crate::Store;

    async fn lease_rules(store: &Store) {
        assert!(store.claim_lease("j", "a", 100, 60).await.unwrap());
        // Same tick again, by anyone: refused.
        assert!(!store.claim_lease("j", "a", 100, 60).await.unwrap());
        assert!(!store.claim_lease("j", "b", 100, 60).await.unwrap());
        // A later tick: the holder wins, another replica does not while the lease is live.
        assert!(!store.claim_lease("j", "b", 101, 60).await.unwrap());
        assert!(store.claim_lease("j", "a", 101, 60).await.unwrap());
        assert!(store.renew_lease("j", "a", 60).await.unwrap());
        assert!(!store.renew_lease("j", "b", 60).await.unwrap());
        // Released (or lapsed): the other replica takes over, and the old holder has lost it.
        assert_eq!(store.release_leases("a").await.unwrap(), 1);
        assert!(store.claim_lease("j", "b", 102, 60).await.unwrap());
        assert!(!store.claim_lease("j", "a", 103, 60).await.unwrap());
        assert!(!store.renew_lease("j", "a", 60).await.unwrap());
        // Leases are per job.
        assert!(store.claim_lease("k", "a", 102, 60).await.unwrap());
        // A zero ttl lapses at once.
        assert!(store.claim_lease("z", "a", 1, 0).await.unwrap());
        assert!(store.claim_lease("z", "b", 2, 0).await.unwrap());
        let ticks = store.claimed_ticks(Some("j"), 100).await.unwrap();
        let got: Vec<(i64, &str)> = ticks.iter().map(|t| (t.tick, t.holder.as_str())).collect();
        assert_eq!(got, vec![(100, "a"), (101, "a"), (102, "b")]);
        let leases = store.leases().await.unwrap();
        assert_eq!(leases.len(), 3);
        assert_eq!(leases[0].holder, "b");
    }

    /// A lease held by a dead process of this host is released; a live or remote holder's is not.
    async fn dead_holders_lose_their_leases(store: &Store) {
        let me = Holder::current();
        if me.start == 0 {
            eprintln!("no /proc: a local pid cannot be proven dead");
            return;
        }
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = Holder {
            pid: child.id(),
            ..me.clone()
        };
        child.wait().unwrap();
        let remote = Holder {
            host: format!("{}-elsewhere", me.host),
            ..dead.clone()
        };
        assert!(store
            .claim_lease("dead", &dead.id(), 1, 3600)
            .await
            .unwrap());
        assert!(store
            .claim_lease("remote", &remote.id(), 1, 3600)
            .await
            .unwrap());
        assert!(store.claim_lease("mine", &me.id(), 1, 3600).await.unwrap());
        // Without the release, the dead process's lease blocks the restarted one for an hour.
        assert!(!store.claim_lease("dead", &me.id(), 2, 3600).await.unwrap());
        let released = store.release_dead_leases().await.unwrap();
        let jobs: Vec<&str> = released.iter().map(|l| l.job.as_str()).collect();
        assert_eq!(jobs, ["dead"]);
        assert!(store.claim_lease("dead", &me.id(), 2, 3600).await.unwrap());
        assert!(!store
            .claim_lease("remote", &me.id(), 2, 3600)
            .await
            .unwrap());
        assert!(store.release_dead_leases().await.unwrap().is_empty());
    }

    /// On every backend the run has (Postgres with `CAMPAIGND_TEST_PG_URL`).
    #[tokio::test]
    async fn dead_holders_lose_their_leases_on_every_backend() {
        let dir = tempfile::tempdir().unwrap();
        for (_, store) in every_backend(dir.path()).await {
            dead_holders_lose_their_leases(&store).await;
        }
    }

    /// On every backend the run has (Postgres with `CAMPAIGND_TEST_PG_URL`).
    #[tokio::test]
    async fn lease_rules_on_every_backend() {
        let dir = tempfile::tempdir().unwrap();
        for (_, store) in every_backend(dir.path()).await {
            lease_rules(&store).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_claims_have_one_winner_postgres() {
        let Some(store) = fresh_pg_store().await.unwrap() else {
            eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
            return;
        };
        for tick in 1..=20 {
            let mut tasks = Vec::new();
            for h in 0..6 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    // ttl 0: the lease is always lapsed, so only the tick condition arbitrates.
                    store
                        .claim_lease("race", &format!("h{h}"), tick, 0)
                        .await
                        .unwrap()
                }));
            }
            let mut winners = 0;
            for t in tasks {
                winners += usize::from(t.await.unwrap());
            }
            assert_eq!(winners, 1, "tick {tick}");
        }
    }
}
