package telemetry

import (
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// InstrumentationName names fuseguard's tracer.
const InstrumentationName = "github.com/fuseguard/fuseguard"

// fuseguard's own span attributes.
const (
	KeyConn        = attribute.Key("fuseguard.conn")         // FUSE connection id (fusectl directory)
	KeyFSType      = attribute.Key("fuseguard.fs_type")      // "fuse", "fuse.sshfs", "fuseblk"
	KeyMountPoint  = attribute.Key("fuseguard.mount_point")  // as seen in the container's mount namespace
	KeyWaiting     = attribute.Key("fuseguard.waiting")      // requests waiting on the connection
	KeyOwned       = attribute.Key("fuseguard.owned")        // the connection is the container's alone
	KeyOutcome     = attribute.Key("fuseguard.outcome")      // e.g. "recovered"
	KeyStuckTID    = attribute.Key("fuseguard.stuck_tid")    // a task in uninterruptible FUSE wait
	KeyKernelFrame = attribute.Key("fuseguard.kernel_frame") // that task's top kernel stack frame
	KeyStage       = attribute.Key("fuseguard.stage")        // hook stage, kill step
)

// Semantic-convention attributes, from the semconv version the SDK uses.
const (
	KeyContainerID = semconv.ContainerIDKey
	KeyProcessPID  = semconv.ProcessPIDKey
)

// ContainerID is the container.id attribute.
func ContainerID(id string) attribute.KeyValue { return semconv.ContainerID(id) }

// ProcessPID is the process.pid attribute.
func ProcessPID(pid int) attribute.KeyValue { return semconv.ProcessPID(pid) }

// Conn is the fuseguard.conn attribute.
func Conn(id uint32) attribute.KeyValue { return KeyConn.Int64(int64(id)) }

// FSType is the fuseguard.fs_type attribute.
func FSType(t string) attribute.KeyValue { return KeyFSType.String(t) }

// MountPoint is the fuseguard.mount_point attribute.
func MountPoint(p string) attribute.KeyValue { return KeyMountPoint.String(p) }

// Waiting is the fuseguard.waiting attribute.
func Waiting(n int) attribute.KeyValue { return KeyWaiting.Int(n) }

// Owned is the fuseguard.owned attribute.
func Owned(owned bool) attribute.KeyValue { return KeyOwned.Bool(owned) }

// Outcome is the fuseguard.outcome attribute.
func Outcome(o string) attribute.KeyValue { return KeyOutcome.String(o) }

// StuckTID is the fuseguard.stuck_tid attribute.
func StuckTID(tid int) attribute.KeyValue { return KeyStuckTID.Int(tid) }

// KernelFrame is the fuseguard.kernel_frame attribute.
func KernelFrame(f string) attribute.KeyValue { return KeyKernelFrame.String(f) }

// Stage is the fuseguard.stage attribute.
func Stage(s string) attribute.KeyValue { return KeyStage.String(s) }

// The attributes of one span or another: the kill's and the executor's
// (package killer, executor), the watcher's detection, rescue and refresh,
// the hook's record and the runtime wrapper's.
const (
	KeyInitInZap           = attribute.Key("fuseguard.init_in_zap")          // a thread of init waits in zap_pid_ns_processes
	KeyStuckTasks          = attribute.Key("fuseguard.stuck_tasks")          // tasks of the container in D
	KeyVerifyOnly          = attribute.Key("fuseguard.verify_only")          // the kill only verifies (the caller signalled)
	KeyConnGen             = attribute.Key("fuseguard.conn_gen")             // the connection instance aborted
	KeyReason              = attribute.Key("fuseguard.reason")               // why the connection was chosen
	KeyDryRun              = attribute.Key("fuseguard.dry_run")              // nothing is aborted
	KeyDedicated           = attribute.Key("fuseguard.dedicated")            // shared with the host, but the pod's own
	KeyExited              = attribute.Key("fuseguard.exited")               // init exited within the wait
	KeyAborted             = attribute.Key("fuseguard.aborted")              // connections aborted
	KeyRecordSource        = attribute.Key("fuseguard.record")               // where the executor's record came from
	KeyRefreshReason       = attribute.Key("fuseguard.refresh_reason")       // why the watcher re-read a container
	KeyFUSEMounts          = attribute.Key("fuseguard.fuse_mounts")          // FUSE mounts in the container's table
	KeyAdded               = attribute.Key("fuseguard.added")                // connections new to the record
	KeyExitingMS           = attribute.Key("fuseguard.exiting_ms")           // how long init has been exiting
	KeyRecordedConnections = attribute.Key("fuseguard.recorded_connections") // connections in the record
	KeyAttempt             = attribute.Key("fuseguard.attempt")              // the watcher's rescue attempt, from 1
	KeyRuntimeExitCode     = attribute.Key("fuseguard.runtime.exit_code")    // the real runtime's exit code
	KeyForceDelete         = attribute.Key("fuseguard.force_delete")         // the wrapper's delete --force
	KeyConnections         = attribute.Key("fuseguard.connections")          // connections in the saved record
	KeyOwnedConnections    = attribute.Key("fuseguard.owned_connections")    // of those, the container's own
	KeyGraceMS             = attribute.Key("executor.grace_ms")              // Stop's grace period
	KeyExecutorExited      = attribute.Key("executor.exited")                // init exited within the grace
	KeyDockerInspects      = attribute.Key("docker.inspects")                // inspects until Docker confirmed
	KeyDockerStatus        = attribute.Key("docker.container.status")        // Docker's state of the container
)

// InitInZap is the fuseguard.init_in_zap attribute.
func InitInZap(b bool) attribute.KeyValue { return KeyInitInZap.Bool(b) }

// StuckTasks is the fuseguard.stuck_tasks attribute.
func StuckTasks(n int) attribute.KeyValue { return KeyStuckTasks.Int(n) }

// VerifyOnly is the fuseguard.verify_only attribute.
func VerifyOnly(b bool) attribute.KeyValue { return KeyVerifyOnly.Bool(b) }

// ConnGen is the fuseguard.conn_gen attribute.
func ConnGen(gen uint64) attribute.KeyValue { return KeyConnGen.Int64(int64(gen)) }

// Reason is the fuseguard.reason attribute.
func Reason(r string) attribute.KeyValue { return KeyReason.String(r) }

// Dedicated is the fuseguard.dedicated attribute.
func Dedicated(b bool) attribute.KeyValue { return KeyDedicated.Bool(b) }

// DryRun is the fuseguard.dry_run attribute.
func DryRun(b bool) attribute.KeyValue { return KeyDryRun.Bool(b) }

// Exited is the fuseguard.exited attribute.
func Exited(b bool) attribute.KeyValue { return KeyExited.Bool(b) }

// Aborted is the fuseguard.aborted attribute.
func Aborted(n int) attribute.KeyValue { return KeyAborted.Int(n) }

// RecordSource is the fuseguard.record attribute: "store", "snapshot" or
// "none".
func RecordSource(s string) attribute.KeyValue { return KeyRecordSource.String(s) }

// RefreshReason is the fuseguard.refresh_reason attribute.
func RefreshReason(r string) attribute.KeyValue { return KeyRefreshReason.String(r) }

// FUSEMounts is the fuseguard.fuse_mounts attribute.
func FUSEMounts(n int) attribute.KeyValue { return KeyFUSEMounts.Int(n) }

// Added is the fuseguard.added attribute.
func Added(n int) attribute.KeyValue { return KeyAdded.Int(n) }

// ExitingFor is the fuseguard.exiting_ms attribute, in milliseconds.
func ExitingFor(d time.Duration) attribute.KeyValue { return KeyExitingMS.Int64(d.Milliseconds()) }

// RecordedConnections is the fuseguard.recorded_connections attribute.
func RecordedConnections(n int) attribute.KeyValue { return KeyRecordedConnections.Int(n) }

// Attempt is the fuseguard.attempt attribute.
func Attempt(n int) attribute.KeyValue { return KeyAttempt.Int(n) }

// RuntimeExitCode is the fuseguard.runtime.exit_code attribute.
func RuntimeExitCode(code int) attribute.KeyValue { return KeyRuntimeExitCode.Int(code) }

// ForceDelete is the fuseguard.force_delete attribute.
func ForceDelete(b bool) attribute.KeyValue { return KeyForceDelete.Bool(b) }

// Connections is the fuseguard.connections attribute.
func Connections(n int) attribute.KeyValue { return KeyConnections.Int(n) }

// OwnedConnections is the fuseguard.owned_connections attribute.
func OwnedConnections(n int) attribute.KeyValue { return KeyOwnedConnections.Int(n) }

// Grace is the executor.grace_ms attribute, in milliseconds.
func Grace(d time.Duration) attribute.KeyValue { return KeyGraceMS.Int64(d.Milliseconds()) }

// ExecutorExited is the executor.exited attribute.
func ExecutorExited(b bool) attribute.KeyValue { return KeyExecutorExited.Bool(b) }

// DockerInspects is the docker.inspects attribute.
func DockerInspects(n int) attribute.KeyValue { return KeyDockerInspects.Int(n) }

// DockerStatus is the docker.container.status attribute.
func DockerStatus(s string) attribute.KeyValue { return KeyDockerStatus.String(s) }
