package telemetry

import (
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

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
