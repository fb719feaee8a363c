# Tayori's build, test and demo targets. `make help` lists them.
SHELL := /usr/bin/env bash
GO ?= go
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# SQLITE=cgo builds with the C SQLite library (github.com/mattn/go-sqlite3,
# needs a C compiler) instead of the pure Go default: about 1.8 times the
# write speed, for imports of millions of readers. Same files, same SQL.
SQLITE ?=
TAGS := $(if $(filter cgo,$(SQLITE)),sqlite_cgo,)
export TAGS

.PHONY: help build install test test-short chaos bench bench-composer fuzz lint demo demo-stop redis redis-stop email-png web-png load-web clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

build: ## build bin/tayori with the version from git
	$(GO) build -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o bin/tayori ./cmd/tayori

install: ## install tayori into GOBIN (default $(go env GOPATH)/bin), so that it is on PATH
	$(GO) install -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)" ./cmd/tayori
	@bindir=$$($(GO) env GOBIN); [ -n "$$bindir" ] || bindir=$$($(GO) env GOPATH)/bin; \
	echo "installed $$bindir/tayori"; \
	case ":$$PATH:" in *":$$bindir:"*) ;; *) echo "$$bindir is not on your PATH: add it with"; echo "  export PATH=\"$$bindir:\$$PATH\"";; esac

test: ## go vet and every test with the race detector, against a real Redis and PostgreSQL (found, started or installed)
	$(GO) vet ./...
	scripts/chromium.sh >/dev/null
	scripts/redis.sh run scripts/postgres.sh run $(GO) test -race -count=1 -timeout 14m ./...
	@echo "== the database packages again on the C SQLite engine (-tags sqlite_cgo)"
	scripts/redis.sh run scripts/postgres.sh run $(GO) test -tags sqlite_cgo -count=1 -timeout 5m ./internal/sqlitedb/ ./internal/store/... ./subscribers/... ./queue/... ./cmd/tayori/

test-short: ## every test without the race detector (quicker while developing)
	scripts/redis.sh run scripts/postgres.sh run $(GO) test -count=1 ./...

chaos: ## the chaos suite (issue 18): tayori serve, two workers, Redis and a fault relay under kills, outages, a full disk (root; ~10 min; CHAOS_FLAGS="-short", "-o FILE", see go run ./tools/chaos -help)
	@$(MAKE) --no-print-directory build
	$(GO) run ./tools/chaos -tayori bin/tayori $(CHAOS_FLAGS)

bench: ## the benchmarks behind docs/performance.md (several minutes; SQLITE=cgo for the C engine)
	scripts/redis.sh run scripts/postgres.sh run scripts/bench.sh

bench-composer: ## five editors autosaving and previewing the July issue at once: p50/p99 of the preview endpoint (target p99 <= 150 ms)
	scripts/redis.sh run $(GO) test -run '^$$' -bench BenchmarkComposerLoad -benchtime $${COMPOSER_ROUNDS:-500}x -count $${COUNT:-3} ./web/

fuzz: ## a short run of every fuzz target (FUZZTIME per target, default 10s)
	scripts/fuzz.sh $${FUZZTIME:-10s}

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0 ./...

demo: ## the whole pipeline on a fresh machine: import, subscribe, send; then the inbox and the console
	@scripts/demo.sh intro
	@$(MAKE) --no-print-directory build
	DEMO_INTRO_SHOWN=1 scripts/demo.sh

demo-stop: ## stop what `make demo` started
	scripts/demo.sh stop

redis: ## find or start a Redis for development and print its URL
	@scripts/redis.sh start

redis-stop: ## stop the Redis that `make redis` started
	@scripts/redis.sh stop

email-png: ## render the November sample and screenshot it in headless Chromium
	scripts/email-screenshot.sh docs/images/november-2025.png

web-png: ## screenshots of the subscriber pages and the editor console (docs/images/web-*.png)
	scripts/chromium.sh >/dev/null
	scripts/redis.sh run scripts/web-screenshots.sh

load-web: ## load test of POST /subscribe and one-click unsubscribe (TAYORI_LOAD requests each)
	scripts/redis.sh run env TAYORI_LOAD=$${TAYORI_LOAD:-2000} $(GO) test -count=1 -v -run TestLoad ./web

clean: ## remove build outputs and local state
	rm -rf bin .tayori-run
