//! Authentication and authorisation for axum services.
//!
//! Most services depend on `hardening-core` only, which re-exports this crate as
//! `hardening_core::auth` (feature `auth`) and runs its CSRF check inside `Hardening`.
//! Depend on this crate directly to use it on its own.
//!
//! - [`JwtVerifier`]: JWT verification per RFC 8725 (one algorithm per key, never `none`,
//!   `exp` and `sub` required, `kid` rotation, `jku`/`x5u`/`x5c`/`jwk`/`crit` refused,
//!   bounded length, duplicate members refused), keys checked at start-up.
//! - JWKS: [`JwtVerifierBuilder::jwks_url`] fetches the provider's JWK Set at start-up
//!   ([`JwtVerifierBuilder::connect`]), caches it, refreshes it in the background and, on an
//!   unknown `kid`, at most once per [`JwksPolicy`] interval; keys are refused once no fetch
//!   has succeeded for [`JwksPolicy::max_key_age`]; `oct` keys are refused and each
//!   key verifies only the algorithm its type decides. `https://` with feature `jwks-rustls`
//!   or your own [`JwksFetcher`].
//! - [`AuthLayer`] + [`Authenticated<C>`]: the token verified once per request (bearer or
//!   session cookie); 401 problems with RFC 6750 challenges; [`Principal`] in the
//!   extensions for logs and limiters once every check, the denylist included, has passed;
//!   role and scope guards (403; a missing scope with RFC 6750's `insufficient_scope`
//!   challenge, [`InsufficientScope`]). `Option<Authenticated>` reads a session cookie that
//!   does not pass (expired, revoked, …) as no session; a bad bearer token stays a 401.
//!   `Authenticated`'s 401 for such a cookie clears it (`Max-Age=0`).
//! - [`ApiKeyLayer`] + [`ApiKey`]: API keys for machine clients (`x-api-key`, another
//!   header, or `Authorization: Bearer`), looked up once a request by their public
//!   [`ApiKeyId`] in an [`ApiKeyStore`] ([`MemoryApiKeys`], or your database) that keeps
//!   only their SHA-256 [`ApiKeyDigest`]; a live key's [`Principal`] goes where a token's
//!   goes ([`Authenticated`], [`Owned`], per-principal limits, the access log); anything else
//!   is a 401 problem whose challenge names the header (`ApiKey header="x-api-key"`).
//! - [`SessionIssuer`]: sessions signed with the layer's own verifier's HMAC key, set in its
//!   session cookie, and ended ([`CurrentSession`], [`SessionIssuer::logout`]) by revoking
//!   their `jti` on its denylist; what cannot work fails at build.
//!
//! - [`Passwords`]: argon2id (OWASP parameters or stronger) on the blocking pool behind a
//!   CPU-sized semaphore with a bounded queue (past it, `Busy` at once), dummy verification
//!   for unknown accounts, rehash on old parameters or legacy hashes (unsalted SHA-256,
//!   bcrypt `$2a$`/`$2b$`/`$2y$`).
//!
//! - [`Csrf`]: cross-origin protection for unsafe requests (and WebSocket handshakes) that
//!   carry browser credentials, cookies or HTTP authentication (`Sec-Fetch-Site`, then
//!   `Origin` vs `Host`; trusted origins by scheme, host and port; shadow mode).
//!   `hardening-core` runs it as step 7 of `Hardening` (feature `auth`).
//!
//! - [`OwnedResource`] + [`Owned<T>`]: resources loaded only through an owner-scoped query;
//!   not found and not yours are the same 404; admin override by a named role, logged.
//!   One resource, one URL: integer ids only in their canonical spelling (`42`, not `042`
//!   or `+42`), and [`CanonicalId<T>`] for any other `FromStr` + `Display` id (a UUID).
//! - `idor_probe` (feature `test-util`): proves in your own tests that what one user
//!   created cannot be read, changed, listed or deleted by another; `Passwords::hold_permits`
//!   (same feature) takes every hashing permit, to test what a saturated hasher answers.
//!
//! - [`Denylist`] / [`MemoryDenylist`] / `RedisDenylist` (feature `redis`): revoked `jti`s
//!   refused, kept until `exp` + [`REVOCATION_GRACE`] (store failures fail closed: 503 with
//!   `Retry-After: 1`, or a store's [`DenylistUnavailable::retry_after`]: `RedisDenylist`'s
//!   circuit breaker's cool-down);
//!   in memory, one subject's revocations past a limit merge into one entry, so one
//!   account cannot fill the list.
//!
//! Login throttling lives in `hardening-ratelimit` (`LoginThrottle`).
//!
//! # Cargo features
//!
//! | feature       | default | what it adds |
//! |---------------|---------|--------------|
//! | `jwks-rustls` | no      | `https://` JWKS URLs for [`HttpFetcher`] (rustls with ring and Mozilla's roots) |
//! | `redis`       | no      | `RedisDenylist`: revocations shared by every instance |
//! | `test-util`   | no      | `idor_probe` and `Passwords::hold_permits`, for your own tests |

// docs.rs (`--cfg docsrs`): each item gated by a Cargo feature says which one.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod api_keys;
mod authenticated;
mod canonical;
mod csrf;
mod denylist;
#[cfg(feature = "test-util")]
mod idor;
mod jwks;
mod jwt;
mod owned;
mod passwords;
#[cfg(feature = "redis")]
mod redis_denylist;
mod session;
#[cfg(test)]
mod test_tokens;

pub use api_keys::{
    ApiKey, ApiKeyAuth, ApiKeyDigest, ApiKeyError, ApiKeyId, ApiKeyLayer, ApiKeyLookup,
    ApiKeyResponseFuture, ApiKeyStore, ApiKeyStoreError, InvalidApiKeyHeader, MemoryApiKeys,
    StoredApiKey,
};
pub use authenticated::{
    AUTH_TARGET, Auth, AuthLayer, Authenticated, CredentialSource, InsufficientScope,
    InvalidSessionCookie, ResponseFuture,
};
pub use canonical::CanonicalId;
pub use csrf::{Csrf, CsrfReason, InvalidExemptPath, InvalidOrigin};
pub use denylist::{
    Denylist, DenylistError, DenylistFull, DenylistFuture, DenylistUnavailable, MemoryDenylist,
    REVOCATION_GRACE, TokenRef,
};
#[cfg(feature = "test-util")]
pub use idor::{Credentials, IdorFinding, IdorRoutes, idor_probe};
/// The signing algorithm [`JwtVerifierBuilder::hmac`] and its siblings take, re-exported so
/// that verifying tokens needs no dependency on `jsonwebtoken` of the same version.
pub use jsonwebtoken::Algorithm;
pub use jwks::{HttpFetcher, JwksFetchError, JwksFetchFuture, JwksFetcher, JwksPolicy};
pub use jwt::{JwtError, JwtVerifier, JwtVerifierBuilder, KeyError, Principal, Verified};
pub use owned::{Owned, OwnedResource};
#[cfg(any(test, feature = "test-util"))]
pub use passwords::HeldPermits;
pub use passwords::{MAX_PASSWORD_LEN, PasswordError, Passwords, Verification};
#[cfg(feature = "redis")]
pub use redis_denylist::{RedisDenylist, RedisDenylistBuilder, RedisDenylistError};
pub use session::{
    CurrentSession, IssuedSession, LoggedOut, SessionConfigError, SessionError, SessionIssuer,
    SessionIssuerBuilder,
};
