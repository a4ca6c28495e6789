//! Why the unit tests capture logs through `hardening_errors::test_log` (one global
//! subscriber that hands each event to its thread's capture) and not a subscriber of their
//! own (`tracing::subscriber::set_default`): tracing caches each callsite's interest for every
//! thread, and while one scoped subscriber is the only one alive, a callsite first reached on
//! another thread is asked of that thread's subscriber alone (none: "never"), so the capturing
//! thread's event there is dropped. In a test binary, "another thread" is another test.
//!
//! One test in its own binary: the race needs the scoped subscriber to be the process's only
//! one, and the first half needs no global subscriber yet. Both halves are deterministic: the
//! other thread is joined before the capturing thread logs.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hardening_errors::test_log::Captured;
use tracing::Level;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// Counts the callsites it is asked about and the events it gets; asks for every event
/// (`Interest::sometimes()`), as the unit tests' own captures did.
#[derive(Debug, Clone, Default)]
struct Counting {
    asked: Arc<AtomicUsize>,
    events: Arc<AtomicUsize>,
}

impl Subscriber for Counting {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Interest::sometimes()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {
        self.events.fetch_add(1, Ordering::SeqCst);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// A callsite that the scoped subscriber's thread and another thread reach.
fn scoped_callsite() {
    tracing::warn!(target: "race", "logged under a scoped subscriber");
}

/// A callsite that a `test_log` capture's thread and another thread reach.
fn captured_callsite() {
    tracing::warn!(target: "race", "logged under a test_log capture");
}

#[test]
fn an_event_is_captured_though_another_thread_reached_its_callsite_first() {
    // The race: a scoped subscriber, the process's only one, is not even asked about a
    // callsite another thread reached first; the callsite is cached as never enabled.
    let scoped = Counting::default();
    let guard = tracing::subscriber::set_default(scoped.clone());
    std::thread::spawn(scoped_callsite).join().unwrap();
    scoped_callsite();
    drop(guard);
    let seen = (
        scoped.asked.load(Ordering::SeqCst),
        scoped.events.load(Ordering::SeqCst),
    );
    assert_eq!(
        seen,
        (0, 0),
        "(callsites asked about, events): the scoped subscriber saw the callsite; if tracing \
         no longer drops the event, a scoped capture would do"
    );

    // `test_log`: the global subscriber is asked, on whichever thread reaches the callsite
    // first, and the event goes to this thread's capture.
    let log = Captured::default();
    let _guard = log.capture();
    std::thread::spawn(captured_callsite).join().unwrap();
    captured_callsite();
    let lines = log.find(Level::WARN, "logged under a test_log capture");
    assert_eq!(lines.len(), 1, "{:?}", log.lines());
    assert_eq!(lines[0].target, "race");
    // The other thread's event went to no capture.
    assert_eq!(log.lines().len(), 1, "{:?}", log.lines());
}
