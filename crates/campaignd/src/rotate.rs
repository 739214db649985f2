//! `campaignd rotate [--as-of TS] [--dry-run]`: swaps each due creative set's live variant and prints
//! what was live, what is live now and why. The demo's simulated weeks reuse its report and error
//! mapping.

use anyhow::anyhow;
use chrono::{DateTime, Utc};

use campaignd_connectors::SecretResolver;
use campaignd_engine::rotate::{
    build_swappers, rotate as run_rotate, RotateAction, RotateError, RotateOptions, RotateReport,
};
use campaignd_engine::Settings;

use crate::context::open_store;
use crate::Failure;

/// `campaignd rotate [--as-of TS] [--dry-run]`.
pub async fn rotate(
    settings: &Settings,
    secrets: &SecretResolver,
    as_of: DateTime<Utc>,
    dry_run: bool,
) -> Result<(), Failure> {
    let swappers = build_swappers(settings, secrets).map_err(rotate_failure)?;
    let store = open_store(settings).await?;
    let report = run_rotate(
        &store,
        settings,
        &swappers,
        &RotateOptions { as_of, dry_run },
    )
    .await
    .map_err(rotate_failure)?;
    print_rotate_report(&report);
    store.close().await;
    if report.any_failed() {
        return Err(Failure::job(anyhow!(
            "one or more creative sets failed to rotate (see `campaignd runs`)"
        )));
    }
    Ok(())
}

/// A store failure fails the job (exit 1); anything else is the configuration's fault (exit 2).
pub(crate) fn rotate_failure(e: RotateError) -> Failure {
    match e {
        RotateError::Store(_) => Failure::job(e),
        other => Failure::usage(other),
    }
}

/// One line per creative set: what was live, what is live now, and why.
pub fn print_rotate_report(report: &RotateReport) {
    println!(
        "{:<24} {:<18} {:<14} {:<12} {:<12} {:<12} {:<20} status",
        "creative_set", "segment", "destination", "strategy", "from", "to", "next due"
    );
    for s in &report.sets {
        let status = match &s.action {
            RotateAction::Started => "started: first variant live".to_string(),
            RotateAction::Rotated => "rotated".to_string(),
            RotateAction::Kept => "kept for another period".to_string(),
            RotateAction::NotDue => "not due".to_string(),
            RotateAction::Planned(what) => format!("dry run: would {what}"),
            RotateAction::Unsupported => "destination cannot swap creatives".to_string(),
            RotateAction::NoVariant => "every variant is retired".to_string(),
            RotateAction::Failed(e) => format!("FAILED (history unchanged): {e}"),
        };
        let mut retired = if s.retired.is_empty() {
            String::new()
        } else {
            format!("; retired {}", s.retired.join(", "))
        };
        if let Some(reason) = &s.reason {
            retired.push_str(&format!(" (early: {reason})"));
        }
        println!(
            "{:<24} {:<18} {:<14} {:<12} {:<12} {:<12} {:<20} {status}{retired}",
            s.set,
            s.segment,
            s.destination,
            s.strategy,
            s.from.as_deref().unwrap_or("-"),
            s.to.as_deref().unwrap_or("-"),
            s.next_due
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "-".into()),
        );
    }
}
