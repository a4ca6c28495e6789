//! The standalone `RateLimitLayer` over TCP: keyed by the socket peer, 429 problems after the
//! burst, IETF headers on every response.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::num::NonZeroU32;

use axum::Router;
use axum::routing::get;
use hardening_core::ratelimit::{Policy, Quota, RateLimitLayer, RateLimiter};
use hardening_tests::{get as http_get, serve};

#[tokio::test]
async fn standalone_layer_limits_by_peer() {
    let quota = Quota::per_hour(NonZeroU32::new(10).unwrap()).burst(NonZeroU32::new(2).unwrap());
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(RateLimitLayer::new(RateLimiter::new([
            Policy::per_client_ip("per-ip", quota),
        ])));
    let addr = serve(app).await;
    let a = http_get(addr, "/", &["x-forwarded-for: 1.2.3.4"]).await;
    let b = http_get(addr, "/", &["x-forwarded-for: 5.6.7.8"]).await;
    let c = http_get(addr, "/", &[]).await;
    assert_eq!(
        (a.status, b.status),
        (200, 200),
        "forwarding headers do not make new keys"
    );
    assert_eq!(a.header("ratelimit-policy"), Some("\"per-ip\";q=10;w=3600"));
    assert_eq!(c.status, 429);
    assert_eq!(c.header("content-type"), Some("application/problem+json"));
    assert_eq!(c.header("retry-after"), Some("360"));
    assert_eq!(c.json()["violated-policies"][0], "per-ip");
}

#[tokio::test]
async fn inside_hardening_the_layer_keys_on_the_client_behind_a_trusted_proxy() {
    use hardening_core::Hardening;
    let quota = Quota::per_hour(NonZeroU32::new(10).unwrap()).burst(NonZeroU32::new(1).unwrap());
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(RateLimitLayer::new(RateLimiter::new([
            Policy::per_client_ip("route-per-ip", quota),
        ])))
        .layer(Hardening::strict().trusted_proxies(["127.0.0.1"]).unwrap());
    let addr = serve(app).await;
    // Two clients behind the same proxy (the test's socket, 127.0.0.1): one bucket each.
    let a = http_get(addr, "/", &["x-forwarded-for: 198.51.100.1"]).await;
    let b = http_get(addr, "/", &["x-forwarded-for: 198.51.100.2"]).await;
    assert_eq!(
        (a.status, b.status),
        (200, 200),
        "clients behind one proxy share a bucket: {b:?}"
    );
    let again = http_get(addr, "/", &["x-forwarded-for: 198.51.100.1"]).await;
    assert_eq!(again.status, 429, "{again:?}");
    assert_eq!(again.json()["violated-policies"][0], "route-per-ip");
}
