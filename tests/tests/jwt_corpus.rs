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
    let (status, challenge, body) = hardening_tests::get_with_bearer(app(), "/me", token).await;
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
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
        // RFC 7519 §4.1.7: a string; a number would be looked up in no denylist.
        (
            "numeric jti",
            forge(hs, &claims(r#""jti":42"#), Some(SECRET)),
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
        // RFC 8725 §3.11: another kind of JWT is not an access token.
        (
            "typ logout+jwt",
            forge(
                r#"{"alg":"HS256","typ":"logout+jwt","kid":"hs"}"#,
                &ok,
                Some(SECRET),
            ),
        ),
        (
            "typ Application/DPoP+JWT",
            forge(
                r#"{"alg":"HS256","typ":"Application/DPoP+JWT","kid":"hs"}"#,
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
        &b"a-string-secret-at-least-256-bits-long"[..],
        &b"0123456789abcdef0123456789abcdef"[..],
    ] {
        assert!(
            JwtVerifier::builder()
                .hmac(None, Algorithm::HS256, weak)
                .is_err(),
            "{}",
            String::from_utf8_lossy(weak)
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
    fn is_revoked<'a>(
        &'a self,
        _: hardening_core::auth::TokenRef<'a>,
    ) -> hardening_core::auth::DenylistFuture<'a, bool> {
        Box::pin(async { Err("connection refused".into()) })
    }
    fn revoke<'a>(
        &'a self,
        _: hardening_core::auth::TokenRef<'a>,
        _until: SystemTime,
    ) -> hardening_core::auth::DenylistFuture<'a, ()> {
        Box::pin(async { Err("connection refused".into()) })
    }
}

#[tokio::test]
async fn revoked_tokens_are_refused_and_a_down_store_fails_closed() {
    use hardening_core::auth::{Denylist, MemoryDenylist, TokenRef};
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
    list.revoke(
        TokenRef::new("a", "u", None),
        SystemTime::now() + std::time::Duration::from_secs(600),
    )
    .await
    .unwrap();
    assert_eq!(status(app(list.clone()), token("a")).await, 401);
    assert_eq!(status(app(list.clone()), token("b")).await, 200);
    assert_eq!(status(app(Arc::new(DownStore)), token("c")).await, 503);
}

/// RFC 7519 §4.1.7: `jti` is a string. A token whose `jti` is a number (the string of which
/// is revoked) used to pass verification and then skip the denylist, which looks up strings.
#[tokio::test]
async fn a_non_string_jti_does_not_skip_the_denylist() {
    use hardening_core::auth::{Denylist, MemoryDenylist, TokenRef};
    let list = Arc::new(MemoryDenylist::new(10));
    list.revoke(
        TokenRef::new("42", "u", None),
        SystemTime::now() + std::time::Duration::from_secs(600),
    )
    .await
    .unwrap();
    let verifier = JwtVerifier::builder()
        .hmac(Some("hs"), Algorithm::HS256, SECRET)
        .unwrap()
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/me",
            get(|user: Authenticated| async move { user.principal.subject }),
        )
        .layer(AuthLayer::new(verifier).denylist(list))
        .layer(Hardening::strict());
    for jti in ["42", "42.0", "[\"42\"]", "null"] {
        let token = forge(
            r#"{"alg":"HS256","kid":"hs"}"#,
            &format!(r#"{{"sub":"u","jti":{jti},"exp":{}}}"#, now() + 600),
            Some(SECRET),
        );
        let req = http::Request::get("/me")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let status = app.clone().oneshot(req).await.unwrap().status().as_u16();
        assert_eq!(status, 401, "jti {jti}");
    }
}

/// A test-only 8192-bit RSA public key, made with openssl.
const RSA_8192_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIIEIjANBgkqhkiG9w0BAQEFAAOCBA8AMIIECgKCBAEA0CTQONzOFklwW1EED9lJ
ubMFBij4EiL4m/LlmOu6D1TvOG6u79B/golvPprNba9iW2qbPSOQTyBTgK3vxGjg
lEAH6MIygRovP0izTg9pf3WOnfY65GpuqfC1c+JnDEHryKWgQrKpM4nJiZtPD963
T5+HRRxQbVtcWsGLa2NRLDontRyglltNNxfnDTxUGMQlc3eZMZhExKeifP/QF9X/
94BcJ9jd82+B0e+LWLJA1C58+HCWfgOKaNdC2lGRCWtUVSRSmjgQIpYYgiK4wne9
TaZt84TvCOExYnuoQkCQUyxPot9iEBNwjKl3UHA88fXYwqepbtB7jPNQyZ+6UV3f
sQLEvvvgcdJf5YcJC+LOB0eG19fxzFo4aBVazSV5/ZfFjI4PtcckJyO4JFhy0wy8
keBx4J7lTHWKq3Xe+3Y0p4opMGXeT6lBcWGK4EG6KhybAd56Pr5j5z6Yo1fYV/7y
+xVNH359o5qWDn3RsUSgWBsHT+6yMr57MRxXy9pChCC0IkhIewTQQKswIgh8epUG
ancU2L0oG1mRI2FxGoPAgAMAysqP87g/9sBBDwqWtMI31CH/P+YyxiD0wmi2xouX
2chM1nqdDEzickG6s/CIhIIY8N7YeuUvZPhWUTVTUASIh98QJDlQkoJM2ZEWip+M
tkteob6t0Lbh4v+9ZG40KuoY9qC154KYXOBqAQx6WMRHvo8vqPTQyuyu/YdiWqLO
++2HGAcCqpJBMqt882zw5gFxDJPEWqAxPXjfImVRmiyWuOC9QizBCUDlV8QvStTj
XB7Lwg0gOMI58mheOpEjD6QMAscfw2EJzFay4XbtYexMxc6X23IU2HLFsl47+eV+
jXIzATDGgqE/HH9onMJU/xVlMvAlJLIE5FtriXI5mFzuL9HcKWWxKv+8/vArza2E
usytXtR3dg9wanONUafZHVxnEeDnFi2vmhY2m48XAbzSwAHxU4JhlT3xN4PkntPD
8nvrhRWt0uqCiPE7KnWGfLJPZqjMhA+4YPpzanQeRZxretgKEhrjPFRT3wQ+PMIR
ztuC11uHs6KB9Ix0NtMRWSJXUnxFKnSqfG2A3qCImjZNnqZQUNB/g0hKYIA435BC
rE5kuTEEjJcY26yqrJENxAwnPBLiILSH69Vw4mMuMQ+kr+cJDS4P3aFfrOJcX9Zj
YGWhO+QiOLAkkyWFEtmd04ZdmYwD8nFAanvq2CDJl0RRFsniFq96RAuZ8k50K0iv
rr1QpN9FJJgkdamnEuz5pXyqc/WL1kuRip4Zqv5i0e/CY/nP25jOaqZM7JKQBqza
B96gRF0U4m8+inkGO8DPUQ789xFUrvkh/dvVsro/CdxnIcV2tr+IjKHxUd3QTKuR
UwIDAQAB
-----END PUBLIC KEY-----";

/// A test-only 4096-bit RSA public key and an RS256 token it signed (sub "user-1", exp
/// 2100-01-01), made with openssl.
const RSA_4096_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAtk829xpTH6LebtAI8M+z
GK0OIrcBr8DQ2uqN/LCqnMiAQ46GYIofVYVuOn9QcFhnmSnDHzLUq3IUILfH7oEJ
A76aetOlcXEUthtYUGBLceupV+DNGH7997ZTPftOZvspzT2QuvT/OpC3Wi4DEa4F
awh/vKXGOCuczLq+I3lJZJgND49jK0bPDoCBxKuwbbBNsaVr2XioPaWMDoNrYbjw
CgdFFr3/qw7vCGJEF8116ITFN74ehKe3vjpwz6UlEo+4SMvwmsLrfhr8az4M09lf
VgZKcT2PSiTc4XfQBDRrdwNw8ohf1Qi8B+OG3/+TG0mb+5tbxJSCKQPFQLEbl0XU
/wTV41G5ZgpH7TBz+OIYsHjqy8zf90+4EDNie+3DXRgoJoLc+j4/5LvrolduymPD
NsFzAP7mosfpMPCB3SjWXqbuh89s1/9rtsTC7rAf0W/2sktKIBkmIaeKmNBk0l6k
4yvM9RN9Kzl5QYSN0d/WQx/yEgI093fbJzrNZfsMK8w2b3voo7bc0Zsx2tdSYVfH
NNZj00CM3cgvkG+qpSyRjfdmHWiwqFJ0WN55po9JzWjzQFQk8J12w8K90ddY0bPH
29nM6Sd7p5bntgGsVulI1RnpH9eV5T7vvsvQazRxthHhoQPckvnFotoVucElKASN
9D+tG6NeCq2vm5k7XVc7LtUCAwEAAQ==
-----END PUBLIC KEY-----";
const RSA_4096_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjQxMDI0NDQ4MDB9.lVQhR1Qv9MR5fM8Zw9TwZCHX1F4DQaW9OotiTxp9Og3athIcJ-34_3RhOIlIkQRawiexwBwik5LjyLPmjTSH-A9wFBfCKIj-m5e17-MreDbq_JEAhxRJlTx2LdTKJilpyAMMbFH0ZZKjkHesH9sfXU1hHvbU3Sg4XL0Z77a0ak_z5NOtmWOJAThiO-EuNnCXVtV3bH1zAxvEzRaBOeslkzyTT7-3UoiM57BuQpEPjhgryQao9Y73ahGaku40qTrCL2llVOOzIRkkhCUmXZ95MmIL52Wkb48NtDFbocnsHM8whLPAdORpvJ6syZ6zb0CBvT3WCUyAZnfy0bQu1w0QetxHBz0VWmQoqrQ0IFwO_e-70QzO0pl_isU5nobg1Tsb2DNqPBFlPXloANvbPTzBdV3qBmTxvCCTZ3u_EE7yVa0EcZTE-l1G3ZwSrLMeVirif7usoPrmO9T2Lcdt6puw71b67EQHfx-hcP0YO7quJ6Hb839J6YY-6K3heOCGV8648pyCe11VNTBnsLbGKGt5uZ9Mq5NoLkFRjXnWsspUlkP0d2EKcD47yR7m_7Ycud5z_au3bAE7v0hWXv00SCOnJ16_gIiQCcC2n-rp-9WOaJDdhonPJVMomrIu49UzAkKOPa28sDKE5VQRISZdsETH_2z9gqFOqI7S28rWcwbo-tU";

/// "Keys checked at start-up": the RSA backend refuses moduli over 4096 bits at
/// verification, so an 8192-bit key, once accepted, refused every token as a bad signature.
/// It is refused at start-up with the supported range; a 4096-bit key starts and verifies.
#[test]
fn an_rsa_key_accepted_at_start_up_verifies_its_tokens() {
    for alg in [Algorithm::RS256, Algorithm::PS512] {
        let why = JwtVerifier::builder()
            .public_pem(Some("big"), alg, RSA_8192_PUBLIC.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            why.contains("big") && why.contains("longer than 4096 bits"),
            "{why}"
        );
        assert!(why.contains("2048 to 4096 bits"), "{why}");
    }
    let v = JwtVerifier::builder()
        .public_pem(None, Algorithm::RS256, RSA_4096_PUBLIC.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let subject = v.verify_raw(RSA_4096_TOKEN).map(|(p, _)| p.subject);
    assert_eq!(subject, Ok("user-1".to_owned()));
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
