#!/usr/bin/env bash
# Requests per second over loopback HTTP, each variant measured at the same time as bare
# axum: both servers share one core (CPU 0), one wrk each drives them from the other (CPU 1),
# for the same seconds. Sharing the core, each server gets about half of it, so the ratio of
# their req/s is the ratio of their costs per request, and a slow spell of the host hits both
# alike. scripts/bench-loopback.sh measures one server after another instead; on hosts whose
# speed drifts, its rounds swing by tens of percent, these by a few (bare against bare, the
# control row, shows how much). Two servers alternating on one core also evict each other's
# caches, so costs that grow with cold caches weigh more here than with the core to oneself.
# Reports, per variant, the median of the rounds' ratios and their range. Ports alternate
# between rounds. Beside it, the same ratio from the servers' own CPU time per request
# (/proc/PID/stat, 10-ms ticks: about ±1 % a round): when the clients' core is near full, the
# clients set part of the pace and the req/s ratio leans towards 100 %; the CPU ratio does not.
# VARIANTS="..." picks the variants (default: hardening-strict bare-axum-strict-headers
# tower-http-stack bare-axum). hardening-strict-without:STEP[,STEP...] is strict without those
# steps (rate-limit, security-headers, health, csrf, limits, document-headers; see
# bench-server): what each costs;
# bare-axum-noop-layer is bare axum under a layer that does nothing (what any layer costs);
# floor-as-layer is bare axum under a layer that only sends strict's headers, fixed values
# (what any layer sending those bytes costs at least).
# BASELINE=path/to/an/older/bench-server: an A/B of a code change instead. Each variant of this
# tree is served beside the same variant of that binary (build it from the old commit first:
# cargo build --release -p hardening-tests --bin bench-server, then copy it out of target/).
# SERVER=path/to/a/bench-server: serve that binary as this tree's instead of building one
# (scripts/bench-ab.sh uses it for builds with another code layout).
# Usage: scripts/bench-loopback-paired.sh [seconds] [connections] [rounds]  (default 3 32 8)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

duration=${1:-3}
connections=${2:-32}
rounds=${3:-8}
if ! [[ "$duration" =~ ^[1-9][0-9]*$ && "$connections" =~ ^[1-9][0-9]*$ && "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [seconds] [connections] [rounds], whole numbers above 0" >&2
  exit 2
fi
baseline=${BASELINE:-}
if [ -n "$baseline" ] && [ ! -x "$baseline" ]; then
  echo "BASELINE=$baseline is not an executable bench-server" >&2
  exit 2
fi
read -r -a variants <<< "${VARIANTS:-hardening-strict bare-axum-strict-headers tower-http-stack bare-axum}"
[ ${#pin_server[@]} -gt 0 ] || echo "warning: no pinning (one CPU, no taskset, or PIN=0): wrk shares the servers' core" >&2

ensure_command wrk
server=${SERVER:-}
if [ -z "$server" ]; then
  cargo build -q --release --locked -p hardening-tests --bin bench-server
  server=${CARGO_TARGET_DIR:-target}/release/bench-server
elif [ ! -x "$server" ]; then
  echo "SERVER=$server is not an executable bench-server" >&2
  exit 2
fi
out=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$out"' EXIT

# rps FILE: the Requests/sec figure of a wrk report.
rps() { awk '/Requests\/sec/ { print $2 }' "$1"; }
# requests FILE: the number of requests a wrk report counts.
requests() { awk '/requests in/ { print $1 }' "$1"; }
# proc_ticks PID: the CPU time (user + system, in clock ticks) a process has used so far.
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

declare -A ratios cpu_ratios medians cpu_medians
max_client_busy=0
for round in $(seq "$rounds"); do
  for variant in "${variants[@]}"; do
    # Below the kernel's ephemeral range (32768 and up), which wrk's own sockets use.
    bare_port=18491 other_port=18492
    if [ $((round % 2)) -eq 0 ]; then bare_port=18492 other_port=18491; fi
    if [ -n "$baseline" ]; then
      "${pin_server[@]}" "$baseline" "$variant" "$bare_port" & pids=($!)
    else
      "${pin_server[@]}" "$server" bare-axum "$bare_port" & pids=($!)
    fi
    "${pin_server[@]}" "$server" "$variant" "$other_port" & pids+=($!)
    wait_for_port "$bare_port"
    wait_for_port "$other_port"
    for phase in warm measure; do
      seconds=$duration
      [ "$phase" = warm ] && seconds=1
      read -r busy0 total0 < <(cpu_ticks 1)
      ticks0=("$(proc_ticks "${pids[0]}")" "$(proc_ticks "${pids[1]}")")
      "${pin_client[@]}" wrk -t1 -c"$connections" -d"${seconds}s" "http://127.0.0.1:$bare_port/" > "$out/bare" &
      pids+=($!)
      "${pin_client[@]}" wrk -t1 -c"$connections" -d"${seconds}s" "http://127.0.0.1:$other_port/" > "$out/other"
      wait "${pids[2]}"
      unset 'pids[2]'
      read -r busy1 total1 < <(cpu_ticks 1)
      ticks1=("$(proc_ticks "${pids[0]}")" "$(proc_ticks "${pids[1]}")")
    done
    # If the clients' core is full, the clients set the pace and the ratio leans to 100 %.
    client_busy=$(( 100 * (busy1 - busy0) / (total1 - total0 + 1) ))
    [ "$client_busy" -gt "$max_client_busy" ] && max_client_busy=$client_busy
    for f in bare other; do
      non2xx=$(awk '/Non-2xx/ { print $NF }' "$out/$f")
      [ -n "$non2xx" ] && echo "warning: $variant round $round ($f) answered $non2xx non-2xx responses" >&2
    done
    ratio=$(awk -v a="$(rps "$out/bare")" -v b="$(rps "$out/other")" 'BEGIN { printf "%.1f", 100 * b / a }')
    ratios[$variant]+="$ratio "
    # The servers' own CPU time per request, compared the same way: what the req/s ratio
    # would be were the servers alone to set the pace (the client core is never quite idle).
    cpu_ratio=$(awk -v tb=$((ticks1[0] - ticks0[0])) -v to=$((ticks1[1] - ticks0[1])) \
      -v nb="$(requests "$out/bare")" -v no="$(requests "$out/other")" \
      'BEGIN { if (tb > 0 && to > 0 && nb > 0 && no > 0) printf "%.1f", 100 * (tb / nb) / (to / no); else print "nan" }')
    cpu_ratios[$variant]+="$cpu_ratio "
    echo "round $round: $variant $(rps "$out/other") req/s, ${baseline:+baseline }${baseline:-bare-axum} $(rps "$out/bare") req/s: $ratio % (client core ${client_busy} % busy; by server CPU per request $cpu_ratio %)" >&2
    kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
    pids=()
  done
done

if [ ${#pin_server[@]} -gt 0 ]; then
  echo "both servers on CPU 0, one wrk each on CPU 1, ${duration} s, $connections connections each, $rounds rounds; client core at most ${max_client_busy} % busy"
  [ "$max_client_busy" -ge 97 ] && echo "warning: the clients' core was full in some round: those ratios lean towards 100 %" >&2
fi
against="vs bare (median)"
[ -n "$baseline" ] && against="vs baseline (median)"
width=26
for variant in "${variants[@]}"; do [ ${#variant} -gt $width ] && width=${#variant}; done
printf '%-*s %21s %17s %24s\n' "$width" variant "$against" "range of rounds" "by server CPU (median)"
for variant in "${variants[@]}"; do
  read -r -a these <<< "${ratios[$variant]}"
  sorted=$(printf '%s\n' "${these[@]}" | sort -g)
  read -r -a cpu <<< "${cpu_ratios[$variant]}"
  cpu_sorted=$(printf '%s\n' "${cpu[@]}" | grep -v nan | sort -g)
  cpu_median=nan
  [ -n "$cpu_sorted" ] && cpu_median=$(median_of_sorted <<< "$cpu_sorted")
  median=$(median_of_sorted <<< "$sorted")
  medians[$variant]=$median
  cpu_medians[$variant]=$cpu_median
  printf '%-*s %20.1f%% %9.1f%%-%5.1f%% %23.1f%%\n' "$width" "$variant" "$median" \
    "$(head -n1 <<< "$sorted")" "$(tail -n1 <<< "$sorted")" "$cpu_median"
done

# How much faster or slower a host is at serving moves every variant's percentage: one whose
# kernel and caches favour small per-request work lets the tower-http stack keep 56-60 %
# (2026-12-02, an AMD EPYC host) where the issue's reference host gave it 46 %. Strict's
# overhead as a share of the stack's, (100/strict - 1) / (100/stack - 1), moves much less
# between hosts; the issue's pair of figures (85 % with the stack at 46 %) makes its target
# 0.150 on that scale.
if [ -z "$baseline" ] && [ -n "${medians[hardening-strict]:-}" ] && [ -n "${medians[tower-http-stack]:-}" ]; then
  share() { awk -v s="$1" -v t="$2" 'BEGIN { if (s > 0 && t > 0 && t < 100) printf "%.3f", (100 / s - 1) / (100 / t - 1); else print "nan" }'; }
  echo "strict's overhead as a share of the tower-http stack's: $(share "${medians[hardening-strict]}" "${medians[tower-http-stack]}") by req/s, $(share "${cpu_medians[hardening-strict]}" "${cpu_medians[tower-http-stack]}") by server CPU (85 % with the stack at 46 %, the issue's figures: 0.150)"
fi
