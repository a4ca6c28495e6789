//! A rate-limit layer whose enforcing policies count none of a request's keys lets it through
//! unlimited: per-principal policies and an anonymous caller, or the layer placed outside the
//! auth layer (where no request has a principal yet). It used to say nothing; it now warns
//! once per layer, naming the policies and the fix, and still serves.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::num::NonZeroU32;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use hardening_core::errors::PrincipalId;
use hardening_core::ratelimit::{
    FailureMode, Policy, Quota, RateLimitLayer, RateLimiter, RedisLimiter, RedisRateLimitLayer,
};
use hardening_tests::Captured;
use hardening_tests::redis_server::RedisServer;
use http::Request;
use tower::ServiceExt;

const WARNING: &str = "let a request through unlimited";

fn once() -> Quota {
    Quota::per_hour(NonZeroU32::new(1).unwrap())
}

fn routes() -> Router {
    Router::new().route("/", get(|| async { "ok" }))
}

fn app<const N: usize>(policies: [Policy; N]) -> Router {
    routes().layer(RateLimitLayer::new(RateLimiter::new(policies)))
}

/// `GET /` from 192.0.2.1, as `principal` if any: its status.
async fn status(app: &Router, principal: Option<&str>) -> u16 {
    let mut req = Request::get("/").body(Body::empty()).unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [192, 0, 2, 1],
            40000,
        ))));
    if let Some(principal) = principal {
        req.extensions_mut().insert(PrincipalId::new(principal));
    }
    app.clone().oneshot(req).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn per_principal_policies_and_an_anonymous_caller_warn_once() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let per_user = app([Policy::per_principal("per-user", once())]);
    for _ in 0..3 {
        assert_eq!(status(&per_user, None).await, 200, "unlimited, as before");
    }
    let logs = captured.text();
    assert_eq!(logs.matches(WARNING).count(), 1, "{logs}");
    assert!(
        logs.contains("per-user") && logs.contains("RateLimitLayer"),
        "{logs}"
    );
    // Counted with a principal: the second request is refused.
    assert_eq!(status(&per_user, Some("alice")).await, 200);
    assert_eq!(status(&per_user, Some("alice")).await, 429);
}

/// Nothing to say when some enforcing policy counts the request, or when the limiter is all
/// shadow (it limits nothing by design).
#[tokio::test]
async fn no_warning_when_an_enforcing_policy_counts_the_request() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let per_user = app([Policy::per_principal("per-user", once())]);
    assert_eq!(status(&per_user, Some("alice")).await, 200);
    let both = app([
        Policy::per_principal("per-user", once()),
        Policy::per_client_ip("per-ip", once()),
    ]);
    assert_eq!(status(&both, None).await, 200);
    assert_eq!(status(&both, None).await, 429, "counted by IP");
    let all_shadow = app([Policy::per_principal("per-user", once()).shadow()]);
    assert_eq!(status(&all_shadow, None).await, 200);
    assert!(!captured.text().contains(WARNING), "{}", captured.text());
}

/// The warning's messages that say a request went through unlimited.
fn unlimited_warnings(captured: &Captured) -> Vec<String> {
    captured
        .json_lines()
        .iter()
        .filter_map(|line| line["fields"]["message"].as_str())
        .filter(|message| message.contains(WARNING))
        .map(str::to_owned)
        .collect()
}

/// A per-IP policy and a request with no client IP (an app served without `ConnectInfo`):
/// the warning told to add a per-IP policy, which the layer has, or to move it inside the
/// auth layer, which gives no client IP, beside the layer's own warning about the missing
/// peer. That one alone is said now; a per-principal policy's anonymous caller is told about
/// the auth layer, not about the client IP it has.
#[tokio::test]
async fn the_warning_says_what_the_request_lacked_and_no_more() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let per_ip = app([Policy::per_client_ip("per-ip", once())]);
    let request = Request::get("/").body(Body::empty()).unwrap();
    assert_eq!(per_ip.oneshot(request).await.unwrap().status(), 200);
    assert_eq!(
        unlimited_warnings(&captured),
        [] as [String; 0],
        "no client IP"
    );
    assert_eq!(
        captured.text().matches("no client IP").count(),
        1,
        "{}",
        captured.text()
    );

    let per_user = app([Policy::per_principal("per-user", once())]);
    assert_eq!(status(&per_user, None).await, 200);
    let warnings = unlimited_warnings(&captured);
    assert_eq!(warnings.len(), 1, "{}", captured.text());
    assert!(
        warnings[0].contains("no principal")
            && warnings[0].contains("inside the auth layer")
            && !warnings[0].contains("client IP"),
        "{}",
        warnings[0]
    );
}

/// A shadow policy that counts the request limits nothing: still unlimited, still said.
#[tokio::test]
async fn only_a_shadow_policy_counting_the_request_is_still_unlimited() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let app = app([
        Policy::per_principal("per-user", once()),
        Policy::per_client_ip("per-ip-trial", once()).shadow(),
    ]);
    for _ in 0..2 {
        assert_eq!(status(&app, None).await, 200);
    }
    let logs = captured.text();
    assert_eq!(logs.matches(WARNING).count(), 1, "{logs}");
    assert!(
        logs.contains("per-user") && !logs.contains("per-ip-trial)"),
        "{logs}"
    );
}

/// The routes behind a `RedisRateLimitLayer` of this one policy, on `server`.
async fn redis_app(server: &RedisServer, policy: Policy) -> Router {
    let limiter = RedisLimiter::builder(&server.url())
        .policy(policy, FailureMode::FailClosed)
        .timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    routes().layer(RedisRateLimitLayer::new(limiter))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server"]
async fn the_redis_layer_warns_once_too() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let server = RedisServer::start();
    let app = redis_app(&server, Policy::per_principal("per-user", once())).await;
    for _ in 0..3 {
        assert_eq!(status(&app, None).await, 200);
    }
    assert_eq!(status(&app, Some("alice")).await, 200);
    assert_eq!(status(&app, Some("alice")).await, 429);
    let logs = captured.text();
    assert_eq!(logs.matches(WARNING).count(), 1, "{logs}");
    assert!(
        logs.contains("per-user") && logs.contains("RedisRateLimitLayer"),
        "{logs}"
    );
}

/// The Redis layer has no warning of its own about a missing peer: its unlimited warning
/// says the request had no client IP, and how to give it one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server"]
async fn the_redis_layer_says_a_missing_client_ip() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let server = RedisServer::start();
    let app = redis_app(&server, Policy::per_client_ip("per-ip", once())).await;
    let request = Request::get("/").body(Body::empty()).unwrap();
    assert_eq!(app.oneshot(request).await.unwrap().status(), 200);
    let warnings = unlimited_warnings(&captured);
    assert_eq!(warnings.len(), 1, "{}", captured.text());
    assert!(
        warnings[0].contains("no client IP")
            && warnings[0].contains("into_make_service_with_connect_info")
            && !warnings[0].contains("add a per-IP"),
        "{}",
        warnings[0]
    );
}
