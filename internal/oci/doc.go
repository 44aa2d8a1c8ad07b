// Package oci is fuseguard's runtime-spec plumbing: the container State a
// runtime hands a hook on stdin, the hooks fuseguard injects into a bundle's
// config.json, the command line of runc that the runtime wrapper intercepts,
// and the hooks.d files that podman and CRI-O read instead.
//
// Everything here is pure logic on bytes and argv, except PatchBundle, which
// rewrites one file atomically. Whatever fuseguard does not understand (a
// newer spec's fields, another tool's hooks, runc flags it has no use for)
// passes through untouched.
package oci
