//! The `campaignd` binary: the CLI a person runs by hand and the entry point of the daemon.
//!
//! This is the only place `anyhow` is used; everything below returns typed errors. Exit codes follow
//! DESIGN §3: 0 success, 1 a job failed (partly or whole), 2 bad usage or configuration.

mod admin;
mod admin_insights;
#[cfg(feature = "bench")]
mod bench;
mod cli;
mod commands;
mod context;
mod daemon;
mod insights;
mod progress;
mod reporting;
mod rotate;
mod settings_load;

use std::process::ExitCode;

use clap::Parser;

/// A failure at the binary's edge, carrying the exit code the user should see.
#[derive(Debug)]
pub struct Failure {
    /// 1 for a failed job, 2 for bad usage or configuration.
    pub code: u8,
    /// What to print.
    pub error: anyhow::Error,
}

impl Failure {
    /// A configuration or usage problem (exit 2).
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: 2,
            error: error.into(),
        }
    }

    /// A job that failed (exit 1).
    pub fn job(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: 1,
            error: error.into(),
        }
    }
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("CAMPAIGND_LOG").unwrap_or_else(|_| {
            // The daemon logs what it does; one-shot commands only warn, and show the progress of
            // long work (see `progress`). Segment queries over a whole shop legitimately take seconds:
            // sqlx's slow-statement warnings would only be noise.
            let level = match args.command {
                cli::Command::Run => "info,sqlx::query=error",
                _ => "warn,sqlx::query=error,campaignd::progress=info",
            };
            tracing_subscriber::EnvFilter::new(level)
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, so log files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match args.log_format {
        cli::LogFormat::Json => builder.json().init(),
        cli::LogFormat::Human => builder.init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::dispatch(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}
