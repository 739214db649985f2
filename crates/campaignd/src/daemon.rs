//! `campaignd run`: the daemon. Checks the configuration (crons, destinations, the admin bind and
//! token) before touching anything, fills an empty store with a demo shop when asked to, starts the
//! scheduler and the admin server, and on SIGTERM/SIGINT stops scheduling, lets the batch in flight
//! finish and be recorded, releases its leases and exits 0 (1 when jobs outlived the grace period).

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use chrono::{Duration as ChronoDuration, Utc};

use campaignd_connectors::SecretResolver;
use campaignd_engine::lease::Leases;
use campaignd_engine::platforms::{build_platforms, Platforms};
use campaignd_engine::recompute::recompute;
use campaignd_engine::scheduler::{plan_jobs, Scheduler, SchedulerContext};
use campaignd_engine::shutdown::Shutdown;
use campaignd_engine::Settings;
use campaignd_store::holder::Holder;
use campaignd_store::Store;

use crate::admin::{self, AdminState};
use crate::context::{close_abandoned_runs, open_store};
use crate::Failure;

/// Customers in the demo shop generated into an empty store.
const DEMO_CUSTOMERS: u64 = 5_000;
/// Days of back-dated recomputes that give the demo's size charts a history.
const DEMO_HISTORY_DAYS: i64 = 6;

/// Runs the daemon until a signal.
pub async fn run(settings: Settings, secrets: &SecretResolver) -> Result<(), Failure> {
    let plans = plan_jobs(&settings).map_err(Failure::usage)?;
    let admin_cfg = admin::prepare(&settings.admin, secrets).map_err(Failure::usage)?;
    // One instance per destination: jobs hitting the same platform share its client and rate limit.
    let Platforms {
        destinations,
        swappers,
        metrics: metrics_sources,
    } = build_platforms(&settings, secrets).map_err(Failure::usage)?;
    let store = open_store(&settings).await?;
    // Never on Postgres: a shop pointing the default config at its (still empty) production database
    // must not find synthetic customers in it.
    if settings.schedule.demo_if_empty
        && store.dialect() == campaignd_store::Dialect::Sqlite
        && store.has_no_customers().await.map_err(Failure::job)?
    {
        seed_demo(&store, &settings).await?;
    }

    let holder = holder_id();
    let settings = Arc::new(settings);
    let destinations = Arc::new(destinations);
    let shutdown = Shutdown::new();
    let leases = Leases::new(
        store.clone(),
        holder.clone(),
        Duration::from_secs(settings.schedule.lease_secs.max(1)),
    );
    let grace = Duration::from_secs(settings.schedule.shutdown_grace_secs);
    sweep_abandoned_runs(
        store.clone(),
        Duration::from_secs(settings.store.heartbeat_secs.max(1)),
        shutdown.clone(),
    );
    let scheduler = Scheduler::start(
        SchedulerContext {
            store: store.clone(),
            settings: settings.clone(),
            destinations: destinations.clone(),
            swappers: Arc::new(swappers),
            metrics_sources: Arc::new(metrics_sources),
            leases,
            shutdown: shutdown.clone(),
        },
        plans,
        settings.schedule.run_on_start,
    )
    .await
    .map_err(Failure::job)?;

    let server = if settings.admin.enabled {
        let state = AdminState {
            store: store.clone(),
            stats: scheduler.stats(),
            destinations: destinations.clone(),
            jobs: scheduler.job_table(),
            holder: holder.clone(),
            started_at: Utc::now(),
            token: admin_cfg.token.map(Arc::new),
            settings: settings.clone(),
        };
        match admin::serve(admin_cfg.addr, state, admin_cfg.limits).await {
            Ok(server) => Some(server),
            Err(e) => {
                scheduler.stop(grace).await;
                store.close().await;
                return Err(Failure::usage(e));
            }
        }
    } else {
        None
    };
    match &server {
        Some(s) => {
            tracing::info!(addr = %s.addr, holder = %holder, "campaignd running; admin page at http://{}/", s.addr);
            println!(
                "campaignd running (replica {holder}); report page: http://{}/",
                s.addr
            );
        }
        None => {
            tracing::info!(holder = %holder, "campaignd running; admin server disabled");
            println!("campaignd running (replica {holder}); admin server disabled");
        }
    }

    let signal = wait_for_signal().await;
    tracing::info!(
        signal,
        grace_secs = grace.as_secs(),
        "shutting down: no new ticks; waiting for the batch in flight"
    );
    shutdown.request();
    let clean = scheduler.stop(grace).await;
    if let Some(server) = server {
        server.stop().await;
    }
    store.close().await;
    if clean {
        tracing::info!("stopped cleanly");
        Ok(())
    } else {
        Err(Failure::job(anyhow!(
            "jobs were still running after {}s ([schedule] shutdown_grace_secs): exiting anyway; the next run resumes from the ledger",
            grace.as_secs()
        )))
    }
}

/// Waits for SIGTERM or SIGINT and names it.
async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = tokio::signal::ctrl_c() => "SIGINT",
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the daemon");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// A replica id unique per process (`host:pid:start:nonce`, see [`Holder`]): the same id its runs
/// record, so a restarted daemon can prove a lease's holder dead and take the lease over.
fn holder_id() -> String {
    Holder::current().id()
}

/// Every `[store] heartbeat_secs`, closes the runs of dead processes (other replicas killed, runs whose
/// end could not be recorded) as `abandoned`, until the daemon stops.
fn sweep_abandoned_runs(store: Store, every: Duration, shutdown: Shutdown) {
    tokio::spawn(async move {
        let mut last = tokio::time::Instant::now();
        while !shutdown.requested() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if last.elapsed() >= every {
                last = tokio::time::Instant::now();
                close_abandoned_runs(&store).await;
            }
        }
    });
}

/// Generates the demo shop and a few days of back-dated recomputes, so the report page has history to
/// draw on a fresh machine.
async fn seed_demo(store: &Store, settings: &Settings) -> Result<(), Failure> {
    let now = Utc::now();
    tracing::info!(
        customers = DEMO_CUSTOMERS,
        "the store is empty and [schedule] demo_if_empty is on: generating a demo shop"
    );
    println!("empty store: generating a demo shop of {DEMO_CUSTOMERS} customers ([schedule] demo_if_empty)");
    let load = store
        .load_synthetic(DEMO_CUSTOMERS, 42, now)
        .await
        .map_err(Failure::job)?;
    tracing::info!(
        customers = load.customers,
        orders = load.orders,
        events = load.events,
        "demo shop loaded"
    );
    for days in (1..=DEMO_HISTORY_DAYS).rev() {
        let as_of = now - ChronoDuration::days(days);
        recompute(store, settings, as_of, None)
            .await
            .map_err(|e| Failure::job(anyhow!("demo history: {e}")))?;
    }
    Ok(())
}
