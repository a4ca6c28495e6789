//! RFC 8725 audit, end to end: one key per algorithm at start-up, claims read as a strict
//! parser reads them (no repeated member at any depth, no serde_json private member), and a
//! token's `kid` never in the log.

#![allow(clippy::unwrap_used, missing_docs)] // test code: a failed unwrap is a failed test

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hardening_core::Hardening;
use hardening_core::auth::{AuthLayer, Authenticated, JwtVerifier, KeyError};
use hardening_tests::Captured;
use jsonwebtoken::{Algorithm, EncodingKey};

const SECRET: &[u8] = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj-rfc8725";
const RSA_PUBLIC: &[u8] = include_bytes!("fixtures/rsa-public.pem");

/// A token from raw header and payload JSON, HS256-signed with [`SECRET`].
fn forge(header: &str, payload: &str) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = EncodingKey::from_secret(SECRET);
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256);
    format!("{message}.{}", signature.unwrap())
}

/// Claims for [`app`], with `extra` members after the registered ones.
fn claims(extra: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(
        r#"{{"sub":"user-1","iss":"https://auth.example","aud":"notes-api","exp":{},{extra}}}"#,
        now + 600
    )
}

#[derive(serde::Deserialize)]
struct Keycloak {
    realm_access: RealmAccess,
}

#[derive(serde::Deserialize)]
struct RealmAccess {
    roles: Vec<String>,
}

/// Answers the Keycloak-style `realm_access.roles` of the token, joined by commas.
fn app() -> Router {
    let verifier = JwtVerifier::builder()
        .hmac(Some("hs"), Algorithm::HS256, SECRET)
        .unwrap()
        .issuer("https://auth.example")
        .audience("notes-api")
        .build()
        .unwrap();
    Router::new()
        .route(
            "/roles",
            get(|user: Authenticated<Keycloak>| async move {
                user.claims.realm_access.roles.join(",")
            }),
        )
        .layer(AuthLayer::new(verifier))
        .layer(Hardening::strict())
}

async fn call(token: &str) -> (u16, Option<String>, String) {
    let (status, challenge, body) = hardening_tests::get_with_bearer(app(), "/roles", token).await;
    (status, challenge, String::from_utf8(body.to_vec()).unwrap())
}

/// A signer that keeps the first of two repeated members signs `roles: ["user"]`; the
/// claims type here was handed the last (`admin`). And serde_json's `Value` read a
/// `$serde_json::private::RawValue` member's string as JSON. Both are refused now, with the
/// same 401 as any invalid token.
#[tokio::test]
async fn claims_are_read_as_the_signer_wrote_them() {
    let hs = r#"{"alg":"HS256","kid":"hs"}"#;
    let (status, _, body) = call(&forge(hs, &claims(r#""realm_access":{"roles":["user"]}"#))).await;
    assert_eq!((status, body.as_str()), (200, "user"), "control");

    for extra in [
        r#""realm_access":{"roles":["user"],"roles":["admin"]}"#,
        r#""realm_access":{"roles":{"$serde_json::private::RawValue":"[\"admin\"]"}}"#,
    ] {
        let (status, challenge, body) = call(&forge(hs, &claims(extra))).await;
        assert_eq!(status, 401, "{extra}: {body}");
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Bearer error="invalid_token""#),
            "{extra}"
        );
        assert!(
            !body.contains("admin") && !body.contains("duplicate"),
            "{body}"
        );
    }
}

/// A `kid` naming no key is refused, and neither it nor any other part of the token is
/// logged, however long or odd it is (the log says only why the token was refused).
#[tokio::test]
async fn an_unknown_kid_is_refused_and_never_logged() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::TRACE);
    let kid = format!("{}\\r\\nERROR forged\\u001b[31m", "Kq7".repeat(1800));
    let token = forge(
        &format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#),
        &claims(r#""realm_access":{"roles":["user"]}"#),
    );
    assert!(token.len() < 8 * 1024, "{}", token.len());
    let (status, challenge, body) = call(&token).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Bearer error="invalid_token""#)
    );

    let log = captured.text();
    assert!(log.contains("no key for the token's kid"), "{log}");
    assert!(!log.contains("Kq7Kq7"), "the kid reached the log: {log}");
    let signature = token.rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "the token reached the log");
    assert!(!body.contains("Kq7Kq7") && !body.contains("kid"), "{body}");
}

/// RFC 8725 §3.1: each key is used with exactly one algorithm. One RSA key configured for
/// `RS256` under one `kid` and for `PS256` under another was accepted.
#[test]
fn one_rsa_key_for_two_algorithms_is_refused_at_start_up() {
    let two = |alg| {
        JwtVerifier::builder()
            .public_pem(Some("rs"), Algorithm::RS256, RSA_PUBLIC)
            .unwrap()
            .public_pem(Some("other"), alg, RSA_PUBLIC)
            .unwrap()
            .build()
    };
    for alg in [Algorithm::PS256, Algorithm::RS512] {
        match two(alg) {
            Err(KeyError::KeySet(why)) => {
                assert!(why.contains(r#"kid "rs" (RS256)"#), "{why}");
                assert!(why.contains(r#"kid "other""#), "{why}");
                assert!(why.contains("one algorithm only"), "{why}");
            }
            other => panic!("{alg:?}: {:?}", other.map(|_| ())),
        }
    }
    // The same key under two kids for one algorithm (a rotation overlap) is fine.
    assert!(two(Algorithm::RS256).is_ok());
}
