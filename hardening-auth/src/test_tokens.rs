//! An HS256 verifier and tokens for this crate's unit tests.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::{JwtVerifier, JwtVerifierBuilder};

const SECRET: &[u8] = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj";

/// A builder with the key of [`token`]'s tokens, to add settings to.
pub(crate) fn builder() -> JwtVerifierBuilder {
    JwtVerifier::builder()
        .hmac(None, Algorithm::HS256, SECRET)
        .unwrap()
}

/// A verifier of [`token`]'s tokens.
pub(crate) fn verifier() -> JwtVerifier {
    builder().build().unwrap()
}

/// `claims`, expiring in ten minutes, signed for [`verifier`].
pub(crate) fn token(claims: Value) -> String {
    token_with_header(Header::new(Algorithm::HS256), claims)
}

/// `claims` signed for [`verifier`], expired an hour ago (past any leeway).
pub(crate) fn expired_token(mut claims: Value) -> String {
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    claims["exp"] = json!(hour_ago);
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

/// [`token`] with this header (its `alg` must stay `HS256`).
pub(crate) fn token_with_header(header: Header, mut claims: Value) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    claims["exp"] = json!(exp);
    encode(&header, &claims, &EncodingKey::from_secret(SECRET)).unwrap()
}
