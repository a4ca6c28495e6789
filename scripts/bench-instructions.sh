#!/usr/bin/env bash
# Instructions per request of each in-process overhead variant, counted by valgrind's
# callgrind: the same count for the same binary and input whatever else the host is doing,
# so two versions of the code can be compared when timings drift too much to tell them
# apart. Instructions are not time (a change can save instructions and no nanoseconds, as
# the span change of 2026-12-01 did); the targets stay on criterion's timings.
# Only the requests are counted (`--toggle-collect` on the runtime's `block_on`), not the
# start-up (building the apps, calibrating the rate limiter's clock), so the count is the
# same from run to run; each variant runs twice, with N1 and N2 requests, and the difference
# over N2 - N1 leaves out the first requests' one-off costs. (Before 2026-12-04 the whole
# run was counted, which varied by about ±70 a request; those older figures are higher, as
# they also count what runs outside `block_on`: by 1 430 for bare axum, 1 650 for strict and
# 2 730 for the tower-http stack on the code of 2026-12-04, whose ratio was 0.257 that way
# and 0.263 this way.)
# Usage: scripts/bench-instructions.sh [N1] [N2]   (default 2000 12000; about a minute)
#        VARIANTS="hardening-strict floor-as-layer" scripts/bench-instructions.sh
#        VARIANTS=hardening-html scripts/bench-instructions.sh   (a page's nonce CSP)
#        (any variant names of overhead-interleaved; the ratio needs the default three)
#        DROPS=1 scripts/bench-instructions.sh   (also counts dropping each response, which
#        a server pays for every response but the default count leaves out: a change that
#        trades an allocation for a reference count shows its saving only this way)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

request_counts 2000 12000 "$@"
valgrind_overhead_binary
drops=()
[ "${DROPS:-0}" = 1 ] && drops=(--toggle-collect='*drop_in_place<http::response::Response*')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

instructions() { # variant requests: total instructions of one run of one round
  ONLY=$1 N=$2 ROUNDS=1 valgrind --tool=callgrind --collect-atstart=no \
    --toggle-collect='*Runtime::block_on*' "${drops[@]}" --callgrind-out-file="$out/$1.$2" "$bin" \
    >/dev/null 2>"$out/log" || { cat "$out/log" >&2; return 1; }
  local total
  total=$(awk '/^(summary|totals):/ { print $2; exit }' "$out/$1.$2")
  [[ "$total" =~ ^[0-9]+$ ]] || { echo "no instruction total in callgrind's output" >&2; return 1; }
  echo "$total"
}

declare -A per_request
for variant in ${VARIANTS:-bare-axum tower-http-stack hardening-strict}; do
  a=$(instructions "$variant" "$n1")
  b=$(instructions "$variant" "$n2")
  per_request[$variant]=$(( (b - a) / (n2 - n1) ))
  printf '%-20s %8d instructions per request\n' "$variant" "${per_request[$variant]}"
done
[[ -n "${per_request[bare-axum]:-}" && -n "${per_request[tower-http-stack]:-}" && -n "${per_request[hardening-strict]:-}" ]] || exit 0
awk -v bare="${per_request[bare-axum]}" -v tower="${per_request[tower-http-stack]}" \
  -v strict="${per_request[hardening-strict]}" \
  'BEGIN { printf "instruction ratio (strict - bare) / (tower-http - bare): %.3f\n", (strict - bare) / (tower - bare) }'
