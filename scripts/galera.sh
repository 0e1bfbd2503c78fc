#!/usr/bin/env bash
# A local 3-node MariaDB Galera cluster for the Galera suite (tests/galera.rs): three new
# mariadbd processes with their own data directories and ports, never the main server.
#
#   scripts/galera.sh                 start the cluster (or reuse a healthy one), print the URLs
#   . scripts/galera.sh && goc_galera what scripts/test.sh does; exports GOC_GALERA_URLS
#   scripts/galera.sh stop-node N     stop node N (1-3) cleanly, as an operator would
#   scripts/galera.sh start-node N    start node N again; it rejoins by IST (prints how)
#   scripts/galera.sh stop            stop the whole cluster
#
# Node N (1..3) listens on 127.0.0.1:$((GOC_GALERA_PORT + N - 1)) for clients (default
# 4306, 4307, 4308) and on 127.0.0.1:$((GOC_GALERA_PORT + 1000 + 10 * (N - 1))) (+1, +2) for
# group communication, IST and SST. Its files (data, socket, pid, error log) are under
# $GOC_GALERA_DIR/nodeN (default /tmp/goc-galera). A healthy cluster (3 members, every
# node Synced) is reused; anything else is stopped, wiped and created again (~20 s).
# Missing packages (galera-4, rsync, mariadb-server, iproute2) are installed with apt as
# root. Run as root, the nodes run as the `mysql` user (mariadbd refuses root otherwise).
# Whatever cannot be done stops the run with what failed and the node's log.
set -euo pipefail

GOC_GALERA_DIR="${GOC_GALERA_DIR:-${TMPDIR:-/tmp}/goc-galera}"
GOC_GALERA_PORT="${GOC_GALERA_PORT:-4306}"
GOC_GALERA_WAIT="${GOC_GALERA_WAIT:-60}"
GOC_GALERA_PROVIDER="${GOC_GALERA_PROVIDER:-/usr/lib/galera/libgalera_smm.so}"

if ! declare -F goc_apt_install >/dev/null; then
  # shellcheck source=scripts/servers.sh
  . "$(dirname "${BASH_SOURCE[0]}")/servers.sh"
fi

goc_gal_port() { echo $((GOC_GALERA_PORT + $1 - 1)); }
goc_gal_gcomm_port() { echo $((GOC_GALERA_PORT + 1000 + 10 * ($1 - 1))); }
goc_gal_dir() { echo "$GOC_GALERA_DIR/node$1"; }
goc_gal_log() { echo "$(goc_gal_dir "$1")/error.log"; }

goc_gal_sql() { # goc_gal_sql N SQL: runs SQL as root on node N over TCP; prints the rows
  "$GAL_CLIENT" --connect-timeout=3 -h 127.0.0.1 -P "$(goc_gal_port "$1")" -u root -N -B -e "$2"
}
goc_gal_var() { # goc_gal_var N STATUS_VARIABLE: its value on node N, or nothing
  goc_gal_sql "$1" "SHOW STATUS LIKE '$2'" 2>/dev/null | awk '{ print $2 }'
}
goc_gal_pid() { # the pid of node N's mariadbd, if it runs
  # launch.pid is written at start; mariadbd writes its own pid file only after a state
  # transfer.
  local pidfile pid
  for pidfile in "$(goc_gal_dir "$1")/launch.pid" "$(goc_gal_dir "$1")/mariadbd.pid"; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile" 2>/dev/null) || continue
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
      && grep -q "node$1/my.cnf" "/proc/$pid/cmdline" 2>/dev/null; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}
goc_gal_synced() { # is node N a Synced member of a Primary component of 3?
  [ "$(goc_gal_var "$1" wsrep_local_state_comment)" = Synced ] \
    && [ "$(goc_gal_var "$1" wsrep_cluster_status)" = Primary ] \
    && [ "$(goc_gal_var "$1" wsrep_cluster_size)" = 3 ]
}
goc_gal_healthy() { goc_gal_synced 1 && goc_gal_synced 2 && goc_gal_synced 3; }

goc_gal_fail_log() { # goc_gal_fail_log N MESSAGE: fails with the tail of node N's log
  local log
  log=$(goc_gal_log "$1")
  fail "$2" "node $1's log ($log) ends with:" \
    "$(tail -n 15 "$log" 2>/dev/null | sed 's/^/  /' || echo '  (no log)')"
}

goc_gal_packages() {
  local missing=""
  [ -f "$GOC_GALERA_PROVIDER" ] || missing="$missing galera-4"
  command -v rsync >/dev/null || missing="$missing rsync"
  [ -x /usr/sbin/mariadbd ] && command -v mariadb-install-db >/dev/null || missing="$missing mariadb-server"
  command -v ss >/dev/null || command -v lsof >/dev/null || missing="$missing iproute2"
  { command -v mariadb || command -v mysql; } >/dev/null || missing="$missing mariadb-client"
  if [ -n "$missing" ]; then
    # shellcheck disable=SC2086 # one word per package
    goc_apt_install "a local Galera cluster for tests/galera.rs" $missing
  fi
  [ -f "$GOC_GALERA_PROVIDER" ] || fail "no Galera provider at $GOC_GALERA_PROVIDER" \
    "install galera-4 (Debian), or set GOC_GALERA_PROVIDER to libgalera_smm.so"
  GAL_CLIENT=$(command -v mariadb || command -v mysql)
}

# The user the nodes run as: mariadbd refuses to run as root without --user.
goc_gal_user() {
  if goc_is_root; then
    if getent passwd mysql >/dev/null; then echo mysql; else echo root; fi
  else
    id -un
  fi
}

goc_gal_write_config() { # goc_gal_write_config N
  local n=$1 dir port g1 g2 g3 gport
  dir=$(goc_gal_dir "$n")
  port=$(goc_gal_port "$n")
  gport=$(goc_gal_gcomm_port "$n")
  g1=$(goc_gal_gcomm_port 1) g2=$(goc_gal_gcomm_port 2) g3=$(goc_gal_gcomm_port 3)
  {
    echo "# Galera node $n of diesel-get-or-create's test cluster (scripts/galera.sh)."
    goc_my_cnf "$dir" "$GAL_USER" "$port"
    cat <<EOF
performance_schema = OFF
innodb_buffer_pool_size = 64M
innodb_log_file_size = 32M
innodb_flush_log_at_trx_commit = 0
max_connections = 200

binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2

wsrep_on = ON
wsrep_provider = $GOC_GALERA_PROVIDER
wsrep_cluster_name = goc_galera
wsrep_cluster_address = gcomm://127.0.0.1:$g1,127.0.0.1:$g2,127.0.0.1:$g3
wsrep_node_name = node$n
wsrep_node_address = 127.0.0.1:$gport
wsrep_node_incoming_address = 127.0.0.1:$port
wsrep_sst_method = rsync
wsrep_sst_receive_address = 127.0.0.1:$((gport + 2))
wsrep_provider_options = "gmcast.listen_addr=tcp://127.0.0.1:$gport;ist.recv_addr=127.0.0.1:$((gport + 1));gcache.size=256M"
wsrep_slave_threads = 2
EOF
  } >"$dir/my.cnf"
}

goc_gal_init_node() { # goc_gal_init_node N: a fresh data directory
  local n=$1 dir out
  dir=$(goc_gal_dir "$n")
  mkdir -p "$dir/data"
  goc_gal_write_config "$n"
  goc_is_root && chown -R "$GAL_USER" "$dir"
  out=$(mariadb-install-db --defaults-file="$dir/my.cnf" --auth-root-authentication-method=normal \
    --skip-test-db 2>&1) || fail "mariadb-install-db failed for Galera node $n ($dir):" "$out"
}

goc_gal_start_node() { # goc_gal_start_node N [--wsrep-new-cluster]
  local n=$1 dir
  shift
  dir=$(goc_gal_dir "$n")
  goc_gal_pid "$n" >/dev/null && return 0
  echo "--- $(date -u +%FT%TZ) started by scripts/galera.sh" >>"$(goc_gal_log "$n")"
  # setsid: the node outlives this shell and the test that restarted it.
  # (Without job control the background job leads no process group, so setsid execs
  # mariadbd in place: $! is its pid.)
  setsid /usr/sbin/mariadbd --defaults-file="$dir/my.cnf" "$@" </dev/null >>"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/launch.pid"
}

goc_gal_wait_synced() { # goc_gal_wait_synced N: until node N is Synced (any cluster size)
  local n=$1 i state
  for ((i = 0; i < GOC_GALERA_WAIT * 2; i++)); do
    state=$(goc_gal_var "$n" wsrep_local_state_comment || true)
    [ "$state" = Synced ] && return 0
    if ((i > 4)) && ! goc_gal_pid "$n" >/dev/null; then
      goc_gal_fail_log "$n" "Galera node $n (mariadbd on 127.0.0.1:$(goc_gal_port "$n")) exited while starting"
    fi
    sleep 0.5
  done
  goc_gal_fail_log "$n" "Galera node $n (127.0.0.1:$(goc_gal_port "$n")) is not Synced after ${GOC_GALERA_WAIT}s (state: ${state:-no answer})"
}

goc_gal_stop_node() { # goc_gal_stop_node N: SIGTERM (a clean shutdown), then wait for it
  local n=$1 pid i
  pid=$(goc_gal_pid "$n") || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < GOC_GALERA_WAIT * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
}

goc_gal_stop() { goc_gal_stop_node 3; goc_gal_stop_node 2; goc_gal_stop_node 1; }

goc_gal_create() {
  local n
  say "creating a 3-node Galera cluster in $GOC_GALERA_DIR (ports $(goc_gal_port 1)-$(goc_gal_port 3))"
  goc_gal_stop
  # A node of ours that lost its pid file would still hold the ports.
  for n in 1 2 3; do
    if "$GAL_CLIENT" --connect-timeout=2 -h 127.0.0.1 -P "$(goc_gal_port "$n")" -u root -e 'SELECT 1' >/dev/null 2>&1 \
      || (echo >"/dev/tcp/127.0.0.1/$(goc_gal_port "$n")") 2>/dev/null; then
      fail "port $(goc_gal_port "$n") of Galera node $n is taken by a process this script did not start" \
        "stop it, or choose other ports with GOC_GALERA_PORT (e.g. GOC_GALERA_PORT=14306)"
    fi
  done
  rm -rf "$GOC_GALERA_DIR"
  mkdir -p "$GOC_GALERA_DIR"
  chmod 755 "$GOC_GALERA_DIR"
  for n in 1 2 3; do goc_gal_init_node "$n"; done
  goc_gal_start_node 1 --wsrep-new-cluster
  goc_gal_wait_synced 1
  # One joiner at a time: each takes a full state transfer (rsync) from a donor.
  for n in 2 3; do
    goc_gal_start_node "$n"
    goc_gal_wait_synced "$n"
  done
}

# goc_galera: makes sure the cluster runs and has database `test`; exports GOC_GALERA_URLS.
goc_galera() {
  local n version
  goc_gal_packages
  GAL_USER=$(goc_gal_user)
  if goc_gal_healthy 2>/dev/null; then
    GOC_GALERA_SUMMARY="reused the running cluster"
  else
    goc_gal_create
    goc_gal_healthy || fail "the Galera cluster in $GOC_GALERA_DIR did not form: node states:" \
      "$(for n in 1 2 3; do echo "node $n: $(goc_gal_var "$n" wsrep_local_state_comment), cluster size $(goc_gal_var "$n" wsrep_cluster_size)"; done)"
    GOC_GALERA_SUMMARY="started"
  fi
  goc_gal_sql 1 "CREATE DATABASE IF NOT EXISTS test" || fail "could not create database test on Galera node 1"
  version=$(goc_gal_sql 1 "SELECT VERSION()")
  GOC_GALERA_URLS=""
  for n in 1 2 3; do
    GOC_GALERA_URLS="$GOC_GALERA_URLS${GOC_GALERA_URLS:+,}mysql://root@127.0.0.1:$(goc_gal_port "$n")/test"
  done
  export GOC_GALERA_URLS GOC_GALERA_DIR GOC_GALERA_PORT
  GOC_GALERA_SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/galera.sh"
  export GOC_GALERA_SCRIPT
  GOC_GALERA_SUMMARY="galera $GOC_GALERA_URLS (3 nodes, MariaDB ${version%%-*}, $GOC_GALERA_SUMMARY)"
}

# start-node N: how the node came back, for tests/galera.rs to check. A joiner that has
# not reached Synced in time (seen once in CI: a joiner left the group during its state
# transfer and stayed "Initialized") is stopped and started again, up to 3 times; the
# output says so and keeps the failed attempt's log.
goc_gal_restart_node() {
  local n=$1 log lines attempt how out pid failed=""
  GAL_USER=$(goc_gal_user)
  GAL_CLIENT=$(command -v mariadb || command -v mysql)
  log=$(goc_gal_log "$n")
  for attempt in 1 2 3; do
    lines=$(wc -l <"$log" 2>/dev/null || echo 0)
    goc_gal_start_node "$n"
    if out=$(GOC_GALERA_WAIT=$((GOC_GALERA_WAIT / 2)) goc_gal_wait_synced "$n" 2>&1); then
      if tail -n +"$((lines + 1))" "$log" | grep -q "IST received"; then
        how="by IST"
      elif tail -n +"$((lines + 1))" "$log" | grep -qi "SST .*complete\|State transfer .* complete"; then
        how="by SST"
      else
        how="(no state transfer needed)"
      fi
      if [ "$attempt" = 1 ]; then
        echo "node $n rejoined $how"
      else
        echo "node $n rejoined $how at attempt $attempt; earlier attempts:$failed"
      fi
      return 0
    fi
    failed="$failed
$out"
    goc_gal_stop_node "$n"
  done
  fail "Galera node $n did not rejoin in 3 attempts:" "$failed"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    "")
      goc_galera
      say "Galera cluster ready: $GOC_GALERA_SUMMARY"
      note "GOC_GALERA_URLS=$GOC_GALERA_URLS"
      ;;
    stop-node) goc_gal_stop_node "${2:?node number 1-3}" ;;
    start-node) goc_gal_restart_node "${2:?node number 1-3}" ;;
    stop)
      goc_gal_stop
      echo "Galera cluster in $GOC_GALERA_DIR stopped"
      ;;
    *) fail "unknown command: $1" "usage: scripts/galera.sh [stop-node N | start-node N | stop]" ;;
  esac
fi
