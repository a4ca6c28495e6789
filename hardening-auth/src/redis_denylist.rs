//! `RedisDenylist`: revoked tokens in Redis, shared by every instance of a service.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hardening_errors::{
    EvictionRisk, LateReplies, OutageWords, RedisBreaker, RedisConnection, RedisOutageLog,
    RedisStartError, RedisStoreSettings, check_persistence,
};
use redis::Script;

use crate::denylist::REVOCATION_GRACE;
use crate::{Denylist, DenylistError, DenylistFuture, DenylistUnavailable, TokenRef};

/// 9999-12-31T23:59:59Z in milliseconds: a revocation ending later is kept with no expiry.
const LATEST_EXPIRY_MS: u128 = 253_402_300_799_000;

/// Revokes `KEYS[1]`, keeping the later of the end it has and the new one: a revocation is
/// never shortened (the same token revoked again with a nearer end replaced a longer TTL
/// with `SET … PX`, and the token was accepted again before it expired). ARGV: the ms left
/// (`PX`), or `''` for no expiry. A key with no expiry is kept as it is.
const REVOKE: &str = r"
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 then return 0 end
if ARGV[1] == '' then
  redis.call('SET', KEYS[1], '1')
elseif ttl < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
";

/// How long Redis keeps one revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// Already over: nothing to store.
    Ended,
    /// `PX`: this many milliseconds from when Redis gets the command (at least 1).
    In(u64),
    /// No expiry: an end past year 9999.
    Never,
}

/// How long to keep a revocation of a token expiring at `expires_at`, [`REVOCATION_GRACE`]
/// included, counted from `now` on this process's clock (the one `exp` is checked with), so
/// that a Redis clock ahead of ours does not end it early.
fn expiry(expires_at: SystemTime, now: SystemTime) -> Expiry {
    // An `exp` so far off that the grace overflows the clock: kept until then anyway.
    let until = expires_at
        .checked_add(REVOCATION_GRACE)
        .unwrap_or(expires_at);
    let Ok(left) = until.duration_since(now) else {
        return Expiry::Ended;
    };
    if left.is_zero() {
        return Expiry::Ended;
    }
    // Past year 9999 (up to the clock's last second, more milliseconds than Redis takes):
    // kept for good (the token would be accepted that long).
    if until
        .duration_since(UNIX_EPOCH)
        .is_ok_and(|at| at.as_millis() > LATEST_EXPIRY_MS)
    {
        return Expiry::Never;
    }
    // Rounded up: a revocation never ends before the token does.
    let ms = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
    Expiry::In(u64::try_from(ms).unwrap_or(u64::MAX).max(1))
}

/// Why a [`RedisDenylist`] could not be built.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum RedisDenylistError {
    /// The URL is not a Redis URL (it is not repeated here: it may hold a password).
    #[error("invalid Redis URL for the jti denylist (expected redis://[:password@]host:port/db)")]
    InvalidUrl,
    /// Redis did not answer at start-up.
    #[error(
        "cannot reach Redis for the jti denylist at start-up: {0}; check the URL and that the \
         server is running"
    )]
    Unreachable(#[source] redis::RedisError),
    /// Redis may evict keys under memory pressure (its `maxmemory-policy`, named here, is
    /// not `noeviction`): an evicted revocation makes the revoked token valid again.
    #[error(
        "the Redis for the jti denylist evicts keys under memory pressure (maxmemory-policy \
         {0}), and an evicted revocation makes the revoked token valid again: set \
         maxmemory-policy noeviction on this Redis, or use a dedicated Redis for revocations \
         (RedisDenylistBuilder::dangerous_allow_eviction() accepts it anyway)"
    )]
    EvictingPolicy(String),
    /// A zero timeout: every check would fail, and every request with a token be refused.
    #[error(
        "the jti denylist's Redis timeout is zero: every check would give up before Redis \
         replies, and every request with a token would be refused (503); use the default \
         (200 ms) or a few round trips to Redis"
    )]
    ZeroTimeout,
}

hardening_errors::debug_as_message!(RedisDenylistError);

impl RedisDenylistError {
    /// The denylist's words for why its settings could not start it.
    fn from_start(error: RedisStartError) -> Self {
        match error {
            RedisStartError::ZeroTimeout => Self::ZeroTimeout,
            // The reason is left out, as it always was.
            RedisStartError::InvalidUrl(_) => Self::InvalidUrl,
            RedisStartError::Unreachable(e) => Self::Unreachable(e),
        }
    }
}

/// What eviction costs the denylist, for the start-up warnings.
const EVICTION_RISK: EvictionRisk = EvictionRisk {
    store: "the jti denylist",
    loss: "revocations under memory pressure, and a revoked token is then valid again",
    loosening: "RedisDenylistBuilder::dangerous_allow_eviction",
};

/// What a restart of a Redis that keeps nothing costs the denylist, for the start-up warning.
const RESTART_LOSS: &str = "every revocation, and each revoked token (a logged-out session) \
     is valid again until it expires";

/// What the denylist says of an outage of its Redis (see [`RedisOutageLog`]). An error Redis
/// answers is no failure of the breaker's (see [`RedisDenylistBuilder::circuit_breaker`]).
const OUTAGE_WORDS: OutageWords = OutageWords {
    store: EVICTION_RISK.store,
    name: "jti denylist",
    failing: "down, or slower than the store's timeout",
    asker: "request",
    back: "tokens are checked against it again",
};

/// What requests get while the denylist's Redis is away, for the error logged when the
/// breaker opens.
const MEANWHILE: &str = "no token can be checked against it and none is let through \
     unchecked: a route that takes `Authenticated` answers 503, `Option<Authenticated>` reads \
     a session cookie as no session, and revocations (logouts) fail";

/// Builds a [`RedisDenylist`]; see [`RedisDenylist::builder`].
#[must_use]
pub struct RedisDenylistBuilder {
    settings: RedisStoreSettings,
}

// By hand: the URL's password is not printed.
impl fmt::Debug for RedisDenylistBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut builder = f.debug_struct("RedisDenylistBuilder");
        self.settings.debug_fields(&mut builder);
        builder.finish()
    }
}

impl RedisDenylistBuilder {
    /// The prefix of every key (default `hardening:jti:`); keys are
    /// `{prefix}{length of sub}:{sub}{jti}` (see [`RedisDenylist`]).
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.settings.set_prefix(prefix);
        self
    }

    /// How long one check or revocation may wait for Redis before it fails (default 200 ms);
    /// a failed check refuses the request (503). A connection that stays open but answers
    /// nothing (a proxy in front of a Redis that stopped) is replaced once commands have
    /// timed out on it for ten of these timeouts with no reply (logged as a warning). Zero
    /// is refused by [`connect`](Self::connect).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.set_timeout(timeout);
        self
    }

    /// After `failures` checks or revocations in a row that Redis did not answer (no reply
    /// within the [timeout](Self::timeout), or a failed connection), stop asking it for
    /// `cool_down` (default 5 failures, 2 s; the rate limiter's breaker): a Redis that is
    /// down or black-holed (a firewall dropping its packets, a proxy in front of a Redis that
    /// died) must not add a timeout to every request with a token. Meanwhile each check
    /// fails at once with a [`DenylistUnavailable`] whose `retry_after` is the cool-down (at
    /// least a second), which [`Authenticated`](crate::Authenticated) answers 503 with that
    /// `Retry-After`. After each cool-down, one request asks whether Redis is back; the others
    /// keep failing at once until it answers. A Redis that answers but cannot serve yet
    /// (`-LOADING` while it loads its data set after a restart, see
    /// [`RedisBreaker::is_outage`]) is down too. Another error Redis answers (a full Redis
    /// refusing a revocation) is an answer: it fails that command only. Each outage is logged
    /// as every Redis store logs it (see [`RedisStoreSettings`]); each request refused
    /// meanwhile only at debug (see [`Authenticated`](crate::Authenticated)).
    pub fn circuit_breaker(mut self, failures: u32, cool_down: Duration) -> Self {
        self.settings.set_circuit_breaker(failures, cool_down);
        self
    }

    /// **Loosens**: accepts a Redis whose `maxmemory-policy` evicts keys (a shared cache,
    /// say). Under memory pressure it may drop revocations, and those tokens are valid again
    /// until they expire. Logs a warning at start-up when the policy found evicts.
    pub fn dangerous_allow_eviction(mut self) -> Self {
        self.settings.dangerous_allow_eviction();
        self
    }

    /// See [`RedisStoreSettings::set_eviction_recheck_every`]: for tests.
    #[doc(hidden)]
    pub fn eviction_recheck_every(mut self, every: Duration) -> Self {
        self.settings.set_eviction_recheck_every(every);
        self
    }

    /// Connects (multiplexed, reconnecting in the background), pings and asks the server's
    /// `maxmemory-policy`. Fails now, not at the first request, when the URL is wrong, Redis
    /// is down, or it may evict revocations (anything but `noeviction`). When the server
    /// does not let us ask (`CONFIG` disabled or renamed, as on many managed services), logs
    /// a warning and goes on. Then asks its `appendonly` and `save`, and logs a warning when
    /// both are off: a restart would empty it, and every logged-out session whose token has
    /// not expired would be live again (see **Consistency** on [`RedisDenylist`]).
    ///
    /// # Errors
    ///
    /// [`RedisDenylistError::ZeroTimeout`] (no connection tried),
    /// [`RedisDenylistError::InvalidUrl`], [`RedisDenylistError::Unreachable`], and
    /// [`RedisDenylistError::EvictingPolicy`] unless
    /// [`dangerous_allow_eviction`](Self::dangerous_allow_eviction).
    pub async fn connect(self) -> Result<RedisDenylist, RedisDenylistError> {
        let settings = &self.settings;
        // Each command gives up after the timeout: a late reply has nothing to take back.
        let connection = settings
            .connect(LateReplies::Dropped)
            .await
            .map_err(RedisDenylistError::from_start)?;
        let mut conn = connection.get();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(RedisDenylistError::Unreachable)?;
        settings
            .check_eviction(&mut conn)
            .await
            .map_err(RedisDenylistError::Unreachable)?
            .map_err(RedisDenylistError::EvictingPolicy)?;
        check_persistence(&mut conn, EVICTION_RISK.store, RESTART_LOSS)
            .await
            .map_err(RedisDenylistError::Unreachable)?;
        let addr = connection.addr();
        Ok(RedisDenylist {
            conn: Arc::new(connection),
            revoke: Script::new(REVOKE),
            prefix: settings.prefix().to_owned(),
            timeout: settings.timeout(),
            breaker: Arc::new(settings.breaker()),
            outage: Arc::new(RedisOutageLog::new(OUTAGE_WORDS, addr, MEANWHILE)),
        })
    }
}

/// A [`Denylist`] in Redis: `revoke` is `SET {key} 1 PX <ms until exp + 5 min>` (the entry
/// expires on its own once the token could no longer be accepted, leeway included; in a
/// script that keeps the later end when the key is there already, so that a second
/// revocation of the token never shortens the first), and `is_revoked` is one round trip of
/// single-key `EXISTS` commands (one key per command, as Redis Cluster needs). The
/// time left is counted on this process's clock, the one the verifier checks `exp` with:
/// Redis's clock may be ahead, and an absolute `PXAT` would then end revocations early.
///
/// **Keys.** `{prefix}{length of sub}:{sub}{jti}`: a token is known by its subject and its
/// `jti`, as in [`MemoryDenylist`](crate::MemoryDenylist), so that one subject's logout
/// never refuses another subject's token with the same `jti` (two issuers each counting
/// their own); the subject's length (in bytes) first, so that no two pairs give one key.
/// Versions before this one stored `{prefix}{jti}`: a check asks for that key too, in the
/// same round trip, so revocations stored before an upgrade still refuse their tokens (of any
/// subject, as they did) until they expire. A `jti` that spells another token's key after
/// the prefix (`5:alicet-1`) is refused while that token is revoked: more, never less.
///
/// **Consistency.** Nothing is cached locally: every check asks Redis, so a revocation that
/// Redis acknowledged is seen by every instance's next check. With replicas and failover,
/// Redis replicates asynchronously, and a revocation acknowledged just before a failover can
/// be lost; run it with persistence (`appendonly yes`) if revocations must survive a restart:
/// a Redis that keeps nothing (neither `appendonly` nor `save`) revives every revoked token
/// when it restarts, which [`connect`](RedisDenylistBuilder::connect) warns of at start-up.
///
/// **Capacity.** One key per revoked token, with no cap of its own: Redis's memory is the
/// limit, and each revocation is one small key that expires with its token, so an account
/// logging in and out in a loop costs memory in proportion to its logins, not a slot others
/// need. Run Redis with `maxmemory-policy noeviction`: an evicting policy would drop
/// revocations (a revoked token valid again), while `noeviction` makes a full Redis refuse
/// them (the logout fails, loudly). [`connect`](RedisDenylistBuilder::connect) refuses any
/// other policy unless
/// [`dangerous_allow_eviction`](RedisDenylistBuilder::dangerous_allow_eviction) says
/// otherwise; a server that hides its policy is logged, not refused. The policy is checked
/// at start-up, and again on each connection that replaces a silent one (see
/// [`RedisDenylistBuilder::timeout`]): an evicting policy found then is logged as an error,
/// not refused. A `CONFIG SET maxmemory-policy` between replacements goes unnoticed.
///
/// **Failure.** Fails closed: when Redis is down, slow (past the timeout), still loading
/// its data set, or answers an error, `is_revoked` is an error, and
/// [`Authenticated`](crate::Authenticated) answers 503;
/// the token is never let through unchecked. After 5 checks or revocations in a
/// row with no reply (see [`RedisDenylistBuilder::circuit_breaker`]), a circuit breaker stops
/// asking Redis for a cool-down (2 s): a Redis down or black-holed costs one timeout per
/// request until then, not one per request for as long as it lasts. A check Redis was not
/// asked or did not answer is a [`DenylistUnavailable`] whose `retry_after` (the cool-down,
/// at least a second) the 503's `Retry-After` says; an error Redis answered says 1. A
/// connection that stays open but answers nothing (a proxy in front of a Redis that stopped, still acknowledging what it
/// is sent) is replaced after ten timeouts' worth of checks timed out on it (see
/// [`RedisDenylistBuilder::timeout`]); a connection that fails is made again at once. A check
/// or revocation whose connection turns out dead (closed by a Redis that restarted while
/// nothing was sent, reset, refused) is sent once more on a new one, within the same timeout:
/// a check only reads, and a revocation sent twice keeps the later of two ends a few
/// milliseconds apart. So the first request after Redis is back is answered.
///
/// ```no_run
/// use std::sync::Arc;
/// use hardening_auth::{AuthLayer, JwtVerifier, RedisDenylist};
///
/// # async fn start(verifier: JwtVerifier) -> Result<(), Box<dyn std::error::Error>> {
/// let denylist = RedisDenylist::builder("redis://127.0.0.1:6379/").connect().await?;
/// let layer = AuthLayer::new(verifier).denylist(Arc::new(denylist));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisDenylist {
    conn: Arc<RedisConnection>,
    /// [`REVOKE`].
    revoke: Script,
    prefix: String,
    timeout: Duration,
    /// Keeps checks away from a Redis that stopped answering (see
    /// [`RedisDenylistBuilder::circuit_breaker`]).
    breaker: Arc<RedisBreaker>,
    /// Logs the breaker's opening and Redis answering again, as the other Redis stores do.
    outage: Arc<RedisOutageLog>,
}

impl fmt::Debug for RedisDenylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisDenylist")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisDenylist {
    /// A builder for the Redis at `url` (`redis://host:port/db`; `rediss://` needs the
    /// `redis` crate's TLS features).
    pub fn builder(url: &str) -> RedisDenylistBuilder {
        RedisDenylistBuilder {
            settings: RedisStoreSettings::new(
                url,
                EVICTION_RISK,
                "hardening:jti:",
                Duration::from_millis(200),
            ),
        }
    }

    /// A readiness check for `/readyz` (`hardening_core::Health::check`): each run sends
    /// `PING` over this denylist's own connection, within its
    /// [timeout](RedisDenylistBuilder::timeout), and fails (naming the server's address,
    /// never the URL) when Redis does not answer: every request with a token is refused then.
    /// No `redis` dependency of your own.
    ///
    /// ```no_run
    /// use hardening_auth::RedisDenylist;
    ///
    /// # async fn start() -> Result<(), Box<dyn std::error::Error>> {
    /// let denylist = RedisDenylist::builder("redis://127.0.0.1:6379/").connect().await?;
    /// let check = denylist.readiness_check(); // Health::new().check("redis", check)
    /// check().await?; // Redis answered PING
    /// # Ok(()) }
    /// ```
    pub fn readiness_check(
        &self,
    ) -> impl Fn() -> hardening_errors::RedisReadiness + Clone + Send + Sync + 'static {
        hardening_errors::redis_readiness_check(self.clone(), |denylist| &*denylist.conn)
    }

    /// Where `token`'s revocation is stored (see **Keys** above).
    fn key(&self, token: TokenRef<'_>) -> String {
        let TokenRef { jti, subject, .. } = token;
        format!("{}{}:{subject}{jti}", self.prefix, subject.len())
    }

    /// Where versions that keyed by `jti` alone stored `token`'s revocation.
    fn jti_only_key(&self, token: TokenRef<'_>) -> String {
        format!("{}{}", self.prefix, token.jti)
    }

    /// Sends `call` (`what`: "check", "revoke") within the timeout, unless the circuit
    /// breaker keeps it away from Redis (`call` is then dropped unsent); tells the
    /// connection and the breaker how it ended. Not sent, or not answered: a
    /// [`DenylistUnavailable`] saying when to ask again (the breaker's cool-down).
    async fn bounded<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, DenylistError> {
        if !self.breaker.lets_through() {
            return Err(self.unavailable(format!(
                "redis jti denylist {what}: not sent, Redis failed {} times in a row (circuit \
                 breaker open; one request asks it again every {:?})",
                self.breaker.threshold(),
                self.breaker.cool_down()
            )));
        }
        let answer = tokio::time::timeout(self.timeout, call).await;
        // The connection's own response timeout (the same) may end it first.
        let timed_out = matches!(&answer, Ok(Err(e)) if e.is_timeout()) || answer.is_err();
        if timed_out {
            self.conn.timed_out();
        } else {
            self.conn.answered();
        }
        // No reply (a timeout, a failed connection), or a Redis that cannot serve yet
        // (loading its data set after a restart, say), counts towards opening the breaker;
        // another error Redis answered does not, and is no outage: it fails this command only.
        let no_reply = timed_out || matches!(&answer, Ok(Err(e)) if RedisBreaker::is_outage(e));
        if no_reply {
            self.outage.failed(&self.breaker);
        } else {
            self.outage.answered(&self.breaker);
        }
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if no_reply => {
                Err(self.unavailable(format!("redis jti denylist {what}: {e}")))
            }
            Ok(Err(e)) => Err(format!("redis jti denylist {what}: {e}").into()),
            Err(_) => Err(self.unavailable(format!(
                "redis jti denylist {what}: no answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// The error of a command Redis was not asked, or did not answer: ask again after the
    /// breaker's cool-down.
    fn unavailable(&self, reason: String) -> DenylistError {
        DenylistUnavailable::new(self.breaker.retry_after(), reason).into()
    }
}

impl Denylist for RedisDenylist {
    fn is_revoked<'a>(&'a self, token: TokenRef<'a>) -> DenylistFuture<'a, bool> {
        Box::pin(async move {
            // One key per command (keys in different Redis Cluster slots cannot share one),
            // both in one round trip.
            let mut exists = redis::pipe();
            exists
                .cmd("EXISTS")
                .arg(self.key(token))
                .cmd("EXISTS")
                .arg(self.jti_only_key(token));
            let exists = &exists;
            // It only reads: sent again on a new connection when its own was found dead.
            let checking = self.conn.send_idempotent(|mut conn| async move {
                exists.query_async::<(i64, i64)>(&mut conn).await
            });
            let (found, found_old) = self.bounded("check", checking).await?;
            Ok(found > 0 || found_old > 0)
        })
    }

    fn revoke<'a>(&'a self, token: TokenRef<'a>, expires_at: SystemTime) -> DenylistFuture<'a, ()> {
        Box::pin(async move {
            let mut set = self.revoke.key(self.key(token));
            match expiry(expires_at, SystemTime::now()) {
                // Past exp and any leeway: the verifier refuses this token anyway.
                Expiry::Ended => return Ok(()),
                Expiry::In(ms) => set.arg(ms),
                Expiry::Never => set.arg(""),
            };
            let set = &set;
            // Run twice, it keeps the later end of the two (a few ms apart): sent again on a
            // new connection when its own was found dead.
            let revoking = self.conn.send_idempotent(|mut conn| async move {
                set.invoke_async::<i64>(&mut conn).await
            });
            self.bounded("revoke", revoking).await.map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The builder's `Debug` printed the URL whole, password and all: a `?builder` in a log
    /// line leaked the Redis password.
    #[test]
    fn the_builders_debug_hides_the_urls_password() {
        for url in [
            "redis://:hunter2@10.0.0.5:6379/",
            "redis://app:hunter2@10.0.0.5:6379/0",
        ] {
            let debug = format!("{:?}", RedisDenylist::builder(url).prefix("app:jti:"));
            assert!(!debug.contains("hunter2"), "{debug}");
            assert!(debug.contains("10.0.0.5:6379"), "{debug}");
            assert!(debug.contains("app:jti:"), "{debug}");
        }
    }

    /// A password holding spaces (which `redis::Client` takes, percent-encoding them) was
    /// printed whole by the builder's `Debug`: the redaction of free text ends a URL at its
    /// first space, and found no `@` before it.
    #[test]
    fn the_builders_debug_hides_a_password_with_spaces() {
        for url in [
            "redis://:hunter 2@10.0.0.5:6379/",
            "redis://app:correct horse battery@10.0.0.5:6379/0",
        ] {
            assert!(redis::Client::open(url).is_ok(), "{url}");
            let debug = format!("{:?}", RedisDenylist::builder(url));
            assert!(
                !debug.contains("hunter") && !debug.contains("horse"),
                "{debug}"
            );
            assert!(debug.contains("10.0.0.5:6379"), "{debug}");
        }
    }

    /// A zero timeout passed start-up against a Redis on loopback and refused every token
    /// against a remote one.
    #[tokio::test]
    async fn a_zero_timeout_is_refused_at_start_up() {
        let refused = RedisDenylist::builder("redis://127.0.0.1:1/")
            .timeout(Duration::ZERO)
            .connect()
            .await
            .err();
        assert!(
            matches!(refused, Some(RedisDenylistError::ZeroTimeout)),
            "{refused:?}"
        );
    }

    /// The expiry sent is the time left on our clock (`PX`), not an absolute time on
    /// Redis's (`PXAT`): with Redis's clock ahead of ours, `PXAT` ended revocations early
    /// and a revoked token was accepted again.
    #[test]
    fn the_expiry_is_the_time_left_on_our_clock() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let minute = Duration::from_secs(60);
        let grace_ms = REVOCATION_GRACE.as_millis() as u64;
        assert_eq!(expiry(now + minute, now), Expiry::In(60_000 + grace_ms));
        // Past exp, within the grace (the leeway could still accept the token).
        assert_eq!(expiry(now - minute, now), Expiry::In(grace_ms - 60_000));
        // Rounded up, never to zero (Redis refuses `PX 0`).
        let nearly_over = now - REVOCATION_GRACE + Duration::from_micros(1);
        assert_eq!(expiry(nearly_over, now), Expiry::In(1));
        assert_eq!(
            expiry(now + Duration::from_micros(1_500), now),
            Expiry::In(grace_ms + 2)
        );
        // Over: nothing to store.
        assert_eq!(expiry(now - REVOCATION_GRACE, now), Expiry::Ended);
        assert_eq!(expiry(UNIX_EPOCH, now), Expiry::Ended);
        // Past year 9999, up to the clock's last second: no expiry.
        let y10k = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert_eq!(expiry(y10k, now), Expiry::Never);
        let end_of_time = UNIX_EPOCH
            .checked_add(Duration::from_secs(i64::MAX as u64))
            .unwrap();
        assert_eq!(expiry(end_of_time, now), Expiry::Never);
        // Just before year 10000, the time left is still sent.
        let late = y10k - REVOCATION_GRACE - Duration::from_secs(1);
        assert_eq!(
            expiry(late, now),
            Expiry::In(
                (late + REVOCATION_GRACE)
                    .duration_since(now)
                    .unwrap()
                    .as_millis() as u64
            )
        );
    }
}
