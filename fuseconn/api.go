package fuseconn

import (
	"errors"
)

// Sentinel errors callers branch on (always wrapped with detail).
var (
	ErrInvalidConnID      = errors.New("invalid FUSE connection id")
	ErrNoSuchConnection   = errors.New("no such FUSE connection")
	ErrAbortIneffective   = errors.New("FUSE connection abort did not take effect")
	ErrFusectlUnavailable = errors.New("fusectl unavailable")
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
