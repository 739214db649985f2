//! The command line, as documented in the README and DESIGN §3.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::settings_load::DEFAULT_CONFIG;
use campaignd_store::runs::Job;

/// The lift options `report` and `kpis` share, declared once so both spell and default them alike.
#[derive(Debug, Args)]
pub struct LiftArgs {
    /// Print the lift of every sync with a holdout (treatment vs holdout, 95 % intervals): `report`
    /// prints it instead of the metrics, `kpis` after the KPIs.
    #[arg(long)]
    pub lift: bool,
    /// With --lift: days after assignment within which an order counts.
    #[arg(long, default_value_t = campaignd_engine::lift::DEFAULT_WINDOW_DAYS)]
    pub window: i64,
    /// With --lift: pin "now" (RFC 3339); orders after it are not counted.
    #[arg(long, value_parser = parse_time)]
    pub as_of: Option<DateTime<Utc>>,
}

/// campaignd keeps a shop's marketing audiences true to its customer data.
#[derive(Debug, Parser)]
#[command(name = "campaignd", version, about)]
pub struct Cli {
    /// Configuration file (environment variables CAMPAIGND__SECTION__KEY override any key).
    #[arg(long, global = true, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the store's migrations.
    Migrate,
    /// Load customers, orders, events or suppressions from CSV or JSON Lines (by extension).
    Import {
        /// What the file holds.
        #[arg(value_enum)]
        kind: ImportKindArg,
        /// The file (.csv, .jsonl or .ndjson).
        file: PathBuf,
        /// Reject the whole file, writing nothing, if any row is bad.
        #[arg(long)]
        strict: bool,
    },
    /// Create a demo store with a synthetic shop and compute the default segments.
    Demo {
        /// How many customers to generate.
        #[arg(long, default_value_t = 5000)]
        customers: usize,
        /// Random seed (the same seed gives the same shop).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// SQLite file to create (replaced if it exists).
        #[arg(long, default_value = "demo.db")]
        db: PathBuf,
        /// Pin "now" (RFC 3339); default: the wall clock. The shop, its segments, the sync and the
        /// holdout are placed 35 days before it and the campaign's orders in the 30 days after the
        /// sync, so `report --lift` at "now" sees the whole campaign.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<DateTime<Utc>>,
    },
    /// Segment definitions, sizes and members.
    Segments {
        /// Which segment command.
        #[command(subcommand)]
        command: SegmentsCommand,
    },
    /// Push each configured [[sync]]: only what changed since the platform last acknowledged.
    Sync {
        /// Only syncs to this destination.
        #[arg(long)]
        destination: Option<String>,
        /// Only syncs of this segment.
        #[arg(long)]
        segment: Option<String>,
        /// Print the plan (adds/removes per sync) and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Resend everyone (replace-all where the platform has it).
        #[arg(long)]
        full: bool,
        /// Date new holdout/treatment assignments at this instant (RFC 3339, not in the future)
        /// instead of now, e.g. to replay a campaign that started earlier; the run log keeps both.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<DateTime<Utc>>,
    },
    /// Run the daemon: scheduled recompute/sync (and rotate, metrics pull), leader leases across
    /// replicas, the admin HTTP server and report page; stops cleanly on SIGTERM/SIGINT.
    Run,
    /// Advance every [[creative_set]] whose period is over (the first rotate makes the first variant live).
    Rotate {
        /// Pin "now" (RFC 3339) so runs are reproducible.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<DateTime<Utc>>,
        /// Print what would change; swap and record nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Performance metrics from the platforms.
    Metrics {
        /// Which metrics command.
        #[command(subcommand)]
        command: MetricsCommand,
    },
    /// Impressions, clicks, conversions, spend, revenue, CTR, CVR, CPA and ROAS by segment, channel,
    /// creative and period.
    Report {
        /// First day: a date (2025-06-01) or a window ending at --until (30d, 4w).
        #[arg(long, default_value = "30d")]
        since: String,
        /// Last day (default: today, UTC).
        #[arg(long)]
        until: Option<NaiveDate>,
        /// Dimensions, comma-separated: segment, channel, creative, week, day.
        #[arg(long, default_value = campaignd_engine::report::DEFAULT_DIMENSIONS)]
        by: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
        #[command(flatten)]
        lift: LiftArgs,
    },
    /// First-party KPIs per segment and period from the store: members, buyers, orders, revenue, AOV,
    /// conversion, retention, revenue per member.
    Kpis {
        /// First day: a date (2025-06-01) or a window ending at --until (30d, 8w).
        #[arg(long, default_value = "8w")]
        since: String,
        /// Last day (default: today, UTC).
        #[arg(long)]
        until: Option<NaiveDate>,
        /// `segment` and one period: day, week or month.
        #[arg(long, default_value = "segment,week")]
        by: String,
        /// Days after joining within which an order counts as a conversion.
        #[arg(long, default_value_t = 30)]
        conversion_days: i64,
        /// Only this segment.
        #[arg(long)]
        segment: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
        #[command(flatten)]
        lift: LiftArgs,
    },
    /// Recent job runs with outcome and counts.
    Runs {
        /// How many runs to show.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Only runs of this job: the demo and a daemon record a rotate and a metrics run a day,
        /// which would hide the last sync. A name no job records is refused rather than listing
        /// nothing.
        #[arg(long, value_parser = job_name())]
        job: Option<Job>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Measure performance and print figures (built with `--features bench`).
    #[cfg(feature = "bench")]
    Bench {
        /// Which benchmark.
        #[command(subcommand)]
        command: BenchCommand,
    },
}

/// `segments ...`.
#[derive(Debug, Subcommand)]
pub enum SegmentsCommand {
    /// Every configured segment with its size and last change.
    List {
        /// List the built-in templates and their parameters instead.
        #[arg(long)]
        templates: bool,
    },
    /// One segment: rule, compiled SQL, size, last run's joined/left.
    Show {
        /// The segment's name.
        name: String,
    },
    /// Recompute segments in the database.
    Recompute {
        /// Pin "now" (RFC 3339) so runs are reproducible.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<DateTime<Utc>>,
        /// Only this segment.
        #[arg(long)]
        segment: Option<String>,
    },
    /// The current members, one customer id per line (csv adds email, phone, joined_at).
    Members {
        /// The segment's name.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "lines")]
        format: MembersFormat,
    },
}

/// `bench ...`.
#[cfg(feature = "bench")]
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Generate a shop and time the recompute of every template against the raw SQL.
    Recompute {
        /// Customers to generate (orders ≈ 3x, events ≈ 6x).
        #[arg(long, default_value_t = 100_000)]
        customers: usize,
        /// Store to benchmark: a SQLite URL (default: a temporary file) or an empty Postgres database.
        #[arg(long)]
        store: Option<String>,
        /// Random seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// First sync of a large audience to a local fake Meta, then an incremental sync after churn.
    Sync {
        /// Audience size.
        #[arg(long, default_value_t = 100_000)]
        members: usize,
        /// Share of members that change between the two syncs, in percent (half leave, half join).
        #[arg(long, default_value_t = 1.0)]
        churn: f64,
    },
}

/// `metrics ...`.
#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Pull daily metrics from every destination that reports them (re-pulling a day replaces it).
    Pull {
        /// First day (default: 6 days before --until).
        #[arg(long)]
        since: Option<NaiveDate>,
        /// Last day (default: today, UTC).
        #[arg(long)]
        until: Option<NaiveDate>,
    },
}

/// Output of `report`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns for people.
    Table,
    /// CSV with a header row; empty ratios are empty fields.
    Csv,
    /// A JSON array of flat rows; empty ratios are null.
    Json,
}

/// Output of `segments members`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MembersFormat {
    /// One customer id per line.
    Lines,
    /// CSV with customer_id, email, phone, joined_at.
    Csv,
}

/// What an import file holds.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportKindArg {
    /// customers(id, email, phone, ...).
    Customers,
    /// orders(id, customer_id, placed_at, total, ...).
    Orders,
    /// events(id?, customer_id, kind, occurred_at, properties).
    Events,
    /// suppressions(identifier_kind, identifier, reason, created_at).
    Suppressions,
}

/// Parses an RFC 3339 timestamp for `--as-of`.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("expected an RFC 3339 time like 2025-06-01T00:00:00Z: {e}"))
}

/// `--job`: the names the run log records, listed in `--help` and in the error for any other.
fn job_name() -> impl TypedValueParser<Value = Job> {
    clap::builder::PossibleValuesParser::new(Job::ALL.map(Job::as_str))
        .try_map(|name: String| Job::from_name(&name).ok_or(format!("no job is named {name:?}")))
}
