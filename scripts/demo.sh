#!/usr/bin/env bash
# The main demo: example-notes (a hardened notes service on SQLite with the in-memory rate
# limiter) on http://127.0.0.1:3000. Writes ./.env with fresh random secrets on first run
# (ignored by git; delete it to rotate), installs a C compiler if missing (SQLite is built
# from source by rusqlite), then runs the service. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cc >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing a C compiler (gcc) for SQLite" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
fi

if [ ! -f .env ]; then
  umask 077
  {
    echo "# Demo secrets written by scripts/demo.sh on $(date -u +%F). Not for production."
    echo "JWT_SECRET=$(head -c 48 /dev/urandom | base64 -w0)"
    echo "COOKIE_KEY=$(head -c 48 /dev/urandom | base64 -w0)"
    echo "ADMIN_EMAIL=admin@example.com"
  } > .env
  echo "wrote .env with fresh demo secrets" >&2
fi

exec cargo run --release -p example-notes
