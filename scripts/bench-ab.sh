#!/usr/bin/env bash
# A/B of a code change over loopback, judged in two code layouts. The same source built with
# 16 codegen units (cargo's default) and with 8 lays its code out differently, and that alone
# moved strict's served req/s by about 4 % (2026-12-01), more than many changes are worth: a
# change measured in one build can win or lose by accident of where its code landed. So this
# builds bench-server from BASE_REV and from the working tree, each both ways, serves each
# build beside the other tree's build of the same layout (scripts/bench-loopback-paired.sh
# with BASELINE= and SERVER=), and prints both results. Trust a change that wins in both.
# Builds go to target/ab/ (a full build each the first time: about five minutes apiece here).
# VARIANTS as for bench-loopback-paired.sh (default: hardening-strict).
# Usage: scripts/bench-ab.sh BASE_REV [seconds] [connections] [rounds]  (default 3 32 10)
set -euo pipefail
cd "$(dirname "$0")/.."

base_rev=${1:?usage: $0 BASE_REV [seconds] [connections] [rounds]}
duration=${2:-3}
connections=${3:-32}
rounds=${4:-10}
base_commit=$(git rev-parse --verify "$base_rev^{commit}")
root=$PWD
worktree=$(mktemp -d)
trap 'git worktree remove --force "$worktree" 2>/dev/null || rm -rf "$worktree"' EXIT
git worktree add -q --detach "$worktree" "$base_commit"

# build DIR UNITS OUT: bench-server of the tree in DIR, with UNITS codegen units, into OUT.
build() {
  (cd "$1" && CARGO_PROFILE_RELEASE_CODEGEN_UNITS=$2 CARGO_TARGET_DIR="$3" \
    cargo build -q --release --locked -p hardening-tests --bin bench-server)
}

export VARIANTS=${VARIANTS:-hardening-strict}
for units in 16 8; do
  build "$worktree" "$units" "$root/target/ab/base-$units"
  build "$root" "$units" "$root/target/ab/tree-$units"
done
for units in 16 8; do
  echo "== $units codegen units: this tree against $base_rev (${base_commit:0:7})"
  BASELINE="target/ab/base-$units/release/bench-server" SERVER="target/ab/tree-$units/release/bench-server" \
    scripts/bench-loopback-paired.sh "$duration" "$connections" "$rounds" 2>/dev/null
done
