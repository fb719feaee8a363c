#!/usr/bin/env bash
# The whole pipeline on one machine, with the embedded defaults:
#   Redis (found or started) → Mailpit (a local SMTP server with a web inbox)
#   → import the November 2025 sample → add sample subscribers with different
#   regions and topics → run the worker and web server → send, with a
#   progress bar → print where to look.
# Ctrl-C (or `make demo-stop` from another terminal) stops everything the
# demo started, and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
run=.tayori-run
demo=$run/demo
mkdir -p "$run"
tayori=bin/tayori
smtp_port=${DEMO_SMTP_PORT:-1025}
ui_port=${DEMO_UI_PORT:-8025}
http_addr=${DEMO_HTTP_ADDR:-127.0.0.1:8080}

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

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

stop_all() {
  stop_pid tayori-run
  stop_pid mailpit
  if [ -f "$run/demo-started-redis" ]; then scripts/redis.sh stop; rm -f "$run/demo-started-redis"; fi
}

if [ "${1:-}" = stop ]; then stop_all; exit 0; fi

stop_all >/dev/null 2>&1 || true
[ -x "$tayori" ] || { echo "run 'make demo' (it builds $tayori first)"; exit 1; }

log "Redis"
had_redis=no; [ -f "$run/redis.pid" ] && had_redis=yes
base_url=$(scripts/redis.sh start)
[ "$had_redis" = no ] && [ -f "$run/redis.pid" ] && touch "$run/demo-started-redis"
# The demo keeps its queues in a database of its own (7) and empties it
# first: task ids from an earlier demo would otherwise block the new send's.
export TAYORI_REDIS_URL="$(sed -E 's#/[0-9]+$##' <<<"$base_url")/7"
redis_flush() {
  local hp=${TAYORI_REDIS_URL#redis://}; hp=${hp%/*}; hp=${hp##*@}
  exec 3<>"/dev/tcp/${hp%:*}/${hp##*:}"
  printf 'SELECT 7\r\nFLUSHDB\r\n' >&3
  local a b; IFS= read -r -t 2 a <&3; IFS= read -r -t 2 b <&3
  exec 3>&- 3<&-
  [[ "$b" == +OK* ]] || { echo "could not empty Redis database 7: $a $b"; exit 1; }
}
redis_flush
echo "using $TAYORI_REDIS_URL"

log "Mailpit (local SMTP server with a web inbox; built once, then cached)"
mailpit=$(scripts/mailpit.sh)
"$mailpit" --smtp "127.0.0.1:$smtp_port" --listen "127.0.0.1:$ui_port" --smtp-auth-accept-any --smtp-auth-allow-insecure \
  >"$run/mailpit.log" 2>&1 &
echo $! > "$run/mailpit.pid"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$smtp_port") 2>/dev/null && break; sleep 0.1; done

trap 'echo; stop_all; exit 0' INT TERM

export TAYORI_DATA_DIR=$demo
export TAYORI_SMTP_URL="smtp://127.0.0.1:$smtp_port?tls=none"
export TAYORI_HTTP_ADDR=$http_addr
export TAYORI_BASE_URL="http://$http_addr"
export TAYORI_LOG_FORMAT=text TAYORI_LOG_LEVEL=${TAYORI_LOG_LEVEL:-warn}
rm -rf "$demo"; mkdir -p "$demo"

log "Import the November 2025 issue from the plain-text format, then lint it"
"$tayori" compose import testdata/aisi-monthly-2025-11.txt -o "$demo/2025-11.md"
# The real November issue has two links whose "&reg=" parameter an earlier
# HTML step turned into "®="; the lint names both lines. Repair them as an
# editor would, and check again: this time it must pass.
"$tayori" compose check "$demo/2025-11.md" || true
log "Repair the two links the lint caught, and check again"
sed -i 's/®=/\&reg=/g' "$demo/2025-11.md"
"$tayori" compose check "$demo/2025-11.md"

log "Create the database (the first set-up; every other command needs it)"
"$tayori" init

log "Add sample subscribers with different regions and topics"
"$tayori" subscribers import scripts/demo-subscribers.csv --list monthly

log "Start the worker, scheduler and web server (tayori run)"
"$tayori" run >"$run/tayori-run.log" 2>&1 &
echo $! > "$run/tayori-run.pid"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/${http_addr%:*}/${http_addr##*:}") 2>/dev/null && break; sleep 0.1; done

log "Send the issue (each reader gets only their regions and topics)"
"$tayori" send "$demo/2025-11.md" --list monthly --dry-run
"$tayori" send "$demo/2025-11.md" --list monthly --wait

cat <<MSG

  The messages are in the inbox:       http://127.0.0.1:$ui_port
  The archive and subscribe pages:     http://$http_addr/archive   http://$http_addr/subscribe
  The sends:                           TAYORI_DATA_DIR=$demo bin/tayori sends
  Logs:                                $run/tayori-run.log, $run/mailpit.log

  Press Ctrl-C to stop Mailpit, the worker and any Redis the demo started
  (or run 'make demo-stop' from another terminal).
MSG
if [ -n "${DEMO_DETACH:-}" ]; then trap - INT TERM; exit 0; fi
while kill -0 "$(cat "$run/mailpit.pid" 2>/dev/null)" 2>/dev/null; do sleep 1; done
stop_all
