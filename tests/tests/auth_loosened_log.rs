//! `AuthLayer::denylist` on a verifier that does not require `jti` logs a loosening: tokens
//! without one pass the denylist and cannot be revoked. Its own test binary, with a global
//! subscriber: as a unit test beside others that install and drop thread-local subscribers,
//! the warning went uncaptured about once in ten runs (tracing's per-callsite interest
//! cache is shared by every thread).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use hardening_core::auth::{Algorithm, AuthLayer, JwtVerifier, MemoryDenylist};
use hardening_tests::Captured;

const SECRET: &[u8] = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj";

fn verifier(require_jti: bool) -> JwtVerifier {
    let builder = JwtVerifier::builder()
        .hmac(None, Algorithm::HS256, SECRET)
        .unwrap();
    let builder = if require_jti {
        builder.require_jti()
    } else {
        builder
    };
    builder.build().unwrap()
}

#[test]
fn a_denylist_without_require_jti_is_logged_as_loosened() {
    let captured = Captured::global_json_logs("warn");
    let loosened = || {
        captured
            .warnings()
            .into_iter()
            .filter(|w| {
                w["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("hardening loosened") && m.contains("jti"))
            })
            .collect::<Vec<_>>()
    };
    let list = || Arc::new(MemoryDenylist::new(10));
    // No denylist, or one with `require_jti`: nothing loosened.
    let _ = AuthLayer::new(verifier(false));
    let _ = AuthLayer::new(verifier(true)).denylist(list());
    assert_eq!(loosened().len(), 0, "{}", captured.text());

    let _ = AuthLayer::new(verifier(false)).denylist(list());
    let lines = loosened();
    assert_eq!(lines.len(), 1, "{}", captured.text());
    let line = &lines[0];
    assert_eq!(line["target"], "hardening");
    assert!(
        line["fields"]["message"]
            .as_str()
            .unwrap()
            .contains(".require_jti()"),
        "{line}"
    );
    assert!(
        line["fields"]["setting"]
            .as_str()
            .is_some_and(|s| s.contains("require_jti")),
        "{line}"
    );
}
