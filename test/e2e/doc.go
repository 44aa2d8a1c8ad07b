// Package e2e holds fuseguard's end-to-end tests of the hook and the
// runtime wrapper against real runtimes: Debian's runc on a bundle built
// from busybox-static, and a private dockerd (package test/dockerd) with
// the wrapper registered in its daemon.json. It also checks the deploy/
// files and the install layout, and benchmarks the wrapper against plain
// runc. The package has no code of its own; everything is in its tests.
package e2e
