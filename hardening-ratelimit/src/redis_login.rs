//! The login throttle's Redis store (feature `redis`): one count of login failures shared by
//! every instance of a service, by the rules of [`LoginThrottle`].

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hardening_errors::{
    EvictionRisk, LateReplies, OutageWords, RedisBreaker, RedisConnection, RedisOutageLog,
    RedisStartError, RedisStoreSettings, WarnOnce,
};
use hmac::{Hmac, Mac};
use redis::Script;
use sha2::Sha256;

use crate::LoginThrottle;
use crate::limiter::{SUBSCRIBER_PREFIX, client_group};
use crate::login::{LoginRefused, LoginRules, MemoryCharge, account_key};
use crate::redis_outcome::{answered, failed, start_up_within};
use crate::redis_store::late_reply;

/// One login attempt, on the server's clock (ms): let through if none of its three counts
/// is locked out, and then counted as a failure of each, in one step. KEYS: the account from
/// this client, the account from all clients, the client (a hash each: `f` failures, `l` the
/// end of its lockout, `t` its last failure), and where the hash key's fingerprint is kept.
/// ARGV: each count's free failures, the first lockout and the longest (ms), how long a count
/// lasts after its last failure (ms), this instance's fingerprint.
///
/// First, the fingerprint: written when it is missing (Redis restarted without persistence,
/// or the key was deleted), so that an instance with another key cannot start then and count
/// under names of its own; when it is another instance's, nothing is counted and the reply is
/// `{2}`. Checked here, in the attempt's own round trip, so that it holds for as long as the
/// instance runs, not only at start-up.
///
/// As [`LoginThrottle`] counts: a count idle that long starts again from zero; past its free
/// failures, each failure locks it out for the first lockout × 2^(failures past the free
/// ones, less one), the multiplier at most 2^32 - 1, and the lockout at most the longest. A
/// key expires when its count would be forgotten and its lockout is over, whichever is last.
///
/// Returns `{2}` for another instance's fingerprint, `{0, ms to wait}` when a count is locked
/// out (nothing is counted either), else `{1, now}` and, for each count's key, whether it was
/// there before (1 or 0), its `f`, `l` and `t` before the charge (0 when it was not) and
/// after it: what a take-back needs.
///
/// Numbers stay under 2^53 ms, which a Lua number holds exactly: lockouts are capped at
/// [`LONGEST_MS`] by the caller, and written with `%d` (not Lua's `%.14g`, which would round).
const ATTEMPT: &str = r"
local fingerprint = redis.call('GET', KEYS[4])
if not fingerprint then
  redis.call('SET', KEYS[4], ARGV[7])
elseif fingerprint ~= ARGV[7] then
  return {2}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local first = tonumber(ARGV[4])
local longest = tonumber(ARGV[5])
local forget = tonumber(ARGV[6])
local found = {}
local wait = 0
for i = 1, 3 do
  local v = redis.call('HMGET', KEYS[i], 'f', 'l', 't')
  if v[1] then
    found[i] = {tonumber(v[1]), tonumber(v[2]), tonumber(v[3])}
    wait = math.max(wait, found[i][2] - now)
  end
end
if wait > 0 then return {0, wait} end
local out = {1, now}
for i = 1, 3 do
  local f, l, last = 0, now, now
  local e = found[i]
  if e then
    f, l, last = e[1], e[2], e[3]
    for _, x in ipairs({1, f, l, last}) do table.insert(out, x) end
  else
    for _, x in ipairs({0, 0, 0, 0}) do table.insert(out, x) end
  end
  if now - last >= forget then f = 0 end
  f = math.min(f + 1, 4294967295)
  last = now
  local excess = f - tonumber(ARGV[i]) - 1
  if excess >= 0 then
    local times = 4294967295
    if excess < 32 then times = 2 ^ excess end
    l = now + math.min(first * times, longest)
  end
  redis.call('HSET', KEYS[i], 'f', string.format('%d', f), 'l', string.format('%d', l),
    't', string.format('%d', last))
  redis.call('PEXPIREAT', KEYS[i], string.format('%d', math.max(last + forget, l)))
  for _, x in ipairs({f, l, last}) do table.insert(out, x) end
end
return out
";

/// Takes an attempt's charge back from its counts, on the server's clock (ms), as
/// [`LoginThrottle`] does. KEYS: the attempt's three (as [`ATTEMPT`]'s). ARGV: how long a
/// count lasts after its last failure (ms); then, for each key, nine values: what to do (`1`:
/// take the charge back; `2`: delete the count, a success clearing the account's), its free
/// failures, whether it was there before the charge (`1` or `0`), its `f`, `l` and `t` before
/// the charge and right after it.
///
/// A count still as the charge left it is put back as it was (deleted if it was not there);
/// one charged again since loses one failure (its lockout ending at its last failure once
/// back within its free ones), and goes at zero. A count put back expires as [`ATTEMPT`]'s do.
const TAKE_BACK: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local forget = tonumber(ARGV[1])
local function keep(key, f, l, last)
  local ends = math.max(last + forget, l)
  if f <= 0 or ends <= now then
    redis.call('DEL', key)
    return
  end
  redis.call('HSET', key, 'f', string.format('%d', f), 'l', string.format('%d', l),
    't', string.format('%d', last))
  redis.call('PEXPIREAT', key, string.format('%d', ends))
end
for i = 1, #KEYS do
  local a = 1 + (i - 1) * 9
  local n = function(j) return tonumber(ARGV[a + j]) end
  if ARGV[a + 1] == '2' then
    redis.call('DEL', KEYS[i])
  else
    local v = redis.call('HMGET', KEYS[i], 'f', 'l', 't')
    if v[1] then
      local f, l, last = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
      if f == n(7) and l == n(8) and last == n(9) then
        if ARGV[a + 3] == '1' then
          keep(KEYS[i], n(4), n(5), n(6))
        else
          redis.call('DEL', KEYS[i])
        end
      else
        f = math.max(f - 1, 0)
        if f <= n(2) then l = math.min(l, last) end
        keep(KEYS[i], f, l, last)
      end
    end
  end
end
return 1
";

/// The longest lockout Redis counts, in ms (2^52, about 142 000 years): the end of a lockout
/// from now stays under 2^53, which a Lua number holds exactly. A longer one is this long.
const LONGEST_MS: u64 = 1 << 52;

/// The shortest hash key [`RedisLoginThrottleBuilder::connect`] takes, in bytes.
pub const MIN_HASH_KEY_LEN: usize = 32;

/// What eviction costs the login throttle, for the start-up warnings.
const EVICTION_RISK: EvictionRisk = EvictionRisk {
    store: "login throttling",
    loss: "failure counts under memory pressure, and an evicted count gives a password guesser \
           its free attempts again",
    loosening: "RedisLoginThrottleBuilder::dangerous_allow_eviction",
};

/// What the login throttle says of an outage of its Redis (see [`RedisOutageLog`]).
const OUTAGE_WORDS: OutageWords = OutageWords {
    store: EVICTION_RISK.store,
    name: "login throttle",
    failing: "down, erroring, or slower than the store's timeout",
    asker: "attempt",
    back: "attempts are counted in Redis",
};

/// Why a [`RedisLoginThrottle`] could not be built.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum RedisLoginError {
    /// The hash key is shorter than [`MIN_HASH_KEY_LEN`] bytes (the length given).
    #[error(
        "the login throttle's hash key is {0} bytes: give it at least 32 random bytes (e.g. \
         `openssl rand -base64 32`), the same on every instance, kept secret like a session \
         key (account names are stored in Redis only as keyed hashes under it)"
    )]
    HashKeyTooShort(usize),
    /// Another instance counts under this prefix with another hash key: each would count
    /// the same account under keys of its own, a budget of guesses each.
    #[error(
        "another instance throttles logins in this Redis under the prefix `{0}` with a \
         different hash key, so each would count its own failures: give every instance the \
         same key; to change it, use a new prefix (the old counts expire within the hour). \
         If every instance running has this key, the fingerprint in Redis is stale (left by \
         an instance with another key, since stopped or given this one): delete \
         `{{{0}}}:hash-key`"
    )]
    HashKeyMismatch(String),
    /// A prefix that is empty or holds a brace (the prefix given).
    #[error(
        "the login throttle's prefix `{0}` is empty or holds `{{` or `}}`: its keys are \
         `{{prefix}}:…`, the prefix in braces being their Redis Cluster hash tag; use letters, \
         digits, `:`, `-` or `_` (default `hardening:login`)"
    )]
    InvalidPrefix(String),
    /// A zero timeout: every attempt would give up on Redis before its reply.
    #[error(
        "the login throttle's Redis timeout is zero: every login would give up on Redis before \
         its reply and be refused (503); use the default (100 ms) or a few round trips to Redis"
    )]
    ZeroTimeout,
    /// The URL is not a Redis URL (it is not repeated here: it may hold a password).
    #[error("invalid Redis URL for login throttling (expected redis://[:password@]host:port/db)")]
    InvalidUrl,
    /// Redis did not answer at start-up.
    #[error(
        "cannot reach Redis for login throttling at start-up: {0}; check the URL and that the \
         server is running"
    )]
    Unreachable(#[source] redis::RedisError),
    /// Redis may evict keys under memory pressure (its `maxmemory-policy`, named here, is
    /// not `noeviction`): an evicted count gives a guesser its free attempts again.
    #[error(
        "the Redis for login throttling evicts keys under memory pressure (maxmemory-policy \
         {0}), and an evicted count gives a password guesser its free attempts again: set \
         maxmemory-policy noeviction on this Redis, or use a dedicated Redis \
         (RedisLoginThrottleBuilder::dangerous_allow_eviction() accepts it anyway)"
    )]
    EvictingPolicy(String),
}

hardening_errors::debug_as_message!(RedisLoginError);

impl RedisLoginError {
    /// The login throttle's words for why its settings could not start it.
    fn from_start(error: RedisStartError) -> Self {
        match error {
            RedisStartError::ZeroTimeout => Self::ZeroTimeout,
            // The reason is left out, as it always was.
            RedisStartError::InvalidUrl(_) => Self::InvalidUrl,
            RedisStartError::Unreachable(e) => Self::Unreachable(e),
        }
    }
}

/// Builds a [`RedisLoginThrottle`]; see [`RedisLoginThrottle::builder`]. Nothing is checked
/// until [`connect`](Self::connect).
#[must_use]
pub struct RedisLoginThrottleBuilder {
    settings: RedisStoreSettings,
    hash_key: Vec<u8>,
    rules: LoginThrottle,
    fall_back_to_memory: bool,
    /// How long a charge nobody waits for any more is waited for: see [`late_reply`], unless
    /// a test sets it.
    late_reply: Option<Duration>,
}

// By hand: neither the hash key nor the URL's password is printed.
impl fmt::Debug for RedisLoginThrottleBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut builder = f.debug_struct("RedisLoginThrottleBuilder");
        self.settings.debug_fields(&mut builder);
        builder
            .field("hash_key_len", &self.hash_key.len())
            .field("rules", &self.rules)
            .field("fall_back_to_memory", &self.fall_back_to_memory)
            .finish_non_exhaustive()
    }
}

impl RedisLoginThrottleBuilder {
    /// The rules to count by: a [`LoginThrottle`]'s free attempts and lockouts (default
    /// [`LoginThrottle::new`]'s). With
    /// [`dangerous_fall_back_to_memory`](Self::dangerous_fall_back_to_memory), this throttle
    /// also counts the attempts made while Redis is away.
    pub fn rules(mut self, rules: LoginThrottle) -> Self {
        self.rules = rules;
        self
    }

    /// The start of every key (default `hardening:login`): the keys are `{prefix}:account:…`,
    /// `{prefix}:pair:…` (the account from one client), `{prefix}:ip:…` and
    /// `{prefix}:hash-key` (which tells whether every instance hashes with the same key),
    /// the prefix in braces: the Redis Cluster hash tag of all of them, as each attempt's
    /// script touches three at once. Letters, digits and punctuation but braces; not empty.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.settings.set_prefix(prefix);
        self
    }

    /// How long an attempt may wait for Redis before it is refused with a 503 (or counted in
    /// memory, see [`dangerous_fall_back_to_memory`](Self::dangerous_fall_back_to_memory));
    /// default 100 ms. A charge Redis makes after that is taken back when its reply comes, up
    /// to a minute late (or ten of these timeouts, if longer): a login refused for want of
    /// Redis is not counted. Start-up waits no longer than this either. Zero is refused by
    /// [`connect`](Self::connect).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.set_timeout(timeout);
        self
    }

    /// After `failures` consecutive failures, stop asking Redis for `cool_down` (default 5
    /// failures, 2 s): a dead Redis must not add a timeout to every login. Then one attempt
    /// asks whether it is back; the others are refused (or counted in memory) until it
    /// answers. Each outage is logged as every Redis store logs it (see
    /// [`RedisStoreSettings`]).
    pub fn circuit_breaker(mut self, failures: u32, cool_down: Duration) -> Self {
        self.settings.set_circuit_breaker(failures, cool_down);
        self
    }

    /// **Loosens**: accepts a Redis whose `maxmemory-policy` evicts keys (a shared cache,
    /// say). Under memory pressure, which many distinct clients can cause, it may drop
    /// counts, and a dropped count is a fresh budget of guesses. Logs a warning at start-up
    /// when the policy found evicts.
    pub fn dangerous_allow_eviction(mut self) -> Self {
        self.settings.dangerous_allow_eviction();
        self
    }

    /// **Loosens**: while Redis is away (down, slow, or the breaker open), count attempts in
    /// this process, by the [`rules`](Self::rules), instead of refusing them with a 503. Each
    /// instance then counts its own: a guesser spread across N instances gets up to N times
    /// the free attempts during the outage. Logged at start-up, and with each outage.
    pub fn dangerous_fall_back_to_memory(mut self) -> Self {
        self.fall_back_to_memory = true;
        self
    }

    /// How long a charge nobody waits for any more is waited for, instead of a minute (or
    /// ten timeouts, if longer): for tests, which cannot wait a minute.
    #[doc(hidden)]
    pub fn late_reply(mut self, late_reply: Duration) -> Self {
        self.late_reply = Some(late_reply);
        self
    }

    /// See [`RedisStoreSettings::set_eviction_recheck_every`]: for tests.
    #[doc(hidden)]
    pub fn eviction_recheck_every(mut self, every: Duration) -> Self {
        self.settings.set_eviction_recheck_every(every);
        self
    }

    /// Connects (multiplexed, reconnecting in the background), loads the scripts, asks the
    /// server's `maxmemory-policy`, and checks that every instance counting under this
    /// prefix hashes with the same key (the first to connect leaves a keyed fingerprint of
    /// it, `{prefix}:hash-key`, which tells nothing of the key). Fails now, not at the first
    /// login. When the server does not let us ask its eviction policy (`CONFIG` disabled or
    /// renamed, as on many managed services), logs a warning and goes on.
    ///
    /// The check holds for the throttle's whole life: each attempt's script checks the
    /// fingerprint too, in the same round trip, and writes it again when Redis lost it (a
    /// restart without persistence, a flush). When another instance's is there (it wrote
    /// first after the loss), the attempt counts nothing and is refused as in an outage
    /// ([`LoginRefused::Unavailable`], a 503, even with
    /// [`dangerous_fall_back_to_memory`](Self::dangerous_fall_back_to_memory)), and the
    /// throttle logs one error naming the fix. So at most one key counts under a prefix at
    /// any time. The fingerprint has no expiry: it must outlive every count made under it (a
    /// lockout may last far longer than the hour a count is kept), and a key without one is
    /// never evicted by a `volatile-*` policy; it is one small key per prefix.
    ///
    /// # Errors
    ///
    /// In the order checked: [`RedisLoginError::HashKeyTooShort`],
    /// [`RedisLoginError::InvalidPrefix`], [`RedisLoginError::ZeroTimeout`] (no connection
    /// tried); [`RedisLoginError::InvalidUrl`]; [`RedisLoginError::Unreachable`] when Redis
    /// refuses, fails or does not answer within the [timeout](Self::timeout);
    /// [`RedisLoginError::EvictingPolicy`] and [`RedisLoginError::HashKeyMismatch`].
    pub async fn connect(self) -> Result<RedisLoginThrottle, RedisLoginError> {
        if self.hash_key.len() < MIN_HASH_KEY_LEN {
            return Err(RedisLoginError::HashKeyTooShort(self.hash_key.len()));
        }
        let settings = &self.settings;
        let prefix = settings.prefix();
        if prefix.is_empty() || prefix.contains(['{', '}']) {
            return Err(RedisLoginError::InvalidPrefix(prefix.to_owned()));
        }
        let timeout = settings.timeout();
        // As the rate limiter's store: a charge Redis makes late still reaches the task that
        // takes it back.
        let connection = settings
            .connect(LateReplies::Awaited)
            .await
            .map_err(RedisLoginError::from_start)?;
        let names = KeyNames::new(&self.hash_key, prefix);
        let attempt = Script::new(ATTEMPT);
        let take_back = Script::new(TAKE_BACK);
        let mut conn = connection.get();
        let start_up = async {
            attempt.load_async(&mut conn).await?;
            take_back.load_async(&mut conn).await?;
            let evicting = settings.check_eviction(&mut conn).await?;
            if evicting.is_err() {
                // Refused: nothing written to it.
                return Ok((evicting, true));
            }
            // The first instance leaves its fingerprint; the others find it (and each attempt
            // writes it again when Redis lost it, see `ATTEMPT`).
            redis::cmd("SET")
                .arg(&names.hash_key_check)
                .arg(&names.fingerprint)
                .arg("NX")
                .query_async::<Option<String>>(&mut conn)
                .await?;
            let found: Option<String> = redis::cmd("GET")
                .arg(&names.hash_key_check)
                .query_async(&mut conn)
                .await?;
            let same_key = found.as_deref() == Some(names.fingerprint.as_str());
            Ok::<_, redis::RedisError>((evicting, same_key))
        };
        let (evicting, same_key) = start_up_within(timeout, start_up)
            .await
            .map_err(RedisLoginError::Unreachable)?;
        evicting.map_err(RedisLoginError::EvictingPolicy)?;
        if !same_key {
            return Err(RedisLoginError::HashKeyMismatch(prefix.to_owned()));
        }
        if self.fall_back_to_memory {
            tracing::warn!(
                target: "hardening",
                setting = "RedisLoginThrottleBuilder::dangerous_fall_back_to_memory",
                "hardening loosened: while its Redis is away, the login throttle counts \
                 failures in each instance's memory: a guesser spread across N instances gets \
                 up to N times the free attempts"
            );
        }
        let rules = self.rules.rules();
        let meanwhile = if self.fall_back_to_memory {
            "each instance counts login failures in its own memory \
             (dangerous_fall_back_to_memory)"
        } else {
            "every login attempt is refused with a 503"
        };
        let addr = connection.addr();
        Ok(RedisLoginThrottle(Arc::new(Inner {
            conn: connection,
            attempt,
            take_back,
            names,
            rules,
            fallback: self.fall_back_to_memory.then_some(self.rules),
            timeout,
            late_reply: late_reply(self.late_reply, timeout),
            breaker: settings.breaker(),
            outage: RedisOutageLog::new(OUTAGE_WORDS, addr, meanwhile),
            warned_take_back: WarnOnce::new(),
            logged_other_hash_key: WarnOnce::new(),
        })))
    }
}

/// [`LoginThrottle`]'s counts in Redis, shared by every instance of a service: a client
/// spreading its guesses across N instances gets the free attempts once, not N times.
///
/// The same rules as [`LoginThrottle`] (given by [`rules`](RedisLoginThrottleBuilder::rules)):
/// each failure counted against the account from this client, the account from all clients,
/// and the client; a lockout past each one's free failures; one call per attempt, before the
/// password is checked, which lets the attempt through and counts it as a failure in the
/// same step; a success clearing the account's counts.
///
/// - **One script per attempt, one round trip**, touching its three counts at once, so that
///   every rule holds across instances as within one: attempts sent at once to several
///   instances cannot all pass before the first is counted. The three keys share a Redis
///   Cluster hash tag, the prefix in braces (`{hardening:login}:…`), so the script runs on
///   one node; the rate limiter's store instead touches one key per call, which is enough
///   for its policies, each decided on its own. (Like that store, this one connects to one
///   server and follows no Cluster redirection.)
/// - **No account name in Redis**: the account and the account from one client are keyed
///   hashes (HMAC-SHA256, cut to 128 bits) under the hash key given to
///   [`builder`](Self::builder), which every instance must share (checked at start-up, and
///   by each attempt: see [`connect`](RedisLoginThrottleBuilder::connect)) and which comes
///   from your configuration, never from the process. The client's key is its
///   address, grouped as [`LoginThrottle`] groups it (IPv6 by /64).
/// - **Server time** (`TIME` in the script, in ms): instances with skewed clocks agree.
/// - **Every count expires on its own**, when it would be forgotten (an hour after its last
///   failure) or its lockout ends, whichever is last. Run Redis with
///   `maxmemory-policy noeviction`: [`connect`](RedisLoginThrottleBuilder::connect) refuses
///   another unless [`dangerous_allow_eviction`](RedisLoginThrottleBuilder::dangerous_allow_eviction).
///   Each count costs Redis about 200 bytes for that hour (an attempt from a new client on a
///   new account name makes three): give it the memory (a full Redis refuses the writes, and
///   logins fail closed).
/// - **Redis away** (down, slower than the [timeout](RedisLoginThrottleBuilder::timeout), or
///   the circuit breaker open): the attempt is refused, [`LoginRefused::Unavailable`], a 503
///   with `Retry-After` (the breaker's cool-down, at least a second): no guess goes uncounted.
///   [`dangerous_fall_back_to_memory`](RedisLoginThrottleBuilder::dangerous_fall_back_to_memory)
///   counts in each instance's memory instead. Once Redis answers again, so does the store.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::net::IpAddr;
/// use hardening_ratelimit::{LoginThrottle, RedisLoginThrottle};
///
/// // The same random key on every instance, from your secrets (at least 32 bytes).
/// let hash_key = std::env::var("LOGIN_THROTTLE_KEY")?;
/// let throttle = RedisLoginThrottle::builder("redis://10.0.0.5:6379/", hash_key.as_bytes())
///     .rules(LoginThrottle::new().free_attempts(5, 20))
///     .connect()
///     .await?;
///
/// // In the login handler, before the password is checked:
/// let ip: IpAddr = "203.0.113.9".parse()?;
/// match throttle.attempt("alice@example.com", ip).await {
///     Ok(attempt) => {
///         let password_is_right = false; // … check the password …
///         if password_is_right {
///             attempt.succeeded().await;
///         } else {
///             attempt.failed();
///         }
///     }
///     // A 429 while locked out, a 503 while Redis is away: both problems with Retry-After.
///     Err(refused) => {
///         let _response = axum::response::IntoResponse::into_response(refused);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisLoginThrottle(Arc<Inner>);

struct Inner {
    conn: RedisConnection,
    attempt: Script,
    take_back: Script,
    names: KeyNames,
    rules: LoginRules,
    /// Counts attempts while Redis is away (`dangerous_fall_back_to_memory`).
    fallback: Option<LoginThrottle>,
    timeout: Duration,
    /// How long a charge nobody waits for any more is waited for (see
    /// [`LATE_REPLY`](crate::redis_store::LATE_REPLY)).
    late_reply: Duration,
    breaker: RedisBreaker,
    /// Logs the breaker's opening and Redis answering again, naming the server's `host:port`
    /// (never the URL), which the other lines name too.
    outage: RedisOutageLog,
    /// Whether the warning that a charge could not be taken back was logged.
    warned_take_back: WarnOnce,
    /// Whether the error that another instance counts with another hash key was logged.
    logged_other_hash_key: WarnOnce,
}

impl fmt::Debug for RedisLoginThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.0;
        f.debug_struct("RedisLoginThrottle")
            .field("rules", &inner.rules)
            .field("prefix", &inner.names.tag)
            .field("timeout", &inner.timeout)
            .field("fall_back_to_memory", &inner.fallback.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisLoginThrottle {
    /// Starts a builder for a Redis at `url` (`redis://127.0.0.1:6379/`), hashing account
    /// names with `hash_key`: at least [`MIN_HASH_KEY_LEN`] random bytes, the same on every
    /// instance (from your secrets, never generated at start-up: another instance's counts
    /// would be under other names). Changing it starts every count afresh.
    pub fn builder(url: &str, hash_key: &[u8]) -> RedisLoginThrottleBuilder {
        RedisLoginThrottleBuilder {
            settings: RedisStoreSettings::new(
                url,
                EVICTION_RISK,
                "hardening:login",
                Duration::from_millis(100),
            ),
            hash_key: hash_key.to_vec(),
            rules: LoginThrottle::new(),
            fall_back_to_memory: false,
            late_reply: None,
        }
    }

    /// Lets a login attempt through, or says why not; one call per attempt, before the
    /// password is checked, as [`LoginThrottle::attempt`]: the attempt is counted as a
    /// failure of its three counts in the same step (atomically, across instances). Call
    /// `succeeded()` on the returned [`RedisLoginAttempt`] when the password is right, or
    /// `failed()` (or drop it) when it is not.
    ///
    /// # Errors
    ///
    /// [`LoginRefused::LockedOut`] while a count is locked out (nothing is counted then);
    /// [`LoginRefused::Unavailable`] when Redis cannot count it (unless the throttle falls
    /// back to memory).
    pub async fn attempt(
        &self,
        account: &str,
        ip: IpAddr,
    ) -> Result<RedisLoginAttempt, LoginRefused> {
        let inner = &*self.0;
        if inner.breaker.lets_through() {
            let throttle = self.clone();
            let keys = inner.names.of(account, ip);
            // On a task of its own: a charge Redis makes once this future has given up (the
            // store's timeout) or been dropped is handed to nobody, and taken back.
            let charging = tokio::spawn(async move { throttle.charge(keys).await });
            match tokio::time::timeout(inner.timeout, charging).await {
                Ok(Ok(Ok(counted))) => {
                    inner.answered();
                    return match counted {
                        Ok(unclaimed) => Ok(RedisLoginAttempt {
                            throttle: self.clone(),
                            charge: Charge::Redis(unclaimed.claim()),
                        }),
                        Err(NotCounted::LockedOut(wait)) => Err(LoginRefused::LockedOut(wait)),
                        Err(NotCounted::OtherHashKey) => Err(inner.other_hash_key()),
                    };
                }
                Ok(Ok(Err(StoreError::Timeout))) | Err(_) => inner.failed(true),
                Ok(Ok(Err(StoreError::Redis)) | Err(_)) => inner.failed(false),
            }
        }
        self.degraded(account, ip)
    }

    /// A readiness check for `/readyz` (`hardening_core::Health::check`): each run sends
    /// `PING` over this throttle's own connection, within its
    /// [timeout](RedisLoginThrottleBuilder::timeout), and fails (naming the server's address,
    /// never the URL) when Redis does not answer, as
    /// [`RedisLimiter::readiness_check`](crate::RedisLimiter::readiness_check) does.
    pub fn readiness_check(
        &self,
    ) -> impl Fn() -> hardening_errors::RedisReadiness + Clone + Send + Sync + 'static {
        hardening_errors::redis_readiness_check(self.clone(), |throttle| &throttle.0.conn)
    }

    /// Whether the circuit breaker currently keeps attempts away from Redis.
    pub fn breaker_open(&self) -> bool {
        self.0.breaker.is_open()
    }

    /// Redis is away: counted in memory, or refused.
    fn degraded(&self, account: &str, ip: IpAddr) -> Result<RedisLoginAttempt, LoginRefused> {
        let inner = &*self.0;
        let Some(memory) = &inner.fallback else {
            return Err(LoginRefused::Unavailable(inner.breaker.retry_after()));
        };
        let charge = memory
            .charge_at(account, ip, Instant::now())
            .map_err(LoginRefused::LockedOut)?;
        Ok(RedisLoginAttempt {
            throttle: self.clone(),
            charge: Charge::Memory(charge),
        })
    }

    /// Runs [`ATTEMPT`] on `keys`: `Ok(Err(…))` when it counted nothing.
    async fn charge(&self, keys: [String; 3]) -> Result<Result<Unclaimed, NotCounted>, StoreError> {
        let inner = &*self.0;
        let rules = &inner.rules;
        let mut invocation = inner.attempt.prepare_invoke();
        for key in &keys {
            invocation.key(key);
        }
        invocation
            .key(&inner.names.hash_key_check)
            .arg(rules.pair_free)
            .arg(rules.account_free)
            .arg(rules.ip_free)
            .arg(millis(rules.first_lockout))
            .arg(millis(rules.longest_lockout))
            .arg(millis(rules.forget_after))
            .arg(&inner.names.fingerprint);
        let invocation = &invocation;
        // A charge must not be made twice: sent again only if it was never sent.
        let sending = inner.conn.send_once(|mut conn| async move {
            invocation.invoke_async::<Vec<i64>>(&mut conn).await
        });
        let reply = tokio::time::timeout(inner.late_reply, sending)
            .await
            .map_err(|_| StoreError::Timeout)?
            .map_err(|_| StoreError::Redis)?;
        match attempt_reply(&reply).ok_or(StoreError::Redis)? {
            Counted::OtherHashKey => Ok(Err(NotCounted::OtherHashKey)),
            Counted::LockedOut(wait) => Ok(Err(NotCounted::LockedOut(wait))),
            Counted::Charged { before, charged } => Ok(Ok(Unclaimed {
                throttle: self.clone(),
                charge: Some(RedisCharge {
                    keys,
                    before,
                    charged,
                }),
            })),
        }
    }

    /// Runs [`TAKE_BACK`] for `charge`, within the store's timeout; a failure is logged once
    /// per throttle (the attempt then stays counted: the strict way to fail).
    async fn take_back(&self, charge: &RedisCharge, outcome: Outcome) {
        let inner = &*self.0;
        let rules = &inner.rules;
        let mut invocation = inner.take_back.prepare_invoke();
        for key in &charge.keys {
            invocation.key(key);
        }
        invocation.arg(millis(rules.forget_after));
        let free = [rules.pair_free, rules.account_free, rules.ip_free];
        for (i, (before, charged)) in charge.before.iter().zip(&charge.charged).enumerate() {
            // The account's counts, from this client and from all, go with a success.
            let clear = outcome == Outcome::Succeeded && i < 2;
            let before_or_zero = before.unwrap_or_default();
            invocation
                .arg(if clear { 2 } else { 1 })
                .arg(free[i])
                .arg(u8::from(before.is_some()))
                .arg(before_or_zero.failures)
                .arg(before_or_zero.locked_until)
                .arg(before_or_zero.last_failure)
                .arg(charged.failures)
                .arg(charged.locked_until)
                .arg(charged.last_failure);
        }
        let invocation = &invocation;
        // Not run twice: a second run would take a second failure back.
        let sending = inner
            .conn
            .send_once(|mut conn| async move { invocation.invoke_async::<i64>(&mut conn).await });
        let error = match tokio::time::timeout(inner.timeout, sending).await {
            Ok(Ok(_)) => {
                inner.conn.answered();
                return;
            }
            Ok(Err(e)) => {
                inner.conn.answered();
                e.code()
                    .unwrap_or(if e.is_io_error() { "io" } else { "error" })
                    .to_owned()
            }
            Err(_) => {
                inner.conn.timed_out();
                "timeout".to_owned()
            }
        };
        self.warn_take_back_failed(outcome, &error);
    }

    /// A charge could not be taken back: says so, once per throttle (never the keys).
    #[cold]
    fn warn_take_back_failed(&self, outcome: Outcome, error: &str) {
        let inner = &*self.0;
        if !inner.warned_take_back.first() {
            return;
        }
        let addr = inner.outage.addr();
        let what = match outcome {
            Outcome::Succeeded => "a successful login's clearing of its account's counts",
            Outcome::NotChecked => {
                "taking back the charge of an attempt whose password was not checked"
            }
        };
        tracing::warn!(
            target: "hardening",
            store = EVICTION_RISK.store,
            redis = %addr,
            error,
            "login throttle: {what} failed in Redis at {addr} ({error}); the attempt stays \
             counted as a failure. Logged once per throttle"
        );
    }
}

impl Inner {
    /// Redis answered: tells the connection and the breaker, and logs the end of an outage.
    fn answered(&self) {
        answered(&self.conn, &self.breaker, &self.outage);
    }

    /// Redis did not answer in time or answered an error (`timed_out`: no reply at all):
    /// tells the connection and the breaker, and logs the start of an outage, once.
    fn failed(&self, timed_out: bool) {
        failed(&self.conn, &self.breaker, &self.outage, timed_out);
    }

    /// Another instance's fingerprint is in Redis (it wrote it first after Redis lost ours):
    /// the attempt is refused as in an outage, even with the memory fallback, which would
    /// count apart for as long as the keys differ. Logged once per throttle, as an error
    /// naming the fix (never the key, nor either fingerprint).
    #[cold]
    fn other_hash_key(&self) -> LoginRefused {
        if self.logged_other_hash_key.first() {
            let addr = self.outage.addr();
            let check = &self.names.hash_key_check;
            tracing::error!(
                target: "hardening",
                store = EVICTION_RISK.store,
                redis = %addr,
                "login throttle: another instance uses a different hash key under `{check}` in \
                 Redis at {addr} (it wrote its fingerprint first, after Redis lost ours): give \
                 every instance the same LOGIN_THROTTLE key. Until then every login attempt \
                 here is refused with a 503. Once every instance has the key, delete \
                 `{check}` if the one left there is not theirs (the next attempt writes it \
                 again). Logged once per instance"
            );
        }
        LoginRefused::Unavailable(self.breaker.retry_after())
    }
}

/// One login attempt that [`RedisLoginThrottle::attempt`] let through, already counted as a
/// failure, as a [`LoginAttempt`](crate::LoginAttempt) is: [`succeeded`](Self::succeeded)
/// takes the charge back (and clears the account's counts), [`failed`](Self::failed) keeps
/// it, [`not_checked`](Self::not_checked) takes it back and clears nothing. Dropped without
/// any, it stays a failure.
#[must_use = "a login attempt counts as a failure unless `succeeded()` or `not_checked()` is called"]
pub struct RedisLoginAttempt {
    throttle: RedisLoginThrottle,
    charge: Charge,
}

// By hand: its keys name the client.
impl fmt::Debug for RedisLoginAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counted_in = match self.charge {
            Charge::Redis(_) => "redis",
            Charge::Memory(_) => "memory",
        };
        f.debug_struct("RedisLoginAttempt")
            .field("counted_in", &counted_in)
            .finish_non_exhaustive()
    }
}

impl RedisLoginAttempt {
    /// The password was right: the account's counts are cleared (from all clients, and from
    /// this client), and the charge this attempt put on the client is taken back, as
    /// [`LoginAttempt::succeeded`](crate::LoginAttempt::succeeded) does. Sent on a task of
    /// its own that this future waits for: dropping the future does not cancel it. If Redis
    /// fails it, the attempt stays a failure (logged once).
    pub async fn succeeded(self) {
        self.end(Outcome::Succeeded).await;
    }

    /// The password was wrong (or the account unknown): the attempt stays counted.
    pub fn failed(self) {}

    /// The password was not checked (the hasher was too busy), as
    /// [`LoginAttempt::not_checked`](crate::LoginAttempt::not_checked): the charge is taken
    /// back from all three counts, and nothing is cleared. Sent as
    /// [`succeeded`](Self::succeeded) is.
    pub async fn not_checked(self) {
        self.end(Outcome::NotChecked).await;
    }

    async fn end(self, outcome: Outcome) {
        let Self { throttle, charge } = self;
        match charge {
            Charge::Memory(charge) => {
                if let Some(memory) = &throttle.0.fallback {
                    match outcome {
                        Outcome::Succeeded => memory.succeeded(&charge),
                        Outcome::NotChecked => memory.not_checked(&charge),
                    }
                }
            }
            Charge::Redis(charge) => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let sending =
                        runtime.spawn(async move { throttle.take_back(&charge, outcome).await });
                    // A panic in the task (none expected) loses only this take-back.
                    let _ = sending.await;
                }
                Err(_) => throttle.warn_take_back_failed(outcome, "no tokio runtime"),
            },
        }
    }
}

/// How an attempt that was let through ended, when its charge is taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    NotChecked,
}

/// Where an attempt was counted.
enum Charge {
    Redis(RedisCharge),
    /// In the throttle's fallback, while Redis was away.
    Memory(MemoryCharge),
}

/// What one attempt charged in Redis: its three keys (as [`ATTEMPT`]'s), and their counts
/// before the charge and right after it.
struct RedisCharge {
    keys: [String; 3],
    before: [Option<Count>; 3],
    charged: [Count; 3],
}

/// One count in Redis (ms, server time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Count {
    failures: i64,
    locked_until: i64,
    last_failure: i64,
}

/// Why [`ATTEMPT`] counted nothing.
#[derive(Debug)]
enum NotCounted {
    /// A count is locked out for this long.
    LockedOut(Duration),
    /// Another instance's fingerprint is in Redis.
    OtherHashKey,
}

/// [`ATTEMPT`]'s reply, read.
#[derive(Debug, PartialEq, Eq)]
enum Counted {
    /// Another instance's fingerprint is in Redis: nothing counted.
    OtherHashKey,
    LockedOut(Duration),
    Charged {
        before: [Option<Count>; 3],
        charged: [Count; 3],
    },
}

/// Reads [`ATTEMPT`]'s reply; `None` for one it does not send.
fn attempt_reply(reply: &[i64]) -> Option<Counted> {
    match reply {
        [2] => Some(Counted::OtherHashKey),
        [0, wait] => Some(Counted::LockedOut(Duration::from_millis(
            u64::try_from(*wait).ok()?,
        ))),
        [1, _now, counts @ ..] if counts.len() == 3 * 7 => {
            let count = |at: &[i64]| Count {
                failures: at[0],
                locked_until: at[1],
                last_failure: at[2],
            };
            let mut before = [None; 3];
            let mut charged = [Count::default(); 3];
            for (i, c) in counts.chunks_exact(7).enumerate() {
                before[i] = (c[0] == 1).then(|| count(&c[1..4]));
                charged[i] = count(&c[4..7]);
            }
            Some(Counted::Charged { before, charged })
        }
        _ => None,
    }
}

/// A charge Redis made, on its way to the attempt that asked for it: dropped before the
/// attempt [claims](Self::claim) it (the attempt gave up at the store's timeout, or was
/// dropped, before the reply came), it is taken back as not checked, on a task of its own.
/// A login refused for want of Redis's answer is not counted.
struct Unclaimed {
    throttle: RedisLoginThrottle,
    charge: Option<RedisCharge>,
}

impl Unclaimed {
    fn claim(mut self) -> RedisCharge {
        self.charge
            .take()
            .unwrap_or_else(|| unreachable!("claimed once, at most"))
    }
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        let Some(charge) = self.charge.take() else {
            return;
        };
        let throttle = self.throttle.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime
                    .spawn(async move { throttle.take_back(&charge, Outcome::NotChecked).await });
            }
            Err(_) => throttle.warn_take_back_failed(Outcome::NotChecked, "no tokio runtime"),
        }
    }
}

#[derive(Debug)]
enum StoreError {
    Redis,
    Timeout,
}

/// `d` in whole ms, rounded up, from 1 to [`LONGEST_MS`].
fn millis(d: Duration) -> u64 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX).clamp(1, LONGEST_MS)
}

/// Names an attempt's counts in Redis: `{prefix}:account:…` and `{prefix}:pair:…`, keyed
/// hashes of the account's [key](LoginThrottle::account_key) (with the client's group, for
/// the pair), and `{prefix}:ip:…`, the client's group.
///
/// The hash is HMAC-SHA256 (RFC 2104) under the hash key, cut to its first 128 bits: two
/// account names share a count with odds of about n² / 2^129, and no one without the hash
/// key can tell which name a key counts, nor aim two names at one key. Its output is fixed
/// by the standard, so every instance, across upgrades, names a count alike.
struct KeyNames {
    /// HMAC-SHA256 keyed with the hash key, before any input: cloned per digest.
    mac: Hmac<Sha256>,
    /// `{prefix}`: the Redis Cluster hash tag of every key.
    tag: String,
    /// `{prefix}:hash-key`: where the first instance to count leaves its
    /// [`fingerprint`](Self::fingerprint).
    hash_key_check: String,
    /// A keyed hash that tells whether two instances hash with the same key, and nothing of
    /// the key.
    fingerprint: String,
}

impl KeyNames {
    fn new(hash_key: &[u8], prefix: &str) -> Self {
        let mut names = Self {
            // HMAC takes a key of any length (a longer one is hashed first).
            mac: <Hmac<Sha256> as Mac>::new_from_slice(hash_key)
                .expect("HMAC accepts keys of any length"),
            tag: format!("{{{prefix}}}"),
            hash_key_check: format!("{{{prefix}}}:hash-key"),
            fingerprint: String::new(),
        };
        names.fingerprint = names.digest(&[b"hash-key"]);
        names
    }

    /// The 128-bit keyed hash of `parts` (each framed by its length, 8 bytes little-endian),
    /// in hex.
    fn digest(&self, parts: &[&[u8]]) -> String {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_le_bytes());
            mac.update(part);
        }
        let tag = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(32);
        for byte in &tag[..16] {
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }

    /// The keys of an attempt on `account` from `ip`: the account from this client, the
    /// account from all clients, the client (in [`ATTEMPT`]'s order).
    fn of(&self, account: &str, ip: IpAddr) -> [String; 3] {
        let key = account_key(account);
        let client = client_group(ip, SUBSCRIBER_PREFIX);
        let client_bytes: Vec<u8> = match client {
            IpAddr::V4(v4) => [&[4u8][..], &v4.octets()].concat(),
            IpAddr::V6(v6) => [&[6u8][..], &v6.octets()].concat(),
        };
        let tag = &self.tag;
        [
            format!(
                "{tag}:pair:{}",
                self.digest(&[b"pair", key.as_bytes(), &client_bytes])
            ),
            format!(
                "{tag}:account:{}",
                self.digest(&[b"account", key.as_bytes()])
            ),
            format!("{tag}:ip:{client}"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Redis Cluster's hash tag of `key`: what its slot is computed from.
    fn cluster_hashed(key: &str) -> &str {
        if let Some(open) = key.find('{')
            && let Some(len) = key[open + 1..].find('}')
            && len > 0
        {
            return &key[open + 1..open + 1 + len];
        }
        key
    }

    #[test]
    fn every_instance_with_the_hash_key_names_the_same_keys_and_no_name_in_clear() {
        let a = KeyNames::new(KEY, "hardening:login");
        let b = KeyNames::new(KEY, "hardening:login");
        let from = ip("203.0.113.9");
        let keys = a.of("Alice.Liddell@Example.com", from);
        assert_eq!(keys, b.of(" alice.liddell@example.com", from));
        for key in &keys {
            let lower = key.to_lowercase();
            assert!(
                !lower.contains("alice") && !lower.contains("liddell"),
                "{key}"
            );
        }
        assert_eq!(keys[2], "{hardening:login}:ip:203.0.113.9");
        // Another key, another name; the client's count is the client's.
        let other = KeyNames::new(b"another key of thirty-two bytes!", "hardening:login");
        let theirs = other.of("alice.liddell@example.com", from);
        assert_ne!(theirs[0], keys[0]);
        assert_ne!(theirs[1], keys[1]);
        assert_eq!(theirs[2], keys[2]);
        assert_ne!(a.fingerprint, other.fingerprint);
        assert!(!a.fingerprint.contains("0123456789abcdef"));
        // The fingerprint's key shares the counts' hash tag: the attempt's script reads it.
        assert_eq!(a.hash_key_check, "{hardening:login}:hash-key");
    }

    /// Values computed once by this code: a change to the hashing (std's, or ours) would give
    /// instances of two versions two names for one count, and every count a fresh start.
    #[test]
    fn the_hash_is_the_same_across_releases() {
        let names = KeyNames::new(KEY, "p");
        assert_eq!(names.digest(&[b"account", b"alice"]), ALICE_DIGEST);
    }

    /// Computed apart from this code, by Python's `hmac` module: `hmac.new(KEY, frame(b"account")
    /// + frame(b"alice"), "sha256").hexdigest()[:32]`, where `frame(p)` is `len(p)` as 8
    /// little-endian bytes, then `p`.
    const ALICE_DIGEST: &str = "fab12865fe815151e809c7ef960eca73";

    #[test]
    fn an_attempts_keys_share_one_cluster_slot_and_accounts_and_pairs_are_apart() {
        let names = KeyNames::new(KEY, "hardening:login");
        let keys = names.of("alice", ip("2001:db8:1:2::7"));
        for key in &keys {
            assert_eq!(cluster_hashed(key), "hardening:login", "{key}");
        }
        assert_eq!(keys[2], "{hardening:login}:ip:2001:db8:1:2::");
        // The same /64 is one client, for the pair too; another /64 another.
        assert_eq!(names.of("alice", ip("2001:db8:1:2:ffff::1"))[0], keys[0]);
        assert_ne!(names.of("alice", ip("2001:db8:1:3::1"))[0], keys[0]);
        // An IPv4-mapped address is its IPv4 client.
        assert_eq!(
            names.of("alice", ip("::ffff:192.0.2.1")),
            names.of("alice", ip("192.0.2.1"))
        );
        // An account, its pair and another account's are three keys.
        let bob = names.of("bob", ip("2001:db8:1:2::7"));
        assert_ne!(bob[0], keys[0]);
        assert_ne!(bob[1], keys[1]);
        assert_ne!(keys[0].rsplit(':').next(), keys[1].rsplit(':').next());
    }

    #[test]
    fn the_builders_debug_shows_neither_the_hash_key_nor_the_urls_password() {
        let builder = RedisLoginThrottle::builder("redis://:hunter2@127.0.0.1:6379/", KEY);
        let shown = format!("{builder:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(shown.contains("hash_key_len: 32"), "{shown}");
    }

    /// Misconfiguration fails at `connect`, before any connection, saying what to change.
    #[tokio::test]
    async fn misconfiguration_is_refused_before_connecting() {
        // Nothing listens there: a check made after connecting would say `Unreachable`.
        let url = "redis://127.0.0.1:1/";
        let short = RedisLoginThrottle::builder(url, b"short").connect().await;
        let message = short.unwrap_err().to_string();
        assert!(
            message.contains("5 bytes") && message.contains("at least 32"),
            "{message}"
        );
        for prefix in ["", "a{b", "x}", "{tag}"] {
            let braces = RedisLoginThrottle::builder(url, KEY)
                .prefix(prefix)
                .connect()
                .await;
            assert!(
                matches!(braces, Err(RedisLoginError::InvalidPrefix(ref p)) if p == prefix),
                "{prefix:?}"
            );
        }
        let zero = RedisLoginThrottle::builder(url, KEY)
            .timeout(Duration::ZERO)
            .connect()
            .await;
        assert!(matches!(zero, Err(RedisLoginError::ZeroTimeout)));
        let bad_url = RedisLoginThrottle::builder("http://:hunter2@x/", KEY)
            .connect()
            .await
            .unwrap_err()
            .to_string();
        assert!(!bad_url.contains("hunter2"), "{bad_url}");
    }

    #[test]
    fn the_scripts_reply_is_read_or_refused() {
        assert_eq!(
            attempt_reply(&[0, 1500]),
            Some(Counted::LockedOut(Duration::from_millis(1500)))
        );
        let mut reply = vec![1, 1000];
        // The pair was there (2 failures), the account and the client were not.
        reply.extend([1, 2, 900, 900, 3, 2000, 1000]);
        reply.extend([0, 0, 0, 0, 1, 1000, 1000]);
        reply.extend([0, 0, 0, 0, 1, 1000, 1000]);
        let Some(Counted::Charged { before, charged }) = attempt_reply(&reply) else {
            panic!("not read");
        };
        assert_eq!(
            before[0],
            Some(Count {
                failures: 2,
                locked_until: 900,
                last_failure: 900
            })
        );
        assert_eq!(before[1..], [None, None]);
        assert_eq!(charged[0].locked_until, 2000);
        assert_eq!(attempt_reply(&[2]), Some(Counted::OtherHashKey));
        assert_eq!(attempt_reply(&[2, 0]), None);
        assert_eq!(attempt_reply(&[1, 1000, 1]), None);
        assert_eq!(attempt_reply(&[0, -1]), None);
        assert_eq!(attempt_reply(&[]), None);
    }

    #[test]
    fn durations_are_whole_milliseconds_within_what_lua_holds_exactly() {
        assert_eq!(millis(Duration::from_micros(1)), 1);
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::from_micros(1_500_001)), 1501);
        assert_eq!(millis(Duration::MAX), LONGEST_MS);
    }
}
