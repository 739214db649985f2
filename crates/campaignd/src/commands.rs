//! One function per command: load settings, open the store, call the engine, print the result.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Context};
use chrono::Utc;

use campaignd_connectors::SecretResolver;
use campaignd_core::rules::templates;
use campaignd_engine::recompute::{recompute, recompute_with_progress, RecomputeError};
use campaignd_engine::shutdown::Shutdown;
use campaignd_engine::sync::{
    build_destinations, sync as run_sync, SyncError, SyncOptions, SyncReport, SyncStatus,
};
use campaignd_engine::Settings;
use campaignd_store::import::{ImportKind, ImportOptions};
use campaignd_store::{Store, StoreError};

#[cfg(feature = "bench")]
use crate::bench;
#[cfg(feature = "bench")]
use crate::cli::BenchCommand;
use crate::cli::{Cli, Command, ImportKindArg, LiftArgs, MembersFormat, SegmentsCommand};
use crate::context::{open_store, App};
use crate::Failure;

/// Runs the parsed command.
pub async fn dispatch(cli: Cli) -> Result<(), Failure> {
    let App { settings, secrets } = App::load(&cli.config)?;
    match cli.command {
        Command::Migrate => {
            let store = open_store(&settings).await?;
            println!(
                "migrations applied to {}",
                campaignd_store::redact_url(&settings.store.url)
            );
            store.close().await;
            Ok(())
        }
        Command::Import { kind, file, strict } => {
            let store = open_store(&settings).await?;
            import(&store, kind, &file, strict).await
        }
        Command::Demo {
            customers,
            seed,
            db,
            as_of,
        } => {
            demo(
                settings,
                &secrets,
                customers,
                seed,
                &db,
                as_of.unwrap_or_else(Utc::now),
            )
            .await
        }
        Command::Segments { command } => segments(&settings, command).await,
        Command::Sync {
            destination,
            segment,
            dry_run,
            full,
            as_of,
        } => {
            if let Some(t) = as_of.filter(|t| *t > Utc::now()) {
                return Err(Failure::usage(anyhow!(
                    "--as-of {} is in the future: assignments dated later than the sync would not count in any lift yet",
                    t.to_rfc3339()
                )));
            }
            let opts = SyncOptions {
                destination,
                segment,
                dry_run,
                full,
                progress: crate::progress::reporter(),
                as_of,
            };
            sync(&settings, &secrets, &opts).await
        }
        Command::Run => crate::daemon::run(settings, &secrets).await,
        Command::Rotate { as_of, dry_run } => {
            crate::rotate::rotate(&settings, &secrets, as_of.unwrap_or_else(Utc::now), dry_run)
                .await
        }
        Command::Metrics {
            command: crate::cli::MetricsCommand::Pull { since, until },
        } => crate::reporting::metrics_pull(&settings, &secrets, since, until).await,
        Command::Report {
            lift:
                LiftArgs {
                    lift: true,
                    window,
                    as_of,
                },
            format,
            ..
        } => crate::insights::lift(&settings, window, format, as_of.unwrap_or_else(Utc::now)).await,
        Command::Report {
            since,
            until,
            by,
            format,
            ..
        } => crate::reporting::report(&settings, &since, until, &by, format).await,
        Command::Kpis {
            since,
            until,
            by,
            conversion_days,
            segment,
            format,
            lift:
                LiftArgs {
                    lift,
                    window,
                    as_of,
                },
        } => {
            let until = until.unwrap_or_else(|| Utc::now().date_naive());
            let query = crate::insights::kpi_query(&since, until, &by, conversion_days, segment)?;
            crate::insights::kpis(&settings, &query, format).await?;
            if lift {
                println!();
                crate::insights::lift(&settings, window, format, as_of.unwrap_or_else(Utc::now))
                    .await?;
            }
            Ok(())
        }
        Command::Runs { limit, job, json } => {
            let store = open_store(&settings).await?;
            let runs = store.recent_runs(limit, job).await.map_err(Failure::job)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&runs).map_err(Failure::job)?
                );
            } else {
                println!(
                    "{:>6}  {:<10} {:<22} {:<20} {:<9} counts / error",
                    "id", "job", "target", "started", "outcome"
                );
                for r in runs {
                    let detail = match &r.error {
                        Some(e) => format!("{} {}", r.counts, e),
                        None => r.counts.to_string(),
                    };
                    println!(
                        "{:>6}  {:<10} {:<22} {:<20} {:<9} {}",
                        r.id,
                        r.job,
                        r.target.as_deref().unwrap_or("-"),
                        r.started_at.format("%Y-%m-%d %H:%M:%S"),
                        r.outcome,
                        detail
                    );
                    if let Some(line) = identifier_line(&r.counts) {
                        println!("{:>8}{line}", "");
                    }
                    for line in match_size_lines(&r.counts) {
                        println!("{:>8}{line}", "");
                    }
                    if r.counts
                        .get("rejected")
                        .and_then(|v| v.as_i64())
                        .unwrap_or(0)
                        > 0
                    {
                        let rejections = store.run_rejections(r.id).await.map_err(Failure::job)?;
                        for (customer, action, reason) in rejections.iter().take(5) {
                            println!("{:>8}rejected {action} of {customer}: {reason}", "");
                        }
                        if rejections.len() > 5 {
                            println!("{:>8}... and {} more rejections", "", rejections.len() - 5);
                        }
                    }
                }
            }
            Ok(())
        }
        #[cfg(feature = "bench")]
        Command::Bench { command } => match command {
            BenchCommand::Recompute {
                customers,
                store,
                seed,
            } => bench::recompute(customers, store, seed)
                .await
                .map_err(Failure::job),
            BenchCommand::Sync { members, churn } => {
                bench::sync(members, churn).await.map_err(Failure::job)
            }
        },
    }
}

/// A sync run's identifier counts in one short line (`identifiers: email 120, phone 80, address 60;
/// no identifier: invalid_phone 5, invalid_email 2, none 3`), so match rates by identifier can be read
/// without the JSON; `None` for runs that did not record them.
fn identifier_line(counts: &serde_json::Value) -> Option<String> {
    let list = |v: &serde_json::Value, keys: &[&str]| -> Option<String> {
        let parts: Vec<String> = keys
            .iter()
            .map(|k| Some(format!("{k} {}", v.get(*k)?.as_i64()?)))
            .collect::<Option<_>>()?;
        Some(parts.join(", "))
    };
    let kinds = list(counts.get("identifiers")?, &["email", "phone", "address"])?;
    let reasons = list(
        counts.get("no_identifier_reasons")?,
        &["invalid_phone", "invalid_email", "none"],
    )?;
    Some(format!("identifiers: {kinds}; no identifier: {reasons}"))
}

/// A metrics run's pulled audience sizes, one line each (`matched: us_buyers -> meta_ads "US buyers"
/// 1000..1200 of 1500 sent (66.7%)`); unknown parts are `?`. Empty for runs that recorded none.
fn match_size_lines(counts: &serde_json::Value) -> Vec<String> {
    let Some(sizes) = counts.get("match_sizes").and_then(|v| v.as_array()) else {
        return Vec::new();
    };
    let text = |v: &serde_json::Value, k: &str| {
        v.get(k).and_then(|x| x.as_str()).unwrap_or("?").to_string()
    };
    let num = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(|x| x.as_i64())
            .map_or("?".to_string(), |n| n.to_string())
    };
    sizes
        .iter()
        .map(|m| {
            let (lower, upper) = (num(m, "lower"), num(m, "upper"));
            let size = if lower == upper {
                lower
            } else {
                format!("{lower}..{upper}")
            };
            let rate = m
                .get("match_rate_percent")
                .and_then(|x| x.as_f64())
                .map_or("?".to_string(), |r| format!("{r:.1}%"));
            format!(
                "matched: {} -> {} \"{}\" {size} of {} sent ({rate})",
                text(m, "segment"),
                text(m, "destination"),
                text(m, "audience"),
                num(m, "members_sent"),
            )
        })
        .collect()
}

async fn sync(
    settings: &Settings,
    secrets: &SecretResolver,
    opts: &SyncOptions,
) -> Result<(), Failure> {
    settings.validate_syncs().map_err(Failure::usage)?;
    let destinations = build_destinations(settings, secrets).map_err(Failure::usage)?;
    let store = open_store(settings).await?;
    let report = run_sync(&store, settings, &destinations, opts, &Shutdown::new())
        .await
        .map_err(|e| match e {
            SyncError::Store(_) => Failure::job(e),
            other => Failure::usage(other),
        })?;
    print_sync_report(&report, opts.dry_run);
    store.close().await;
    if report.any_failed() {
        return Err(Failure::job(anyhow!(
            "one or more syncs failed (see `campaignd runs`)"
        )));
    }
    Ok(())
}

/// Prints one line per sync: the plan for a dry run, what was acknowledged otherwise.
pub fn print_sync_report(report: &SyncReport, dry_run: bool) {
    let (a, r) = if dry_run {
        ("to add", "to remove")
    } else {
        ("added", "removed")
    };
    println!(
        "{:<22} {:<16} {:>8} {:>8} {:>9} {:>8} {:>10} {:>10} {:>13}  status",
        "segment",
        "destination",
        "eligible",
        a,
        r,
        "rejected",
        "no_consent",
        "suppressed",
        "no_identifier"
    );
    for s in &report.syncs {
        let status = match &s.status {
            SyncStatus::Done => "done".to_string(),
            SyncStatus::Planned => "dry run: nothing sent".to_string(),
            SyncStatus::BelowMinimum => "below the platform's minimum size: not pushed".to_string(),
            SyncStatus::Interrupted => "interrupted: resumes next run".to_string(),
            SyncStatus::Failed(e) => format!("FAILED: {e}"),
        };
        let status = if s.held_out > 0 {
            format!("{status}; {} held out (holdout, never sent)", s.held_out)
        } else {
            status
        };
        println!(
            "{:<22} {:<16} {:>8} {:>8} {:>9} {:>8} {:>10} {:>10} {:>13}  {}",
            s.segment,
            s.destination,
            s.eligible,
            s.added,
            s.removed,
            s.rejected,
            s.skipped_no_consent,
            s.skipped_suppressed,
            s.skipped_no_identifier,
            status
        );
    }
}

/// A file that cannot be imported as given (unreadable, wrong extension, unknown or missing columns) is
/// bad usage (exit 2); the database failing under a good file (disk full, locked) is a failed job (1).
fn import_failure(e: StoreError) -> Failure {
    match e {
        StoreError::Io(_) => Failure::usage(e),
        _ => Failure::job(e),
    }
}

async fn import(
    store: &Store,
    kind: ImportKindArg,
    file: &Path,
    strict: bool,
) -> Result<(), Failure> {
    let kind = match kind {
        ImportKindArg::Customers => ImportKind::Customers,
        ImportKindArg::Orders => ImportKind::Orders,
        ImportKindArg::Events => ImportKind::Events,
        ImportKindArg::Suppressions => ImportKind::Suppressions,
    };
    let report = store
        .import_with_progress(
            kind,
            file,
            ImportOptions { strict },
            &crate::progress::reporter(),
        )
        .await
        .map_err(import_failure)?;
    for err in &report.errors {
        eprintln!("{}:{}: {}", file.display(), err.line, err.reason);
    }
    if strict && report.rejected > 0 {
        println!(
            "{}: {} rows rejected; --strict: nothing imported",
            file.display(),
            report.rejected
        );
    } else {
        println!(
            "{}: {} rows imported, {} rejected",
            file.display(),
            report.imported,
            report.rejected
        );
    }
    if report.rejected > 0 {
        return Err(Failure::job(anyhow!("{} rows rejected", report.rejected)));
    }
    Ok(())
}

/// How long before the demo's "now" its sync took place: more than the lift's default window
/// (30 days), so at "now" every member's window is over and `report --lift` sees the whole campaign.
pub const DEMO_SYNC_DAYS_AGO: i64 = 35;

async fn demo(
    mut settings: Settings,
    secrets: &SecretResolver,
    customers: usize,
    seed: u64,
    db: &Path,
    as_of: chrono::DateTime<Utc>,
) -> Result<(), Failure> {
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db.display());
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Failure::job(anyhow!("cannot replace {path}: {e}"))),
        }
    }
    settings.store.url = format!("sqlite://{}", db.display());
    let store = open_store(&settings).await?;
    // The campaign lies in the past: the shop as it was at the sync, the sync and its holdout then,
    // the campaign's orders in the days after it, all before `as_of`.
    let synced_at = as_of - chrono::Duration::days(DEMO_SYNC_DAYS_AGO);
    println!(
        "generating a synthetic shop of {customers} customers (seed {seed}) into {}, as of the sync on {}",
        db.display(),
        synced_at.format("%Y-%m-%d")
    );
    let load = store
        .load_synthetic(customers as u64, seed, synced_at)
        .await
        .map_err(Failure::job)?;
    println!(
        "loaded {} customers, {} orders, {} events in {:.1}s",
        load.customers,
        load.orders,
        load.events,
        load.elapsed.as_secs_f64()
    );
    let report = recompute(&store, &settings, synced_at, None)
        .await
        .map_err(recompute_failure)?;
    println!();
    println!("{:<26} {:>8} {:>8}", "segment", "size", "share");
    for seg in &report.segments {
        let share = if load.customers > 0 {
            100.0 * seg.size as f64 / load.customers as f64
        } else {
            0.0
        };
        println!("{:<26} {:>8} {:>7.1}%", seg.segment, seg.size, share);
    }
    if !settings.syncs.is_empty() {
        let destinations = build_destinations(&settings, secrets).map_err(Failure::usage)?;
        let opts = SyncOptions {
            as_of: Some(synced_at),
            ..SyncOptions::default()
        };
        let report = run_sync(&store, &settings, &destinations, &opts, &Shutdown::new())
            .await
            .map_err(Failure::job)?;
        println!();
        println!("audiences synced:");
        print_sync_report(&report, false);
        if report.any_failed() {
            return Err(Failure::job(anyhow!(
                "one or more syncs failed (see `campaignd runs`)"
            )));
        }
        crate::insights::demo_insights(
            &store,
            &settings,
            synced_at,
            as_of,
            campaignd_engine::lift::DEFAULT_WINDOW_DAYS,
            seed,
        )
        .await?;
    }
    crate::reporting::demo_performance(&store, &settings, secrets, as_of, 10).await?;
    println!();
    println!(
        "explore it: campaignd --config {} segments list   (with CAMPAIGND__STORE__URL=sqlite://{})",
        crate::settings_load::DEFAULT_CONFIG,
        db.display()
    );
    store.close().await;
    Ok(())
}

fn recompute_failure(e: RecomputeError) -> Failure {
    match e {
        RecomputeError::Settings(_) | RecomputeError::UnknownSegment(_) => Failure::usage(e),
        RecomputeError::Store(_) => Failure::job(e),
    }
}

/// The match figures of every `[[sync]]` under the segment table: members sent (held on the audience),
/// the latest sync's identifier coverage and the platform-reported matched size from `metrics pull`.
async fn print_matches(settings: &Settings, store: &campaignd_store::Store) -> Result<(), Failure> {
    let matches = campaignd_engine::match_rates::audience_matches(store, settings)
        .await
        .map_err(Failure::job)?;
    if matches.is_empty() {
        return Ok(());
    }
    let known = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
    println!();
    println!(
        "{:<40} {:>8} {:>17} {:>7}  identifiers (latest sync)",
        "segment -> destination (audience)", "sent", "platform matched", "match"
    );
    for m in matches {
        let size = match &m.platform_size {
            None => "-".to_string(),
            Some(p) if p.lower == p.upper => {
                p.lower.map(|n| n.to_string()).unwrap_or_else(|| "-".into())
            }
            Some(p) => format!(
                "{}-{}",
                p.lower.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
                p.upper.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
            ),
        };
        let ids = m
            .identifiers
            .as_ref()
            .map(|ids| {
                campaignd_engine::match_rates::IDENTIFIER_KINDS
                    .iter()
                    .map(|k| format!("{k} {}", known(ids.get(*k).copied().flatten())))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|| "unknown".into());
        println!(
            "{:<40} {:>8} {:>17} {:>7}  {}",
            format!("{} -> {} ({})", m.segment, m.destination, m.audience),
            m.members_sent,
            size,
            m.matched_percent
                .map(|p| format!("{p:.1}%"))
                .unwrap_or_else(|| "-".into()),
            ids
        );
    }
    Ok(())
}

async fn segments(settings: &Settings, command: SegmentsCommand) -> Result<(), Failure> {
    match command {
        SegmentsCommand::List { templates: true } => {
            for t in templates::list() {
                println!("{:<22} {}", t.name, t.description);
                for p in t.params {
                    println!(
                        "    {:<12} default {:<8} {}",
                        p.name, p.default, p.description
                    );
                }
                println!(
                    "    rule: {}",
                    t.body.split_whitespace().collect::<Vec<_>>().join(" ")
                );
            }
            Ok(())
        }
        SegmentsCommand::List { templates: false } => {
            let store = open_store(settings).await?;
            let defs = settings.segment_defs().map_err(Failure::usage)?;
            let summaries = store.segment_summaries().await.map_err(Failure::job)?;
            println!(
                "{:<26} {:>8} {:>7} {:>7}  {:<20} description",
                "segment", "size", "joined", "left", "computed"
            );
            for def in defs {
                let s = summaries.iter().find(|s| s.name == def.name);
                let mut description = def.description.clone().unwrap_or_default();
                if let Some(note) = s.and_then(|s| dropped_note(s.last_dropped)) {
                    if !description.is_empty() {
                        description.push(' ');
                    }
                    description.push_str(&format!("({note})"));
                }
                println!(
                    "{:<26} {:>8} {:>7} {:>7}  {:<20} {}",
                    def.name,
                    s.map(|s| s.size.to_string()).unwrap_or_else(|| "-".into()),
                    s.map(|s| s.last_joined.to_string())
                        .unwrap_or_else(|| "-".into()),
                    s.map(|s| s.last_left.to_string())
                        .unwrap_or_else(|| "-".into()),
                    s.and_then(|s| s.computed_at)
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_else(|| "never".into()),
                    description
                );
            }
            print_matches(settings, &store).await?;
            Ok(())
        }
        SegmentsCommand::Show { name } => {
            let defs = settings.segment_defs().map_err(Failure::usage)?;
            let def = defs.iter().find(|d| d.name == name).ok_or_else(|| {
                Failure::usage(anyhow!("no segment named \"{name}\" in the configuration"))
            })?;
            let store = open_store(settings).await?;
            let plan = campaignd_engine::recompute::plan_for(def, &store, Utc::now());
            let summaries = store.segment_summaries().await.map_err(Failure::job)?;
            let s = summaries.iter().find(|s| s.name == name);
            println!("name:        {}", def.name);
            println!("description: {}", def.description.as_deref().unwrap_or(""));
            println!("definition:  {}", def.source_text.trim());
            // The rule as parsed (no comments, minimal parentheses): pasting it back as `rule`
            // gives the same rule.
            if let campaignd_engine::settings::SegmentSource::Rule(rule) = &def.source {
                println!("canonical:   {rule}");
            }
            if !def.exclude.is_empty() {
                println!("exclude:     {}", def.exclude.join(", "));
            }
            let sql = match &plan.query {
                campaignd_store::segments::SegmentQuery::Compiled(q) => q.sql.clone(),
                campaignd_store::segments::SegmentQuery::UserSql(sql) => sql.clone(),
            };
            println!("sql ({:?}):  {}", store.dialect(), sql);
            match s {
                Some(s) => {
                    println!("size:        {}", s.size);
                    println!(
                        "last run:    {} joined, {} left",
                        s.last_joined, s.last_left
                    );
                    if let Some(note) = dropped_note(s.last_dropped) {
                        println!("dropped:     {note}");
                    }
                    if let Some(t) = s.computed_at {
                        println!("computed:    {}", t.to_rfc3339());
                    }
                }
                None => {
                    println!("size:        not computed yet (run `campaignd segments recompute`)")
                }
            }
            Ok(())
        }
        SegmentsCommand::Recompute { as_of, segment } => {
            let store = open_store(settings).await?;
            let report = recompute_with_progress(
                &store,
                settings,
                as_of.unwrap_or_else(Utc::now),
                segment.as_deref(),
                &crate::progress::reporter(),
            )
            .await
            .map_err(recompute_failure)?;
            println!(
                "{:<26} {:>8} {:>7} {:>7}",
                "segment", "size", "joined", "left"
            );
            for s in &report.segments {
                println!(
                    "{:<26} {:>8} {:>7} {:>7}{}",
                    s.segment,
                    s.size,
                    s.joined,
                    s.left,
                    dropped_note(s.dropped)
                        .map(|n| format!("  ({n})"))
                        .unwrap_or_default()
                );
            }
            println!("run {} recorded", report.run_id);
            Ok(())
        }
        SegmentsCommand::Members { name, format } => {
            let defs = settings.segment_defs().map_err(Failure::usage)?;
            if !defs.iter().any(|d| d.name == name) {
                return Err(Failure::usage(anyhow!(
                    "no segment named \"{name}\" in the configuration"
                )));
            }
            let store = open_store(settings).await?;
            let members = store.segment_members(&name).await.map_err(Failure::job)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match format {
                MembersFormat::Lines => {
                    for m in members {
                        writeln!(out, "{}", m.customer_id)
                            .context("writing to stdout")
                            .map_err(Failure::job)?;
                    }
                }
                MembersFormat::Csv => {
                    writeln!(out, "customer_id,email,phone,joined_at")
                        .context("writing to stdout")
                        .map_err(Failure::job)?;
                    for m in members {
                        writeln!(
                            out,
                            "{},{},{},{}",
                            csv_field(&m.customer_id),
                            csv_field(m.email.as_deref().unwrap_or("")),
                            csv_field(m.phone.as_deref().unwrap_or("")),
                            m.joined_at.to_rfc3339()
                        )
                        .context("writing to stdout")
                        .map_err(Failure::job)?;
                    }
                }
            }
            out.flush()
                .context("writing to stdout")
                .map_err(Failure::job)?;
            Ok(())
        }
    }
}

/// What `segments list/show/recompute` say about ids a `sql` segment returned that are not customers.
fn dropped_note(dropped: i64) -> Option<String> {
    (dropped > 0).then(|| format!("{dropped} ids returned by its SQL are not customers, left out"))
}

/// Quotes a CSV field when it needs it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
