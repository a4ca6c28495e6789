//! `.env.example` documents every variable `HardeningConfig::from_env` reads, and parses.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use hardening_core::{ENV_VARS, HardeningConfig};

#[test]
fn env_example_lists_every_variable_and_builds() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.env.example")).unwrap();
    let vars: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_once('=').unwrap())
        .collect();
    let names: Vec<&str> = vars.iter().map(|(n, _)| *n).collect();
    let known: Vec<&str> = ENV_VARS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, known, ".env.example and ENV_VARS disagree");
    let _hardening = HardeningConfig::from_vars(vars).unwrap().build().unwrap();
}

/// An HTTPS redirect that would loop behind a TLS proxy, or never fire, is said at start-up.
#[test]
fn an_https_redirect_that_loops_or_never_fires_is_warned_of() {
    use hardening_tests::Captured;
    let warnings = |vars: &[(&str, &str)]| {
        let (captured, guard) = Captured::json_logs(tracing::Level::WARN);
        let _hardening = HardeningConfig::from_vars(vars.iter().copied())
            .unwrap()
            .build()
            .unwrap();
        drop(guard);
        captured.text()
    };
    let alone = warnings(&[("HARDENING_HTTPS_REDIRECT", "true")]);
    assert!(alone.contains("redirected again and again"), "{alone}");
    let behind = warnings(&[
        ("HARDENING_HTTPS_REDIRECT", "true"),
        ("HARDENING_BEHIND_TLS", "true"),
    ]);
    assert!(behind.contains("never redirects"), "{behind}");
    let with_proxy = warnings(&[
        ("HARDENING_HTTPS_REDIRECT", "true"),
        ("HARDENING_TRUSTED_PROXIES", "10.0.0.0/8"),
    ]);
    assert!(!with_proxy.contains("HTTPS_REDIRECT"), "{with_proxy}");
}
