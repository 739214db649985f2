//! What each segment earns (issue 11): `campaignd kpis` (first-party KPIs per segment and period from
//! the store) and `campaignd report --lift` / `kpis --lift` (treatment vs holdout per sync, with 95 %
//! intervals), plus the demo's simulated campaign response that gives the lift something to measure.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::{anyhow, Context};
use chrono::{DateTime, Duration, NaiveDate, Utc};

use campaignd_connectors::Contact;
use campaignd_core::model::Channel;
use campaignd_engine::lift::{self, LiftQuery, LiftRow};
use campaignd_engine::report;
use campaignd_engine::Settings;
use campaignd_store::kpis::{KpiQuery, KpiRow, Period};
use campaignd_store::Store;

use crate::cli::ReportFormat;
use crate::context::open_store;
use crate::reporting::csv_field;
use crate::Failure;

/// Parses `kpis`' options: `--by` must be `segment` plus one of day, week, month.
pub fn kpi_query(
    since: &str,
    until: NaiveDate,
    by: &str,
    conversion_days: i64,
    segment: Option<String>,
) -> Result<KpiQuery, Failure> {
    let mut period = None;
    for part in by.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "segment" => {}
            "day" => period = Some(Period::Day),
            "week" => period = Some(Period::Week),
            "month" => period = Some(Period::Month),
            other => {
                return Err(Failure::usage(anyhow!(
                    "--by: unknown dimension \"{other}\" (kpis are by segment and one of day, week, month)"
                )))
            }
        }
    }
    if conversion_days <= 0 {
        return Err(Failure::usage(anyhow!(
            "--conversion-days must be at least 1"
        )));
    }
    Ok(KpiQuery {
        since: report::parse_since(since, until).map_err(Failure::usage)?,
        until,
        period: period.unwrap_or(Period::Week),
        conversion_days,
        segment,
    })
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.2}%", v * 100.0)).unwrap_or_default()
}

fn money(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_default()
}

const KPI_COLUMNS: [&str; 12] = [
    "segment",
    "period",
    "members",
    "buyers",
    "orders",
    "revenue",
    "aov",
    "joined",
    "conversion",
    "retention",
    "revenue_per_member",
    "converted",
];

/// The KPI rows as an aligned table (ratios blank when undefined).
pub fn render_kpi_table(rows: &[KpiRow]) -> String {
    let mut out = format!(
        "{:<22} {:<10} {:>8} {:>7} {:>7} {:>11} {:>8} {:>7} {:>10} {:>9} {:>9}\n",
        "segment",
        "period",
        "members",
        "buyers",
        "orders",
        "revenue",
        "aov",
        "joined",
        "conversion",
        "retention",
        "rev/member"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<22} {:<10} {:>8} {:>7} {:>7} {:>11.2} {:>8} {:>7} {:>10} {:>9} {:>9}\n",
            r.segment,
            r.period.to_string(),
            r.members,
            r.buyers,
            r.orders,
            r.revenue,
            money(r.aov),
            r.joined,
            pct(r.conversion_rate),
            pct(r.retention),
            money(r.revenue_per_member),
        ));
    }
    if rows.is_empty() {
        out.push_str(
            "(no segment had members in the window; run `campaignd segments recompute`)\n",
        );
    }
    out
}

fn render_kpi_csv(rows: &[KpiRow]) -> String {
    let mut out = KPI_COLUMNS.join(",");
    out.push('\n');
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        let fields = [
            csv_field(&r.segment),
            r.period.to_string(),
            r.members.to_string(),
            r.buyers.to_string(),
            r.orders.to_string(),
            r.revenue.to_string(),
            opt(r.aov),
            r.joined.to_string(),
            opt(r.conversion_rate),
            opt(r.retention),
            opt(r.revenue_per_member),
            r.converted.to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

fn write_stdout(text: &str) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .context("writing to stdout")
        .map_err(Failure::job)
}

fn json(value: &impl serde::Serialize) -> Result<String, Failure> {
    let mut s = serde_json::to_string_pretty(value).map_err(Failure::job)?;
    s.push('\n');
    Ok(s)
}

/// `campaignd kpis`.
pub async fn kpis(
    settings: &Settings,
    query: &KpiQuery,
    format: ReportFormat,
) -> Result<(), Failure> {
    if let Some(seg) = &query.segment {
        if !settings.segments.iter().any(|s| &s.name == seg) {
            return Err(Failure::usage(anyhow!("no segment named \"{seg}\"")));
        }
    }
    let store = open_store(settings).await?;
    let rows = store.kpis(query).await.map_err(Failure::job)?;
    store.close().await;
    let text = match format {
        ReportFormat::Table => render_kpi_table(&rows),
        ReportFormat::Csv => render_kpi_csv(&rows),
        ReportFormat::Json => json(&rows)?,
    };
    write_stdout(&text)
}

fn render_lift_csv(rows: &[LiftRow]) -> String {
    let mut out = String::from(
        "segment,destination,audience,window_days,treatment_members,holdout_members,treatment_conversion,holdout_conversion,\
         conversion_lift,conversion_lift_low,conversion_lift_high,conversion_relative,conversion_relative_low,conversion_relative_high,\
         treatment_revenue_per_member,holdout_revenue_per_member,revenue_per_member_lift,revenue_per_member_lift_low,revenue_per_member_lift_high,\
         treatment_aov,holdout_aov,aov_lift,aov_lift_low,aov_lift_high,indistinguishable,warnings\n",
    );
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        let l = &r.lift;
        let iv = |i: Option<campaignd_core::stats::Interval>| {
            [opt(i.map(|i| i.low)), opt(i.map(|i| i.high))]
        };
        let mut f = vec![
            csv_field(&r.segment),
            csv_field(&r.destination),
            csv_field(&r.audience),
            r.window_days.to_string(),
            l.treatment.members.to_string(),
            l.holdout.members.to_string(),
            opt(l.treatment.conversion_rate),
            opt(l.holdout.conversion_rate),
            opt(l.conversion.absolute),
        ];
        f.extend(iv(l.conversion.absolute_interval));
        f.push(opt(l.conversion.relative));
        f.extend(iv(l.conversion.relative_interval));
        f.extend([
            opt(l.treatment.revenue_per_member),
            opt(l.holdout.revenue_per_member),
            opt(l.revenue_per_member.absolute),
        ]);
        f.extend(iv(l.revenue_per_member.absolute_interval));
        f.extend([
            opt(l.treatment.aov),
            opt(l.holdout.aov),
            opt(l.aov.absolute),
        ]);
        f.extend(iv(l.aov.absolute_interval));
        f.push(l.indistinguishable.to_string());
        f.push(csv_field(&l.warnings.join("; ")));
        out.push_str(&f.join(","));
        out.push('\n');
    }
    out
}

/// `campaignd report --lift` / `kpis --lift`.
pub async fn lift(
    settings: &Settings,
    window: i64,
    format: ReportFormat,
    as_of: DateTime<Utc>,
) -> Result<(), Failure> {
    if window <= 0 {
        return Err(Failure::usage(anyhow!("--window must be at least 1 day")));
    }
    let store = open_store(settings).await?;
    let rows = lift_rows(&store, settings, window, as_of).await?;
    store.close().await;
    let text = match format {
        ReportFormat::Table => lift::render_lift(&rows),
        ReportFormat::Csv => render_lift_csv(&rows),
        ReportFormat::Json => json(&rows)?,
    };
    write_stdout(&text)
}

async fn lift_rows(
    store: &Store,
    settings: &Settings,
    window: i64,
    as_of: DateTime<Utc>,
) -> Result<Vec<LiftRow>, Failure> {
    lift::lift_report(
        store,
        settings,
        &LiftQuery {
            window_days: window,
            as_of,
            segment: None,
        },
    )
    .await
    .map_err(Failure::job)
}

/// Every ad-consenting, unsuppressed member of `segment` as a contact (held-out ones included).
async fn sync_contacts(store: &Store, segment: &str) -> Result<Vec<Contact>, Failure> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = store
            .sync_candidates(segment, Channel::Ads, &after, 5_000)
            .await
            .map_err(Failure::job)?;
        let Some(last) = page.last() else { break };
        after = last.contact.customer_id.clone();
        let done = page.len() < 5_000;
        out.extend(page.into_iter().map(|c| c.contact));
        if done {
            break;
        }
    }
    Ok(out)
}

/// The demo's third part: the synthetic shop's response to the campaign over `days` after the sync —
/// members the sandbox audience holds order with the sandbox's `treated_conversion`, everyone else
/// of the sync (its holdout) with `baseline_conversion` — then the KPI table and the lift as of
/// `as_of` (the demo's "now", after the campaign), exactly what `report --lift` shows then.
pub async fn demo_insights(
    store: &Store,
    settings: &Settings,
    synced_at: DateTime<Utc>,
    as_of: DateTime<Utc>,
    days: i64,
    seed: u64,
) -> Result<(), Failure> {
    let mut simulated = 0u64;
    let mut seen = BTreeSet::new();
    for sync in &settings.syncs {
        if settings.holdout_plan(sync).is_none() {
            continue;
        }
        let Some(sandbox) = settings
            .destinations
            .get(&sync.destination)
            .and_then(|d| d.as_sandbox())
        else {
            continue;
        };
        let response = campaignd_connectors::sandbox::SandboxResponse::from_config(sandbox)
            .map_err(|e| Failure::usage(anyhow!("[destinations.{}] {e}", sync.destination)))?;
        let groups = store
            .holdout_groups(&sync.destination, sync.audience())
            .await
            .map_err(Failure::job)?;
        let contacts = sync_contacts(store, &sync.segment).await?;
        let received = campaignd_connectors::sandbox::received_customers(
            &sandbox.path,
            sync.audience(),
            &contacts,
        )
        .map_err(|e| Failure::job(anyhow!("reading the sandbox audience: {e}")))?;
        let members: Vec<(String, bool)> = groups
            .keys()
            .filter(|id| seen.insert((*id).clone()))
            .map(|id| (id.clone(), received.contains(id)))
            .collect();
        let orders = campaignd_core::synth::campaign_response(
            &members,
            synced_at,
            days,
            response.treated_conversion,
            response.baseline_conversion,
            seed,
        );
        simulated += orders.len() as u64;
        store.upsert_orders(&orders).await.map_err(Failure::job)?;
    }
    if simulated == 0 {
        return Ok(());
    }
    println!();
    println!(
        "campaign response: {simulated} orders simulated over the {days} days after the sync (sandbox treated_conversion vs baseline_conversion)"
    );
    let until = as_of.date_naive();
    let query = KpiQuery {
        since: until - Duration::weeks(8),
        until,
        period: Period::Month,
        conversion_days: days,
        segment: None,
    };
    let rows = store.kpis(&query).await.map_err(Failure::job)?;
    println!();
    println!("first-party KPIs by segment and month (campaignd kpis --by segment,month):");
    print!("{}", render_kpi_table(&rows));
    let lift = lift_rows(store, settings, days, as_of).await?;
    println!();
    println!("lift, treatment vs holdout (campaignd report --lift):");
    print!("{}", lift::render_lift(&lift));
    Ok(())
}
