//! The performance commands: `metrics pull`, `report`, and the demo's simulated weeks of rotation and
//! metrics against the sandbox (the `rotate` command itself is in `rotate.rs`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use campaignd_connectors::SecretResolver;
use campaignd_engine::metrics_pull::{
    build_metrics_sources, pull, PullError, PullOptions, PullReport, PullStatus,
};
use campaignd_engine::report::{self, Dimension, ReportError, ReportQuery, ReportRow};
use campaignd_engine::rotate::{build_swappers, rotate as run_rotate, RotateOptions};
use campaignd_engine::Settings;
use campaignd_store::Store;

use crate::cli::ReportFormat;
use crate::context::open_store;
use crate::rotate::{print_rotate_report, rotate_failure};
use crate::Failure;

/// `campaignd metrics pull [--since DATE] [--until DATE]` (default: the last 7 days up to today).
pub async fn metrics_pull(
    settings: &Settings,
    secrets: &SecretResolver,
    since: Option<NaiveDate>,
    until: Option<NaiveDate>,
) -> Result<(), Failure> {
    let now = Utc::now();
    let until = until.unwrap_or_else(|| now.date_naive());
    let since = since.unwrap_or(until - Duration::days(6));
    let sources = build_metrics_sources(settings, secrets).map_err(pull_failure)?;
    let store = open_store(settings).await?;
    let report = pull(
        &store,
        settings,
        &sources,
        &PullOptions {
            since,
            until,
            as_of: now,
        },
    )
    .await
    .map_err(pull_failure)?;
    println!("metrics {since} .. {until}");
    print_pull_report(&report);
    store.close().await;
    if report.any_failed() {
        return Err(Failure::job(anyhow!(
            "one or more destinations failed to report metrics (see `campaignd runs`)"
        )));
    }
    Ok(())
}

fn pull_failure(e: PullError) -> Failure {
    match e {
        PullError::Store(_) => Failure::job(e),
        other => Failure::usage(other),
    }
}

/// One line per destination that reports metrics.
pub fn print_pull_report(report: &PullReport) {
    println!(
        "{:<16} {:>8} {:>9} {:>7}  status",
        "destination", "objects", "rows", "stored"
    );
    for d in &report.destinations {
        let status = match &d.status {
            PullStatus::Done if d.rows_unattributed > 0 => {
                format!(
                    "done ({} rows for objects not asked for, ignored)",
                    d.rows_unattributed
                )
            }
            PullStatus::Done => "done".to_string(),
            PullStatus::NothingToPull => {
                "no creative set or sync ad_ids/campaign_ids on it".to_string()
            }
            PullStatus::Failed(e) => format!("FAILED (stored days unchanged): {e}"),
        };
        println!(
            "{:<16} {:>8} {:>9} {:>7}  {status}",
            d.destination, d.objects, d.rows_received, d.rows_stored
        );
    }
}

/// `campaignd report [--since 30d|DATE] [--until DATE] [--by ...] [--format table|csv|json]`.
pub async fn report(
    settings: &Settings,
    since: &str,
    until: Option<NaiveDate>,
    by: &str,
    format: ReportFormat,
) -> Result<(), Failure> {
    let until = until.unwrap_or_else(|| Utc::now().date_naive());
    let query = ReportQuery {
        since: report::parse_since(since, until).map_err(Failure::usage)?,
        until,
        by: report::parse_dimensions(by).map_err(Failure::usage)?,
    };
    let store = open_store(settings).await?;
    let rows = report::report(&store, &query).await.map_err(|e| match e {
        ReportError::Store(_) => Failure::job(e),
        other => Failure::usage(other),
    })?;
    store.close().await;
    let text = match format {
        ReportFormat::Table => render_table(&query.by, &rows),
        ReportFormat::Csv => render_csv(&query.by, &rows),
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&rows).map_err(Failure::job)?;
            s.push('\n');
            s
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .context("writing to stdout")
        .map_err(Failure::job)?;
    Ok(())
}

const METRIC_COLUMNS: [&str; 9] = [
    "impressions",
    "clicks",
    "conversions",
    "spend",
    "revenue",
    "ctr",
    "cvr",
    "cpa",
    "roas",
];

/// Figures as the table shows them: counts whole, money and CPA/ROAS to 2 decimals, CTR/CVR as
/// percentages to 2 decimals, empty ratios blank.
fn table_cells(r: &ReportRow) -> [String; 9] {
    let pct = |v: Option<f64>| v.map(|v| format!("{:.2}%", v * 100.0)).unwrap_or_default();
    let num = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
    [
        r.impressions.to_string(),
        r.clicks.to_string(),
        format!("{:.1}", r.conversions),
        format!("{:.2}", r.spend),
        format!("{:.2}", r.revenue),
        pct(r.ctr),
        pct(r.cvr),
        num(r.cpa),
        num(r.roas),
    ]
}

/// A fixed-width table: key columns left-aligned, figures right-aligned, one header line.
pub fn render_table(by: &[Dimension], rows: &[ReportRow]) -> String {
    let keys: Vec<&str> = by.iter().map(|d| d.as_str()).collect();
    let mut widths: Vec<usize> = keys.iter().map(|k| k.len()).collect();
    for r in rows {
        for (i, k) in keys.iter().enumerate() {
            let len = r.keys.get(*k).map(|v| v.chars().count()).unwrap_or(0);
            widths[i] = widths[i].max(len);
        }
    }
    let mut out = String::new();
    let mut line = String::new();
    for (k, w) in keys.iter().zip(&widths) {
        line.push_str(&format!("{k:<w$}  "));
    }
    for m in METRIC_COLUMNS {
        line.push_str(&format!("{m:>12}"));
    }
    out.push_str(line.trim_end());
    out.push('\n');
    for r in rows {
        let mut line = String::new();
        for (k, w) in keys.iter().zip(&widths) {
            let v = r.keys.get(*k).map(String::as_str).unwrap_or("");
            line.push_str(&format!("{v:<w$}  "));
        }
        for cell in table_cells(r) {
            line.push_str(&format!("{cell:>12}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(no metrics in this range: run `campaignd metrics pull` first)\n");
    }
    out
}

/// CSV with the `--by` keys then the figures at full precision; empty ratios are empty fields.
pub fn render_csv(by: &[Dimension], rows: &[ReportRow]) -> String {
    let mut w = String::new();
    let header: Vec<&str> = by
        .iter()
        .map(|d| d.as_str())
        .chain(METRIC_COLUMNS)
        .collect();
    w.push_str(
        &header
            .iter()
            .map(|h| csv_field(h))
            .collect::<Vec<_>>()
            .join(","),
    );
    w.push('\n');
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        let mut fields: Vec<String> = by
            .iter()
            .map(|d| csv_field(r.keys.get(d.as_str()).map(String::as_str).unwrap_or("")))
            .collect();
        fields.extend([
            r.impressions.to_string(),
            r.clicks.to_string(),
            r.conversions.to_string(),
            r.spend.to_string(),
            r.revenue.to_string(),
            opt(r.ctr),
            opt(r.cvr),
            opt(r.cpa),
            opt(r.roas),
        ]);
        w.push_str(&fields.join(","));
        w.push('\n');
    }
    w
}

/// Quotes a CSV field when it needs it.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The sandbox directories of the destinations creative sets rotate on.
fn sandbox_dirs(settings: &Settings) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for set in &settings.creative_sets {
        let Some(sandbox) = settings
            .destinations
            .get(&set.destination)
            .and_then(|d| d.as_sandbox())
        else {
            continue;
        };
        let path = sandbox.path.clone();
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// The demo's second half: `weeks` simulated weeks ending at `as_of`, one rotate run and one metrics
/// pull per simulated day (each set rotates when its period is over, or early when its fatigue rule
/// sees the live creative fade), then the report by segment × channel × creative, a week-by-week view
/// of what was live and the early rotations with their reasons, so a newcomer sees the strategy settle
/// on the better creative and a fading one replaced before its week is out.
pub async fn demo_performance(
    store: &Store,
    settings: &Settings,
    secrets: &SecretResolver,
    as_of: DateTime<Utc>,
    weeks: i64,
) -> Result<(), Failure> {
    if settings.creative_sets.is_empty() {
        return Ok(());
    }
    // The demo store is new, so the sandbox's swap log from an earlier demo would disagree with it.
    for dir in sandbox_dirs(settings) {
        match std::fs::remove_file(dir.join("creatives.json")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Failure::job(anyhow!("cannot reset {}: {e}", dir.display()))),
        }
    }
    let swappers = build_swappers(settings, secrets).map_err(rotate_failure)?;
    let sources = build_metrics_sources(settings, secrets).map_err(pull_failure)?;
    // Weeks start on Mondays so the simulated weeks line up with the report's `week`.
    let start_day = (as_of - Duration::weeks(weeks)).date_naive();
    let start_day =
        start_day - Duration::days(i64::from(start_day.weekday().num_days_from_monday()));
    let start = start_day
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .ok_or_else(|| Failure::job(anyhow!("bad demo start")))?;
    println!();
    println!(
        "creative rotation: {weeks} simulated weeks from {start_day} (each day: rotate when due or fatigued, then pull that day's metrics)"
    );
    let mut live: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut early: Vec<String> = Vec::new();
    for d in 0..weeks * 7 {
        let t = start + Duration::days(d);
        let rotated = run_rotate(
            store,
            settings,
            &swappers,
            &RotateOptions {
                as_of: t,
                dry_run: false,
            },
        )
        .await
        .map_err(rotate_failure)?;
        if rotated.any_failed() {
            print_rotate_report(&rotated);
            return Err(Failure::job(anyhow!(
                "creative rotation failed in the demo"
            )));
        }
        for s in &rotated.sets {
            if let (Some(reason), Some(to)) = (&s.reason, &s.to) {
                early.push(format!(
                    "  {} {:<24} {} → {to}: {reason}",
                    t.date_naive(),
                    s.set,
                    s.from.as_deref().unwrap_or("-")
                ));
            }
            if d % 7 == 0 {
                live.entry(s.set.clone())
                    .or_default()
                    .push(s.to.clone().unwrap_or_else(|| "-".into()));
            }
        }
        let day = t.date_naive();
        let pulled = pull(
            store,
            settings,
            &sources,
            &PullOptions {
                since: day,
                until: day,
                as_of: t + Duration::days(1),
            },
        )
        .await
        .map_err(pull_failure)?;
        if pulled.any_failed() {
            print_pull_report(&pulled);
            return Err(Failure::job(anyhow!("metrics pull failed in the demo")));
        }
    }
    for (set, variants) in &live {
        println!(
            "  {set:<24} live at each week's start: {}",
            variants.join(" → ")
        );
    }
    if early.is_empty() {
        println!("  no early rotation: no live creative faded under its set's fatigue rule");
    } else {
        println!("early rotations (creative fatigue, before the set's period was over):");
        for line in &early {
            println!("{line}");
        }
    }
    let until = (start + Duration::weeks(weeks) - Duration::days(1)).date_naive();
    let by = vec![Dimension::Segment, Dimension::Channel, Dimension::Creative];
    let rows = report::report(
        store,
        &ReportQuery {
            since: start_day,
            until,
            by: by.clone(),
        },
    )
    .await
    .map_err(Failure::job)?;
    println!();
    println!("report {start_day} .. {until} (campaignd report --by segment,channel,creative):");
    print!("{}", render_table(&by, &rows));
    Ok(())
}
