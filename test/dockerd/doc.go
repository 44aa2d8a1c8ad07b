// Package dockerd runs a private, real dockerd for tests and builds images
// for it without a registry.
//
// Start launches Debian's dockerd (docker.io 20.10) with its own
// daemon.json: a temporary data-root and exec-root, a unix socket of its
// own, vfs storage, no iptables, no bridge, and a managed containerd whose
// state also lives under those directories, so that several test packages
// can each run a daemon at the same time without touching the host's
// Docker. ImportImage turns busybox-static plus chosen host files into an
// image with `docker import`.
//
// Tests create containers that wedge in FUSE on purpose, so teardown never
// trusts the daemon to finish: every step has a deadline, the FUSE
// connections that the containers own are aborted before the containers
// are removed, and whatever survives (dockerd, containerd, shims, mounts)
// is killed or lazily unmounted.
package dockerd
