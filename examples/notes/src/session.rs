//! Sessions: the library's [`SessionIssuer`] signs each login's HS256 token, which the login
//! answer carries both as a bearer token (for API clients) and in the `__Host-session`
//! cookie (for the page); logging out revokes it on the denylist and clears the cookie.

use std::sync::Arc;
use std::time::Duration;

use hardening_core::auth::{
    Algorithm, AuthLayer, IssuedSession, JwtVerifier, MemoryDenylist, SessionError, SessionIssuer,
};
use serde::Serialize;

use crate::ConfigError;

/// The session cookie's name: `__Host-` makes the browser insist on `Secure`, `Path=/` and no
/// `Domain`.
pub const SESSION_COOKIE: &str = "__Host-session";
/// The issuer of our tokens.
pub const ISSUER: &str = "example-notes";
/// The audience of our tokens.
pub const AUDIENCE: &str = "notes-api";
/// How long a session (its token and the cookie) lives.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Revocations the denylist holds: this process's memory, so one instance only (behind a
/// load balancer, `RedisDenylist`), and forgotten on restart (README: a logout lasts as long
/// as its revocation is kept; ours last at most [`TOKEN_LIFETIME`]).
const DENYLIST_CAPACITY: usize = 100_000;

/// The claims a session carries beside those [`SessionIssuer`] sets: the roles (`admin` for
/// the configured admin account, none otherwise), read back by `Authenticated::require_role`.
#[derive(Serialize)]
struct Roles {
    roles: &'static [&'static str],
}

/// The auth layer (bearer token or session cookie, `HS256` under `jwt_secret`, our issuer and
/// audience, at most [`TOKEN_LIFETIME`] old, a `jti` required so that each can be revoked,
/// revocations in memory) and the [`SessionIssuer`] that signs what it accepts.
pub(crate) fn auth(jwt_secret: &[u8]) -> Result<(AuthLayer, SessionIssuer), ConfigError> {
    let verifier = JwtVerifier::builder()
        .hmac(None, Algorithm::HS256, jwt_secret)?
        .issuer(ISSUER)
        .audience(AUDIENCE)
        // No token of ours lives longer: one past this age is refused, whatever its `exp`.
        .max_age(TOKEN_LIFETIME)
        // Ours all carry a `jti` (the denylist's key): one without could not be revoked.
        .require_jti()
        .build()?;
    let auth = AuthLayer::new(verifier)
        .session_cookie(SESSION_COOKIE)?
        .denylist(Arc::new(MemoryDenylist::new(DENYLIST_CAPACITY)));
    let sessions = SessionIssuer::builder(&auth, TOKEN_LIFETIME).build()?;
    Ok((auth, sessions))
}

/// A new session for user `id`, with the `admin` role if `admin`.
pub(crate) fn issue(
    sessions: &SessionIssuer,
    id: i64,
    admin: bool,
) -> Result<IssuedSession, SessionError> {
    let roles = Roles {
        roles: if admin { &["admin"] } else { &[] },
    };
    sessions.issue_with_claims(&subject(id), roles)
}

/// The token subject (`sub`) for user `id`: its decimal digits.
fn subject(id: i64) -> String {
    id.to_string()
}

/// The user id a token subject names: only the form [`subject`] writes (`5`, never `+5`,
/// `05` or ` 5`), so that one account has one subject (per-user limits key on it).
pub(crate) fn user_id(sub: &str) -> Option<i64> {
    sub.parse().ok().filter(|id| subject(*id) == sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `owner_id` was `subject.parse()`, which reads `+5` and `05` as user 5: a token
    /// signed with any of those spellings reached user 5's notes under another subject
    /// (a fresh per-user AI budget for each spelling).
    #[test]
    fn only_the_subject_the_app_writes_names_a_user() {
        for id in [1, 5, 42, i64::MAX] {
            assert_eq!(user_id(&subject(id)), Some(id), "{id}");
        }
        for other in [
            "+5",
            "05",
            "00",
            "-0",
            " 5",
            "5 ",
            "5\n",
            "5.0",
            "0x5",
            "",
            "9223372036854775808",
            "user-5",
        ] {
            assert_eq!(user_id(other), None, "{other:?}");
        }
    }
}
