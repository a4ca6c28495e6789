//! Security events without `Hardening`: `ProblemLayer` reports each rejection of the
//! services it wraps once (by status, with the problem's request id and the socket peer),
//! not again when a layer inside reported it already at the same status. With `Hardening`
//! inside or outside it, each rejection is still logged once, under the one id the response
//! carries in its body and `x-request-id`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::num::NonZeroU32;

use axum::Router;
use axum::routing::get;
use hardening_auth::{AuthLayer, Authenticated};
use hardening_core::Hardening;
use hardening_core::errors::{Error, Problem, ProblemLayer, RequestId};
use hardening_core::headers::{HeaderPolicy, HttpsRedirect, SecurityHeadersLayer};
use hardening_core::ratelimit::{Policy, Quota, RateLimitLayer, RateLimiter};
use hardening_tests::jwt::hs256_verifier;
use hardening_tests::{Captured, exchange, get as http_get, serve};
use http::StatusCode;

const SECRET: &[u8] = b"Vb3nQ8xK2mZ7pR4tW9yE1uA6sD5fG0hJ-events";

fn routes() -> Router {
    let verifier = hs256_verifier(SECRET);
    let once = Quota::per_hour(NonZeroU32::new(1).unwrap());
    Router::new()
        .route(
            "/private",
            get(|_: Authenticated| async { "secret" }).layer(AuthLayer::new(verifier)),
        )
        .route("/admin", get(|| async { Err::<(), _>(Error::Forbidden) }))
        .route(
            "/boom",
            get(|| async {
                if true {
                    panic!("handler failed");
                }
            }),
        )
        .route(
            "/limited",
            get(|| async { "hi" }).layer(RateLimitLayer::new(RateLimiter::new([Policy::global(
                "route-budget",
                once,
            )]))),
        )
        .route("/ok", get(|| async { "ok" }))
        // A handler's own refusals, under names of their own (at a status that has an event
        // and at one that has none).
        .route(
            "/webhook",
            get(|| async {
                Problem::new(StatusCode::UNAUTHORIZED)
                    .with_detail("the webhook's signature does not verify")
                    .with_security_event("webhook_signature_invalid")
            }),
        )
        .route(
            "/webhook-replayed",
            get(|| async {
                Problem::new(StatusCode::BAD_REQUEST).with_security_event("webhook_replayed")
            }),
        )
}

/// The rejections of [`routes`] other than the rate limit's: path, status, event.
const REJECTIONS: [(&str, u16, &str); 5] = [
    ("/private", 401, "unauthenticated"),
    ("/admin", 403, "forbidden"),
    ("/boom", 500, "panicked"),
    ("/webhook", 401, "webhook_signature_invalid"),
    ("/webhook-replayed", 400, "webhook_replayed"),
];

#[tokio::test]
async fn problem_layer_alone_reports_each_rejection_once_with_its_request_id() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let addr = serve(routes().layer(ProblemLayer::new())).await;
    for (path, status, event) in REJECTIONS {
        rejected_once(&captured, addr, path, status, event).await;
    }
    // Not rejections: no event.
    let before = captured.security_events().len();
    assert_eq!(http_get(addr, "/ok", &[]).await.status, 200);
    assert_eq!(http_get(addr, "/missing", &[]).await.status, 404);
    assert_eq!(captured.security_events().len(), before);
    // Reported by the rate-limit layer inside (under ProblemLayer's id): not again.
    assert_eq!(http_get(addr, "/limited", &[]).await.status, 200);
    rejected_once(&captured, addr, "/limited", 429, "rate_limited").await;
}

#[tokio::test]
async fn inside_hardening_a_problem_layers_report_is_not_logged_again() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let addr = serve(
        routes()
            .layer(ProblemLayer::new())
            .layer(Hardening::strict()),
    )
    .await;
    for (path, status, event) in REJECTIONS {
        rejected_once(&captured, addr, path, status, event).await;
    }
}

/// Sends `path`; checks the one new security event is `event`, under the id of the reply's
/// body and `x-request-id`.
async fn rejected_once(
    captured: &Captured,
    addr: std::net::SocketAddr,
    path: &str,
    status: u16,
    event: &str,
) {
    let before = captured.security_events().len();
    let reply = http_get(addr, path, &[]).await;
    assert_eq!(reply.status, status, "{path}");
    let events = captured.security_events();
    assert_eq!(
        captured.security_event_names()[before..],
        [event.to_owned()],
        "{path}: {events:?}"
    );
    let id = reply.json()["request_id"].as_str().unwrap().to_owned();
    assert_eq!(reply.header("x-request-id"), Some(id.as_str()), "{path}");
    assert_eq!(
        events[before].1["fields"]["request_id"],
        id.as_str(),
        "{path}"
    );
}

#[tokio::test]
async fn outside_hardening_a_problem_layer_does_not_log_hardenings_rejections_again() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let app = routes()
        .layer(Hardening::strict())
        .layer(ProblemLayer::new());
    let addr = serve(app).await;
    for (path, status, event) in REJECTIONS {
        rejected_once(&captured, addr, path, status, event).await;
    }
    assert_eq!(http_get(addr, "/limited", &[]).await.status, 200);
    rejected_once(&captured, addr, "/limited", 429, "rate_limited").await;
    // Hardening's own refusal, under its own name: not logged again as `forbidden`.
    let before = captured.security_events().len();
    let refused = hardening_tests::send(
        addr,
        "POST",
        "/ok",
        &[("origin", "https://evil.example"), ("cookie", "session=1")],
        Some("{}"),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        captured.security_event_names()[before..],
        ["csrf_blocked".to_owned()]
    );
}

#[tokio::test]
async fn a_success_carries_the_problem_layers_id_not_one_the_handler_copied() {
    let app = Router::new()
        .route(
            "/echo",
            get(|headers: http::HeaderMap, id: RequestId| async move {
                let copied = headers["x-request-id"].clone();
                (
                    [(
                        http::header::HeaderName::from_static("x-request-id"),
                        copied,
                    )],
                    id.to_string(),
                )
            }),
        )
        .layer(ProblemLayer::new());
    let addr = serve(app).await;
    let reply = http_get(addr, "/echo", &["x-request-id: spoofed-by-client"]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-request-id"), Some(reply.body.as_str()));
}

/// A request whose `Host` no redirect may go to, refused by a standalone headers layer with
/// `outer` around it: one `bad_host` event, under the id of the reply's body and header.
async fn bad_host_under(outer: impl FnOnce(Router) -> Router) {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let headers = SecurityHeadersLayer::new(HeaderPolicy::api().build().unwrap())
        .https_redirect(HttpsRedirect::new());
    let addr = serve(outer(routes().layer(headers))).await;
    let reply = exchange(
        addr,
        b"GET /ok HTTP/1.1\r\nhost: example.com:@evil.com\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(captured.security_event_names(), ["bad_host"]);
    let id = reply.json()["request_id"].as_str().unwrap().to_owned();
    assert_eq!(reply.header("x-request-id"), Some(id.as_str()));
    assert_eq!(
        captured.security_events()[0].1["fields"]["request_id"],
        id.as_str()
    );
}

#[tokio::test]
async fn a_standalone_headers_layers_bad_host_inside_hardening_is_logged_once() {
    bad_host_under(|app| app.layer(Hardening::strict())).await;
}

#[tokio::test]
async fn a_standalone_headers_layers_bad_host_under_a_problem_layer_has_one_id() {
    bad_host_under(|app| app.layer(ProblemLayer::new())).await;
}

/// A handler's own 429s: a login throttle's lockout (`LoginRefused`, policy
/// `login-failures`) and an `Error::TooManyRequests` naming its policy.
fn handler_429s() -> Router {
    use hardening_core::ratelimit::LoginRefused;
    Router::new()
        .route(
            "/login",
            get(|| async { LoginRefused::LockedOut(std::time::Duration::from_secs(4)) }),
        )
        .route(
            "/export",
            get(|| async {
                Err::<(), _>(Error::TooManyRequests {
                    retry_after: std::time::Duration::from_secs(60),
                    policies: vec!["exports-per-day".to_owned(), "exports-per-hour".to_owned()],
                })
            }),
        )
}

/// Sends `path` for a handler's 429; the `rate_limited` event names the policies of the
/// problem answered (`violated-policies`).
async fn handler_429_event_names_its_policies(
    captured: &Captured,
    addr: std::net::SocketAddr,
    (path, policies): (&str, &str),
) {
    let before = captured.security_events().len();
    let reply = http_get(addr, path, &[]).await;
    assert_eq!(reply.status, 429, "{path}");
    let events = captured.security_events();
    assert_eq!(
        captured.security_event_names()[before..],
        ["rate_limited".to_owned()],
        "{path}: {events:?}"
    );
    assert_eq!(
        events[before].1["fields"]["policies"],
        policies,
        "{path}: the event does not name the policies of the problem answered ({}): {}",
        reply.json()["violated-policies"],
        events[before].1
    );
}

/// A handler's 429 (a login lockout, an API quota of its own) was logged as `rate_limited`
/// with no policies, where `Hardening`'s own names them: a dashboard could not tell login
/// lockouts from API rate limits. The event now names the policies of the problem answered,
/// from the problem itself (not its body), under `Hardening` and under `ProblemLayer`.
#[tokio::test]
async fn a_handlers_429_event_names_the_policies_of_its_problem() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let expected = [
        ("/login", "[\"login-failures\"]"),
        ("/export", "[\"exports-per-day\", \"exports-per-hour\"]"),
    ];
    for layered in [
        handler_429s().layer(Hardening::strict()),
        handler_429s().layer(ProblemLayer::new()),
    ] {
        let addr = serve(layered).await;
        for case in expected {
            handler_429_event_names_its_policies(&captured, addr, case).await;
        }
    }
}
