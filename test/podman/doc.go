// Package podman runs a private podman for tests: its own root, runroot,
// tmpdir and vfs storage below a temporary directory, no registry (images
// are imported from a busybox-static root file system), no network, and a
// hooks directory holding fuseguard's shipped hooks.d files rewritten for
// the test's binary and state directory. Every podman command runs with an
// empty environment, so nothing of the test's reaches podman, conmon, the
// runtime or the hooks. Everything is torn down at cleanup, bounded: the
// test's own wedged FUSE connections aborted, containers removed, leftover
// processes killed, mounts detached, the directory removed.
package podman
