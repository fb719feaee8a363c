#!/usr/bin/env bash
# The whole pipeline on one machine, with the embedded defaults:
#   a Redis of the demo's own → Mailpit (a local SMTP server with a web
#   inbox) → import the November 2025 sample → add sample subscribers with
#   different regions and topics → create an editor account → run the
#   worker and web server → put the issue in the console → send it, with a
#   progress bar → print where to look and how to sign in.
#
#   scripts/demo.sh          run the demo (make demo)
#   scripts/demo.sh intro    only say what the demo will do and use
#   scripts/demo.sh stop     stop what the demo started (make demo-stop)
#
# Redis: the demo starts a redis-server of its own (no persistence, on a
# spare loopback port) and stops it afterwards. Only when no redis-server
# can be had does it use the Redis at TAYORI_REDIS_URL, and then only a
# database it finds empty and claims (the claims of the tests, in database
# 15); it empties that database and releases it when it stops. It never
# flushes a database it has not claimed empty.
#
# Ctrl-C (or `make demo-stop` from another terminal) stops everything the
# demo started, and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
run=.tayori-run
demo=$run/demo
tayori=bin/tayori
smtp_port=${DEMO_SMTP_PORT:-1025}
ui_port=${DEMO_UI_PORT:-8025}
http_addr=${DEMO_HTTP_ADDR:-127.0.0.1:8080}
editor=${DEMO_EDITOR:-demo}
redis_pidfile=$run/demo-redis.pid
redis_claimfile=$run/demo-redis.claim

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }
say() { printf '    %s\n' "$*"; }

# ---- Redis over /dev/tcp, for the claimed-database fallback ----

# parse_url URL: sets r_host, r_port, r_pass from redis://[:pass@]host[:port][/db].
parse_url() {
  local u=${1#redis://}
  u=${u%%/*}
  r_pass=
  if [[ "$u" == *@* ]]; then r_pass=${u%@*}; r_pass=${r_pass#*:}; u=${u##*@}; fi
  r_host=${u%:*}; r_port=${u##*:}
  [ "$r_host" = "$u" ] && r_port=6379
  return 0
}

# rcmd DB CMD...: run one command in database DB of r_host:r_port and print
# its reply's first line (+OK, :3, $-1, -ERR …; a bulk reply's data line).
rcmd() {
  local db=$1; shift
  { exec 3<>"/dev/tcp/$r_host/$r_port"; } 2>/dev/null || return 1
  local line reply
  if [ -n "$r_pass" ]; then printf 'AUTH %s\r\n' "$r_pass" >&3; IFS= read -r -t 2 line <&3 || true; fi
  printf 'SELECT %s\r\n' "$db" >&3; IFS= read -r -t 2 line <&3 || true
  printf '%s\r\n' "$*" >&3
  IFS= read -r -t 2 reply <&3 || reply=
  reply=${reply%$'\r'}
  if [[ "$reply" == \$[0-9]* ]]; then IFS= read -r -t 2 reply <&3 || reply=; reply=${reply%$'\r'}; fi
  exec 3>&- 3<&-
  printf '%s\n' "$reply"
}

# ---- what the demo uses, said before it starts ----

# DEMO_REDIS=claim uses a claimed database of the Redis at TAYORI_REDIS_URL
# even where a redis-server of the demo's own could be started.
redis_own_possible() {
  [ "${DEMO_REDIS:-}" != claim ] || return 1
  command -v redis-server >/dev/null || { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }
}

intro() {
  local mailpit
  echo "make demo: import the November 2025 issue, add 8 sample readers, send it, and show it in a local inbox."
  if mailpit=$(scripts/mailpit.sh --cached 2>/dev/null); then
    say "Mailpit (the local inbox): cached at $mailpit."
  else
    say "Mailpit (the local inbox): this first run builds it from source with its web UI:"
    say "  a few minutes, and npm is needed (Node.js); later runs use the cached binary."
  fi
  if redis_own_possible; then
    say "Redis: a redis-server of the demo's own on a spare port of 127.0.0.1, database 0,"
    say "  without persistence; stopped when the demo stops. Your Redis is not touched."
  else
    say "Redis: an empty database (1-14) that the demo claims on ${TAYORI_REDIS_URL:-redis://127.0.0.1:6379},"
    say "  and empties and releases when it stops; it flushes no database it has not claimed empty."
  fi
  say "Ports: SMTP 127.0.0.1:$smtp_port, inbox 127.0.0.1:$ui_port, Tayori $http_addr (DEMO_SMTP_PORT, DEMO_UI_PORT, DEMO_HTTP_ADDR)."
  say "Data: $demo (rebuilt at each run). Ctrl-C or 'make demo-stop' stops everything it started."
}

# ---- stopping ----

stop_pid() { # stop_pid NAME: stop the process whose pid is in $run/NAME.pid
  local f=$run/$1.pid
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "stopped $1 (pid $pid)"
  fi
  rm -f "$f"
}

release_claim() { # empty and release the database the demo claimed, if any
  [ -f "$redis_claimfile" ] || return 0
  local url db owner
  read -r url db owner < "$redis_claimfile"
  parse_url "$url"
  if [ "$(rcmd 15 GET "tayori:testdb:$db")" = "$owner" ]; then
    rcmd "$db" FLUSHDB >/dev/null || true
    rcmd 15 DEL "tayori:testdb:$db" >/dev/null || true
    echo "emptied and released Redis database $db of $url"
  fi
  rm -f "$redis_claimfile"
}

stop_all() {
  stop_pid tayori-run
  stop_pid mailpit
  stop_pid demo-redis
  release_claim
  # An older demo started Redis through scripts/redis.sh.
  if [ -f "$run/demo-started-redis" ]; then scripts/redis.sh stop; rm -f "$run/demo-started-redis"; fi
}

case "${1:-}" in
  stop) stop_all; exit 0 ;;
  intro) intro; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [intro|stop]" >&2; exit 2 ;;
esac

mkdir -p "$run"
stop_all >/dev/null 2>&1 || true
[ -n "${DEMO_INTRO_SHOWN:-}" ] || intro
[ -x "$tayori" ] || { echo "run 'make demo' (it builds $tayori first)"; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
for hp in "127.0.0.1:$smtp_port:DEMO_SMTP_PORT" "127.0.0.1:$ui_port:DEMO_UI_PORT" "$http_addr:DEMO_HTTP_ADDR"; do
  IFS=: read -r h p var <<<"$hp"
  port_free "$h" "$p" || { echo "$h:$p is in use: stop what listens there, or set $var to another port"; exit 1; }
done

# From here on, whatever happens (an error, Ctrl-C), stop what was started.
trap 'stop_all' EXIT
trap 'echo; exit 0' INT TERM

# ---- Redis: one of the demo's own, or a database it claims empty ----
log "Redis"
if redis_own_possible; then
  if ! command -v redis-server >/dev/null; then
    echo "installing Debian's redis-server with apt-get (needed once)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
  fi
  for p in $(seq 16480 16579); do
    port_free 127.0.0.1 "$p" || continue
    redis-server --bind 127.0.0.1 --port "$p" --save '' --appendonly no --maxmemory-policy noeviction \
      --daemonize yes --pidfile "$PWD/$redis_pidfile" --dir "$PWD/$run" --logfile "$PWD/$run/demo-redis.log" >/dev/null
    r_host=127.0.0.1 r_port=$p r_pass=
    for _ in $(seq 50); do [ "$(rcmd 0 PING 2>/dev/null)" = "+PONG" ] && break; sleep 0.1; done
    [ "$(rcmd 0 PING 2>/dev/null)" = "+PONG" ] || { echo "redis-server did not start; see $run/demo-redis.log"; exit 1; }
    export TAYORI_REDIS_URL="redis://127.0.0.1:$p/0"
    break
  done
  [ -n "${TAYORI_REDIS_URL:-}" ] && [ -f "$redis_pidfile" ] || { echo "no spare loopback port in 16480-16579 for Redis"; exit 1; }
  echo "started redis-server for the demo: $TAYORI_REDIS_URL (pid $(cat "$redis_pidfile"))"
else
  base=${TAYORI_REDIS_URL:-redis://127.0.0.1:6379}
  base=$(sed -E 's#/[0-9]*$##' <<<"$base")
  parse_url "$base"
  [ "$(rcmd 15 PING 2>/dev/null)" = "+PONG" ] || {
    echo "No redis-server to start and no Redis answering at $base."
    echo "Install redis-server (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)"
    echo "or point TAYORI_REDIS_URL at a running Redis, and run 'make demo' again."
    exit 1
  }
  owner="demo:$$:$(date +%s)"
  for db in $(seq 1 14); do
    [ "$(rcmd 15 SET "tayori:testdb:$db" "$owner" NX)" = "+OK" ] || continue
    if [ "$(rcmd "$db" DBSIZE)" = ":0" ]; then
      echo "$base $db $owner" > "$redis_claimfile"
      export TAYORI_REDIS_URL="$base/$db"
      break
    fi
    rcmd 15 DEL "tayori:testdb:$db" >/dev/null # not empty: not ours to use
  done
  [ -f "$redis_claimfile" ] || { echo "no empty, unclaimed database among 1-14 at $base; the demo flushes none"; exit 1; }
  echo "claimed the empty database $TAYORI_REDIS_URL (released, emptied, when the demo stops)"
fi

log "Mailpit (the local SMTP server with a web inbox)"
mailpit=$(scripts/mailpit.sh)
"$mailpit" --smtp "127.0.0.1:$smtp_port" --listen "127.0.0.1:$ui_port" --smtp-auth-accept-any --smtp-auth-allow-insecure \
  >"$run/mailpit.log" 2>&1 &
echo $! > "$run/mailpit.pid"
for _ in $(seq 50); do port_free 127.0.0.1 "$smtp_port" || break; sleep 0.1; done

export TAYORI_DATA_DIR=$demo
export TAYORI_SMTP_URL="smtp://127.0.0.1:$smtp_port?tls=none"
export TAYORI_HTTP_ADDR=$http_addr
export TAYORI_BASE_URL="http://$http_addr"
export TAYORI_LOG_FORMAT=text TAYORI_LOG_LEVEL=${TAYORI_LOG_LEVEL:-warn}
unset TAYORI_CONFIG TAYORI_DB TAYORI_SECRET TAYORI_SECRET_FILE
rm -rf "$demo"; mkdir -p "$demo"
# `. .tayori-run/demo/env` points a shell's tayori at the demo's data and Redis.
for v in TAYORI_DATA_DIR TAYORI_REDIS_URL TAYORI_SMTP_URL TAYORI_HTTP_ADDR TAYORI_BASE_URL TAYORI_LOG_FORMAT TAYORI_LOG_LEVEL; do
  printf 'export %s=%q\n' "$v" "${!v}"
done > "$demo/env"

log "Import the November 2025 issue from the plain-text format, then lint it"
"$tayori" compose import testdata/aisi-monthly-2025-11.txt -o "$demo/2025-11.md"
# The real November issue has two links whose "&reg=" parameter an earlier
# HTML step turned into "®="; the lint names both lines. Repair them as an
# editor would, and check again: this time it must pass.
"$tayori" compose check "$demo/2025-11.md" || true
log "Repair the two links the lint caught, and check again"
sed -i.bak 's/®=/\&reg=/g' "$demo/2025-11.md" && rm -f "$demo/2025-11.md.bak"
"$tayori" compose check "$demo/2025-11.md"

log "Create the database (the first set-up; every other command needs it)"
"$tayori" init

log "Add sample subscribers with different regions and topics"
"$tayori" subscribers import scripts/demo-subscribers.csv --list monthly

log "Create the editor account '$editor' for the console"
password=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 16 || true)
printf '%s\n' "$password" | "$tayori" editors add "$editor"
printf 'console: http://%s/admin/login\neditor:   %s\npassword: %s\n' "$http_addr" "$editor" "$password" > "$demo/login.txt"
chmod 600 "$demo/login.txt"

log "Start the worker, scheduler and web server (tayori run)"
"$tayori" run >"$run/tayori-run.log" 2>&1 &
echo $! > "$run/tayori-run.pid"
for _ in $(seq 100); do port_free "${http_addr%:*}" "${http_addr##*:}" || break; sleep 0.1; done

log "Put the issue in the console (through the API, with a token revoked right after)"
api_token=$("$tayori" editors token "$editor" --label demo)
curl -fsS -o /dev/null -H "Authorization: Bearer $api_token" --data-binary "@$demo/2025-11.md" \
  "http://$http_addr/api/v1/issues?name=2025-11.md"
"$tayori" editors revoke "$editor" >/dev/null
echo "issue 2025-11 is in the console: http://$http_addr/admin/issues/2025-11"

log "Send the issue (each reader gets only their regions and topics)"
"$tayori" send "$demo/2025-11.md" --list monthly --dry-run
"$tayori" send "$demo/2025-11.md" --list monthly --wait

inbox=$(curl -fsS "http://127.0.0.1:$ui_port/api/v1/messages?limit=1" | sed -n 's/.*"total":\([0-9]*\).*/\1/p')
echo
printf '  %-37s%s\n' "The inbox (Mailpit), ${inbox:-?} messages:" "http://127.0.0.1:$ui_port"
cat <<MSG
  The console:                         http://$http_addr/admin/login
      editor: $editor   password: $password   (kept in $demo/login.txt)
      the send:  http://$http_addr/admin/sends    the issue: http://$http_addr/admin/issues/2025-11
  The archive and subscribe pages:     http://$http_addr/archive   http://$http_addr/subscribe
  The command line on the demo's data: . $demo/env; bin/tayori sends
  Logs:                                $run/tayori-run.log, $run/mailpit.log

  Press Ctrl-C to stop Mailpit, Tayori and the demo's Redis
  (or run 'make demo-stop' from another terminal).
MSG
if [ -n "${DEMO_DETACH:-}" ]; then trap - EXIT INT TERM; exit 0; fi
while kill -0 "$(cat "$run/mailpit.pid" 2>/dev/null)" 2>/dev/null; do sleep 1; done
