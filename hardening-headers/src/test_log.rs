//! A test subscriber for this crate's unit tests: the warnings logged to one target.

use std::sync::{Arc, Mutex};

/// The `WARN` events of one target while it is the thread's subscriber: each one's fields,
/// `name=value` joined by spaces.
#[derive(Debug, Clone)]
pub(crate) struct Warnings {
    target: &'static str,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Warnings {
    pub(crate) fn new(target: &'static str) -> Self {
        Self {
            target,
            lines: Arc::default(),
        }
    }

    /// What was logged so far, emptied.
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap())
    }

    /// What `target` logs at `WARN` on this thread while `f` runs.
    pub(crate) fn during(target: &'static str, f: impl FnOnce()) -> Vec<String> {
        let warnings = Self::new(target);
        tracing::subscriber::with_default(warnings.clone(), f);
        warnings.take()
    }
}

impl tracing::Subscriber for Warnings {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Asked again each time: other tests run on other threads.
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        if *meta.level() == tracing::Level::WARN && meta.target() == self.target {
            let mut fields = Vec::new();
            event.record(
                &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                    fields.push(format!("{}={value:?}", field.name()));
                },
            );
            self.lines.lock().unwrap().push(fields.join(" "));
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
