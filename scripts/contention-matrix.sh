#!/usr/bin/env bash
# The contention matrix of BENCHMARKS.md: for each backend, 1/8/32/64 workers x 1/1000 keys,
# every strategy (this crate, naive read-then-write, hand-written upsert), as one markdown
# table on stdout (the strategies' distinct error messages go to stderr).
#
#   scripts/contention-matrix.sh
#   CALLS=5000 BACKENDS="postgres" PG_ISOLATION="repeatable read" scripts/contention-matrix.sh
#
# Environment: CALLS (per strategy and setting, default 10000), HIT_RATIO (0.5), INCREMENTS
# (0.5), BACKENDS ("sqlite postgres mysql"), WORKERS ("1 8 32 64"), KEYS ("1 1000"),
# PG_ISOLATION ("read committed"), MYSQL_ISOLATION ("repeatable read"). The servers are
# throwaway ones of scripts/servers.sh, stopped at the end, or yours at GOC_PG_URL and
# GOC_MYSQL_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

calls=${CALLS:-10000}
hit_ratio=${HIT_RATIO:-0.5}
increments=${INCREMENTS:-0.5}
backends=${BACKENDS:-"sqlite postgres mysql"}
workers=${WORKERS:-"1 8 32 64"}
keys=${KEYS:-"1 1000"}

# shellcheck source=scripts/servers.sh
. scripts/servers.sh
trap 'status=$?; set +e; trap "" HUP INT PIPE TERM; goc_servers_stop $status' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM
case " $backends " in *" postgres "* | *" mysql "*) goc_servers >&2 ;; esac

cargo build --quiet --release -p diesel-get-or-create-bench --all-features --bin contention >&2
bin=${CARGO_TARGET_DIR:-target}/release/contention

echo "calls per strategy and setting: $calls; hit ratio $hit_ratio; increments $increments"
echo
echo "| backend | isolation | workers | keys | strategy | calls/s | p50 | p99 | statements/call | failed statements | errors | duplicates | lost increments | created |"
echo "|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
start=$(date +%s)
for backend in $backends; do
  case $backend in
    postgres) isolation=(--isolation "${PG_ISOLATION:-read committed}") ;;
    mysql) isolation=(--isolation "${MYSQL_ISOLATION:-repeatable read}") ;;
    *) isolation=() ;;
  esac
  for k in $keys; do
    for w in $workers; do
      "$bin" --backend "$backend" "${isolation[@]}" --workers "$w" --keys "$k" \
        --calls "$calls" --hit-ratio "$hit_ratio" --increments "$increments" --no-header
    done
  done
done
echo
echo "matrix took $(($(date +%s) - start)) s"
