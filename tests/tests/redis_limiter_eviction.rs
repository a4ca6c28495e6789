//! `RedisLimiter` refuses, at start-up, a Redis that may evict buckets (any
//! `maxmemory-policy` but `noeviction`: every bucket has a TTL, so `volatile-*` evicts them
//! too, and an evicted bucket starts again full, a daily budget included); a Redis that will
//! not say (`CONFIG` refused by its ACL or renamed) is logged, not refused.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::num::NonZeroU32;
use std::time::Duration;

use hardening_core::ratelimit::{
    FailureMode, Policy, Quota, RedisLimiter, RedisLimiterBuilder, RedisStoreError,
};
use hardening_tests::Captured;
use hardening_tests::redis_server::{
    RedisServer, assert_eviction_unchecked, hiding_the_eviction_policy, the_eviction_error,
};

/// A daily token budget, the kind an eviction would give back whole.
fn builder(url: &str) -> RedisLimiterBuilder {
    let per_day = Quota::per_day(NonZeroU32::new(100_000).unwrap());
    RedisLimiter::builder(url)
        .policy(
            Policy::per_principal("tokens-per-day", per_day),
            FailureMode::FailClosed,
        )
        .timeout(Duration::from_millis(500))
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn an_evicting_redis_is_refused_at_start_up() {
    let (log, _guard) = Captured::json_logs(tracing::Level::WARN);
    for policy in ["allkeys-lru", "volatile-ttl"] {
        let server = RedisServer::start_with(&["--maxmemory-policy", policy]);
        let Err(err) = builder(&server.url()).connect().await else {
            panic!("a Redis with maxmemory-policy {policy} was accepted");
        };
        let text = err.to_string();
        assert!(
            text.contains(&format!("maxmemory-policy {policy}")),
            "{text}"
        );
        assert!(
            text.contains("set maxmemory-policy noeviction on this Redis"),
            "{text}"
        );
        assert!(text.contains("dedicated Redis for rate limits"), "{text}");
        assert!(text.contains("dangerous_allow_eviction()"), "{text}");
    }
    assert_eq!(log.warnings().len(), 0, "{}", log.text());

    // `noeviction` (Redis's default, which the other store tests rely on): connects with
    // nothing logged.
    let server = RedisServer::start_with(&["--maxmemory-policy", "noeviction"]);
    builder(&server.url()).connect().await.unwrap();
    builder(&RedisServer::start().url())
        .connect()
        .await
        .unwrap();
    assert_eq!(log.warnings().len(), 0, "{}", log.text());
}

/// Loosened by name: it connects, counts, and says so once; `noeviction` is not logged,
/// loosened or not.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn the_loosening_accepts_an_evicting_redis_and_says_so() {
    let (log, _guard) = Captured::json_logs(tracing::Level::WARN);
    let server = RedisServer::start_with(&["--maxmemory-policy", "volatile-lru"]);
    let err = builder(&server.url()).connect().await.unwrap_err();
    assert!(
        matches!(&err, RedisStoreError::EvictingPolicy(p) if p == "volatile-lru"),
        "{err:?}"
    );
    let limiter = builder(&server.url())
        .dangerous_allow_eviction()
        .connect()
        .await
        .unwrap();
    let headers = http::HeaderMap::new();
    let keys = hardening_core::ratelimit::RequestKeys::new(None, &headers).principal(Some("alice"));
    assert!(limiter.check(&keys, 1).await.unwrap().is_admitted());
    assert_eq!(
        log.loosenings()
            .into_iter()
            .map(|(setting, _)| setting)
            .collect::<Vec<_>>(),
        ["RedisLimiterBuilder::dangerous_allow_eviction"],
        "{}",
        log.text()
    );
    let logged = log.warnings();
    assert_eq!(logged.len(), 1, "{}", log.text());
    assert_eq!(logged[0]["fields"]["maxmemory_policy"], "volatile-lru");
    let message = logged[0]["fields"]["message"].as_str().unwrap();
    assert!(
        message.contains("the Redis for rate limits may evict buckets"),
        "{message}"
    );

    builder(&RedisServer::start().url())
        .dangerous_allow_eviction()
        .connect()
        .await
        .unwrap();
    assert_eq!(log.warnings().len(), 1, "{}", log.text());
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_redis_that_hides_its_policy_is_logged_not_refused() {
    let (log, _guard) = Captured::json_logs(tracing::Level::WARN);
    // Refused by the ACL (as managed services do), with an evicting policy behind it, or
    // renamed away: we cannot know, so it starts, and says why that matters. The password
    // is never logged.
    let servers = hiding_the_eviction_policy();
    for (seen, (_server, url)) in servers.iter().enumerate() {
        builder(url).connect().await.unwrap();
        assert_eviction_unchecked(&log, seen, " of the Redis for rate limits");
    }
}

/// A Redis that hides its policy but evicts keys is found out by its own count of evicted
/// keys (`INFO stats`, which managed services leave open), asked every few minutes (here
/// every 200 ms): logged as an error, naming the address, never the URL or its password.
/// Before, such a Redis was logged once at start-up as unchecked, and then never again.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_redis_that_hides_its_policy_and_evicts_is_logged_as_an_error() {
    let (log, _guard) = Captured::json_logs(tracing::Level::WARN);
    let [(server, url), _] = hiding_the_eviction_policy();
    let limiter = builder(&url)
        .eviction_recheck_every(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    assert!(log.errors().is_empty(), "{}", log.text());
    // Evictions, forced by another client (the server's own user).
    server.evict_keys().await;
    let fields = the_eviction_error(&log, "rate limits", &server.url()).await;
    assert!(
        fields["evicted_keys"].as_u64().unwrap_or_default() > 0,
        "{fields}"
    );
    drop(limiter);
}
