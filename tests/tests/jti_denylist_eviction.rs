//! `RedisDenylist` refuses, at start-up, a Redis that may evict revocations (any
//! `maxmemory-policy` but `noeviction`), unless loosened by name; a Redis that will not say
//! (`CONFIG` refused by its ACL or renamed) is logged, not refused.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use hardening_auth::{RedisDenylist, RedisDenylistBuilder, RedisDenylistError};
use hardening_tests::Captured;
use hardening_tests::redis_server::{
    RedisServer, assert_eviction_unchecked, hiding_the_eviction_policy,
};

fn builder(url: &str) -> RedisDenylistBuilder {
    RedisDenylist::builder(url).timeout(Duration::from_millis(500))
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn an_evicting_redis_is_refused_unless_loosened_by_name() {
    let (log, _guard) = Captured::json_logs(tracing::Level::WARN);
    let mut seen = 0;
    // `volatile-*` evicts exactly the keys with an expiry, as revocations have.
    for policy in ["allkeys-lru", "volatile-ttl"] {
        let server = RedisServer::start_with(&["--maxmemory-policy", policy]);
        let err = builder(&server.url()).connect().await.unwrap_err();
        assert!(
            matches!(&err, RedisDenylistError::EvictingPolicy(p) if p == policy),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("maxmemory-policy {policy}")),
            "{text}"
        );
        assert!(
            text.contains("set maxmemory-policy noeviction on this Redis"),
            "{text}"
        );
        assert!(text.contains("dedicated Redis for revocations"), "{text}");
        assert_eq!(log.warnings().len(), seen, "{}", log.text());

        // Loosened by name: it connects, works, and says so once.
        let list = builder(&server.url())
            .dangerous_allow_eviction()
            .connect()
            .await
            .unwrap();
        let token = hardening_auth::TokenRef::new("t", "user-1", None);
        assert!(
            !hardening_auth::Denylist::is_revoked(&list, token)
                .await
                .unwrap()
        );
        let logged = log.warnings();
        assert_eq!(logged.len(), seen + 1, "{}", log.text());
        let logged = &logged[seen..];
        seen += 1;
        assert_eq!(
            logged[0]["fields"]["setting"],
            "RedisDenylistBuilder::dangerous_allow_eviction"
        );
        assert_eq!(logged[0]["fields"]["maxmemory_policy"], policy);
        assert!(
            logged[0]["fields"]["message"]
                .as_str()
                .unwrap()
                .starts_with("hardening loosened:"),
            "{}",
            log.text()
        );
    }

    // `noeviction` (also Redis's default, which the other denylist tests rely on): connects
    // with nothing logged, loosened or not.
    let server = RedisServer::start_with(&["--maxmemory-policy", "noeviction"]);
    builder(&server.url()).connect().await.unwrap();
    builder(&server.url())
        .dangerous_allow_eviction()
        .connect()
        .await
        .unwrap();
    builder(&RedisServer::start().url())
        .connect()
        .await
        .unwrap();
    assert_eq!(log.warnings().len(), seen, "{}", log.text());
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
        assert_eviction_unchecked(&log, seen, "");
    }
}
