//! The connection of the Redis stores (feature `redis`): `hardening-auth`'s denylist and
//! `hardening-ratelimit`'s limiter. Replaced when it stays open but stops answering.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, RedisResult};

use crate::redis_eviction::{
    EvictionRisk, evicted_keys, log_evicted, log_evicting, recheck_eviction,
};

/// A store's Redis connection: a multiplexed [`ConnectionManager`], which connects again
/// when its connection fails, replaced by a new one when its connection stays open but
/// answers nothing: a proxy or load balancer in front of a Redis that stopped (it keeps
/// acknowledging what it is sent), or a Redis paused for good. Nothing fails there, so the
/// manager alone kept it, and every command queued on it timed out for good, although a new
/// connection would be answered.
///
/// The store tells it how each command ended: [`answered`](Self::answered) (a reply, or an
/// error) or [`timed_out`](Self::timed_out) (the store's own timer). Once commands have
/// timed out for `silence`, none answered in between, the next to time out replaces the
/// connection: commands sent from then on go to a new one (connected at its first command),
/// and one warning says so (naming the server's address, never the URL). Commands still
/// waiting on the old connection keep it until they end (the store bounds how long), and
/// it is closed with the last. So a connection is replaced at most once a `silence`, and
/// warned about at most once a minute (a Redis paused for good: each new connection answered,
/// then silent), the warning counting the replacements in between.
///
/// The new connection may reach another server (a proxy in front of several), or one whose
/// `maxmemory-policy` was changed since start-up: a task of its own asks the policy on it
/// once (within the store's timeout), and an evicting one the store does not allow is logged
/// as an error (requests go on), at most once a minute, counting the findings in between.
/// The policy is also asked again every `recheck_every` (given at connect, usually
/// [`EVICTION_RECHECK_EVERY`]) on the connection of the moment, by a task that ends when this
/// is dropped: a `CONFIG SET maxmemory-policy` made after start-up is noticed too. The same
/// task reads the server's count of evicted keys (`INFO stats`), which a Redis that hides its
/// `CONFIG` (as many managed services do) still gives: keys evicted since the last check are
/// logged as an error too, at most once a minute.
///
/// A connection the server closed while nothing was sent on it (Redis stopped and started
/// again, its `timeout` for idle clients) is found dead only by the next command sent on it,
/// which fails; the manager then connects again. The stores send their commands through
/// [`send_idempotent`](Self::send_idempotent) (sent once more, on the new connection) or
/// [`send_once`](Self::send_once) (a `PING` first after [`PING_WHEN_IDLE_FOR`] with no
/// reply), so that the first command after a restart of Redis is answered. While Redis is
/// stopped, each command fails at once with the connection's error (refused, reset): the
/// manager makes one attempt to connect again, with no retries inside the command, so the
/// store counts an error (and its breaker a failure), not a silence, and the connection is
/// not replaced, nor warned about as one that stayed open.
///
/// [`get`](Self::get) is the hot path: an uncontended read lock (the write lock is held only
/// for a swap) and the manager's clone.
pub struct RedisConnection {
    /// Shared with the task that asks the eviction policy again now and then.
    current: Arc<RwLock<ConnectionManager>>,
    client: Client,
    config: ConnectionManagerConfig,
    /// How long the connection has been silent.
    silence: Silence,
    /// When a command last had a reply (a value, or an error Redis answered): ms since
    /// `start`, plus one.
    replied: AtomicU64,
    start: Instant,
    /// What the store keeps ("rate limits", in the warning) and what eviction costs it.
    risk: EvictionRisk,
    /// Whether the store accepts an evicting policy.
    allow_eviction: bool,
    /// How long the eviction check on a new connection may wait for its reply.
    timeout: Duration,
    /// The warnings about replacements, at most one a [`LOG_EVERY_MS`].
    warnings: Throttled,
    /// The errors about an evicting Redis found after start-up, at most one a [`LOG_EVERY_MS`]
    /// (shared with the tasks that check them).
    eviction_errors: Arc<Throttled>,
    /// The task that asks the eviction policy again every `recheck_every`, stopped on drop.
    rechecks: Option<tokio::task::AbortHandle>,
}

/// How often the Redis stores ask their server's `maxmemory-policy` again, so that a policy
/// changed after start-up (`CONFIG SET`) is noticed: one `CONFIG GET` per store and process
/// every five minutes, off the request path.
pub const EVICTION_RECHECK_EVERY: Duration = Duration::from_secs(300);

/// How long the connection may go with no reply before [`RedisConnection::send_once`] sends
/// a `PING` ahead of its command: a connection the server closed meanwhile is found by the
/// `PING`, not by a command that must not be sent twice. A store answering a request a second
/// or more often never sends it; a quieter one pays a round trip on its first command after
/// each quiet second.
pub const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// The shortest period between two checks of the eviction policy (a shorter one is taken as
/// this).
const SHORTEST_RECHECK: Duration = Duration::from_millis(10);

/// The longest period between two checks of the eviction policy (a longer one is taken as
/// this): it is added to the clock, which would panic on overflow (`Duration::MAX`).
const LONGEST_RECHECK: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Commands timing out with none answered: how long, against how long is too long.
#[derive(Debug)]
struct Silence {
    /// How long commands may time out, none answered, before the connection is replaced.
    limit_ms: u64,
    /// When the first timeout since the last answer (or replacement) came: ms since the
    /// connection's `start`, plus one; 0 when none did.
    since: AtomicU64,
}

impl Silence {
    /// A command was answered: the silence, if any, is over.
    #[inline]
    fn answered(&self) {
        if self.since.load(Ordering::Relaxed) != 0 {
            self.since.store(0, Ordering::Relaxed);
        }
    }

    /// A command timed out at `now` (ms since `start`, plus one). `Some(how long the
    /// silence lasted)` when it has lasted `limit_ms`: the connection is to be replaced, and
    /// the next timeout starts a new silence. One caller gets it, whoever ends the silence.
    fn timed_out(&self, now: u64) -> Option<u64> {
        let since = self.since.load(Ordering::Relaxed);
        if since == 0 {
            // The first of a silence (or another caller's, at the same time: either).
            let _ = self
                .since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            return None;
        }
        let silent = now.saturating_sub(since);
        if silent < self.limit_ms
            || self
                .since
                .compare_exchange(since, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        Some(silent)
    }
}

/// At most one warning about replaced connections, and one error about an evicting Redis
/// found after start-up, this often: a Redis paused for good (each new connection answered,
/// then silent) has its connection replaced every `silence`.
const LOG_EVERY_MS: u64 = 60_000;

/// A message (a warning, an error) that is logged at most once a [`LOG_EVERY_MS`], counting
/// the occurrences left unlogged in between (told in the next one).
#[derive(Debug, Default)]
struct Throttled {
    /// When the last message was logged: ms since the connection's `start`, plus one; 0
    /// before the first.
    last: AtomicU64,
    unlogged: AtomicU64,
}

impl Throttled {
    /// At `now` (ms since `start`, plus one): `Some(occurrences left unlogged since the last
    /// message)` if a message is due, else `None`, this one counted as unlogged.
    fn due(&self, now: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= LOG_EVERY_MS;
        if due
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.unlogged.swap(0, Ordering::Relaxed));
        }
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("store", &self.risk.store)
            .field("silence_ms", &self.silence.limit_ms)
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// Connects to `client`'s Redis, the stores' way (kept for the connections that replace
    /// this one): connecting within `timeout`, in one attempt (a refused one fails the
    /// command that waited for it at once; the next command tries again), and replies
    /// awaited for `response_timeout` (`None`: as long as the connection lasts).
    /// `risk.store` names what the store keeps, in the warning; each new connection has its
    /// eviction policy checked as at start-up (`allow_eviction`), within `timeout`, and so has
    /// the connection of the moment every `recheck_every` (none when `allow_eviction`).
    ///
    /// # Errors
    /// When the first connection cannot be made, as [`ConnectionManager::new_with_config`],
    /// a failure to reach the server naming its address (`host:port`, never the URL, which
    /// may hold a password), still an I/O error, refused or timed out as it was.
    pub async fn connect(
        client: Client,
        timeout: Duration,
        response_timeout: Option<Duration>,
        silence: Duration,
        risk: EvictionRisk,
        allow_eviction: bool,
        recheck_every: Duration,
    ) -> RedisResult<Self> {
        // One attempt per connection, no retries: the manager makes them inside the command
        // that waits for the connection, sleeping in between (100 ms or more, then 200 ms or
        // more), so a Redis refusing connections (stopped) ran out every store's timeout,
        // taken for a silent connection, instead of failing at once. A command after a failed
        // attempt has the manager try again (see `send_idempotent`, `send_once`); the breaker
        // spaces them out.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(response_timeout)
            .set_number_of_retries(0);
        let manager = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .map_err(|e| connecting_to(&client, e))?;
        let mut connection = Self {
            current: Arc::new(RwLock::new(manager)),
            client,
            config,
            silence: Silence {
                limit_ms: u64::try_from(silence.as_millis()).unwrap_or(u64::MAX),
                since: AtomicU64::new(0),
            },
            // Connected: the handshake was answered.
            replied: AtomicU64::new(1),
            start: Instant::now(),
            risk,
            allow_eviction,
            timeout,
            warnings: Throttled::default(),
            eviction_errors: Arc::default(),
            rechecks: None,
        };
        if !allow_eviction {
            connection.rechecks = connection.recheck_eviction_every(recheck_every);
        }
        Ok(connection)
    }

    /// The server's address, `host:port`, for the logs: never the URL, which may hold a
    /// password.
    pub fn addr(&self) -> String {
        self.client.get_connection_info().addr().to_string()
    }

    /// The connection to send commands on.
    #[inline]
    pub fn get(&self) -> ConnectionManager {
        // A panic during a swap (none expected) leaves one connection or the other: either
        // will do.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends a command that only reads, or that leaves Redis as it is when run twice (`send`
    /// is given the connection of the moment): once more, on a new connection, when its
    /// connection turns out dead (closed, reset, or refused: the manager then connects
    /// again). So the first command after a restart of Redis is answered, though the
    /// connection it was sent to had been closed by the old server. Not for a command that
    /// must not run twice, which the dead connection may have delivered before it died: see
    /// [`send_once`](Self::send_once). The caller's timeout bounds both.
    ///
    /// # Errors
    /// The second sending's error, or the first's when it is not sent again.
    pub async fn send_idempotent<T, F>(
        &self,
        mut send: impl FnMut(ConnectionManager) -> F,
    ) -> RedisResult<T>
    where
        F: Future<Output = RedisResult<T>>,
    {
        match self.noted(send(self.get()).await) {
            Err(e) if e.is_connection_dropped() && !e.is_timeout() => {
                self.noted(send(self.get()).await)
            }
            sent => sent,
        }
    }

    /// Sends a command that must not run twice (a charge, a grant; `send` is given the
    /// connection of the moment). A command that fails on a connection found dead may have
    /// reached Redis before it died, and nothing tells whether it did: so it is sent again
    /// only when it failed to connect (refused: the manager hands out its last attempt to
    /// connect again, which failed; nothing was sent). To find a connection the server
    /// closed while idle before the command is sent on it, a `PING` goes first when the
    /// connection has had no reply for [`PING_WHEN_IDLE_FOR`]: a dead connection fails the
    /// `PING`, and the command goes to the new one. The caller's timeout bounds all of it.
    ///
    /// # Errors
    /// The command's error (the second sending's, if it was sent again).
    pub async fn send_once<T, F>(
        &self,
        mut send: impl FnMut(ConnectionManager) -> F,
    ) -> RedisResult<T>
    where
        F: Future<Output = RedisResult<T>>,
    {
        if self.idle() {
            let mut conn = self.get();
            // Failed, the connection is made again for the command; either way, it is sent.
            let _ = self.noted(redis::cmd("PING").query_async::<()>(&mut conn).await);
        }
        match self.noted(send(self.get()).await) {
            Err(e) if e.is_connection_refusal() => self.noted(send(self.get()).await),
            sent => sent,
        }
    }

    /// Whether the connection has had no reply for [`PING_WHEN_IDLE_FOR`].
    fn idle(&self) -> bool {
        let replied = self.replied.load(Ordering::Relaxed);
        let idle_ms = u64::try_from(PING_WHEN_IDLE_FOR.as_millis()).unwrap_or(u64::MAX);
        self.now_ms().saturating_sub(replied) >= idle_ms
    }

    /// Notes when a command had a reply (a value, or an error Redis answered: not a failed
    /// connection, not a timeout); passes its result on.
    fn noted<T>(&self, sent: RedisResult<T>) -> RedisResult<T> {
        if !matches!(&sent, Err(e) if e.is_io_error() || e.is_unrecoverable_error()) {
            self.replied.store(self.now_ms(), Ordering::Relaxed);
        }
        sent
    }

    /// A command was answered (a reply, or an error): the connection is not silent.
    #[inline]
    pub fn answered(&self) {
        self.silence.answered();
    }

    /// A command had no answer within the store's timeout. Replaces the connection when
    /// commands have timed out for the `silence` given at connect, none answered in between;
    /// then `true`.
    pub fn timed_out(&self) -> bool {
        let Some(silent) = self.silence.timed_out(self.now_ms()) else {
            return false;
        };
        self.replace(Duration::from_millis(silent));
        true
    }

    /// Milliseconds since `start`, plus one (0 stands for "never" in the atomics).
    fn now_ms(&self) -> u64 {
        ms_since(self.start)
    }

    #[cold]
    fn replace(&self, silent: Duration) {
        // Lazy: connects at its first command, so nothing waits here. Its configuration was
        // accepted at connect: an error is not expected, and then the old one is kept.
        let Ok(new) =
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
        else {
            return;
        };
        let old = std::mem::replace(
            &mut *self.current.write().unwrap_or_else(PoisonError::into_inner),
            new,
        );
        // Outside the lock; the connection itself lives on in the commands still waiting.
        drop(old);
        let addr = self.client.get_connection_info().addr();
        self.recheck_eviction(addr.to_string());
        let silent_ms = u64::try_from(silent.as_millis()).unwrap_or(u64::MAX);
        let Some(unlogged) = self.warnings.due(self.now_ms()) else {
            tracing::debug!(
                target: "hardening",
                store = self.risk.store,
                redis = %addr,
                silent_ms,
                "the Redis connection was replaced again (warned at most once a minute)"
            );
            return;
        };
        tracing::warn!(
            target: "hardening",
            store = self.risk.store,
            redis = %addr,
            silent_ms,
            replaced_unlogged = unlogged,
            "the Redis connection for {} at {addr} was replaced: commands timed out on it for \
             {silent:?} with no reply, though it stayed open (a proxy in front of a Redis \
             that stopped, or a Redis paused); commands go to a new connection from now on \
             (warned at most once a minute; `replaced_unlogged` counts the replacements since \
             the last warning)",
            self.risk.store
        );
    }

    /// Asks the eviction policy on the new connection, in a task of its own (never on the
    /// request path); see [`Recheck::run`]. Not for a store that allows eviction, which has
    /// nothing to find.
    #[cold]
    fn recheck_eviction(&self, addr: String) {
        if self.allow_eviction {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let conn = self.get();
        let recheck = self.recheck(addr);
        runtime.spawn(async move { recheck.run(conn).await });
    }

    /// Asks the eviction policy on the connection of the moment every `every` (at least
    /// [`SHORTEST_RECHECK`], at most [`LONGEST_RECHECK`]), in a task of its own; see
    /// [`Recheck::run`]. `None` outside a Tokio runtime.
    fn recheck_eviction_every(&self, every: Duration) -> Option<tokio::task::AbortHandle> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let every = every.clamp(SHORTEST_RECHECK, LONGEST_RECHECK);
        let current = Arc::clone(&self.current);
        let recheck = self.recheck(self.client.get_connection_info().addr().to_string());
        let task = runtime.spawn(async move {
            let conn = || {
                current
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            };
            let mut evictions = Evictions::default();
            recheck.count_evictions(conn(), &mut evictions).await;
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                recheck.run(conn()).await;
                recheck.count_evictions(conn(), &mut evictions).await;
            }
        });
        Some(task.abort_handle())
    }

    /// What a check of the eviction policy at `addr` needs, for a task of its own.
    fn recheck(&self, addr: String) -> Recheck {
        Recheck {
            addr,
            risk: self.risk,
            timeout: self.timeout,
            errors: Arc::clone(&self.eviction_errors),
            start: self.start,
        }
    }
}

impl Drop for RedisConnection {
    fn drop(&mut self) {
        if let Some(rechecks) = &self.rechecks {
            rechecks.abort();
        }
    }
}

/// A check of the eviction policy of the Redis at `addr` (host:port, never the URL), made
/// after start-up for a store that does not allow eviction.
struct Recheck {
    addr: String,
    risk: EvictionRisk,
    /// How long the reply may take.
    timeout: Duration,
    errors: Arc<Throttled>,
    start: Instant,
}

impl Recheck {
    /// Asks the policy on `conn` within the store's timeout ([`recheck_eviction`]); an
    /// evicting one the store does not allow is reported ([`report_evicting`]).
    async fn run(&self, mut conn: ConnectionManager) {
        let (risk, addr) = (&self.risk, self.addr.as_str());
        let check = async {
            if let Some(policy) = recheck_eviction(&mut conn, risk, addr).await {
                report_evicting(&self.errors, ms_since(self.start), risk, addr, &policy);
            }
        };
        if tokio::time::timeout(self.timeout, check).await.is_err() {
            tracing::debug!(
                target: "hardening",
                store = risk.store,
                redis = addr,
                "no reply to the eviction check within the store's timeout"
            );
        }
    }

    /// Reads the server's count of evicted keys on `conn` within the store's timeout; keys
    /// evicted since the last count are reported as an error (at most once a minute). The
    /// first count, one from another server or another run of it (its `run_id` differs: a
    /// restart, or another server behind a proxy, reached by a replaced connection), and one
    /// lower than the last, is kept as the new base. (Only made for a store that does not
    /// allow eviction: see [`RedisConnection::connect`].)
    async fn count_evictions(&self, mut conn: ConnectionManager, seen: &mut Evictions) {
        let Ok(Some((run, count))) =
            tokio::time::timeout(self.timeout, evicted_keys(&mut conn)).await
        else {
            return;
        };
        let last = seen.last.replace((run.clone(), count));
        let Some(evicted) = last
            .filter(|(last_run, _)| *last_run == run)
            .and_then(|(_, last)| count.checked_sub(last))
            .filter(|&n| n > 0)
        else {
            return;
        };
        match seen.errors.due(ms_since(self.start)) {
            Some(unlogged) => log_evicted(&self.risk, &self.addr, evicted, unlogged),
            None => tracing::debug!(
                target: "hardening",
                store = self.risk.store,
                redis = self.addr.as_str(),
                evicted_keys = evicted,
                "the Redis evicted keys again (an error at most once a minute)"
            ),
        }
    }
}

/// What the periodic check knows of the server's evicted keys.
#[derive(Default)]
struct Evictions {
    /// The server's `run_id` and `evicted_keys` at the last count.
    last: Option<(String, u64)>,
    /// The errors about evicted keys, at most one a [`LOG_EVERY_MS`].
    errors: Throttled,
}

/// `error`, from connecting to `client`'s server: a failure to reach it (an I/O error) with
/// the server's address in its text (`host:port`, never the URL, which may hold a password),
/// as the stores name it in their logs: "connecting to 127.0.0.1:6379: Connection refused
/// (os error 111)", still an I/O error of the kind its predicates tell
/// ([`RedisError::is_connection_refusal`], [`RedisError::is_timeout`]). Another error (a
/// password refused) is returned as it is.
fn connecting_to(client: &Client, error: RedisError) -> RedisError {
    if !error.is_io_error() {
        return error;
    }
    let kind = if error.is_connection_refusal() {
        io::ErrorKind::ConnectionRefused
    } else if error.is_timeout() {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::Other
    };
    let addr = client.get_connection_info().addr();
    io::Error::new(kind, format!("connecting to {addr}: {error}")).into()
}

/// Milliseconds since `start`, plus one (0 stands for "never" in the atomics).
fn ms_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// A check after start-up found the Redis with an evicting `policy` the store does not allow,
/// at `now` (ms since the connection's `start`, plus one): an error if one is due (see
/// [`log_evicting`]), else a debug line. `Some(findings left unlogged before it)` when the
/// error was logged.
fn report_evicting(
    errors: &Throttled,
    now: u64,
    risk: &EvictionRisk,
    addr: &str,
    policy: &str,
) -> Option<u64> {
    let Some(unlogged) = errors.due(now) else {
        tracing::debug!(
            target: "hardening",
            store = risk.store,
            redis = addr,
            maxmemory_policy = policy,
            "the Redis was found evicting again (an error at most once a \
             minute)"
        );
        return None;
    };
    log_evicting(risk, addr, policy, unlogged);
    Some(unlogged)
}

/// The stores' readiness check: a `PING` over their connection.
pub(crate) mod readiness;

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(limit_ms: u64) -> Silence {
        Silence {
            limit_ms,
            since: AtomicU64::new(0),
        }
    }

    #[test]
    fn a_connection_is_replaced_after_a_silence_only() {
        let s = silence(2_000);
        // Timeouts with answers in between: never silent for 2 s.
        for t in (1..20_000).step_by(500) {
            assert_eq!(s.timed_out(t), None, "timed out at {t} ms");
            s.answered();
        }
        // Timeouts only: the one 2 s after the first replaces it, once.
        let start = 30_001;
        assert_eq!(s.timed_out(start), None, "the first of a silence");
        assert_eq!(s.timed_out(start + 1_999), None);
        assert_eq!(s.timed_out(start + 2_000), Some(2_000));
        assert_eq!(
            s.timed_out(start + 2_001),
            None,
            "the next timeout starts a new silence"
        );
        assert_eq!(s.timed_out(start + 4_000), None);
        assert_eq!(s.timed_out(start + 4_001), Some(2_000));
        // An answer ends a silence however long it was.
        assert_eq!(s.timed_out(50_001), None);
        s.answered();
        assert_eq!(s.timed_out(60_001), None, "a new silence, not the old one");
    }

    #[test]
    fn replacements_are_warned_about_at_most_once_a_minute() {
        let warnings = Throttled::default();
        assert_eq!(warnings.due(1), Some(0), "the first is warned about");
        assert_eq!(warnings.due(2_001), None);
        assert_eq!(warnings.due(59_999), None);
        assert_eq!(
            warnings.due(60_001),
            Some(2),
            "a minute after the last warning, with the two left unlogged"
        );
        assert_eq!(warnings.due(60_002), None);
        assert_eq!(warnings.due(200_000), Some(1));
        assert_eq!(warnings.due(260_000), Some(0));
    }

    /// An evicting Redis whose connections kept going silent was logged as an error at every
    /// replacement, which can come every few seconds: now at most once a minute, counting
    /// the findings in between.
    #[test]
    fn an_evicting_redis_is_logged_as_an_error_at_most_once_a_minute() {
        let risk = EvictionRisk {
            store: "rate limits",
            loss: "buckets",
            loosening: "RedisLimiterBuilder::dangerous_allow_eviction",
        };
        let errors = Throttled::default();
        let report = |now| report_evicting(&errors, now, &risk, "127.0.0.1:6379", "allkeys-lru");
        assert_eq!(report(1), Some(0), "the first is logged");
        assert_eq!(report(3_001), None, "a replacement 3 s later");
        assert_eq!(report(6_001), None);
        assert_eq!(
            report(60_001),
            Some(2),
            "a minute after the last error, with the two left unlogged"
        );
        assert_eq!(report(63_001), None);
    }
}
