# Weir — make targets. `make run` and `make test` are the two commands a
# fresh machine needs (see README.md).
SHELL    := /bin/bash
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Packages with concurrency, also run under the race detector.
RACE_PKGS := ./sdk/... ./pool/... ./proxy/... ./plugins/... ./internal/...

.PHONY: build run test unit race e2e lint bench bench-tls bench-shape bench-ws bench-h2 bench-rlaccuracy benchstat clean cache-conformance

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/weir ./cmd/weir

# The demo: an echo upstream on :9001 and the gateway on :8080 (admin :8081).
run: build
	@bash scripts/run-demo.sh

test: lint unit race e2e cache-conformance
	@echo "make test: all suites passed"

lint:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@out=$$($(GO) tool deadcode -test ./...); if [ -n "$$out" ]; then echo "unreachable code (deadcode -test):"; echo "$$out"; exit 1; fi

# -p 1: packages one at a time, so the timing-sensitive suites (rate-limit
# accuracy, open-loop load generator) do not compete with each other for
# the machine's two cores.
unit:
	$(GO) test -p 1 -count=1 $$(go list ./... | grep -v /e2e)

race:
	$(GO) test -p 1 -race -count=1 $(RACE_PKGS)

e2e: build
	WEIR_BIN=$(CURDIR)/bin/weir $(GO) test -count=1 -v ./e2e/ 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' ; exit $${PIPESTATUS[0]}

# RFC 9111 conformance of the cache plugin (npm http-cache-tests); fails
# below the floor in scripts/cache-conformance.floor.
cache-conformance: build
	bash scripts/cache-conformance.sh

bench: build
	bash scripts/bench.sh

# The TLS rows (HTTPS keep-alive, handshakes/s; Weir vs nginx), apart from
# `make bench` so that it stays under its 10-minute budget; about 4 minutes.
bench-tls: build
	bash scripts/bench.sh -tls -pprof

# The users' shape (10 KiB answers, 1 KiB POSTs, nginx static backends with
# sendfile on and off, c32/c64/c10000, FIFO and normal scheduling, 1 and 2
# processes; Weir vs nginx, with a verdict per row); about 7 minutes.
bench-shape: build
	bash scripts/bench.sh -shape

# The WebSocket rows (1,000 WebSockets echoing small messages, and RSS per
# idle WebSocket; Weir vs nginx), about a minute.
bench-ws: build
	bash scripts/bench.sh -ws -rounds 2 -duration 5s

# The HTTP/2 rows: h2load h2c 64 B (1 and 100 streams per connection)
# and gRPC unary, Weir vs nginx; QUICK=1 for a short run.
bench-h2: build
	bash scripts/bench.sh -h2 -rounds 1 -duration 5s $(if $(QUICK),-quick)

# Rate-limit accuracy on two saturated gateways sharing a slowed Redis
# (policy: redis, on_store_failure: local), at four Redis delays and with
# Redis stopped 60ms every 300ms, 3 runs each; about 2 minutes. Needs
# redis-server.
bench-rlaccuracy: build
	WEIR_BIN=$(CURDIR)/bin/weir bash bench/rlaccuracy.sh

benchstat:
	bash scripts/benchstat.sh

clean:
	rm -rf bin
