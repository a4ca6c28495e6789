#!/usr/bin/env bash
# The two in-process overhead ratios the issues set targets for, from criterion runs repeated
# a few times (this machine's timings drift by several percent between runs):
#   core:    (Hardening::strict() - bare axum) / (tower-http + tower_governor stack - bare axum)
#   core-i:  the same from the bench's interleaved group (each stack's time over bare axum,
#            measured in turns with it: a slow spell lands on both sides of each difference;
#            the two differences are still taken seconds apart). Both are judged against the
#            issue's target (<= 0.25).
#   headers: (our headers + cookies - no layer) / (tower-http SetResponseHeader x10 - no layer)
# Each run uses criterion's median time per variant; the last line is the median over runs.
# Usage: scripts/bench-ratios.sh [runs]   (default 3; about two minutes per run)
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3}
dir=${CARGO_TARGET_DIR:-target}/criterion

median() { # the median point estimate, in ns, of one criterion benchmark
  sed -E 's/.*"median":\{"confidence_interval":\{[^}]*\},"point_estimate":([0-9.eE+-]+).*/\1/' \
    "$dir/$1/new/estimates.json"
}
ratio() { awk -v x="$1" -v base="$2" -v ref="$3" 'BEGIN { printf "%.3f", (x - base) / (ref - base) }'; }

core=() core_i=() headers=()
printf '%-4s %9s %9s %9s %7s %7s | %9s %9s %9s %7s\n' run bare tower strict core core-i none tower-h ours headers
for run in $(seq "$runs"); do
  cargo bench -q --locked -p hardening-tests --bench overhead -- \
    --warm-up-time 2 --measurement-time 6 >/dev/null 2>&1
  cargo bench -q --locked -p hardening-tests --bench headers -- \
    --warm-up-time 2 --measurement-time 5 >/dev/null 2>&1
  bare=$(median hello-world-oneshot/bare-axum)
  tower=$(median hello-world-oneshot/tower-http-stack)
  strict=$(median hello-world-oneshot/hardening-strict)
  none=$(median security-headers-per-response/no-layer)
  tower_h=$(median security-headers-per-response/tower-http-service-builder-x10)
  ours=$(median "security-headers-per-response/hardening-headers+cookies")
  core+=("$(ratio "$strict" "$bare" "$tower")")
  core_i+=("$(ratio "$(median overhead-over-bare-interleaved/hardening-strict)" 0 \
    "$(median overhead-over-bare-interleaved/tower-http-stack)")")
  headers+=("$(ratio "$ours" "$none" "$tower_h")")
  printf '%-4s %9.0f %9.0f %9.0f %7s %7s | %9.0f %9.0f %9.0f %7s\n' "$run" "$bare" "$tower" \
    "$strict" "${core[-1]}" "${core_i[-1]}" "$none" "$tower_h" "$ours" "${headers[-1]}"
done
mid() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "median over $runs runs (ns are per request): core ratio $(mid "${core[@]}")" \
  "and interleaved $(mid "${core_i[@]}") (target <= 0.25 for both)," \
  "headers ratio $(mid "${headers[@]}") (target <= 0.5)"
