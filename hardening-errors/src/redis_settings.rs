//! The settings every Redis store's builder takes (feature `redis`): `hardening-auth`'s
//! denylist, and `hardening-ratelimit`'s limiter and login throttle, kept, checked and
//! connected with alike.

use std::fmt;
use std::time::Duration;

use crate::redis_connection::EVICTION_RECHECK_EVERY;
use crate::{EvictionRisk, RedisBreaker, RedisConnection, check_eviction, redact_url};

/// How many failures in a row open a store's breaker, unless its builder says otherwise.
const BREAKER_FAILURES: u32 = 5;

/// How long a store's breaker stays open, unless its builder says otherwise.
const BREAKER_COOL_DOWN: Duration = Duration::from_secs(2);

/// The connection settings of a Redis store's builder: the URL, the prefix of its keys, its
/// timeout, its circuit breaker, whether it accepts an evicting Redis, and how often it asks
/// the eviction policy again. Each builder keeps one, its setters a line each into it, with
/// the documentation that is the store's own; what every store does alike is said here.
///
/// - **Timeout** ([`set_timeout`](Self::set_timeout)): how long one command may wait for
///   Redis; zero is refused by [`connect`](Self::connect) (every command would give up
///   before its reply), before any connection is tried.
/// - **Circuit breaker** ([`set_circuit_breaker`](Self::set_circuit_breaker), default 5
///   failures, 2 s): after that many commands in a row that Redis did not answer, the store
///   stops asking it for the cool-down, so that a Redis down or black-holed does not add a
///   timeout to every request; then one caller asks whether it is back, the others keep
///   away until it answers (see [`RedisBreaker`]). Logged once per outage, as an error
///   naming the server's address (never the URL) when the breaker opens, and Redis
///   answering again at INFO (see [`RedisOutageLog`](crate::RedisOutageLog)).
/// - **Eviction** ([`dangerous_allow_eviction`](Self::dangerous_allow_eviction)): a Redis
///   whose `maxmemory-policy` evicts keys is refused at start-up unless allowed, and logged
///   as a warning when allowed (see [`check_eviction`]); a server that does not let us ask
///   (`CONFIG` disabled or renamed, as on many managed services) is logged, and start-up goes
///   on. The policy is asked again every
///   [`eviction_recheck_every`](Self::set_eviction_recheck_every) (five minutes) and on each
///   connection that replaces a silent one (see [`RedisConnection`]).
///
/// `Debug` hides the URL's password.
///
/// ```
/// use std::time::Duration;
/// use hardening_errors::{EvictionRisk, RedisStartError, RedisStoreSettings};
///
/// const RISK: EvictionRisk = EvictionRisk {
///     store: "revocations",
///     loss: "revocations under memory pressure",
///     loosening: "RevocationsBuilder::dangerous_allow_eviction",
/// };
/// let mut settings = RedisStoreSettings::new(
///     "redis://:hunter2@10.0.0.5:6379/",
///     RISK,
///     "app:revoked:",
///     Duration::from_millis(200),
/// );
/// settings.set_circuit_breaker(0, Duration::from_secs(5));
/// assert_eq!(settings.breaker().threshold(), 1, "at least one failure");
/// assert!(!format!("{settings:?}").contains("hunter2"));
///
/// settings.set_timeout(Duration::ZERO);
/// assert!(matches!(settings.check(), Err(RedisStartError::ZeroTimeout)));
/// ```
#[derive(Clone)]
pub struct RedisStoreSettings {
    url: String,
    /// What the store keeps and what eviction costs it: in the warnings and errors.
    risk: EvictionRisk,
    prefix: String,
    timeout: Duration,
    breaker_failures: u32,
    breaker_cool_down: Duration,
    allow_eviction: bool,
    /// How often the eviction policy is asked again: [`EVICTION_RECHECK_EVERY`], unless a
    /// test sets it.
    eviction_recheck_every: Duration,
}

// By hand: the URL's password is not printed.
impl fmt::Debug for RedisStoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut settings = f.debug_struct("RedisStoreSettings");
        self.debug_fields(&mut settings);
        settings.finish()
    }
}

/// Why a Redis store could not start, as far as its [`RedisStoreSettings`] tell; each store
/// answers it with its own error, in its own words. Not `#[non_exhaustive]`: a new reason
/// must be answered by every store.
#[derive(Debug, thiserror::Error)]
pub enum RedisStartError {
    /// The timeout is zero: every command would give up before Redis replies. No
    /// connection was tried.
    #[error("the Redis timeout is zero")]
    ZeroTimeout,
    /// The URL is not a Redis URL: why (the URL is not repeated, it may hold a password).
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(#[source] redis::RedisError),
    /// Redis did not answer at start-up (the error names the server's address, never the
    /// URL).
    #[error("cannot reach Redis at start-up: {0}")]
    Unreachable(#[source] redis::RedisError),
}

/// How a store's connection waits for replies, and so when it is taken for silent and
/// replaced (see [`RedisConnection`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateReplies {
    /// Nothing waits for a reply past the store's timeout (the connection's response
    /// timeout): a connection on which commands have timed out for ten timeouts, none
    /// answered, is replaced. For a store with nothing to take back (the denylist).
    Dropped,
    /// No response timeout on the connection (each command has a timer of its own), so that
    /// a reply Redis makes late (stalled by a fork, paused, a network partition that heals)
    /// still reaches the task that takes back what it charged or granted. A connection on
    /// which commands have timed out for a cool-down of the breaker (or the timeout, if
    /// longer), none answered, is replaced: the breaker's next probe asks on a new one.
    Awaited,
}

impl RedisStoreSettings {
    /// The settings of a store at `url` keeping what `risk` says, with its default `prefix`
    /// and `timeout`; the circuit breaker opens after 5 failures in a row, for 2 s; an
    /// evicting Redis is refused.
    pub fn new(url: &str, risk: EvictionRisk, prefix: &str, timeout: Duration) -> Self {
        Self {
            url: url.to_owned(),
            risk,
            prefix: prefix.to_owned(),
            timeout,
            breaker_failures: BREAKER_FAILURES,
            breaker_cool_down: BREAKER_COOL_DOWN,
            allow_eviction: false,
            eviction_recheck_every: EVICTION_RECHECK_EVERY,
        }
    }

    /// The prefix of the store's keys (what they are made of is the store's own).
    pub fn set_prefix(&mut self, prefix: &str) {
        prefix.clone_into(&mut self.prefix);
    }

    /// How long one command may wait for Redis. Zero is refused by [`check`](Self::check)
    /// and [`connect`](Self::connect).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Opens the breaker after `failures` failures in a row (at least 1), for `cool_down`
    /// (see the type's documentation).
    pub fn set_circuit_breaker(&mut self, failures: u32, cool_down: Duration) {
        self.breaker_failures = failures.max(1);
        self.breaker_cool_down = cool_down;
    }

    /// **Loosens**: accepts a Redis whose `maxmemory-policy` evicts keys (a shared cache,
    /// say), logging a warning at start-up when the policy found evicts.
    pub fn dangerous_allow_eviction(&mut self) {
        self.allow_eviction = true;
    }

    /// How often Redis's `maxmemory-policy` is asked again after start-up, instead of every
    /// [`EVICTION_RECHECK_EVERY`] (five minutes): for tests, which cannot wait that long.
    pub fn set_eviction_recheck_every(&mut self, every: Duration) {
        self.eviction_recheck_every = every;
    }

    /// The prefix of the store's keys.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How long one command may wait for Redis.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Adds the settings to a builder's `Debug`, the URL's password hidden.
    pub fn debug_fields(&self, f: &mut fmt::DebugStruct<'_, '_>) {
        f.field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_cool_down", &self.breaker_cool_down)
            .field("allow_eviction", &self.allow_eviction)
            .field("eviction_recheck_every", &self.eviction_recheck_every);
    }

    /// Refuses what the settings alone show to be wrong: a zero timeout.
    ///
    /// # Errors
    ///
    /// [`RedisStartError::ZeroTimeout`].
    pub fn check(&self) -> Result<(), RedisStartError> {
        if self.timeout.is_zero() {
            return Err(RedisStartError::ZeroTimeout);
        }
        Ok(())
    }

    /// [`check`](Self::check)s the settings, then connects to the URL (with the TCP
    /// settings of [`redis_connection_info`](crate::redis_connection_info)), waiting for
    /// replies as `late_replies` says. The connection's address, for the logs, is
    /// [`RedisConnection::addr`]. The store then asks the eviction policy with
    /// [`check_eviction`](Self::check_eviction), within its timeout.
    ///
    /// # Errors
    ///
    /// [`RedisStartError::ZeroTimeout`] (no connection tried),
    /// [`RedisStartError::InvalidUrl`], [`RedisStartError::Unreachable`].
    pub async fn connect(
        &self,
        late_replies: LateReplies,
    ) -> Result<RedisConnection, RedisStartError> {
        self.check()?;
        let client = crate::redis_connection_info(self.url.as_str())
            .and_then(redis::Client::open)
            .map_err(RedisStartError::InvalidUrl)?;
        let (response_timeout, silence) = match late_replies {
            LateReplies::Dropped => (Some(self.timeout), self.timeout.saturating_mul(10)),
            LateReplies::Awaited => (None, self.breaker_cool_down.max(self.timeout)),
        };
        RedisConnection::connect(
            client,
            self.timeout,
            response_timeout,
            silence,
            self.risk,
            self.allow_eviction,
            self.eviction_recheck_every,
        )
        .await
        .map_err(RedisStartError::Unreachable)
    }

    /// Asks the server's `maxmemory-policy` over `conn`, as [`check_eviction`] does for this
    /// store: `Ok(Err(policy))` when it evicts and eviction is not allowed.
    ///
    /// # Errors
    ///
    /// The connection failed.
    pub async fn check_eviction(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
    ) -> redis::RedisResult<Result<(), String>> {
        check_eviction(conn, self.allow_eviction, &self.risk).await
    }

    /// The store's circuit breaker, by these settings.
    pub fn breaker(&self) -> RedisBreaker {
        RedisBreaker::new(self.breaker_failures, self.breaker_cool_down, self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RISK: EvictionRisk = EvictionRisk {
        store: "tests",
        loss: "nothing",
        loosening: "Tests::dangerous_allow_eviction",
    };

    /// What a zero timeout is refused as, before any connection: nothing listens at port 1,
    /// and a connection tried would say `Unreachable`.
    #[tokio::test]
    async fn a_zero_timeout_is_refused_before_the_url_or_a_connection() {
        let mut settings = RedisStoreSettings::new(
            "redis://127.0.0.1:1/",
            RISK,
            "p:",
            Duration::from_millis(100),
        );
        settings.set_timeout(Duration::ZERO);
        let refused = settings.connect(LateReplies::Awaited).await.err();
        assert!(
            matches!(refused, Some(RedisStartError::ZeroTimeout)),
            "{refused:?}"
        );
        let mut bad_url = RedisStoreSettings::new("http://:hunter2@x/", RISK, "p:", Duration::ZERO);
        assert!(matches!(
            bad_url.connect(LateReplies::Dropped).await,
            Err(RedisStartError::ZeroTimeout)
        ));
        bad_url.set_timeout(Duration::from_millis(100));
        let refused = bad_url.connect(LateReplies::Dropped).await.err();
        assert!(
            matches!(refused, Some(RedisStartError::InvalidUrl(_))),
            "{refused:?}"
        );
        assert!(!format!("{refused:?}").contains("hunter2"));
    }

    #[test]
    fn the_debug_hides_the_urls_password_and_shows_the_rest() {
        let mut settings = RedisStoreSettings::new(
            "redis://app:correct horse@10.0.0.5:6379/0",
            RISK,
            "app:",
            Duration::from_millis(150),
        );
        settings.set_circuit_breaker(3, Duration::from_secs(7));
        let debug = format!("{settings:?}");
        assert!(!debug.contains("horse"), "{debug}");
        for shown in [
            "10.0.0.5:6379",
            "\"app:\"",
            "150ms",
            "breaker_failures: 3",
            "7s",
        ] {
            assert!(debug.contains(shown), "{shown}: {debug}");
        }
    }
}
