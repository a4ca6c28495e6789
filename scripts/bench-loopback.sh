#!/usr/bin/env bash
# Requests per second over loopback HTTP for the three benchmark variants, side by side in
# one run: bare axum, the tower-http + tower_governor stack, and Hardening::strict().
# Reports the ratio of the medians and the median of the per-round ratios.
# Each server runs on a single-threaded runtime; wrk drives it with keep-alive connections
# for a bounded duration, pinned to a core of its own when it can be (see scripts/lib.sh;
# PIN=0 to share cores). With several rounds the variants take turns, each round starting
# with the next one (so a slow spell of the host hits all alike), and the table shows each
# one's median.
# VARIANTS="..." picks other variants (bare-axum first: the percentages are against it), e.g.
# bare-axum-strict-headers: bare axum sending strict's response headers, the wire-cost floor.
# Usage: scripts/bench-loopback.sh [seconds] [connections] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

duration=${1:-10}
connections=${2:-32}
rounds=${3:-1}
# Below the kernel's ephemeral range (32768 and up), which wrk's own sockets use.
port=18471
read -r -a variants <<< "${VARIANTS:-bare-axum tower-http-stack hardening-strict}"

ensure_command wrk
cargo build -q --release --locked -p hardening-tests --bin bench-server
server=${CARGO_TARGET_DIR:-target}/release/bench-server

declare -A runs
count=${#variants[@]}
for round in $(seq "$rounds"); do
  # Each round starts with another variant, so none always runs first (or right after bare).
  for k in $(seq 0 $((count - 1))); do
    variant=${variants[$(( (k + round - 1) % count ))]}
    "${pin_server[@]}" "$server" "$variant" "$port" &
    pid=$!
    trap 'kill $pid 2>/dev/null || true' EXIT
    wait_for_port "$port"
    "${pin_client[@]}" wrk -t1 -c"$connections" -d2s "http://127.0.0.1:$port/" >/dev/null # warm-up
    out=$("${pin_client[@]}" wrk -t1 -c"$connections" -d"${duration}s" "http://127.0.0.1:$port/")
    runs[$variant]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    [ -n "$non2xx" ] && echo "warning: $variant answered $non2xx non-2xx responses" >&2
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
  if [ "$rounds" -gt 1 ]; then
    echo "after round $round:" >&2
    for variant in "${variants[@]}"; do echo "  $variant: ${runs[$variant]}" >&2; done
  fi
done

median() { printf '%s\n' "$@" | sort -g | median_of_sorted; }

# Two estimates: the ratio of the medians, and the median of each round's own ratio (a
# variant against the first of VARIANTS, measured in the same round; this cancels slow drift
# of the host).
declare -A rps paired
read -r -a base_runs <<< "${runs[${variants[0]}]}"
for variant in "${variants[@]}"; do
  read -r -a these <<< "${runs[$variant]}"
  rps[$variant]=$(median "${these[@]}")
  ratios=()
  for i in "${!these[@]}"; do
    ratios+=("$(awk -v a="${these[$i]}" -v b="${base_runs[$i]}" 'BEGIN {print 100 * a / b}')")
  done
  paired[$variant]="$(median "${ratios[@]}") $(printf '%s\n' "${ratios[@]}" | sort -g | sed -n '1p;$p' | tr '\n' ' ')"
done

base=${rps[${variants[0]}]}
[ ${#pin_server[@]} -gt 0 ] && echo "server on CPU 0, wrk on CPU 1"
printf '%-26s %12s %10s %14s %18s\n' variant req/s vs-bare per-round-median per-round-range
for variant in "${variants[@]}"; do
  read -r med lo hi <<< "${paired[$variant]}"
  printf '%-26s %12s %9.1f%% %13.1f%% %8.1f%%-%5.1f%%\n' "$variant" "${rps[$variant]}" \
    "$(awk -v a="${rps[$variant]}" -v b="$base" 'BEGIN {print 100 * a / b}')" "$med" "$lo" "$hi"
done
