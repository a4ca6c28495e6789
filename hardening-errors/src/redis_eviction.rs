//! The start-up check of a Redis's `maxmemory-policy` (feature `redis`), for the stores that
//! must not lose keys to eviction: `hardening-auth`'s denylist and `hardening-ratelimit`'s
//! limiter.

use std::collections::HashMap;

/// What a store keeps in Redis and what eviction costs it, for the start-up warnings.
#[derive(Debug, Clone, Copy)]
pub struct EvictionRisk {
    /// What the Redis is for, after "the Redis for": `"the jti denylist"`.
    pub store: &'static str,
    /// What eviction drops, and what follows: `"revocations under memory pressure, and a
    /// revoked token is then valid again"`.
    pub loss: &'static str,
    /// The builder setting that accepts an evicting policy, logged when it does.
    pub loosening: &'static str,
}

/// What start-up does about the server's `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EvictionCheck {
    /// `noeviction`: keys stay until they expire.
    Kept,
    /// An evicting policy: start-up fails.
    Refused,
    /// An evicting policy, accepted by the store's loosening: logged as loosened.
    Loosened,
    /// Not known (`CONFIG GET` refused, renamed or unanswered): logged, start-up goes on.
    Unchecked,
}

/// The decision for `policy` (`None`: the server did not say).
fn eviction_check(policy: Option<&str>, allow_eviction: bool) -> EvictionCheck {
    match policy {
        None => EvictionCheck::Unchecked,
        Some(p) if p.trim().eq_ignore_ascii_case("noeviction") => EvictionCheck::Kept,
        Some(_) if allow_eviction => EvictionCheck::Loosened,
        Some(_) => EvictionCheck::Refused,
    }
}

/// The server's setting `name` (`CONFIG GET name`), or why it is not known. A lost
/// connection is an error: the server did not refuse the question, it is not there.
pub(crate) async fn config_get(
    conn: &mut impl redis::aio::ConnectionLike,
    name: &str,
) -> redis::RedisResult<Result<String, String>> {
    let reply = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async::<HashMap<String, String>>(conn)
        .await;
    match reply {
        Ok(mut found) => Ok(found
            .remove(name)
            .ok_or_else(|| format!("CONFIG GET {name} answered no value"))),
        Err(e) if e.is_io_error() || e.is_timeout() => Err(e),
        // Refused (ACL), renamed or disabled (managed services), or an odd answer.
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// The server's `maxmemory-policy`, or why it is not known (see [`config_get`]).
async fn maxmemory_policy(
    conn: &mut impl redis::aio::ConnectionLike,
) -> redis::RedisResult<Result<String, String>> {
    config_get(conn, "maxmemory-policy").await
}

/// Asks the server's `maxmemory-policy` at start-up. `Ok(Err(policy))`: it evicts (anything
/// but `noeviction`), and `allow_eviction` is off: the store must refuse to start, naming
/// the policy. An evicting policy accepted by `allow_eviction` is logged as loosened, and a
/// server that does not let us ask (`CONFIG` refused or renamed, as on many managed
/// services) is logged, and start-up goes on. `Err`: the connection failed.
pub async fn check_eviction(
    conn: &mut impl redis::aio::ConnectionLike,
    allow_eviction: bool,
    risk: &EvictionRisk,
) -> redis::RedisResult<Result<(), String>> {
    let policy = maxmemory_policy(conn).await?;
    match eviction_check(policy.as_deref().ok(), allow_eviction) {
        EvictionCheck::Kept => {}
        EvictionCheck::Refused => return Ok(Err(policy.unwrap_or_default())),
        EvictionCheck::Loosened => tracing::warn!(
            target: "hardening",
            setting = risk.loosening,
            maxmemory_policy = policy.as_deref().unwrap_or_default(),
            "hardening loosened: the Redis for {} may evict {}",
            risk.store,
            risk.loss
        ),
        EvictionCheck::Unchecked => tracing::warn!(
            target: "hardening",
            error = policy.as_ref().err().map_or("", String::as_str),
            "cannot check the eviction policy of the Redis for {}: unless its maxmemory-policy \
             is noeviction, Redis may evict {}",
            risk.store,
            risk.loss
        ),
    }
    Ok(Ok(()))
}

/// Asks the `maxmemory-policy` again after start-up: on a connection that replaced the
/// store's first (it may reach another server behind a proxy), and now and then on the
/// connection of the moment (the policy may have been changed since start-up), for a store
/// that does not allow eviction. `Some(policy)`: it evicts; to be logged with
/// [`log_evicting`]. Anything else is traced at debug, naming `addr` (host:port, never the
/// URL).
pub(crate) async fn recheck_eviction(
    conn: &mut impl redis::aio::ConnectionLike,
    risk: &EvictionRisk,
    addr: &str,
) -> Option<String> {
    let policy = match maxmemory_policy(conn).await {
        Ok(policy) => policy,
        Err(e) => {
            tracing::debug!(
                target: "hardening",
                store = risk.store,
                redis = addr,
                error = %e,
                "cannot check the eviction policy of the Redis again"
            );
            return None;
        }
    };
    match (eviction_check(policy.as_deref().ok(), false), policy) {
        (EvictionCheck::Refused, Ok(policy)) => Some(policy),
        (check, policy) => {
            tracing::debug!(
                target: "hardening",
                store = risk.store,
                redis = addr,
                check = ?check,
                maxmemory_policy = policy.as_deref().unwrap_or_default(),
                "the eviction policy of the Redis checked again"
            );
            None
        }
    }
}

/// The server's count of keys evicted since it started (`evicted_keys`, of `INFO`'s stats),
/// which a Redis that hides its `CONFIG` (as many managed services do) still gives, with its
/// `run_id` (of `INFO`'s server section; empty when not given), which tells one server, and
/// one run of it, from another; `None` when it will not say.
pub(crate) async fn evicted_keys(
    conn: &mut impl redis::aio::ConnectionLike,
) -> Option<(String, u64)> {
    let info: String = redis::cmd("INFO").query_async(conn).await.ok()?;
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
    };
    let evicted = field("evicted_keys:")?.parse().ok()?;
    Some((field("run_id:").unwrap_or_default().to_owned(), evicted))
}

/// Logs, as an error, that the Redis at `addr` (host:port, never the URL) evicted `evicted`
/// keys since the last check, and what to change: whatever its policy says (or hides), keys
/// are going. `unlogged`: the checks that found evictions since the last such error.
pub(crate) fn log_evicted(risk: &EvictionRisk, addr: &str, evicted: u64, unlogged: u64) {
    tracing::error!(
        target: "hardening",
        store = risk.store,
        redis = addr,
        evicted_keys = evicted,
        evicted_unlogged = unlogged,
        "the Redis for {} at {addr} evicted {evicted} keys since the last check (INFO stats, \
         evicted_keys): it may evict {}; set maxmemory-policy noeviction on this Redis, or \
         give it a Redis of its own (requests go on meanwhile; {}() accepts it; logged at \
         most once a minute, `evicted_unlogged` counting the checks that found evictions \
         since the last time)",
        risk.store,
        risk.loss,
        risk.loosening
    );
}

/// Logs, as an error, the evicting `policy` [`recheck_eviction`] found on the Redis at `addr`
/// (host:port, never the URL), and what to change: requests go on, as refusing them would
/// turn a configuration mistake into an outage. `unlogged`: the findings left unlogged since
/// the last such error (logged at most once a minute).
pub(crate) fn log_evicting(risk: &EvictionRisk, addr: &str, policy: &str, unlogged: u64) {
    tracing::error!(
        target: "hardening",
        store = risk.store,
        redis = addr,
        maxmemory_policy = policy,
        evicting_unlogged = unlogged,
        "the Redis for {} at {addr} evicts keys (maxmemory-policy {policy}), found after \
         start-up (on a new connection, which may reach another server behind a proxy, or \
         in the check made every few minutes: the policy was changed): it may evict {}; \
         set maxmemory-policy noeviction on this Redis (requests go on meanwhile; {}() \
         accepts it; logged at most once a minute, `evicting_unlogged` counting the checks \
         found evicting since the last time)",
        risk.store,
        risk.loss,
        risk.loosening
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_noeviction_passes_the_eviction_check() {
        use EvictionCheck::{Kept, Loosened, Refused, Unchecked};
        for allow in [false, true] {
            assert_eq!(eviction_check(Some("noeviction"), allow), Kept);
            assert_eq!(eviction_check(Some("NoEviction"), allow), Kept);
            assert_eq!(eviction_check(None, allow), Unchecked);
        }
        // `allkeys-*` evict anything; `volatile-*` evict keys with an expiry, as revocations
        // (but the few past year 9999) and every rate-limit key have.
        for evicting in [
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "",
            "noeviction-please",
        ] {
            assert_eq!(eviction_check(Some(evicting), false), Refused, "{evicting}");
            assert_eq!(eviction_check(Some(evicting), true), Loosened, "{evicting}");
        }
    }
}
