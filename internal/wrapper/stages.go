package wrapper

import "github.com/fuseguard/fuseguard/internal/oci"

// injectedStages are the hooks the wrapper adds at create: each is one
// process per container, on its start or removal path, so only those that
// protect something.
//
// createRuntime records init (pid, start time, namespaces, cgroup) and the
// FUSE mounts the runtime made, such as a host FUSE mount bound in, before
// the container runs any code of its own: the record is there for a kill
// at any later moment, and the hook starts the node watcher.
//
// poststart is not injected: init's pid, start time and namespaces are the
// ones createRuntime recorded (runc init execs the user process in place),
// and the only thing it could add is a FUSE mount the container made in
// the instant since it started, which the watcher follows anyway (poll on
// init's mountinfo, like every mount made later).
//
// poststop is not injected: the wrapper itself forgets the record at the
// runtime's delete once the recorded init is gone (Wrapper.forget), which
// is when poststop ran, and Docker runs that delete on the path of `docker
// kill` and `docker run --rm`.
//
// The hooks.d files for podman and CRI-O (oci.Stages) are not changed here:
// there no wrapper runs.
var injectedStages = []oci.Stage{oci.CreateRuntime}
