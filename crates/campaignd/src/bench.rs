//! `campaignd bench recompute`: figures, not assertions. Generates a shop, then for every template
//! times campaignd's recompute (first run, which writes every membership, and a steady-state rerun)
//! against the very same compiled SQL streamed straight through sqlx, and reports peak memory.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use futures::TryStreamExt;

use campaignd_core::rules::{compile_segment, parse_rule, templates, SqlParam};
use campaignd_engine::Settings;
use campaignd_store::segments::{SegmentPlan, SegmentQuery};
use campaignd_store::{Pool, Store};

/// Peak resident set size of this process in MiB (Linux), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Streams the compiled query's rows through sqlx and counts them: the floor campaignd is compared to.
async fn raw_sql_count(store: &Store, sql: &str, params: &[SqlParam]) -> anyhow::Result<u64> {
    let mut n = 0u64;
    match store.pool() {
        Pool::Sqlite(pool) => {
            let mut q = sqlx::query(sql);
            for p in params {
                q = match p {
                    SqlParam::Int(v) => q.bind(*v),
                    SqlParam::Float(v) => q.bind(*v),
                    SqlParam::Text(v) => q.bind(v.clone()),
                    SqlParam::Bool(v) => q.bind(*v),
                    SqlParam::Timestamp(v) => q.bind(v.timestamp()),
                };
            }
            let mut rows = q.fetch(pool);
            while rows.try_next().await?.is_some() {
                n += 1;
            }
        }
        Pool::Postgres(pool) => {
            let mut q = sqlx::query(sql);
            for p in params {
                q = match p {
                    SqlParam::Int(v) => q.bind(*v),
                    SqlParam::Float(v) => q.bind(*v),
                    SqlParam::Text(v) => q.bind(v.clone()),
                    SqlParam::Bool(v) => q.bind(*v),
                    SqlParam::Timestamp(v) => q.bind(*v),
                };
            }
            let mut rows = q.fetch(pool);
            while rows.try_next().await?.is_some() {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Runs the recompute benchmark and prints its table.
pub async fn recompute(
    _settings: &Settings,
    customers: usize,
    store_url: Option<String>,
    seed: u64,
) -> anyhow::Result<()> {
    let temp_path = std::env::temp_dir().join(format!("campaignd-bench-{}.db", std::process::id()));
    let url = store_url.unwrap_or_else(|| format!("sqlite://{}", temp_path.display()));
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let as_of = campaignd_core::rules::compile::whole_seconds(Utc::now());
    println!("bench recompute: {customers} customers on {:?} ({})", store.dialect(), campaignd_store::redact_url(&url));
    let load = store
        .load_synthetic(customers as u64, seed, as_of)
        .await
        .context("loading the synthetic shop")?;
    println!(
        "loaded {} customers, {} orders, {} events in {:.1}s ({:.0} rows/s)",
        load.customers,
        load.orders,
        load.events,
        load.elapsed.as_secs_f64(),
        load.rows_per_sec()
    );
    if let Pool::Sqlite(pool) = store.pool() {
        sqlx::query("ANALYZE").execute(pool).await?;
    }
    if let Pool::Postgres(pool) = store.pool() {
        sqlx::query("ANALYZE").execute(pool).await?;
    }
    println!();
    println!(
        "{:<22} {:>9} {:>10} {:>10} {:>10} {:>7}",
        "segment", "size", "first s", "rerun s", "raw sql s", "ratio"
    );
    let run_id = store.start_run("bench", None, Utc::now()).await?;
    let (mut total_first, mut total_rerun, mut total_raw) = (0.0, 0.0, 0.0);
    for template in templates::list() {
        let text = templates::render(template.name, &BTreeMap::new())?;
        let rule = parse_rule(&text)?;
        let compiled = compile_segment(rule.expr(), &[], store.dialect(), as_of);
        let plan = SegmentPlan {
            name: format!("bench_{}", template.name),
            description: None,
            source: text.clone(),
            query: SegmentQuery::Compiled(compiled.clone()),
            excludes: Vec::new(),
        };
        let t = Instant::now();
        let first = store.recompute_segment(&plan, run_id, as_of).await?;
        let first_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        store.recompute_segment(&plan, run_id, as_of).await?;
        let rerun_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let raw_rows = raw_sql_count(&store, &compiled.sql, &compiled.params).await?;
        let raw_s = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            raw_rows == first.size as u64,
            "{}: raw SQL returned {raw_rows} rows but the segment has {}",
            template.name,
            first.size
        );
        total_first += first_s;
        total_rerun += rerun_s;
        total_raw += raw_s;
        println!(
            "{:<22} {:>9} {:>10.3} {:>10.3} {:>10.3} {:>7.2}",
            template.name,
            first.size,
            first_s,
            rerun_s,
            raw_s,
            if raw_s > 0.0 { rerun_s / raw_s } else { 0.0 }
        );
    }
    println!(
        "{:<22} {:>9} {:>10.3} {:>10.3} {:>10.3} {:>7.2}",
        "all templates",
        "",
        total_first,
        total_rerun,
        total_raw,
        if total_raw > 0.0 { total_rerun / total_raw } else { 0.0 }
    );
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS: {rss:.0} MiB");
    }
    store.close().await;
    if url.contains(&temp_path.display().to_string()) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", temp_path.display()));
        }
    }
    Ok(())
}
