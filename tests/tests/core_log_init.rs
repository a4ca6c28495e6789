//! `init_json_logs` when a global subscriber is already set: an error saying what to change,
//! and the subscriber in place keeps the events. Its own test binary: it installs a global
//! subscriber, which would disturb the other tests of a binary.

use hardening_core::{LogInitError, init_json_logs};
use hardening_tests::Captured;

#[test]
fn a_second_global_subscriber_is_an_error_saying_what_to_change() {
    let captured = Captured::global_json_logs("info");

    // `init_json_logs` reads `RUST_LOG` first: an invalid one would be the error instead.
    let err =
        init_json_logs().expect_err("a global subscriber already set, yet init_json_logs said Ok");
    assert_eq!(
        err,
        LogInitError::SubscriberAlreadySet,
        "RUST_LOG={:?}",
        std::env::var("RUST_LOG")
    );
    let message = err.to_string();
    for says in [
        "already set",
        "call init_json_logs once",
        "do not call init_json_logs",
    ] {
        assert!(message.contains(says), "{says:?} not in: {message}");
    }
    // `?` from `main` prints `Debug`: the same message, not the variant's name.
    assert_eq!(format!("{err:?}"), message);
    // Calling it again says the same.
    assert_eq!(init_json_logs(), Err(LogInitError::SubscriberAlreadySet));

    // The subscriber set first still gets the events.
    tracing::info!(marker = "still-here", "after init_json_logs");
    assert!(
        captured.text().contains("still-here"),
        "{}",
        captured.text()
    );
}
