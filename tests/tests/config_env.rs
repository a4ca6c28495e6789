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
