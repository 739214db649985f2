//! Test support shared by this crate's tests and the end-to-end tests: fresh, isolated stores on both
//! backends. Postgres tests run only when `CAMPAIGND_TEST_PG_URL` is set; each gets a database of its own
//! so tests never see each other's rows.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Store, StoreError};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The Postgres server tests may use, if any.
pub fn pg_url() -> Option<String> {
    std::env::var("CAMPAIGND_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Creates an empty database on the test server and returns its URL, or `None` without a server.
pub async fn fresh_pg_database() -> Result<Option<String>, StoreError> {
    let Some(base) = pg_url() else {
        return Ok(None);
    };
    let name = format!(
        "campaignd_t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        chrono::Utc::now().timestamp_subsec_nanos()
    );
    let admin = Store::connect(&base).await?;
    if let crate::Pool::Postgres(pool) = admin.pool() {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(pool)
            .await?;
    }
    admin.close().await;
    let url = match base.rfind('/') {
        Some(slash)
            if base[..slash].contains("://") && slash > base.find("://").unwrap_or(0) + 2 =>
        {
            let rest = &base[slash + 1..];
            let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
            format!("{}/{}{}", &base[..slash], name, query)
        }
        _ => format!("{base}/{name}"),
    };
    Ok(Some(url))
}

/// A migrated store in a fresh Postgres database, or `None` when no test server is configured.
pub async fn fresh_pg_store() -> Result<Option<Store>, StoreError> {
    match fresh_pg_database().await? {
        Some(url) => {
            let store = Store::connect(&url).await?;
            store.migrate().await?;
            Ok(Some(store))
        }
        None => Ok(None),
    }
}

/// A migrated SQLite store in a file under `dir`.
pub async fn fresh_sqlite_store(dir: &std::path::Path) -> Result<Store, StoreError> {
    let url = format!("sqlite://{}", dir.join("campaignd.db").display());
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    Ok(store)
}

/// A migrated store on every backend the test run has: SQLite under `dir` always, Postgres when
/// `CAMPAIGND_TEST_PG_URL` is set, each named for the test's messages, so a test runs the same
/// assertions on both. Panics on a store that cannot be created: only tests call it.
pub async fn every_backend(dir: &std::path::Path) -> Vec<(&'static str, Store)> {
    let mut out = vec![(
        "sqlite",
        fresh_sqlite_store(dir).await.expect("sqlite store"),
    )];
    if let Some(pg) = fresh_pg_store().await.expect("postgres store") {
        out.push(("postgres", pg));
    }
    out
}
