# mosparo-lb: see README.md. Every target works on a fresh Debian 12 with Go 1.26.
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
FUZZTIME ?= 10s

.PHONY: build run test deps consul deb lint vet staticcheck fmt-check race fuzz hostile bench bench-failover clean

build: ## bin/mosparo-lb, static
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/mosparo-lb ./cmd/mosparo-lb
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/mosparo-node ./cmd/mosparo-node

run: build ## the demo (three emulated nodes behind the LB), or CONFIG=file
ifdef CONFIG
	./bin/mosparo-lb run -config $(CONFIG)
else
	./bin/mosparo-lb demo
endif

test: deps lint race ## what CI runs: install test dependencies, lint, race tests

deps: ## install what the tests need (apt, staticcheck) when missing
	./scripts/install-test-deps.sh
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(MAKE) consul

consul: ## .consul-bin/consul, the real agent the Consul tests run (built from the Go module proxy; ~12 min cold, 0.2 s when present)
	./scripts/consul.sh

deb: build ## out/mosparo-lb_<version>_<arch>.deb (dpkg-deb): binary, unit, /etc/mosparo-lb/mosparo-lb.yaml as a conffile, system user
	./scripts/build-deb.sh $(VERSION) bin/mosparo-lb out

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	staticcheck ./...

race:
	MOSPARO_LB_REQUIRE_ROOT_TESTS=$${CI:+1} $(GO) test -race -count=1 -timeout 25m ./...

fuzz: ## run every fuzz target for FUZZTIME each
	./scripts/fuzz-all.sh $(FUZZTIME)

hostile: ## the hostile corpus (issue 11) against mosparo-lb and HAProxy, as a table
	./scripts/hostile.sh

bench: build ## mosparo-lb vs HAProxy vs nginx with wrk (HTTP/1.1) and h2load (h2 over TLS), pinned and on shared cores, plus go benchmarks
	$(GO) test -run '^$$' -bench . -benchmem ./balancer/ ./cssproxy/ ./ratelimit/
	BENCH_PIN="$${BENCH_PIN:-split none}" ./scripts/bench.sh

bench-failover: ## VRRP failover outage, mosparo-lb vs keepalived
	./scripts/bench-failover.sh

clean:
	rm -rf bin out
