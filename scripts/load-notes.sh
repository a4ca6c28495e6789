#!/usr/bin/env bash
# Load on example-notes' authenticated `GET /notes` (ten notes of one user, JWT checked on
# every request, SQLite read), with and without `Hardening`, side by side in one run:
# `hardened` is example_notes::app (per-IP limit lifted so the load never sees a 429),
# `bare` is example_notes::routes. Each server runs on a single-threaded runtime
# (tests/src/bin/notes-bench-server.rs); wrk drives it with keep-alive connections for a
# bounded duration. Usage: scripts/load-notes.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

duration=${1:-10}
connections=${2:-32}
variants=(bare hardened)

ensure_command wrk
cargo build -q --release --locked -p hardening-tests --bin notes-bench-server
server=${CARGO_TARGET_DIR:-target}/release/notes-bench-server

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Each server binds a free port and prints its token, then `listening on 127.0.0.1:PORT`.
declare -A port token
for variant in "${variants[@]}"; do
  TMPDIR="$work" "$server" "$variant" 0 >"$work/$variant.out" 2>"$work/$variant.err" &
  pids+=($!)
done
for variant in "${variants[@]}"; do
  for _ in $(seq 1 100); do
    if [ "$(wc -l <"$work/$variant.out")" -ge 2 ]; then break; fi
    sleep 0.1
  done
  if [ "$(wc -l <"$work/$variant.out")" -lt 2 ]; then
    echo "the $variant server did not start:" >&2
    cat "$work/$variant.err" >&2
    exit 1
  fi
  token[$variant]=$(sed -n 1p "$work/$variant.out")
  port[$variant]=$(sed -n 2p "$work/$variant.out" | sed 's/.*://')
  wait_for_port "${port[$variant]}"
done

# wrk's latency ("812.00us", "1.23ms", "2.00s") in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /m$/) n *= 60000;
    else if (v ~ /s$/) n *= 1000
    printf "%.2f", n
  }'
}

declare -A rps p99
for variant in "${variants[@]}"; do
  url="http://127.0.0.1:${port[$variant]}/notes"
  auth="authorization: Bearer ${token[$variant]}"
  timeout 30 wrk -t2 -c"$connections" -d2s -H "$auth" "$url" >/dev/null # warm-up
  out=$(timeout $((duration + 30)) wrk -t2 -c"$connections" -d"${duration}s" --latency -H "$auth" "$url")
  rps[$variant]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99[$variant]=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  if [ -n "$non2xx" ]; then echo "warning: $variant answered $non2xx non-2xx responses" >&2; fi
  errors=$(echo "$out" | awk '/Socket errors/')
  if [ -n "$errors" ]; then echo "warning: $variant: $errors" >&2; fi
done

printf '%-10s %12s %12s\n' variant req/s p99-ms
for variant in "${variants[@]}"; do
  printf '%-10s %12s %12s\n' "$variant" "${rps[$variant]}" "${p99[$variant]}"
done
awk -v h="${rps[hardened]}" -v b="${rps[bare]}" -v hp="${p99[hardened]}" -v bp="${p99[bare]}" \
  'BEGIN { printf "hardened/bare: req/s %.3f, p99 %.3f\n", h / b, hp / bp }'
