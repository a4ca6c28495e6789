//! The Redis stores (`RedisLimiter`, `RedisLoginThrottle`, `RedisDenylist`) in front of a
//! Redis that is loading its data set, as one restarted with persistence is for seconds:
//! it answers every command `-LOADING …` (here a [`BlackHoleProxy`] answering so, as no real
//! server can be held in that state). That is an outage, not an answer: each store's circuit
//! breaker counts it, so each refuses with a 503's `Retry-After` of the breaker's cool-down
//! and logs one error when the breaker opens, never one per request.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use hardening_core::auth::{AuthLayer, Authenticated, RedisDenylist};
use hardening_core::ratelimit::{
    FailureMode, LoginRefused, Policy, Quota, RedisLimiter, RedisLoginThrottle, RequestKeys,
};
use hardening_tests::Captured;
use hardening_tests::jwt::{hs256_token, hs256_verifier};
use hardening_tests::redis_server::{BlackHoleProxy, RedisServer};
use http::{Request, StatusCode};
use tower::ServiceExt;

const SECRET: &[u8] = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj-loading";
const TIMEOUT: Duration = Duration::from_millis(200);
/// Each breaker's: open after 3 failures in a row, for 2 s (`Retry-After: 2`, where an error
/// Redis answered says 1).
const FAILURES: u32 = 3;
const COOL_DOWN: Duration = Duration::from_secs(2);

/// `GET /me` (which needs `Authenticated`) with a bearer token, behind an `AuthLayer` asking
/// `denylist`: its status and `Retry-After`.
async fn me(app: &Router) -> (StatusCode, Option<String>) {
    let token = hs256_token(SECRET, serde_json::json!({ "sub": "user-1", "jti": "t-1" }));
    let req = Request::get("/me")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status(), retry_after)
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_loading_redis_is_an_outage_for_every_store() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let server = RedisServer::start();
    let proxy = BlackHoleProxy::start(&server).await;
    let url = proxy.url();
    let quota = Quota::per_day(NonZeroU32::new(1).unwrap()).burst(NonZeroU32::new(1_000).unwrap());
    let limiter = RedisLimiter::builder(&url)
        .policy(Policy::global("g", quota), FailureMode::FailClosed)
        .timeout(TIMEOUT)
        .circuit_breaker(FAILURES, COOL_DOWN)
        .connect()
        .await
        .unwrap();
    let logins = RedisLoginThrottle::builder(&url, b"a test hash key of 32 bytes or more")
        .timeout(TIMEOUT)
        .circuit_breaker(FAILURES, COOL_DOWN)
        .connect()
        .await
        .unwrap();
    let denylist = RedisDenylist::builder(&url)
        .timeout(TIMEOUT)
        .circuit_breaker(FAILURES, COOL_DOWN)
        .connect()
        .await
        .unwrap();
    let app = Router::new()
        .route(
            "/me",
            get(|user: Authenticated| async move { user.principal.subject }),
        )
        .layer(AuthLayer::new(hs256_verifier(SECRET)).denylist(Arc::new(denylist)));
    let headers = http::HeaderMap::new();
    let keys = RequestKeys::new(None, &headers);
    let client = "192.0.2.9".parse().unwrap();
    assert!(limiter.check(&keys, 1).await.unwrap().is_admitted());
    logins.attempt("alice", client).await.unwrap().failed();
    assert_eq!(me(&app).await, (StatusCode::OK, None));
    // Start-up logs a warning or two (the test server keeps nothing across a restart).
    let before = captured.json_lines().len();

    proxy.loading();
    let (mut limited, mut throttled, mut checked) = (Vec::new(), Vec::new(), Vec::new());
    // Bounded: twice the failures that open each breaker, well within its cool-down.
    for _ in 0..2 * FAILURES {
        limited.push(
            limiter
                .check(&keys, 1)
                .await
                .map(|_| ())
                .unwrap_err()
                .retry_after(),
        );
        throttled.push(match logins.attempt("alice", client).await {
            Err(LoginRefused::Unavailable(retry_after)) => retry_after,
            other => panic!("not refused for want of Redis: {other:?}"),
        });
        checked.push(me(&app).await);
    }
    let logged: Vec<_> = captured.json_lines().split_off(before);
    let errors: Vec<_> = logged.iter().filter(|l| l["level"] == "ERROR").collect();
    let mut stores: Vec<_> = errors
        .iter()
        .map(|e| e["fields"]["store"].as_str().unwrap_or_default())
        .collect();
    stores.sort_unstable();
    assert_eq!(
        stores,
        ["login throttling", "rate limits", "the jti denylist"],
        "one error per store, when its breaker opened: {errors:#?}"
    );
    for error in errors {
        let message = error["fields"]["message"].as_str().unwrap();
        assert!(message.contains("3 times in a row"), "{message}");
    }
    assert!(limited.iter().all(|r| *r == COOL_DOWN), "{limited:?}");
    assert!(throttled.iter().all(|r| *r == COOL_DOWN), "{throttled:?}");
    let down = (StatusCode::SERVICE_UNAVAILABLE, Some("2".to_owned()));
    assert!(checked.iter().all(|c| *c == down), "{checked:?}");
}
