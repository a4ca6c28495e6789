//! JWT configuration audit, end to end: a token length limit that would refuse every token
//! fails start-up, and each key, configured or from a JWKS, verifies one algorithm only
//! (RFC 8725 §3.1), with real RS256 and PS256 signatures. The JWK Set is served by a
//! fetcher in this process: no network.

#![allow(clippy::unwrap_used, missing_docs)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hardening_auth::{JwksFetchFuture, JwksFetcher, JwksPolicy, JwtError, JwtVerifier, KeyError};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const RSA_A: &[u8] = include_bytes!("fixtures/jwks-test-only-rsa-a.pem");
const RSA_B: &[u8] = include_bytes!("fixtures/jwks-test-only-rsa-b.pem");
const SECRET: &[u8] = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj-config";

/// Serves one JWK Set, whatever the URL.
#[derive(Debug)]
struct Served(Vec<u8>);

impl JwksFetcher for Served {
    fn supports_scheme(&self, _: &str) -> bool {
        true
    }

    fn fetch<'a>(&'a self, _: &'a http::Uri, _: usize) -> JwksFetchFuture<'a> {
        let body = self.0.clone();
        Box::pin(async move { Ok(body) })
    }
}

/// The public JWK of `pem`'s key, with this `kid` and `alg` (none when `None`).
fn jwk(pem: &[u8], kid: &str, alg: Option<&str>) -> Value {
    let key = EncodingKey::from_rsa_pem(pem).unwrap();
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap()).unwrap();
    let object = jwk.as_object_mut().unwrap();
    object.remove("alg");
    object.insert("kid".into(), json!(kid));
    if let Some(alg) = alg {
        object.insert("alg".into(), json!(alg));
    }
    jwk
}

/// A valid token for `kid`, signed with `pem`'s key under `alg`.
fn token(pem: &[u8], alg: Algorithm, kid: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    let claims = json!({ "sub": "user-1", "exp": now + 600 });
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}

/// A verifier of the JWK Set `keys` (plus, optionally, configured keys).
async fn verifier(
    builder: hardening_auth::JwtVerifierBuilder,
    keys: Value,
) -> Result<JwtVerifier, KeyError> {
    let set = serde_json::to_vec(&json!({ "keys": keys })).unwrap();
    builder
        .jwks_url("https://idp.example/jwks", JwksPolicy::new())
        .jwks_fetcher(Arc::new(Served(set)))
        .connect()
        .await
}

/// `max_token_len(0)` refused every token without a word; now `build` and `connect` say
/// what to change.
#[tokio::test]
async fn a_token_length_limit_that_refuses_every_token_fails_start_up() {
    let hs = || {
        JwtVerifier::builder()
            .hmac(None, Algorithm::HS256, SECRET)
            .unwrap()
    };
    for bytes in [0, 64, 92] {
        let err = hs().max_token_len(bytes).build().unwrap_err();
        assert!(
            matches!(err, KeyError::MaxTokenLen(b) if b == bytes),
            "{err:?}"
        );
        let why = err.to_string();
        assert!(why.contains("every token would be refused"), "{why}");
        assert!(why.contains(".max_token_len()"), "{why}");
        let err = verifier(
            JwtVerifier::builder().max_token_len(bytes),
            json!([jwk(RSA_A, "a", None)]),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, KeyError::MaxTokenLen(_)), "{err:?}");
    }
    assert!(hs().max_token_len(93).build().is_ok());
}

/// One RSA key published under a `kid` for RS256 and another for PS256 verified tokens of
/// both algorithms. Neither is used now; the set's other keys still verify.
#[tokio::test]
async fn one_jwks_key_under_kids_for_two_algorithms_verifies_nothing() {
    let v = verifier(
        JwtVerifier::builder(),
        json!([
            jwk(RSA_A, "a-rs", Some("RS256")),
            jwk(RSA_A, "a-ps", Some("PS256")),
            jwk(RSA_B, "b", Some("PS256")),
        ]),
    )
    .await
    .unwrap();
    for (alg, kid) in [(Algorithm::RS256, "a-rs"), (Algorithm::PS256, "a-ps")] {
        assert_eq!(
            v.verify_raw(&token(RSA_A, alg, kid)).unwrap_err(),
            JwtError::UnknownKey,
            "{kid}"
        );
    }
    let (principal, _) = v.verify_raw(&token(RSA_B, Algorithm::PS256, "b")).unwrap();
    assert_eq!(principal.subject, "user-1");

    // A set that is only that one key has no usable key: start-up says why.
    let err = verifier(
        JwtVerifier::builder(),
        json!([jwk(RSA_A, "a-rs", None), jwk(RSA_A, "a-ps", Some("PS256"))]),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("RFC 8725 §3.1"), "{err}");
}

/// A configured PEM key for RS256 that the JWKS also publishes for PS256: the JWKS key is
/// not used (the configured key wins); published for RS256, it is.
#[tokio::test]
async fn a_configured_key_is_not_taken_from_the_jwks_for_another_algorithm() {
    let a = jwk(RSA_A, "unused", None);
    let pem = pkcs1_pem(a["n"].as_str().unwrap(), a["e"].as_str().unwrap());
    let builder = || {
        JwtVerifier::builder()
            .public_pem(Some("pem"), Algorithm::RS256, pem.as_bytes())
            .unwrap()
    };
    let v = verifier(
        builder(),
        json!([jwk(RSA_A, "a-ps", Some("PS256")), jwk(RSA_B, "b", None)]),
    )
    .await
    .unwrap();
    assert!(v.verify_raw(&token(RSA_A, Algorithm::RS256, "pem")).is_ok());
    assert_eq!(
        v.verify_raw(&token(RSA_A, Algorithm::PS256, "a-ps"))
            .unwrap_err(),
        JwtError::UnknownKey
    );
    assert!(v.verify_raw(&token(RSA_B, Algorithm::RS256, "b")).is_ok());

    let v = verifier(builder(), json!([jwk(RSA_A, "a-rs", Some("RS256"))]))
        .await
        .unwrap();
    assert!(
        v.verify_raw(&token(RSA_A, Algorithm::RS256, "a-rs"))
            .is_ok()
    );
}

/// A JWK without `alg` verifies RS256 only: the same key's real PS256, RS384 or RS512
/// signatures are refused as an algorithm mismatch.
#[tokio::test]
async fn a_jwk_without_alg_verifies_rs256_only() {
    let v = verifier(JwtVerifier::builder(), json!([jwk(RSA_A, "a", None)]))
        .await
        .unwrap();
    assert!(v.verify_raw(&token(RSA_A, Algorithm::RS256, "a")).is_ok());
    for alg in [
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        assert_eq!(
            v.verify_raw(&token(RSA_A, alg, "a")).unwrap_err(),
            JwtError::AlgorithmMismatch,
            "{alg:?}"
        );
    }
}

/// A PKCS#1 `RSA PUBLIC KEY` PEM of the key with base64url modulus `n` and exponent `e`.
fn pkcs1_pem(n: &str, e: &str) -> String {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        // DER integers are signed: a leading zero keeps a set top bit positive.
        let mut body = if bytes[0] & 0x80 == 0 {
            Vec::new()
        } else {
            vec![0]
        };
        body.extend_from_slice(bytes);
        element(0x02, &body)
    }
    fn element(tag: u8, body: &[u8]) -> Vec<u8> {
        let len = body.len();
        let mut out = vec![tag];
        if len < 0x80 {
            out.push(len as u8);
        } else {
            out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(body);
        out
    }
    let n = URL_SAFE_NO_PAD.decode(n).unwrap();
    let e = URL_SAFE_NO_PAD.decode(e).unwrap();
    let der = element(0x30, &[integer(&n), integer(&e)].concat());
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
        lines.join("\n")
    )
}
