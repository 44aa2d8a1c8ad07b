# containerd 2.x and crictl for the CRI end-to-end test (test/cri), pinned by
# tools/containerd/go.mod (Debian ships containerd 1.6). Include from the top
# Makefile:  include tools/containerd.mk
#
#   make containerd-tools   build bin/containerd, bin/containerd-shim-runc-v2,
#                           bin/ctr and bin/crictl
#
# Built without cgo, like containerd's own static release: the btrfs snapshotter
# (cgo, btrfs headers) is left out by the no_btrfs tag; the test uses overlayfs
# or native.

CONTAINERD_TOOLS_TAGS ?= no_btrfs
CONTAINERD       ?= bin/containerd
CONTAINERD_SHIM  ?= bin/containerd-shim-runc-v2
CTR              ?= bin/ctr
CRICTL           ?= bin/crictl
CONTAINERD_TOOLS := $(CONTAINERD) $(CONTAINERD_SHIM) $(CTR) $(CRICTL)

.PHONY: containerd-tools
containerd-tools: $(CONTAINERD_TOOLS)

$(CONTAINERD): tools/containerd/go.mod tools/containerd/go.sum
	CGO_ENABLED=0 go -C tools/containerd build -tags '$(CONTAINERD_TOOLS_TAGS)' -o $(abspath $@) github.com/containerd/containerd/v2/cmd/containerd

$(CONTAINERD_SHIM): tools/containerd/go.mod tools/containerd/go.sum
	CGO_ENABLED=0 go -C tools/containerd build -tags '$(CONTAINERD_TOOLS_TAGS)' -o $(abspath $@) github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2

$(CTR): tools/containerd/go.mod tools/containerd/go.sum
	CGO_ENABLED=0 go -C tools/containerd build -tags '$(CONTAINERD_TOOLS_TAGS)' -o $(abspath $@) github.com/containerd/containerd/v2/cmd/ctr

$(CRICTL): tools/containerd/go.mod tools/containerd/go.sum
	CGO_ENABLED=0 go -C tools/containerd build -o $(abspath $@) sigs.k8s.io/cri-tools/cmd/crictl
