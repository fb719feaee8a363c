#!/usr/bin/env bash
# Make sure a Redis answers for Tayori's tests, benchmarks and demo.
#
#   scripts/redis.sh run CMD [ARGS…]  find or start Redis, run CMD with
#                                     TAYORI_TEST_REDIS_URL and TAYORI_REDIS_URL
#                                     set, then stop whatever was started
#   scripts/redis.sh start            find or start Redis; print its URL
#   scripts/redis.sh stop             stop the Redis that `start` started
#
# It uses the Redis answering at TAYORI_REDIS_URL (default
# redis://127.0.0.1:6379) if there is one. Otherwise it starts redis-server
# on a spare loopback port with no persistence and a pid file under
# .tayori-run/, installing the redis-server package with apt-get first when
# it is absent and we are root. Otherwise it stops with a message that says
# what to do. `run` also makes sure redis-server is installed (the same way)
# when another Redis answers: the Sentinel failover tests run their own.
set -euo pipefail
cd "$(dirname "$0")/.."
rundir=.tayori-run
pidfile=$rundir/redis.pid
urlfile=$rundir/redis.url

log() { echo "redis.sh: $*" >&2; }

# ping HOST PORT [PASSWORD]: true if a Redis answers PONG there.
ping_redis() {
  local host=$1 port=$2 pass=${3:-} reply
  { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || return 1
  if [ -n "$pass" ]; then printf 'AUTH %s\r\n' "$pass" >&3; IFS= read -r -t 2 reply <&3 || true; fi
  printf 'PING\r\n' >&3
  IFS= read -r -t 2 reply <&3 || reply=
  exec 3>&- 3<&-
  [[ "$reply" == +PONG* ]]
}

# parse redis://[:pass@]host:port[/db] into host, port, pass
parse_url() {
  local u=${1#redis://}
  u=${u%%/*}
  pass=
  if [[ "$u" == *@* ]]; then pass=${u%@*}; pass=${pass#*:}; u=${u##*@}; fi
  host=${u%:*}; port=${u##*:}
  [ "$host" = "$u" ] && port=6379
  host=${host#[}; host=${host%]}
}

install_redis() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then return 1; fi
  log "redis-server is not installed; installing it with apt-get (Debian package redis-server)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
}

start() {
  local want=${TAYORI_TEST_REDIS_URL:-${TAYORI_REDIS_URL:-redis://127.0.0.1:6379}}
  parse_url "$want"
  if ping_redis "$host" "$port" "$pass"; then
    echo "$want"; return 0
  fi
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && [ -f "$urlfile" ]; then
    cat "$urlfile"; return 0
  fi
  if ! command -v redis-server >/dev/null; then
    install_redis || {
      log "no Redis answers at $want, and redis-server is not installed."
      log "Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)"
      log "or point TAYORI_REDIS_URL at a running Redis, then run make again."
      exit 1
    }
  fi
  mkdir -p "$rundir"
  local p
  for p in $(seq 16379 16479); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      redis-server --bind 127.0.0.1 --port "$p" --save '' --appendonly no \
        --maxmemory-policy noeviction --daemonize yes --pidfile "$PWD/$pidfile" \
        --dir "$PWD/$rundir" --logfile "$PWD/$rundir/redis.log" >&2
      for _ in $(seq 50); do
        if ping_redis 127.0.0.1 "$p"; then
          echo "redis://127.0.0.1:$p" > "$urlfile"
          log "started redis-server on 127.0.0.1:$p (pid $(cat "$pidfile"))"
          cat "$urlfile"; return 0
        fi
        sleep 0.1
      done
      log "redis-server did not answer on port $p; see $rundir/redis.log"; exit 1
    fi
  done
  log "no spare loopback port in 16379–16479"; exit 1
}

stop() {
  if [ -f "$pidfile" ]; then
    local pid; pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      log "stopped redis-server (pid $pid)"
    fi
    rm -f "$pidfile" "$urlfile"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  run)
    shift
    # The Sentinel failover tests start redis-server processes of their
    # own even when a Redis answers already.
    if ! command -v redis-server >/dev/null; then
      install_redis || log "redis-server is not installed: the Sentinel failover tests will fail (Debian/Ubuntu: apt-get install redis-server)"
    fi
    started_before=no; [ -f "$pidfile" ] && started_before=yes
    url=$(start)
    if [ "$started_before" = no ] && [ -f "$pidfile" ]; then trap stop EXIT; fi
    export TAYORI_TEST_REDIS_URL="$url" TAYORI_REDIS_URL="$url"
    "$@"
    ;;
  *) echo "usage: $0 start|stop|run CMD…" >&2; exit 2 ;;
esac
