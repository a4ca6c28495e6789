//! The readiness check of the Redis stores: a `PING` over the store's own connection, for a
//! service's `/readyz` (`hardening_core::Health::check`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use super::RedisConnection;

/// A run of a Redis store's readiness check (see [`redis_readiness_check`]).
pub type RedisReadiness = Pin<Box<dyn Future<Output = Result<(), RedisNotReady>> + Send>>;

/// Why a Redis store is not ready: its Redis did not answer a `PING` within the store's
/// timeout, or failed it (refused, reset, an error). Says which store and the server's
/// address, never the URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
#[error("the Redis for {store} at {addr} {why}")]
pub struct RedisNotReady {
    store: &'static str,
    addr: String,
    why: Why,
}

/// How the `PING` failed.
#[derive(Debug)]
enum Why {
    /// No answer within the store's timeout.
    TimedOut(std::time::Duration),
    /// An error: the connection's (refused, reset) or Redis's.
    Failed(redis::RedisError),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut(timeout) => write!(f, "did not answer PING within {timeout:?}"),
            Self::Failed(e) => write!(f, "failed PING: {e}"),
        }
    }
}

impl RedisConnection {
    /// Sends `PING` on this connection (once more on a new one when it turns out dead, as a
    /// command that changes nothing), within the store's timeout: whether the store can be
    /// served now. A timeout counts towards replacing a connection that stays silent (see
    /// [`timed_out`](Self::timed_out)), as a store's own commands do.
    ///
    /// # Errors
    ///
    /// [`RedisNotReady`] when Redis did not answer in time or failed the `PING`.
    pub async fn ping(&self) -> Result<(), RedisNotReady> {
        let pinging = self.send_idempotent(|mut conn| async move {
            redis::cmd("PING").query_async::<()>(&mut conn).await
        });
        let why = match tokio::time::timeout(self.timeout, pinging).await {
            Ok(Ok(())) => {
                self.answered();
                return Ok(());
            }
            // The connection's own response timeout (a store may set the same) ended it.
            Ok(Err(e)) if e.is_timeout() => Why::TimedOut(self.timeout),
            Ok(Err(e)) => {
                self.answered();
                Why::Failed(e)
            }
            Err(_) => Why::TimedOut(self.timeout),
        };
        if matches!(why, Why::TimedOut(_)) {
            self.timed_out();
        }
        Err(RedisNotReady {
            store: self.risk.store,
            addr: self.client.get_connection_info().addr().to_string(),
            why,
        })
    }
}

/// A readiness check for a Redis store, to register with `hardening_core::Health::check`:
/// each run [pings](RedisConnection::ping) over the connection `connection` finds in `store`
/// (a clone of it: the check keeps the store, and its connection, alive). The stores'
/// `readiness_check` methods make theirs with it.
///
/// ```no_run
/// use std::sync::Arc;
/// use hardening_errors::{RedisConnection, redis_readiness_check};
///
/// # fn check(connection: Arc<RedisConnection>) {
/// let check = redis_readiness_check(connection, |c| &**c);
/// let _run = check(); // a future: Ok(()) once Redis answers PING
/// # }
/// ```
pub fn redis_readiness_check<S>(
    store: S,
    connection: fn(&S) -> &RedisConnection,
) -> impl Fn() -> RedisReadiness + Clone + Send + Sync + 'static
where
    S: Clone + Send + Sync + 'static,
{
    move || {
        let store = store.clone();
        Box::pin(async move { connection(&store).ping().await })
    }
}
