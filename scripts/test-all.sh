#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs every test, including the ones
# `cargo test --workspace` skips because they need redis-server or a browser.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
cargo test --workspace --all-features --locked -- --include-ignored
