// Package fuseguard knows FUSE connections: which FUSE mounts a process
// sees, which connection each belongs to, whether the connection is owned by
// a container or shared with the host, how many requests wait on it, how to
// abort it through fusectl, and the per-container record of them that is
// written while the container runs and read when it will not die.
package fuseguard
