#!/usr/bin/env bash
# Runs the quickstart example on embedded SQLite: nothing to set up but a C compiler,
# which Rust needs to link any program on Linux (and which builds the bundled SQLite).
# On Debian, run as root, a missing compiler is installed with apt; otherwise the script
# stops with the command that installs it.
set -euo pipefail
cd "$(dirname "$0")/.."

# say, fail, goc_apt_install (nothing here starts a server).
# shellcheck source=scripts/servers.sh
. scripts/servers.sh

command -v cargo >/dev/null || fail "cargo is not installed: install Rust from https://rustup.rs"
if ! command -v cc >/dev/null; then
  goc_apt_install "a C compiler: Rust links with it, and it builds the bundled SQLite" gcc libc6-dev
fi

say "quickstart example (the first build takes about a minute)"
cargo run --example quickstart
