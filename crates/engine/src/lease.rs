//! Leadership of scheduled jobs across replicas, on top of the store's leases
//! ([`campaignd_store::lease`]).
//!
//! Before running a tick, a replica claims it ([`Leases::claim`]); while the job runs, a heartbeat
//! ([`Leases::hold`]) renews the lease every third of its lifetime so a long sync keeps its leadership,
//! and forwards a process shutdown — or the loss of the lease (say the database was unreachable long
//! enough for another replica to take over) — to the job's own [`Shutdown`], so the job stops at its
//! next batch boundary instead of racing the new leader.

use std::sync::Arc;
use std::time::Duration;

use campaignd_store::{Store, StoreError};

use crate::shutdown::Shutdown;

/// How often the heartbeat looks at the process-wide shutdown flag.
const POLL: Duration = Duration::from_millis(100);

/// This replica's identity and lease length, shared by every job.
#[derive(Debug, Clone)]
pub struct Leases {
    store: Store,
    holder: Arc<str>,
    ttl: Duration,
}

impl Leases {
    /// `holder` must be unique per process (host, pid and a random part); `ttl` is `[schedule]
    /// lease_secs`.
    pub fn new(store: Store, holder: impl Into<Arc<str>>, ttl: Duration) -> Self {
        Leases {
            store,
            holder: holder.into(),
            ttl,
        }
    }

    /// This replica's holder id, as written in the lease table.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn ttl_secs(&self) -> i64 {
        i64::try_from(self.ttl.as_secs())
            .unwrap_or(i64::MAX / 2)
            .max(1)
    }

    /// Claims cron slot `tick` (unix seconds) of `job`: true when this replica must run it. A lease
    /// still held by a provably dead process of this host (this daemon before a `kill -9` or a crash) is
    /// taken over at once rather than waited out, so a restarted daemon does its start-up work now.
    pub async fn claim(&self, job: &str, tick: i64) -> Result<bool, StoreError> {
        let ttl = self.ttl_secs();
        if self.store.claim_lease(job, &self.holder, tick, ttl).await? {
            return Ok(true);
        }
        let released = self.store.release_dead_leases().await?;
        if released.is_empty() {
            return Ok(false);
        }
        for lease in &released {
            tracing::info!(job = %lease.job, dead_holder = %lease.holder, "lease of a dead process on this host released for takeover");
        }
        self.store.claim_lease(job, &self.holder, tick, ttl).await
    }

    /// Keeps `job`'s lease alive until the returned guard is dropped, and returns the shutdown flag the
    /// job must watch: raised when `process` is, or when the lease is lost.
    pub fn hold(&self, job: &str, process: &Shutdown) -> (Shutdown, HeartbeatGuard) {
        let job_stop = Shutdown::new();
        let (leases, job_name, process, flag) = (
            self.clone(),
            job.to_string(),
            process.clone(),
            job_stop.clone(),
        );
        let every = (self.ttl / 3).max(Duration::from_millis(200));
        let task = tokio::spawn(async move {
            let mut last = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(POLL).await;
                if process.requested() {
                    flag.request();
                }
                if last.elapsed() < every {
                    continue;
                }
                last = tokio::time::Instant::now();
                match leases
                    .store
                    .renew_lease(&job_name, &leases.holder, leases.ttl_secs())
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(job = %job_name, "lease lost to another replica: stopping at the next batch");
                        flag.request();
                    }
                    Err(e) => {
                        tracing::warn!(job = %job_name, error = %e, "cannot renew the lease; will retry");
                    }
                }
            }
        });
        (job_stop, HeartbeatGuard(task))
    }

    /// Lets this replica's leases lapse now so another replica can take over at its next tick.
    pub async fn release_all(&self) -> Result<u64, StoreError> {
        self.store.release_leases(&self.holder).await
    }
}

/// Stops the heartbeat when dropped (when the job ends, however it ends).
#[derive(Debug)]
pub struct HeartbeatGuard(tokio::task::JoinHandle<()>);

impl Drop for HeartbeatGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
