//! The standalone `RateLimitLayer` on an app served without the peer address (no
//! `ConnectInfo`): its per-IP policies count nothing. It used to say nothing either; it now
//! warns once, naming the fix, and still serves.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::num::NonZeroU32;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use hardening_core::ratelimit::{Policy, Quota, RateLimitLayer, RateLimiter};
use hardening_tests::Captured;
use http::Request;
use tower::ServiceExt;

const WARNING: &str = "no client IP";

fn app(policy: Policy) -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(RateLimitLayer::new(RateLimiter::new([policy])))
}

async fn status(app: &Router, peer: bool) -> u16 {
    let mut req = Request::get("/").body(Body::empty()).unwrap();
    if peer {
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [192, 0, 2, 1],
                40000,
            ))));
    }
    app.clone().oneshot(req).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_per_ip_policy_without_a_peer_address_warns_once() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let once = Quota::per_hour(NonZeroU32::new(1).unwrap());
    let per_ip = app(Policy::per_client_ip("per-ip", once));
    for _ in 0..3 {
        assert_eq!(status(&per_ip, false).await, 200, "uncounted, as before");
    }
    let logs = captured.text();
    assert_eq!(logs.matches(WARNING).count(), 1, "{logs}");
    assert!(
        logs.contains("per-ip") && logs.contains("ConnectInfo"),
        "{logs}"
    );

    // With a peer, or with no per-IP policy, nothing to say.
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    assert_eq!(
        status(&app(Policy::per_client_ip("a", once)), true).await,
        200
    );
    assert_eq!(status(&app(Policy::global("b", once)), false).await, 200);
    assert!(!captured.text().contains(WARNING), "{}", captured.text());
}
