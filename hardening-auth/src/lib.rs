//! Authentication and data-layer authorisation for axum services.
//!
//! **Status: planned; nothing is built yet.** The scope, from the project's design:
//!
//! - JWT validation per RFC 8725 and an `Authenticated<C>` extractor (401 with
//!   `WWW-Authenticate`);
//! - `Owned<T>`: loads a row only through an owner-scoped query, so "not found" and
//!   "not yours" are the same 404; role and scope guards (403);
//! - argon2id password hashing off the async runtime;
//! - CSRF protection (`Sec-Fetch-Site`, then `Origin`) and signed cookies.
//!
//! Its errors are answered through `hardening-errors`.
