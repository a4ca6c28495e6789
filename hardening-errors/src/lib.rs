//! RFC 9457 problem responses for tower and axum services.
//!
//! Every other crate of the hardening suite answers errors through this crate, so a client
//! sees one shape for every failure: an `application/problem+json` body with a `type`, a
//! `title`, a `status`, a `detail` it can act on and the `request_id` to quote to support.
//!
//! Most services depend on `hardening-core` only, which runs [`ProblemLayer`]'s mapping
//! inside `Hardening::strict()` and re-exports this crate as `hardening_core::errors`.
//! Depend on this crate directly to use it on its own.
//!
//! - [`Problem`]: the RFC 9457 body, with a builder, [`IntoResponse`](axum::response::IntoResponse)
//!   for axum and [`Problem::into_http_response`] for plain tower services.
//! - [`Error`]: the error classes every service needs (validation, unauthenticated (with a
//!   `WWW-Authenticate` challenge: `Bearer`, or another with [`Error::unauthenticated_with`]; a
//!   bare 401 problem gets `Bearer` too, as RFC 9110 requires a challenge on every 401), forbidden,
//!   not found, conflict, payload too large, too many requests, unavailable (with or without
//!   `Retry-After`), timeout, internal). An internal error keeps its source chain for the log and answers only a
//!   generic 500.
//! - [`RequestId`]: the id that ties a response to its log lines; [`PrincipalId`]: who made
//!   the request, for the access log and per-principal limits; [`TenantId`]: the tenant they
//!   belong to, for per-tenant limits.
//! - [`ProblemLayer`]: turns every error response that is not already a problem (axum
//!   extractor rejections, 404 fallbacks, 405, 413, 408, 503, panics) into one, without echoing
//!   internal text or large input back, and reports each rejection (401, 403, 408, 413, 429,
//!   panics) as one security event ([`SECURITY_TARGET`], WARN). A server-rendered app keeps
//!   its handlers' own HTML pages for client errors with
//!   [`ProblemLayer::keep_html_error_pages`].
//! - `Valid<E>` (feature `validation`): runs garde's checks and answers 422 with field errors.
//! - [`types`]: the problem type URIs this suite uses, documented in one place.
//! - [`origin`]: origins parsed as browsers write them, for CORS and the CSRF check.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use hardening_errors::{Error, ProblemLayer};
//! # use tower::ServiceExt;
//!
//! async fn find_order() -> Result<String, Error> {
//!     Err(Error::NotFound)
//! }
//!
//! let app = Router::new()
//!     .route("/orders/1", get(find_order))
//!     .layer(ProblemLayer::new());
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let res = app
//!     .oneshot(http::Request::get("/nowhere").body(axum::body::Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(res.status(), 404);
//! assert_eq!(res.headers()["content-type"], "application/problem+json");
//! assert!(res.headers().contains_key("x-request-id"));
//! # });
//! ```
//!
//! # Cargo features
//!
//! | feature      | default | what it adds |
//! |--------------|---------|--------------|
//! | `validation` | no      | `Valid<Json<T>>`, `Valid<Query<T>>`, `Valid<Form<T>>` extractors backed by garde |
//! | `redis`      | no      | `check_eviction`: the start-up check of a Redis's `maxmemory-policy` for the Redis stores; `check_persistence`: the start-up warning about a Redis that keeps nothing across a restart, for the `jti` denylist; `redis_connection_info`: their TCP settings; `RedisConnection`: their connection, replaced when it stops answering, its eviction policy asked again every `EVICTION_RECHECK_EVERY`; `redis_readiness_check`: their readiness check, a `PING` over it; `RedisBreaker`: their circuit breaker; `RedisOutageLog`: what they log when it opens and when Redis answers again; `RedisStoreSettings`: the settings their builders share (URL, prefix, timeout, breaker, eviction), checked and connected with alike |
//! | `test-util`  | no      | `test_log`: the tracing events of the test on this thread, for its assertions (this workspace's unit tests use it) |

// docs.rs (`--cfg docsrs`): each item gated by a Cargo feature says which one.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body_end;
mod client_group;
mod collect;
mod debug_as_message;
mod error;
mod header_value;
mod log_text;
mod mapping;
pub mod origin;
mod panic_hook;
mod principal;
mod problem;
mod redact;
#[cfg(feature = "redis")]
mod redis_breaker;
#[cfg(feature = "redis")]
mod redis_connection;
#[cfg(feature = "redis")]
mod redis_eviction;
#[cfg(feature = "redis")]
mod redis_outage;
#[cfg(feature = "redis")]
mod redis_persistence;
#[cfg(feature = "redis")]
mod redis_settings;
#[cfg(feature = "redis")]
mod redis_tcp;
mod rejection;
mod request_id;
mod security_event;
mod spelling;
#[cfg(feature = "test-util")]
pub mod test_log;
pub mod types;
#[cfg(feature = "validation")]
mod validation;
mod warn_once;

pub use body_end::BodyEnd;
pub use client_group::{SUBSCRIBER_PREFIX, client_group};
pub use collect::{CollectCapped, CollectError, MAX_EMPTY_FRAMES, collect_capped};
pub use error::Error;
pub use header_value::{
    InvalidContentLength, content_length, cookie_name_problem, decimal_header_value,
    declared_content_length, exempt_path_problem, forwarded_proto_says_https, host_without_port,
    is_dns_name, join_header_values, media_type, retry_after_value, static_header_value,
};
pub use log_text::{after_userinfo, may_be_a_token, write_printable_ascii};
pub use mapping::{
    CaughtPanic, ProblemBody, ProblemLayer, ProblemService, ResponseFuture, drop_panic_payload,
    is_html_error_page, log_panic, panic_response, reject,
};
pub use panic_hook::redact_panic_messages;
pub use principal::{PrincipalId, PrincipalSlot, TenantId};
pub use problem::{DEFAULT_CHALLENGE, FieldError, Problem, challenge_a_401};
pub use redact::{
    SECRET_NAME_PARTS, SECRET_NAME_WORDS, is_secret_name, redact_error_chain, redact_secrets,
    redact_url,
};
#[cfg(feature = "redis")]
pub use redis_breaker::RedisBreaker;
#[cfg(feature = "redis")]
pub use redis_connection::readiness::{RedisNotReady, RedisReadiness, redis_readiness_check};
#[cfg(feature = "redis")]
pub use redis_connection::{EVICTION_RECHECK_EVERY, PING_WHEN_IDLE_FOR, RedisConnection};
#[cfg(feature = "redis")]
pub use redis_eviction::{EvictionRisk, check_eviction};
#[cfg(feature = "redis")]
pub use redis_outage::{OutageWords, RedisOutageLog};
#[cfg(feature = "redis")]
pub use redis_persistence::check_persistence;
#[cfg(feature = "redis")]
pub use redis_settings::{LateReplies, RedisStartError, RedisStoreSettings};
#[cfg(feature = "redis")]
pub use redis_tcp::redis_connection_info;
pub use request_id::{InvalidRequestId, RequestContext, RequestId};
pub use security_event::{
    SECURITY_TARGET, SecurityEventReported, SecurityEventsLogged, log_security_event, mark_logged,
    mark_reported, named_security_event, rejection_event, report_rejection, reported_at_its_status,
    violated_policies,
};
pub use spelling::{closest_name, near_miss};
#[cfg(feature = "validation")]
pub use validation::Valid;
pub use warn_once::WarnOnce;

/// The `content-type` of every problem response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The tracing target under which this crate logs mapped errors and panics.
pub const LOG_TARGET: &str = "hardening::errors";
