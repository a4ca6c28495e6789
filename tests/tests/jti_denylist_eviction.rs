//! `RedisDenylist` refuses, at start-up, a Redis that may evict revocations (any
//! `maxmemory-policy` but `noeviction`), unless loosened by name; a Redis that will not say
//! (`CONFIG` refused by its ACL or renamed) is logged, not refused. A Redis that keeps
//! nothing across a restart (neither `appendonly` nor `save`) is warned about.

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

/// Whether `warning` is the one about a Redis that keeps nothing across a restart.
fn is_about_persistence(warning: &serde_json::Value) -> bool {
    warning["fields"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("keeps nothing across a restart"))
}

/// `log`'s warnings but those about persistence (the test servers keep nothing).
fn eviction_warnings(log: &Captured) -> Vec<serde_json::Value> {
    let mut warnings = log.warnings();
    warnings.retain(|w| !is_about_persistence(w));
    warnings
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
        assert_eq!(eviction_warnings(&log).len(), seen, "{}", log.text());

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
        let logged = eviction_warnings(&log);
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
    assert_eq!(eviction_warnings(&log).len(), seen, "{}", log.text());
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_redis_that_hides_its_policy_is_logged_not_refused() {
    let (log, _guard) = Captured::json_logs(tracing::Level::WARN);
    // Refused by the ACL (as managed services do), with an evicting policy behind it, or
    // renamed away: we cannot know, so it starts, and says why that matters. The password
    // is never logged.
    let servers = hiding_the_eviction_policy();
    // Nor can it ask `appendonly` and `save`: that warning is the only one.
    for (seen, (_server, url)) in servers.iter().enumerate() {
        builder(url).connect().await.unwrap();
        assert_eviction_unchecked(&log, seen, "");
    }
}

/// A Redis that keeps nothing across a restart (`appendonly no`, `save ""`, as the test
/// servers run) revives every revoked token when it restarts: start-up says so once, as a
/// warning naming the store, both settings and the fix, and goes on. Either setting on (an
/// append-only file, or RDB snapshots) is enough: nothing is said. Before, nothing was said
/// either way.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_redis_that_keeps_nothing_across_a_restart_is_warned_about() {
    let (log, _guard) = Captured::json_logs(tracing::Level::WARN);
    let forgetful = RedisServer::start();
    builder(&forgetful.url()).connect().await.unwrap();
    let warnings = log.warnings();
    assert_eq!(warnings.len(), 1, "{}", log.text());
    let fields = &warnings[0]["fields"];
    assert_eq!(fields["store"], "the jti denylist");
    assert_eq!(fields["appendonly"], "no");
    assert_eq!(fields["save"], "");
    let message = fields["message"].as_str().unwrap();
    assert!(
        message.contains("keeps nothing across a restart"),
        "{message}"
    );
    assert!(message.contains("revoked token"), "{message}");
    assert!(message.contains("appendonly yes"), "{message}");

    // Their files (an append-only file, a snapshot) go to a directory of this test's own,
    // removed at the end.
    let dir = std::env::temp_dir().join(format!("h-persist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir_arg = dir.to_str().unwrap().to_owned();
    for kept in [
        ["--appendonly", "yes", "--dir", &dir_arg],
        ["--save", "3600 1", "--dir", &dir_arg],
    ] {
        let server = RedisServer::start_with(&kept);
        builder(&server.url()).connect().await.unwrap();
        assert_eq!(log.warnings().len(), 1, "{kept:?}: {}", log.text());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
