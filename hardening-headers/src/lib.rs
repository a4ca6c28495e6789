//! Security headers for tower and axum services.
//!
//! **Status: planned; nothing is built yet.** The scope, from the project's design:
//!
//! - the strict header set (HSTS on HTTPS only, CSP, `X-Content-Type-Options`,
//!   `X-Frame-Options`, `Referrer-Policy`, COOP/CORP, `Permissions-Policy`, …) computed once
//!   at build time;
//! - per-response CSP nonces and a `CspNonce` extractor;
//! - `Set-Cookie` enforcement (`Secure; HttpOnly; SameSite=Lax`, `__Host-` prefix);
//! - an HTTPS redirect.
//!
//! Its errors are answered through `hardening-errors`.
