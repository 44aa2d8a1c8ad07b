# runc ≥ 1.2 for the wrapper's end-to-end tests, pinned by tools/runc/go.mod
# (Debian ships runc 1.1). Include from the top Makefile:  include tools/runc.mk
#
#   make bin/runc-1.3   build it (cgo: runc's nsenter is C; seccomp needs libseccomp-dev)

RUNC13 ?= bin/runc-1.3

$(RUNC13): tools/runc/go.mod tools/runc/go.sum
	CGO_ENABLED=1 go -C tools/runc build -tags seccomp -o $(abspath $(RUNC13)) github.com/opencontainers/runc
