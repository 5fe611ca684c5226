# procscope: `make run` starts the aggregator and a local exporter; `make test`
# runs every test (Go, browser, real Prometheus). See README.md and docs/.

GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y%m%d-%H:%M:%S)
VPKG      := github.com/prometheus/common/version
# Every label --version and *_build_info show; a plain `go build` gets
# defaults instead (internal/cli.FillVersion).
LDFLAGS   := -s -w -X $(VPKG).Version=$(VERSION) -X $(VPKG).Revision=$(REVISION) \
             -X $(VPKG).Branch=$(BRANCH) -X $(VPKG).BuildUser=procscope -X $(VPKG).BuildDate=$(BUILD_DATE)
CROSS     := linux/amd64 linux/arm64 windows/amd64 windows/arm64 darwin/amd64 darwin/arm64
# The aggregator is cgo (SQLite), so it is released for fewer platforms:
# this machine's, built natively, and every other AGG_PLATFORMS one (AGG_CROSS)
# with Debian's C cross compiler AGG_CC_<arch>, from the packages AGG_PKGS_<arch>.
AGG_PLATFORMS ?= linux/amd64 linux/arm64
AGG_CC_arm64  ?= aarch64-linux-gnu-gcc
AGG_CC_amd64  ?= x86_64-linux-gnu-gcc
AGG_PKGS_arm64 := gcc-aarch64-linux-gnu libc6-dev-arm64-cross
AGG_PKGS_amd64 := gcc-x86-64-linux-gnu libc6-dev-amd64-cross
NATIVE    := $(shell $(GO) env GOOS)-$(shell $(GO) env GOARCH)
AGG_CROSS  = $(filter-out $(subst -,/,$(NATIVE)),$(AGG_PLATFORMS))
os_of      = $(firstword $(subst /, ,$(1)))
arch_of    = $(lastword $(subst /, ,$(1)))
agg_cc     = $(AGG_CC_$(call arch_of,$(1)))
LISTEN    ?= 127.0.0.1:8000
EXPORTER_LISTEN ?= 127.0.0.1:9717

.PHONY: all build run test vet lint gotest cross webtest bench fuzz load load-postgres soak release docker clean

all: build

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/procscope-exporter ./exporter
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/procscope-aggregator ./aggregator

# run: the aggregator with its defaults (SQLite under ./data) and an exporter
# pushing to it; Ctrl-C stops both.
#
# On loopback the aggregator enrols new hosts openly (its default there);
# with LISTEN beyond loopback it runs in token mode with a token generated
# once into data/enrollment-token, which the local exporter sends (give the
# same file to exporters on other hosts: --push.enrollment-token-file).
RUN_TOKEN  := data/enrollment-token
RUN_ENROLL  = $(if $(filter 127.% localhost:% [::1]:%,$(LISTEN)),,--hosts.enrollment-token-file=$(RUN_TOKEN))
run: build
	@mkdir -p data/exporter
	@[ -s $(RUN_TOKEN) ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $(RUN_TOKEN))
	@echo "procscope UI: http://$(LISTEN)  (Ctrl-C stops both)"
	@trap 'kill $$agg $$exp 2>/dev/null; wait' INT TERM EXIT; \
	$(BIN)/procscope-aggregator --web.listen-address=$(LISTEN) --storage.path=data $(RUN_ENROLL) & agg=$$!; \
	sleep 1; \
	$(BIN)/procscope-exporter --web.listen-address=$(EXPORTER_LISTEN) \
	  --push.url=http://$(LISTEN)/api/v1/ingest --state.dir=data/exporter \
	  --push.enrollment-token-file=$(RUN_TOKEN) & exp=$$!; \
	wait $$agg

vet:
	$(GO) vet ./...

# lint: golangci-lint, pinned in go.mod as a tool; .golangci.yml names the
# linters. vet stays in test too: its default analyzers are not quite govet's.
lint:
	$(GO) tool golangci-lint run ./...

# gotest runs every Go test; end-to-end tests inside it (the real Prometheus,
# the kill -9 test) skip loudly when a program is missing, unless
# REQUIRE_E2E=1, when they fail instead.
gotest:
	$(GO) test -count=1 -timeout 20m ./...

# cross: the exporter is pure Go and builds everywhere without cgo. The
# aggregator is cgo (SQLite): it is compile-checked for each AGG_PLATFORMS
# platform but this machine's with Debian's C cross compiler (AGG_CC_<arch>),
# skipped loudly when that is missing, unless REQUIRE_E2E=1 (.ci/run
# installs it), when it fails instead.
cross:
	@set -e; for p in $(CROSS); do \
	  os=$${p%/*}; arch=$${p#*/}; \
	  echo "cross exporter $$os/$$arch"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -o /dev/null ./exporter; \
	done
	@set -e; $(foreach p,$(AGG_CROSS),cc='$(call agg_cc,$(p))'; \
	  if command -v "$$cc" >/dev/null; then \
	    echo "cross aggregator $(p) (CC=$$cc)"; \
	    CC="$$cc" CGO_ENABLED=1 GOOS=$(call os_of,$(p)) GOARCH=$(call arch_of,$(p)) $(GO) build -trimpath -o /dev/null ./aggregator; \
	  elif [ "$$REQUIRE_E2E" = 1 ]; then \
	    echo "cross: the aggregator for $(p) needs the C cross compiler $$cc, not found, and REQUIRE_E2E=1 (Debian: apt-get install $(AGG_PKGS_$(call arch_of,$(p))))" >&2; exit 1; \
	  else \
	    echo "!!! SKIPPING cross aggregator $(p): C cross compiler $$cc not found (Debian: apt-get install $(AGG_PKGS_$(call arch_of,$(p)))) !!!"; \
	  fi;)

# webtest drives the real UI in Debian's Chromium with playwright-core.
# Without node it skips loudly, unless REQUIRE_E2E=1 (then it fails);
# run.mjs does the same for a missing Chromium.
webtest: build
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  if [ "$$REQUIRE_E2E" = 1 ]; then echo "webtest: node/npm missing and REQUIRE_E2E=1" >&2; exit 1; fi; \
	  echo "!!! SKIPPING BROWSER TESTS: node/npm not installed (apt-get install nodejs npm chromium) !!!"; \
	  exit 0; \
	fi; \
	cd web/tests && npm ci --no-audit --no-fund --loglevel=error && node run.mjs

test: vet lint gotest cross webtest

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# fuzz: every fuzz target in the repository (found by their `func Fuzz`,
# named by `go test -list`), each for FUZZTIME, one after another (go test
# fuzzes one target per run). A failure stops it, its input saved under the
# package's testdata/fuzz/ for `go test` to replay.
FUZZTIME ?= 1m
fuzz:
	@set -e; \
	dirs=$$(grep -rlE --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.git '^func Fuzz[A-Z0-9_]' . | xargs -n1 dirname | sort -u); \
	if [ -z "$$dirs" ]; then echo "fuzz: no fuzz targets found" >&2; exit 1; fi; \
	for d in $$dirs; do \
	  for f in $$($(GO) test -list '^Fuzz' $$d | grep '^Fuzz'); do \
	    echo "== fuzz $$d $$f for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$d; \
	  done; \
	done

# load: builds the aggregator, starts it on a temp dir and a free port, and
# pushes LOAD_RATE snapshots/s from LOAD_HOSTS hosts for LOAD_DURATION, then
# reads every acknowledged snapshot back (lost must be 0); history on (the
# default) and --no-history alternating, each run on a fresh store, LOAD_ROUNDS
# times, then the totals and the on/off ratio. Each run first pushes LOAD_WARMUP
# from other hosts, not counted, so that the measured hosts (still new to it)
# meet a running aggregator, not a process just started. -timeline prints
# latency second by second. This is docs/performance.md's headline run.
LOAD_HOSTS    ?= 200
LOAD_RATE     ?= 2000
LOAD_DURATION ?= 30s
LOAD_ROUNDS   ?= 2
LOAD_WARMUP   ?= 3s
load:
	$(GO) run ./tools/loadgen -spawn -compare-history -rounds $(LOAD_ROUNDS) -hosts $(LOAD_HOSTS) -rate $(LOAD_RATE) -duration $(LOAD_DURATION) -warmup $(LOAD_WARMUP) -timeline

# release: VERSION=x.y.z is required. Builds the exporter for every CROSS
# platform and the aggregator (cgo) for this machine's and, with the C cross
# compilers, the other AGG_PLATFORMS (it fails at once, naming the packages,
# when one is missing: a release never quietly lacks a platform), all with LDFLAGS
# (the one place the build labels are set; the Dockerfiles take them as a
# build argument, see docker), then tools/release packs them into DIST:
# a tarball per binary and platform (binary, LICENSE, README.md, example
# config), a .deb per linux binary (nfpm: /usr/bin, the deploy/systemd unit,
# /etc/default conffile) and SHA256SUMS.
DIST   ?= dist
release:
	@case "$(origin VERSION)" in command*|environment*) ;; \
	  *) echo "release: give the version: make release VERSION=x.y.z" >&2; exit 2;; esac
	@echo '$(VERSION)' | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$$' || \
	  { echo "release: VERSION=$(VERSION): want x.y.z or x.y.z-pre (tools/release checks the same)" >&2; exit 2; }
	@$(foreach p,$(AGG_CROSS),command -v '$(call agg_cc,$(p))' >/dev/null || \
	  { echo "release: the aggregator for $(p) is cgo (SQLite) and needs the C cross compiler $(call agg_cc,$(p)), not found: apt-get install $(AGG_PKGS_$(call arch_of,$(p))) (Debian), or set AGG_CC_$(call arch_of,$(p))" >&2; exit 1; };)
	rm -rf $(DIST)/build $(DIST)/*.tar.gz $(DIST)/*.deb $(DIST)/SHA256SUMS
	@set -e; for p in $(CROSS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ "$$os" != windows ] || ext=.exe; \
	  echo "release exporter $$os/$$arch"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
	    -o $(DIST)/build/$$os-$$arch/procscope-exporter$$ext ./exporter; \
	done
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/build/$(NATIVE)/procscope-aggregator ./aggregator
	set -e; $(foreach p,$(AGG_CROSS),CC='$(call agg_cc,$(p))' CGO_ENABLED=1 GOOS=$(call os_of,$(p)) GOARCH=$(call arch_of,$(p)) \
	  $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/build/$(call os_of,$(p))-$(call arch_of,$(p))/procscope-aggregator ./aggregator;)
	$(GO) run ./tools/release -version '$(VERSION)' -build $(DIST)/build -out $(DIST)

# docker: both images, with the same LDFLAGS as every other build.
docker:
	docker build -f deploy/exporter.Dockerfile --build-arg LDFLAGS='$(LDFLAGS)' -t ghcr.io/procscope/procscope-exporter:$(VERSION) .
	docker build -f deploy/aggregator.Dockerfile --build-arg LDFLAGS='$(LDFLAGS)' -t ghcr.io/procscope/procscope-aggregator:$(VERSION) .

# soak: the real aggregator for SOAK_DURATION at SOAK_RATE snapshots/s from
# SOAK_HOSTS hosts, retention shortened so that pruning runs, its RSS, Go
# heap, goroutines, open fds, database and history size sampled every 10s
# into docs/soak.csv and drawn into docs/soak.png; exits 1 unless every curve
# is flat after the warm-up (tools/soak). Not part of test: it takes an hour.
SOAK_DURATION ?= 1h
SOAK_RATE     ?= 500
SOAK_HOSTS    ?= 200
SOAK_WARMUP   ?= 10m
soak:
	$(GO) run ./tools/soak -duration $(SOAK_DURATION) -rate $(SOAK_RATE) -hosts $(SOAK_HOSTS) -warmup $(SOAK_WARMUP) \
	  -csv docs/soak.csv -png docs/soak.png

# load-postgres: the same workload against SQLite with one aggregator,
# PostgreSQL with one and with two aggregators (hosts split between them),
# --no-history, on a PostgreSQL cluster of its own (fsync on, loopback, free
# port): snapshots/s, latency, aggregator and PostgreSQL CPU per snapshot,
# bytes per snapshot in PostgreSQL (docs/performance.md, docs/scaling.md).
# One round of 20 s each by default, so that all three set-ups run in one
# invocation of about five minutes (the same-run baseline); printed as one table.
LOADPG_ROUNDS   ?= 1
LOADPG_DURATION ?= 20s
load-postgres:
	$(GO) run ./tools/loadgen -spawn -compare-postgres -rounds $(LOADPG_ROUNDS) -hosts $(LOAD_HOSTS) -rate $(LOAD_RATE) -duration $(LOADPG_DURATION) -warmup $(LOAD_WARMUP)

clean:
	rm -rf $(BIN)
