package record

import (
	"errors"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
)

// Sentinel errors callers branch on (always wrapped with detail).
var (
	ErrInvalidID     = errors.New("invalid container id")
	ErrNoRecord      = errors.New("no record for container")
	ErrRecordVersion = errors.New("unsupported record version")
)

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
	// annotations at start (validated: fuseconn.PodUIDFromAnnotations); ""
	// when none names one. Only the dedicated class uses it.
	PodUID      string               `json:"pod_uid,omitempty"`
	Connections []RecordedConnection `json:"connections"`
	Created     time.Time            `json:"created"`
	Updated     time.Time            `json:"updated"`
}

// RecordedConnection is a connection seen in the container, with when.
type RecordedConnection struct {
	fuseconn.Connection
	FirstSeen time.Time `json:"first_seen"`
}

// DefaultStateDir holds the records; EnvStateDir overrides it.
const (
	DefaultStateDir = "/run/fuseguard"
	EnvStateDir     = "FUSEGUARD_STATE_DIR"
)

// Store keeps records as <dir>/<id>.json (0600, dir 0700), written atomically.
type Store struct{ Dir string }
