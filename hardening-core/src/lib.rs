//! One tower layer that makes an axum or tower service safe to put in front of real users.
//!
//! This is the one crate to depend on: the others of the suite come with it, behind the
//! [Cargo features](#cargo-features) below, as [`errors`], `headers`, `ratelimit` and
//! `auth` (`hardening_core::headers::Csp`, say).
//!
//! ```
//! use axum::{Router, routing::get};
//! use hardening_core::Hardening;
//! # use tower::ServiceExt;
//!
//! let app = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(Hardening::strict());
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let res = app
//!     .oneshot(http::Request::get("/?a=1").body(axum::body::Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(res.status(), 200);
//! assert!(res.headers().contains_key("x-request-id"));
//! # });
//! ```
//!
//! # What `Hardening::strict()` does, in this order
//!
//! On the way in, each step able to answer early with an RFC 9457 problem:
//!
//! 1. **Request id**: a well-formed `x-request-id` from a trusted proxy, else a new UUIDv7
//!    (no system call); in the request extensions ([`RequestId`] extractor), the tracing
//!    span and the `x-request-id` response header. A request that carries `x-request-id`
//!    reaches the service with the chosen id there too, in one field (a client's own is
//!    replaced), so a handler that forwards the header forwards the id the logs name; one
//!    without it gets none added (read the id with the extractor).
//! 2. **Client IP**: the socket peer (axum's `ConnectInfo`), or the right-most untrusted hop
//!    of `X-Forwarded-For` / `Forwarded` when the peer is a trusted proxy ([`ClientIp`];
//!    [`KnownClientIp`], for network checks, is never a trusted proxy's own address).
//! - **Health**: `GET /healthz` and `/readyz` ([`Health`]) are answered here, before the
//!   steps below, and kept out of the access log.
//! 3. **Host allowlist**, when configured: an unknown `Host` is answered 400; then the
//!    **HTTPS redirect**, when configured.
//! 4. **CORS**: preflights answered here; no cross-origin access until origins are listed.
//! 5. **Rate limit** (feature `ratelimit`): 100 requests per minute per client IP, burst 50 →
//!    429 problem with `Retry-After`, `violated-policies` and the IETF `RateLimit` headers.
//! 6. **Limits**: more than 50 query parameters → 400; a body over 1 MiB, declared or
//!    streamed (chunked) → 413; 30 s to the response head → 503, or 408 when the request's
//!    body is still arriving (the client is slow); a streamed response body (server-sent
//!    events) runs on past it.
//! 7. **CSRF** (feature `auth`): unsafe requests and WebSocket handshakes with cookies and no
//!    bearer token from another origin (`Sec-Fetch-Site`, then `Origin` vs `Host`) → 403
//!    (cross-site WebSocket hijacking included); so is another site's form submitted without
//!    cookies (a cross-site navigation: login CSRF), and a sibling subdomain's request
//!    without them that needs no preflight (`Sec-Fetch-Site: same-site`; a form-encoded
//!    `fetch`) from an origin not trusted.
//! 8. **The service**, its panics caught → 500.
//!
//! On the way out, once: every error response becomes a problem
//! ([`ProblemLayer`](hardening_errors::ProblemLayer)'s mapping), CORS headers for allowed
//! origins, the security headers and `Set-Cookie` rules of `hardening-headers` (feature
//! `headers`; HSTS only on HTTPS), one [security event](SecurityEvent) per rejection, one
//! redacted access-log event.
//!
//! All of it runs in one [`HardeningService`] with one [`ResponseFuture`]; settings are
//! computed once when the layer is built.
//!
//! # Serving
//!
//! The client IP comes from the connection: serve the router (or any tower service whose
//! error is `Infallible`) with [`serve`] (which also times out slow request headers and
//! shuts down gracefully), or with axum's
//! `into_make_service_with_connect_info::<SocketAddr>()`. Without either, [`ClientIp`] is
//! absent.
//! The timeout needs a tokio runtime with time enabled (as `axum::serve` and
//! `#[tokio::main]` have).
//!
//! # Logs
//!
//! Access-log events go to the tracing target [`ACCESS_TARGET`] with OpenTelemetry-style
//! field names; security events to [`SECURITY_TARGET`]. [`init_json_logs`] sets up JSON logs.
//! Each request runs in an INFO span named `request` with a `request_id` field (target
//! [`REQUEST_SPAN_TARGET`]), so whatever a handler logs carries the request id, as Rails
//! tags its log lines (a streamed body's code too, as the body is sent: a server-sent
//! events stream); the security events and error logs about the request (a caught
//! panic, a server error without a problem) are logged in it too. With a subscriber that
//! enables it, the span costs about 0.6 µs per request (measured with tracing-subscriber's
//! `fmt`); `RUST_LOG=info,hardening::request=off` turns it off and keeps everything else.
//! `Authorization`, `Cookie`, `Set-Cookie`, API-key headers and sensitive query parameters
//! are never printed.
//!
//! # Cargo features
//!
//! | feature      | default | what it adds |
//! |--------------|---------|--------------|
//! | `headers`    | yes     | `hardening-headers`: security headers, CSP nonces, cookie rules, HTTPS redirect |
//! | `ratelimit`  | yes     | `hardening-ratelimit`: keyed GCRA limits, all-or-nothing policies, RateLimit headers |
//! | `auth`       | no      | `hardening-auth`: JWT (RFC 8725), `Authenticated<C>`, argon2id passwords, CSRF |
//! | `validation` | no      | `hardening_errors::Valid` extractors backed by garde |
//! | `metrics`    | no      | `hardening_security_events_total{event}` counter via the `metrics` facade |
//! | `redis`      | no      | `hardening-ratelimit`'s Redis stores: limits and login throttling shared by every instance; with `auth`, `hardening-auth`'s `RedisDenylist` |
//! | `jwks-rustls`| no      | `auth`, and HTTPS for JWKS URLs (rustls with ring and Mozilla's roots) |
//! | `full`       | no      | all of the above |

// docs.rs (`--cfg docsrs`): each item gated by a Cargo feature says which one.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod access_log;
mod body_limit;
mod client_ip;
mod config;
mod cors;
mod error;
mod future;
mod hardening;
mod health;
mod host;
mod panic_body;
mod routes;
mod security_event;
mod serve;
mod service;
#[cfg(test)]
mod test_rng;

pub use access_log::{ACCESS_TARGET, DEFAULT_SENSITIVE_PARAMS, init_json_logs};
pub use client_ip::{ClientIp, ForwardedHeader, IpNet, KnownClientIp};
pub use config::{ENV_VARS, HardeningConfig};
pub use cors::Cors;
pub use error::{ConfigError, LogInitError};
pub use future::ResponseFuture;
pub use hardening::{DEFAULT_BODY_LIMIT, DEFAULT_QUERY_PARAM_LIMIT, DEFAULT_TIMEOUT, Hardening};
pub use hardening_errors::RequestId;
pub use health::Health;
pub use security_event::{SECURITY_TARGET, SecurityEvent};
pub use serve::{Server, serve, shutdown_signal};
pub use service::HardeningService;

// Inlined: `cargo doc -p hardening-core --no-deps` documents them as this crate's modules,
// under the paths users write (`hardening_core::headers::Csp`).
#[doc(inline)]
pub use hardening_errors as errors;

#[cfg(feature = "auth")]
#[doc(inline)]
pub use hardening_auth as auth;
#[cfg(feature = "headers")]
#[doc(inline)]
pub use hardening_headers as headers;
#[cfg(feature = "ratelimit")]
#[doc(inline)]
pub use hardening_ratelimit as ratelimit;

/// The tracing target of this crate's own diagnostics (configuration warnings).
pub const LOG_TARGET: &str = "hardening::core";

/// The tracing target of the per-request span (`request`, level INFO, field `request_id`).
pub const REQUEST_SPAN_TARGET: &str = "hardening::request";
