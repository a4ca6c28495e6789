//! `CostLayer`: token-aware reservations settled when the body ends; on a 5xx, a dropped body
//! and a request dropped before its response (a timeout, a caught panic), refunded all but
//! the usage reported; clamped, keyed by principal; 429/413 problems.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::num::NonZeroU32;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use bytes::Bytes;
use hardening_core::auth::{AuthLayer, Authenticated};
use hardening_core::ratelimit::{
    ActualCost, CostConfigError, CostLayer, Estimate, Policy, Quota, RateLimiter, RequestKeys,
    Usage,
};
use hardening_errors::PrincipalId;
use hardening_tests::jwt::{hs256_token, hs256_verifier};
use hardening_tests::{Captured, UnknownSize};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;
use tower::util::MapRequestLayer;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// A day budget of 10,000 tokens per principal (nothing refills noticeably during a test).
fn tokens() -> RateLimiter {
    RateLimiter::new([Policy::per_principal(
        "tokens-per-day",
        Quota::per_day(nz(10_000)),
    )])
}

fn remaining(limiter: &RateLimiter, user: &str) -> u32 {
    let headers = http::HeaderMap::new();
    limiter.statuses(&RequestKeys::new(None, &headers).principal(Some(user)))[0].remaining()
}

/// A body that reports 10 tokens of usage per chunk as it streams, like an LLM proxy.
struct Streamed {
    usage: Usage,
    chunks: u32,
}

impl http_body::Body for Streamed {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.chunks == 0 {
            return Poll::Ready(None);
        }
        self.chunks -= 1;
        self.usage.add(10);
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(
            b"tok ",
        )))))
    }
}

fn app(limiter: RateLimiter) -> Router {
    let layer = CostLayer::new(limiter, Estimate::json_field("/max_tokens", 100).unwrap())
        .max_estimate(nz(2_000))
        .unwrap()
        .max_body(std::num::NonZeroUsize::new(4096).unwrap());
    Router::new()
        .route(
            "/complete",
            post(|usage: Usage, body: String| async move {
                // The model "uses" half of what was asked for.
                let asked: serde_json::Value = serde_json::from_str(&body).unwrap();
                let used = asked["max_tokens"].as_u64().unwrap_or(100) / 2;
                usage.set(used.min(usage.reserved()));
                "done"
            }),
        )
        .route(
            "/known",
            post(|| async { (axum::Extension(ActualCost(7)), "done") }),
        )
        .route("/silent", post(|| async { "done" }))
        .route(
            "/refused",
            post(|| async { (StatusCode::BAD_REQUEST, "no").into_response() }),
        )
        .route(
            "/broken",
            post(|usage: Usage| async move {
                usage.add(500);
                StatusCode::BAD_GATEWAY
            }),
        )
        .route("/down", post(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .route(
            "/stream",
            post(|usage: Usage| async move { Body::new(Streamed { usage, chunks: 50 }) }),
        )
        .route(
            "/broken-stream",
            post(|usage: Usage| async move {
                let body = Body::new(Streamed { usage, chunks: 5 });
                (StatusCode::BAD_GATEWAY, body)
            }),
        )
        .route(
            "/panic",
            post(|usage: Usage| async move {
                usage.add(30);
                if usage.reserved() > 0 {
                    panic!("the model client blew up after 30 tokens");
                }
                "unreachable"
            }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .layer(layer)
        .layer(MapRequestLayer::new(|mut req: Request<Body>| {
            if let Some(user) = req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
                let id = PrincipalId::new(user);
                req.extensions_mut().insert(id);
            }
            req
        }))
}

fn request(path: &str, user: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("x-user", user)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, Bytes) {
    let response = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test]
async fn settles_to_the_reported_usage_when_the_body_ends() {
    let limiter = tokens();
    let app = app(limiter.clone());
    let (status, headers, _) = send(
        &app,
        request("/complete", "alice", r#"{"max_tokens":1000}"#),
    )
    .await;
    assert_eq!(status, 200);
    // The header shows the reservation in flight; the ledger shows the settled cost.
    assert_eq!(
        headers.get("ratelimit").unwrap(),
        "\"tokens-per-day\";r=9000;t=8640"
    );
    assert_eq!(remaining(&limiter, "alice"), 9_500);
    assert_eq!(
        remaining(&limiter, "bob"),
        10_000,
        "budgets are per principal"
    );

    send(&app, request("/known", "alice", "{}")).await;
    assert_eq!(
        remaining(&limiter, "alice"),
        9_493,
        "ActualCost response extension"
    );
    send(&app, request("/silent", "alice", "{}")).await;
    assert_eq!(
        remaining(&limiter, "alice"),
        9_393,
        "an unreported success keeps its estimate (default 100)"
    );
    send(&app, request("/refused", "alice", "{}")).await;
    assert_eq!(
        remaining(&limiter, "alice"),
        9_393,
        "a 4xx that reported nothing spent nothing"
    );
}

/// A handler that reported usage and then failed (the model was called, a later step was
/// not) was refunded everything: a caller who could provoke the failure spent without
/// limit. It is charged what it reported; a 5xx that reported nothing is refunded.
#[tokio::test]
async fn a_5xx_is_charged_the_usage_reported_and_refunded_the_rest() {
    let limiter = tokens();
    let app = app(limiter.clone());
    let (status, _, _) = send(&app, request("/broken", "alice", r#"{"max_tokens":800}"#)).await;
    assert_eq!(status, 502);
    assert_eq!(
        remaining(&limiter, "alice"),
        9_500,
        "the 500 tokens reported"
    );

    let (status, _, _) = send(&app, request("/down", "bob", r#"{"max_tokens":800}"#)).await;
    assert_eq!(status, 503);
    assert_eq!(
        remaining(&limiter, "bob"),
        10_000,
        "nothing reported: refunded"
    );
}

/// A 5xx head has its body too: usage reported while it streams counts, as a success's
/// does. The reservation used to be refunded with the head, before any of it was reported.
#[tokio::test]
async fn a_streamed_5xx_is_charged_the_usage_reported_while_it_streams() {
    let limiter = tokens();
    let app = app(limiter.clone());
    let (status, _, body) = send(
        &app,
        request("/broken-stream", "alice", r#"{"max_tokens":800}"#),
    )
    .await;
    assert_eq!((status, body.len()), (StatusCode::BAD_GATEWAY, 20));
    assert_eq!(remaining(&limiter, "alice"), 9_950, "5 chunks, 50 tokens");
}

#[tokio::test]
async fn a_dropped_stream_refunds_all_but_the_usage_reported() {
    let limiter = tokens();
    let app = app(limiter.clone());
    let response = app
        .clone()
        .oneshot(request("/stream", "alice", r#"{"max_tokens":1500}"#))
        .await
        .unwrap();
    assert_eq!(
        remaining(&limiter, "alice"),
        8_500,
        "1500 reserved up front"
    );
    let mut body = response.into_body();
    for _ in 0..3 {
        body.frame().await.unwrap().unwrap();
    }
    drop(body); // the client hung up after three chunks (30 tokens)
    assert_eq!(remaining(&limiter, "alice"), 9_970);

    // Read to the end: 50 chunks, 500 tokens.
    let (status, _, bytes) = send(&app, request("/stream", "bob", r#"{"max_tokens":1500}"#)).await;
    assert_eq!((status, bytes.len()), (StatusCode::OK, 200));
    assert_eq!(remaining(&limiter, "bob"), 9_500);
}

/// `Hardening` answers a panic with a 500, catching it outside the layer: the request's
/// future is dropped with the reservation, which is refunded like a returned 5xx's, all but
/// the usage reported before the panic.
#[tokio::test]
async fn inside_hardening_a_panicking_handler_is_refunded_all_but_the_usage_reported() {
    let limiter = tokens();
    let app = app(limiter.clone()).layer(hardening_core::Hardening::strict());
    let (status, _, _) = send(&app, request("/panic", "alice", r#"{"max_tokens":800}"#)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(remaining(&limiter, "alice"), 9_970);
}

/// A handler cut off by `Hardening`'s timeout (a 503), or by a client gone before the
/// response head: the request's future is dropped, and its reservation refunded.
#[tokio::test]
async fn a_request_dropped_before_its_response_is_refunded() {
    let limiter = tokens();
    let hardening = hardening_core::Hardening::strict()
        .timeout(Duration::from_millis(100))
        .unwrap();
    let timed = app(limiter.clone()).layer(hardening);
    let (status, _, _) = send(&timed, request("/slow", "bob", r#"{"max_tokens":800}"#)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(remaining(&limiter, "bob"), 10_000);

    let mut call =
        Box::pin(app(limiter.clone()).oneshot(request("/slow", "carol", r#"{"max_tokens":800}"#)));
    let waited = tokio::time::timeout(Duration::from_millis(100), call.as_mut()).await;
    assert!(waited.is_err(), "the handler is still at work");
    assert_eq!(
        remaining(&limiter, "carol"),
        9_200,
        "800 reserved meanwhile"
    );
    drop(call); // the client hung up
    assert_eq!(remaining(&limiter, "carol"), 10_000);
}

#[tokio::test]
async fn estimates_are_clamped_and_an_empty_budget_answers_429() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let limiter = tokens();
    let app = app(limiter.clone());
    // Asking for a billion tokens reserves only the cap (2,000).
    let response = app
        .clone()
        .oneshot(request("/stream", "carol", r#"{"max_tokens":1000000000}"#))
        .await
        .unwrap();
    assert_eq!(remaining(&limiter, "carol"), 8_000);
    // Hold five reservations at the cap: the budget is gone while they stream.
    let mut held = vec![response];
    for _ in 0..4 {
        held.push(
            app.clone()
                .oneshot(request("/stream", "carol", r#"{"max_tokens":2000}"#))
                .await
                .unwrap(),
        );
    }
    assert_eq!(remaining(&limiter, "carol"), 0);
    let (status, headers, body) =
        send(&app, request("/complete", "carol", r#"{"max_tokens":10}"#)).await;
    assert_eq!(status, 429);
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/problem+json"
    );
    assert!(headers.get("retry-after").is_some());
    assert!(headers.get("ratelimit-policy").is_some());
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["violated-policies"][0], "tokens-per-day");
    // Reported once, under the request id the problem gives (made here: no layer gave one).
    let id = problem["request_id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");
    let events = captured.security_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "rate_limited");
    assert_eq!(events[0].1["fields"]["request_id"], id);
    drop(held); // every stream dropped before a chunk: all refunded
    assert_eq!(remaining(&limiter, "carol"), 10_000);
}

#[tokio::test]
async fn oversized_bodies_get_413_before_anything_is_reserved() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let limiter = tokens();
    let app = app(limiter.clone());
    let big = format!(r#"{{"max_tokens":10,"pad":"{}"}}"#, "x".repeat(10_000));
    let (status, headers, body) = send(&app, request("/complete", "dave", &big)).await;
    assert_eq!(status, 413);
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let events = captured.security_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "body_too_large");
    assert_eq!(events[0].1["fields"]["request_id"], problem["request_id"]);
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/problem+json"
    );
    assert_eq!(remaining(&limiter, "dave"), 10_000);
}

#[test]
fn one_request_may_not_reserve_a_whole_budget() {
    let err = CostLayer::new(tokens(), Estimate::fixed(1))
        .max_estimate(nz(10_000))
        .unwrap_err();
    assert!(matches!(
        err,
        CostConfigError::EstimateTooLarge { burst: 10_000, .. }
    ));
    assert!(err.to_string().contains("below 10000"), "{err}");
}

/// Served by hyper, which stops polling a body once it says it has ended and never polls the
/// body of a `HEAD` response: a success keeps its estimate charged either way.
#[tokio::test]
async fn served_successes_keep_their_estimate() {
    let limiter = RateLimiter::new([Policy::global("budget", Quota::per_day(nz(10_000)))]);
    let app = Router::new()
        .route("/", axum::routing::get(|| async { "the whole answer" }))
        .layer(CostLayer::new(limiter.clone(), Estimate::fixed(100)));
    let addr = hardening_tests::serve(app).await;
    let left = || {
        let headers = http::HeaderMap::new();
        limiter.statuses(&RequestKeys::new(None, &headers))[0].remaining()
    };

    let reply = hardening_tests::exchange(
        addr,
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "the whole answer")
    );
    assert_eq!(left(), 9_900);

    let reply = hardening_tests::exchange(
        addr,
        b"HEAD / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!((reply.status, reply.body.as_str()), (200, ""));
    assert_eq!(left(), 9_800);
}

/// A streamed body whose last frame does not say it is the last: hyper stops polling it
/// once it has written what the response declared (a `Content-Length` header over a stream,
/// as a proxy forwards an upstream answer), or right after a trailers frame, and drops it
/// without a final poll. Both were taken for a client gone mid-stream: the whole answer,
/// delivered, was refunded (nothing reported; a handler that reports at the stream's end
/// never gets to).
#[tokio::test]
async fn a_stream_served_to_its_declared_end_or_its_trailers_keeps_its_estimate() {
    let limiter = RateLimiter::new([Policy::global("budget", Quota::per_day(nz(10_000)))]);
    let frames = |trailers: bool| {
        let mut frames = vec![http_body::Frame::data(Bytes::from_static(
            b"the whole answer",
        ))];
        if trailers {
            frames.push(http_body::Frame::trailers(http::HeaderMap::new()));
        }
        Body::new(Frames(frames.into()))
    };
    let app = Router::new()
        .route(
            "/declared",
            axum::routing::get(move || async move {
                ([(http::header::CONTENT_LENGTH, "16")], frames(false))
            }),
        )
        .route(
            "/trailers",
            axum::routing::get(move || async move { frames(true) }),
        )
        .layer(CostLayer::new(limiter.clone(), Estimate::fixed(100)));
    let addr = hardening_tests::serve(app).await;
    let left = || {
        let headers = http::HeaderMap::new();
        limiter.statuses(&RequestKeys::new(None, &headers))[0].remaining()
    };
    for path in ["/declared", "/trailers"] {
        let before = left();
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nte: trailers\r\nconnection: close\r\n\r\n");
        let reply = tokio::time::timeout(hardening_tests::EXCHANGE_LIMIT, async {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            let reply = hardening_tests::read_reply(&mut stream).await;
            // To the server's close: it is done with the body by then.
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await.unwrap();
            reply
        })
        .await
        .unwrap();
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "the whole answer"),
            "{path}"
        );
        assert_eq!(
            left(),
            before - 100,
            "{path}: served whole, its estimate kept"
        );
    }
}

/// A 2xx to `CONNECT` opens a tunnel: hyper writes the head only and drops the body unpolled
/// (a stream, which axum passes on). That drop was taken for a client gone: refunded, the
/// tunnel free. Its estimate is kept, as a 101's.
#[tokio::test]
async fn a_served_connect_tunnel_keeps_its_estimate() {
    let limiter = RateLimiter::new([Policy::global("budget", Quota::per_day(nz(10_000)))]);
    let app = Router::new()
        .fallback(|| async {
            let body = Body::new(UnknownSize(Some(Bytes::from_static(b"never sent"))));
            (StatusCode::OK, body)
        })
        .layer(CostLayer::new(limiter.clone(), Estimate::fixed(100)));
    let addr = hardening_tests::serve(app).await;
    let reply = hardening_tests::exchange(
        addr,
        b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n",
    )
    .await;
    assert_eq!((reply.status, reply.body.as_str()), (200, ""));
    let headers = http::HeaderMap::new();
    let left = limiter.statuses(&RequestKeys::new(None, &headers))[0].remaining();
    assert_eq!(left, 9_900, "the tunnel was refunded");
}

/// A declared length ends the body where HTTP/1 stops polling it, not over HTTP/2, whose
/// server reads a body on to its end (a report made after the declared bytes must still
/// count): there, a body dropped right after its declared bytes is a client gone, refunded.
#[tokio::test]
async fn a_declared_length_ends_the_body_over_http1_only() {
    for (version, kept) in [
        (http::Version::HTTP_11, 9_900),
        (http::Version::HTTP_2, 10_000),
    ] {
        let limiter = RateLimiter::new([Policy::global("budget", Quota::per_day(nz(10_000)))]);
        let app = Router::new()
            .route(
                "/declared",
                axum::routing::get(|| async {
                    let frame = http_body::Frame::data(Bytes::from_static(b"the whole answer"));
                    (
                        [(http::header::CONTENT_LENGTH, "16")],
                        Body::new(Frames(vec![frame].into())),
                    )
                }),
            )
            .layer(CostLayer::new(limiter.clone(), Estimate::fixed(100)));
        let req = Request::get("/declared")
            .version(version)
            .body(Body::empty())
            .unwrap();
        let mut body = app.oneshot(req).await.unwrap().into_body();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.data_ref().map(Bytes::len), Some(16));
        drop(body);
        let headers = http::HeaderMap::new();
        let left = limiter.statuses(&RequestKeys::new(None, &headers))[0].remaining();
        assert_eq!(left, kept, "{version:?}");
    }
}

/// A body of these frames, none of which says it is the last (`is_end_stream` is false
/// until it is polled past them).
struct Frames(std::collections::VecDeque<http_body::Frame<Bytes>>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }
}

#[tokio::test]
async fn inside_hardening_a_body_over_its_limit_is_a_413_reported_once() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let limiter = tokens();
    // Hardening's limit (1,000 bytes) is under the layer's own (4,096): it is the one that
    // trips, and its error reaches the layer wrapped in the body type's.
    let hardening = hardening_core::Hardening::strict()
        .body_limit(1_000)
        .unwrap();
    let app = app(limiter.clone()).layer(hardening);
    let req = Request::post("/complete")
        .header("x-user", "erin")
        .body(Body::new(UnknownSize(Some(Bytes::from(vec![b' '; 2_000])))))
        .unwrap();
    let (status, headers, body) = send(&app, req).await;
    assert_eq!(status, 413, "{body:?}");
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        problem["request_id"],
        headers.get("x-request-id").unwrap().to_str().unwrap()
    );
    let events = captured.security_events();
    assert_eq!(
        events.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["body_too_large"]
    );
    assert_eq!(events[0].1["fields"]["request_id"], problem["request_id"]);
    assert_eq!(remaining(&limiter, "erin"), 10_000, "nothing reserved");
}

/// A handler that reports far more than it reserved (a runaway model call, a usage field
/// misread) leaves the principal at most one burst in debt, and the operator is told once per
/// policy, never whose request it was.
#[tokio::test]
async fn a_runaway_usage_report_leaves_at_most_one_burst_of_debt_and_warns_once() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let limiter = tokens();
    let layer = CostLayer::new(limiter.clone(), Estimate::fixed(100));
    let app = Router::new()
        .route(
            "/runaway",
            post(|usage: Usage| async move {
                usage.set(50_000_000);
                "done"
            }),
        )
        .layer(layer)
        .layer(MapRequestLayer::new(|mut req: Request<Body>| {
            if let Some(user) = req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
                let id = PrincipalId::new(user);
                req.extensions_mut().insert(id);
            }
            req
        }));
    for user in ["secret-principal-7", "secret-principal-8"] {
        let (status, _, _) = send(&app, request("/runaway", user, "{}")).await;
        assert_eq!(status, 200);
        // 10,000 a day, at most one burst (a day) in debt: a unit fits again in a day and
        // 8.64 s, not in the 5,000 days the report would take.
        let headers = http::HeaderMap::new();
        let keys = RequestKeys::new(None, &headers).principal(Some(user));
        match limiter.check(&keys, 1) {
            hardening_core::ratelimit::Decision::Limited { retry_after, .. } => assert!(
                retry_after <= Duration::from_secs(86_400 + 9),
                "{user} refused for {retry_after:?}"
            ),
            other => panic!("{user}: {other:?}"),
        }
    }
    let text = captured.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("more than it reserved"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("tokens-per-day"), "{}", warnings[0]);
    assert!(!text.contains("secret-principal"), "{text}");
}

/// A `POST /complete` without a principal (an anonymous caller, or a `CostLayer` placed
/// outside the auth layer).
fn anonymous(body: &str) -> Request<Body> {
    Request::post("/complete")
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// The `CostLayer` warnings (target `hardening`) that say what to change.
fn unkeyed_warnings(captured: &Captured) -> Vec<serde_json::Value> {
    captured
        .json_lines()
        .into_iter()
        .filter(|l| l["target"] == "hardening")
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("place CostLayer inside the auth layer"))
        })
        .collect()
}

/// The check the warning and the README name, `from_extractor::<Authenticated>()` on the
/// route after the `CostLayer` (so it runs first), answers an anonymous caller 401, and a
/// caller with a token reaches the budget.
#[tokio::test]
async fn the_documented_auth_check_answers_an_anonymous_caller_401() {
    const SECRET: &[u8] = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj";
    let limiter = tokens();
    let app = Router::new()
        .route("/complete", post(|| async { "done" }))
        .route_layer(
            CostLayer::new(
                limiter.clone(),
                Estimate::json_field("/max_tokens", 100).unwrap(),
            )
            .max_estimate(nz(2_000))
            .unwrap(),
        )
        .route_layer(axum::middleware::from_extractor::<Authenticated>())
        .layer(AuthLayer::new(hs256_verifier(SECRET)));
    let (status, headers, _) = send(&app, anonymous(r#"{"max_tokens":1000}"#)).await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "Bearer");
    let token = hs256_token(SECRET, serde_json::json!({ "sub": "alice" }));
    let request = Request::post("/complete")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(r#"{"max_tokens":1000}"#))
        .unwrap();
    let (status, _, _) = send(&app, request).await;
    assert_eq!(status, 200);
    assert_eq!(remaining(&limiter, "alice"), 9_000);
}

/// A request no enforcing policy applies to (per-principal budgets, no principal) was
/// admitted with nothing reserved: unlimited spending on the routes that cost money. It is
/// refused before the handler runs (a 500 problem with a request id, one security event
/// under that id), and the operator is told once what to change; a request with a principal
/// still passes.
#[tokio::test]
async fn an_anonymous_request_to_per_principal_budgets_is_refused() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let limiter = tokens();
    let app = app(limiter.clone());
    for _ in 0..2 {
        let (status, headers, body) = send(&app, anonymous(r#"{"max_tokens":1000}"#)).await;
        assert_eq!(status, 500, "admitted unkeyed: {body:?}");
        assert_eq!(
            headers.get("content-type").unwrap(),
            "application/problem+json"
        );
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["status"], 500);
        let detail = problem["detail"].as_str().unwrap();
        assert!(!detail.contains("principal"), "{detail}");
        assert!(!detail.contains("tokens-per-day"), "{detail}");
        assert_eq!(problem["request_id"].as_str().unwrap().len(), 36);
        let events = captured.security_events();
        let (name, event) = events.last().unwrap();
        assert_eq!(name, "cost_limit_unkeyed");
        assert_eq!(event["fields"]["request_id"], problem["request_id"]);
    }
    assert_eq!(captured.security_events().len(), 2);
    let warnings = unkeyed_warnings(&captured);
    assert_eq!(warnings.len(), 1, "once per layer: {warnings:?}");
    let warning = warnings[0]["fields"]["message"].as_str().unwrap();
    assert!(warning.contains("tokens-per-day"), "{warning}");
    assert!(warning.contains("per-IP or global policy"), "{warning}");
    assert!(
        warning.contains("from_extractor::<Authenticated>()"),
        "the warning names no check that refuses anonymous callers: {warning}"
    );

    let (status, _, _) = send(
        &app,
        request("/complete", "alice", r#"{"max_tokens":1000}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(remaining(&limiter, "alice"), 9_500);
}

/// Inside `Hardening`, the refusal carries the request id `Hardening` gave the request and is
/// reported once.
#[tokio::test]
async fn inside_hardening_an_unkeyed_refusal_is_reported_once_under_its_request_id() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let app = app(tokens()).layer(hardening_core::Hardening::strict());
    let (status, headers, body) = send(&app, anonymous("{}")).await;
    assert_eq!(status, 500, "{body:?}");
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        problem["request_id"],
        headers.get("x-request-id").unwrap().to_str().unwrap()
    );
    let events = captured.security_events();
    assert_eq!(
        events.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["cost_limit_unkeyed"]
    );
    assert_eq!(events[0].1["fields"]["request_id"], problem["request_id"]);
}

/// A shadow policy that applies does not make the request limited: with only a shadow
/// global budget beside the per-principal one, an anonymous request is still refused.
#[tokio::test]
async fn a_shadow_policy_alone_does_not_apply() {
    let limiter = RateLimiter::new([
        Policy::per_principal("tokens-per-day", Quota::per_day(nz(10_000))),
        Policy::global("trial", Quota::per_day(nz(100_000))).shadow(),
    ]);
    let (status, _, body) = send(&app(limiter), anonymous("{}")).await;
    assert_eq!(status, 500, "admitted unkeyed: {body:?}");
}

/// A per-IP budget beside the per-principal one applies to anonymous requests: they are
/// admitted and charged to their address.
#[tokio::test]
async fn a_per_ip_policy_makes_anonymous_requests_limited() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let limiter = RateLimiter::new([
        Policy::per_principal("tokens-per-day", Quota::per_day(nz(10_000))),
        Policy::per_client_ip("tokens-per-ip", Quota::per_day(nz(10_000))),
    ]);
    let app = app(limiter.clone());
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 4000));
    let mut req = anonymous(r#"{"max_tokens":1000}"#);
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, 200, "{body:?}");
    let headers = http::HeaderMap::new();
    let keys = RequestKeys::new(Some(peer.ip()), &headers);
    assert_eq!(limiter.statuses(&keys)[0].remaining(), 9_500);
    assert!(unkeyed_warnings(&captured).is_empty());
}

/// `dangerous_allow_unkeyed` keeps the old behaviour (admitted, nothing reserved) and says
/// so when the layer is built.
#[tokio::test]
async fn dangerous_allow_unkeyed_admits_and_warns() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let layer = CostLayer::new(tokens(), Estimate::fixed(100)).dangerous_allow_unkeyed();
    let loosenings = captured.loosenings();
    assert_eq!(loosenings.len(), 1, "{loosenings:?}");
    assert_eq!(loosenings[0].0, "CostLayer::dangerous_allow_unkeyed");
    let app = Router::new()
        .route("/complete", post(|| async { "done" }))
        .layer(layer);
    let (status, _, body) = send(&app, anonymous("{}")).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, Bytes::from_static(b"done"))
    );
    assert!(captured.security_events().is_empty());
}

/// A per-IP budget and no client IP (served without `ConnectInfo`, and not inside
/// `Hardening`): refused like any request no policy counts, and the warning says what is
/// missing. It used to advise adding the per-IP policy the layer already has.
#[tokio::test]
async fn a_per_ip_policy_without_the_client_ip_says_what_is_missing() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let limiter = RateLimiter::new([Policy::per_client_ip(
        "tokens-per-ip",
        Quota::per_day(nz(10_000)),
    )]);
    let (status, _, body) = send(&app(limiter), anonymous("{}")).await;
    assert_eq!(status, 500, "admitted unkeyed: {body:?}");
    let warnings = unkeyed_warnings(&captured);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = warnings[0]["fields"]["message"].as_str().unwrap();
    assert!(
        warning.contains("ConnectInfo"),
        "the warning does not say the client IP is missing: {warning}"
    );
}

/// `Usage` on a route without a `CostLayer` is a wiring mistake: a 500 problem, and an error
/// in the log saying so. The reason went nowhere: the operator saw a bare 500.
#[tokio::test]
async fn usage_without_a_cost_layer_is_a_500_whose_reason_is_logged() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::ERROR);
    let app = Router::new()
        .route("/complete", post(|_: Usage| async { "unreachable" }))
        .layer(hardening_core::Hardening::strict());
    let (status, headers, body) = send(&app, request("/complete", "alice", "{}")).await;
    assert_eq!(status, 500);
    assert_eq!(headers["content-type"], "application/problem+json");
    let body = String::from_utf8_lossy(&body);
    assert!(!body.contains("CostLayer"), "the reason leaked: {body}");
    let errors = captured.json_lines();
    assert!(
        errors.iter().any(|e| e["level"] == "ERROR"
            && e["fields"]["error"]
                .to_string()
                .contains("without CostLayer")),
        "no error logged names the missing CostLayer: {}",
        captured.text()
    );
}
