//! How long work shows it is moving: `import`, `segments recompute`, `sync` and the benches report to a
//! [`Progress`] handle, drawn here as a bar when stderr is a terminal, and otherwise (cron, CI, a log
//! collector) as a log line every `CAMPAIGND_PROGRESS_SECS` seconds (default 10; 0 = every step), with
//! target `campaignd::progress` at info, which one-shot commands show by default. Work that ends
//! within the interval prints nothing.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use campaignd_core::progress::{Progress, ProgressSink};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Seconds between progress log lines when stderr is not a terminal.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The progress handle for this process: a bar on a terminal, periodic log lines otherwise.
pub fn reporter() -> Progress {
    if std::io::stderr().is_terminal() {
        Progress::to(Arc::new(Bar::default()))
    } else {
        Progress::to(Arc::new(LogLines::new(interval())))
    }
}

/// The log-line interval from `CAMPAIGND_PROGRESS_SECS`, or the default (a bad value is reported).
fn interval() -> Duration {
    match std::env::var("CAMPAIGND_PROGRESS_SECS") {
        Err(_) => DEFAULT_INTERVAL,
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
            _ => {
                tracing::warn!(
                    value = %v,
                    "CAMPAIGND_PROGRESS_SECS is not a number of seconds; using {}",
                    DEFAULT_INTERVAL.as_secs()
                );
                DEFAULT_INTERVAL
            }
        },
    }
}

/// An indicatif bar on stderr (a spinner when the total is unknown).
#[derive(Default)]
struct Bar(Mutex<Option<ProgressBar>>);

impl ProgressSink for Bar {
    fn start(&self, label: &str, unit: &'static str, total: Option<u64>) {
        let counts = if unit == "bytes" {
            "{bytes}/{total_bytes} ({eta})".to_string()
        } else {
            format!("{{human_pos}}/{{human_len}} {unit} ({{eta}})")
        };
        let bar = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(&format!("{{msg}} [{{bar:30}}] {counts}"))
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template(&format!("{{spinner}} {{msg}} {{human_pos}} {unit}"))
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Some(old) = self.lock().replace(bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, units: u64) {
        if let Some(bar) = self.lock().as_ref() {
            bar.inc(units);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.lock().take() {
            bar.finish_and_clear();
        }
    }
}

impl Bar {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        // A panic while drawing leaves nothing half-updated worth refusing to draw again.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Log lines at most every `interval`, and a closing line for work that printed any.
struct LogLines {
    interval: Duration,
    state: Mutex<Option<Work>>,
}

/// The piece of work being reported.
struct Work {
    label: String,
    unit: &'static str,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_line: Instant,
    lines: u64,
}

impl LogLines {
    fn new(interval: Duration) -> LogLines {
        LogLines {
            interval,
            state: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Work>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Work {
    /// `label: done/total unit (pct %)`, or `label: done unit` without a total.
    fn line(&self) -> String {
        match self.total {
            Some(total) if total > 0 => format!(
                "{}: {}/{} {} ({:.0} %)",
                self.label,
                self.done,
                total,
                self.unit,
                100.0 * self.done as f64 / total as f64
            ),
            _ => format!("{}: {} {}", self.label, self.done, self.unit),
        }
    }
}

impl ProgressSink for LogLines {
    fn start(&self, label: &str, unit: &'static str, total: Option<u64>) {
        let now = Instant::now();
        *self.lock() = Some(Work {
            label: label.to_string(),
            unit,
            total,
            done: 0,
            started: now,
            last_line: now,
            lines: 0,
        });
    }

    fn advance(&self, units: u64) {
        let mut state = self.lock();
        let Some(work) = state.as_mut() else {
            return;
        };
        work.done += units;
        if work.last_line.elapsed() >= self.interval {
            tracing::info!(target: "campaignd::progress", "{}", work.line());
            work.last_line = Instant::now();
            work.lines += 1;
        }
    }

    fn finish(&self) {
        if let Some(work) = self.lock().take() {
            if work.lines > 0 {
                tracing::info!(
                    target: "campaignd::progress",
                    "{} — finished in {:.1}s",
                    work.line(),
                    work.started.elapsed().as_secs_f64()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_the_share_done_when_the_total_is_known() {
        let mut work = Work {
            label: "import customers a.csv".into(),
            unit: "bytes",
            total: Some(200),
            done: 50,
            started: Instant::now(),
            last_line: Instant::now(),
            lines: 0,
        };
        assert_eq!(work.line(), "import customers a.csv: 50/200 bytes (25 %)");
        work.total = None;
        assert_eq!(work.line(), "import customers a.csv: 50 bytes");
    }
}
