//! The request span under a filter that selects it by name: `RUST_LOG=warn,[request]=info`
//! must show a handler's INFO events inside the span, with its request id. Its own test
//! binary: it installs its own global subscriber.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use hardening_tests::Captured;

#[tokio::test]
async fn a_span_name_filter_sees_the_request_span() {
    let captured = Captured::global_json_logs("warn,[request]=info");

    hardening_tests::assert_handler_event_in_request_span(&captured).await;
}
