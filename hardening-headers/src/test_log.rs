//! The warnings one target logs, for this crate's unit tests: `hardening_errors::test_log`'s
//! capture, filtered.

use hardening_errors::test_log::{CaptureGuard, Captured};

/// The `WARN` events of one target on the threads that capture into it: each one's fields,
/// `name=value` joined by spaces.
#[derive(Debug, Clone)]
pub(crate) struct Warnings {
    target: &'static str,
    log: Captured,
}

impl Warnings {
    pub(crate) fn new(target: &'static str) -> Self {
        Self {
            target,
            log: Captured::default(),
        }
    }

    /// Captures this thread's events until the guard drops.
    pub(crate) fn capture(&self) -> CaptureGuard {
        self.log.capture()
    }

    /// What was logged so far, emptied.
    pub(crate) fn take(&self) -> Vec<String> {
        self.log
            .take()
            .into_iter()
            .filter(|line| line.level == tracing::Level::WARN && line.target == self.target)
            .map(|line| line.fields_debug())
            .collect()
    }

    /// What `target` logs at `WARN` on this thread while `f` runs.
    pub(crate) fn during(target: &'static str, f: impl FnOnce()) -> Vec<String> {
        let warnings = Self::new(target);
        warnings.log.during(f);
        warnings.take()
    }
}
