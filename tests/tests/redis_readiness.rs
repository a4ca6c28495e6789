//! `/readyz` following the Redis stores, over 127.0.0.1 against a real `redis-server`: the
//! readiness checks of `RedisLimiter`, `RedisDenylist` and `RedisLoginThrottle` ping Redis over each store's own
//! connection, so readiness fails, naming the checks, while Redis is down, and passes again
//! once it is back. A user wanting this had to add a `redis` dependency of their own, at a
//! version matching ours, and ping over a connection of their own.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::num::NonZeroU32;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hardening_core::auth::RedisDenylist;
use hardening_core::ratelimit::{FailureMode, Policy, Quota, RedisLimiter, RedisLoginThrottle};
use hardening_core::{Hardening, Health};
use hardening_tests::redis_server::RedisServer;
use hardening_tests::{eventually, exchange, serve};

const READYZ: &[u8] = b"GET /readyz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server"]
async fn readyz_fails_naming_the_redis_checks_while_redis_is_down() {
    let mut server = RedisServer::start();
    let url = server.url();
    let limiter = RedisLimiter::builder(&url)
        .policy(
            Policy::global("g", Quota::per_minute(NonZeroU32::new(100).unwrap())),
            FailureMode::FailClosed,
        )
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let denylist = RedisDenylist::builder(&url)
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let logins = RedisLoginThrottle::builder(&url, b"0123456789abcdef0123456789abcdef")
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let health = Health::new()
        .check("redis-limits", limiter.readiness_check())
        .check("redis-denylist", denylist.readiness_check())
        .check("redis-logins", logins.readiness_check())
        .reuse_results_for(Duration::ZERO);
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(Hardening::strict().health(health));
    let addr = serve(app).await;

    let up = exchange(addr, READYZ).await;
    assert_eq!(up.status, 200, "{up:?}");
    let body: serde_json::Value = serde_json::from_str(&up.body).unwrap();
    assert_eq!(body["checks"]["redis-limits"], "ok", "{body}");
    assert_eq!(body["checks"]["redis-denylist"], "ok", "{body}");
    assert_eq!(body["checks"]["redis-logins"], "ok", "{body}");

    server.kill();
    let down = exchange(addr, READYZ).await;
    assert_eq!(down.status, 503, "{down:?}");
    let problem: serde_json::Value = serde_json::from_str(&down.body).unwrap();
    assert_eq!(
        problem["detail"], "readiness checks failed: redis-limits, redis-denylist, redis-logins",
        "{problem}"
    );
    // Shown to loopback: what failed, at which address (never the URL).
    let redis_addr = url.trim_start_matches("redis://").trim_end_matches('/');
    for (check, store) in [
        ("redis-limits", "rate limits"),
        ("redis-denylist", "the jti denylist"),
        ("redis-logins", "login throttling"),
    ] {
        let error = problem["checks"][check]["error"]
            .as_str()
            .unwrap_or_default();
        assert!(
            error.contains(store) && error.contains(redis_addr) && error.contains("PING"),
            "{check}: {problem}"
        );
    }
    assert!(!down.body.contains("redis://"), "{}", down.body);

    server.restart();
    assert!(
        eventually(async || exchange(addr, READYZ).await.status == 200).await,
        "readiness did not pass again once Redis was back"
    );
}
