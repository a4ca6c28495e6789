#!/usr/bin/env bash
# The main demo: example-notes (a hardened notes service on SQLite with the in-memory rate
# limiter) on http://127.0.0.1:3000. Writes ./.env with fresh random secrets on first run
# (ignored by git; delete it to rotate), installs a C compiler if missing (SQLite is built
# from source by rusqlite), then runs the service. Ctrl-C stops it. The admin account
# (ADMIN_EMAIL) is created at start-up with ADMIN_PASSWORD, a random one in .env: registering
# that address changes nothing, so the admin role cannot be had by signing up.
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

admin_password() { head -c 18 /dev/urandom | base64 -w0 | tr '+/' '-_'; }
if [ ! -f .env ]; then
  umask 077
  {
    echo "# Demo secrets written by scripts/demo.sh on $(date -u +%F). Not for production."
    echo "JWT_SECRET=$(head -c 48 /dev/urandom | base64 -w0)"
    echo "ADMIN_EMAIL=admin@example.com"
    echo "ADMIN_PASSWORD=$(admin_password)"
  } > .env
  echo "wrote .env with fresh demo secrets (the admin's password is ADMIN_PASSWORD there)" >&2
elif grep -q '^ADMIN_EMAIL=.' .env && ! grep -q '^ADMIN_PASSWORD=' .env; then
  # A .env from before ADMIN_PASSWORD existed: the service refuses ADMIN_EMAIL without it.
  [ -z "$(tail -c 1 .env)" ] || echo >> .env
  echo "ADMIN_PASSWORD=$(admin_password)" >> .env
  echo "added ADMIN_PASSWORD (the password of ADMIN_EMAIL, the admin account) to .env" >&2
fi

exec cargo run --release -p example-notes
