//! Remote jobs in flight (issue 12 item 9): a batch a platform took as an asynchronous job (Google
//! offline user data job, SendGrid or Klaviyo import) is stored here, job id and rows, before campaignd
//! waits for it. A restarted process finds it and polls the same job instead of sending the batch
//! again; [`Store::acknowledge_job`](crate::Store::acknowledge_job) deletes it in the transaction that
//! advances the ledger, [`Store::clear_remote_job`] when the job failed and the batch is to be resent.

use crate::bind::on_pool;
use crate::ledger::{entries, rows_per_statement, values_rows, LedgerEntry};
use crate::{Store, StoreError};

/// Deletes one job; its members go with it (`ON DELETE CASCADE`).
pub(crate) const DELETE_JOB: &str =
    "DELETE FROM remote_jobs WHERE destination = $1 AND audience_name = $2 AND job_id = $3";

/// One batch submitted as a remote job and not yet settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJob {
    /// The platform's job id.
    pub job_id: String,
    /// `add` or `remove`: what the batch asks of the audience.
    pub action: String,
    /// Run that submitted it.
    pub run_id: i64,
    /// Unix seconds of submission.
    pub submitted_at: i64,
    /// The rows in the job, exactly as sent: what the ledger records once the job succeeds.
    pub members: Vec<LedgerEntry>,
}

impl Store {
    /// Stores a submitted job with its rows, in one transaction, before anyone waits for it.
    pub async fn save_remote_job(
        &self,
        destination: &str,
        audience_name: &str,
        job: &RemoteJob,
    ) -> Result<(), StoreError> {
        const JOB: &str = "INSERT INTO remote_jobs (destination, audience_name, job_id, action, run_id, submitted_at) \
             VALUES ($1, $2, $3, $4, $5, $6)";
        const MEMBERS_HEAD: &str = "INSERT INTO remote_job_members (destination, audience_name, job_id, customer_id, fingerprint, payload) VALUES ";
        let chunk_rows = rows_per_statement(self);
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(JOB).bind(destination).bind(audience_name).bind(&job.job_id).bind(&job.action)
                .bind(job.run_id).bind(job.submitted_at)
                .execute(&mut *tx).await?;
            for chunk in job.members.chunks(chunk_rows) {
                let sql = format!("{MEMBERS_HEAD}{}", values_rows(chunk.len(), 3, 3));
                let mut q = sqlx::query(&sql).bind(destination).bind(audience_name).bind(&job.job_id);
                for m in chunk {
                    q = q.bind(&m.customer_id).bind(&m.fingerprint).bind(&m.payload);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?
        });
        Ok(())
    }

    /// The audience's unsettled jobs, oldest first, each with its rows.
    pub async fn remote_jobs(
        &self,
        destination: &str,
        audience_name: &str,
    ) -> Result<Vec<RemoteJob>, StoreError> {
        const JOBS: &str = "SELECT job_id, action, run_id, submitted_at FROM remote_jobs \
             WHERE destination = $1 AND audience_name = $2 ORDER BY submitted_at, job_id";
        const MEMBERS: &str = "SELECT customer_id, fingerprint, payload FROM remote_job_members \
             WHERE destination = $1 AND audience_name = $2 AND job_id = $3 ORDER BY customer_id";
        let jobs: Vec<(String, String, i64, i64)> = on_pool!(self, pool => sqlx::query_as(JOBS)
            .bind(destination).bind(audience_name).fetch_all(pool).await?);
        let mut out = Vec::with_capacity(jobs.len());
        for (job_id, action, run_id, submitted_at) in jobs {
            let rows: Vec<(String, String, String)> = on_pool!(self, pool => sqlx::query_as(MEMBERS)
                .bind(destination).bind(audience_name).bind(&job_id).fetch_all(pool).await?);
            out.push(RemoteJob {
                job_id,
                action,
                run_id,
                submitted_at,
                members: entries(rows),
            });
        }
        Ok(out)
    }

    /// Forgets a job that failed on the platform: its rows are not in the ledger, so the next merge
    /// sends them again.
    pub async fn clear_remote_job(
        &self,
        destination: &str,
        audience_name: &str,
        job_id: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(DELETE_JOB).bind(destination).bind(audience_name).bind(job_id)
            .execute(pool).await.map(|_| ())?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Acknowledged;

    fn entry(id: &str) -> LedgerEntry {
        LedgerEntry {
            customer_id: id.into(),
            fingerprint: format!("fp-{id}"),
            payload: format!("{{\"id\":\"{id}\"}}"),
            identity_version: None,
            kinds: None,
        }
    }

    async fn round_trip(store: &Store) {
        let job = RemoteJob {
            job_id: "customers/1/offlineUserDataJobs/7".into(),
            action: "add".into(),
            run_id: 3,
            submitted_at: 100,
            members: (0..70).map(|i| entry(&format!("c{i:03}"))).collect(),
        };
        store.save_remote_job("g", "aud", &job).await.unwrap();
        let other = RemoteJob {
            job_id: "j2".into(),
            members: vec![entry("z")],
            submitted_at: 101,
            ..job.clone()
        };
        store.save_remote_job("g", "aud", &other).await.unwrap();
        assert_eq!(
            store.remote_jobs("g", "aud").await.unwrap(),
            vec![job.clone(), other.clone()]
        );
        assert!(store.remote_jobs("g", "other").await.unwrap().is_empty());

        // Acknowledging the job advances the ledger and deletes the job (and its rows) together.
        let batch = Acknowledged {
            added: &job.members[..69],
            removed: &[],
            rejected: &[("c069".into(), "add".into(), "bad row".into())],
        };
        store
            .acknowledge_job("g", "aud", &job.job_id, 3, 200, &batch)
            .await
            .unwrap();
        assert_eq!(
            store.remote_jobs("g", "aud").await.unwrap(),
            vec![other.clone()]
        );
        assert_eq!(
            store.ledger_page("g", "aud", "", 1000).await.unwrap().len(),
            69
        );
        assert_eq!(store.run_rejections(3).await.unwrap().len(), 1);

        store.clear_remote_job("g", "aud", "j2").await.unwrap();
        assert!(store.remote_jobs("g", "aud").await.unwrap().is_empty());
        // The same job id may be stored again after it was cleared (no member rows left behind).
        store.save_remote_job("g", "aud", &other).await.unwrap();
        assert_eq!(store.remote_jobs("g", "aud").await.unwrap(), vec![other]);
    }

    #[tokio::test]
    async fn jobs_round_trip_and_settle_with_the_ledger_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::testkit::fresh_sqlite_store(dir.path())
            .await
            .unwrap();
        round_trip(&store).await;
    }

    #[tokio::test]
    async fn jobs_round_trip_and_settle_with_the_ledger_postgres() {
        let Some(store) = crate::testkit::fresh_pg_store().await.unwrap() else {
            eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
            return;
        };
        round_trip(&store).await;
    }
}
