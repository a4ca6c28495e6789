# Shell helpers shared by the load scripts; source it, do not run it.

# ensure_command COMMAND [PACKAGE]: installs PACKAGE (default: COMMAND) from Debian if
# COMMAND is missing (apt-get, through sudo unless root).
ensure_command() {
  command -v "$1" >/dev/null 2>&1 && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${2:-$1}" >/dev/null
}

# wait_for_port PORT [TRIES]: waits until something accepts on 127.0.0.1:PORT, polling every
# 0.1 s at most TRIES times (default 50); fails if nothing does.
wait_for_port() {
  local port=$1 tries=${2:-50}
  for _ in $(seq 1 "$tries"); do
    (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing is listening on 127.0.0.1:$port" >&2
  return 1
}

# pin_server / pin_client: command prefixes that put the server on CPU 0 and the load
# generator on CPU 1 when taskset exists and there are at least two CPUs (so the client's
# work is not charged to the server), else nothing. PIN=0 turns pinning off.
if [ "${PIN:-1}" = 1 ] && command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c 0)
  pin_client=(taskset -c 1)
else
  pin_server=()
  pin_client=()
fi

# median_of_sorted: the median of the numbers on stdin, one per line, already sorted (the
# mean of the middle two when there is an even count).
median_of_sorted() {
  awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# cpu_ticks CPU: "busy total" jiffies of one CPU from /proc/stat (for a busy share between
# two readings).
cpu_ticks() {
  awk -v cpu="cpu$1" '$1 == cpu { busy = $2 + $3 + $4 + $7 + $8; print busy, busy + $5 + $6 }' /proc/stat
}

# request_counts DEFAULT1 DEFAULT2 [N1] [N2]: sets n1 and n2 (the two run lengths whose
# difference leaves start-up out of a per-request count) from the arguments or the defaults;
# exits with usage unless both are whole numbers with 0 < N1 < N2.
request_counts() {
  n1=${3:-$1}
  n2=${4:-$2}
  if ! [[ "$n1" =~ ^[0-9]+$ && "$n2" =~ ^[0-9]+$ ]] || [ "$n1" -lt 1 ] || [ "$n2" -le "$n1" ]; then
    echo "usage: $0 [N1] [N2], whole numbers with 0 < N1 < N2" >&2
    exit 2
  fi
}

# valgrind_overhead_binary: installs valgrind if missing, builds overhead-interleaved (release)
# and sets `bin` to it (in CARGO_TARGET_DIR when set, where cargo put it): the set-up of the
# scripts that count per-request costs under valgrind.
valgrind_overhead_binary() {
  ensure_command valgrind
  cargo build -q --release --locked -p hardening-tests --bin overhead-interleaved
  bin=${CARGO_TARGET_DIR:-target}/release/overhead-interleaved
}
