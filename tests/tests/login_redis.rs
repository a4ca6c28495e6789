//! The login throttle's Redis store against a real `redis-server` (started by each test on a
//! free loopback port): two instances sharing one count, lockouts seen by both, counts that
//! expire, no account name in clear, the same decisions as the in-memory throttle, and Redis
//! stopped (refused with a 503, or counted in memory when allowed) and started again.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use axum::response::IntoResponse;
use hardening_core::ratelimit::{
    LoginRefused, LoginThrottle, RedisLoginAttempt, RedisLoginError, RedisLoginThrottle,
    RedisLoginThrottleBuilder,
};
use hardening_tests::eventually;
use hardening_tests::redis_server::RedisServer;

/// The hash key every instance of the tests shares.
const KEY: &[u8] = b"a test hash key of 32 bytes or more";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An instance's builder: a store timeout of 200 ms, a breaker opening after 3 failures for
/// 300 ms.
fn builder(server: &RedisServer) -> RedisLoginThrottleBuilder {
    RedisLoginThrottle::builder(&server.url(), KEY)
        .timeout(Duration::from_millis(200))
        .circuit_breaker(3, Duration::from_millis(300))
}

/// An instance counting by `rules`.
async fn instance(server: &RedisServer, rules: LoginThrottle) -> RedisLoginThrottle {
    builder(server).rules(rules).connect().await.unwrap()
}

/// Whether `t` lets an attempt on `account` from `client` through (then failed).
async fn let_through_and_failed(t: &RedisLoginThrottle, account: &str, client: IpAddr) -> bool {
    t.attempt(account, client)
        .await
        .map(RedisLoginAttempt::failed)
        .is_ok()
}

/// Every key in `server`, with its TTL in ms (-1: none).
async fn keys_and_ttls(server: &RedisServer) -> Vec<(String, i64)> {
    let mut keys: Vec<String> = server.command(&["KEYS", "*"]).await;
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let ttl: i64 = server.command(&["PTTL", &key]).await;
        out.push((key, ttl));
    }
    out
}

/// The keys that count failures (not the hash key's fingerprint, which never expires).
async fn counts(server: &RedisServer) -> Vec<(String, i64)> {
    keys_and_ttls(server)
        .await
        .into_iter()
        .filter(|(key, _)| !key.ends_with(":hash-key"))
        .collect()
}

/// Two instances sharing one Redis give one client the free attempts on an account once:
/// with 5 free, 6 attempts are let through in all, however they are spread (each instance
/// counting its own, as `LoginThrottle` does, let through 12), and concurrent attempts on
/// both at once cannot all pass before the first is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server"]
async fn two_instances_sharing_redis_give_the_free_attempts_once() {
    let server = RedisServer::start();
    let a = instance(&server, LoginThrottle::new()).await;
    let b = instance(&server, LoginThrottle::new()).await;
    let guesser = ip("203.0.113.66");
    let mut let_through = 0;
    for n in 0..20 {
        let instance = if n % 2 == 0 { &a } else { &b };
        if let Ok(attempt) = instance.attempt("alice@example.com", guesser).await {
            let_through += 1;
            attempt.failed();
        }
    }
    assert_eq!(let_through, 6, "5 free + the one that locks, across both");
    for instance in [&a, &b] {
        let refused = instance.attempt("alice@example.com", guesser).await;
        assert!(
            matches!(refused, Err(LoginRefused::LockedOut(_))),
            "{refused:?}"
        );
        // Only that client is locked out of that account.
        instance
            .attempt("alice@example.com", ip("198.51.100.7"))
            .await
            .unwrap()
            .failed();
    }

    // 24 attempts at once, half on each instance: 6 let through.
    let attempts = (0..24).map(|n| {
        let instance = if n % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            let_through_and_failed(&instance, "bob@example.com", ip("192.0.2.77")).await
        })
    });
    let mut let_through = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        let_through += usize::from(attempt.await.unwrap());
    }
    assert_eq!(let_through, 6, "concurrent attempts on two instances");
}

/// A lockout counted through one instance refuses on the other, and a success on either
/// clears the account's counts for both.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_lockout_is_seen_by_every_instance_and_a_success_clears_it_for_all() {
    let server = RedisServer::start();
    let rules = || {
        LoginThrottle::new()
            .free_attempts(100, 100)
            .free_attempts_account_wide(2)
            .lockout(Duration::from_millis(500), Duration::from_secs(60))
            .unwrap()
    };
    let a = instance(&server, rules()).await;
    let b = instance(&server, rules()).await;
    // Three failures from three clients, through both: past the account-wide free two.
    for (n, instance) in [&a, &b, &a].into_iter().enumerate() {
        let client = IpAddr::from([203, 0, 113, u8::try_from(n).unwrap()]);
        instance.attempt("alice", client).await.unwrap().failed();
    }
    let owner = ip("198.51.100.7");
    for instance in [&a, &b] {
        match instance.attempt("alice", owner).await {
            Err(LoginRefused::LockedOut(wait)) => {
                assert!(
                    !wait.is_zero() && wait <= Duration::from_millis(500),
                    "{wait:?}"
                );
            }
            other => panic!("not locked for every client: {other:?}"),
        }
        assert!(instance.attempt("bob", owner).await.is_ok());
    }
    // Once the lockout is over, the owner logs in through `b`: the count is cleared for `a`.
    assert!(
        eventually(async || {
            match b.attempt("alice", owner).await {
                Ok(attempt) => {
                    attempt.succeeded().await;
                    true
                }
                Err(_) => false,
            }
        })
        .await
    );
    for n in 0..2u8 {
        a.attempt("alice", IpAddr::from([192, 0, 2, n]))
            .await
            .unwrap()
            .failed();
    }
    assert!(
        a.attempt("alice", ip("192.0.2.9")).await.is_ok(),
        "the success reset the account-wide count: two failures since are within its free two"
    );
}

/// Every count carries a TTL: an hour after its last failure, or the end of its lockout if
/// later, so that nothing grows without bound; an attempt taken back whole leaves nothing.
/// Only the hash key's fingerprint, one key, has none.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn every_count_expires_on_its_own() {
    let server = RedisServer::start();
    let hour = 3_600_000;
    let t = instance(&server, LoginThrottle::new()).await;
    let fresh = t.attempt("carol", ip("192.0.2.1")).await.unwrap();
    assert_eq!(
        counts(&server).await.len(),
        3,
        "the pair, the account, the client"
    );
    fresh.not_checked().await;
    assert_eq!(
        counts(&server).await,
        [],
        "an attempt taken back whole leaves nothing"
    );

    for n in 0..4u8 {
        t.attempt("alice", IpAddr::from([192, 0, 2, n]))
            .await
            .unwrap()
            .failed();
    }
    let counted = counts(&server).await;
    assert_eq!(counted.len(), 9, "{counted:?}");
    for (key, ttl) in &counted {
        assert!(*ttl > hour - 60_000 && *ttl <= hour, "{key}: {ttl} ms");
    }
    let all = keys_and_ttls(&server).await;
    let fingerprint: Vec<_> = all
        .iter()
        .filter(|(k, _)| k.ends_with(":hash-key"))
        .collect();
    assert_eq!(
        fingerprint,
        [&("{hardening:login}:hash-key".to_owned(), -1)]
    );

    // A lockout longer than the hour keeps its count until it ends.
    let long = instance(
        &server,
        LoginThrottle::new()
            .free_attempts(0, 100)
            .lockout(Duration::from_secs(2 * 3600), Duration::from_secs(2 * 3600))
            .unwrap(),
    )
    .await;
    server.command::<()>(&["FLUSHALL"]).await;
    long.attempt("dave", ip("192.0.2.9"))
        .await
        .unwrap()
        .failed();
    let pair = counts(&server)
        .await
        .into_iter()
        .find(|(key, _)| key.contains(":pair:"))
        .unwrap();
    assert!(pair.1 > 2 * hour - 60_000 && pair.1 <= 2 * hour, "{pair:?}");
}

/// No account name, in any spelling, is stored in Redis: not in a key, not in a value. The
/// accounts' keys are keyed hashes; the hash key is not stored either.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn no_account_name_is_stored_in_clear() {
    let server = RedisServer::start();
    let t = instance(&server, LoginThrottle::new()).await;
    for (name, client) in [
        ("Alice.Liddell@Wonderland.example", "192.0.2.1"),
        (" alice.liddell@wonderland.example", "2001:db8::1"),
        ("ＡＬＩＣＥ.ＬＩＤＤＥＬＬ@wonderland.example", "192.0.2.2"),
    ] {
        t.attempt(name, ip(client)).await.unwrap().failed();
    }
    let mut stored = Vec::new();
    for (key, _) in keys_and_ttls(&server).await {
        stored.push(key.clone());
        let kind: String = server.command(&["TYPE", &key]).await;
        match kind.as_str() {
            "hash" => {
                let fields: Vec<String> = server.command(&["HGETALL", &key]).await;
                stored.extend(fields);
            }
            "string" => stored.push(server.command(&["GET", &key]).await),
            other => panic!("{key}: a {other}"),
        }
    }
    // The three spellings are one account: one account key.
    assert_eq!(
        stored.iter().filter(|s| s.contains(":account:")).count(),
        1,
        "{stored:?}"
    );
    let text = stored.join("\n").to_lowercase();
    for part in [
        "alice",
        "liddell",
        "wonderland",
        "ａｌｉｃｅ",
        "a test hash key",
    ] {
        assert!(!text.contains(part), "{part} in {stored:?}");
    }
}

/// The Redis store decides as the in-memory throttle does, by the same rules: 400 attempts
/// on eight accounts from six clients, each ending as a failure, a success or
/// not checked, some left in flight while others are made (so that a take-back finds its
/// count charged again since), are let through or refused alike, with lockouts alike.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn the_redis_store_decides_as_the_in_memory_throttle() {
    let server = RedisServer::start();
    let rules = || {
        LoginThrottle::new()
            .free_attempts(3, 12)
            .free_attempts_account_wide(6)
            .lockout(Duration::from_secs(600), Duration::from_secs(3600))
            .unwrap()
    };
    let memory = rules();
    let redis = instance(&server, rules()).await;
    let mut rng = fastrand::Rng::with_seed(69);
    let accounts = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    ];
    let clients = [
        ip("192.0.2.1"),
        ip("192.0.2.2"),
        ip("192.0.2.3"),
        ip("192.0.2.4"),
        ip("2001:db8::1"),
        ip("2001:db8:0:1::1"),
    ];
    let mut in_flight = VecDeque::new();
    let (mut let_through, mut refused) = (0, 0);
    for step in 0..400 {
        let account = accounts[rng.usize(..accounts.len())];
        let client = clients[rng.usize(..clients.len())];
        let in_memory = memory.attempt(account, client);
        let in_redis = redis.attempt(account, client).await;
        match (in_memory, in_redis) {
            (Ok(m), Ok(r)) => {
                let_through += 1;
                let ending = rng.u8(..10);
                in_flight.push_back((m, r, ending));
                // Up to two left in flight: each ends after later attempts were made.
                if in_flight.len() > rng.usize(..3) {
                    let (m, r, ending) = in_flight.pop_front().unwrap();
                    match ending {
                        0..=6 => {
                            m.failed();
                            r.failed();
                        }
                        7 | 8 => {
                            m.succeeded();
                            r.succeeded().await;
                        }
                        _ => {
                            m.not_checked();
                            r.not_checked().await;
                        }
                    }
                }
            }
            (Err(m), Err(LoginRefused::LockedOut(r))) => {
                refused += 1;
                assert!(
                    m.abs_diff(r) < Duration::from_secs(10),
                    "step {step}: locked out for {m:?} in memory, {r:?} in Redis"
                );
            }
            (m, r) => panic!(
                "step {step}, {account} from {client}: {:?} in memory, {r:?} in Redis",
                m.map(|_| ())
            ),
        }
    }
    for (m, r, _) in in_flight {
        m.failed();
        r.failed();
    }
    assert!(
        let_through > 50 && refused > 50,
        "{let_through} let through, {refused} refused"
    );
}

/// Two attempts in flight on one account from one client, the second charged past the free
/// ones (locking all three counts): the one not checked takes back only its own share of
/// each, back within the free ones and so unlocked; the other's stays.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn an_attempt_not_checked_takes_back_only_its_share_when_others_were_charged_meanwhile() {
    let server = RedisServer::start();
    let t = instance(
        &server,
        LoginThrottle::new()
            .free_attempts(1, 1)
            .free_attempts_account_wide(1),
    )
    .await;
    let client = ip("192.0.2.4");
    let first = t.attempt("alice", client).await.unwrap();
    let second = t.attempt("alice", client).await.unwrap();
    assert!(
        matches!(
            t.attempt("alice", client).await,
            Err(LoginRefused::LockedOut(_))
        ),
        "two charges lock"
    );
    first.not_checked().await;
    let counted = counts(&server).await;
    assert_eq!(counted.len(), 3);
    for (key, _) in &counted {
        let failures: i64 = server.command(&["HGET", key, "f"]).await;
        assert_eq!(failures, 1, "{key}: the second attempt's charge stays");
    }
    let third = t.attempt("alice", client).await;
    assert!(third.is_ok(), "back within the free one: {third:?}");
    second.failed();
}

/// A count idle for an hour starts again from zero at its next failure, as in memory, even
/// if Redis still holds it.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_count_idle_for_an_hour_starts_again() {
    let server = RedisServer::start();
    let t = instance(&server, LoginThrottle::new()).await;
    let client = ip("192.0.2.6");
    t.attempt("alice", client).await.unwrap().failed();
    // Age the three counts: five failures each, the last an hour and a second ago (the next
    // failure would lock, were they not forgotten).
    let (secs, _): (i64, i64) = {
        let time: Vec<i64> = server.command(&["TIME"]).await;
        (time[0], time[1])
    };
    let long_ago = ((secs - 3601) * 1000).to_string();
    for (key, _) in counts(&server).await {
        let () = server
            .command(&["HSET", &key, "f", "5", "l", &long_ago, "t", &long_ago])
            .await;
    }
    t.attempt("alice", client).await.unwrap().failed();
    for (key, _) in counts(&server).await {
        let failures: i64 = server.command(&["HGET", &key, "f"]).await;
        assert_eq!(failures, 1, "{key}: counted afresh");
    }
    assert!(t.attempt("alice", client).await.is_ok());
}

/// Checks that `attempt` was refused as in an outage: a 503 problem with `Retry-After: 1`
/// (the breaker's cool-down of 300 ms, at least a second); `what` says which, if not.
fn assert_unavailable(attempt: Result<RedisLoginAttempt, LoginRefused>, what: &str) {
    match attempt {
        Err(refused @ LoginRefused::Unavailable(retry_after)) => {
            assert_eq!(retry_after, Duration::from_secs(1), "{what}");
            let response = refused.into_response();
            assert_eq!(response.status(), 503, "{what}");
            assert_eq!(response.headers()["retry-after"], "1", "{what}");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{what}"
            );
        }
        other => panic!("{what}: {other:?}"),
    }
}

/// Redis stopped: a login is refused with a 503 problem saying when to retry (the breaker's
/// cool-down, at least a second), never let through uncounted; the breaker opens, and the
/// outage is logged once, naming the server's address. Redis started again (empty): logins
/// are counted in Redis again, shared by both instances, and that is logged once too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server"]
async fn redis_stopped_refuses_logins_with_a_503_and_restarted_counts_them_again() {
    let (captured, _guard) = hardening_tests::Captured::json_logs(tracing::Level::INFO);
    let mut server = RedisServer::start();
    let url = server.url();
    let a = instance(&server, LoginThrottle::new()).await;
    let b = instance(&server, LoginThrottle::new()).await;
    let client = ip("192.0.2.5");
    a.attempt("alice", client).await.unwrap().failed();
    server.kill();
    for _ in 0..3 {
        assert_unavailable(a.attempt("alice", client).await, "Redis is down");
    }
    assert!(a.breaker_open());
    // While it is open: refused at once, not after a timeout each.
    assert!(matches!(
        a.attempt("bob", client).await,
        Err(LoginRefused::Unavailable(_))
    ));
    let outage: Vec<_> = captured
        .errors()
        .into_iter()
        .filter(|e| e["fields"]["store"] == "login throttling")
        .collect();
    assert_eq!(outage.len(), 1, "{}", captured.text());
    let message = outage[0]["fields"]["message"].as_str().unwrap();
    assert!(message.contains("refused with a 503"), "{message}");
    assert_eq!(
        url,
        format!(
            "redis://{}/",
            outage[0]["fields"]["redis"].as_str().unwrap()
        )
    );

    server.restart();
    assert!(
        eventually(async || let_through_and_failed(&a, "alice", client).await).await,
        "counted in Redis again once it is back"
    );
    // The restarted Redis is empty: that was the first failure; four more through `b` are
    // free, the fifth locks, and `a` sees it. (`b`'s first finds its connection closed by
    // the old server; it may be refused while `b` connects again.)
    assert!(eventually(async || let_through_and_failed(&b, "alice", client).await).await);
    for _ in 0..4 {
        b.attempt("alice", client).await.unwrap().failed();
    }
    assert!(matches!(
        a.attempt("alice", client).await,
        Err(LoginRefused::LockedOut(_))
    ));
    let back: Vec<_> = captured
        .json_lines()
        .into_iter()
        .filter(|v| v["level"] == "INFO" && v["fields"]["store"] == "login throttling")
        .collect();
    assert_eq!(back.len(), 1, "{}", captured.text());
    assert!(!captured.text().contains("redis://"), "{}", captured.text());
}

/// `dangerous_fall_back_to_memory()`: while Redis is away, each instance counts in its own
/// memory, by the same rules, instead of refusing; logged as a loosening at start-up, and
/// with the outage.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn the_fallback_counts_in_memory_while_redis_is_away() {
    let (captured, _guard) = hardening_tests::Captured::json_logs(tracing::Level::INFO);
    let mut server = RedisServer::start();
    let t = builder(&server)
        .dangerous_fall_back_to_memory()
        .connect()
        .await
        .unwrap();
    assert_eq!(captured.loosenings().len(), 1, "{}", captured.text());
    assert_eq!(
        captured.loosenings()[0].0,
        "RedisLoginThrottleBuilder::dangerous_fall_back_to_memory"
    );
    server.kill();
    let client = ip("192.0.2.8");
    for n in 0..6 {
        let attempt = t.attempt("alice", client).await;
        let attempt = attempt.unwrap_or_else(|e| panic!("attempt {n}: {e:?}"));
        attempt.failed();
    }
    assert!(matches!(
        t.attempt("alice", client).await,
        Err(LoginRefused::LockedOut(_))
    ));
    // Another client still logs in, and its success clears the account's counts in memory.
    t.attempt("alice", ip("198.51.100.1"))
        .await
        .unwrap()
        .succeeded()
        .await;
    let outage: Vec<_> = captured
        .errors()
        .into_iter()
        .filter(|e| e["fields"]["store"] == "login throttling")
        .collect();
    assert_eq!(outage.len(), 1, "{}", captured.text());
    assert!(
        outage[0]["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("in its own memory"),
        "{}",
        outage[0]
    );
}

/// A charge Redis makes after the attempt gave up (Redis paused past the store's timeout:
/// the login was refused with a 503) is taken back when the late reply comes: a login
/// refused for want of Redis is not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server"]
async fn a_charge_redis_makes_after_the_timeout_is_taken_back() {
    let server = RedisServer::start();
    let t = builder(&server)
        .late_reply(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let () = server.command(&["CLIENT", "PAUSE", "700", "ALL"]).await;
    assert!(matches!(
        t.attempt("alice", ip("192.0.2.3")).await,
        Err(LoginRefused::Unavailable(_))
    ));
    until_answering(&server).await;
    assert!(
        eventually(async || {
            let left: Vec<String> = server.command(&["KEYS", "*:ip:*"]).await;
            left.is_empty()
        })
        .await,
        "the late charge stayed"
    );
    // Redis did run it (the pause held it), and the take-back: two scripts.
    let stats: String = server.command(&["INFO", "commandstats"]).await;
    let scripts = stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|calls| calls.split(',').next());
    assert_eq!(scripts, Some("2"), "{stats}");
}

/// Waits (bounded: 100 tries) until `server` answers again, its pause over.
async fn until_answering(server: &RedisServer) {
    let client = redis::Client::open(server.url()).unwrap();
    for _ in 0..100 {
        if let Ok(mut conn) = client.get_multiplexed_async_connection().await
            && redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("Redis did not answer again after its pause");
}

/// Start-up refuses, saying what to change: an instance whose hash key is not the one the
/// others use under the same prefix (each would count under names of its own), a Redis
/// that does not answer, and one that evicts keys (unless `dangerous_allow_eviction`).
#[tokio::test]
#[ignore = "needs redis-server"]
async fn start_up_refuses_another_hash_key_an_unreachable_or_evicting_redis() {
    let server = RedisServer::start();
    let _first = instance(&server, LoginThrottle::new()).await;
    let other = RedisLoginThrottle::builder(&server.url(), b"another hash key, also 32 bytes long")
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(other, RedisLoginError::HashKeyMismatch(ref p) if p == "hardening:login"),
        "{other}"
    );
    assert!(other.to_string().contains("same key"), "{other}");
    // Under a prefix of its own, it starts (a new key, counts afresh).
    RedisLoginThrottle::builder(&server.url(), b"another hash key, also 32 bytes long")
        .prefix("hardening:login:v2")
        .connect()
        .await
        .unwrap();

    let mut gone = RedisServer::start();
    let url = gone.url();
    gone.kill();
    let unreachable = RedisLoginThrottle::builder(&url, KEY)
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(unreachable, RedisLoginError::Unreachable(_)),
        "{unreachable}"
    );

    let evicting = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let refused = builder(&evicting).connect().await.unwrap_err();
    assert!(
        matches!(refused, RedisLoginError::EvictingPolicy(ref p) if p == "allkeys-lru"),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("maxmemory-policy noeviction"),
        "{refused}"
    );
    assert_eq!(keys_and_ttls(&evicting).await, [], "nothing written to it");
    builder(&evicting)
        .dangerous_allow_eviction()
        .connect()
        .await
        .unwrap();
}

/// Another instance's hash key, as long as [`KEY`] may be.
const OTHER_KEY: &[u8] = b"another hash key, also 32 bytes long";

/// An instance's builder with another hash key than [`KEY`] (timeouts as [`builder`]'s).
fn other_key_builder(server: &RedisServer) -> RedisLoginThrottleBuilder {
    RedisLoginThrottle::builder(&server.url(), OTHER_KEY)
        .timeout(Duration::from_millis(200))
        .circuit_breaker(3, Duration::from_millis(300))
}

/// A Redis restart without persistence wiped the hash key's fingerprint, and only start-up
/// wrote it: once Redis was back, an instance with another key started cleanly and counted
/// under names of its own (each instance a budget of guesses). Now each attempt writes the
/// fingerprint when it is missing, in its own script: once an instance has counted an
/// attempt after the restart, another key is refused at start-up again, and the first
/// instance goes on counting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server"]
async fn after_a_redis_restart_the_first_attempt_writes_the_fingerprint_again() {
    let mut server = RedisServer::start();
    let a = instance(&server, LoginThrottle::new()).await;
    let client = ip("192.0.2.40");
    a.attempt("alice", client).await.unwrap().failed();
    server.restart();
    // A's first attempt may find its connection closed by the old server (a 503, uncounted).
    assert!(eventually(async || let_through_and_failed(&a, "alice", client).await).await);

    let b = other_key_builder(&server).connect().await;
    assert!(
        matches!(b, Err(RedisLoginError::HashKeyMismatch(ref p)) if p == "hardening:login"),
        "an instance with another key started after the restart: {b:?}"
    );
    let refused = b.unwrap_err().to_string();
    assert!(refused.contains("{hardening:login}:hash-key"), "{refused}");
    // A keeps counting: the restarted Redis forgot the first failure, so 5 free in all (the
    // one above included), then the one that locks.
    let mut let_through = 1;
    for _ in 0..10 {
        let_through += usize::from(let_through_and_failed(&a, "alice", client).await);
    }
    assert_eq!(let_through, 6);
}

/// The other order: after the restart, the instance with another key (B) starts before the
/// one that was running (A) makes an attempt. B's fingerprint is the one in Redis then (the
/// first to write it after Redis lost it wins: nothing in Redis tells which key is right), so
/// A must count nothing under its own names: each of its attempts is refused as an outage
/// (503, `Retry-After`), Redis untouched, and A logs one error naming the fix. Before, A
/// counted on under names of its own, beside B: two budgets of guesses. An instance that
/// falls back to memory while Redis is away (C) refuses too: counting in its memory would
/// give it a budget of its own for as long as the keys differ, not just for an outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server"]
async fn after_a_redis_restart_an_instance_whose_key_is_not_the_stored_one_counts_nothing() {
    let (captured, _guard) = hardening_tests::Captured::json_logs(tracing::Level::INFO);
    let mut server = RedisServer::start();
    let url = server.url();
    let a = instance(&server, LoginThrottle::new()).await;
    let c = builder(&server)
        .dangerous_fall_back_to_memory()
        .connect()
        .await
        .unwrap();
    let client = ip("192.0.2.41");
    a.attempt("alice", client).await.unwrap().failed();
    server.restart();
    let b = other_key_builder(&server).connect().await.unwrap();
    assert!(let_through_and_failed(&b, "alice", client).await);
    let counted = counts(&server).await;

    for n in 0..6 {
        let what = format!("attempt {n} of the instance whose key is not the stored one");
        assert_unavailable(a.attempt("alice", client).await, &what);
    }
    // C's first attempt may find its connection closed by the old server: counted in memory.
    assert!(
        eventually(async || matches!(
            c.attempt("alice", client).await,
            Err(LoginRefused::Unavailable(_))
        ))
        .await
    );
    for _ in 0..3 {
        assert_unavailable(
            c.attempt("alice", client).await,
            "C, falling back to memory",
        );
    }
    let keys = |counts: Vec<(String, i64)>| counts.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(counts(&server).await),
        keys(counted),
        "A and C counted nothing"
    );
    assert!(!a.breaker_open(), "Redis answers: no outage of Redis");
    // B goes on counting.
    assert!(let_through_and_failed(&b, "alice", client).await);

    let errors: Vec<_> = captured
        .errors()
        .into_iter()
        .filter(|e| e["fields"]["store"] == "login throttling")
        .collect();
    assert_eq!(
        errors.len(),
        2,
        "one error per instance: {}",
        captured.text()
    );
    for error in errors {
        let message = error["fields"]["message"].as_str().unwrap();
        for said in [
            "another instance uses a different hash key",
            "give every instance the same LOGIN_THROTTLE key",
            "{hardening:login}:hash-key",
            "503",
        ] {
            assert!(message.contains(said), "{said}: {message}");
        }
        assert_eq!(
            url,
            format!("redis://{}/", error["fields"]["redis"].as_str().unwrap())
        );
    }
    assert!(!captured.text().contains("redis://"), "{}", captured.text());
}
