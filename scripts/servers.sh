#!/usr/bin/env bash
# Provides what the PostgreSQL and MySQL/MariaDB tests need, on a fresh Debian machine:
#
#   - the client libraries to build against (libpq-dev, libmariadb-dev(-compat), pkg-config)
#     and the client tools this script uses (postgresql-client, mariadb-client);
#   - a PostgreSQL server at $GOC_PG_URL  (default postgres://postgres@127.0.0.1:5432/test);
#   - a MariaDB server at $GOC_MYSQL_URL  (default mysql://root@127.0.0.1:3306/test).
#
# A server on 127.0.0.1 or localhost is installed (apt, as root), started, opened to the
# URL's user over local TCP without a password, and given the URL's database, as needed.
# A server elsewhere is only checked to answer. Nothing is ever skipped: whatever cannot be
# provided (not root, no apt-get, server down) stops the run with what is missing and the
# command that fixes it, locally and in CI alike. When all is in place this takes well
# under a second and changes nothing.
#
#   scripts/servers.sh                      provision, then print the URLs
#   . scripts/servers.sh && goc_servers     what scripts/test.sh does; exports the URLs
#
# GOC_SERVER_WAIT (default 30) is how many seconds to wait for a started server.
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

export GOC_PG_URL="${GOC_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
export GOC_MYSQL_URL="${GOC_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"
GOC_SERVER_WAIT="${GOC_SERVER_WAIT:-30}"
GOC_SERVERS_SUMMARY=""

goc_is_root() { [ "$(id -u)" = 0 ]; }
goc_is_local() { [ "$1" = 127.0.0.1 ] || [ "$1" = localhost ]; }
# The URL with its password, if any, replaced by ***.
goc_redact() { printf '%s' "$1" | sed -E 's#^([a-z]+://[^:/@]*):[^@/]*@#\1:***@#'; }

# --- packages ---------------------------------------------------------------------------

GOC_APT_UPDATED=0
# goc_apt_install WHY PACKAGE...: installs Debian packages as root; otherwise fails with the
# command to run.
goc_apt_install() {
  local why=$1
  shift
  if ! command -v apt-get >/dev/null; then
    fail "missing: $* ($why), and apt-get is not available" \
      "install the equivalent of these Debian packages with your package manager, then rerun"
  fi
  if ! goc_is_root; then
    fail "missing: $* ($why); installing needs root. Run:" \
      "sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q $*"
  fi
  say "installing $* ($why)"
  if [ "$GOC_APT_UPDATED" = 0 ]; then
    apt-get update -q || fail "apt-get update -q failed (see above)"
    GOC_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" \
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

# goc_missing_packages: prints the missing ones of the C libraries pq-sys and
# mysqlclient-sys link to, and of the client tools used below.
goc_missing_packages() {
  local p
  for p in pkg-config libpq-dev libmariadb-dev libmariadb-dev-compat; do
    goc_have_deb "$p" || echo "$p"
  done
  { command -v pg_isready && command -v psql && command -v createdb; } >/dev/null \
    || echo postgresql-client
  { command -v mariadb-admin || command -v mysqladmin; } >/dev/null \
    && { command -v mariadb || command -v mysql; } >/dev/null \
    || echo mariadb-client
}

goc_packages() {
  local missing
  missing=$(goc_missing_packages | paste -sd ' ' -)
  [ -z "$missing" ] && return 0
  # shellcheck disable=SC2086 # one word per package
  goc_apt_install "client libraries and tools for the PostgreSQL and MySQL tests" $missing
  missing=$(goc_missing_packages | paste -sd ' ' -)
  [ -z "$missing" ] || fail "still missing after apt-get install: $missing"
}

# --- URLs -------------------------------------------------------------------------------

# goc_parse_url NAME URL SCHEME...: splits URL (from variable NAME) into GOC_U_USER,
# GOC_U_PASS, GOC_U_HOST, GOC_U_PORT, GOC_U_DB; the scheme must be one of SCHEME...
goc_parse_url() {
  local name=$1 url=$2
  shift 2
  local scheme=${url%%://*} ok=0 s rest auth userinfo hostport
  for s in "$@"; do [ "$scheme" = "$s" ] && ok=1; done
  if [ "$url" = "$scheme" ] || [ "$ok" = 0 ]; then
    fail "$name=$(goc_redact "$url") is not a $1:// URL" "expected e.g. $1://user@127.0.0.1/test"
  fi
  rest=${url#*://}
  rest=${rest%%\?*}
  auth=${rest%%/*}
  GOC_U_DB=""
  [ "$rest" != "$auth" ] && GOC_U_DB=${rest#*/}
  GOC_U_USER="" GOC_U_PASS=""
  hostport=$auth
  if [ "${auth%@*}" != "$auth" ]; then
    userinfo=${auth%@*}
    hostport=${auth##*@}
    GOC_U_USER=${userinfo%%:*}
    [ "$userinfo" != "$GOC_U_USER" ] && GOC_U_PASS=${userinfo#*:}
    # Percent-decoding, e.g. p%40ss -> p@ss.
    GOC_U_USER=$(printf '%b' "${GOC_U_USER//%/\\x}")
    GOC_U_PASS=$(printf '%b' "${GOC_U_PASS//%/\\x}")
  fi
  if [ "${hostport#\[}" != "$hostport" ]; then # [ipv6]:port
    GOC_U_HOST=${hostport#\[}
    GOC_U_HOST=${GOC_U_HOST%%]*}
    GOC_U_PORT=${hostport##*]}
    GOC_U_PORT=${GOC_U_PORT#:}
  else
    GOC_U_HOST=${hostport%%:*}
    GOC_U_PORT=""
    [ "$hostport" != "$GOC_U_HOST" ] && GOC_U_PORT=${hostport#*:}
  fi
  [ -n "$GOC_U_HOST" ] || fail "$name=$(goc_redact "$url") names no host" \
    "the tests connect over TCP: use e.g. $1://user@127.0.0.1/test"
  [[ -z "$GOC_U_PORT" || "$GOC_U_PORT" =~ ^[0-9]+$ ]] \
    || fail "$name=$(goc_redact "$url") has a bad port: '$GOC_U_PORT'"
  [[ "$GOC_U_DB" =~ ^[A-Za-z0-9_-]+$ ]] \
    || fail "$name=$(goc_redact "$url") must end in a database name of letters, digits, _ or -" \
      "e.g. $1://user@127.0.0.1/test"
}

goc_wait_for() { # goc_wait_for COMMAND...: retries COMMAND once a second, GOC_SERVER_WAIT times
  local i
  for ((i = 0; i < GOC_SERVER_WAIT; i++)); do
    "$@" && return 0
    sleep 1
  done
  "$@"
}

# --- PostgreSQL -------------------------------------------------------------------------

goc_pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 3 >/dev/null 2>&1; }

# goc_pg_sql DATABASE SQL: runs SQL as the URL's user over TCP; prints the rows, unaligned.
goc_pg_sql() {
  if [ -n "$PG_PASS" ]; then
    PGPASSWORD=$PG_PASS PGCONNECT_TIMEOUT=5 psql -X -w -q -h "$PG_HOST" -p "$PG_PORT" \
      -U "$PG_USER" -d "$1" -tAc "$2"
  else
    PGCONNECT_TIMEOUT=5 psql -X -w -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$1" -tAc "$2"
  fi
}

# goc_pg_admin SQL: runs SQL as the OS user postgres over the local socket (peer auth).
goc_pg_admin() {
  (cd / && env -u PGHOST -u PGPASSWORD runuser -u postgres -- \
    psql -X -w -q -p "$PG_PORT" -U postgres -d postgres -tAc "$1")
}

# Installs PostgreSQL, creates a cluster on the URL's port or starts the existing one.
goc_pg_start() {
  local ver cluster status logfile line
  if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
    goc_apt_install "PostgreSQL server for GOC_PG_URL" postgresql postgresql-client
    PG_INSTALLED=1
  fi
  command -v pg_lsclusters >/dev/null \
    || goc_apt_install "pg_lsclusters and pg_ctlcluster, to manage the PostgreSQL server" postgresql-common
  line=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print; exit }')
  if [ -z "$line" ]; then
    if [ -n "$(pg_lsclusters -h 2>/dev/null)" ]; then
      fail "PostgreSQL is installed, but none of its clusters uses port $PG_PORT of GOC_PG_URL" \
        "clusters (version name port status):" \
        "$(pg_lsclusters -h | awk '{ print "  " $1, $2, $3, $4 }')" \
        "fix: point GOC_PG_URL at one of these ports, or create a cluster on $PG_PORT:" \
        "sudo pg_createcluster <version> main --port $PG_PORT --start"
    fi
    # Installed without a cluster (e.g. create_main_cluster = false): make `main`.
    ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -n 1)
    goc_is_root || fail "PostgreSQL $ver is installed but has no cluster; creating one needs root:" \
      "sudo pg_createcluster $ver main --port $PG_PORT --start"
    say "creating PostgreSQL cluster $ver/main on port $PG_PORT"
    pg_createcluster "$ver" main --port "$PG_PORT" || fail "pg_createcluster $ver main failed (see above)"
    PG_INSTALLED=1
    line=$(pg_lsclusters -h | awk -v p="$PG_PORT" '$3 == p { print; exit }')
  fi
  read -r ver cluster _ status _ _ logfile <<<"$line"
  PG_LOG=$logfile
  case $status in
    online*) return 0 ;; # running, maybe still starting up: the caller waits
  esac
  goc_is_root || fail "PostgreSQL cluster $ver/$cluster (port $PG_PORT) is not running; starting it needs root:" \
    "sudo pg_ctlcluster --skip-systemctl-redirect $ver $cluster start"
  say "starting PostgreSQL cluster $ver/$cluster (port $PG_PORT)"
  pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start \
    || fail "could not start PostgreSQL cluster $ver/$cluster; its log: $logfile"
}

# Lets the URL's user connect over local TCP without a password: adds `trust` lines for
# exactly that user from 127.0.0.1/32 and ::1/128 at the top of pg_hba.conf, and reloads.
goc_pg_trust() {
  local why=$1 hba marker="# added by diesel-get-or-create scripts/servers.sh"
  goc_is_root || fail "PostgreSQL at $(goc_redact "$GOC_PG_URL") refuses $PG_USER without a password ($why);" \
    "changing that needs root. Put these lines first in pg_hba.conf, then reload the server:" \
    "host all $PG_USER 127.0.0.1/32 trust" "host all $PG_USER ::1/128 trust" \
    "(e.g. sudo -u postgres psql -p $PG_PORT -c 'SHOW hba_file', edit it, then" \
    " sudo -u postgres psql -p $PG_PORT -c 'SELECT pg_reload_conf()')"
  hba=$(goc_pg_admin "SHOW hba_file") || hba=""
  [ -f "$hba" ] || fail "could not ask PostgreSQL on port $PG_PORT where pg_hba.conf is" \
    "(tried: runuser -u postgres -- psql -p $PG_PORT -c 'SHOW hba_file' over the local socket)"
  if grep -qxF "host all $PG_USER 127.0.0.1/32 trust" "$hba"; then
    fail "PostgreSQL still refuses $PG_USER over TCP, although $hba trusts it from 127.0.0.1:" \
      "$PG_LOGIN_ERROR"
  fi
  [ -e "$hba.goc-backup" ] || cp -p "$hba" "$hba.goc-backup"
  { printf '%s (%s)\nhost all %s 127.0.0.1/32 trust\nhost all %s ::1/128 trust\n\n' \
      "$marker" "$(date -u +%Y-%m-%dT%H:%MZ)" "$PG_USER" "$PG_USER"
    cat "$hba.goc-backup"; } >"$hba.goc-new"
  cat "$hba.goc-new" >"$hba" # keeps the file's owner and mode
  rm -f "$hba.goc-new"
  goc_pg_admin "SELECT pg_reload_conf()" >/dev/null || fail "could not reload PostgreSQL on port $PG_PORT"
  say "PostgreSQL: $PG_USER may now connect over local TCP without a password ($why)"
  note "added at the top of $hba:"
  note "  host all $PG_USER 127.0.0.1/32 trust"
  note "  host all $PG_USER ::1/128 trust"
  note "and reloaded the server; the previous file is $hba.goc-backup"
}

goc_postgres() {
  goc_parse_url GOC_PG_URL "$GOC_PG_URL" postgres postgresql
  PG_HOST=$GOC_U_HOST PG_PORT=${GOC_U_PORT:-5432} PG_USER=${GOC_U_USER:-postgres}
  PG_PASS=$GOC_U_PASS PG_DB=$GOC_U_DB PG_INSTALLED=0 PG_LOG="" PG_LOGIN_ERROR=""
  local url version exists
  url=$(goc_redact "$GOC_PG_URL")

  if ! goc_is_local "$PG_HOST"; then
    goc_pg_ready || fail "PostgreSQL at $url does not answer (pg_isready -h $PG_HOST -p $PG_PORT)" \
      "this script starts servers only on 127.0.0.1 or localhost; start that server," \
      "or unset GOC_PG_URL to use a local one (postgres://postgres@127.0.0.1:5432/test)"
    GOC_PG_SUMMARY="postgres $url (remote, answers)"
    return 0
  fi

  if ! goc_pg_ready; then
    goc_pg_start
    goc_wait_for goc_pg_ready || fail "PostgreSQL at $url is not ready after ${GOC_SERVER_WAIT}s" \
      "check: pg_lsclusters; the server log${PG_LOG:+: $PG_LOG}" \
      "(its listen_addresses and port must cover $PG_HOST:$PG_PORT)"
  fi

  if ! version=$(goc_pg_sql postgres "SHOW server_version" 2>&1); then
    PG_LOGIN_ERROR=$version
    if [ -z "$PG_PASS" ] && [[ "$version" =~ no\ password\ supplied|authentication\ failed|no\ pg_hba.conf\ entry ]]; then
      # Fresh Debian servers want a password over TCP (scram-sha-256).
      if [ "$PG_INSTALLED" = 1 ]; then
        goc_pg_trust "a server this script set up; the login failed: ${version##*: }"
      else
        goc_pg_trust "the login failed: ${version##*: }"
      fi
      version=$(goc_pg_sql postgres "SHOW server_version" 2>&1) \
        || fail "PostgreSQL at $url still refuses the login:" "$version"
    elif [[ "$version" =~ role\ .*does\ not\ exist ]]; then
      fail "PostgreSQL at $url has no role $PG_USER. Create it:" \
        "sudo -u postgres createuser -p $PG_PORT --superuser $PG_USER"
    else
      fail "cannot log in to PostgreSQL at $url:" "$version"
    fi
  fi

  exists=$(goc_pg_sql postgres "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") \
    || fail "could not list the databases of PostgreSQL at $url"
  if [ "$exists" != 1 ]; then
    say "creating PostgreSQL database $PG_DB"
    if [ -n "$PG_PASS" ]; then
      PGPASSWORD=$PG_PASS createdb -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$PG_DB"
    else
      createdb -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$PG_DB"
    fi || fail "could not create database $PG_DB at $url (user $PG_USER needs CREATEDB)"
  fi
  GOC_PG_SUMMARY="postgres $url (local, PostgreSQL ${version%% *})"
}

# --- MariaDB / MySQL --------------------------------------------------------------------

# goc_my TOOL ARG...: runs a MariaDB client tool as the URL's user, over TCP unless the host
# is localhost (which, as in the tests' libmysqlclient, means the local socket).
goc_my() {
  local tool=$1
  shift
  if [ -n "$MY_PASS" ]; then
    MYSQL_PWD=$MY_PASS "$tool" --connect-timeout=5 -h "$MY_HOST" -P "$MY_PORT" -u "$MY_USER" "$@"
  else
    "$tool" --connect-timeout=5 -h "$MY_HOST" -P "$MY_PORT" -u "$MY_USER" "$@"
  fi
}
# Is the server up? mariadb-admin ping exits 0 even when the login is refused, but not when
# no account matches the client's host at all (error 1130, e.g. under skip-name-resolve).
goc_my_ready() {
  local out
  out=$(goc_my "$MY_ADMIN" ping 2>&1) && return 0
  [[ "$out" =~ is\ not\ allowed\ to\ connect ]]
}
goc_my_sql() { goc_my "$MY_CLIENT" -N -B -e "$1"; }
# As the OS root over the server's socket (unix_socket auth), whatever the URL says.
goc_my_root_sql() { "$MY_CLIENT" --protocol=socket -u root -N -B -e "$1"; }

# Installs MariaDB or starts the installed server.
goc_my_start() {
  if [ ! -x /usr/sbin/mariadbd ]; then
    goc_apt_install "MariaDB server for GOC_MYSQL_URL" mariadb-server mariadb-client
  fi
  local start=(start-stop-daemon --start --oknodo --background --output "$MY_LOG"
    --exec /usr/sbin/mariadbd -- --user=mysql)
  goc_is_root || fail "MariaDB (/usr/sbin/mariadbd) is not running at $MY_HOST:$MY_PORT; starting it needs root:" \
    "sudo sh -c 'mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld && ${start[*]}'" \
    "(or, under systemd: sudo systemctl start mariadb)"
  say "starting MariaDB (/usr/sbin/mariadbd)"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  "${start[@]}" || fail "could not start /usr/sbin/mariadbd (see above and $MY_LOG)"
}

# Lets root log in over TCP with an empty password. Debian's root@localhost authenticates
# only by unix_socket; allow an empty password too, keeping unix_socket. Under
# skip-name-resolve a TCP login from 127.0.0.1 does not match root@localhost at all: then
# also create root@127.0.0.1 and root@::1.
goc_my_root_tcp() {
  local why=$1 sql1 sql2
  sql1="ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket"
  sql2="CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION; CREATE USER IF NOT EXISTS root@'::1' IDENTIFIED BY ''; GRANT ALL PRIVILEGES ON *.* TO root@'::1' WITH GRANT OPTION"
  goc_is_root || fail "MariaDB at $(goc_redact "$GOC_MYSQL_URL") refuses root without a password ($why);" \
    "changing that needs root. Run:" "sudo mariadb -e \"$sql1\"" \
    "and, if the server runs with skip-name-resolve, also: sudo mariadb -e \"$sql2\""
  say "MariaDB: letting root log in over TCP with an empty password ($why)"
  goc_my_root_sql "$sql1" || fail "could not change root@localhost over the local socket:" "$sql1"
  note "ran: $sql1"
  goc_my_sql "SELECT 1" >/dev/null 2>&1 && return 0
  goc_my_root_sql "$sql2" || fail "could not create root@127.0.0.1 over the local socket:" "$sql2"
  note "ran: $sql2"
}

goc_mysql() {
  goc_parse_url GOC_MYSQL_URL "$GOC_MYSQL_URL" mysql
  MY_HOST=$GOC_U_HOST MY_PORT=${GOC_U_PORT:-3306} MY_USER=${GOC_U_USER:-root}
  MY_PASS=$GOC_U_PASS MY_DB=$GOC_U_DB MY_LOG="${TMPDIR:-/tmp}/goc-mariadbd.log"
  MY_ADMIN=$(command -v mariadb-admin || command -v mysqladmin)
  MY_CLIENT=$(command -v mariadb || command -v mysql)
  local url version
  url=$(goc_redact "$GOC_MYSQL_URL")

  if ! goc_is_local "$MY_HOST"; then
    goc_my_ready || fail "MySQL/MariaDB at $url does not answer ($(basename "$MY_ADMIN") -h $MY_HOST -P $MY_PORT ping)" \
      "this script starts servers only on 127.0.0.1 or localhost; start that server," \
      "or unset GOC_MYSQL_URL to use a local one (mysql://root@127.0.0.1:3306/test)"
    GOC_MY_SUMMARY="mysql $url (remote, answers)"
    return 0
  fi

  if ! goc_my_ready; then
    goc_my_start
    goc_wait_for goc_my_ready || fail "MariaDB at $url is not ready after ${GOC_SERVER_WAIT}s" \
      "its settings (/etc/mysql): $(my_print_defaults --mysqld 2>/dev/null \
        | grep -E '^--(port|bind-address|skip-networking|log-error|log_error)' | tr '\n' ' ')" \
      "it must listen on $MY_HOST port $MY_PORT; its log: log-error above, or $MY_LOG"
  fi

  if ! version=$(goc_my_sql "SELECT VERSION()" 2>&1); then
    if [ "$MY_USER" = root ] && [ -z "$MY_PASS" ] \
      && [[ "$version" =~ Access\ denied|is\ not\ allowed\ to\ connect ]]; then
      goc_my_root_tcp "the login failed: $version"
      version=$(goc_my_sql "SELECT VERSION()" 2>&1) \
        || fail "MariaDB at $url still refuses the login:" "$version"
    else
      fail "cannot log in to MySQL/MariaDB at $url:" "$version" \
        "the URL's user needs a login from $MY_HOST and rights to create database $MY_DB"
    fi
  fi

  if [ -z "$(goc_my_sql "SELECT 1 FROM information_schema.schemata WHERE schema_name = '$MY_DB'")" ]; then
    say "creating MariaDB database $MY_DB"
    goc_my_sql "CREATE DATABASE IF NOT EXISTS \`$MY_DB\`" \
      || fail "could not create database $MY_DB at $url"
  fi
  case $version in
    *MariaDB*) version="MariaDB ${version%%-*}" ;;
    *) version="MySQL ${version%%-*}" ;;
  esac
  GOC_MY_SUMMARY="mysql $url (local, $version)"
}

# --- all --------------------------------------------------------------------------------

goc_servers() {
  goc_packages
  goc_postgres
  goc_mysql
  GOC_SERVERS_SUMMARY="$GOC_PG_SUMMARY; $GOC_MY_SUMMARY"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  goc_servers
  say "servers ready: $GOC_SERVERS_SUMMARY"
  note "GOC_PG_URL=$(goc_redact "$GOC_PG_URL") GOC_MYSQL_URL=$(goc_redact "$GOC_MYSQL_URL")"
fi
