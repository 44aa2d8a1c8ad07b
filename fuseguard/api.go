package fuseguard

import (
	"errors"
	"time"
)

// Sentinel errors callers branch on (always wrapped with detail).
var (
	ErrInvalidConnID      = errors.New("invalid FUSE connection id")
	ErrNoSuchConnection   = errors.New("no such FUSE connection")
	ErrAbortIneffective   = errors.New("FUSE connection abort did not take effect")
	ErrFusectlUnavailable = errors.New("fusectl unavailable")
	ErrInvalidID          = errors.New("invalid container id")
	ErrNoRecord           = errors.New("no record for container")
	ErrRecordVersion      = errors.New("unsupported record version")
	// ErrConnectionReplaced: the id now names another connection instance
	// than the one expected (ids are reused), or the expected instance is
	// not known.
	ErrConnectionReplaced = errors.New("FUSE connection replaced")
)

// DefaultFusectlDir is where fusectl is (or gets) mounted.
const DefaultFusectlDir = "/sys/fs/fuse/connections"

// ConnID is a FUSE connection id: the minor device number of the mount
// (mountinfo field 3), the directory name under fusectl.
type ConnID uint32

// Mount is one FUSE mount from a mount table.
type Mount struct {
	MountID    int    `json:"mount_id"`
	Major      int    `json:"major"`
	Minor      int    `json:"minor"`
	Conn       ConnID `json:"conn"`
	MountPoint string `json:"mount_point"`
	FSType     string `json:"fs_type"` // "fuse", "fuse.sshfs", "fuseblk"
	Subtype    string `json:"subtype,omitempty"`
	Source     string `json:"source"`
}

// Connection is a FUSE mount classified against the host's mount table.
type Connection struct {
	Mount
	Owned bool `json:"owned"` // the connection is not in the host's mount table
	// Gen is the instance the mount was proven to be when it was read
	// (see Control.Stamp); 0 when unproven, as in records of version 1.
	Gen Generation `json:"gen,omitempty"`
	// OwnershipUnknown says why ownership could not be established (the
	// host's mount table was unreadable); such a connection is not owned.
	OwnershipUnknown string `json:"ownership_unknown,omitempty"`
}

// Ref is the connection instance c names.
func (c Connection) Ref() ConnRef { return ConnRef{ID: c.Conn, Gen: c.Gen} }

// Control reads and aborts FUSE connections through fusectl.
type Control struct{ Dir string } // the zero Control uses DefaultFusectlDir

// RecordVersion is the version of the record's JSON this build writes.
// Version 2 added each connection's generation; a version 1 record still
// loads, its connections unproven (generation 0).
const RecordVersion = 2

// minRecordVersion is the oldest record version this build loads.
const minRecordVersion = 1

// Record is what fuseguard knows of a container, written while it runs.
type Record struct {
	Version       int    `json:"version"`
	ID            string `json:"id"`
	InitPID       int    `json:"init_pid"`
	InitStartTime uint64 `json:"init_start_time"`
	PidNS         uint64 `json:"pid_ns,omitempty"`
	MntNS         uint64 `json:"mnt_ns,omitempty"`
	Cgroup        string `json:"cgroup,omitempty"`
	Bundle        string `json:"bundle,omitempty"`
	TraceParent   string `json:"traceparent,omitempty"`
	// PodUID is the Kubernetes pod the container belongs to, from its OCI
	// annotations at start (validated: PodUIDFromAnnotations); "" when
	// none names one. Only the dedicated class uses it.
	PodUID      string               `json:"pod_uid,omitempty"`
	Connections []RecordedConnection `json:"connections"`
	Created     time.Time            `json:"created"`
	Updated     time.Time            `json:"updated"`
}

// RecordedConnection is a connection seen in the container, with when.
type RecordedConnection struct {
	Connection
	FirstSeen time.Time `json:"first_seen"`
}

// DefaultStateDir holds the records; EnvStateDir overrides it.
const (
	DefaultStateDir = "/run/fuseguard"
	EnvStateDir     = "FUSEGUARD_STATE_DIR"
)

// Store keeps records as <dir>/<id>.json (0600, dir 0700), written atomically.
type Store struct{ Dir string }
