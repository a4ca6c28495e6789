//! Rate limits for tower and axum services.
//!
//! - [`Quota`]: quotas that read right (`per_minute(100)` is a hundred a minute), explicit
//!   burst, `NonZero` counts.
//! - [`RateLimiter`]: keyed GCRA over governor's concurrent state store; several
//!   [`Policy`]s per request (per client IP with IPv6 grouped by /64, per header value,
//!   global) decided all-or-nothing; bounded memory without a background thread.
//! - [`ratelimit_header`] / [`RateLimiter::policy_header`]: the IETF `RateLimit` and
//!   `RateLimit-Policy` fields. `hardening-core` answers refusals with a 429 problem
//!   (`quota-exceeded`, `violated-policies`, `Retry-After`).
//!
//! **Planned, not built yet** (see the project's issue): cost reservation and settlement
//! (LLM tokens), long-period budgets, the Redis store
//! with failure modes, shadow mode.
//!
//! [`RateLimitLayer`] applies a limiter on its own, keyed by the socket peer.
//! [`ConcurrencyLimiter`] caps requests in flight per client and overall (load shedding).
//! [`LoginThrottle`] slows password guessing: failures only, per account and per IP,
//! exponential lockout.

mod concurrency;
mod layer;
mod limiter;
mod login;
mod quota;

pub use concurrency::{ConcurrencyLimiter, ConcurrencyRefusal, Permit};
pub use layer::{RateLimit, RateLimitLayer, ResponseFuture};
pub use limiter::{
    Decision, KeyKind, Policy, PolicyStatus, RateLimiter, RequestKeys, ratelimit_header,
};
pub use login::LoginThrottle;
pub use quota::Quota;
