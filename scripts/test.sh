#!/usr/bin/env bash
# Runs every test of diesel-get-or-create with all backends: the derive's unit tests,
# SQLite, PostgreSQL and MySQL behaviour and race tests, the Galera suite, the compile-fail
# (UI) tests, doctests (README included), the docs build with warnings denied, a newcomer's
# project built from the README's "Use" section with the newest Diesel it allows
# (scripts/newcomer.sh), and the examples.
#
# Servers: throwaway PostgreSQL and MariaDB servers and a 3-node Galera cluster of the
# run's own (scripts/servers.sh, scripts/galera.sh), in a temporary directory on free
# ports, stopped and removed when the run ends, whether it passes, fails or is interrupted.
# GOC_PG_URL / GOC_MYSQL_URL point the tests at servers of your choosing instead; those are
# used as they are. Works on a fresh Debian machine with Rust: as root, missing packages
# are installed with apt (--no-install-recommends); as another user, the run stops with the
# apt command when a package is missing, and needs no root otherwise.
#
# The first run on a 2-core machine takes about 23 minutes (7 of them compiling) and 15 GB
# of disk in target/; later runs reuse the build (19 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

# say, fail, goc_apt_install, goc_free_port, goc_servers, goc_servers_stop; exports
# GOC_PG_URL and GOC_MYSQL_URL.
# shellcheck source=scripts/servers.sh
. scripts/servers.sh
# goc_galera, goc_gal_stop: a local 3-node Galera cluster for tests/galera.rs; exports
# GOC_GALERA_URLS.
# shellcheck source=scripts/galera.sh
. scripts/galera.sh

GOC_HEARTBEAT=""
goc_cleanup() {
  local status=$?
  # Whatever fails here (a message to a closed pipe), the servers are stopped, and no
  # second signal cuts it short.
  set +e
  trap '' HUP INT PIPE TERM
  [ -n "$GOC_HEARTBEAT" ] && kill "$GOC_HEARTBEAT" 2>/dev/null
  if [ -n "$GOC_SERVERS_DIR" ]; then
    say "stopping the run's servers"
    goc_servers_stop "$status"
  fi
  return "$status"
}
trap goc_cleanup EXIT
# A signal that would end the shell without its EXIT trap ends it through the trap: Ctrl-C,
# a closed terminal, kill, and a closed pipe (`scripts/test.sh | tee log`, then Ctrl-C).
trap 'exit 129' HUP
trap 'echo "interrupted" >&2; exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# step WHAT FIRST_TIME COMMAND...: runs COMMAND under a heading, and says every minute
# that it is still running (cargo and trybuild are silent while one crate compiles).
step() {
  local what=$1 first=$2 start=$SECONDS status
  shift 2
  say "$what (first run: $first)"
  (
    while sleep 5; do
      elapsed=$((SECONDS - start))
      ((elapsed % 60 < 5)) && printf '   ... still %s: %d min so far\n' "$what" $((elapsed / 60))
    done
  ) &
  GOC_HEARTBEAT=$!
  if "$@"; then status=0; else status=$?; fi
  kill "$GOC_HEARTBEAT" 2>/dev/null
  GOC_HEARTBEAT=""
  printf '   done in %ds: %s\n' $((SECONDS - start)) "$what"
  return "$status"
}

command -v cargo >/dev/null || fail "cargo is not installed: install Rust from https://rustup.rs"

# Rust links with the system C compiler, and the bundled SQLite is C.
if ! command -v cc >/dev/null; then
  goc_apt_install "a C compiler: Rust links with it, and it builds the bundled SQLite" gcc libc6-dev
fi

say "database servers"
goc_servers
say "Galera cluster (3 local nodes)"
goc_servers_dir
GOC_GALERA_DIR="$GOC_SERVERS_DIR/galera"
# Node N uses PORT + N - 1 for clients and PORT + 1000 + 10 (N - 1) (+1, +2) for the group.
GOC_GALERA_PORT=$(goc_free_port 1 2 1000 1001 1002 1010 1011 1012 1020 1021 1022)
goc_galera
say "backends: sqlite (bundled); $GOC_SERVERS_SUMMARY; $GOC_GALERA_SUMMARY"

step "building the tests" "7-10 min" \
  cargo test --workspace --all-targets --all-features --no-run
step "unit, integration, race and UI tests" "12-14 min" \
  cargo test --workspace --all-targets --all-features
# The derive's own UI cases again, without the server backends: they need none.
step "UI tests without the server backends" "2 min" \
  cargo test -p diesel-get-or-create-tests --test ui
step "doctests" "1 min" cargo test --workspace --doc --all-features
step "docs (warnings denied)" "1 min" \
  env RUSTDOCFLAGS="-D warnings" cargo doc -p diesel-get-or-create --all-features --no-deps
step "a newcomer's project: the README's manifests and examples, newest dependency versions" \
  "2 min" scripts/newcomer.sh
step "quickstart example" "1 min" scripts/quickstart.sh
step "async example: 64 concurrent requests over a pool (SQLite)" "1 min" \
  cargo run --example async_web
