//! Security headers for tower and axum services.
//!
//! Most services depend on `hardening-core` only, which runs all of this inside
//! `Hardening::strict()` and re-exports this crate as `hardening_core::headers` (feature
//! `headers`, on by default). Depend on this crate directly to use its layer on its own.
//!
//! - [`HeaderPolicy`] → [`HeaderSet`]: the strict header set (API and HTML presets), every
//!   header configurable, validated at build time, values computed once.
//! - [`Csp`]: Content-Security-Policy with per-response nonces ([`CspNonce`] extractor),
//!   `report-uri`, and report-only mode ([`Csp::dangerous_report_only`]); [`CspReports`]
//!   receives and logs the reports.
//! - [`CookiePolicy`]: every `Set-Cookie` gets `Secure; HttpOnly; SameSite=Lax`, a capped
//!   lifetime, and `__Host-`/`__Secure-` rules.
//! - [`SecureCookies`]: signed and encrypted cookies with key rotation.
//! - [`HttpsRedirect`] and [`is_https`]: plain HTTP redirected; HSTS only over HTTPS.
//! - [`SecurityHeadersLayer`]: all of it as a standalone tower layer. `hardening-core` runs
//!   the same [`HeaderSet`] inside `Hardening::strict()`.
//!
//! # Why these defaults
//!
//! | header | value | why |
//! |---|---|---|
//! | `Strict-Transport-Security` | `max-age=63072000; includeSubDomains` | two years, as hstspreload.org asks; only on HTTPS responses (RFC 6797 §7.2 forbids it over HTTP) |
//! | `Content-Security-Policy` (API) | `default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'` | a JSON response never needs to load anything; if it is ever rendered as HTML, nothing runs |
//! | `Content-Security-Policy` (HTML) | `script-src 'nonce-…' 'strict-dynamic'; style-src 'nonce-…' 'self'; object-src 'none'; base-uri 'none'; …`; none on a `304` (a browser copies its fields onto the page it kept, whose scripts carry the first nonce) | Google's "strict CSP": only scripts and inline styles the server vouched for this response run or apply; injected markup does not (a `style` attribute cannot carry a nonce, so none applies) |
//! | `Content-Security-Policy` (static site, [`Csp::static_site`]) | `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; …`, no nonce | a bundle's `index.html` loads its own files and cannot carry a nonce; nothing inline runs, and the same policy on every response keeps the files cacheable |
//! | `X-Content-Type-Options` | `nosniff` | browsers must not guess a script or stylesheet out of a JSON body |
//! | `X-Frame-Options` | `DENY` | clickjacking, for browsers that predate `frame-ancestors` |
//! | `Referrer-Policy` | `no-referrer` | URLs (and tokens in them) never leak to other sites |
//! | `Cross-Origin-Opener-Policy` | `same-origin` | other sites' windows get no handle on ours (XS-Leaks, Spectre) |
//! | `Cross-Origin-Resource-Policy` | `same-origin` | other sites cannot embed our responses |
//! | `Permissions-Policy` | camera, microphone, geolocation, payment, USB, … `=()` | an XSS cannot reach powerful features |
//! | `X-DNS-Prefetch-Control` | `off` | no DNS lookups leak which links a page shows |
//! | `X-Permitted-Cross-Domain-Policies` | `none` | no Flash/PDF cross-domain policy files |
//! | `Server`, `X-Powered-By`, … | removed | version fingerprints help attackers pick exploits |
//! | `Cache-Control` | `no-store` when the request had `Authorization` or a cookie, and on pages whose CSP carries a nonce (a handler's own made `private`; `CDN-Cache-Control` and the like dropped); a `304` gets its 200's rule when its `Content-Type` or the request's credentials say what it revalidates, its own `Cache-Control` made `private` (a cache copies a 304's fields onto what it stored) | shared caches must not keep personal responses, nor give every visitor one nonce |
//! | `Set-Cookie` | `Secure; HttpOnly; SameSite=Lax`, at most 30 days | cookies stay off plain HTTP, out of scripts, and off cross-site POSTs |
//!
//! Loosening any of it goes through a method named `dangerous_*`, which logs a warning
//! (target [`LOG_TARGET`], field `setting`: the method) when it is called, that is at
//! start-up. The other settings take only values at least as strict as these, or, for the
//! CSP, list hosts; a weaker value is a [`ConfigError::Loosening`] naming the `dangerous_*`
//! method that takes it:
//!
//! | loosening | method |
//! |---|---|
//! | a header sent with a weaker value, or not at all | [`HeaderPolicy::dangerous_header`], [`HeaderPolicy::dangerous_remove_header`], [`HeaderPolicy::dangerous_referrer_policy`], [`HeaderPolicy::dangerous_frame_options`], [`HeaderPolicy::dangerous_cross_origin_opener_policy`], [`HeaderPolicy::dangerous_cross_origin_resource_policy`] |
//! | HSTS shorter than two years or without subdomains, or none | [`HeaderPolicy::dangerous_hsts`], [`HeaderPolicy::dangerous_without_hsts`] |
//! | `'unsafe-…'` CSP sources, a wildcard where scripts load, framing, a preset directive removed, a directive newer than the crate knows, report-only mode, no CSP | [`Csp::dangerous_directive`], [`Csp::dangerous_remove_directive`], [`Csp::dangerous_unlisted_directive`], [`Csp::dangerous_report_only`], [`HeaderPolicy::dangerous_without_csp`] |
//! | responses to requests with credentials cacheable | [`HeaderPolicy::dangerous_allow_caching_with_credentials`] |
//! | a cookie without `HttpOnly`, `SameSite=None`, without `Secure`, living over 30 days | [`CookiePolicy::dangerous_script_readable`], [`CookiePolicy::dangerous_same_site_none`], [`CookiePolicy::dangerous_allow_insecure`], [`CookiePolicy::dangerous_max_age`] |

// docs.rs (`--cfg docsrs`): each item gated by a Cargo feature says which one.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cookies;
mod csp;
mod error;
mod https;
mod layer;
mod nonce;
mod policy;
mod report;
mod request_headers;
#[cfg(test)]
mod response_fuzz;
mod secure_cookies;
#[cfg(test)]
mod test_log;

/// The cookie type [`SecureCookies`] signs and encrypts, re-exported so that a service using
/// it (reading its session cookie with `Cookie::split_parse`, building one with
/// `Cookie::build`) needs no dependency on `cookie` of the same version.
pub use cookie::Cookie;
/// The `SameSite` values [`CookiePolicy::same_site`] takes (re-exported from the `cookie`
/// crate, so that users of this crate need not depend on it).
pub use cookie::SameSite;
pub use cookies::CookiePolicy;
pub use csp::Csp;
pub use error::ConfigError;
pub use hardening_errors::content_length;
pub use https::{HttpsRedirect, RedirectDecision, Tls, is_https};
pub use layer::{ResponseFuture, SecurityHeaders, SecurityHeadersLayer};
pub use nonce::CspNonce;
pub use policy::{HeaderPolicy, HeaderSet, Merge, RequestFacts};
pub use report::CspReports;
pub use secure_cookies::SecureCookies;

/// The tracing target of this crate's warnings (dropped cookies, loosened settings).
pub const LOG_TARGET: &str = "hardening::headers";

/// Logs that the `dangerous_*` method `setting` loosened a strict default. Called once per
/// call of such a method, which happens while the service is being set up.
pub(crate) fn warn_loosened(setting: &str, effect: &str) {
    tracing::warn!(target: LOG_TARGET, setting, "security headers loosened: {effect}");
}
