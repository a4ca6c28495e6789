#!/usr/bin/env bash
# Cache lines each in-process overhead variant touches per request with cold caches, counted
# by valgrind's cachegrind: simulated 8 KiB fully associative L1s (code and data apart) and a
# 1 MiB level below, with overhead-interleaved writing 2 MiB between requests (POLLUTE_KIB=2048)
# so that every request starts with its data evicted, as a served request does after the
# kernel's and hyper's work. A request's code path is many times 8 KiB, so it evicts its own
# code as it goes: a miss is a line not touched in the last 8 KiB of code, whatever the
# addresses (a set-associative L1's misses move by ±20 lines when unrelated code moves).
# The same counts for the same binary whatever the host is doing (runs agree within a line or
# two; a rebuild that moves code shifts them by about 10), so it resolves code changes that
# loopback timings, ±2 % at best, cannot.
# Why lines and not instructions: served, the request path's code and data come back from L2
# or memory on every request. Code a request already ran (hyper's, axum's, malloc's) costs
# little more the second time; a separate, specialised copy of it does. A change that saves
# instructions can add lines, and then served requests get slower.
# Reports, per variant, code-line misses (I1) and data-line misses (D1, read and write) per
# request beyond bare axum's, and the ratio of strict's lines to the tower-http stack's. The
# pollution's own misses are the same in every variant and cancel in the differences.
# TOP=variant also lists that variant's functions by code-line misses per request.
# Each variant runs twice, with N1 and N2 requests; the difference leaves out start-up.
# Usage: scripts/bench-footprint.sh [N1] [N2]   (default 200 600; about two minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

request_counts 200 600 "$@"
top=${TOP:-}
valgrind_overhead_binary
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# misses VARIANT REQUESTS: "I1 D1-read D1-write" misses of one run of one round.
misses() {
  ONLY=$1 N=$2 ROUNDS=1 POLLUTE_KIB=2048 valgrind --tool=cachegrind --cache-sim=yes \
    --I1=8192,128,64 --D1=8192,128,64 --LL=1048576,16,64 \
    --cachegrind-out-file="$out/$1.$2" "$bin" >/dev/null 2>"$out/log" || { cat "$out/log" >&2; return 1; }
  # events: Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw
  awk '/^events:/ { for (i = 2; i <= NF; i++) at[$i] = i }
       /^summary:/ { print $at["I1mr"], $at["D1mr"], $at["D1mw"]; exit }' "$out/$1.$2"
}

declare -A code data
for variant in bare-axum tower-http-stack hardening-strict; do
  read -r i1 r1 w1 < <(misses "$variant" "$n1")
  read -r i2 r2 w2 < <(misses "$variant" "$n2")
  code[$variant]=$(awk -v a="$i1" -v b="$i2" -v n=$((n2 - n1)) 'BEGIN { printf "%.0f", (b - a) / n }')
  data[$variant]=$(awk -v a=$((r1 + w1)) -v b=$((r2 + w2)) -v n=$((n2 - n1)) 'BEGIN { printf "%.0f", (b - a) / n }')
done
printf '%-20s %22s %22s\n' variant "code lines over bare" "data lines over bare"
for variant in tower-http-stack hardening-strict; do
  printf '%-20s %22d %22d\n' "$variant" $((code[$variant] - code[bare-axum])) $((data[$variant] - data[bare-axum]))
done
awk -v bc="${code[bare-axum]}" -v bd="${data[bare-axum]}" \
  -v tc="${code[tower-http-stack]}" -v td="${data[tower-http-stack]}" \
  -v sc="${code[hardening-strict]}" -v sd="${data[hardening-strict]}" \
  'BEGIN { printf "bare axum: %d code lines per request; line ratio (strict - bare) / (tower-http - bare): %.3f\n",
           bc, ((sc + sd) - (bc + bd)) / ((tc + td) - (bc + bd)) }'

if [ -n "$top" ]; then
  [ -f "$out/$top.$n2" ] || { echo "TOP=$top is not one of the variants" >&2; exit 2; }
  echo "functions of $top by code-line misses per request (first 30):"
  for n in "$n1" "$n2"; do
    cg_annotate --show=I1mr --sort=I1mr --auto=no --show-percs=no "$out/$top.$n" 2>/dev/null \
      | awk '/^ *[0-9,]+ / && !/PROGRAM TOTALS/ { c = $1; gsub(",", "", c); $1 = ""; print c "\t" substr($0, 2) }' \
      > "$out/top.$n"
  done
  awk -F'\t' -v n=$((n2 - n1)) 'NR == FNR { before[$2] = $1; next }
       { printf "%7.1f  %s\n", ($1 - before[$2]) / n, substr($2, 1, 150) }' "$out/top.$n1" "$out/top.$n2" \
    | sort -rn | head -n 30
fi
