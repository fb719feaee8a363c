#!/usr/bin/env bash
# The benchmarks behind docs/performance.md. Run through `make bench`, which
# guarantees a Redis (scripts/redis.sh run). Each benchmark runs COUNT times
# (default 3; the micro-benchmarks 5) and benchstat prints the medians.
# Raw output is kept in .tayori-run/bench/*.txt.
#
# Knobs (environment):
#   COUNT                     runs of each heavy benchmark (default 3)
#   TAYORI_BENCH_RECIPIENTS   recipients of a delivery benchmark (default 100000)
#   TAYORI_BENCH_ROWS         rows of the subscriber import benchmark (default 100000;
#                             docs/performance.md quotes 1000000)
#   TAGS                      build tags (the Makefile sets sqlite_cgo for SQLITE=cgo)
#   BENCH_ONLY                a regular expression of sections to run:
#                             compose|templates|mailer|token|subscribers|subscribers-floor|deliver|redis
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
COUNT=${COUNT:-3}
out=.tayori-run/bench
mkdir -p "$out"
export TAYORI_BENCH_RECIPIENTS=${TAYORI_BENCH_RECIPIENTS:-100000}
export TAYORI_BENCH_ROWS=${TAYORI_BENCH_ROWS:-100000}
benchstat="$GO run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"

section() { # section NAME: whether BENCH_ONLY selects NAME
  [[ -z "${BENCH_ONLY:-}" || "$1" =~ ^(${BENCH_ONLY})$ ]]
}

bench() { # bench NAME go-test-args...: run, keep the raw output, print medians
  local name=$1; shift
  section "$name" || return 0
  local raw="$out/$name${TAGS:+-$TAGS}.txt"
  printf '\n\033[1m== %s: go test -tags "%s" %s\033[0m\n' "$name" "${TAGS:-}" "$*"
  "$GO" test -tags "${TAGS:-}" -run '^$' "$@" | tee "$raw" | grep -E '^(Benchmark|ok|FAIL|---)' >&2 || true
  if grep -q '^FAIL' "$raw"; then echo "bench.sh: $name failed (see $raw)" >&2; exit 1; fi
  $benchstat "$raw"
}

bench compose ./compose/ -bench . -benchmem -count 5
bench templates ./templates/ -bench . -benchmem -count 5
bench mailer ./mailer/ -bench . -benchmem -benchtime 1s -count "$COUNT"
bench token ./subscribers/token/ -bench . -benchmem -count 5
bench subscribers ./subscribers/ -bench 'Import|Recipients' -benchtime 1x -count "$COUNT" -timeout 60m
bench subscribers-floor ./internal/store/sqlite/ -bench 'ImportFloor' -benchtime 1x -count "$COUNT" -timeout 60m
bench redis ./queue/ -bench 'PlanRedisMemory' -benchtime 1x -count "$COUNT" -timeout 60m
bench deliver ./queue/ -bench 'Deliver' -benchtime 1x -count "$COUNT" -timeout 60m

echo
echo "raw results: $out/"
