//! JwtVerifier::verify (RFC 8725 checks included) against a raw jsonwebtoken::decode of the
//! same HS256 token with the same key, side by side in one run.
//!
//! Run with: cargo bench -p hardening-tests --bench jwt

#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use hardening_auth::JwtVerifier;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

const SECRET: &[u8] = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj-bench";

fn jwt(c: &mut Criterion) {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = serde_json::json!({
        "sub": "user-1", "iss": "https://auth.example", "aud": "notes-api",
        "exp": exp, "iat": exp - 3600, "roles": ["reader"], "scope": "notes:read notes:write"
    });
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();

    let ours = JwtVerifier::builder()
        .hmac(None, Algorithm::HS256, SECRET)
        .unwrap()
        .issuer("https://auth.example")
        .audience("notes-api")
        .build()
        .unwrap();
    let key = DecodingKey::from_secret(SECRET);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["https://auth.example"]);
    validation.set_audience(&["notes-api"]);

    assert!(ours.verify::<serde_json::Value>(&token).is_ok());
    assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).is_ok());

    let mut group = c.benchmark_group("jwt-hs256-verify");
    group.bench_function("jsonwebtoken-decode", |b| {
        b.iter(|| jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap())
    });
    group.bench_function("hardening-verify", |b| {
        b.iter(|| ours.verify::<serde_json::Value>(&token).unwrap())
    });
    group.finish();
}

criterion_group!(benches, jwt);
criterion_main!(benches);
