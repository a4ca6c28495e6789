//! Authentication and authorisation for axum services.
//!
//! - [`JwtVerifier`]: JWT verification per RFC 8725 (one algorithm per key, never `none`,
//!   `exp` required, `kid` rotation, `jku`/`x5u`/`x5c`/`jwk`/`crit` refused, bounded length,
//!   duplicate members refused), keys checked at start-up.
//! - [`AuthLayer`] + [`Authenticated<C>`]: the token verified once per request (bearer or
//!   session cookie); 401 problems with RFC 6750 challenges; [`Principal`] in the
//!   extensions for logs and limiters; role and scope guards (403).
//!
//! - [`Passwords`]: argon2id (OWASP parameters or stronger) on the blocking pool behind a
//!   CPU-sized semaphore, dummy verification for unknown accounts, rehash on old parameters
//!   or legacy SHA-256.
//!
//! **Planned, not built yet** (see the project's issue): owner-scoped loading (`Owned<T>`)
//! with an IDOR probe, CSRF, JWKS fetching, a `jti` denylist, login throttling, bcrypt.

mod authenticated;
mod jwt;
mod passwords;

pub use authenticated::{
    AUTH_TARGET, Auth, AuthLayer, Authenticated, CredentialSource, ResponseFuture,
};
pub use jwt::{JwtError, JwtVerifier, JwtVerifierBuilder, KeyError, Principal, Verified};
pub use passwords::{MAX_PASSWORD_LEN, PasswordError, Passwords, Verification};
