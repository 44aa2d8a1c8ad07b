// Package cri runs a private, real containerd 2.x for tests and drives it
// through the CRI API with crictl, as kubelet would.
//
// Start launches bin/containerd (built from the pinned tools module,
// tools/containerd) with a config of its own: a temporary root, state,
// socket and shim socket directory, the native snapshotter, no NRI, and one
// CRI runtime handler per entry of Options.Runtimes, each an
// io.containerd.runc.v2 runtime whose runc options name the handler's
// binary (BinaryName, or an imported file's, such as deploy/containerd's
// snippet) and a private runc root. containerd 2.4 also imports
// /etc/containerd/conf.d/*.toml whatever the config says: a host file
// there applies to the test's daemon too. ImportImage builds an image
// from busybox-static and chosen host files and imports it with ctr (no
// registry is reachable); the first one imported is also the pod sandbox
// ("pause") image.
//
// Tests wedge containers in FUSE on purpose, so teardown never trusts
// containerd to finish: every step has a deadline, the FUSE connections the
// containers own are aborted first, and whatever survives (containerd,
// shims, their descendants, mounts) is killed or lazily unmounted.
package cri
