# fuseguard — see README.md. Targets that touch the kernel need root and /dev/fuse.
GO        ?= go
PREFIX    ?= /usr/local
DESTDIR   ?=
BIN       := bin/fuseguard
# The runtime wrapper and the hooks it injects, run on every container's
# start, kill and removal: the lean build of cmd/fuseguard (cmd/fuseguard/lean.go).
RUNTIME_BIN := bin/fuseguard-runtime
LEAN_TAGS := fuseguard_lean
# The demo is a command of its own: it carries a FUSE server (the wedging
# daemon of its container), which the node binary must not.
DEMO_BIN  := bin/fuseguard-demo
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X main.version=$(VERSION)
# Debian packages the tests need (also installed by .ci/run).
DEB_PKGS  := docker.io runc containerd podman busybox-static fuse3 ca-certificates libseccomp-dev gcc libc6-dev pkg-config sshfs openssh-server openssh-client bindfs lxcfs qemu-system-x86 xz-utils zstd strace
FUZZTIME  ?= 30s
TEST_TIMEOUT ?= 40m
# Debian suites whose kernels `make kernels` boots: 5.10, 6.1, 6.12.
KERNELS   ?= bullseye bookworm trixie

.PHONY: all build test test-all kernels unit fuzz bench demo lint deps install deb clean

all: build

include tools/jaeger.mk
include tools/runc.mk
include tools/containerd.mk
include tools/nfpm.mk

build: $(BIN) $(RUNTIME_BIN)

$(BIN): $(shell find . -name '*.go' -not -path './tools/*') go.mod go.sum
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $@ ./cmd/fuseguard

$(RUNTIME_BIN): $(shell find . -name '*.go' -not -path './tools/*') go.mod go.sum
	CGO_ENABLED=0 $(GO) build -tags $(LEAN_TAGS) -ldflags '$(LDFLAGS)' -o $@ ./cmd/fuseguard

$(DEMO_BIN): $(shell find . -name '*.go' -not -path './tools/*') go.mod go.sum
	CGO_ENABLED=0 $(GO) build -o $@ ./cmd/fuseguard-demo

# The packages whose code runs goroutines, tested under the race detector
# (about 3 min of the suite on 2 cores); the rest, mostly driving the
# fuseguard binary and dockerd from outside, runs without it.
MODULE    := github.com/fuseguard/fuseguard
RACE_PKGS := internal/watch executor internal/wrapper killer internal/telemetry internal/telemetry/otelsdk fuseconn record internal/obs internal/hook proc cmd/fuseguard internal/metrics internal/doctor
# Of those, the packages whose tests also assert latencies the code does
# not enforce as deadlines (the watcher's detection and rescue): they run a
# second time without the race detector, which widens those bounds.
TIMING_PKGS := internal/watch

# The whole suite against the real kernel (with a real Jaeger). Every fuzz
# target's seeds and committed regressions run as tests; fuzzing itself is
# `make fuzz`, before landing, so that CI is never where a crasher is found.
test: build $(JAEGER) $(RUNC13) $(CONTAINERD_TOOLS) deb
	$(GO) vet ./...
	$(GO) vet -tags $(LEAN_TAGS) ./cmd/fuseguard
	# -p 1: the id-reuse tests need the kernel to hand a freed FUSE
	# connection id to their own next mount; another package's mount
	# running at the same moment could take it first.
	$(GO) test -p 1 -count=1 -race -timeout $(TEST_TIMEOUT) $(addprefix ./,$(RACE_PKGS))
	$(GO) test -p 1 -count=1 -timeout $(TEST_TIMEOUT) $(filter-out $(addprefix $(MODULE)/,$(filter-out $(TIMING_PKGS),$(RACE_PKGS))),$(shell $(GO) list ./...))

# The kernel-sensitive tests on each of Debian's own kernels under qemu
# (TCG), as a table scenario × kernel; see test/kernels/run.sh. Needs
# qemu-system-x86 and busybox-static, and deb.debian.org for the kernels.
kernels: build
	GO=$(GO) test/kernels/run.sh $(KERNELS)

# Everything: the suite on this kernel, then the kernel matrix.
test-all:
	$(MAKE) test
	$(MAKE) kernels

# Only the pure, fast tests (no root needed).
unit:
	$(GO) test -short -count=1 ./...

# Every fuzz target for FUZZTIME (30 s) each: run it before landing a change
# to parsing or policy code; fix what it finds and commit the input under
# testdata/fuzz, where `make test` replays it.
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz-all.sh

# The figures: issue 14's table first (docker run, docker kill and
# killer.Kill against runc and kill(2), 12 alternated pairs, medians; the
# watcher through bench/watcher.sh) with the per-call breakdown of docker
# run and kill (strace -f), then the other benchmarks. Not a test: keep it
# out of `make test`.
bench: build $(JAEGER)
	@command -v strace >/dev/null || { echo 'make bench: strace missing (make deps)'; exit 1; }
	scripts/bench.sh

# The main job: a real wedged container rescued (root, /dev/fuse; no Docker, no Jaeger).
demo: $(DEMO_BIN)
	./$(DEMO_BIN)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PKGS)

# Installs bin/fuseguard, bin/fuseguard-runtime, the daemon.json
# snippets and the hooks.d files under $(DESTDIR)$(PREFIX) and $(DESTDIR)/etc.
install: build
	DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) deploy/install.sh $(BIN) $(RUNTIME_BIN)

# The Debian package dist/fuseguard_<version>_amd64.deb (nfpm, pinned in
# tools/nfpm): the files `make install` lays out, staged for /usr, plus the
# systemd unit and maintainer scripts that restart nothing (deploy/debian).
# TestDebPackage (test/e2e) installs it on the machine for real.
DEB_VERSION = $(shell scripts/deb-version.sh '$(VERSION)')
DEB_ROOT    := dist/root
DEB         = dist/fuseguard_$(DEB_VERSION)_amd64.deb

# The binary is linked afresh: bin/fuseguard is rebuilt only when a source
# changes, and may carry an older VERSION than the package's.
deb: $(NFPM)
	@test -n '$(DEB_VERSION)' || { echo 'make deb: no Debian version for VERSION=$(VERSION)'; exit 1; }
	rm -rf $(DEB_ROOT) dist/fuseguard dist/fuseguard-runtime dist/fuseguard_*_amd64.deb
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o dist/fuseguard ./cmd/fuseguard
	CGO_ENABLED=0 $(GO) build -tags $(LEAN_TAGS) -ldflags '$(LDFLAGS)' -o dist/fuseguard-runtime ./cmd/fuseguard
	DESTDIR=$(DEB_ROOT) PREFIX=/usr HOOKSDIR=/usr/share/containers/oci/hooks.d \
		EXAMPLESDIR=/usr/share/doc/fuseguard/examples UNITDIR=/usr/lib/systemd/system \
		deploy/install.sh dist/fuseguard dist/fuseguard-runtime
	FUSEGUARD_DEB_VERSION=$(DEB_VERSION) FUSEGUARD_DEB_ROOT=$(DEB_ROOT) \
		$(NFPM) package -p deb -f deploy/debian/nfpm.yaml -t $(DEB)
	@echo "built $(DEB)"

clean:
	rm -rf bin dist
