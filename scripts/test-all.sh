#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs every test, including the ones
# `cargo test --workspace` skips because they need redis-server or a browser, then every
# benchmark once (criterion's test mode), so that a benchmark whose set-up or checks no longer
# hold fails here rather than at the next measurement, then the limiter's memory test again
# in a release build (a few minutes more: its own build): its tables grow differently there,
# and a regression once showed only in an optimised build.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
cargo test --workspace --all-features --locked -- --include-ignored
cargo test --workspace --all-features --locked --bench '*'
cargo test --workspace --all-features --locked --release --test limiter_memory
