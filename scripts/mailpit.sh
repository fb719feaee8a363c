#!/usr/bin/env bash
# Print the path of a Mailpit binary with its web UI, building it on first
# use and caching it (default ~/.cache/tayori/mailpit-VERSION).
#   scripts/mailpit.sh            the path, after building it if need be
#   scripts/mailpit.sh --cached   the path if it is built already; else exit 1
#
# `go install github.com/axllent/mailpit@vX` is refused by the module proxy
# (it will not list Mailpit's versions), and a plain `go build` of the
# module gives a blank web page because the UI's JavaScript is not in the
# module. So: download the module at an explicit version, copy its source
# out of the module cache, build the UI with npm, then build the binary.
set -euo pipefail
version=${MAILPIT_VERSION:-v1.30.5}
cache=${TAYORI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tayori}
bin=$cache/mailpit-$version
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
[ "${1:-}" = --cached ] && exit 1
log() { echo "mailpit.sh: $*" >&2; }
command -v go >/dev/null || { log "Go is required"; exit 1; }
if ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing nodejs and npm with apt-get (needed once to build Mailpit's web UI)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
  else
    log "npm is required once to build Mailpit's web inbox; install Node.js and npm and run again"; exit 1
  fi
fi
mkdir -p "$cache"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
log "building Mailpit $version with its web UI (first run only; a few minutes)"
( cd "$work" && go mod init mailpitbuild >/dev/null 2>&1 && GOFLAGS=-mod=mod go mod download -json "github.com/axllent/mailpit@$version" > dl.json )
dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' "$work/dl.json")
[ -d "$dir" ] || { log "could not download github.com/axllent/mailpit@$version"; exit 1; }
cp -r "$dir" "$work/src" && chmod -R u+w "$work/src"
( cd "$work/src" && npm ci --no-audit --no-fund --loglevel=error >&2 && npm run build >&2 )
( cd "$work/src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/axllent/mailpit/config.Version=$version" -o "$bin.tmp" . )
mv "$bin.tmp" "$bin"
log "cached $bin"
echo "$bin"
