#!/usr/bin/env bash
# A newcomer's project: what a user gets who follows the README's "Use" section today.
#
# Creates fresh crates outside the workspace, with no lockfile, so cargo resolves the
# newest versions the manifests allow (the day a new Diesel or diesel-async breaks the
# crate, this fails):
#
#   sync   the README's first ```toml block of "## Use" as the manifest, the first
#          ```rust block of "## Use" as src/main.rs;
#   async  the second ```toml block of "## Use", the first ```rust block of
#          "## Async (diesel-async)" (its hidden `# ` lines included, as rustdoc compiles
#          them; the crate gets a feature `async` that enables this crate's, as the doctest
#          sees it).
#
# The dependency on this crate is rewritten to a path dependency on runtime/; nothing else
# in the manifests is changed. Each project is built and run; its resolved Diesel and
# diesel-async versions are printed.
#
#   scripts/newcomer.sh [DIR]    DIR (default: a new temporary directory) holds the projects
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

work=${1:-}
if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/goc-newcomer.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
# Build products are shared between the two projects (not with the workspace, whose
# lockfile pins other versions): the second build reuses what the first compiled.
export CARGO_TARGET_DIR="$work/target"

# block SECTION KIND N: the Nth ```KIND block of the README section headed SECTION.
block() {
  awk -v section="$1" -v kind="$2" -v want="$3" '
    /^## / { inside = ($0 == section) }
    inside && !fence && $0 == "```" kind { fence = 1; n++; next }
    fence && /^```/ { fence = 0; if (n == want) exit; next }
    fence && n == want { print }
  ' README.md
}

# project NAME TOML RUST: a crate NAME with manifest TOML and main RUST, built and run.
project() {
  local name=$1 toml=$2 rust=$3 dir="$work/$1"
  [ -n "$toml" ] || { echo "error: README.md: no manifest for the $name project" >&2; exit 1; }
  [ -n "$rust" ] || { echo "error: README.md: no example for the $name project" >&2; exit 1; }
  rm -rf "$dir"
  mkdir -p "$dir/src"
  {
    printf '[package]\nname = "goc-newcomer-%s"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n' "$name"
    # An empty workspace of its own: the project is not part of any workspace above it.
    printf '[workspace]\n\n'
    printf '%s\n' "$toml" |
      sed -E "s#^diesel-get-or-create = \{ *version = \"[^\"]*\"#diesel-get-or-create = { path = \"$root/runtime\"#"
    if [ "$name" = async ]; then
      printf '\n[features]\ndefault = ["async"]\nasync = ["diesel-get-or-create/async"]\n'
    fi
  } >"$dir/Cargo.toml"
  grep -q "path = \"$root/runtime\"" "$dir/Cargo.toml" || {
    echo "error: README.md: the $name manifest has no line 'diesel-get-or-create = { version = ...'" >&2
    exit 1
  }
  if [ "$name" = async ]; then
    # rustdoc's hidden lines: `# code` is compiled, `#` alone is an empty line.
    printf '%s\n' "$rust" | sed -E 's/^# //; s/^#$//' >"$dir/src/main.rs"
  else
    printf '%s\n' "$rust" >"$dir/src/main.rs"
  fi
  echo "-- $name: $dir (no lockfile; resolving the newest allowed versions)"
  sed 's/^/   | /' "$dir/Cargo.toml"
  (
    cd "$dir"
    cargo generate-lockfile
    for crate in diesel diesel-async; do
      awk -v c="$crate" '$0 == "name = \"" c "\"" { getline; print "   resolved " c " " $3 }' Cargo.lock | tr -d '"'
    done
    cargo run
  )
}

project sync "$(block '## Use' toml 1)" "$(block '## Use' rust 1)"
project async "$(block '## Use' toml 2)" "$(block '## Async (diesel-async)' rust 1)"
echo "-- newcomer projects: both built and ran"
