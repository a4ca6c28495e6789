//! `Hardening::strict()` against odd answers from the service it wraps and odd panics:
//! statuses no response may end with, panic payloads whose `Drop` panics; and, for every
//! rejection, one request id (body, `x-request-id`, security event) and `Retry-After` where
//! a retry is invited.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::num::NonZeroU32;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use hardening_core::errors::ProblemLayer;
use hardening_core::ratelimit::{ConcurrencyLimiter, Policy, Quota, RateLimiter};
use hardening_core::{Hardening, Health};
use hardening_tests::{Captured, Reply, exchange, serve};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{Layer, ServiceExt};

/// What the service answers for `/status/{code}`: that status, an internal header and an
/// internal body, as a proxy passing on an upstream's answer would.
fn status_routes() -> Router {
    Router::new().route(
        "/status/{code}",
        get(
            |axum::extract::Path(code): axum::extract::Path<u16>| async move {
                Response::builder()
                    .status(StatusCode::from_u16(code).unwrap())
                    .header("x-debug", "upstream=10.0.0.7:5432")
                    .header("content-type", "text/plain")
                    .body(Body::from("stack trace at /srv/app/db.rs:42"))
                    .unwrap()
            },
        ),
    )
}

/// Checks a reply is a problem of `status` under one request id, and returns that id.
fn problem_id(reply: &Reply, status: u16) -> String {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{reply:?}"
    );
    let body = reply.json();
    assert_eq!(body["status"], status, "{reply:?}");
    let id = reply
        .header("x-request-id")
        .expect("x-request-id")
        .to_owned();
    assert_eq!(body["request_id"], id.as_str(), "{reply:?}");
    id
}

/// A 1xx other than 101 cannot end a response: hyper sent a bare 500 in its place, with no
/// request id and none of the security headers. 600-999 are no HTTP statuses (clients take
/// them for server errors; libraries use them for their own): the upstream's body and
/// headers went out as they were. Both are now a 500 problem, without an event (no
/// rejection).
#[tokio::test]
async fn statuses_no_response_may_end_with_are_500_problems() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let addr = serve(status_routes().layer(Hardening::strict())).await;
    for code in [103, 600, 999] {
        let reply = hardening_tests::get(addr, &format!("/status/{code}"), &[]).await;
        problem_id(&reply, 500);
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("x-debug"), None, "{code}: {reply:?}");
        assert!(!reply.body.contains("/srv/app"), "{code}: {reply:?}");
    }
    assert_eq!(captured.security_event_names(), Vec::<String>::new());
    // 101 (an upgrade's answer), 2xx and 3xx are the service's own.
    for code in [101, 204, 299, 302, 399] {
        let app = status_routes().layer(Hardening::strict());
        let req = Request::get(format!("/status/{code}"))
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), code);
        assert_eq!(res.headers()["x-debug"], "upstream=10.0.0.7:5432", "{code}");
        assert!(res.headers().contains_key("x-request-id"), "{code}");
    }
}

/// A `panic_any` payload whose own `Drop` panics.
struct DropPanics;

impl Drop for DropPanics {
    fn drop(&mut self) {
        panic!("the payload's drop panicked");
    }
}

/// A body that panics with [`DropPanics`] when polled: `size` bytes by its size hint, or of
/// unknown size.
struct PanickingBody(Option<u64>);

impl http_body::Body for PanickingBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::panic::panic_any(DropPanics)
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.0.map_or_else(
            http_body::SizeHint::default,
            http_body::SizeHint::with_exact,
        )
    }
}

/// A panic whose payload panics again when dropped: in the handler, in a service's `call`,
/// in a rejection body the layer reads: still one 500 problem and one `panicked` event; in
/// a streamed body, still the body's error and one event. The second panic used to unwind
/// out of the layer: the connection was cut, with no answer and no event.
#[tokio::test]
async fn a_panic_payload_whose_drop_panics_is_one_500_and_one_event() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let req = || Request::get("/").body(Body::empty()).unwrap();

    let in_handler = Router::new().route(
        "/",
        get(|| async {
            if true {
                std::panic::panic_any(DropPanics);
            }
            "unreachable"
        }),
    );
    let in_call = tower::service_fn(
        |_: Request<Body>| -> std::future::Ready<Result<Response<Body>, std::convert::Infallible>> {
            std::panic::panic_any(DropPanics)
        },
    );
    let in_rejection_text = Router::new().route(
        "/",
        get(|| async {
            Response::builder()
                .status(400)
                .header("content-type", "text/plain")
                .body(Body::new(PanickingBody(Some(10))))
                .unwrap()
        }),
    );
    let answers = [
        in_handler.layer(Hardening::strict()).oneshot(req()).await,
        Hardening::strict().layer(in_call).oneshot(req()).await,
        in_rejection_text
            .layer(Hardening::strict())
            .oneshot(req())
            .await,
    ];
    let events = captured.security_events();
    assert_eq!(events.len(), 3, "{events:?}");
    for (i, res) in answers.into_iter().enumerate() {
        let res = res.unwrap();
        assert_eq!(res.status(), 500, "{i}");
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["request_id"], id.as_str(), "{i}");
        assert_eq!(events[i].0, "panicked");
        assert_eq!(events[i].1["fields"]["request_id"], id.as_str(), "{i}");
    }

    let streamed = Router::new()
        .route("/", get(|| async { Body::new(PanickingBody(None)) }))
        .layer(Hardening::strict());
    let res = streamed.oneshot(req()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.into_body().collect().await.is_err());
    assert_eq!(captured.security_event_names().len(), 4);
    assert_eq!(captured.security_event_names()[3], "panicked");
}

/// One GET (or another method) of `path` with extra header lines.
async fn request(addr: std::net::SocketAddr, method: &str, path: &str, headers: &[&str]) -> Reply {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\n");
    if !headers.iter().any(|h| h.starts_with("host:")) {
        raw.push_str("host: localhost\r\n");
    }
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    exchange(addr, raw.as_bytes()).await
}

/// A request (method, path, header lines), the status it gets, and its security event.
type Case<'a> = (&'a str, String, Vec<&'a str>, u16, Option<&'a str>);

/// Every way `Hardening::strict()` answers a problem: the request id in the body is the one
/// in `x-request-id` and in the one security event (when the answer is a rejection); 429
/// and the load-shedding 503 say when to retry.
#[tokio::test]
async fn every_problem_has_one_request_id_and_rejections_one_event() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let app = Router::new()
        .route(
            "/hello",
            get(|| async { "hello" }).post(|| async { "posted" }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "late"
            }),
        )
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("boom");
                }
                "unreachable"
            }),
        )
        .route(
            "/forbidden",
            get(|| async { hardening_core::errors::Error::Forbidden }),
        );
    let health = Health::new().check("db", || async { Err::<(), _>("down") });
    let hardening = Hardening::strict()
        .allowed_hosts(["localhost"])
        .unwrap()
        .timeout(Duration::from_millis(200))
        .unwrap()
        .health(health);
    let addr = serve(app.layer(hardening)).await;
    let many: String = (0..60).map(|i| format!("p{i}&")).collect();
    let cases: Vec<Case<'_>> = vec![
        ("GET", "/nowhere".into(), vec![], 404, None),
        ("DELETE", "/hello".into(), vec![], 405, None),
        ("GET", "/readyz".into(), vec![], 503, None),
        ("GET", "/slow".into(), vec![], 503, Some("timed_out")),
        ("GET", "/panic".into(), vec![], 500, Some("panicked")),
        ("GET", "/forbidden".into(), vec![], 403, Some("forbidden")),
        (
            "GET",
            format!("/hello?{many}"),
            vec![],
            400,
            Some("too_many_query_params"),
        ),
        (
            "POST",
            "/hello".into(),
            vec!["content-length: 2000000"],
            413,
            Some("body_too_large"),
        ),
        (
            "GET",
            "/hello".into(),
            vec!["host: evil.example"],
            400,
            Some("bad_host"),
        ),
        (
            "OPTIONS",
            "/hello".into(),
            vec![
                "origin: https://evil.example",
                "access-control-request-method: GET",
            ],
            403,
            Some("cors_rejected"),
        ),
        (
            "POST",
            "/hello".into(),
            vec![
                "content-length: 0",
                "cookie: session=1",
                "sec-fetch-site: cross-site",
            ],
            403,
            Some("csrf_blocked"),
        ),
    ];
    for (method, path, headers, status, event) in cases {
        let before = captured.security_events().len();
        let reply = request(addr, method, &path, &headers).await;
        let id = problem_id(&reply, status);
        let events = captured.security_events();
        match event {
            Some(event) => {
                assert_eq!(events.len(), before + 1, "{method} {path}: {events:?}");
                assert_eq!(events[before].0, event, "{method} {path}");
                assert_eq!(events[before].1["fields"]["request_id"], id.as_str());
            }
            None => assert_eq!(events.len(), before, "{method} {path}: {events:?}"),
        }
        // The same request as HEAD: no body, the same status and a request id.
        if method == "GET" && path != "/slow" {
            let head = request(addr, "HEAD", &path, &headers).await;
            assert_eq!(head.status, status, "HEAD {path}");
            assert_eq!(head.body, "", "HEAD {path}");
            assert!(head.header("x-request-id").is_some(), "HEAD {path}");
        }
    }

    // Refusals that invite a retry say when.
    let quota = Quota::per_hour(NonZeroU32::new(1).unwrap());
    let limiter = RateLimiter::new([Policy::per_client_ip("per-ip", quota)]);
    let cap = ConcurrencyLimiter::per_client(NonZeroU32::new(1).unwrap());
    let shed = ConcurrencyLimiter::per_client(NonZeroU32::new(5).unwrap())
        .global(NonZeroU32::new(1).unwrap());
    let slow = || {
        Router::new().route(
            "/wait",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "done"
            }),
        )
    };
    let limited = serve(slow().layer(Hardening::strict().rate_limit(limiter).unwrap())).await;
    let capped = serve(slow().layer(Hardening::strict().concurrency_limit(cap))).await;
    let shedding = serve(slow().layer(Hardening::strict().concurrency_limit(shed))).await;
    for (addr, status, event) in [
        (limited, 429, "rate_limited"),
        (capped, 429, "rate_limited"),
        (shedding, 503, "load_shed"),
    ] {
        let first = tokio::spawn(async move { request(addr, "GET", "/wait", &[]).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = captured.security_events().len();
        let reply = request(addr, "GET", "/wait", &[]).await;
        let id = problem_id(&reply, status);
        let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
        assert!(retry >= 1, "{reply:?}");
        let events = captured.security_events();
        assert_eq!(events.len(), before + 1, "{events:?}");
        assert_eq!(events[before].0, event);
        assert_eq!(events[before].1["fields"]["request_id"], id.as_str());
        assert_eq!(first.await.unwrap().status, 200);
    }
}

/// A problem the service made under another request id: one it read from an upstream that
/// uses this crate (`Problem` deserializes), say. Its body named the upstream's id while
/// `x-request-id` and the access log named this request's (and so did the security event,
/// unless a `ProblemLayer` inside logged it, under the upstream's); now all name this
/// request's.
#[tokio::test]
async fn a_problem_made_under_another_id_is_answered_under_this_requests() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let upstream = || {
        let json =
            r#"{"type":"about:blank","title":"Forbidden","status":403,"request_id":"upstream-7"}"#;
        serde_json::from_str::<hardening_core::errors::Problem>(json).unwrap()
    };
    let app = || Router::new().route("/", get(move || async move { upstream() }));
    // With the upstream's `x-request-id` passed on too.
    let with_header = Router::new().route(
        "/",
        get(move || async move { ([("x-request-id", "upstream-7")], upstream()) }),
    );
    let apps = [
        app().layer(Hardening::strict()),
        app().layer(ProblemLayer::new()).layer(Hardening::strict()),
        app().layer(ProblemLayer::new()),
        with_header.layer(Hardening::strict()),
    ];
    for (i, app) in apps.into_iter().enumerate() {
        let addr = serve(app).await;
        let reply = hardening_tests::get(addr, "/", &[]).await;
        let id = problem_id(&reply, 403);
        assert_ne!(id, "upstream-7", "{i}");
        let events = captured.security_events();
        assert_eq!(events.len(), i + 1, "{i}: {events:?}");
        assert_eq!(events[i].0, "forbidden");
        assert_eq!(events[i].1["fields"]["request_id"], id.as_str(), "{i}");
    }
}
