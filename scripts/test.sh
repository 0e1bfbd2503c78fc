#!/usr/bin/env bash
# Runs every test of diesel-get-or-create with all backends: the derive's unit tests,
# SQLite, PostgreSQL and MySQL behaviour and race tests, the compile-fail (UI) tests,
# doctests (README included), a newcomer's project built from the README's "Use" section
# with the newest Diesel it allows (scripts/newcomer.sh), and the quickstart example. Works on a fresh Debian machine
# with Rust: SQLite is bundled, a missing C compiler is installed with apt when run as root,
# and scripts/servers.sh provides the client libraries and the PostgreSQL and MariaDB
# servers (at $GOC_PG_URL and $GOC_MYSQL_URL, by default on 127.0.0.1); scripts/galera.sh
# starts a 3-node MariaDB Galera cluster of its own (127.0.0.1:4306-4308, $GOC_GALERA_URLS).
set -euo pipefail
cd "$(dirname "$0")/.."

# say, fail, goc_apt_install, goc_servers; exports GOC_PG_URL and GOC_MYSQL_URL.
# shellcheck source=scripts/servers.sh
. scripts/servers.sh
# goc_galera: a local 3-node Galera cluster for tests/galera.rs; exports GOC_GALERA_URLS.
# shellcheck source=scripts/galera.sh
. scripts/galera.sh

command -v cargo >/dev/null || fail "cargo is not installed: install Rust from https://rustup.rs"

# Rust links with the system C compiler, and the bundled SQLite is C.
if ! command -v cc >/dev/null; then
  goc_apt_install "a C compiler: Rust links with it, and it builds the bundled SQLite" gcc libc6-dev
fi

say "database servers"
goc_servers
say "Galera cluster (3 local nodes)"
goc_galera
say "backends: sqlite (bundled); $GOC_SERVERS_SUMMARY; $GOC_GALERA_SUMMARY"

say "unit, integration, race, UI and doc tests"
cargo test --workspace --all-targets --all-features
# The derive's own UI cases again, without the server backends: they need none.
cargo test -p diesel-get-or-create-tests --test ui
cargo test --workspace --doc --all-features

say "a newcomer's project: the README's manifests and examples, newest dependency versions"
scripts/newcomer.sh

say "quickstart example"
scripts/quickstart.sh

say "async example: 64 concurrent requests over a pool (SQLite)"
cargo run --quiet --example async_web
