#!/usr/bin/env bash
# Regenerate docs/images/web-*.png: runs the web package's browser tests in
# headless Chromium with TAYORI_SCREENSHOTS pointing at docs/images.
# Needs a Redis (run under `scripts/redis.sh run`, as `make web-png` does).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/chromium.sh >/dev/null
mkdir -p docs/images
TAYORI_SCREENSHOTS="$PWD/docs/images" ${GO:-go} test -count=1 -run 'TestBrowser' ./web/
ls -1 docs/images/web-*.png
