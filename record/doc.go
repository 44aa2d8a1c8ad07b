// Package record keeps what fuseguard knows of a container while it runs —
// its init, namespaces and the FUSE connections seen in it (package
// fuseconn) — as one JSON file per container in a private state directory,
// read when the container will not die.
package record
