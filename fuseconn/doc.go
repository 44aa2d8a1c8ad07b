// Package fuseconn knows FUSE connections: which FUSE mounts a process
// sees, which connection each belongs to, whether the connection is owned by
// a container or shared with the host, how many requests wait on it, and how
// to abort it through fusectl. Package record keeps, per container, the
// connections seen here while it runs, to be read when it will not die.
//
// The design it implements (scenarios W1–W7, the rules, the threat model)
// is docs/design.md in the repository; docs/architecture.md shows where the
// package sits.
package fuseconn
