//! Rate limits that also cap cost, for tower and axum services.
//!
//! **Status: planned; nothing is built yet.** The scope, from the project's design:
//!
//! - keyed GCRA limits (governor) per client IP or principal;
//! - cost-aware reserve/settle for usage such as LLM tokens, budgets and concurrency limits;
//! - IETF `RateLimit` / `RateLimit-Policy` headers and `Retry-After`;
//! - an in-memory store and a Redis store, with explicit fail-open/fail-closed behaviour.
//!
//! Its errors are answered through `hardening-errors`.
