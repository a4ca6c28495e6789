//! The Redis stores (`RedisLimiter`, `RedisDenylist`, `RedisLoginThrottle`) with their
//! `redis-server` stopped, over 127.0.0.1: its port refuses connections at once, and so must
//! the stores, instead of waiting out their timeout on every command; at start-up, their
//! error names the server's `host:port`.
//!
//! A trial killed the Redis of two instances: each request waited the store's whole timeout
//! (100–200 ms) until the circuit breaker opened, and within seconds each store warned that
//! its connection "was replaced: commands timed out on it … though it stayed open" — the
//! wrong cause. The connection manager tried to connect again inside the command, sleeping
//! between its retries (100–200 ms, then 200–400 ms), so a refused connection came back as
//! the store's own timeout, never as an error.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::num::NonZeroU32;
use std::time::Duration;

use hardening_core::auth::{Denylist, RedisDenylist, TokenRef};
use hardening_core::ratelimit::{
    FailureMode, LoginRefused, Policy, Quota, RedisLimiter, RedisLoginThrottle, RequestKeys,
};
use hardening_errors::{EVICTION_RECHECK_EVERY, EvictionRisk, RedisConnection};
use hardening_tests::Captured;
use hardening_tests::redis_server::RedisServer;

/// The store timeout of these tests: shorter than the connection manager's old retries.
const TIMEOUT: Duration = Duration::from_millis(200);

const RISK: EvictionRisk = EvictionRisk {
    store: "tests",
    loss: "nothing",
    loosening: "none",
};

/// A `PING` through `conn` the way the stores send a command (`send_once`: a command that
/// must not run twice; else `send_idempotent`), waited for as long as a store would.
async fn ping(conn: &RedisConnection, once: bool) -> Result<redis::RedisResult<()>, String> {
    let ping = |mut c: redis::aio::ConnectionManager| async move {
        redis::cmd("PING").query_async::<()>(&mut c).await
    };
    let sending = async {
        if once {
            conn.send_once(ping).await
        } else {
            conn.send_idempotent(ping).await
        }
    };
    tokio::time::timeout(TIMEOUT, sending)
        .await
        .map_err(|_| format!("no reply nor error within {TIMEOUT:?}"))
}

/// The shared connection: once Redis is stopped, every command through it fails with a
/// connection error (refused, or the old connection found closed), never by running out of
/// the store's timeout, whether it may be sent twice or not.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_command_to_a_stopped_redis_fails_with_a_connection_error_not_a_timeout() {
    let mut server = RedisServer::start();
    let client = hardening_errors::redis_connection_info(&server.url())
        .and_then(redis::Client::open)
        .unwrap();
    let conn = RedisConnection::connect(
        client,
        TIMEOUT,
        None,
        Duration::from_secs(60),
        RISK,
        true,
        EVICTION_RECHECK_EVERY,
    )
    .await
    .unwrap();
    ping(&conn, false).await.unwrap().unwrap();
    server.kill();
    for (i, once) in [false, true, false, true, false, false, true, true]
        .into_iter()
        .enumerate()
    {
        match ping(&conn, once).await {
            Ok(Err(e)) => assert!(
                (e.is_connection_refusal() || e.is_connection_dropped()) && !e.is_timeout(),
                "command {i} (send_once: {once}): not a connection error: {e}"
            ),
            Ok(Ok(())) => panic!("command {i}: answered by a stopped Redis"),
            Err(timed_out) => panic!(
                "command {i} (send_once: {once}): {timed_out}: a refused connection was waited \
                 on as a silent one"
            ),
        }
    }
    // Redis back: the next command is answered.
    server.restart();
    ping(&conn, true).await.unwrap().unwrap();
}

/// The warnings of `captured` saying a connection was replaced (or stayed open with no reply):
/// none is due for a Redis that refuses connections.
fn replaced_warnings(captured: &Captured) -> Vec<serde_json::Value> {
    captured
        .warnings()
        .into_iter()
        .filter(|w| {
            w["fields"]["message"].as_str().is_some_and(|m| {
                m.contains("replaced") || m.contains("stayed open") || m.contains("no reply")
            })
        })
        .collect()
}

/// Each store, its Redis stopped: its commands fail as errors (counted by the breaker, which
/// opens), and no store warns that its connection "stayed open" with "no reply": asked for
/// longer than each store's silence that replaces a connection (the breaker's cool-down, or
/// ten timeouts for the denylist), probes after every cool-down included.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_stopped_redis_is_not_taken_for_a_silent_connection() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let mut server = RedisServer::start();
    let url = server.url();
    let quota = Quota::per_day(NonZeroU32::new(1).unwrap()).burst(NonZeroU32::new(1_000).unwrap());
    let limiter = RedisLimiter::builder(&url)
        .policy(Policy::global("g", quota), FailureMode::FailClosed)
        .timeout(TIMEOUT)
        .circuit_breaker(3, Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let logins = RedisLoginThrottle::builder(&url, b"a test hash key of 32 bytes or more")
        .timeout(TIMEOUT)
        .circuit_breaker(3, Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    // Its silence: ten timeouts, 1 s.
    let denylist = RedisDenylist::builder(&url)
        .timeout(Duration::from_millis(100))
        .circuit_breaker(3, Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let headers = http::HeaderMap::new();
    let keys = RequestKeys::new(None, &headers);
    let client = "192.0.2.9".parse().unwrap();
    let token = TokenRef::new("t-1", "alice", None);
    assert!(limiter.check(&keys, 1).await.unwrap().is_admitted());
    logins.attempt("alice", client).await.unwrap().failed();
    assert!(!denylist.is_revoked(token).await.unwrap());

    server.kill();
    let (mut limiter_opened, mut logins_opened) = (false, false);
    let mut denylist_timeouts = Vec::new();
    // Bounded: 30 rounds 100 ms apart, 3 s at least, each command waiting its timeout at most.
    for _ in 0..30 {
        assert!(limiter.check(&keys, 1).await.is_err(), "fail-closed");
        limiter_opened |= limiter.breaker_open();
        assert!(matches!(
            logins.attempt("alice", client).await,
            Err(LoginRefused::Unavailable(_))
        ));
        logins_opened |= logins.breaker_open();
        let refused = denylist.is_revoked(token).await.unwrap_err().to_string();
        if refused.contains("no answer within") {
            denylist_timeouts.push(refused);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(limiter_opened, "the limiter's breaker never opened");
    assert!(logins_opened, "the login throttle's breaker never opened");
    // The denylist's breaker, past its cool-down by now, opens again on failures in a row.
    let mut denylist_opened = false;
    for _ in 0..4 {
        let refused = denylist.is_revoked(token).await.unwrap_err().to_string();
        denylist_opened |= refused.contains("circuit breaker open");
    }
    assert!(denylist_opened, "the denylist's breaker never opened");
    let replaced = replaced_warnings(&captured);
    assert!(
        replaced.is_empty(),
        "a refused connection was warned about as one that stayed open: {replaced:#?}"
    );
    assert!(
        denylist_timeouts.is_empty(),
        "the denylist waited out its timeout on a refused connection: {denylist_timeouts:#?}"
    );
}

/// A port of 127.0.0.1 nothing listens on: connections to it are refused at once.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The start-up error for a Redis that refuses connections said "Connection refused (os
/// error 111); check the URL" and nothing of which server: now it names its `host:port`, as
/// the stores' logs do, never the URL's password, and stays a refusal for a caller to tell.
#[tokio::test]
async fn start_up_against_a_refusing_redis_names_its_address_never_the_password() {
    let port = closed_port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}/");
    let quota = Quota::per_day(NonZeroU32::new(1).unwrap());
    let errors: [(&str, Box<dyn std::error::Error>); 3] = [
        (
            "limiter",
            Box::new(
                RedisLimiter::builder(&url)
                    .policy(Policy::global("g", quota), FailureMode::FailClosed)
                    .timeout(TIMEOUT)
                    .connect()
                    .await
                    .unwrap_err(),
            ),
        ),
        (
            "denylist",
            Box::new(
                RedisDenylist::builder(&url)
                    .timeout(TIMEOUT)
                    .connect()
                    .await
                    .unwrap_err(),
            ),
        ),
        (
            "login throttle",
            Box::new(
                RedisLoginThrottle::builder(&url, b"a test hash key of 32 bytes or more")
                    .timeout(TIMEOUT)
                    .connect()
                    .await
                    .unwrap_err(),
            ),
        ),
    ];
    for (store, err) in errors {
        let said = err.to_string();
        assert!(said.contains("cannot reach Redis"), "{store}: {said}");
        assert!(
            said.contains(&format!("connecting to 127.0.0.1:{port}: ")),
            "{store}: the server's address is not named: {said}"
        );
        assert!(said.contains("check the URL"), "{store}: {said}");
        assert!(!said.contains("hunter2"), "{store}: {said}");
        let source = err
            .source()
            .and_then(|s| s.downcast_ref::<redis::RedisError>())
            .unwrap_or_else(|| panic!("{store}: no Redis error as the source: {said}"));
        assert!(source.is_connection_refusal(), "{store}: {source}");
    }
}
