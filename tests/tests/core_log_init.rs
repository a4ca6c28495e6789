//! `init_json_logs` when a global subscriber is already set: an error saying what to change,
//! and the subscriber in place keeps the events. Its own test binary: it installs a global
//! subscriber, which would disturb the other tests of a binary.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::ffi::OsString;
#[cfg(unix)]
use std::os::unix::ffi::OsStringExt as _;
use std::process::Command;

use hardening_core::{LogInitError, init_json_logs};
use hardening_tests::{Captured, assert_child_test_passes};

#[test]
fn a_second_global_subscriber_is_an_error_saying_what_to_change() {
    let captured = Captured::global_json_logs("info");

    // Whatever `RUST_LOG` says (see `the_subscriber_already_set_is_named_before_rust_log`).
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

/// With a global subscriber already set, `init_json_logs` said what was wrong with
/// `RUST_LOG` instead: a value it cannot read (though the subscriber in place may read it
/// well: `EnvFilter` takes field values, `Targets` does not), or one that hides the security
/// events. Fixing `RUST_LOG` then only led to "already set", and changing it may break the
/// filter of the subscriber in place: the call is what to change, so that error comes first.
/// Runs the test above in a child process under each `RUST_LOG`.
#[test]
fn the_subscriber_already_set_is_named_before_rust_log() {
    let mut values: Vec<OsString> = vec![
        "info,app[login{user=bob}]=debug".into(),
        "app=loud".into(),
        "error".into(),
    ];
    #[cfg(unix)]
    values.push(OsString::from_vec(b"info,\xff".to_vec()));
    for value in values {
        assert_child_test_passes(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "a_second_global_subscriber_is_an_error_saying_what_to_change",
                    "--nocapture",
                ])
                .env("RUST_LOG", value),
        );
    }
}

/// Without a global subscriber, a wrong `RUST_LOG` is still the error, also with a scoped
/// default on the calling thread (`with_default`): `try_init` does not mind that one, so it
/// is no subscriber already set. Run in a child process by
/// `a_wrong_rust_log_is_the_error_without_a_global_subscriber`.
/// Set in the child process that runs the test below.
const CHILD: &str = "CORE_LOG_INIT_CHILD";

#[test]
#[ignore = "run by a_wrong_rust_log_is_the_error_without_a_global_subscriber in a child process"]
fn a_wrong_rust_log_is_the_error_without_a_global_subscriber_inner() {
    // Run directly (`--include-ignored`), without the child's `RUST_LOG`: nothing to check.
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let (_captured, scoped) = Captured::json_subscriber("info");
    let err = tracing::subscriber::with_default(scoped, init_json_logs)
        .expect_err("RUST_LOG is wrong, yet init_json_logs said Ok");
    assert!(
        matches!(err, LogInitError::InvalidRustLog { .. }),
        "RUST_LOG={:?}: {err}",
        std::env::var("RUST_LOG")
    );
}

#[test]
fn a_wrong_rust_log_is_the_error_without_a_global_subscriber() {
    assert_child_test_passes(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_wrong_rust_log_is_the_error_without_a_global_subscriber_inner",
                "--ignored",
                "--nocapture",
            ])
            .env("RUST_LOG", "app=loud")
            .env(CHILD, "1"),
    );
}
