//! The Redis store (feature `redis`): the same policies shared by every instance of a service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hardening_errors::{
    EvictionRisk, LateReplies, OutageWords, RedisBreaker, RedisConnection, RedisOutageLog,
    RedisStartError, RedisStoreSettings, RequestId, WarnOnce,
};
use http::{HeaderValue, Request, Response};
use redis::Script;
use redis::aio::ConnectionManager;
use tower::{Layer, Service};

use crate::limiter::{
    Key, counted_policy_header, key_for, policy_header_for, text_key, warn_overrun,
};
use crate::respond::{LayerShared, limit_unavailable, report_shadow, too_many};
use crate::{
    Decision, Policy, PolicyName, PolicyStatus, RateLimiter, RequestKeys, Reservation, Statuses,
};

/// The store counts time in µs: nanoseconds per unit.
pub(crate) const NANOS_PER_UNIT: u64 = 1000;

/// GCRA over one key, on the server's clock. ARGV: emission interval (µs), capacity (µs),
/// cost, charge (1) or only probe (0). Returns {admitted, µs in use (after the charge when
/// one was made; as the bucket stands for a probe or a refusal), retry-after µs (-1: never,
/// a cost more than the full bucket holds), the TAT an admitted charge leaves (µs, server
/// time)}. A cost of 0 charges nothing but is admitted only where one unit would be.
///
/// No number the script stores or returns passes `MAX`, 2^62 µs (146 000 years). Lua's
/// numbers are doubles; past 2^63, `%d` writes one as -2^63 (a TAT read back as a full
/// bucket) and Redis replies with it as a negative integer (a refused cost such as
/// 4 294 967 295 units of a day each read as a wait of zero). The capacity is at most
/// `MAX - now`, so an admitted charge stays within it and a key there is refused, and
/// `PX` stays an integer Redis accepts. No quota comes near it (capacities are capped at
/// 2^63 ns, see `Quota::capacity`): it guards against a TAT an older version wrote.
const GCRA: &str = r"
local MAX = 4611686018427387904
local function int(x) return math.min(x, MAX) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local capacity = math.min(tonumber(ARGV[2]), MAX - now)
local cost = tonumber(ARGV[3])
local tat = now
local v = redis.call('GET', KEYS[1])
if v then tat = math.max(tonumber(v), now) end
local new_tat = tat + interval * cost
if interval * cost > capacity then return {0, int(tat - now), -1, int(new_tat)} end
local needed = new_tat
if cost == 0 then needed = new_tat + interval end
if needed - now <= capacity then
  if ARGV[4] ~= '1' then return {1, int(tat - now), 0, int(new_tat)} end
  if cost > 0 then
    redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
  end
  return {1, int(new_tat - now), 0, int(new_tat)}
end
return {0, int(tat - now), int(needed - now - capacity), int(new_tat)}
";

/// Moves a bucket by a signed number of µs, on the server's clock. ARGV: the µs (a refund is
/// negative), the TAT the reservation's charge left (µs, from GCRA), the capacity (µs).
/// A refund gives back only the part of the charge time has not refilled yet,
/// min(refund, charge's TAT - now), and never fills a bucket past full (a full bucket's key
/// is deleted); an overrun leaves the bucket at most one burst in debt (2 × capacity ahead
/// of now), and never past `MAX` (as in [`GCRA`]). Returns 1 when an overrun was charged
/// only up to that bound, else 0.
const ADJUST: &str = r"
local MAX = 4611686018427387904
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local delta = tonumber(ARGV[1])
local v = redis.call('GET', KEYS[1])
local clipped = 0
local tat
if delta < 0 then
  local refund = math.min(-delta, tonumber(ARGV[2]) - now)
  if refund <= 0 or not v then return 0 end
  tat = tonumber(v)
  if tat <= now then return 0 end
  tat = math.max(tat - refund, now)
else
  local from = now
  if v then from = math.max(tonumber(v), now) end
  local bound = math.min(now + 2 * tonumber(ARGV[3]), MAX)
  tat = from + delta
  if tat > bound then
    tat = math.max(from, bound)
    clipped = 1
  end
end
-- Only a TAT an older version of this script wrote can be past MAX.
tat = math.min(tat, MAX)
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
return clipped
";

/// A concurrency slot per key: leases in a sorted set scored by expiry (server time, ms), so
/// a crashed instance's slots free themselves. ARGV: max in flight, lease ms (at most
/// [`MAX_LEASE_MS`]), member. The key lives as long as its longest lease: a grant only ever
/// lengthens its TTL (a short lease must not end the longer ones held on the same key).
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
if redis.call('PTTL', KEYS[1]) < lease then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
";

/// The longest lease [`ACQUIRE`] is given, in ms (2^53, 285 000 years): an integer a Lua
/// number holds exactly, and far enough from Redis's limit that `PEXPIRE` takes it (a
/// longer one, `Duration::MAX`, failed there after the `ZADD`, leaving a slot taken for good).
const MAX_LEASE_MS: u64 = 1 << 53;

/// How long a reply nobody else waits for (a reservation's charge or a slot's grant on a
/// task of its own, a slot's release) is waited for, at least: a charge or grant Redis makes
/// within it is taken back (see [`RedisLimiter::reserve`]); ten store timeouts if longer.
/// Far past any fork or fail-over; and a task waiting on a connection that will never answer
/// (replaced, see [`RedisConnection`]) ends, and with the last of them that connection.
pub(crate) const LATE_REPLY: Duration = Duration::from_secs(60);

/// How long a reply nobody else waits for is waited for, by a store whose timeout is
/// `timeout`: `set` by a test, else [`LATE_REPLY`], or ten timeouts if longer.
pub(crate) fn late_reply(set: Option<Duration>, timeout: Duration) -> Duration {
    set.unwrap_or_else(|| LATE_REPLY.max(timeout.saturating_mul(10)))
}

/// What a policy does when Redis cannot answer (down, slow, or the circuit breaker is open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureMode {
    /// Refuse the request as the service being unavailable, not as a spent budget:
    /// [`RedisLimiter::check`] and [`reserve`](RedisLimiter::reserve) answer
    /// [`RedisUnavailable`], and the layers a 503 problem with `Retry-After` = the breaker's
    /// cool-down (at least 1 s), no `RateLimit` field (Redis holds the counts), logged and
    /// counted as `rate_limit_unavailable`, never `rate_limited`. The strict choice for
    /// expensive routes: an outage must not become an unmetered bill.
    FailClosed,
    /// **Loosens**: skip the policy while Redis is away (logged at start-up).
    FailOpen,
    /// Decide with an in-memory limiter of the same policy, per instance (with N instances a
    /// client may get up to N times the quota during the outage).
    FallBackToMemory,
}

/// Why a [`RedisLimiter`] could not be built.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// The URL is not a Redis URL: why, as the `redis` crate says (the URL itself is not
    /// repeated: it may hold a password).
    #[error("invalid Redis URL for rate limits (expected redis://[:password@]host:port/db): {0}")]
    InvalidUrl(#[source] redis::RedisError),
    /// Redis did not answer at start-up.
    #[error(
        "cannot reach Redis for rate limits at start-up: {0}; check the URL and that the server \
         is running"
    )]
    Unreachable(#[source] redis::RedisError),
    /// No policies were given.
    #[error("the Redis limiter has no policies: call .policy(…) at least once")]
    NoPolicies,
    /// Two policies of one name: they would count in one bucket (see
    /// [`RedisLimiterBuilder::prefix`] for the keys), and their `RateLimit` fields could not
    /// be told apart.
    #[error(
        "two rate-limit policies are named `{0}`: they would share one bucket in Redis; give \
         each its own name"
    )]
    DuplicatePolicyName(String),
    /// A client-IP policy grouping IPv6 clients by `/0` (see
    /// [`LimiterConfigError::Ipv6PrefixZero`](crate::LimiterConfigError::Ipv6PrefixZero)).
    #[error("{}", crate::limiter::ipv6_prefix_zero_message(.0))]
    Ipv6PrefixZero(String),
    /// A policy whose name is empty or only whitespace (see
    /// [`LimiterConfigError::BlankPolicyName`](crate::LimiterConfigError::BlankPolicyName)).
    #[error("{}", crate::limiter::blank_name_message(*.position, *.of, .name))]
    BlankPolicyName {
        /// Where the policy is among those given to [`RedisLimiterBuilder::policy`], from 1.
        position: usize,
        /// How many policies were given.
        of: usize,
        /// The name given.
        name: String,
    },
    /// A zero timeout: every decision would fail over to the failure mode.
    #[error(
        "the Redis limiter's timeout is zero: every decision would give up on Redis before its \
         reply; use the default (100 ms) or a few round trips to Redis"
    )]
    ZeroTimeout,
    /// Redis may evict keys under memory pressure (its `maxmemory-policy`, named here, is
    /// not `noeviction`): every bucket has a TTL, so `volatile-*` policies evict them too,
    /// and an evicted bucket starts again full (a spent daily budget included).
    #[error(
        "the Redis for rate limits evicts keys under memory pressure (maxmemory-policy {0}), \
         and an evicted bucket starts again full, a spent budget included (many distinct \
         clients are enough to fill it): set maxmemory-policy noeviction on this Redis, or \
         use a dedicated Redis for rate limits (RedisLimiterBuilder::dangerous_allow_eviction() \
         accepts it anyway)"
    )]
    EvictingPolicy(String),
}

hardening_errors::debug_as_message!(RedisStoreError);

impl RedisStoreError {
    /// The limiter's words for why its settings could not start it.
    fn from_start(error: RedisStartError) -> Self {
        match error {
            RedisStartError::ZeroTimeout => Self::ZeroTimeout,
            RedisStartError::InvalidUrl(e) => Self::InvalidUrl(e),
            RedisStartError::Unreachable(e) => Self::Unreachable(e),
        }
    }
}

/// What eviction costs the limiter, for the start-up warnings.
const EVICTION_RISK: EvictionRisk = EvictionRisk {
    store: "rate limits",
    loss: "buckets under memory pressure, and an evicted bucket starts again full (a spent \
           budget included)",
    loosening: "RedisLimiterBuilder::dangerous_allow_eviction",
};

/// Builds a [`RedisLimiter`]; see [`RedisLimiter::builder`]. Nothing is checked until
/// [`connect`](Self::connect).
///
/// ```no_run
/// # async fn demo() -> Result<(), hardening_ratelimit::RedisStoreError> {
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use hardening_ratelimit::{FailureMode, Policy, Quota, RedisLimiter};
///
/// let tokens = Quota::per_day(NonZeroU32::new(100_000).unwrap());
/// let limiter = RedisLimiter::builder("redis://127.0.0.1:6379/")
///     .prefix("billing:rl:")
///     .timeout(Duration::from_millis(50))
///     .circuit_breaker(3, Duration::from_secs(5))
///     // An outage must not become an unmetered bill: refuse while Redis is away.
///     .policy(Policy::per_principal("tokens-per-day", tokens), FailureMode::FailClosed)
///     .connect()
///     .await?;
/// # let _ = limiter;
/// # Ok(()) }
/// ```
#[must_use]
pub struct RedisLimiterBuilder {
    settings: RedisStoreSettings,
    policies: Vec<(Policy, FailureMode)>,
    /// How long a reply nobody else waits for is waited for: see [`late_reply`], unless a
    /// test sets it.
    late_reply: Option<Duration>,
}

// By hand: the URL's password is not printed.
impl fmt::Debug for RedisLimiterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut builder = f.debug_struct("RedisLimiterBuilder");
        self.settings.debug_fields(&mut builder);
        builder
            .field("policies", &self.policies)
            .field("late_reply", &self.late_reply)
            .finish()
    }
}

impl RedisLimiterBuilder {
    /// Adds a policy and what it does when Redis is away (no default: choose).
    pub fn policy(mut self, policy: Policy, on_failure: FailureMode) -> Self {
        self.policies.push((policy, on_failure));
        self
    }

    /// The prefix of every key (default `hardening:rl:`). A policy's keys are
    /// `{prefix}{policy}:{key}`, with `:` and `%` in the policy's name written `%3A` and `%25`
    /// and a policy named `slots` written `%73lots`; the concurrency slots' keys are
    /// `{prefix}slots:{key}`. So no two policies, and no policy and the slots, share a key.
    /// In the key, `{`, `}` and `%` are written `%7B`, `%7D` and `%25` (a client's `{…}`
    /// would choose the Redis Cluster slot of its keys), and text over 256 bytes, a slot's
    /// too, is kept as its digest.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.settings.set_prefix(prefix);
        self
    }

    /// How long a decision may wait for Redis before the failure mode applies (default
    /// 100 ms). A reservation Redis charges after that is still refunded when its reply
    /// comes, up to a minute late (or ten of these timeouts, if longer; see
    /// [`RedisLimiter::reserve`]), and a concurrency slot it grants after that released.
    /// Start-up (loading the scripts) waits no longer than this either. Zero is refused by
    /// [`connect`](Self::connect).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.set_timeout(timeout);
        self
    }

    /// After `failures` consecutive failures, stop asking Redis for `cool_down` (default 5
    /// failures, 2 s): a dead Redis must not add a timeout to every request. Then one request
    /// asks whether it is back; the others keep to their failure mode until it answers.
    /// Each outage is logged as every Redis store logs it (see [`RedisStoreSettings`]), the
    /// error saying what each policy does meanwhile; a `FailClosed` policy's refusals
    /// meanwhile are each a `rate_limit_unavailable` event.
    ///
    /// A connection that stays open but answers nothing (a proxy in front of a Redis that
    /// stopped) is replaced once commands have timed out on it for a cool-down (or the
    /// timeout, if longer) with no reply: so the probe after the next cool-down asks on a new
    /// connection. Logged as a warning.
    pub fn circuit_breaker(mut self, failures: u32, cool_down: Duration) -> Self {
        self.settings.set_circuit_breaker(failures, cool_down);
        self
    }

    /// **Loosens**: accepts a Redis whose `maxmemory-policy` evicts keys (a shared cache,
    /// say). Under memory pressure, which many distinct clients can cause, it may drop
    /// buckets, and an evicted bucket starts again full: a spent daily budget too. Logs a
    /// warning at start-up when the policy found evicts.
    pub fn dangerous_allow_eviction(mut self) -> Self {
        self.settings.dangerous_allow_eviction();
        self
    }

    /// How long a reply nobody else waits for (a reservation's charge or a slot's grant on a
    /// task of its own, a slot's release) is waited for, instead of a minute (or ten
    /// timeouts, if longer; see [`RedisLimiter::reserve`]): for tests, which cannot wait
    /// a minute.
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

    /// Connects (multiplexed, reconnecting in the background), loads the scripts and asks
    /// the server's `maxmemory-policy`. Fails now, not at the first request, when the URL is
    /// wrong, Redis is down or does not answer within the [timeout](Self::timeout), or it may
    /// evict buckets (anything but `noeviction`, unless
    /// [`dangerous_allow_eviction`](Self::dangerous_allow_eviction)). When the server does
    /// not let us ask (`CONFIG` disabled or renamed, as on many managed services), logs a
    /// warning and goes on.
    ///
    /// # Errors
    ///
    /// In the order checked: [`RedisStoreError::NoPolicies`],
    /// [`RedisStoreError::ZeroTimeout`], [`RedisStoreError::BlankPolicyName`],
    /// [`RedisStoreError::DuplicatePolicyName`], [`RedisStoreError::Ipv6PrefixZero`] (no
    /// connection tried); [`RedisStoreError::InvalidUrl`]; [`RedisStoreError::Unreachable`]
    /// when Redis refuses, fails or does not answer in time; and
    /// [`RedisStoreError::EvictingPolicy`].
    pub async fn connect(self) -> Result<RedisLimiter, RedisStoreError> {
        if self.policies.is_empty() {
            return Err(RedisStoreError::NoPolicies);
        }
        let settings = &self.settings;
        settings.check().map_err(RedisStoreError::from_start)?;
        if let Some((position, of, name)) =
            crate::limiter::blank_name(self.policies.iter().map(|(p, _)| p))
        {
            return Err(RedisStoreError::BlankPolicyName {
                position,
                of,
                name: name.to_string(),
            });
        }
        if let Some(name) = crate::limiter::duplicate_name(self.policies.iter().map(|(p, _)| p)) {
            return Err(RedisStoreError::DuplicatePolicyName(name.to_string()));
        }
        if let Some(name) = crate::limiter::ipv6_prefix_zero(self.policies.iter().map(|(p, _)| p)) {
            return Err(RedisStoreError::Ipv6PrefixZero(name.to_string()));
        }
        let timeout = settings.timeout();
        // Every decision, adjustment and start-up step waits at most `timeout` (a timer of its
        // own); a charge or a grant Redis makes late still reaches the task that takes it
        // back, which waits `late_reply` at most (see `LATE_REPLY`). A timed-out reply was
        // never freed sooner anyway: the connection keeps each command's place until its
        // reply.
        let connection = settings
            .connect(LateReplies::Awaited)
            .await
            .map_err(RedisStoreError::from_start)?;
        let mut conn = connection.get();
        let gcra = Script::new(GCRA);
        let adjust = Script::new(ADJUST);
        let acquire = Script::new(ACQUIRE);
        // The connection waits for replies as long as it lasts; start-up, no longer than the
        // store's timeout for all four (a Redis that answered the handshake, then stalled).
        let start_up = async {
            acquire.load_async(&mut conn).await?;
            gcra.load_async(&mut conn).await?;
            adjust.load_async(&mut conn).await?;
            settings.check_eviction(&mut conn).await
        };
        crate::redis_outcome::start_up_within(timeout, start_up)
            .await
            .map_err(RedisStoreError::Unreachable)?
            .map_err(RedisStoreError::EvictingPolicy)?;
        for (policy, mode) in &self.policies {
            if *mode == FailureMode::FailOpen {
                tracing::warn!(
                    target: "hardening",
                    setting = "FailureMode::FailOpen",
                    "hardening loosened: rate-limit policy `{}` is skipped while Redis is away",
                    policy.name()
                );
            }
        }
        let policies: Vec<RedisPolicy> = self
            .policies
            .iter()
            .map(|(policy, mode)| {
                RedisPolicy::new(
                    policy.clone(),
                    *mode,
                    policy_prefix(settings.prefix(), policy.name()),
                )
            })
            .collect();
        let fallback = RateLimiter::with_policies(
            self.policies
                .iter()
                .filter(|(_, mode)| *mode == FailureMode::FallBackToMemory)
                .map(|(p, _)| p.clone()),
        );
        let addr = connection.addr();
        Ok(RedisLimiter(Arc::new(Inner {
            policy_header: policy_header_for(self.policies.iter().map(|(p, _)| p)),
            conn: connection,
            gcra,
            adjust,
            acquire,
            slot_counter: AtomicU64::new(0),
            instance: instance_id(),
            slots_prefix: slots_prefix(settings.prefix()),
            prefix: settings.prefix().to_owned(),
            policies,
            fallback,
            warned_lost_release: WarnOnce::new(),
            timeout,
            late_reply: late_reply(self.late_reply, timeout),
            breaker: settings.breaker(),
            outage: RedisOutageLog::new(OUTAGE_WORDS, addr, meanwhile(&self.policies)),
        })))
    }
}

/// What the limiter says of an outage of its Redis (see [`RedisOutageLog`]).
const OUTAGE_WORDS: OutageWords = OutageWords {
    store: EVICTION_RISK.store,
    name: "rate limit",
    failing: "down, erroring, or slower than the store's timeout",
    asker: "request",
    back: "policies are decided in Redis",
};

/// What each policy does while Redis is away, by its failure mode, for the error logged
/// when the breaker opens: `FallBackToMemory` allows each instance its own quota, and
/// `FailClosed` refuses every request it counts (503).
fn meanwhile(policies: &[(Policy, FailureMode)]) -> String {
    let modes: Vec<String> = policies
        .iter()
        .map(|(policy, mode)| {
            let name = policy.name();
            match mode {
                FailureMode::FailClosed => format!("`{name}` refuses with 503 (FailClosed)"),
                FailureMode::FailOpen => format!("`{name}` is skipped (FailOpen)"),
                FailureMode::FallBackToMemory => {
                    format!("`{name}` counts in this process only (FallBackToMemory)")
                }
            }
        })
        .collect();
    modes.join(", ")
}

/// 64 random bits: the hash of a `RandomState`, whose keys std draws from the OS (once per
/// thread, then changed for each one made). Apart from every other instance's whatever
/// their process ids (pid 1 in every container) and start-up times. Drawn once per limiter.
fn instance_id() -> u64 {
    use std::hash::BuildHasher as _;
    std::collections::hash_map::RandomState::new().hash_one(())
}

/// The concurrency slots' part of their keys: `{prefix}slots:{key}` (see [`slot_key`]).
const SLOTS: &str = "slots";

/// The start of every key of the policy named `name`: `{prefix}{name}:`, with the name's `%`
/// and `:` written `%25` and `%3A`, and the name `slots` written `%73lots` (the slots' part,
/// [`SLOTS`]). Made once per policy, at connect.
///
/// Why a Redis key then names one policy and one key: the policy part holds no `:`, so the
/// first `:` after the store's prefix ends it, whatever the key after it holds (an IPv6
/// address, a header value with `:` in it). A Redis key splits back into exactly one
/// (policy part, key) pair, and the policy part decodes back to one name (`%` is written
/// only as the start of an escape). So two keys are one only when both the policy and its
/// key are; within a policy the limiter keeps its keys apart (a policy counts by one kind
/// of key; the parts of a composite key are escaped as they are joined; a key's text is
/// escaped in Redis as a name is, and decodes back to one text). The slots' part
/// `slots` is no policy's: a policy named so is `%73lots`. The empty name is `{prefix}:`,
/// apart from every other name too.
///
/// Names without `:` and `%`, other than `slots`, are written as they are: their keys are
/// the same as before this escaping, and so their buckets in a running Redis.
fn policy_prefix(prefix: &str, name: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + name.len() + 8);
    out.push_str(prefix);
    if name == SLOTS {
        out.push_str("%73lots");
    } else {
        push_escaped(&mut out, name, &[':', '%']);
    }
    out.push(':');
    out
}

/// The characters a key's text has escaped in Redis: `{` and `}`, so that a client's key
/// (an API key, a principal, a path) holds no Redis Cluster hash tag, which would choose
/// the slot its keys are kept in, and `%`, which starts an escape. Text without them is
/// written as it is, and so keeps its bucket across the upgrade that added this. (A client
/// with many keys of its own can still try keys until some share a slot: the hash, CRC16,
/// is public. Only choosing a slot outright, by a tag, is taken away.)
const KEY_ESCAPED: &[char] = &['{', '}', '%'];

/// Appends `text` with each of `special` (ASCII) written `%XX`, as a URL writes it.
fn push_escaped(out: &mut String, text: &str, special: &[char]) {
    if !text.contains(special) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        if special.contains(&c) {
            use std::fmt::Write as _;
            let _ = write!(out, "%{:02X}", u32::from(c));
        } else {
            out.push(c);
        }
    }
}

/// A policy's key in Redis: its [`policy_prefix`] and the key, its text escaped (see
/// [`KEY_ESCAPED`]).
fn bucket_key(policy_prefix: &str, key: Key) -> String {
    // Room for the longest IPv6 address, so the key is one allocation.
    let mut name = String::with_capacity(policy_prefix.len() + 39);
    name.push_str(policy_prefix);
    match key {
        // Written in place: no string of its own per request.
        Key::Ip(ip) => {
            use std::fmt::Write as _;
            let _ = write!(name, "{ip}");
        }
        Key::Text(t) => push_escaped(&mut name, &t, KEY_ESCAPED),
        Key::Global => name.push('*'),
    }
    name
}

/// The start of every concurrency slot's key: `{prefix}slots:`, no policy's (see
/// [`policy_prefix`]). Made once, at connect.
fn slots_prefix(prefix: &str) -> String {
    format!("{prefix}{SLOTS}:")
}

/// A concurrency slot's key in Redis: its [`slots_prefix`] and the key as a policy's text
/// key is (its digest past 256 bytes, escaped).
fn slot_key(slots_prefix: &str, key: &str) -> String {
    bucket_key(slots_prefix, text_key(key))
}

struct RedisPolicy {
    policy: Policy,
    /// The start of each of its keys in Redis (see [`policy_prefix`]).
    prefix: String,
    /// µs per unit.
    interval: u64,
    /// µs of burst.
    capacity: u64,
    /// `Quota::reset_slack` of the capacity (ns), for the `RateLimit` header.
    slack: u64,
    mode: FailureMode,
    /// Whether the warning that an overrun was charged only up to the debt bound was logged.
    warned_overrun: WarnOnce,
    /// Whether the warning that a settlement was lost for want of a runtime was logged.
    warned_lost_settlement: WarnOnce,
    /// Whether the warning that Redis failed an adjustment (a refund, an overrun) was logged.
    warned_failed_adjustment: WarnOnce,
}

impl RedisPolicy {
    /// The policy in µs: its interval rounded up to a whole µs.
    fn new(policy: Policy, mode: FailureMode, prefix: String) -> Self {
        let quota = policy.quota();
        let interval = quota.interval_in(NANOS_PER_UNIT);
        let capacity = quota.capacity(interval, NANOS_PER_UNIT);
        Self {
            prefix,
            interval,
            capacity,
            slack: quota.reset_slack(capacity.saturating_mul(NANOS_PER_UNIT)),
            policy,
            mode,
            warned_overrun: WarnOnce::new(),
            warned_lost_settlement: WarnOnce::new(),
            warned_failed_adjustment: WarnOnce::new(),
        }
    }

    /// An overrun was charged only up to the debt bound: says so, once per policy (never
    /// the key, which may be a principal or an API key).
    #[cold]
    fn warn_overrun(&self, overrun: u64) {
        if self.warned_overrun.first() {
            warn_overrun(&self.policy, overrun);
        }
    }

    /// A settlement of a reservation under this policy could not be sent (no tokio runtime
    /// to send it on): says so, once per policy (never the key).
    #[cold]
    fn warn_lost_settlement(&self, reserved: u64, actual: u64) {
        if !self.warned_lost_settlement.first() {
            return;
        }
        let name = self.policy.name();
        let (what, after) = adjustment_words(actual < reserved);
        let units = reserved.abs_diff(actual);
        tracing::warn!(
            target: "hardening",
            policy = %name,
            units,
            "rate limit: the {what} of {units} units to Redis policy `{name}` was lost because \
             no tokio runtime was running to send it (a reservation settled outside the \
             runtime, e.g. a response body dropped after it shut down){after}. Logged once \
             per policy"
        );
    }

    /// Redis failed an adjustment of `units` (negative: a refund) under this policy: says so
    /// with `error` (`timeout`, or the code of Redis's error, such as `OOM`; never its text),
    /// once per policy (never the key).
    #[cold]
    fn warn_failed_adjustment(&self, units: i64, error: &str) {
        if !self.warned_failed_adjustment.first() {
            return;
        }
        let name = self.policy.name();
        let (what, after) = adjustment_words(units < 0);
        let units = units.unsigned_abs();
        tracing::warn!(
            target: "hardening",
            policy = %name,
            units,
            error,
            "rate limit: the {what} of {units} units to Redis policy `{name}` failed \
             ({error}){after}. Logged once per policy"
        );
    }

    fn status(&self, used: u64) -> PolicyStatus {
        PolicyStatus::new(
            self.policy.name().clone(),
            used.saturating_mul(1000),
            self.interval.saturating_mul(1000),
            self.capacity.saturating_mul(1000),
            self.slack,
        )
    }
}

/// A keyed GCRA limiter whose state lives in Redis, so every instance of a service shares
/// one budget. Same [`Policy`]s, quotas, all-or-nothing decisions, shadow mode and
/// reservations as the in-memory [`RateLimiter`].
///
/// - Each script call touches **one key**, as Redis Cluster needs (this store connects to
///   one server, though, and follows no Cluster redirection); a multi-policy decision probes
///   every policy in one pipelined round trip, then charges each, undoing on a race. A
///   key's braces are escaped: a client's `{…}` is no Cluster hash tag.
/// - Time is **Redis server time** (`TIME` inside the script): instances with skewed clocks
///   agree.
/// - Every key carries a **TTL** (the time until its bucket is full again, plus a second):
///   idle clients cost Redis nothing.
/// - Run Redis with `maxmemory-policy noeviction`: with a TTL on every key, any other policy
///   (`volatile-*` too) may evict a bucket, which starts again full, and many distinct
///   clients are enough to make the memory pressure.
///   [`connect`](RedisLimiterBuilder::connect) refuses another policy unless
///   [`dangerous_allow_eviction`](RedisLimiterBuilder::dangerous_allow_eviction) says
///   otherwise; a server that hides its policy is logged, not refused. The policy is checked
///   at start-up, and again on each connection that replaces a silent one (see
///   [`RedisConnection`]): an evicting policy found then is logged as an error, not refused.
/// - Each policy has an explicit [`FailureMode`]; a **circuit breaker** stops asking a dead
///   Redis for a cool-down, so an outage costs one timeout per `failures` requests, not one
///   per request; after each cool-down, one request asks whether Redis is back while the
///   others keep to their failure mode. An outage is logged when the breaker opens (an
///   error, once) and when Redis answers again (see
///   [`circuit_breaker`](RedisLimiterBuilder::circuit_breaker)).
/// - A connection closed while nothing was sent on it (Redis restarted) is found before a
///   **charge** is sent on it: after [`PING_WHEN_IDLE_FOR`](hardening_errors::PING_WHEN_IDLE_FOR)
///   with no reply, a `PING` goes first (a round trip only then), and the charge goes to a
///   new connection. A charge, a grant or an adjustment is sent again only when it could not
///   be sent at all (the connection refused); one that failed on a connection that died may
///   have been made, and is never made twice. A probe or a release, which change nothing
///   when run twice, are sent again on a new connection whenever theirs is found dead. So the
///   first decision after Redis is back is made in Redis.
///
/// ```no_run
/// # async fn demo() -> Result<(), hardening_ratelimit::RedisStoreError> {
/// use std::num::NonZeroU32;
/// use hardening_ratelimit::{FailureMode, Policy, Quota, RedisLimiter};
///
/// let limiter = RedisLimiter::builder("redis://127.0.0.1:6379/")
///     .policy(
///         Policy::per_client_ip("per-ip", Quota::per_minute(NonZeroU32::new(100).unwrap())),
///         FailureMode::FallBackToMemory,
///     )
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisLimiter(Arc<Inner>);

struct Inner {
    conn: RedisConnection,
    gcra: Script,
    adjust: Script,
    acquire: Script,
    slot_counter: AtomicU64,
    /// Tells this limiter's slot ids from other instances'.
    instance: u64,
    prefix: String,
    /// See [`slots_prefix`].
    slots_prefix: String,
    policies: Vec<RedisPolicy>,
    fallback: RateLimiter,
    /// Whether the warning that a slot's release was lost for want of a runtime was logged.
    warned_lost_release: WarnOnce,
    timeout: Duration,
    /// How long a reply nobody else waits for is waited for (see [`LATE_REPLY`]).
    late_reply: Duration,
    breaker: RedisBreaker,
    policy_header: Option<HeaderValue>,
    /// Logs the breaker's opening and Redis answering again, naming the server's address.
    outage: RedisOutageLog,
}

impl Inner {
    /// Redis answered: tells the connection and the breaker, and logs the end of an outage.
    fn answered(&self) {
        crate::redis_outcome::answered(&self.conn, &self.breaker, &self.outage);
    }

    /// Redis did not answer in time or answered an error (`timed_out`: no reply at all):
    /// tells the connection and the breaker, and logs the start of an outage.
    fn failed(&self, timed_out: bool) {
        crate::redis_outcome::failed(&self.conn, &self.breaker, &self.outage, timed_out);
    }

    /// The refusal of a request Redis could not be asked about, for `policies`.
    fn unavailable(&self, policies: Vec<PolicyName>) -> RedisUnavailable {
        RedisUnavailable {
            retry_after: self.breaker.retry_after(),
            policies,
        }
    }
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field(
                "policies",
                &self
                    .0
                    .policies
                    .iter()
                    .map(|p| (&p.policy, p.mode))
                    .collect::<Vec<_>>(),
            )
            .field("timeout", &self.0.timeout)
            .finish_non_exhaustive()
    }
}

/// Redis could not be asked (down, slow, erroring, or the circuit breaker is open), and the
/// request was refused for it: by the [`FailClosed`](FailureMode::FailClosed) policies that
/// count it ([`RedisLimiter::check`], [`RedisLimiter::reserve`]), or for want of a
/// concurrency slot ([`RedisLimiter::acquire_slot`]). Not a spent budget: the layers answer
/// it with a 503 problem and `Retry-After` = [`retry_after`](Self::retry_after), logged as
/// `rate_limit_unavailable`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Redis rate-limit store is unavailable")]
pub struct RedisUnavailable {
    retry_after: Duration,
    policies: Vec<PolicyName>,
}

impl RedisUnavailable {
    /// When to ask again: the circuit breaker's cool-down, at least a second.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// The fail-closed policies that could not be checked (none for a concurrency slot).
    pub fn policies(&self) -> &[PolicyName] {
        &self.policies
    }
}

/// A concurrency slot from [`RedisLimiter::acquire_slot`]; released when dropped.
pub struct RedisSlot {
    limiter: RedisLimiter,
    key: String,
    member: String,
}

// By hand: the key may be an API key or a principal, never printed.
impl fmt::Debug for RedisSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSlot")
            .field("limiter", &self.limiter)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisSlot {
    fn drop(&mut self) {
        let limiter = self.limiter.clone();
        let key = std::mem::take(&mut self.key);
        let member = std::mem::take(&mut self.member);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut release = redis::cmd("ZREM");
                release.arg(&key).arg(&member);
                let release = &release;
                // If this fails the lease expires on its own. Sent twice, it removes nothing
                // more: sent again on a new connection when its own was found dead.
                let releasing = limiter.0.conn.send_idempotent(|mut conn| async move {
                    release.query_async::<i64>(&mut conn).await
                });
                let _ = limiter
                    .late(async { releasing.await.map_err(|_| StoreError::Redis) })
                    .await;
            });
        } else {
            self.limiter.warn_lost_release();
        }
    }
}

/// Units reserved by [`RedisLimiter::reserve`]; settle them once the actual cost is known.
/// Dropping it keeps the estimate charged.
#[derive(Debug)]
pub struct RedisReservation {
    limiter: RedisLimiter,
    reserved: u64,
    charged: Charged,
}

#[derive(Debug)]
enum Charged {
    Redis(Vec<RedisCharge>),
    Memory(Reservation),
    Nothing,
}

/// One policy's charge in Redis: its key, and the bucket's TAT right after the charge (µs,
/// server time), so that a refund gives back only the units time has not refilled yet.
struct RedisCharge {
    policy: usize,
    key: String,
    tat: u64,
}

// By hand: the key may be an API key or a principal, and a reservation's `Debug` prints its
// charges.
impl fmt::Debug for RedisCharge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCharge")
            .field("policy", &self.policy)
            .field("tat", &self.tat)
            .finish_non_exhaustive()
    }
}

impl RedisReservation {
    /// Units reserved.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Charges `actual` units instead of the estimate (refunding the rest or charging the
    /// overrun). If Redis fails meanwhile the estimate stays charged.
    ///
    /// As [`Reservation::settle`] does, on Redis's clock: what comes back is only the part
    /// of the reservation time has not refilled yet (never room spent again since), and an
    /// overrun is charged only as far as it leaves each bucket one burst past empty (logged
    /// as a warning, once per policy, naming the policy, never the key).
    ///
    /// Dropping this future before it completes may lose the settlement (a command not yet
    /// written to Redis when nobody waits for it any more is not sent): where the caller
    /// may be cancelled, run it on a task of its own (`tokio::spawn`), as
    /// [`CostLayer`](crate::CostLayer) does.
    pub async fn settle(self, actual: u64) {
        let delta = i128::from(actual) - i128::from(self.reserved);
        match self.charged {
            Charged::Redis(charges) if delta != 0 => {
                let delta =
                    i64::try_from(delta).unwrap_or(if delta < 0 { i64::MIN } else { i64::MAX });
                let _ = self.limiter.adjust(&charges, delta).await;
            }
            Charged::Memory(reservation) => reservation.settle(actual),
            _ => {}
        }
    }

    /// Gives the reservation back: as much of it as time has not refilled already, as
    /// [`settle`](Self::settle) does.
    pub async fn refund(self) {
        self.settle(0).await;
    }

    /// Whether settling to `actual` has anything to send to Redis (not for a reservation
    /// made in the in-memory fallback, nor one settled to what it reserved).
    fn sends_to_redis(&self, actual: u64) -> bool {
        matches!(self.charged, Charged::Redis(_)) && actual != self.reserved
    }

    /// [`settle`](Self::settle), on a task of its own that this future waits for: a caller
    /// that waits sees it done, and dropping this future (a client gone, a timeout further
    /// out) does not cancel it. Awaited in place instead, a settlement whose future is
    /// dropped before Redis's connection task wrote the command is lost: a command nobody
    /// waits for any more is not sent.
    pub(crate) async fn settle_to_completion(self, actual: u64) {
        if !self.sends_to_redis(actual) {
            // The in-memory fallback, or nothing to do: at once, no task.
            return self.settle(actual).await;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                // A panic in the task (none expected) loses only this settlement.
                let _ = runtime.spawn(self.settle(actual)).await;
            }
            Err(_) => self.lost_for_want_of_a_runtime(actual),
        }
    }

    /// [`settle`](Self::settle) on a task of its own, not waited for (a body's end or drop
    /// cannot wait). With no tokio runtime to spawn it on, a reservation made in the
    /// in-memory fallback is settled at once, and one made in Redis is lost: logged.
    pub(crate) fn settle_in_background(self, actual: u64) {
        if !self.sends_to_redis(actual) {
            if let Charged::Memory(reservation) = self.charged {
                reservation.settle(actual);
            }
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(self.settle(actual));
            }
            Err(_) => self.lost_for_want_of_a_runtime(actual),
        }
    }

    /// No runtime to send the settlement on: warns, once per policy it charged.
    #[cold]
    fn lost_for_want_of_a_runtime(&self, actual: u64) {
        if let Charged::Redis(charges) = &self.charged {
            for c in charges {
                self.limiter.0.policies[c.policy].warn_lost_settlement(self.reserved, actual);
            }
        }
    }
}

#[derive(Debug)]
enum StoreError {
    Redis,
    Timeout,
}

impl RedisLimiter {
    /// Starts a builder for a Redis at `url` (`redis://127.0.0.1:6379/`).
    pub fn builder(url: &str) -> RedisLimiterBuilder {
        RedisLimiterBuilder {
            settings: RedisStoreSettings::new(
                url,
                EVICTION_RISK,
                "hardening:rl:",
                Duration::from_millis(100),
            ),
            policies: Vec::new(),
            late_reply: None,
        }
    }

    /// Decides a request costing `cost` units, charging every policy or none.
    ///
    /// # Errors
    ///
    /// [`RedisUnavailable`] when Redis could not be asked and a
    /// [`FailClosed`](FailureMode::FailClosed) policy counts the request: refused, but not
    /// for a spent budget (answer 503, not 429). The other policies' failure modes decide
    /// without Redis.
    pub async fn check(
        &self,
        keys: &RequestKeys<'_>,
        cost: u32,
    ) -> Result<Decision, RedisUnavailable> {
        let (decision, _) = self.decide(keys, u64::from(cost.max(1)), false).await?;
        Ok(decision)
    }

    /// Reserves `estimate` units under every policy at once (see [`RateLimiter::reserve`]).
    ///
    /// An `estimate` of 0 reserves nothing but is admitted only while every policy has at
    /// least one unit left: a spent budget refuses it like any other request.
    ///
    /// Cancel-safe: the charge is made on a task of its own, which hands it to this future.
    /// If this future is dropped first (the client gone, a timeout further out), or gives up
    /// at the store's timeout, the charge nobody took is refunded as soon as Redis's reply
    /// reaches that task, up to a minute late (or ten store timeouts, if longer): a request
    /// that never ran is not charged its estimate. (A reply later still, or lost with its
    /// connection, leaves the charge, if Redis made it, to refill on its own: nothing tells
    /// whether it was made.)
    ///
    /// # Errors
    ///
    /// [`RedisUnavailable`], as [`check`](Self::check): nothing was reserved.
    pub async fn reserve(
        &self,
        keys: &RequestKeys<'_>,
        estimate: u32,
    ) -> Result<(Decision, Option<RedisReservation>), RedisUnavailable> {
        let (decision, charged) = self.decide(keys, u64::from(estimate), true).await?;
        let reservation = decision.is_admitted().then(|| RedisReservation {
            limiter: self.clone(),
            reserved: u64::from(estimate),
            charged,
        });
        Ok((decision, reservation))
    }

    /// Takes one of at most `max_in_flight` concurrent slots for `key` (a client IP, an API
    /// key, a principal; over 256 bytes, kept as its digest, as a policy's key is), shared by
    /// every instance: Stripe's concurrent-request limiter. The slot is a lease of `lease`
    /// (longer than your request timeout; leases longer than 2^53 ms are that long) so a
    /// crashed instance's slots free themselves; a key's slots may be taken with different
    /// leases, each kept in full. Dropping the [`RedisSlot`] releases it at once (on a
    /// spawned task). `Ok(None)`: all slots are taken. `Err`: Redis did not answer in time
    /// (decide with your failure mode; the breaker applies here too).
    ///
    /// Cancel-safe: the slot is taken on a task of its own, which hands it to this future.
    /// If this future is dropped first (the client gone, a timeout further out), or gives up
    /// at the store's timeout, the slot nobody took is released as soon as Redis's reply
    /// reaches that task, up to a minute late (or ten store timeouts, if longer; a reply later
    /// still, or lost with its connection, leaves the slot, if Redis granted it, to free
    /// itself when its lease ends).
    pub async fn acquire_slot(
        &self,
        key: &str,
        max_in_flight: u32,
        lease: Duration,
    ) -> Result<Option<RedisSlot>, RedisUnavailable> {
        let inner = &*self.0;
        if !inner.breaker.lets_through() {
            return Err(inner.unavailable(Vec::new()));
        }
        let member = format!(
            "{:x}-{:x}",
            inner.instance,
            inner.slot_counter.fetch_add(1, Ordering::Relaxed)
        );
        let key = slot_key(&inner.slots_prefix, key);
        let lease_ms = u64::try_from(lease.as_millis())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_LEASE_MS);
        // On a task of its own, as a reservation's charge (see `charge_one_unclaimed`): a
        // grant this future is no longer there to take is dropped with the task's output, as
        // a `RedisSlot`, which releases it.
        let limiter = self.clone();
        let acquiring = tokio::spawn(async move {
            let mut invocation = limiter.0.acquire.key(&key);
            invocation.arg(max_in_flight).arg(lease_ms).arg(&member);
            let invocation = &invocation;
            // A grant must not be made twice: sent again only if it was never sent.
            let granting = async {
                limiter
                    .0
                    .conn
                    .send_once(
                        |mut conn| async move { invocation.invoke_async::<i64>(&mut conn).await },
                    )
                    .await
                    .map_err(|_| StoreError::Redis)
            };
            let got = limiter.late(granting).await;
            got.map(|got| {
                (got == 1).then(|| RedisSlot {
                    limiter,
                    key,
                    member,
                })
            })
        });
        match tokio::time::timeout(inner.timeout, acquiring).await {
            Ok(Ok(Ok(slot))) => {
                inner.answered();
                Ok(slot)
            }
            Ok(_) => {
                inner.failed(false);
                Err(inner.unavailable(Vec::new()))
            }
            Err(_) => {
                inner.failed(true);
                Err(inner.unavailable(Vec::new()))
            }
        }
    }

    /// The policies, in order.
    pub fn policies(&self) -> impl ExactSizeIterator<Item = &Policy> + Clone {
        self.0.policies.iter().map(|p| &p.policy)
    }

    /// The `RateLimit-Policy` header for all these policies. A response carries
    /// [`counted_policy_header`](Self::counted_policy_header): the policies that counted its
    /// request.
    pub fn policy_header(&self) -> Option<&HeaderValue> {
        self.0.policy_header.as_ref()
    }

    /// The `RateLimit-Policy` header for the policies that counted a request: those of its
    /// decision's `statuses` (see [`RateLimiter::counted_policy_header`]). While Redis is
    /// away, a policy that fails open counts nothing, and is not listed.
    pub fn counted_policy_header(&self, statuses: &[PolicyStatus]) -> Option<HeaderValue> {
        counted_policy_header(self.policies(), self.policy_header(), statuses)
    }

    /// A slot's release could not be sent (no tokio runtime): says so, once per limiter
    /// (never the slot's key).
    #[cold]
    fn warn_lost_release(&self) {
        let inner = &*self.0;
        if !inner.warned_lost_release.first() {
            return;
        }
        tracing::warn!(
            target: "hardening",
            prefix = %inner.prefix,
            "rate limit: the release of a Redis concurrency slot (keys under `{}slots:`) was \
             lost because no tokio runtime was running to send it (a slot dropped outside the \
             runtime, e.g. after it shut down); the slot stays taken until its lease ends. \
             Logged once per limiter",
            inner.prefix
        );
    }

    /// A readiness check for `/readyz` (`hardening_core::Health::check`): each run sends
    /// `PING` over this limiter's own connection, within its [timeout](RedisLimiterBuilder::timeout),
    /// and fails (naming the server's address, never the URL) when Redis does not answer.
    /// No `redis` dependency of your own; the circuit breaker is left as it is.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// # use std::num::NonZeroU32;
    /// use hardening_ratelimit::{FailureMode, Policy, Quota, RedisLimiter};
    ///
    /// let limiter = RedisLimiter::builder("redis://127.0.0.1:6379/")
    ///     .policy(
    ///         Policy::global("all", Quota::per_second(NonZeroU32::new(1_000).unwrap())),
    ///         FailureMode::FailClosed,
    ///     )
    ///     .connect()
    ///     .await?;
    /// let check = limiter.readiness_check(); // Health::new().check("redis", check)
    /// check().await?; // Redis answered PING
    /// # Ok(()) }
    /// ```
    pub fn readiness_check(
        &self,
    ) -> impl Fn() -> hardening_errors::RedisReadiness + Clone + Send + Sync + 'static {
        hardening_errors::redis_readiness_check(self.clone(), |limiter| &limiter.0.conn)
    }

    /// Whether the circuit breaker currently keeps requests away from Redis.
    pub fn breaker_open(&self) -> bool {
        self.0.breaker.is_open()
    }

    fn keyed(&self, keys: &RequestKeys<'_>) -> Vec<(usize, String)> {
        self.0
            .policies
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                key_for(p.policy.key_kind(), keys).map(|k| (i, bucket_key(&p.prefix, k)))
            })
            .collect()
    }

    /// Decides for `cost` units. `reserving`: the charge is a reservation's, which must not be
    /// lost if the caller goes away before it takes it (see [`reserve`](Self::reserve)), so on
    /// one policy it too is made on a task of its own. A check on one policy is not: its unit
    /// stays charged for a request that did arrive, even if its caller is gone.
    async fn decide(
        &self,
        keys: &RequestKeys<'_>,
        cost: u64,
        reserving: bool,
    ) -> Result<(Decision, Charged), RedisUnavailable> {
        let keyed = self.keyed(keys);
        if keyed.is_empty() {
            return Ok((Decision::Allowed(Vec::new().into()), Charged::Nothing));
        }
        let inner = &*self.0;
        if inner.breaker.lets_through() {
            let decided = self.decide_in_redis(&keyed, cost, reserving);
            match tokio::time::timeout(inner.timeout, decided).await {
                Ok(Ok(decided)) => {
                    inner.answered();
                    return Ok(decided);
                }
                Ok(Err(StoreError::Redis)) => inner.failed(false),
                Err(_) | Ok(Err(StoreError::Timeout)) => inner.failed(true),
            }
        }
        self.degraded(&keyed, keys, cost)
    }

    /// Redis is away: each policy's failure mode decides. The enforcing `FailClosed`
    /// policies that count the request refuse it as unavailable; else the others decide
    /// (`FailOpen` skipped, `FallBackToMemory` in this process).
    fn degraded(
        &self,
        keyed: &[(usize, String)],
        keys: &RequestKeys<'_>,
        cost: u64,
    ) -> Result<(Decision, Charged), RedisUnavailable> {
        let inner = &*self.0;
        let closed: Vec<PolicyName> = keyed
            .iter()
            .map(|(i, _)| &inner.policies[*i])
            .filter(|p| p.mode == FailureMode::FailClosed && !p.policy.is_shadow())
            .map(|p| p.policy.name().clone())
            .collect();
        if !closed.is_empty() {
            return Err(inner.unavailable(closed));
        }
        let estimate = u32::try_from(cost).unwrap_or(u32::MAX);
        Ok(match inner.fallback.reserve(keys, estimate) {
            (decision, Some(reservation)) => (decision, Charged::Memory(reservation)),
            (decision, None) => (decision, Charged::Nothing),
        })
    }

    async fn call(
        &self,
        key: &str,
        p: &RedisPolicy,
        cost: u64,
        charge: bool,
    ) -> Result<GcraAnswer, StoreError> {
        let mut invocation = self.0.gcra.key(key);
        invocation
            .arg(p.interval)
            .arg(p.capacity)
            .arg(cost)
            .arg(u8::from(charge));
        let invocation = &invocation;
        let invoke = |mut conn: ConnectionManager| async move {
            invocation
                .invoke_async::<(i64, i64, i64, i64)>(&mut conn)
                .await
        };
        // A charge must not be made twice: sent again only if it was never sent. A probe
        // only reads.
        let answer = if charge {
            self.0.conn.send_once(invoke).await
        } else {
            self.0.conn.send_idempotent(invoke).await
        };
        Ok(gcra_answer(answer.map_err(|_| StoreError::Redis)?))
    }

    /// Phase 1 of a decision over several policies: asks each policy whether it would admit
    /// `cost` units, charging none, in one pipeline (one round trip instead of one per
    /// policy; each script still touches one key). A pipeline does not load a script Redis
    /// has lost (a restart, `SCRIPT FLUSH`, a fail-over): then it is loaded and the pipeline
    /// sent once more.
    async fn probe_all(
        &self,
        keyed: &[(usize, String)],
        cost: u64,
    ) -> Result<Vec<GcraAnswer>, StoreError> {
        let inner = &*self.0;
        let invocations: Vec<_> = keyed
            .iter()
            .map(|(i, key)| {
                let p = &inner.policies[*i];
                let mut invocation = inner.gcra.prepare_invoke();
                invocation
                    .key(key)
                    .arg(p.interval)
                    .arg(p.capacity)
                    .arg(cost)
                    .arg(0u8);
                invocation
            })
            .collect();
        let mut pipe = redis::pipe();
        for invocation in &invocations {
            pipe.invoke_script(invocation);
        }
        let pipe = &pipe;
        // The probes only read: sent again on a new connection when its own was found dead.
        let probe = |mut conn: ConnectionManager| async move {
            pipe.query_async::<Vec<(i64, i64, i64, i64)>>(&mut conn)
                .await
        };
        let mut answers = inner.conn.send_idempotent(probe).await;
        if let Err(e) = &answers
            && e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
        {
            inner
                .gcra
                .load_async(&mut inner.conn.get())
                .await
                .map_err(|_| StoreError::Redis)?;
            answers = inner.conn.send_idempotent(probe).await;
        }
        Ok(answers
            .map_err(|_| StoreError::Redis)?
            .into_iter()
            .map(gcra_answer)
            .collect())
    }

    /// Moves every charged policy's bucket by `units` (see [`ADJUST`]): a refund gives back
    /// only what time has not refilled since the charge; an overrun stops at one burst of
    /// debt. Every policy's command is sent at once and waited for on its own (the store's
    /// timeout each): one that fails (Redis full and refusing its `SET`, or no answer in
    /// time) neither keeps the others from being adjusted (each touches its own key, and none
    /// is sent twice) nor makes a stalled Redis cost one timeout per policy. An error if any
    /// failed (logged, once per policy).
    async fn adjust(&self, charged: &[RedisCharge], units: i64) -> Result<(), StoreError> {
        if let [one] = charged {
            return self.adjust_one(one, units).await;
        }
        let mut pending: Vec<_> = charged
            .iter()
            .map(|c| Some(Box::pin(self.adjust_one(c, units))))
            .collect();
        let mut result = Ok(());
        std::future::poll_fn(|cx| {
            for slot in &mut pending {
                if let Some(adjusting) = slot
                    && let Poll::Ready(done) = adjusting.as_mut().poll(cx)
                {
                    *slot = None;
                    if done.is_err() {
                        result = done;
                    }
                }
            }
            if pending.iter().all(Option::is_none) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        result
    }

    /// One charge's part of [`adjust`](Self::adjust).
    async fn adjust_one(&self, c: &RedisCharge, units: i64) -> Result<(), StoreError> {
        let p = &self.0.policies[c.policy];
        let micros = i64::try_from(p.interval)
            .unwrap_or(i64::MAX)
            .saturating_mul(units);
        let mut invocation = self.0.adjust.key(&c.key);
        invocation.arg(micros).arg(c.tat).arg(p.capacity);
        let invocation = &invocation;
        // A refund or an overrun must not be made twice: sent again only if it was never
        // sent.
        let adjusting = self
            .0
            .conn
            .send_once(|mut conn| async move { invocation.invoke_async::<i64>(&mut conn).await });
        let adjusted = tokio::time::timeout(self.0.timeout, adjusting).await;
        if adjusted.is_ok() {
            self.0.conn.answered();
        } else {
            self.0.conn.timed_out();
        }
        match adjusted {
            Ok(Ok(clipped)) => {
                if clipped == 1 {
                    p.warn_overrun(units.unsigned_abs());
                }
                Ok(())
            }
            Ok(Err(e)) => {
                let code = e
                    .code()
                    .unwrap_or(if e.is_io_error() { "io" } else { "error" });
                p.warn_failed_adjustment(units, code);
                Err(StoreError::Redis)
            }
            Err(_) => {
                p.warn_failed_adjustment(units, "timeout");
                Err(StoreError::Timeout)
            }
        }
    }

    /// Each keyed policy's status from the µs of bucket it reported in use.
    fn statuses(&self, keyed: &[(usize, String)], used: &[u64]) -> Statuses {
        keyed
            .iter()
            .zip(used)
            .map(|((i, _), u)| self.0.policies[*i].status(*u))
            .collect::<Vec<_>>()
            .into()
    }

    /// Phase 2 of a decision over several policies: charges each in turn; takes the charges
    /// back when a policy refuses (another instance got there first) or when Redis fails
    /// part-way (the charges it confirmed). `used` is each bucket as phase 1 found it; a
    /// refusal reports those (its charges undone), with the refusing bucket as it now is.
    async fn charge_all(
        &self,
        keyed: Vec<(usize, String)>,
        cost: u64,
        mut used: Vec<u64>,
        mut shadow_violated: Vec<usize>,
    ) -> Result<Charges, StoreError> {
        let inner = &*self.0;
        let mut charged = Vec::with_capacity(keyed.len());
        let mut used_after = used.clone();
        for (n, (i, key)) in keyed.into_iter().enumerate() {
            let p = &inner.policies[i];
            if shadow_violated.contains(&i) {
                continue;
            }
            let answer = match self.late(self.call(&key, p, cost, true)).await {
                Ok(answer) => answer,
                Err(e) => {
                    let _ = self.adjust(&charged, undo(cost)).await;
                    return Err(e);
                }
            };
            used_after[n] = answer.used;
            if answer.admitted {
                charged.push(RedisCharge {
                    policy: i,
                    key,
                    tat: answer.tat,
                });
            } else if p.policy.is_shadow() {
                shadow_violated.push(i);
            } else {
                self.adjust(&charged, undo(cost)).await?;
                used[n] = answer.used;
                return Ok(Charges {
                    outcome: Err((p.policy.name().clone(), answer.retry)),
                    used,
                    shadow_violated,
                });
            }
        }
        Ok(Charges {
            outcome: Ok(Unclaimed::new(self.clone(), cost, charged)),
            used: used_after,
            shadow_violated,
        })
    }

    /// Charges one policy for a reservation, on a task of its own: the charge reaches the
    /// caller as an [`Unclaimed`], refunded if the caller is gone before it takes it (dropped,
    /// or past the store's timeout: the task's output is then dropped). Awaited in place
    /// instead, a reply read after its future was dropped would be lost, and with it the
    /// charge Redis made.
    async fn charge_one_unclaimed(
        &self,
        policy: usize,
        key: &str,
        cost: u64,
    ) -> Result<(GcraAnswer, Vec<RedisCharge>), StoreError> {
        let limiter = self.clone();
        let key = key.to_owned();
        let charging = tokio::spawn(async move {
            let answer = limiter
                .late(limiter.call(&key, &limiter.0.policies[policy], cost, true))
                .await?;
            let charged = answer.charged(policy, key);
            Ok::<_, StoreError>((answer, Unclaimed::new(limiter, cost, charged)))
        });
        let (answer, unclaimed) = charging.await.map_err(|_| StoreError::Redis)??;
        Ok((answer, unclaimed.claim()))
    }

    /// Waits for `reply`, which nobody else may wait for any more (a charge or a grant on a
    /// task of its own, a slot's release), for the store's `late_reply` at most (see
    /// [`LATE_REPLY`]): long enough for a Redis stalled by a fork or a fail-over, and no
    /// longer than a connection that will never answer (replaced meanwhile, see
    /// [`RedisConnection`]) is worth keeping. Past that,
    /// a timeout: a charge Redis makes later still stays until it refills, a grant until its
    /// lease ends, as when the reply is lost with its connection.
    async fn late<T>(
        &self,
        reply: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.0.late_reply, reply)
            .await
            .unwrap_or(Err(StoreError::Timeout))
    }

    async fn decide_in_redis(
        &self,
        keyed: &[(usize, String)],
        cost: u64,
        reserving: bool,
    ) -> Result<(Decision, Charged), StoreError> {
        let inner = &*self.0;
        // One enforcing policy: one atomic call (a reservation's on a task of its own).
        if let [(i, key)] = keyed
            && !inner.policies[*i].policy.is_shadow()
        {
            let p = &inner.policies[*i];
            let (answer, charged) = if reserving && cost > 0 {
                self.charge_one_unclaimed(*i, key, cost).await?
            } else {
                let answer = self.call(key, p, cost, true).await?;
                let charged = answer.charged(*i, key.clone());
                (answer, charged)
            };
            let statuses: Statuses = vec![p.status(answer.used)].into();
            return Ok(if answer.admitted {
                (Decision::Allowed(statuses), Charged::Redis(charged))
            } else {
                (
                    Decision::Limited {
                        retry_after: Duration::from_micros(answer.retry),
                        violated: vec![p.policy.name().clone()],
                        statuses,
                    },
                    Charged::Nothing,
                )
            });
        }
        // Phase 1: probe every policy (one round trip).
        let mut violated = Vec::new();
        let mut shadow_violated = Vec::new();
        let mut retry_after = 0;
        let mut used = vec![0u64; keyed.len()];
        let probes = self.probe_all(keyed, cost).await?;
        for (n, ((i, _), probe)) in keyed.iter().zip(probes).enumerate() {
            let p = &inner.policies[*i];
            used[n] = probe.used;
            if !probe.admitted {
                if p.policy.is_shadow() {
                    shadow_violated.push(*i);
                } else {
                    violated.push(p.policy.name().clone());
                    retry_after = retry_after.max(probe.retry);
                }
            }
        }
        // Phase 2: charge each policy, in a task of its own: a decision cut short here (the
        // store's timeout, the caller gone) still learns which charges Redis made, and they
        // are taken back (see `Unclaimed`), so that a decision charges all its policies or
        // none.
        if violated.is_empty() {
            let limiter = self.clone();
            let owned = keyed.to_vec();
            // Not taken (the caller is gone): dropped with the task's output, and refunded.
            let charging = tokio::spawn(async move {
                limiter.charge_all(owned, cost, used, shadow_violated).await
            });
            let charges = charging.await.map_err(|_| StoreError::Redis)??;
            used = charges.used;
            shadow_violated = charges.shadow_violated;
            match charges.outcome {
                Ok(unclaimed) => {
                    let charged = unclaimed.claim();
                    let statuses = self.statuses(keyed, &used);
                    let decision = if shadow_violated.is_empty() {
                        Decision::Allowed(statuses)
                    } else {
                        Decision::Shadowed {
                            violated: shadow_violated
                                .iter()
                                .map(|i| inner.policies[*i].policy.name().clone())
                                .collect(),
                            statuses,
                        }
                    };
                    return Ok((decision, Charged::Redis(charged)));
                }
                Err((name, retry)) => {
                    violated.push(name);
                    retry_after = retry;
                }
            }
        }
        let statuses = self.statuses(keyed, &used);
        Ok((
            Decision::Limited {
                retry_after: Duration::from_micros(retry_after),
                violated,
                statuses,
            },
            Charged::Nothing,
        ))
    }
}

/// What phase 2 of a decision over several policies learnt.
struct Charges {
    /// The policies charged, or the one that refused (with its retry-after, in µs).
    outcome: Result<Unclaimed, (PolicyName, u64)>,
    /// Each keyed policy's µs of bucket in use.
    used: Vec<u64>,
    /// The shadow policies that would have refused.
    shadow_violated: Vec<usize>,
}

/// Charges a task made in Redis for `cost` units, on their way to the caller that asked for
/// them: dropped before the caller [claims](Self::claim) them (it was dropped, or gave up at
/// the store's timeout, before the task handed them over or before it read them), they are
/// refunded, on a task of their own (as the reservation of a response body dropped before
/// its end is).
#[derive(Debug)]
struct Unclaimed {
    limiter: RedisLimiter,
    cost: u64,
    charged: Vec<RedisCharge>,
}

impl Unclaimed {
    fn new(limiter: RedisLimiter, cost: u64, charged: Vec<RedisCharge>) -> Self {
        Self {
            limiter,
            cost,
            charged,
        }
    }

    /// The charges, now the caller's to settle.
    fn claim(mut self) -> Vec<RedisCharge> {
        std::mem::take(&mut self.charged)
    }
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        if self.charged.is_empty() {
            return;
        }
        RedisReservation {
            limiter: self.limiter.clone(),
            reserved: self.cost,
            charged: Charged::Redis(std::mem::take(&mut self.charged)),
        }
        .settle_in_background(0);
    }
}

/// The GCRA script's answer for one key.
struct GcraAnswer {
    admitted: bool,
    /// µs of bucket in use.
    used: u64,
    /// µs until it would admit (`u64::MAX`: never).
    retry: u64,
    /// The TAT an admitted charge left (µs, server time): where the charge's units end.
    tat: u64,
}

impl GcraAnswer {
    /// What this answer charged, for `policy` on `key`: one charge if admitted, else none.
    fn charged(&self, policy: usize, key: String) -> Vec<RedisCharge> {
        if self.admitted {
            vec![RedisCharge {
                policy,
                key,
                tat: self.tat,
            }]
        } else {
            Vec::new()
        }
    }
}

/// The GCRA script's reply (admitted 1 or 0, µs in use, µs until it would admit, the TAT).
fn gcra_answer((admitted, used, retry, tat): (i64, i64, i64, i64)) -> GcraAnswer {
    GcraAnswer {
        admitted: admitted == 1,
        used: u64::try_from(used).unwrap_or(0),
        // Negative: never (a cost more than the full bucket holds).
        retry: u64::try_from(retry).unwrap_or(u64::MAX),
        tat: u64::try_from(tat).unwrap_or(0),
    }
}

/// How a log line names an adjustment: what it is, and what a failed one leaves.
fn adjustment_words(refund: bool) -> (&'static str, &'static str) {
    if refund {
        ("refund", "; the units stay charged until they refill")
    } else {
        ("overrun charge", "")
    }
}

/// The adjustment that takes back a charge of `cost` units.
fn undo(cost: u64) -> i64 {
    -i64::try_from(cost).unwrap_or(i64::MAX)
}

/// Applies a [`RedisLimiter`] to every request (client IP: inside `Hardening`, the one it
/// resolved through trusted proxies, else the socket peer from `ConnectInfo`, forwarding
/// headers never believed; principal from the extensions); refusals are 429 problems with
/// `Retry-After` and the violated policies, and every response carries `RateLimit` /
/// `RateLimit-Policy` for the policies that counted its request. A request a
/// [`FailClosed`](FailureMode::FailClosed) policy refuses because Redis could not be asked is
/// a 503 problem with `Retry-After` and neither field (nothing counted it), logged as `rate_limit_unavailable` (see [`RedisUnavailable`]). A request none of the
/// enforcing policies counts (per-principal ones and an anonymous caller, or the layer
/// outside the auth layer; per-IP ones and no `ConnectInfo`) passes unlimited, and the layer
/// warns once, saying what the request lacked (inside `Hardening`, a missing client IP is
/// left to its own warning).
#[derive(Debug, Clone)]
pub struct RedisRateLimitLayer {
    limiter: RedisLimiter,
    shared: Arc<LayerShared>,
}

impl RedisRateLimitLayer {
    /// A layer for this limiter.
    pub fn new(limiter: RedisLimiter) -> Self {
        Self {
            limiter,
            shared: Arc::new(LayerShared::new("RedisRateLimitLayer")),
        }
    }
}

impl<S> Layer<S> for RedisRateLimitLayer {
    type Service = RedisRateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RedisRateLimit {
            inner,
            limiter: self.limiter.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// The service [`RedisRateLimitLayer`] makes.
#[derive(Debug, Clone)]
pub struct RedisRateLimit<S> {
    inner: S,
    limiter: RedisLimiter,
    shared: Arc<LayerShared>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RedisRateLimit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<bytes::Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limiter = self.limiter.clone();
        let shared = self.shared.clone();
        Box::pin(async move {
            let request_id = RequestId::from_extensions(req.extensions());
            let keys = RequestKeys::from_http(req.extensions(), req.headers(), req.uri());
            let client_ip = keys.client_ip;
            let decision = match limiter.check(&keys, 1).await {
                Ok(decision) => decision,
                // Nothing counted it: no `RateLimit` field names a policy.
                Err(unavailable) => {
                    return Ok(limit_unavailable(&unavailable, request_id, client_ip));
                }
            };
            shared.unlimited.check(
                "RedisRateLimitLayer",
                decision.statuses().len(),
                limiter.policies(),
                &keys,
                // Inside `Hardening`, which warns of a missing peer itself.
                || hardening_errors::RequestContext::of(req.extensions()).is_some(),
            );
            let ratelimit = crate::ratelimit_header(decision.statuses());
            let policy = limiter.counted_policy_header(decision.statuses());
            let mut response = match decision {
                Decision::Limited {
                    retry_after,
                    violated,
                    ..
                } => too_many(retry_after, &violated, request_id, client_ip),
                Decision::Shadowed { violated, .. } => {
                    report_shadow(request_id, client_ip, &violated, 1);
                    let mut response = inner.call(req).await?;
                    hardening_errors::mark_logged(&mut response, crate::respond::SHADOW_EVENT);
                    response
                }
                Decision::Allowed(_) => inner.call(req).await?,
            };
            shared
                .fields
                .set(response.headers_mut(), ratelimit, policy.as_ref());
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::Quota;
    use crate::limiter::ratelimit_header;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    /// The builder's `Debug` printed the URL whole, password and all: a `?builder` in a log
    /// line leaked the Redis password.
    #[test]
    fn the_builders_debug_hides_the_urls_password() {
        for url in [
            "redis://:hunter2@10.0.0.5:6379/",
            "redis://app:hunter2@10.0.0.5:6379/0",
        ] {
            let builder = RedisLimiter::builder(url).timeout(Duration::from_millis(50));
            let debug = format!("{builder:?}");
            assert!(!debug.contains("hunter2"), "{debug}");
            assert!(debug.contains("10.0.0.5:6379"), "{debug}");
            assert!(debug.contains("50ms"), "{debug}");
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
            "redis+unix:///run/redis.sock?pass=hunter2",
            // A space in the user name, or in a password given in the query.
            "redis://app user:hunter2@10.0.0.5:6379/",
            "redis+unix:///run/redis.sock?pass=correct horse",
        ] {
            assert!(redis::Client::open(url).is_ok(), "{url}");
            let debug = format!("{:?}", RedisLimiter::builder(url));
            assert!(
                !debug.contains("hunter") && !debug.contains("horse"),
                "{debug}"
            );
            assert!(
                debug.contains("10.0.0.5:6379") || debug.contains("redis.sock"),
                "{debug}"
            );
        }
    }

    /// A zero timeout passed start-up against a Redis on loopback (the timer's 1 ms
    /// granularity let replies in) and failed every decision against a remote one.
    #[tokio::test]
    async fn a_zero_timeout_is_refused_at_start_up() {
        let quota = crate::Quota::per_minute(std::num::NonZeroU32::new(10).unwrap());
        let refused = RedisLimiter::builder("redis://127.0.0.1:1/")
            .policy(
                Policy::per_client_ip("per-ip", quota),
                FailureMode::FailClosed,
            )
            .timeout(Duration::ZERO)
            .connect()
            .await
            .err();
        assert!(
            matches!(refused, Some(RedisStoreError::ZeroTimeout)),
            "{refused:?}"
        );
    }

    /// The limiter's start-up errors said "invalid Redis URL" and "cannot reach Redis" with no
    /// store named, where the denylist's and the login throttle's name theirs: a service
    /// with several Redis stores could not tell from its log which store's URL to check.
    #[tokio::test]
    async fn start_up_errors_name_the_store() {
        let quota = crate::Quota::per_minute(std::num::NonZeroU32::new(10).unwrap());
        let policy = || Policy::per_client_ip("per-ip", quota);
        let invalid = RedisLimiter::builder("http://:hunter2@10.0.0.5/")
            .policy(policy(), FailureMode::FailClosed)
            .connect()
            .await
            .unwrap_err();
        assert!(
            matches!(invalid, RedisStoreError::InvalidUrl(_)),
            "{invalid}"
        );
        let said = invalid.to_string();
        assert!(
            said.starts_with("invalid Redis URL for rate limits (expected redis://"),
            "{said}"
        );
        assert!(!said.contains("hunter2"), "{said}");
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let unreachable = RedisLimiter::builder("redis://127.0.0.1:1/")
            .policy(policy(), FailureMode::FailClosed)
            .connect()
            .await
            .unwrap_err();
        assert!(
            matches!(unreachable, RedisStoreError::Unreachable(_)),
            "{unreachable}"
        );
        let said = unreachable.to_string();
        assert!(
            said.starts_with("cannot reach Redis for rate limits at start-up: "),
            "{said}"
        );
        assert!(
            said.ends_with("check the URL and that the server is running"),
            "{said}"
        );
    }

    /// Quotas and the `t` of a burst drained at once: the period, where the interval's
    /// rounding up to a whole µs (`per_minute(7)`: 8 571 429 µs, full again 3 µs after the
    /// minute) read one second more before.
    fn drained() -> [(Quota, u64); 6] {
        [
            (Quota::per_minute(nz(7)), 60),
            (Quota::per_second(nz(3)), 1),
            (Quota::per_hour(nz(7)), 3600),
            (Quota::per_minute(nz(7)).burst(nz(14)), 120),
            // Exact: as before.
            (Quota::per_minute(nz(60)), 60),
            // 1 µs a unit (0.5 asked): 2 s to refill, never a whole second short of it.
            (Quota::per_second(nz(2_000_000)), 2),
        ]
    }

    const PREFIX: &str = "hardening:rl:";

    /// The Redis key of `name`'s bucket for the text key `key`, as a decision builds it.
    fn bucket(name: &str, key: &str) -> String {
        bucket_key(&policy_prefix(PREFIX, name), Key::Text(key.into()))
    }

    /// `a` counting `b:c` and `a:b` counting `c` shared one key, and a policy named `slots`
    /// shared the concurrency slots' keys (a sorted set: WRONGTYPE for the policy's GET).
    /// Now no two (policy, key) pairs, and no pair and a slot, give one Redis key.
    #[test]
    fn no_two_policies_and_no_policy_and_the_slots_share_a_key() {
        assert_ne!(bucket("a", "b:c"), bucket("a:b", "c"));
        assert_ne!(bucket("slots", "k"), slot_key(&slots_prefix(PREFIX), "k"));
        let names = [
            "", "a", "b", "a:b", "a:", ":", ":b", "a%3Ab", "a%b", "%", "%25", "%3A", "slots",
            "slots:", "%73lots", "slots:a", "Slots",
        ];
        let keys = [
            "",
            "c",
            "b:c",
            ":",
            ":c",
            "b:",
            "*",
            "k",
            "a:b",
            "slots:k",
            "%3Ab:c",
            "2001:db8::",
        ];
        let mut seen = std::collections::HashMap::new();
        for name in names {
            for key in keys {
                if let Some(other) = seen.insert(bucket(name, key), (name, key)) {
                    panic!("({name:?}, {key:?}) and {other:?} share a Redis key");
                }
            }
        }
        for key in keys {
            if let Some(pair) = seen.get(&slot_key(&slots_prefix(PREFIX), key)) {
                panic!("the slots of {key:?} and the bucket of {pair:?} share a Redis key");
            }
        }
    }

    /// Ordinary names (no `:` or `%`, not `slots`) keep their keys byte for byte: an upgrade
    /// keeps their buckets. The others are escaped, once, in their policy's prefix.
    #[test]
    fn ordinary_names_keep_their_keys_and_the_others_are_escaped() {
        let ip = |name: &str, ip: &str| {
            bucket_key(&policy_prefix(PREFIX, name), Key::Ip(ip.parse().unwrap()))
        };
        assert_eq!(
            ip("per-ip", "198.51.100.9"),
            "hardening:rl:per-ip:198.51.100.9"
        );
        assert_eq!(ip("per-ip", "2001:db8::"), "hardening:rl:per-ip:2001:db8::");
        assert_eq!(
            bucket_key(&policy_prefix(PREFIX, "all"), Key::Global),
            "hardening:rl:all:*"
        );
        assert_eq!(bucket("tokens", "alice"), "hardening:rl:tokens:alice");
        assert_eq!(bucket("per key", "b:c"), "hardening:rl:per key:b:c");
        assert_eq!(bucket("café", "k"), "hardening:rl:café:k");
        assert_eq!(bucket("slot", "k"), "hardening:rl:slot:k");
        assert_eq!(bucket("", "k"), "hardening:rl::k");
        assert_eq!(policy_prefix("", "p"), "p:");
        assert_eq!(
            slot_key(&slots_prefix(PREFIX), "key-1"),
            "hardening:rl:slots:key-1"
        );
        // Escaped.
        assert_eq!(bucket("a:b", "c"), "hardening:rl:a%3Ab:c");
        assert_eq!(bucket("a%3Ab", "c"), "hardening:rl:a%253Ab:c");
        assert_eq!(bucket("slots", "k"), "hardening:rl:%73lots:k");
        assert_eq!(bucket("slots:", "k"), "hardening:rl:slots%3A:k");
    }

    /// The part of `key` Redis Cluster hashes to choose its slot: the text between the
    /// first `{` and the first `}` after it (its hash tag) when that is not empty, else the
    /// whole key.
    fn cluster_hashed(key: &str) -> &str {
        key.find('{')
            .and_then(|open| {
                let tag = &key[open + 1..];
                tag.find('}')
                    .filter(|&close| close > 0)
                    .map(|close| &tag[..close])
            })
            .unwrap_or(key)
    }

    /// A key holding `{…}` (an API key, a principal, a path: client input) made a Redis
    /// Cluster hash tag: the client chose the slot of its own buckets and slots, whatever the
    /// prefix and policy before it. Braces in a key are now escaped (`%7B`, `%7D`, with `%`
    /// as `%25`), so Cluster hashes the whole key; keys apart stay apart.
    #[test]
    fn a_client_cannot_choose_the_cluster_slot_of_its_keys() {
        let keys = [
            "{a}", "x{a}y", "{}", "}{a}", "a{b", "a}b", "{{a}}", "%7Ba%7D", "%", "%25", "a",
        ];
        let mut seen = std::collections::HashMap::new();
        for key in keys {
            for (redis_key, what) in [
                (bucket("per-key", key), "bucket"),
                (slot_key(&slots_prefix(PREFIX), key), "slot"),
            ] {
                assert_eq!(
                    cluster_hashed(&redis_key),
                    redis_key,
                    "the {what} of {key:?}: Cluster hashes only its tag"
                );
                if let Some(other) = seen.insert(redis_key.clone(), key) {
                    panic!("{key:?} and {other:?} share the Redis key {redis_key:?}");
                }
            }
        }
        // An unclosed `{` in the operator's policy name is not closed by a client's `}`.
        let redis_key = bucket("odd{", "x}");
        assert_eq!(cluster_hashed(&redis_key), redis_key);
        // Ordinary keys are as before.
        assert_eq!(bucket("tokens", "alice"), "hardening:rl:tokens:alice");
        assert_eq!(bucket("per-key", "{a}"), "hardening:rl:per-key:%7Ba%7D");
    }

    /// Slot ids told instances apart by the process id, a counter and the clock's sub-second
    /// nanoseconds: in containers, where every instance is pid 1, two machines' ids differed
    /// in about 30 bits of start-up time, and a collision let one machine's release free the
    /// other's slot. Now 64 bits from the OS's randomness: no bit is the same in every id of
    /// a process (a bit fixed by chance in 64 ids: one chance in 2^57).
    #[test]
    fn instance_ids_have_no_bit_fixed_by_the_process() {
        let ids: Vec<u64> = (0..64).map(|_| instance_id()).collect();
        let varying = ids.iter().fold(0, |bits, id| bits | (id ^ ids[0]));
        assert_eq!(
            varying,
            u64::MAX,
            "bits the same in every instance id of this process: {:#018x}",
            !varying
        );
    }

    fn field(status: PolicyStatus) -> String {
        ratelimit_header(&[status])
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn the_reset_of_a_drained_burst_is_its_period() {
        let headers = http::HeaderMap::new();
        let keys = RequestKeys::new(None, &headers);
        for (quota, t) in drained() {
            let p = RedisPolicy::new(
                Policy::global("p", quota),
                FailureMode::FailClosed,
                "x:".into(),
            );
            // What GCRA returns for a burst drained at once: the capacity, in µs.
            let status = p.status(p.capacity);
            assert!(status.reset() >= quota.period(), "{quota:?}");
            assert_eq!(field(status), format!("\"p\";r=0;t={t}"), "{quota:?}");
            // Where the µs keep the rate (not 2 000 000 a second, 500 ns a unit in memory)
            // a µs further from full rounds up, and the in-memory limiter (and so the
            // fallback) reads the same.
            if quota.count() < 1_000_000 {
                // A µs further from full rounds up.
                assert_eq!(
                    field(p.status(p.capacity + 1)),
                    format!("\"p\";r=0;t={}", t + 1),
                    "{quota:?}"
                );
                let memory = RateLimiter::new([Policy::global("p", quota)]);
                assert!(memory.check_at(&keys, quota.burst_size(), 0).is_admitted());
                let status = memory.statuses_at(&keys, 0)[0].clone();
                assert_eq!(field(status), format!("\"p\";r=0;t={t}"), "{quota:?}");
            }
        }
    }
}
