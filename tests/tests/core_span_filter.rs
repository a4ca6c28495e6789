//! The request span under a filter that selects it by name: `RUST_LOG=warn,[request]=info`
//! must show a handler's INFO events inside the span, with its request id. Its own test
//! binary: it installs its own global subscriber.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use axum::Router;
use axum::routing::get;
use hardening_core::Hardening;
use hardening_tests::{Captured, get as http_get, serve};
use tracing_subscriber::EnvFilter;

#[tokio::test]
async fn a_span_name_filter_sees_the_request_span() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::new("warn,[request]=info"))
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let app = Router::new().route(
        "/",
        get(|| async {
            tracing::info!(target: "app", "inside the handler");
            "ok"
        }),
    );
    let addr = serve(app.layer(Hardening::strict())).await;
    let reply = http_get(addr, "/", &[]).await;
    assert_eq!(reply.status, 200);
    let id = reply.header("x-request-id").unwrap();

    let logs = captured.text();
    let inside: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["target"] == "app")
        .collect();
    assert_eq!(inside.len(), 1, "the handler's event is shown:\n{logs}");
    assert_eq!(inside[0]["span"]["name"], "request", "{logs}");
    assert_eq!(inside[0]["span"]["request_id"], id, "{logs}");
}
