#!/usr/bin/env bash
# Runs every test of diesel-get-or-create: the derive's unit tests, SQLite behaviour
# and race tests, the compile-fail (UI) tests, doctests (README included), and the
# quickstart example. Works on a fresh Debian machine with Rust: SQLite is bundled,
# and a missing C compiler is installed with apt when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || fail "cargo is not installed: install Rust from https://rustup.rs"

# The bundled SQLite is C: it needs a C compiler.
if ! command -v cc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing a C compiler (gcc) for the bundled SQLite"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc libc6-dev
  else
    fail "no C compiler (cc) found: install gcc (Debian: sudo apt-get install gcc libc6-dev)"
  fi
fi

say "unit, integration, race, UI and doc tests"
cargo test --workspace --all-targets
cargo test --workspace --doc

say "quickstart example"
cargo run --quiet --example quickstart
