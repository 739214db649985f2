//! Progress of long work (import, recompute, sync, benchmarks), reported by the libraries and shown by
//! the binary: a bar on a terminal, periodic log lines otherwise.
//!
//! Libraries only count; how progress looks is the binary's business, so the store and the engine take
//! a [`Progress`] handle that does nothing unless the binary gave it a [`ProgressSink`].

use std::fmt;
use std::sync::Arc;

/// Where progress goes: implemented by the binary (terminal bar, log lines) and by tests.
pub trait ProgressSink: Send + Sync {
    /// A piece of work called `label` starts; `total` units if known (rows, bytes, segments, members).
    fn start(&self, label: &str, unit: &'static str, total: Option<u64>);
    /// `units` more are done.
    fn advance(&self, units: u64);
    /// The work is over (successfully or not).
    fn finish(&self);
}

/// A cheap, cloneable handle on a [`ProgressSink`]; the default reports nowhere.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<dyn ProgressSink>>);

impl Progress {
    /// Reports to `sink`.
    pub fn to(sink: Arc<dyn ProgressSink>) -> Progress {
        Progress(Some(sink))
    }

    /// Reports nowhere (what library callers that show nothing pass).
    pub fn none() -> Progress {
        Progress(None)
    }

    /// See [`ProgressSink::start`].
    pub fn start(&self, label: &str, unit: &'static str, total: Option<u64>) {
        if let Some(s) = &self.0 {
            s.start(label, unit, total);
        }
    }

    /// See [`ProgressSink::advance`].
    pub fn advance(&self, units: u64) {
        if let Some(s) = &self.0 {
            s.advance(units);
        }
    }

    /// See [`ProgressSink::finish`].
    pub fn finish(&self) {
        if let Some(s) = &self.0 {
            s.finish();
        }
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(reporting)"
        } else {
            "Progress(none)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Record(Mutex<Vec<String>>);

    impl ProgressSink for Record {
        fn start(&self, label: &str, unit: &'static str, total: Option<u64>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("start {label} {unit} {total:?}"));
        }
        fn advance(&self, units: u64) {
            self.0.lock().unwrap().push(format!("advance {units}"));
        }
        fn finish(&self) {
            self.0.lock().unwrap().push("finish".into());
        }
    }

    #[test]
    fn a_handle_forwards_to_its_sink_and_the_default_to_nothing() {
        let sink = Arc::new(Record::default());
        let p = Progress::to(sink.clone());
        p.start("import x", "rows", Some(3));
        p.advance(2);
        p.finish();
        Progress::default().advance(5);
        assert_eq!(
            *sink.0.lock().unwrap(),
            vec!["start import x rows Some(3)", "advance 2", "finish"]
        );
    }
}
