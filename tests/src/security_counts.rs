//! A `metrics` recorder that counts `hardening_security_events_total` by its `event` label,
//! for asserting that each security event is counted once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use metrics::{Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};

/// Counters by their `event` label; gauges and histograms are not used here.
#[derive(Debug, Default)]
pub struct Counts(Mutex<HashMap<String, Arc<Count>>>);

#[derive(Debug, Default)]
struct Count(Mutex<u64>);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        if let Ok(mut n) = self.0.lock() {
            *n += value;
        }
    }
    fn absolute(&self, value: u64) {
        if let Ok(mut n) = self.0.lock() {
            *n = value;
        }
    }
}

impl metrics::Recorder for Counts {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        assert_eq!(key.name(), "hardening_security_events_total");
        let event = key
            .labels()
            .find(|l| l.key() == "event")
            .map(|l| l.value().to_owned())
            .expect("an `event` label");
        let mut counts = self.0.lock().expect("the counts' lock");
        Counter::from_arc(counts.entry(event).or_default().clone())
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

impl Counts {
    /// Each event counted so far, with its count.
    pub fn of(&self) -> HashMap<String, u64> {
        let counts = self.0.lock().expect("the counts' lock");
        counts
            .iter()
            .map(|(event, n)| (event.clone(), n.0.lock().map_or(0, |n| *n)))
            .collect()
    }
}

/// Runs `future` on a fresh current-thread runtime (the server tasks it spawns run on this
/// thread too) with `counts` as the metrics recorder.
pub fn recording<T>(counts: &Counts, future: impl std::future::Future<Output = T>) -> T {
    metrics::with_local_recorder(counts, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(future)
    })
}
