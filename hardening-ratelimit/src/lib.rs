//! Rate limits for tower and axum services.
//!
//! Most services depend on `hardening-core` only, which applies a per-IP limit inside
//! `Hardening::strict()` and re-exports this crate as `hardening_core::ratelimit` (feature
//! `ratelimit`, on by default; `redis` for the Redis store). Depend on this crate directly
//! to use its layers on their own.
//!
//! - [`Quota`]: quotas that read right (`per_minute(100)` is a hundred a minute), explicit
//!   burst, `NonZero` counts.
//! - [`RateLimiter`]: keyed GCRA over governor's concurrent state store; several
//!   [`Policy`]s per request (per client IP with IPv6 grouped by /64, per header value, per
//!   principal, per tenant, global) decided all-or-nothing; bounded memory without a
//!   background thread; [`Policy::shadow`] to decide and report without refusing.
//! - [`CostLayer`] / [`RateLimiter::reserve`]: cost-aware limits against "denial of wallet":
//!   an estimate (`max_tokens` from the JSON body, clamped) reserved atomically before the
//!   handler runs, settled to the actual cost ([`Usage`], [`ActualCost`]) when the response
//!   body ends; a 5xx, an error or a dropped body is charged only the usage reported, the
//!   rest refunded. Long-period budgets (`Quota::per_day(100_000)` per principal) sit
//!   beside short windows in the same decision.
//! - [`RateLimiter::ratelimit_header`] (or [`ratelimit_header`] for any statuses) /
//!   [`RateLimiter::counted_policy_header`]: the IETF `RateLimit` and `RateLimit-Policy`
//!   fields, naming the policies that counted the request.
//!   `hardening-core` answers refusals with a 429 problem (`quota-exceeded`,
//!   `violated-policies`, `Retry-After`).
//! - With feature `redis`: `RedisLimiter`, the same decisions shared by every instance of a
//!   service through Redis, with a chosen failure mode when Redis is unreachable; and
//!   `RedisLoginThrottle`, [`LoginThrottle`]'s counts shared the same way.
//!
//! [`RateLimitLayer`] applies a limiter on its own, keyed by the socket peer.
//! [`ConcurrencyLimiter`] caps requests in flight per client and overall (load shedding).
//! [`LoginThrottle`] slows password guessing: failures only, per account from one client
//! (locking only that client out of it), per account from all clients (a much higher count)
//! and per IP, exponential lockout.
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `redis` | no      | `RedisLimiter` and `RedisRateLimitLayer`: limits shared by every instance; `RedisLoginThrottle`: login throttling shared by every instance |

// docs.rs (`--cfg docsrs`): each item gated by a Cargo feature says which one.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod concurrency;
mod cost;
mod layer;
mod limiter;
mod login;
mod quota;
#[cfg(feature = "redis")]
mod redis_login;
#[cfg(feature = "redis")]
mod redis_outcome;
#[cfg(feature = "redis")]
mod redis_store;
mod respond;

#[cfg(test)]
mod ledger_audit;

pub use concurrency::{ConcurrencyLimiter, ConcurrencyRefusal, Permit};
pub use cost::{ActualCost, Cost, CostConfigError, CostLayer, CostStore, Estimate, Usage};
pub use layer::{RateLimit, RateLimitLayer, ResponseFuture};
pub use limiter::{
    Decision, KeyFn, KeyKind, LimiterConfigError, Policy, PolicyName, PolicyStatus, RateLimiter,
    RequestKeys, Reservation, Statuses, ratelimit_header,
};
pub use login::{LoginAttempt, LoginConfigError, LoginRefused, LoginThrottle};
pub use quota::Quota;
#[cfg(feature = "redis")]
pub use redis_login::{
    MIN_HASH_KEY_LEN, RedisLoginAttempt, RedisLoginError, RedisLoginThrottle,
    RedisLoginThrottleBuilder,
};
#[cfg(feature = "redis")]
pub use redis_store::{
    FailureMode, RedisLimiter, RedisLimiterBuilder, RedisRateLimit, RedisRateLimitLayer,
    RedisReservation, RedisSlot, RedisStoreError, RedisUnavailable,
};
pub use respond::{RATELIMIT, RATELIMIT_POLICY, RateLimitFields};
