//! A tracing subscriber that keeps every event, for this crate's unit tests.

use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One event: its level, target and fields (`message` among them), as text.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) level: Level,
    pub(crate) target: String,
    pub(crate) fields: Vec<(String, String)>,
}

impl Line {
    /// The value of the field `name`, if the event has one.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The event's message.
    pub(crate) fn message(&self) -> &str {
        self.field("message").unwrap_or_default()
    }
}

/// Keeps every event; install with `tracing::subscriber::set_default(captured.clone())`
/// (this thread only, so a current-thread runtime's tasks too).
#[derive(Debug, Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<Line>>>);

impl Captured {
    /// The events so far.
    pub(crate) fn lines(&self) -> Vec<Line> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Forgets the events so far.
    pub(crate) fn clear(&self) {
        if let Ok(mut lines) = self.0.lock() {
            lines.clear();
        }
    }

    /// The events so far at `level` whose message contains `text`.
    pub(crate) fn find(&self, level: Level, text: &str) -> Vec<Line> {
        self.lines()
            .into_iter()
            .filter(|l| l.level == level && l.message().contains(text))
            .collect()
    }
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl Subscriber for Captured {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // Asked again each time, as hardening-headers' capture does: other tests on other
        // threads install and drop subscribers of their own, and an interest cached while
        // none of ours was live would hide this thread's events.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        let line = Line {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        };
        if let Ok(mut lines) = self.0.lock() {
            lines.push(line);
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
