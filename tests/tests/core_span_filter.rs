//! The request span under a filter that selects it by name: `RUST_LOG=warn,[request]=info`
//! must show a handler's INFO events inside the span, with its request id. Its own test
//! binary: it installs its own global subscriber.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use hardening_tests::Captured;
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

    hardening_tests::assert_handler_event_in_request_span(&captured).await;
}
