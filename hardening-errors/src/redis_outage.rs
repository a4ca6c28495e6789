//! What the Redis stores log of an outage (feature `redis`): `hardening-ratelimit`'s limiter
//! and login throttle, and `hardening-auth`'s denylist, alike.

use std::fmt;

use crate::RedisBreaker;

/// What a Redis store says in the two lines of an outage, beside the server's address.
#[derive(Debug, Clone, Copy)]
pub struct OutageWords {
    /// The lines' `store` field: what the store keeps (its
    /// [`EvictionRisk::store`](crate::EvictionRisk::store)).
    pub store: &'static str,
    /// How the lines begin: `rate limit`, `login throttle`, `jti denylist`.
    pub name: &'static str,
    /// What fails a command, in the error: `down, erroring, or slower than the store's
    /// timeout`.
    pub failing: &'static str,
    /// Who asks Redis again after each cool-down, in the error: `request`, `attempt`.
    pub asker: &'static str,
    /// What holds again once Redis answers, in the info: `policies are decided in Redis`.
    pub back: &'static str,
}

/// Tells a store's [`RedisBreaker`] how each command ended, and logs the outages it finds:
/// one error when the breaker opens (naming the server's `host:port`, never the URL, which
/// may hold a password; the failures that opened it; what the store does meanwhile; how
/// often it asks again), and one info when Redis answers again. Nothing for the failures
/// before it opens, the failed probes after, or each request refused meanwhile: an outage of
/// any length is two lines per store and process.
///
/// ```
/// use std::time::Duration;
/// use hardening_errors::{OutageWords, RedisBreaker, RedisOutageLog};
///
/// const WORDS: OutageWords = OutageWords {
///     store: "revocations",
///     name: "revocation list",
///     failing: "down, or slower than the store's timeout",
///     asker: "request",
///     back: "tokens are checked in Redis",
/// };
/// let breaker = RedisBreaker::new(2, Duration::from_secs(2), Duration::from_millis(100));
/// let log = RedisOutageLog::new(WORDS, "10.0.0.5:6379", "every token is refused (503)");
/// log.failed(&breaker);
/// log.failed(&breaker); // logged at error: "revocation list: Redis at 10.0.0.5:6379 failed 2 times …"
/// assert!(breaker.is_open());
/// log.failed(&breaker); // a failed probe: not logged again
/// log.answered(&breaker); // logged at info: "… answers again; tokens are checked in Redis"
/// assert!(!breaker.is_open());
/// ```
pub struct RedisOutageLog {
    words: OutageWords,
    /// `host:port`.
    addr: String,
    /// What the store does while Redis is away.
    meanwhile: String,
}

impl fmt::Debug for RedisOutageLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOutageLog")
            .field("store", &self.words.store)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RedisOutageLog {
    /// The outage log of a store of `words`, whose Redis is at `addr` (`host:port`: never
    /// the URL), and which does `meanwhile` while it is away ("every login attempt is refused
    /// with a 503").
    pub fn new(words: OutageWords, addr: impl Into<String>, meanwhile: impl Into<String>) -> Self {
        Self {
            words,
            addr: addr.into(),
            meanwhile: meanwhile.into(),
        }
    }

    /// The server's `host:port`, for the store's other lines.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Redis answered (a value, or an error it answered): closes `breaker`, and logs the
    /// end of an outage, once.
    #[inline]
    pub fn answered(&self, breaker: &RedisBreaker) {
        if breaker.success() {
            self.log_back();
        }
    }

    /// Redis did not answer (or, as the store counts it, failed the command): tells
    /// `breaker`, and logs the start of an outage, once, when this failure opened it.
    #[inline]
    pub fn failed(&self, breaker: &RedisBreaker) {
        if breaker.failure() {
            self.log_outage(breaker);
        }
    }

    #[cold]
    fn log_outage(&self, breaker: &RedisBreaker) {
        let OutageWords {
            store,
            name,
            failing,
            asker,
            ..
        } = self.words;
        let addr = &self.addr;
        let meanwhile = &self.meanwhile;
        let failures = breaker.threshold();
        let cool_down = breaker.cool_down();
        tracing::error!(
            target: "hardening",
            store,
            redis = %addr,
            failures,
            cool_down_ms = u64::try_from(cool_down.as_millis()).unwrap_or(u64::MAX),
            "{name}: Redis at {addr} failed {failures} times in a row ({failing}); until it \
             answers again, {meanwhile}; one {asker} asks it again every {cool_down:?}"
        );
    }

    #[cold]
    fn log_back(&self) {
        let OutageWords {
            store, name, back, ..
        } = self.words;
        let addr = &self.addr;
        tracing::info!(
            target: "hardening",
            store,
            redis = %addr,
            "{name}: Redis at {addr} answers again; {back}"
        );
    }
}
