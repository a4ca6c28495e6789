//! The JWT attack corpus: forged and malformed tokens, each refused with 401 and one identical
//! body shape; keys the token names (`jku`, `x5u`) are never fetched.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hardening_core::Hardening;
use hardening_core::auth::{AuthLayer, Authenticated, JwtVerifier};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey};
use tower::ServiceExt;

const SECRET: &[u8] = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj-corpus";
const OTHER_SECRET: &[u8] = b"Zp3Lq8Wv1Nx6Ty4Rb9Mc2Kd7Hf5Gs0Ja-other";
const RSA_PUBLIC: &[u8] = include_bytes!("fixtures/rsa-public.pem");

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// A token from raw header and payload JSON, HMAC-signed with `secret` (or unsigned).
fn forge(header: &str, payload: &str, secret: Option<&[u8]>) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let signature = secret
        .map(|s| {
            jsonwebtoken::crypto::sign(
                message.as_bytes(),
                &EncodingKey::from_secret(s),
                Algorithm::HS256,
            )
            .unwrap()
        })
        .unwrap_or_default();
    format!("{message}.{signature}")
}

fn claims(extra: &str) -> String {
    let base = format!(
        r#""sub":"user-1","iss":"https://auth.example","aud":"notes-api","iat":{},"exp":{}"#,
        now() - 10,
        now() + 600
    );
    if extra.is_empty() {
        format!("{{{base}}}")
    } else {
        format!("{{{base},{extra}}}")
    }
}

fn app() -> Router {
    let verifier = JwtVerifier::builder()
        .hmac(Some("hs"), Algorithm::HS256, SECRET)
        .unwrap()
        .public_pem(Some("rsa"), Algorithm::RS256, RSA_PUBLIC)
        .unwrap()
        .issuer("https://auth.example")
        .audience("notes-api")
        .build()
        .unwrap();
    Router::new()
        .route(
            "/me",
            get(|user: Authenticated| async move { user.principal.subject }),
        )
        .layer(AuthLayer::new(verifier))
        .layer(Hardening::strict())
}

async fn call(token: &str) -> (u16, Option<String>, serde_json::Value) {
    let req = http::Request::get("/me")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let res = app().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, challenge, body)
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_all_refused_alike() {
    // A loopback listener standing in for an attacker's key server.
    let key_server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let key_url = format!("http://{}/jwks.json", key_server.local_addr().unwrap());
    let fetched = Arc::new(AtomicUsize::new(0));
    let counter = fetched.clone();
    tokio::spawn(async move {
        while key_server.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });

    let hs = r#"{"alg":"HS256","typ":"JWT","kid":"hs"}"#;
    let ok = claims("");
    let valid = forge(hs, &ok, Some(SECRET));
    let (status, _, body) = call(&valid).await;
    assert_eq!(
        (status, body),
        (200, serde_json::Value::Null),
        "control: a valid token passes"
    );

    let mut tampered = valid.clone();
    let mid = tampered.find('.').unwrap() + 3;
    tampered.replace_range(
        mid..mid + 1,
        if &tampered[mid..mid + 1] == "A" {
            "B"
        } else {
            "A"
        },
    );

    let rsa_as_hmac = forge(r#"{"alg":"HS256","kid":"rsa"}"#, &ok, Some(RSA_PUBLIC));
    let corpus: Vec<(&str, String)> = vec![
        ("alg none", forge(r#"{"alg":"none","kid":"hs"}"#, &ok, None)),
        ("alg None", forge(r#"{"alg":"None","kid":"hs"}"#, &ok, None)),
        ("alg NONE", forge(r#"{"alg":"NONE","kid":"hs"}"#, &ok, None)),
        (
            "alg nOnE signed",
            forge(r#"{"alg":"nOnE","kid":"hs"}"#, &ok, Some(SECRET)),
        ),
        ("HS256 signed with the RS256 public key", rsa_as_hmac),
        ("wrong key", forge(hs, &ok, Some(OTHER_SECRET))),
        ("tampered payload", tampered),
        (
            "expired",
            forge(
                hs,
                &format!(
                    r#"{{"sub":"u","iss":"https://auth.example","aud":"notes-api","exp":{}}}"#,
                    now() - 3600
                ),
                Some(SECRET),
            ),
        ),
        (
            "nbf in the future",
            forge(
                hs,
                &claims(&format!(r#""nbf":{}"#, now() + 3600)),
                Some(SECRET),
            ),
        ),
        (
            "missing exp",
            forge(
                hs,
                r#"{"sub":"u","iss":"https://auth.example","aud":"notes-api"}"#,
                Some(SECRET),
            ),
        ),
        (
            "string exp",
            forge(
                hs,
                &format!(
                    r#"{{"sub":"u","iss":"https://auth.example","aud":"notes-api","exp":"{}"}}"#,
                    now() + 600
                ),
                Some(SECRET),
            ),
        ),
        (
            "boolean exp",
            forge(
                hs,
                r#"{"sub":"u","iss":"https://auth.example","aud":"notes-api","exp":true}"#,
                Some(SECRET),
            ),
        ),
        (
            "string nbf",
            forge(
                hs,
                &claims(&format!(r#""nbf":"{}""#, now() - 10)).replace(r#""iat""#, r#""x""#),
                Some(SECRET),
            ),
        ),
        (
            "wrong iss",
            forge(
                hs,
                &ok.replace("https://auth.example", "https://evil.example"),
                Some(SECRET),
            ),
        ),
        (
            "wrong aud",
            forge(hs, &ok.replace("notes-api", "billing-api"), Some(SECRET)),
        ),
        (
            "iat in the future",
            forge(
                hs,
                // Built whole, not by editing `ok`: a second boundary between two `now()`
                // calls would leave the replace without a match (a flaky test, seen once).
                &format!(
                    r#"{{"sub":"u","iss":"https://auth.example","aud":"notes-api","iat":{},"exp":{}}}"#,
                    now() + 3600,
                    now() + 7200
                ),
                Some(SECRET),
            ),
        ),
        (
            "unknown kid",
            forge(r#"{"alg":"HS256","kid":"2019"}"#, &ok, Some(SECRET)),
        ),
        (
            "kid path traversal",
            forge(
                r#"{"alg":"HS256","kid":"../../../../dev/null"}"#,
                &ok,
                Some(b""),
            ),
        ),
        (
            "kid SQL injection",
            forge(
                r#"{"alg":"HS256","kid":"x' UNION SELECT 'secret' --"}"#,
                &ok,
                Some(b"secret"),
            ),
        ),
        (
            "jku to a loopback key server",
            forge(
                &format!(r#"{{"alg":"HS256","kid":"hs","jku":"{key_url}"}}"#),
                &ok,
                Some(SECRET),
            ),
        ),
        (
            "x5u to a loopback key server",
            forge(
                &format!(r#"{{"alg":"HS256","kid":"hs","x5u":"{key_url}"}}"#),
                &ok,
                Some(SECRET),
            ),
        ),
        (
            "embedded jwk",
            forge(
                r#"{"alg":"HS256","kid":"hs","jwk":{"kty":"oct","k":"AAAA"}}"#,
                &ok,
                Some(SECRET),
            ),
        ),
        (
            "x5c chain",
            forge(
                r#"{"alg":"HS256","kid":"hs","x5c":["MIIB"]}"#,
                &ok,
                Some(SECRET),
            ),
        ),
        (
            "crit header",
            forge(
                r#"{"alg":"HS256","kid":"hs","crit":["exp"]}"#,
                &ok,
                Some(SECRET),
            ),
        ),
        (
            "oversized token",
            forge(
                hs,
                &claims(&format!(r#""pad":"{}""#, "A".repeat(20_000))),
                Some(SECRET),
            ),
        ),
        ("bad base64", "!!!.$$$.%%%".to_owned()),
        ("two segments", format!("{}.{}", b64(hs), b64(&ok))),
        ("four segments", format!("{valid}.{}", b64("extra"))),
        (
            "stripped signature",
            valid
                .rsplit_once('.')
                .map(|(m, _)| format!("{m}."))
                .unwrap(),
        ),
        ("payload is an array", forge(hs, "[1,2,3]", Some(SECRET))),
        ("payload is a string", forge(hs, r#""sub""#, Some(SECRET))),
        (
            "duplicate claim",
            forge(hs, &ok.replacen('{', r#"{"sub":"admin","#, 1), Some(SECRET)),
        ),
        (
            "duplicate header member",
            forge(
                r#"{"alg":"HS256","alg":"none","kid":"hs"}"#,
                &ok,
                Some(SECRET),
            ),
        ),
        ("empty token", String::new()),
        ("not a JWT at all", "hunter2".to_owned()),
    ];
    assert!(corpus.len() >= 25);

    let mut shape: Option<serde_json::Value> = None;
    for (name, token) in &corpus {
        let (status, challenge, mut body) = call(token).await;
        assert_eq!(status, 401, "{name}: {body}");
        let want = if token.is_empty() {
            "Bearer"
        } else {
            r#"Bearer error="invalid_token""#
        };
        // An empty bearer value counts as no credentials at all (RFC 6750 §3.1).
        if !token.is_empty() {
            assert_eq!(challenge.as_deref(), Some(want), "{name}");
        }
        assert!(body["request_id"].is_string(), "{name}");
        body.as_object_mut().unwrap().remove("request_id");
        match &shape {
            None => shape = Some(body),
            Some(first) => assert_eq!(
                &body, first,
                "{name}: the body must not tell forgeries apart"
            ),
        }
    }
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        0,
        "a key URL named by a token was fetched"
    );
}

#[test]
fn weak_keys_are_refused_at_start_up() {
    for weak in [
        &b"short"[..],
        &[b'a'; 64][..],
        &b"secretsecretsecretsecretsecretsecret"[..],
    ] {
        assert!(
            JwtVerifier::builder()
                .hmac(None, Algorithm::HS256, weak)
                .is_err()
        );
    }
    assert!(
        JwtVerifier::builder()
            .hmac(None, Algorithm::RS256, SECRET)
            .is_err(),
        "HS key for RS alg"
    );
    assert!(
        JwtVerifier::builder()
            .public_pem(None, Algorithm::HS256, RSA_PUBLIC)
            .is_err()
    );
    assert!(JwtVerifier::builder().build().is_err(), "no keys");
    let two_without_kid = JwtVerifier::builder()
        .hmac(None, Algorithm::HS256, SECRET)
        .unwrap()
        .hmac(None, Algorithm::HS256, OTHER_SECRET)
        .unwrap()
        .build();
    assert!(two_without_kid.is_err());
}

#[test]
fn weak_and_mismatched_pem_keys_fail_at_start_up() {
    const RSA_1024: &[u8] = include_bytes!("fixtures/test-only-rsa-1024-public.pem");
    const RSA_1024_PKCS1: &[u8] = include_bytes!("fixtures/test-only-rsa-1024-pkcs1-public.pem");
    const P256: &[u8] = include_bytes!("fixtures/test-only-p256-public.pem");
    const P384: &[u8] = include_bytes!("fixtures/test-only-p384-public.pem");
    let refused = |alg, pem| {
        JwtVerifier::builder()
            .public_pem(Some("k"), alg, pem)
            .unwrap_err()
            .to_string()
    };
    for pem in [RSA_1024, RSA_1024_PKCS1] {
        for alg in [Algorithm::RS256, Algorithm::PS512] {
            let why = refused(alg, pem);
            assert!(why.contains("shorter than 2048 bits"), "{why}");
        }
    }
    assert!(refused(Algorithm::ES256, P384).contains("P-256"));
    assert!(refused(Algorithm::ES384, P256).contains("P-384"));
    // The right ones start up.
    for (alg, pem) in [
        (Algorithm::RS256, RSA_PUBLIC),
        (Algorithm::PS256, RSA_PUBLIC),
        (Algorithm::ES256, P256),
        (Algorithm::ES384, P384),
    ] {
        assert!(
            JwtVerifier::builder()
                .public_pem(Some("k"), alg, pem)
                .is_ok(),
            "{alg:?}"
        );
    }
}

#[derive(Debug)]
struct DownStore;

impl hardening_core::auth::Denylist for DownStore {
    fn is_revoked<'a>(&'a self, _jti: &'a str) -> hardening_core::auth::DenylistFuture<'a, bool> {
        Box::pin(async { Err("connection refused".into()) })
    }
    fn revoke<'a>(
        &'a self,
        _jti: &'a str,
        _until: SystemTime,
    ) -> hardening_core::auth::DenylistFuture<'a, ()> {
        Box::pin(async { Err("connection refused".into()) })
    }
}

#[tokio::test]
async fn revoked_tokens_are_refused_and_a_down_store_fails_closed() {
    use hardening_core::auth::{Denylist, MemoryDenylist};
    let list = Arc::new(MemoryDenylist::new(100));
    let verifier = || {
        JwtVerifier::builder()
            .hmac(Some("hs"), Algorithm::HS256, SECRET)
            .unwrap()
            .build()
            .unwrap()
    };
    let app = |denylist: Arc<dyn Denylist>| {
        Router::new()
            .route(
                "/me",
                get(|user: Authenticated| async move { user.principal.subject }),
            )
            .layer(AuthLayer::new(verifier()).denylist(denylist))
            .layer(Hardening::strict())
    };
    let token = |jti: &str| {
        forge(
            r#"{"alg":"HS256","kid":"hs"}"#,
            &format!(r#"{{"sub":"u","jti":"{jti}","exp":{}}}"#, now() + 600),
            Some(SECRET),
        )
    };
    let status = |router: Router, token: String| async move {
        let req = http::Request::get("/me")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        router.oneshot(req).await.unwrap().status().as_u16()
    };
    assert_eq!(status(app(list.clone()), token("a")).await, 200);
    list.revoke("a", SystemTime::now() + std::time::Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(status(app(list.clone()), token("a")).await, 401);
    assert_eq!(status(app(list.clone()), token("b")).await, 200);
    assert_eq!(status(app(Arc::new(DownStore)), token("c")).await, 503);
}

#[test]
fn secrets_from_env_are_checked_and_named() {
    let err = JwtVerifier::builder()
        .hmac_from_env(None, Algorithm::HS256, "HARDENING_TEST_UNSET_SECRET")
        .unwrap_err();
    assert!(
        err.to_string().contains("HARDENING_TEST_UNSET_SECRET"),
        "{err}"
    );
}
