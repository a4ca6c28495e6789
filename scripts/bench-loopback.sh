#!/usr/bin/env bash
# Requests per second over loopback HTTP for the three benchmark variants, side by side in
# one run: bare axum, the tower-http + tower_governor stack, and Hardening::strict().
# Each server runs on a single-threaded runtime; wrk drives it with keep-alive connections
# for a bounded duration, pinned to a core of its own when it can be (see scripts/lib.sh;
# PIN=0 to share cores). With several rounds the variants take turns (so a slow spell of
# the host hits all three alike) and the table shows each one's median.
# Usage: scripts/bench-loopback.sh [seconds] [connections] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

duration=${1:-10}
connections=${2:-32}
rounds=${3:-1}
port=38471

ensure_wrk
cargo build -q --release --locked -p hardening-tests --bin bench-server
server=target/release/bench-server

declare -A runs
for round in $(seq "$rounds"); do
  for variant in bare-axum tower-http-stack hardening-strict; do
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
    echo "after round $round (bare | tower-http | strict): ${runs[bare-axum]}| ${runs[tower-http-stack]}| ${runs[hardening-strict]}" >&2
  fi
done

declare -A rps
for variant in bare-axum tower-http-stack hardening-strict; do
  rps[$variant]=$(printf '%s\n' ${runs[$variant]} | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
done

base=${rps[bare-axum]}
[ ${#pin_server[@]} -gt 0 ] && echo "server on CPU 0, wrk on CPU 1"
printf '%-18s %12s %10s\n' variant req/s vs-bare
for variant in bare-axum tower-http-stack hardening-strict; do
  printf '%-18s %12s %9.1f%%\n' "$variant" "${rps[$variant]}" \
    "$(awk -v a="${rps[$variant]}" -v b="$base" 'BEGIN {print 100 * a / b}')"
done
