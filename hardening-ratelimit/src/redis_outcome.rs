//! What this crate's Redis stores (the limiter's and the login throttle's) do alike with how
//! a command ended: tell the connection and the circuit breaker (logging an outage as every
//! Redis store does, [`RedisOutageLog`]), and bound start-up.

use std::future::Future;
use std::time::Duration;

use hardening_errors::{RedisBreaker, RedisConnection, RedisOutageLog};
use redis::RedisResult;

/// Redis answered: tells the connection and the breaker; the end of an outage is logged.
pub(crate) fn answered(conn: &RedisConnection, breaker: &RedisBreaker, outage: &RedisOutageLog) {
    conn.answered();
    outage.answered(breaker);
}

/// Redis did not answer in time or answered an error (`timed_out`: no reply at all): tells
/// the connection and the breaker; the start of an outage is logged.
pub(crate) fn failed(
    conn: &RedisConnection,
    breaker: &RedisBreaker,
    outage: &RedisOutageLog,
    timed_out: bool,
) {
    if timed_out {
        conn.timed_out();
    } else {
        conn.answered();
    }
    outage.failed(breaker);
}

/// Runs a store's start-up steps (loading its scripts, asking the eviction policy) within
/// the store's `timeout`: a Redis that answered the handshake, then stalled, fails start-up
/// as unreachable, in time. (The connection itself waits for replies as long as it lasts.)
///
/// # Errors
/// The steps' error, or a timeout saying what timed out.
pub(crate) async fn start_up_within<T>(
    timeout: Duration,
    steps: impl Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    tokio::time::timeout(timeout, steps)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "timed out loading the scripts or asking the eviction policy (no reply within \
                 the store's timeout, {timeout:?})"
                ),
            )
            .into())
        })
}
