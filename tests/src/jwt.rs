//! HS256 tokens and verifiers as an identity provider would issue them, for the tests that
//! need a valid token rather than a malformed one (those build their own).

use hardening_core::auth::JwtVerifier;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// How long a token minted here is valid when its claims set no `exp`.
pub const TOKEN_LIFETIME_SECS: u64 = 600;

/// Unix time now, in whole seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// An HS256 token signed with `secret` carrying `claims` (an object), with `exp`
/// [`TOKEN_LIFETIME_SECS`] from now unless the claims set their own.
pub fn hs256_token(secret: &[u8], claims: serde_json::Value) -> String {
    sign(Header::new(Algorithm::HS256), secret, claims)
}

/// [`hs256_token`] with `kid` in its header.
pub fn hs256_token_with_kid(secret: &[u8], kid: &str, claims: serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    sign(header, secret, claims)
}

fn sign(header: Header, secret: &[u8], mut claims: serde_json::Value) -> String {
    if let Some(object) = claims.as_object_mut() {
        object
            .entry("exp")
            .or_insert_with(|| (unix_now() + TOKEN_LIFETIME_SECS).into());
    }
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
        .expect("an HS256 token encodes")
}

/// A verifier of HS256 tokens signed with `secret`, with no `kid`, issuer or audience.
pub fn hs256_verifier(secret: &[u8]) -> JwtVerifier {
    JwtVerifier::builder()
        .hmac(None, Algorithm::HS256, secret)
        .expect("a strong enough secret")
        .build()
        .expect("a verifier with one key")
}
