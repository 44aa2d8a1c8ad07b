package wrapper

import "github.com/fuseguard/fuseguard/internal/oci"

// injectedStages are the hooks the wrapper adds at create: one process
// each per container, on its start and removal path, so only those that
// protect something.
//
//   - createRuntime records init (pid, start time, namespaces, cgroup) and
//     the FUSE mounts the runtime made, such as a host FUSE mount bound
//     in, before the container runs any code of its own: the record early
//     enough for a kill at any later moment, and it starts the node watcher.
//   - poststop forgets the record once the runtime deleted the container
//     (it runs only then), so a record never outlives its container by
//     more than the watcher's next look.
//
// poststart is not injected: init's pid, start time and namespaces are
// the ones createRuntime recorded (runc init execs the user process in
// place), and the only thing it could add is a FUSE mount the container
// made in the instant since it started, which the watcher follows anyway
// (poll on init's mountinfo, like every mount made later). The hooks.d
// files for podman and CRI-O (oci.Stages) are not changed here.
var injectedStages = []oci.Stage{oci.CreateRuntime, oci.Poststop}
