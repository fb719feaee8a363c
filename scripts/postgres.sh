#!/usr/bin/env bash
# Make sure a PostgreSQL answers for Tayori's tests and benchmarks, as
# scripts/redis.sh does for Redis.
#
#   scripts/postgres.sh run CMD [ARGS…]  find or start PostgreSQL, run CMD with
#                                        TAYORI_TEST_POSTGRES_URL set, then stop
#                                        whatever was started
#   scripts/postgres.sh start            find or start PostgreSQL; print its URL
#   scripts/postgres.sh stop             stop the cluster that `start` started
#
# It uses the server at TAYORI_TEST_POSTGRES_URL (default
# postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) when one
# answers there. Otherwise it starts a private cluster (initdb with trust
# auth on a spare loopback port, under .tayori-run/postgres, removed by
# `stop`), installing Debian's postgresql package first when the server
# binaries are absent and we are root. Otherwise it stops with a message
# naming what to install. Tests claim a database of their own in that
# server (internal/testutil.PostgresURL) and drop it when they end.
set -euo pipefail
cd "$(dirname "$0")/.."
rundir=$PWD/.tayori-run
clusterdir=$rundir/postgres
urlfile=$rundir/postgres.url

log() { echo "postgres.sh: $*" >&2; }

# answers URL: true if a PostgreSQL accepts a connection at URL.
answers() {
  if command -v psql >/dev/null; then
    PGCONNECT_TIMEOUT=3 psql "$1" -XAtqc 'select 1' >/dev/null 2>&1
    return
  fi
  # Without psql (a machine with no PostgreSQL client), a listening port
  # is the best we can tell; the tests' own connection says the rest.
  local hp=${1#*://}; hp=${hp#*@}; hp=${hp%%/*}; hp=${hp%%\?*}
  local host=${hp%:*} port=${hp##*:}
  [ "$host" = "$hp" ] && port=5432
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# bindir: the directory of initdb and pg_ctl, if the server is installed.
bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) /usr/local/pgsql/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then dirname "$(command -v initdb)"; return 0; fi
  return 1
}

install_postgres() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then return 1; fi
  log "the PostgreSQL server is not installed; installing it with apt-get (Debian package postgresql)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

# as_owner CMD…: run CMD as the cluster's owner. PostgreSQL refuses to run
# as root, so root runs it as the postgres system user the package made.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  local want=${TAYORI_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
  if answers "$want"; then echo "$want"; return 0; fi
  if [ -f "$urlfile" ] && answers "$(cat "$urlfile")"; then cat "$urlfile"; return 0; fi
  local bin
  if ! bin=$(bindir); then
    install_postgres || {
      log "no PostgreSQL answers at $want, and the PostgreSQL server is not installed."
      log "Install it (Debian/Ubuntu: sudo apt-get install postgresql; macOS: brew install postgresql)"
      log "or point TAYORI_TEST_POSTGRES_URL at a server where user postgres may create databases, then run make again."
      exit 1
    }
    bin=$(bindir) || { log "apt-get installed postgresql but initdb is not to be found"; exit 1; }
  fi
  mkdir -p "$rundir"
  rm -rf "$clusterdir"
  mkdir -p "$clusterdir"
  [ "$(id -u)" = 0 ] && chown postgres "$clusterdir"
  as_owner "$bin/initdb" -D "$clusterdir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$rundir/postgres-initdb.log" 2>&1 ||
    as_owner "$bin/initdb" -D "$clusterdir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$rundir/postgres-initdb.log" 2>&1 || {
      log "initdb failed; see $rundir/postgres-initdb.log"; exit 1
    }
  local p
  for p in $(seq 15432 15532); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      as_owner "$bin/pg_ctl" -D "$clusterdir/data" -l "$clusterdir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $p -c unix_socket_directories=$clusterdir -c fsync=off -c max_connections=200" start >&2 || {
          log "the private cluster did not start; see $clusterdir/server.log"; exit 1
        }
      echo "postgres://postgres@127.0.0.1:$p/postgres?sslmode=disable" >"$urlfile"
      echo "$bin" >"$clusterdir/bindir"
      log "started a private PostgreSQL cluster on 127.0.0.1:$p ($clusterdir)"
      cat "$urlfile"; return 0
    fi
  done
  log "no spare loopback port in 15432–15532"; exit 1
}

stop() {
  if [ -f "$clusterdir/bindir" ]; then
    as_owner "$(cat "$clusterdir/bindir")/pg_ctl" -D "$clusterdir/data" -m fast -w stop >&2 || true
    log "stopped the private PostgreSQL cluster"
  fi
  rm -rf "$clusterdir" "$urlfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  run)
    shift
    started_before=no; [ -f "$urlfile" ] && started_before=yes
    url=$(start)
    if [ "$started_before" = no ] && [ -f "$urlfile" ]; then trap stop EXIT; fi
    export TAYORI_TEST_POSTGRES_URL="$url"
    "$@"
    ;;
  *) echo "usage: $0 start|stop|run CMD…" >&2; exit 2 ;;
esac
