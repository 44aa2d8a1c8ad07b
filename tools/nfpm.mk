# nfpm for the Debian package, pinned by tools/nfpm/go.mod. Include from the
# top Makefile:  include tools/nfpm.mk
#
#   make bin/nfpm   build it

NFPM ?= bin/nfpm

$(NFPM): tools/nfpm/go.mod tools/nfpm/go.sum
	CGO_ENABLED=0 go -C tools/nfpm build -o $(abspath $(NFPM)) github.com/goreleaser/nfpm/v2/cmd/nfpm
