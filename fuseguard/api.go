package fuseguard

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/fuseguard/fuseguard/proc"
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
)

// DefaultFusectlDir is where fusectl is (or gets) mounted.
const DefaultFusectlDir = "/sys/fs/fuse/connections"

// ConnID is a FUSE connection id: the minor device number of the mount
// (mountinfo field 3), the directory name under fusectl.
type ConnID uint32

func (c ConnID) String() string { panic("unimplemented") }

// ParseConnID accepts only decimal digits (it becomes a path element).
func ParseConnID(s string) (ConnID, error) { panic("unimplemented") }

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

// IsFUSE reports whether a mountinfo fs type is FUSE: fuse, fuse.*, fuseblk.
func IsFUSE(fstype string) bool { panic("unimplemented") }

// FUSEMounts keeps the FUSE mounts of a parsed mount table.
func FUSEMounts(infos []*mountinfo.Info) []Mount { panic("unimplemented") }

// ParseFUSEMounts parses a mountinfo file and keeps its FUSE mounts.
func ParseFUSEMounts(r io.Reader) ([]Mount, error) { panic("unimplemented") }

// Connection is a FUSE mount classified against the host's mount table.
type Connection struct {
	Mount
	Owned bool `json:"owned"` // the connection is not in the host's mount table
}

// Classify returns one Connection per distinct connection id in container
// (first mount wins), owned when host has no mount with the same id.
func Classify(container, host []Mount) []Connection { panic("unimplemented") }

// HostMounts reads the host's FUSE mounts: /proc/1/mountinfo, falling back to
// /proc/self/mountinfo when pid 1's is unreadable.
func HostMounts(p proc.FS) ([]Mount, error) { panic("unimplemented") }

// Observe reads pid's FUSE mounts and classifies them against the host's.
func Observe(p proc.FS, pid int) ([]Connection, error) { panic("unimplemented") }

// Control reads and aborts FUSE connections through fusectl.
type Control struct{ Dir string }

// NewControl returns a Control on dir; "" means DefaultFusectlDir.
func NewControl(dir string) Control { panic("unimplemented") }

// Ensure mounts fusectl on Dir when it is not mounted there yet.
func (c Control) Ensure() error { panic("unimplemented") }

// List lists the live connection ids.
func (c Control) List() ([]ConnID, error) { panic("unimplemented") }

// Exists reports whether the connection is live.
func (c Control) Exists(id ConnID) bool { panic("unimplemented") }

// Waiting reads the number of requests waiting on a connection.
func (c Control) Waiting(id ConnID) (int, error) { panic("unimplemented") }

// Abort aborts a connection and verifies, within ctx, that it took effect
// (waiting drops to 0 or the connection is gone). Aborting an aborted or
// vanished connection is not an error for an id that existed; an id that
// never existed gives ErrNoSuchConnection.
func (c Control) Abort(ctx context.Context, id ConnID) error { panic("unimplemented") }

// RecordVersion is the version of the record's JSON this build writes.
const RecordVersion = 1

// Record is what fuseguard knows of a container, written while it runs.
type Record struct {
	Version       int                  `json:"version"`
	ID            string               `json:"id"`
	InitPID       int                  `json:"init_pid"`
	InitStartTime uint64               `json:"init_start_time"`
	PidNS         uint64               `json:"pid_ns,omitempty"`
	MntNS         uint64               `json:"mnt_ns,omitempty"`
	Cgroup        string               `json:"cgroup,omitempty"`
	Bundle        string               `json:"bundle,omitempty"`
	TraceParent   string               `json:"traceparent,omitempty"`
	Connections   []RecordedConnection `json:"connections"`
	Created       time.Time            `json:"created"`
	Updated       time.Time            `json:"updated"`
}

// RecordedConnection is a connection seen in the container, with when.
type RecordedConnection struct {
	Connection
	FirstSeen time.Time `json:"first_seen"`
}

// NewRecord observes a live init: start time, namespaces, cgroup, FUSE
// connections.
func NewRecord(p proc.FS, id string, pid int, now time.Time) (*Record, error) {
	panic("unimplemented")
}

// Merge adds connections not yet recorded (never forgets one) and reports
// how many were new.
func (r *Record) Merge(conns []Connection, now time.Time) int { panic("unimplemented") }

// Lookup returns the recorded connection with this id.
func (r *Record) Lookup(id ConnID) (RecordedConnection, bool) { panic("unimplemented") }

// DefaultStateDir holds the records; EnvStateDir overrides it.
const (
	DefaultStateDir = "/run/fuseguard"
	EnvStateDir     = "FUSEGUARD_STATE_DIR"
)

// ValidateID checks a container id before it becomes a file name.
func ValidateID(id string) error { panic("unimplemented") }

// Store keeps records as <dir>/<id>.json (0600, dir 0700), written atomically.
type Store struct{ Dir string }

// NewStore returns a Store on dir; "" means $FUSEGUARD_STATE_DIR or DefaultStateDir.
func NewStore(dir string) Store { panic("unimplemented") }

func (s Store) Save(r *Record) error            { panic("unimplemented") }
func (s Store) Load(id string) (*Record, error) { panic("unimplemented") }
func (s Store) Remove(id string) error          { panic("unimplemented") }
func (s Store) List() ([]*Record, error)        { panic("unimplemented") }

// FindByPID returns the record whose init is pid (and start time, when non-zero).
func (s Store) FindByPID(pid int, startTime uint64) (*Record, error) { panic("unimplemented") }
