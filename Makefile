# hallpass: run `make run` for a local server, `make test` for the tests.
GO       ?= go
FUZZTIME ?= 60s
BENCHTIME ?= 1s
STATICCHECK_VERSION ?= v0.8.2

.PHONY: run build test test-deps bench fuzz lint clean

## run: start the issuer on its embedded store in development mode (http://127.0.0.1:8080); Ctrl-C stops it
# The binary itself, not `go run`: the go command exits 1 when interrupted,
# whatever its child does, and make would report Ctrl-C as an error.
run: build
	./bin/hallpass serve --dev

## build: build bin/hallpass, static (CGO_ENABLED=0) and -trimpath: the binary of the Dockerfile
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/hallpass ./cmd/hallpass

## test-deps: install what the tests need that Go does not fetch (redis-server, nginx, node/npm, chromium, docker-compose, promtool)
test-deps:
	@./scripts/ensure-redis.sh && ./scripts/ensure-nginx.sh && ./scripts/ensure-node.sh && ./scripts/ensure-chromium.sh && ./scripts/ensure-compose.sh && ./scripts/ensure-prometheus.sh

## test: all tests with the race detector, fuzz seed corpora included, in both modules (the root and socketio/), then the JS client's (clients/js, Chromium included)
test: test-deps
	$(GO) mod download
	$(GO) -C socketio mod download # docs' snippet test builds offline in a workspace of both modules
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 9m ./...
	$(GO) -C socketio vet ./...
	$(GO) -C socketio test -race -count=1 -timeout 9m ./...
	cd clients/js && npm ci && npm test

## bench: benchmarks beside their raw-crypto baselines (same run), then the load generator at 64 clients (bbolt; Redis in memory, AOF everysec, AOF always; /v1/me with and without the token cache), the gateway (proxy, forward auth), then revocation propagation (one by one; 1,000/s on a 3-master cluster to 16 mirrors), then memory (docs/performance.md)
bench: test-deps
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...
	$(GO) run ./cmd/hallpass-bench -pin -c 64 -d 5s -redis-aof off,everysec,always
	$(GO) run ./cmd/hallpass-bench -pin -c 64 -d 5s -scenarios me -token-cache=false
	$(GO) run ./cmd/hallpass-bench -gateway -pin
	$(GO) run ./cmd/hallpass-bench -propagation -n 1000 -watchers 4
	$(GO) run ./cmd/hallpass-bench -propagation -cluster -rate 1000 -n 5000 -watchers 16 -c 64
	$(GO) run ./cmd/hallpass-bench -memory -accounts 100000 -entries 1000000 -tokens 1000000

## bench-load: signup, refresh and /v1/me under load on bbolt and Redis, beside the floor (needs redis-server)
.PHONY: bench-load
bench-load: test-deps
	$(GO) run ./cmd/hallpass-bench -pin -d 5s

## fuzz: every fuzz target for FUZZTIME each
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

## lint: gofmt, go vet, staticcheck
lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) -C socketio vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd socketio && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

clean:
	rm -rf bin data
