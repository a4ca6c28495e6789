//! One tower layer that makes an axum or tower service safe to put in front of real users.
//!
//! **Status: planned.** `Hardening::strict()` (the fused layer: request id, client IP behind
//! trusted proxies, redacted access log, body/query/time limits, panics, CORS, host allowlist,
//! security events) is the next piece of work and is not built yet. What this crate offers
//! today is the error foundation it will stand on, re-exported as [`errors`]:
//!
//! ```
//! use axum::{Router, routing::get};
//! use hardening_core::errors::ProblemLayer;
//!
//! let app: Router = Router::new().route("/", get(|| async { "hi" })).layer(ProblemLayer::new());
//! ```
//!
//! # Cargo features
//!
//! | feature      | default | what it adds |
//! |--------------|---------|--------------|
//! | `headers`    | yes     | `hardening-headers` (planned: security headers, CSP nonces, cookies) |
//! | `ratelimit`  | yes     | `hardening-ratelimit` (planned: keyed and cost-aware limits) |
//! | `auth`       | no      | `hardening-auth` (planned: JWT, owner-scoped loading, CSRF) |
//! | `validation` | no      | `hardening_errors::Valid` extractors backed by garde |
//! | `full`       | no      | all of the above |

pub use hardening_errors as errors;

#[cfg(feature = "auth")]
pub use hardening_auth as auth;
#[cfg(feature = "headers")]
pub use hardening_headers as headers;
#[cfg(feature = "ratelimit")]
pub use hardening_ratelimit as ratelimit;
