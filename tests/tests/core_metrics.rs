//! Security events inside `Hardening` when a layer it wraps has reported the rejection
//! already: logged once, counted once (`hardening_security_events_total`), and logged again
//! only when the response changed into another rejection on its way out. Also a standalone
//! headers layer's `bad_host` inside it, `ProblemLayer`'s reports inside it, and a `Hardening`
//! inside another (one request id). Also rejections found while reading an inner rejection
//! text (a panic, a timeout), one logged inside and turned into a success, an oversized body
//! under a `CostLayer`, and the policies `rate_limited` names.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use bytes::Bytes;
use hardening_core::Hardening;
use hardening_core::ratelimit::{CostLayer, Estimate, Policy, Quota, RateLimitLayer, RateLimiter};
use hardening_tests::security_counts::{Counts, recording};
use hardening_tests::{Captured, PanicsAfterOneChunk, UnknownSize};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

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

/// An event a layer inside reported under a name of its own (`report_rejection` is public):
/// logged once, by that layer, and counted once, by `Hardening`, under that name.
#[test]
fn an_event_of_its_own_reported_inside_hardening_is_counted_under_its_name() {
    use hardening_core::errors::{Problem, RequestId, report_rejection};
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let counts = Counts::default();
    let app = Router::new()
        .route(
            "/",
            get(|id: RequestId| async move {
                let mut res: axum::response::Response =
                    Problem::new(StatusCode::FORBIDDEN).into_http_response();
                report_rejection(&mut res, "ip_blocked", id, None, None);
                res
            }),
        )
        .layer(Hardening::strict());
    assert_eq!(status_of(app, "/", &counts), StatusCode::FORBIDDEN);
    assert_eq!(captured.security_event_names(), ["ip_blocked"]);
    assert_eq!(counts.of(), HashMap::from([("ip_blocked".to_owned(), 1)]));
}

/// A handler's refusal under a name of its own (`Problem::with_security_event`), at a status
/// whose event it replaces (401) and at one that has none (400): logged once under that name
/// in the request's span, with the client address, and counted once under it.
#[test]
fn a_handlers_named_event_is_logged_and_counted_under_its_name() {
    use hardening_core::errors::Problem;
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let counts = Counts::default();
    let app = Router::new()
        .route(
            "/signed",
            get(|| async {
                Problem::new(StatusCode::UNAUTHORIZED)
                    .with_security_event("webhook_signature_invalid")
            }),
        )
        .route(
            "/replayed",
            get(|| async {
                Problem::new(StatusCode::BAD_REQUEST).with_security_event("webhook_replayed")
            }),
        )
        .layer(Hardening::strict());
    let status = |path: &str| {
        let mut req = Request::get(path).body(Body::empty()).unwrap();
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40_000));
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        recording(&counts, app.clone().oneshot(req))
            .unwrap()
            .status()
    };
    assert_eq!(status("/signed"), StatusCode::UNAUTHORIZED);
    assert_eq!(status("/replayed"), StatusCode::BAD_REQUEST);
    assert_eq!(
        captured.security_event_names(),
        ["webhook_signature_invalid", "webhook_replayed"]
    );
    for (_, event) in captured.security_events() {
        assert_eq!(event["fields"]["client.address"], "127.0.0.1", "{event}");
        assert!(event["fields"]["request_id"].is_string(), "{event}");
    }
    assert_eq!(
        counts.of(),
        HashMap::from([
            ("webhook_signature_invalid".to_owned(), 1),
            ("webhook_replayed".to_owned(), 1)
        ])
    );
}

/// A panic in a streamed body, after the headers are out: the body ends with an error (the
/// server cuts the response off), one `panicked` event is logged and counted, and the log
/// has the panic with its secret redacted.
#[test]
fn a_panic_in_a_streamed_body_is_one_panicked_event() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let counts = Counts::default();
    let app = Router::new()
        .route(
            "/stream",
            get(|| async { Body::new(PanicsAfterOneChunk::default()) }),
        )
        .layer(Hardening::strict());
    let req = Request::get("/stream").body(Body::empty()).unwrap();
    let (status, read) = recording(&counts, async {
        let res = app.oneshot(req).await.unwrap();
        (res.status(), res.into_body().collect().await)
    });
    assert_eq!(status, StatusCode::OK);
    let err = read.expect_err("the body ends with an error");
    assert!(!err.to_string().contains("sk-live"), "{err}");
    assert_eq!(captured.security_event_names(), ["panicked"]);
    assert_eq!(counts.of(), HashMap::from([("panicked".to_owned(), 1)]));
    let logs = captured.text();
    assert!(logs.contains("the response body panicked"), "{logs}");
    assert!(!logs.contains("sk-live-4f9a2c"), "{logs}");
}

/// A standalone `RateLimitLayer` with a shadow-mode policy inside `Hardening`: its
/// `rate_limit_shadow` report is logged once (by it) and counted once (by `Hardening`), and
/// it does not stop the handler's own 403 further on from being reported as `forbidden`.
#[test]
fn a_standalone_layers_shadow_report_inside_hardening_is_counted_once() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let counts = Counts::default();
    let limiter = RateLimiter::new([Policy::global(
        "trial-budget",
        Quota::per_hour(NonZeroU32::new(1).unwrap()),
    )
    .shadow()]);
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .route("/closed", get(|| async { StatusCode::FORBIDDEN }))
        .layer(RateLimitLayer::new(limiter))
        .layer(Hardening::strict());
    assert_eq!(status_of(app.clone(), "/", &counts), StatusCode::OK);
    assert_eq!(status_of(app.clone(), "/", &counts), StatusCode::OK);
    assert_eq!(captured.security_event_names(), ["rate_limit_shadow"]);
    assert_eq!(
        counts.of(),
        HashMap::from([("rate_limit_shadow".to_owned(), 1)])
    );
    assert_eq!(status_of(app, "/closed", &counts), StatusCode::FORBIDDEN);
    assert_eq!(
        captured.security_event_names(),
        ["rate_limit_shadow", "rate_limit_shadow", "forbidden"]
    );
    assert_eq!(
        counts.of(),
        HashMap::from([
            ("rate_limit_shadow".to_owned(), 2),
            ("forbidden".to_owned(), 1)
        ])
    );
}

/// The same for a `CostLayer` whose budget is in shadow mode.
#[test]
fn a_cost_layers_shadow_report_inside_hardening_is_counted_once() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let counts = Counts::default();
    let budget = RateLimiter::new([Policy::global(
        "trial-tokens",
        Quota::per_hour(NonZeroU32::new(100).unwrap()),
    )
    .shadow()]);
    let cost = CostLayer::new(budget, Estimate::fixed(60))
        .max_estimate(NonZeroU32::new(60).unwrap())
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(cost)
        .layer(Hardening::strict());
    // Each body read to its end, so that each settles at its estimate: the second would
    // have been refused.
    let statuses = recording(&counts, async {
        let mut statuses = Vec::new();
        for _ in 0..2 {
            let req = Request::get("/").body(Body::empty()).unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            statuses.push(res.status());
            res.into_body().collect().await.unwrap();
        }
        statuses
    });
    assert_eq!(statuses, [StatusCode::OK, StatusCode::OK]);
    assert_eq!(captured.security_event_names(), ["rate_limit_shadow"]);
    assert_eq!(
        counts.of(),
        HashMap::from([("rate_limit_shadow".to_owned(), 1)])
    );
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

async fn respond(app: Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// A small rejection text (10 bytes by its size hint) that never arrives: its first poll
/// panics, or stays pending.
enum RejectionText {
    Panics,
    Stalls,
}

impl http_body::Body for RejectionText {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match *self {
            Self::Panics => panic!("body stream failed"),
            Self::Stalls => Poll::Pending,
        }
    }
    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(10)
    }
}

/// A panic while `Hardening` reads an inner 400 text/plain rejection (the size axum's own
/// rejections have): a 500 problem and one `panicked` event, counted once (it was no event).
#[test]
fn a_panic_while_reading_an_inner_rejection_text_is_one_panicked_event() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let counts = Counts::default();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                http::Response::builder()
                    .status(400)
                    .header("content-type", "text/plain; charset=utf-8")
                    .body(Body::new(RejectionText::Panics))
                    .unwrap()
            }),
        )
        .layer(Hardening::strict());
    let (status, headers, body) = recording(&counts, async {
        respond(app, Request::get("/").body(Body::empty()).unwrap()).await
    });
    assert_eq!(status, 500, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(captured.security_event_names(), ["panicked"]);
    assert_eq!(counts.of(), HashMap::from([("panicked".to_owned(), 1)]));
}

/// A `rate_limited` a layer inside logged, whose 429 a layer between turned into a success
/// (a cached page, a redirect): logged once and counted once (it was never counted).
#[test]
fn a_rejection_logged_inside_and_turned_into_a_success_is_still_counted_once() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let counts = Counts::default();
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(RateLimitLayer::new(RateLimiter::new([Policy::global(
            "route-budget",
            Quota::per_hour(NonZeroU32::new(1).unwrap()),
        )])))
        .layer(axum::middleware::map_response(
            |mut res: axum::response::Response| async move {
                if res.status() == StatusCode::TOO_MANY_REQUESTS {
                    *res.status_mut() = StatusCode::SEE_OTHER;
                }
                res
            },
        ))
        .layer(Hardening::strict());
    let status = recording(&counts, async {
        let get = || Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), 200);
        app.oneshot(get()).await.unwrap().status()
    });
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(captured.security_event_names(), ["rate_limited"]);
    assert_eq!(
        counts.of(),
        HashMap::from([("rate_limited".to_owned(), 1)]),
        "logged once, so counted once"
    );
}

fn oversized_streamed() -> Request<Body> {
    Request::post("/upload")
        .header("content-type", "application/json")
        .body(Body::new(UnknownSize(Some(Bytes::from(vec![b' '; 2_000])))))
        .unwrap()
}

fn assert_one_413(status: StatusCode, body: &str, captured: &Captured) {
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(captured.security_event_names(), ["body_too_large"]);
}

/// A chunked body over `Hardening`'s limit, read by the handler on a route under a
/// `CostLayer` whose estimate does not read the body: 413 and one `body_too_large` (the
/// layer's extra wrapping of the body's error made it 400 "could not be read", no event).
#[tokio::test]
async fn a_streamed_oversized_body_under_a_cost_layer_is_413_body_too_large() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let budget = RateLimiter::new([Policy::global(
        "budget",
        Quota::per_day(NonZeroU32::new(10_000).unwrap()),
    )]);
    let app = Router::new()
        .route(
            "/upload",
            post(|body: Bytes| async move { body.len().to_string() })
                .layer(CostLayer::new(budget, Estimate::fixed(10))),
        )
        .layer(Hardening::strict().body_limit(1_000).unwrap());
    let (status, _, body) = respond(app, oversized_streamed()).await;
    assert_one_413(status, &body, &captured);
}

/// A request body whose errors become plain text, as some body-wrapping middleware makes
/// them: the `LengthLimitError` inside is lost to axum's extractor.
struct ErrorsAsText(Body);

impl http_body::Body for ErrorsAsText {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.0)
            .poll_frame(cx)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

/// A chunked body over `Hardening`'s limit under a layer inside it that rewraps the body's
/// errors as text: still 413 and one `body_too_large` (the handler's 400 "failed to buffer
/// the body" is taken for what it is).
#[tokio::test]
async fn a_streamed_oversized_body_under_an_error_rewrapping_layer_is_413_body_too_large() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let app = Router::new()
        .route(
            "/upload",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .layer(axum::middleware::map_request(
            |req: Request<Body>| async move { req.map(|body| Body::new(ErrorsAsText(body))) },
        ))
        .layer(Hardening::strict().body_limit(1_000).unwrap());
    let (status, _, body) = respond(app, oversized_streamed()).await;
    assert_one_413(status, &body, &captured);
}

/// A handler that answers a body it could not read with a server error (its own 500, a
/// 502 from a proxy it streams the body to): the limit cut the body off, so still 413 and
/// one `body_too_large`, not a 5xx that blames the service.
#[tokio::test]
async fn a_streamed_oversized_body_answered_with_a_server_error_is_413_body_too_large() {
    for answer in [StatusCode::INTERNAL_SERVER_ERROR, StatusCode::BAD_GATEWAY] {
        let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
        let app = Router::new()
            .route(
                "/upload",
                post(move |body: Body| async move {
                    match body.collect().await {
                        Ok(_) => StatusCode::OK,
                        Err(_) => answer,
                    }
                }),
            )
            .layer(Hardening::strict().body_limit(1_000).unwrap());
        let (status, _, body) = respond(app, oversized_streamed()).await;
        assert_one_413(status, &body, &captured);
    }
}

/// When the body limit replaces the service's answer with its 413, what a layer inside
/// logged on that answer (a shadow-mode report) is still counted.
#[test]
fn a_shadow_report_is_counted_when_the_body_limit_replaces_the_answer() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let counts = Counts::default();
    let limiter =
        RateLimiter::new([
            Policy::global("trial", Quota::per_hour(NonZeroU32::new(1).unwrap())).shadow(),
        ]);
    let app = Router::new()
        .route(
            "/upload",
            post(|body: Body| async move {
                match body.collect().await {
                    Ok(_) => StatusCode::OK,
                    Err(_) => StatusCode::BAD_REQUEST,
                }
            }),
        )
        .layer(RateLimitLayer::new(limiter))
        .layer(Hardening::strict().body_limit(1_000).unwrap());
    let statuses = recording(&counts, async {
        let mut statuses = Vec::new();
        for _ in 0..2 {
            let res = app.clone().oneshot(oversized_streamed()).await.unwrap();
            statuses.push(res.status());
        }
        statuses
    });
    assert_eq!(statuses, [StatusCode::PAYLOAD_TOO_LARGE; 2]);
    let mut names = captured.security_event_names();
    names.sort();
    assert_eq!(
        names,
        ["body_too_large", "body_too_large", "rate_limit_shadow"]
    );
    assert_eq!(
        counts.of(),
        HashMap::from([
            ("body_too_large".to_owned(), 2),
            ("rate_limit_shadow".to_owned(), 1)
        ])
    );
}

/// A rejection made inside a `Hardening` nested in another: the id in the body, in
/// `x-request-id` and in the event are one id.
#[tokio::test]
async fn nested_hardening_layers_give_a_request_one_id() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let app = Router::new()
        .route(
            "/",
            get(|| async { Err::<(), _>(hardening_core::errors::Error::Forbidden) }),
        )
        .layer(Hardening::strict())
        .layer(Hardening::strict());
    let (status, headers, body) =
        respond(app, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 403);
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    let events = captured.security_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1["fields"]["request_id"], problem["request_id"]);
    assert_eq!(
        headers["x-request-id"].to_str().unwrap(),
        problem["request_id"].as_str().unwrap(),
        "header and body name the same id"
    );
}

/// `Hardening`'s own `rate_limited` event names the policies that refused, as the standalone
/// layers' do (`log_security_event`: "for rate limits, the policies involved").
#[tokio::test]
async fn the_rate_limited_event_names_the_policies_that_refused() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let limiter = RateLimiter::new([Policy::global(
        "tiny-budget",
        Quota::per_hour(NonZeroU32::new(1).unwrap()),
    )]);
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(Hardening::strict().rate_limit(limiter).unwrap());
    for expected in [200, 429] {
        let req = Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(app.clone().oneshot(req).await.unwrap().status(), expected);
    }
    let events = captured.security_events();
    assert_eq!(events.len(), 1);
    let policies = events[0].1["fields"]["policies"].as_str().unwrap_or("");
    assert!(policies.contains("tiny-budget"), "{}", events[0].1);
}

/// A per-client concurrency refusal is a 429 `rate_limited` event like the limiter's, naming
/// its policy (`concurrency`, as the problem's `violated-policies` does).
#[tokio::test]
async fn the_concurrency_refusal_event_names_its_policy() {
    use hardening_core::ratelimit::ConcurrencyLimiter;
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let cap = ConcurrencyLimiter::per_client(NonZeroU32::new(1).unwrap());
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(Hardening::strict().concurrency_limit(cap));
    // From one client (the cap counts per socket peer).
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40_000));
    let request = || {
        Request::get("/")
            .extension(axum::extract::ConnectInfo(peer))
            .body(Body::empty())
            .unwrap()
    };
    // The first response's body holds the client's one slot until it is dropped.
    let first = app.clone().oneshot(request()).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = app.clone().oneshot(request()).await.unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(first);
    let events = captured.security_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "rate_limited", "{}", events[0].1);
    let policies = events[0].1["fields"]["policies"].as_str().unwrap_or("");
    assert!(policies.contains("concurrency"), "{}", events[0].1);
}

/// The same body through two nested `Hardening` layers, the outer one's limit the lower: 413
/// and one event.
#[tokio::test]
async fn streamed_oversized_body_through_nested_hardening_is_413_body_too_large() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let app = Router::new()
        .route(
            "/upload",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .layer(Hardening::strict())
        .layer(Hardening::strict().body_limit(1_000).unwrap());
    let (status, _, body) = respond(app, oversized_streamed()).await;
    assert_one_413(status, &body, &captured);
}

#[derive(serde::Deserialize, garde::Validate)]
struct Upload {
    #[garde(skip)]
    _text: String,
}

/// A chunked body over `Hardening`'s limit to a `Valid<Json<_>>` route, whose 413 said the
/// body "could not be read", and to a plain `Json` one, whose 413 did not say the limit;
/// also with a `ProblemLayer` inside that reports the 413 itself: the limit's 413, naming
/// the limit, and one `body_too_large`, counted once.
#[test]
fn a_streamed_oversized_body_to_a_json_route_is_the_limits_413_reported_once() {
    use hardening_core::errors::{ProblemLayer, Valid};
    for problem_layer_inside in [false, true] {
        let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
        let counts = Counts::default();
        let mut routes = Router::new()
            .route(
                "/upload",
                post(|Valid(axum::Json(_)): Valid<axum::Json<Upload>>| async { "ok" }),
            )
            .route(
                "/plain",
                post(|axum::Json(_): axum::Json<Upload>| async { "ok" }),
            );
        if problem_layer_inside {
            routes = routes.layer(ProblemLayer::new());
        }
        let app = routes.layer(Hardening::strict().body_limit(1_000).unwrap());
        for path in ["/upload", "/plain"] {
            let mut req = oversized_streamed();
            *req.uri_mut() = path.parse().unwrap();
            let (status, _, body) = recording(&counts, respond(app.clone(), req));
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {body}");
            let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                problem["detail"],
                "the request body is larger than this service accepts (1000 bytes)",
                "{path}, ProblemLayer inside: {problem_layer_inside}"
            );
        }
        assert_eq!(
            captured.security_event_names(),
            ["body_too_large", "body_too_large"],
            "ProblemLayer inside: {problem_layer_inside}"
        );
        assert_eq!(
            counts.of(),
            HashMap::from([("body_too_large".to_owned(), 2)]),
            "ProblemLayer inside: {problem_layer_inside}"
        );
    }
}

/// A rejection text that never arrives: the timeout answers, one `timed_out`.
#[tokio::test]
async fn timeout_while_reading_a_rejection_text_is_one_timed_out() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                http::Response::builder()
                    .status(422)
                    .header("content-type", "text/plain")
                    .body(Body::new(RejectionText::Stalls))
                    .unwrap()
            }),
        )
        .layer(
            Hardening::strict()
                .timeout(Duration::from_millis(200))
                .unwrap(),
        );
    let res = app
        .oneshot(http::Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(captured.security_event_names(), ["timed_out"]);
}
