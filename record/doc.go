// Package record keeps what fuseguard knows of a container while it runs —
// its init, namespaces and the FUSE connections seen in it (package
// fuseconn) — as one JSON file per container in a private state directory,
// read when the container will not die.
//
// The design it implements (scenarios W1–W7, the rules, the threat model)
// is docs/design.md in the repository; docs/architecture.md shows where the
// package sits.
package record
