//! A request body with two `Content-Type` fields that differ is refused before the handler,
//! over TCP: axum's extractors read the first field while a proxy or firewall in front may
//! have judged the body by another. Identical repeats, and a request without a body, pass.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::post;
use hardening_core::Hardening;
use hardening_tests::{Captured, exchange, serve};

/// `/echo` answers the body it read, counting its calls, behind `Hardening::strict()`.
fn app(calls: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route(
            "/echo",
            post(move |body: String| async move {
                calls.fetch_add(1, Ordering::Relaxed);
                body
            }),
        )
        .layer(Hardening::strict())
}

/// A POST to `/echo` with these `Content-Type` fields and body.
fn request(types: &[&str], body: &str) -> Vec<u8> {
    let mut head = format!(
        "POST /echo HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for t in types {
        head.push_str(&format!("content-type: {t}\r\n"));
    }
    format!("{head}\r\n{body}").into_bytes()
}

#[tokio::test]
async fn a_body_with_content_types_that_differ_is_a_400_problem() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = serve(app(calls.clone())).await;
    let differing: [&[&str]; 3] = [
        &["application/json", "application/x-www-form-urlencoded"],
        &["text/plain", "application/json"],
        &["application/json", "application/json; charset=utf-8"],
    ];
    for types in differing {
        let reply = exchange(addr, &request(types, r#"{"a":1}"#)).await;
        assert_eq!(reply.status, 400, "{types:?}: {}", reply.body);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{types:?}"
        );
        let problem = reply.json();
        assert_eq!(
            problem["request_id"].as_str(),
            reply.header("x-request-id"),
            "{types:?}"
        );
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("Content-Type fields that differ"),
            "{problem}"
        );
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        0,
        "the handler was never called"
    );
    let events = captured.security_event_names();
    assert_eq!(events, vec!["bad_content_type"; 3]);

    for (types, body) in [
        (&["application/json", "application/json"][..], r#"{"a":1}"#),
        (&["application/json"][..], r#"{"a":1}"#),
        (&[][..], "plain"),
        // No body: nothing is judged by its type.
        (&["application/json", "text/plain"][..], ""),
    ] {
        let reply = exchange(addr, &request(types, body)).await;
        assert_eq!(reply.status, 200, "{types:?}: {}", reply.body);
        assert_eq!(reply.body, body, "{types:?}");
    }
    assert_eq!(calls.load(Ordering::Relaxed), 4);
    assert_eq!(captured.security_event_names().len(), 3, "no more events");
}
