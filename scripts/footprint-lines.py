#!/usr/bin/env python3
"""Which 64-byte code lines a request runs, per function, and where in the source they are.

scripts/bench-footprint.sh counts the lines a request touches; this says which ones. It runs
overhead-interleaved's VARIANT under callgrind with per-instruction counts, twice (300 and
600 requests, so that start-up cancels out), keeps the instructions run at least once per
request, and prints, per function, their count and the
distinct 64-byte lines they fall in (densely laid-out code runs about 12 instructions per
line; a function at 7 is spread out by moves, drop glue or cold branches between its hot
ones). With FUNCTION, it also lists that function's runs of hot code by address, mapped to
source lines with addr2line (the binary needs line tables: build it with
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only).

Usage: scripts/footprint-lines.py BINARY VARIANT [FUNCTION]
e.g.   scripts/footprint-lines.py target/release/overhead-interleaved hardening-strict HardeningService
"""

import collections
import os
import re
import subprocess
import sys
import tempfile

REQUESTS = (300, 600)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    binary, variant = sys.argv[1], sys.argv[2]
    wanted = sys.argv[3] if len(sys.argv) == 4 else None
    runs_counts = []
    with tempfile.TemporaryDirectory() as tmp:
        for requests in REQUESTS:
            out = os.path.join(tmp, f"callgrind.{requests}")
            env = dict(os.environ, ONLY=variant, N=str(requests), ROUNDS="1")
            subprocess.run(
                ["valgrind", "--tool=callgrind", "--dump-instr=yes",
                 f"--callgrind-out-file={out}", binary],
                env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            runs_counts.append(instruction_counts(out))
    fewer, more = runs_counts
    extra = REQUESTS[1] - REQUESTS[0]
    per_request = {
        name: sorted(a for a, c in addrs.items() if c - fewer[name][a] >= extra * 0.9)
        for name, addrs in more.items()
    }
    rows = sorted(
        ((len({a // 64 for a in hot}), len(hot), name) for name, hot in per_request.items() if hot),
        reverse=True,
    )
    print(f"{'lines':>6} {'instrs':>7}  function (instructions run once or more per request)")
    for lines, instrs, name in rows[:30]:
        print(f"{lines:6d} {instrs:7d}  {name[:120]}")
    if wanted:
        matches = [name for name in per_request if wanted in name and per_request[name]]
        if not matches:
            sys.exit(f"no function with {wanted!r} ran once per request")
        name = max(matches, key=lambda n: len(per_request[n]))
        print(f"\nruns of hot code in {name[:120]}:")
        for start, end in runs(per_request[name]):
            where = subprocess.run(
                ["addr2line", "-e", binary, "-i", "-s", hex(start)],
                capture_output=True, text=True,
            ).stdout.split()
            print(f"{hex(start)} {end - start + 4:5d} B  {' <- '.join(where[:3])}")


def instruction_counts(path):
    """Ir per instruction address, per function, from callgrind's `positions: instr line`."""
    names, counts = {}, collections.defaultdict(collections.Counter)
    function, previous, after_call = None, 0, False
    for line in open(path):
        if line.startswith(("fn=", "cfn=")):
            m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
            if m.group(2):
                names[m.group(1)] = m.group(2)
            if line.startswith("fn="):
                function = names.get(m.group(1))
            continue
        if line.startswith("calls="):
            after_call = True  # the next line is the call's inclusive cost: not this instruction's
            continue
        fields = line.split()
        if not fields or fields[0][0] not in "+-*0":
            continue
        position = fields[0]
        if position == "*":
            address = previous
        elif position[0] in "+-":
            step = int(position[1:], 16) if position[1:].startswith("0x") else int(position[1:])
            address = previous + step if position[0] == "+" else previous - step
        else:
            address = int(position, 16)
        previous = address
        if after_call:
            after_call = False
            continue
        if len(fields) >= 3:
            counts[function][address] += int(fields[2])
    return counts


def runs(addresses):
    """Consecutive hot instructions (gaps under 16 bytes) as (first, last) address pairs."""
    start = last = addresses[0]
    for address in addresses[1:]:
        if address - last > 16:
            yield start, last
            start = address
        last = address
    yield start, last


if __name__ == "__main__":
    main()
