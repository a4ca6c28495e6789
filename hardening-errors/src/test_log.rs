//! Log capture for tests (feature `test-util`): the tracing events of the test running on
//! this thread, kept for its assertions, whatever other tests do on other threads.
//!
//! A capture does not install a subscriber of its own: the first one installs, once for the
//! process, a global subscriber that hands each event to the capture of the thread it is
//! emitted on (if any). A subscriber per test (`tracing::subscriber::set_default`) loses
//! events: tracing caches each callsite's interest for every thread, and while one scoped
//! subscriber is the only one alive, a callsite first reached on another thread (another
//! test, with no subscriber) is asked of that thread's subscriber alone, none, and cached as
//! never enabled, so this thread's event there is dropped. The global subscriber is the one
//! every thread asks: a callsite is cached as "ask each time", and each event goes where its
//! thread says.
//!
//! A test binary that uses it cannot set a global subscriber of its own (nor scoped ones
//! for the events it captures). Events emitted on other threads (a multi-threaded runtime's
//! workers, `spawn_blocking`) are not captured: run the test on a current-thread runtime.
//!
//! ```
//! use hardening_errors::test_log::Captured;
//! use tracing::Level;
//!
//! let log = Captured::default();
//! log.during(|| tracing::warn!(target: "app", user = 7, setting = "x", "hardening loosened"));
//! let lines = log.find(Level::WARN, "loosened");
//! assert_eq!(lines.len(), 1);
//! assert_eq!(lines[0].target, "app");
//! assert_eq!(lines[0].field("setting"), Some("x"));
//! assert_eq!(lines[0].fields_debug(), r#"message=hardening loosened user=7 setting="x""#);
//!
//! // Outside `during` (or after its guard drops), nothing more is kept.
//! tracing::warn!(target: "app", "not kept");
//! assert_eq!(log.lines().len(), 1);
//! ```

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, Once, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

/// One event: its level, target and fields (`message` among them).
#[derive(Debug, Clone)]
pub struct Line {
    /// The event's level.
    pub level: Level,
    /// The event's target.
    pub target: String,
    fields: Vec<(String, Value)>,
}

/// A field's value as recorded: a string as it is, anything else as `Debug` writes it.
#[derive(Debug, Clone)]
enum Value {
    Str(String),
    Debug(String),
}

impl Line {
    /// The value of the field `name` (a string field as it is, any other as `Debug` writes
    /// it), if the event has one.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| match value {
                Value::Str(s) | Value::Debug(s) => s.as_str(),
            })
    }

    /// The event's message.
    pub fn message(&self) -> &str {
        self.field("message").unwrap_or_default()
    }

    /// Every field as `name=value`, each value as `Debug` writes it (a string quoted and
    /// escaped, the message as written), joined by spaces.
    pub fn fields_debug(&self) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(name, value)| match value {
                Value::Str(s) => format!("{name}={s:?}"),
                Value::Debug(d) => format!("{name}={d}"),
            })
            .collect();
        fields.join(" ")
    }
}

/// The events emitted on the threads that capture into it: [`capture`](Self::capture) or
/// [`during`](Self::during). Clones share the events.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<Line>>>);

/// While it lives, this thread's events go to its capture; dropped, the thread's capture is
/// what it was before. Not `Send`: it ends the capture of the thread that made it.
#[derive(Debug)]
#[must_use = "the capture ends when the guard is dropped"]
pub struct CaptureGuard {
    previous: Option<Captured>,
    _this_thread: PhantomData<*const ()>,
}

thread_local! {
    static CURRENT: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

impl Captured {
    /// Captures this thread's events (tasks of a current-thread runtime driven here too)
    /// until the guard drops.
    ///
    /// # Panics
    ///
    /// If another global subscriber was set in this process: the capture needs its own.
    pub fn capture(&self) -> CaptureGuard {
        install_global_subscriber();
        let previous = CURRENT.with(|current| current.replace(Some(self.clone())));
        CaptureGuard {
            previous,
            _this_thread: PhantomData,
        }
    }

    /// Runs `f` with this thread's events captured.
    ///
    /// # Panics
    ///
    /// As [`capture`](Self::capture).
    pub fn during<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.capture();
        f()
    }

    /// The events so far.
    pub fn lines(&self) -> Vec<Line> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The events so far, forgotten.
    pub fn take(&self) -> Vec<Line> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Forgets the events so far.
    pub fn clear(&self) {
        self.take();
    }

    /// The events so far at `level` whose message contains `text`.
    pub fn find(&self, level: Level, text: &str) -> Vec<Line> {
        self.lines()
            .into_iter()
            .filter(|l| l.level == level && l.message().contains(text))
            .collect()
    }

    fn push(&self, line: Line) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
}

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // `try_with`: a guard dropped while the thread ends has nothing left to restore.
        let _ = CURRENT.try_with(|current| current.replace(previous));
    }
}

/// The capture of the calling thread, if any.
fn current() -> Option<Captured> {
    CURRENT
        .try_with(|current| current.try_borrow().ok().and_then(|c| c.clone()))
        .ok()
        .flatten()
}

fn install_global_subscriber() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if tracing::subscriber::set_global_default(ToThisThreadsCapture).is_err() {
            panic!(
                "hardening_errors::test_log needs the global tracing subscriber, and another \
                 was set in this process: capture with one or the other"
            );
        }
    });
}

/// The global subscriber: every callsite "ask each time", each event to the capture of the
/// thread it is emitted on.
struct ToThisThreadsCapture;

impl Subscriber for ToThisThreadsCapture {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        CURRENT
            .try_with(|current| current.try_borrow().is_ok_and(|c| c.is_some()))
            .unwrap_or(false)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let Some(captured) = current() else { return };
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        captured.push(Line {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

struct Fields<'a>(&'a mut Vec<(String, Value)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .push((field.name().to_owned(), Value::Str(value.to_owned())));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .push((field.name().to_owned(), Value::Debug(format!("{value:?}"))));
    }
}
