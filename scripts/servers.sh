#!/usr/bin/env bash
# The PostgreSQL and MariaDB servers the tests run against.
#
# By default: throwaway servers of the test run's own. A new PostgreSQL and a new MariaDB
# server, each in a temporary data directory, on free ports of 127.0.0.1, with a user of
# their own (`goc`, a random password) and a database `test`. They are stopped and their
# directories removed when the run ends, whether it passes, fails or is interrupted
# (goc_servers_stop, which scripts/test.sh calls on exit). A failed run keeps the servers'
# logs in target/test-servers/. Nothing here reads or changes a server it did not start.
#
# Or servers of your choosing: with GOC_PG_URL / GOC_MYSQL_URL set, that server is used as
# it is. It must answer, accept the URL's login and have the URL's database; otherwise the
# run stops and says what is missing. (Two runs against one such server use different
# database and schema names: GOC_RUN_ID below.)
#
# Packages: the client libraries the crate links (libpq-dev, libmariadb-dev(-compat)),
# pkg-config, and the server binaries (postgresql, mariadb-server) when a throwaway server
# needs them. As root, missing ones are installed with apt (--no-install-recommends); a
# system service that a package starts is left as the package set it up. Otherwise the run
# stops with the command to run. Nothing else needs root: as another user, the servers run
# as that user.
#
#   . scripts/servers.sh && goc_servers    what scripts/test.sh does; exports the URLs
#   scripts/servers.sh COMMAND [ARG...]    runs COMMAND with the servers up and the URLs
#                                          exported, then stops them, e.g.
#   scripts/servers.sh cargo test -p diesel-get-or-create-tests --features postgres --test postgres
#   scripts/servers.sh                     starts them and waits (Ctrl-C stops them)
#
# GOC_SERVER_WAIT (default 60) is how many seconds a starting server may take.
set -euo pipefail

say() { printf '\n== %s\n' "$*"; }
# fail MESSAGE [LINE...]: the message, then each further line indented under it.
fail() {
  printf 'error: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '       %s\n' "$line" >&2; done
  exit 1
}
note() { printf '   %s\n' "$*"; }

GOC_SERVER_WAIT="${GOC_SERVER_WAIT:-60}"
GOC_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GOC_SERVERS_SUMMARY=""
# Where the throwaway servers live (set by goc_servers_dir).
GOC_SERVERS_DIR="${GOC_SERVERS_DIR:-}"

goc_is_root() { [ "$(id -u)" = 0 ]; }
# The URL with its password, if any, replaced by ***.
goc_redact() { printf '%s' "$1" | sed -E 's#^([a-z]+://[^:/@]*):[^@/]*@#\1:***@#'; }

# --- packages ---------------------------------------------------------------------------

GOC_APT_UPDATED=0
# goc_apt_install WHY PACKAGE...: installs Debian packages as root, without recommended
# packages; otherwise fails with the command to run.
goc_apt_install() {
  local why=$1
  shift
  if ! command -v apt-get >/dev/null; then
    fail "missing: $* ($why), and apt-get is not available" \
      "install the equivalent of these Debian packages with your package manager, then rerun"
  fi
  if ! goc_is_root; then
    fail "missing: $* ($why); installing needs root. Run:" \
      "sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $*"
  fi
  say "installing $* ($why)"
  if [ "$GOC_APT_UPDATED" = 0 ]; then
    apt-get update -q || fail "apt-get update -q failed (see above)"
    GOC_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
    || fail "apt-get install $* failed (see above)"
}

# goc_have_deb PACKAGE: is the Debian package installed? Without dpkg, asks pkg-config
# (or PATH) for what the package provides.
goc_have_deb() {
  if command -v dpkg-query >/dev/null; then
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
    return
  fi
  case $1 in
    pkg-config) command -v pkg-config >/dev/null ;;
    libpq-dev) pkg-config --exists libpq 2>/dev/null ;;
    libmariadb-dev) pkg-config --exists libmariadb 2>/dev/null ;;
    libmariadb-dev-compat) pkg-config --exists mysqlclient 2>/dev/null ;;
    *) return 1 ;;
  esac
}

# The PostgreSQL server binaries (initdb, pg_ctl), newest version first.
goc_pg_bindir() {
  local dir
  dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && echo "$dir"
}
goc_my_server() { command -v mariadbd || { [ -x /usr/sbin/mariadbd ] && echo /usr/sbin/mariadbd; }; }
goc_my_install_db() { command -v mariadb-install-db || command -v mysql_install_db; }

# goc_missing_packages: prints the missing ones of the C libraries pq-sys and
# mysqlclient-sys link to, of the client tools used below, and (for throwaway servers)
# of the server binaries.
goc_missing_packages() {
  local p
  for p in pkg-config libpq-dev libmariadb-dev libmariadb-dev-compat; do
    goc_have_deb "$p" || echo "$p"
  done
  { command -v pg_isready && command -v psql; } >/dev/null || echo postgresql-client
  { command -v mariadb || command -v mysql; } >/dev/null || echo mariadb-client
  if [ -z "${GOC_PG_URL:-}" ] && [ -z "$(goc_pg_bindir)" ]; then echo postgresql; fi
  if [ -z "${GOC_MYSQL_URL:-}" ] && { [ -z "$(goc_my_server)" ] || [ -z "$(goc_my_install_db)" ]; }; then
    echo mariadb-server
  fi
}

goc_packages() {
  local missing
  missing=$(goc_missing_packages | paste -sd ' ' -)
  [ -z "$missing" ] && return 0
  # shellcheck disable=SC2086 # one word per package
  goc_apt_install "client libraries and servers for the PostgreSQL and MariaDB tests" $missing
  missing=$(goc_missing_packages | paste -sd ' ' -)
  [ -z "$missing" ] || fail "still missing after apt-get install: $missing"
}

# --- throwaway servers ------------------------------------------------------------------

# goc_servers_dir: makes GOC_SERVERS_DIR, the run's own directory for its servers.
goc_servers_dir() {
  [ -n "$GOC_SERVERS_DIR" ] && [ -d "$GOC_SERVERS_DIR" ] && return 0
  GOC_SERVERS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/goc-servers.XXXXXX")
  # The servers run as other users when the run is root's: they must reach their folders.
  chmod 755 "$GOC_SERVERS_DIR"
  export GOC_SERVERS_DIR
}

# goc_port_free PORT: nothing listens on 127.0.0.1:PORT.
goc_port_free() { ! (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# goc_free_port [SPAN...]: a port P, free on 127.0.0.1, with P + each SPAN free too.
goc_free_port() {
  local try port offset ok
  for ((try = 0; try < 200; try++)); do
    port=$((20000 + RANDOM % 30000))
    ok=1
    for offset in 0 "$@"; do
      goc_port_free $((port + offset)) || { ok=0; break; }
    done
    [ "$ok" = 1 ] && { echo "$port"; return 0; }
  done
  fail "found no free port on 127.0.0.1 in 200 tries"
}

# goc_server_user SERVICE_USER: the OS user a throwaway server runs as. Servers refuse to
# run as root: as root, the packages' own service user; otherwise the caller.
goc_server_user() {
  if goc_is_root; then
    if getent passwd "$1" >/dev/null; then echo "$1"; else echo nobody; fi
  else
    id -un
  fi
}

# goc_as USER COMMAND...: COMMAND as USER (the caller itself when it is USER).
goc_as() {
  local user=$1
  shift
  if [ "$user" = "$(id -un)" ]; then "$@"; else runuser -u "$user" -- "$@"; fi
}

goc_password() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }

# PostgreSQL: initdb, then pg_ctl start. Logs what helps a failing test (start, stop,
# fatal errors, crashes) and not every expected error (serialization failures, unique
# violations), which the tests see anyway.
goc_pg_own() {
  local bin dir user port pass out
  bin=$(goc_pg_bindir) || fail "no PostgreSQL server binaries under /usr/lib/postgresql"
  dir="$GOC_SERVERS_DIR/postgres"
  user=$(goc_server_user postgres)
  port=$(goc_free_port)
  pass=$(goc_password)
  mkdir -p "$dir"
  printf '%s\n' "$pass" >"$dir/pwfile"
  chmod 600 "$dir/pwfile"
  goc_is_root && chown -R "$user" "$dir"
  out=$(cd / && goc_as "$user" "$bin/initdb" -D "$dir/data" -U goc --pwfile="$dir/pwfile" \
    --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 2>&1) \
    || fail "initdb failed (PostgreSQL in $dir/data):" "$out"
  rm -f "$dir/pwfile"
  cat >>"$dir/data/postgresql.conf" <<EOF

# A throwaway server of diesel-get-or-create's test run (scripts/servers.sh).
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
log_min_messages = log
log_min_error_statement = panic
EOF
  out=$(cd / && goc_as "$user" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -t "$GOC_SERVER_WAIT" start 2>&1) \
    || fail "PostgreSQL did not start (pg_ctl in $dir):" "$out" \
      "its log ends with:" "$(tail -n 15 "$dir/server.log" 2>/dev/null)"
  GOC_PG_OWN="$bin|$user|$dir"
  export GOC_PG_URL="postgres://goc:$pass@127.0.0.1:$port/test"
  PGPASSWORD=$pass psql -X -w -q -h 127.0.0.1 -p "$port" -U goc -d postgres \
    -c "CREATE DATABASE test" >/dev/null || fail "could not create database test on the new PostgreSQL server"
}

# goc_my_cnf DIR USER PORT: the [mariadbd] section every throwaway MariaDB server starts
# with (this file's and the Galera nodes of scripts/galera.sh): its files under DIR, run as
# USER, on 127.0.0.1:PORT only.
goc_my_cnf() {
  cat <<EOF
[mariadbd]
user = $2
datadir = $1/data
socket = $1/mariadbd.sock
pid-file = $1/mariadbd.pid
log-error = $1/error.log
port = $3
bind-address = 127.0.0.1
skip-name-resolve
EOF
}

# MariaDB: mariadb-install-db, then mariadbd with the settings of Debian's packaged server
# (utf8mb4, skip-name-resolve). Its error log keeps what it always keeps (start, stop,
# crashes); statement errors are not logged.
goc_my_own() {
  local server install dir user port pass out i
  server=$(goc_my_server) || fail "no MariaDB server binary (mariadbd)"
  install=$(goc_my_install_db) || fail "no mariadb-install-db"
  dir="$GOC_SERVERS_DIR/mariadb"
  user=$(goc_server_user mysql)
  port=$(goc_free_port)
  pass=$(goc_password)
  mkdir -p "$dir/data"
  goc_is_root && chown -R "$user" "$dir"
  {
    echo "# A throwaway server of diesel-get-or-create's test run (scripts/servers.sh)."
    goc_my_cnf "$dir" "$user" "$port"
    cat <<EOF
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
# Not every connection a test drops without closing it.
log_warnings = 1
EOF
  } >"$dir/my.cnf"
  out=$(cd / && "$install" --defaults-file="$dir/my.cnf" --auth-root-authentication-method=normal \
    --skip-test-db 2>&1) || fail "mariadb-install-db failed (MariaDB in $dir):" "$out"
  # setsid: a Ctrl-C in the terminal reaches the tests, not the server; the cleanup stops it.
  setsid "$server" --defaults-file="$dir/my.cnf" </dev/null >>"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/launch.pid"
  GOC_MY_OWN="$dir"
  # root has an empty password but logs in only over the socket in $dir (root@localhost).
  # The tests log in as goc over TCP, and over that socket too: diesel-async's MySQL client
  # (mysql_async, prefer_socket) moves a connection to 127.0.0.1 onto the server's socket.
  for ((i = 0; i < GOC_SERVER_WAIT * 2; i++)); do
    mariadb --no-defaults -S "$dir/mariadbd.sock" -u root -e 'SELECT 1' >/dev/null 2>&1 && break
    kill -0 "$(cat "$dir/launch.pid")" 2>/dev/null \
      || fail "MariaDB exited while starting; its log ends with:" "$(tail -n 15 "$dir/error.log" 2>/dev/null)"
    sleep 0.5
  done
  out=$(mariadb --no-defaults -S "$dir/mariadbd.sock" -u root -e "
    CREATE USER goc@'127.0.0.1' IDENTIFIED BY '$pass';
    GRANT ALL PRIVILEGES ON *.* TO goc@'127.0.0.1' WITH GRANT OPTION;
    CREATE USER goc@localhost IDENTIFIED BY '$pass';
    GRANT ALL PRIVILEGES ON *.* TO goc@localhost WITH GRANT OPTION;
    CREATE DATABASE test" 2>&1) \
    || fail "MariaDB did not start in ${GOC_SERVER_WAIT}s, or refused the set-up:" "$out" \
      "its log ends with:" "$(tail -n 15 "$dir/error.log" 2>/dev/null)"
  export GOC_MYSQL_URL="mysql://goc:$pass@127.0.0.1:$port/test"
}

# goc_servers_stop: stops the throwaway servers this shell started (PostgreSQL, MariaDB,
# and the Galera nodes of scripts/galera.sh) and removes their directory. A failed run
# (EXIT status not 0) keeps their logs in target/test-servers/. Safe to call twice.
goc_servers_stop() {
  local status=${1:-0} bin user dir pid i logs
  [ -n "$GOC_SERVERS_DIR" ] && [ -d "$GOC_SERVERS_DIR" ] || return 0
  if [ "$status" != 0 ]; then
    logs="${GOC_SERVERS_LOGS:-$GOC_REPO/target/test-servers}"
    mkdir -p "$logs" 2>/dev/null && {
      find "$GOC_SERVERS_DIR" \( -name '*.log' -o -name 'error.log' \) -type f -print0 2>/dev/null |
        while IFS= read -r -d '' f; do
          cp "$f" "$logs/$(echo "${f#"$GOC_SERVERS_DIR"/}" | tr / -)" 2>/dev/null || true
        done
      echo "   the servers' logs are kept in $logs/" >&2
    }
  fi
  if declare -F goc_gal_stop >/dev/null && [ -d "$GOC_SERVERS_DIR/galera" ]; then
    goc_gal_stop 2>/dev/null || true
  fi
  if [ -n "${GOC_PG_OWN:-}" ]; then
    IFS='|' read -r bin user dir <<<"$GOC_PG_OWN"
    (cd / && goc_as "$user" "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1) \
      || (cd / && goc_as "$user" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1) || true
    GOC_PG_OWN=""
  fi
  if [ -n "${GOC_MY_OWN:-}" ] && pid=$(cat "$GOC_MY_OWN/launch.pid" 2>/dev/null); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    GOC_MY_OWN=""
  fi
  rm -rf "$GOC_SERVERS_DIR"
  GOC_SERVERS_DIR=""
}

# --- servers of your choosing -----------------------------------------------------------

# goc_pg_given: the server at GOC_PG_URL answers, logs the URL's user in and has its
# database. Nothing is changed on it.
goc_pg_given() {
  local url out
  url=$(goc_redact "$GOC_PG_URL")
  out=$(PGCONNECT_TIMEOUT=5 psql -X -w -q "$GOC_PG_URL" -tAc "SHOW server_version" 2>&1) \
    || fail "PostgreSQL at GOC_PG_URL=$url does not answer, refuses the login, or has no such database:" \
      "$out" "start it, create the database, or unset GOC_PG_URL to test on a throwaway server"
  GOC_PG_SUMMARY="postgres $url (given, PostgreSQL ${out%% *})"
}

goc_my_given() {
  local url out
  url=$(goc_redact "$GOC_MYSQL_URL")
  # The URL's parts, for the client tool (mysql://user[:pass]@host[:port]/db).
  local rest auth hostport user pass host port db
  rest=${GOC_MYSQL_URL#mysql://}
  rest=${rest%%\?*}
  auth=${rest%%/*}
  db=${rest#*/}
  [ "$db" != "$rest" ] || fail "GOC_MYSQL_URL=$url names no database" "e.g. mysql://user@127.0.0.1:3306/test"
  user=root pass=""
  hostport=$auth
  if [ "${auth%@*}" != "$auth" ]; then
    hostport=${auth##*@}
    user=${auth%@*}
    if [ "${user#*:}" != "$user" ]; then pass=${user#*:}; fi
    user=${user%%:*}
    user=$(printf '%b' "${user//%/\\x}")
    pass=$(printf '%b' "${pass//%/\\x}")
  fi
  host=${hostport%%:*}
  port=3306
  [ "$hostport" != "$host" ] && port=${hostport#*:}
  out=$(MYSQL_PWD=$pass mariadb --no-defaults --connect-timeout=5 -h "$host" -P "$port" -u "$user" \
    -N -B -e "SELECT VERSION()" "$db" 2>&1) \
    || fail "MySQL/MariaDB at GOC_MYSQL_URL=$url does not answer, refuses the login, or has no such database:" \
      "$out" "start it, create the database, or unset GOC_MYSQL_URL to test on a throwaway server"
  GOC_MY_SUMMARY="mysql $url (given, ${out%%-*})"
}

# --- all --------------------------------------------------------------------------------

# goc_servers: the servers the tests use, exported as GOC_PG_URL and GOC_MYSQL_URL; with
# servers of your choosing, a GOC_RUN_ID that keeps this run's databases apart from
# another run's on the same server.
goc_servers() {
  local started=""
  goc_packages
  if [ -n "${GOC_PG_URL:-}" ]; then
    goc_pg_given
    export GOC_RUN_ID="${GOC_RUN_ID:-r$$}"
  else
    goc_servers_dir
    goc_pg_own
    started="PostgreSQL"
    GOC_PG_SUMMARY="postgres $(goc_redact "$GOC_PG_URL") (throwaway)"
  fi
  if [ -n "${GOC_MYSQL_URL:-}" ]; then
    goc_my_given
    export GOC_RUN_ID="${GOC_RUN_ID:-r$$}"
  else
    goc_servers_dir
    goc_my_own
    started="${started:+$started and }MariaDB"
    GOC_MY_SUMMARY="mysql $(goc_redact "$GOC_MYSQL_URL") (throwaway)"
  fi
  [ -n "$started" ] && note "started $started in $GOC_SERVERS_DIR; stopped and removed when the run ends"
  GOC_SERVERS_SUMMARY="$GOC_PG_SUMMARY; $GOC_MY_SUMMARY"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  trap 'status=$?; set +e; trap "" HUP INT PIPE TERM; goc_servers_stop $status' EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 141' PIPE
  trap 'exit 143' TERM
  say "database servers"
  goc_servers
  say "servers ready: $GOC_SERVERS_SUMMARY"
  if [ "$#" -gt 0 ]; then
    "$@"
  else
    note "GOC_PG_URL=$GOC_PG_URL"
    note "GOC_MYSQL_URL=$GOC_MYSQL_URL"
    note "waiting; Ctrl-C stops and removes them"
    while :; do sleep 3600; done
  fi
fi
