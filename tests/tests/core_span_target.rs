//! The request span has a target of its own: `RUST_LOG=info,hardening::request=off` drops the
//! span (and its cost) while the access log, at INFO, keeps the request id. Its own test
//! binary: it installs its own global subscriber.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use hardening_tests::Captured;

#[tokio::test]
async fn the_request_span_can_be_filtered_out_alone() {
    let captured = Captured::global_json_logs("info,hardening::request=off");

    let id = hardening_tests::call_a_logging_handler().await;

    let logs = captured.text();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let handler: Vec<_> = lines.iter().filter(|v| v["target"] == "app").collect();
    assert_eq!(handler.len(), 1, "the handler's event is logged:\n{logs}");
    assert!(
        handler[0].get("span").is_none(),
        "no request span under hardening::request=off:\n{logs}"
    );
    let access: Vec<_> = lines
        .iter()
        .filter(|v| v["target"] == hardening_core::ACCESS_TARGET)
        .collect();
    assert_eq!(access.len(), 1, "the access log is still on:\n{logs}");
    assert_eq!(access[0]["fields"]["request_id"], id, "{logs}");
}
