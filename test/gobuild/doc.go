// Package gobuild builds the module's commands for tests that run them as
// separate processes: each package once per test process, statically
// (CGO_ENABLED=0, so the binary also runs in a busybox image), at a fixed
// path per module root and package, so test runs do not pile up binaries.
package gobuild
