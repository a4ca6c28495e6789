//! Security events inside `Hardening` when a layer it wraps has reported the rejection
//! already: logged once, counted once (`hardening_security_events_total`), and logged again
//! only when the response changed into another rejection on its way out. Also a standalone
//! headers layer's `bad_host` inside it, `ProblemLayer`'s reports inside it, and a `Hardening`
//! inside another.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use hardening_core::Hardening;
use hardening_core::ratelimit::{Policy, Quota, RateLimitLayer, RateLimiter};
use hardening_tests::Captured;
use http::{Request, StatusCode};
use metrics::{Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};
use tower::ServiceExt;

/// Counters by their `event` label; gauges and histograms are not used here.
#[derive(Default)]
struct Counts(Mutex<HashMap<String, Arc<Count>>>);

#[derive(Default)]
struct Count(Mutex<u64>);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        *self.0.lock().unwrap() += value;
    }
    fn absolute(&self, value: u64) {
        *self.0.lock().unwrap() = value;
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
            .unwrap();
        let count = self.0.lock().unwrap().entry(event).or_default().clone();
        Counter::from_arc(count)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

impl Counts {
    fn of(&self) -> HashMap<String, u64> {
        let counts = self.0.lock().unwrap();
        counts
            .iter()
            .map(|(event, n)| (event.clone(), *n.0.lock().unwrap()))
            .collect()
    }
}

/// Runs `future` on a fresh runtime with `counts` as the metrics recorder.
fn recording<T>(counts: &Counts, future: impl std::future::Future<Output = T>) -> T {
    metrics::with_local_recorder(counts, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    })
}

/// A route whose own limit admits one request, under `Hardening::strict()`, with `between`
/// applied between the two layers; sends two requests and returns the second's status.
fn second_request_through(between: impl FnOnce(Router) -> Router, counts: &Counts) -> StatusCode {
    let limit = Quota::per_hour(NonZeroU32::new(1).unwrap());
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(RateLimitLayer::new(RateLimiter::new([Policy::global(
            "route-budget",
            limit,
        )])));
    let app = between(app).layer(Hardening::strict());
    recording(counts, async {
        let get = || Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), 200);
        app.oneshot(get()).await.unwrap().status()
    })
}

#[test]
fn a_rejection_the_layer_reported_is_logged_once_and_still_counted() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let counts = Counts::default();
    let status = second_request_through(|app| app, &counts);
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(captured.security_event_names(), ["rate_limited"]);
    assert_eq!(counts.of(), HashMap::from([("rate_limited".to_owned(), 1)]));
}

/// The layer's 429 turned into a 403 on its way to `Hardening` (keeping its extensions), with
/// `around` applied outside the middleware that turns it: logged as `rate_limited` then
/// `forbidden`, and each counted once.
fn a_429_made_403(around: impl FnOnce(Router) -> Router) {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let counts = Counts::default();
    let status = second_request_through(
        |app| {
            around(app.layer(axum::middleware::map_response(
                |mut res: axum::response::Response| async move {
                    if res.status() == StatusCode::TOO_MANY_REQUESTS {
                        *res.status_mut() = StatusCode::FORBIDDEN;
                    }
                    res
                },
            )))
        },
        &counts,
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        captured.security_event_names(),
        ["rate_limited", "forbidden"]
    );
    assert_eq!(
        counts.of(),
        HashMap::from([("rate_limited".to_owned(), 1), ("forbidden".to_owned(), 1)])
    );
}

#[test]
fn a_reported_rejection_changed_on_its_way_out_is_reported_as_what_it_became() {
    a_429_made_403(|app| app);
}

#[test]
fn a_rejection_changed_under_a_problem_layer_is_reported_there_and_counted_by_hardening() {
    // ProblemLayer logs the 403 (the status changed since the 429 was reported); Hardening
    // logs neither again and counts both.
    a_429_made_403(|app| app.layer(hardening_core::errors::ProblemLayer::new()));
}

#[test]
fn a_standalone_headers_layers_bad_host_inside_hardening_is_counted_once() {
    use hardening_core::headers::{HeaderPolicy, HttpsRedirect, SecurityHeadersLayer};
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let counts = Counts::default();
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(
            SecurityHeadersLayer::new(HeaderPolicy::api().build().unwrap())
                .https_redirect(HttpsRedirect::new()),
        )
        .layer(Hardening::strict());
    let req = Request::get("/")
        .header("host", "example.com:@evil.com")
        .body(Body::empty())
        .unwrap();
    let status = recording(&counts, async { app.oneshot(req).await.unwrap().status() });
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(captured.security_event_names(), ["bad_host"]);
    assert_eq!(counts.of(), HashMap::from([("bad_host".to_owned(), 1)]));
}

/// Runs one GET of `path` through `app` with `counts` as the metrics recorder.
fn status_of(app: Router, path: &str, counts: &Counts) -> StatusCode {
    let req = Request::get(path).body(Body::empty()).unwrap();
    recording(counts, async { app.oneshot(req).await.unwrap().status() })
}

/// A route answering 403 with `inner` between it and `Hardening::strict()`: the 403 is logged
/// once and counted once.
fn a_403_under(inner: impl FnOnce(Router) -> Router) {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let counts = Counts::default();
    let app = Router::new().route(
        "/",
        get(|| async { Err::<(), _>(hardening_core::errors::Error::Forbidden) }),
    );
    let app = inner(app).layer(Hardening::strict());
    assert_eq!(status_of(app, "/", &counts), StatusCode::FORBIDDEN);
    assert_eq!(captured.security_event_names(), ["forbidden"]);
    assert_eq!(counts.of(), HashMap::from([("forbidden".to_owned(), 1)]));
}

#[test]
fn a_problem_layers_report_inside_hardening_is_counted_once() {
    a_403_under(|app| app.layer(hardening_core::errors::ProblemLayer::new()));
}

#[test]
fn a_hardening_inside_another_is_logged_and_counted_once() {
    a_403_under(|app| app.layer(Hardening::strict()));
}
