package proc

import (
	"errors"

	"github.com/moby/sys/mountinfo"
)

// ErrNoProcess is returned (wrapped) when the pid or tid does not exist (any more).
var ErrNoProcess = errors.New("no such process")

// ErrUnreadable is returned (wrapped) when the file exists but cannot be read
// or is empty, e.g. mountinfo and ns links of a task already in do_exit.
var ErrUnreadable = errors.New("unreadable proc entry")

// PFExiting is the PF_EXITING bit of the flags field (9) of /proc/PID/stat.
const PFExiting = 0x00000004

// FS reads a proc filesystem rooted at a directory.
type FS struct{ root string }

// NewFS returns an FS rooted at root; "" means /proc.
func NewFS(root string) FS { panic("unimplemented") }

// Root is the directory the FS reads.
func (fs FS) Root() string { return fs.root }

// Stat is /proc/PID/stat, the fields fuseguard uses.
type Stat struct {
	PID       int
	Comm      string
	State     string // one letter: R S D Z T t X I …
	PPID      int
	Flags     uint   // field 9, PF_* flags
	StartTime uint64 // field 22, clock ticks since boot
}

// Exiting reports PF_EXITING.
func (s Stat) Exiting() bool { return s.Flags&PFExiting != 0 }

// Status is /proc/PID/status, the fields fuseguard uses.
type Status struct {
	Name    string
	State   string // one letter
	Tgid    int
	NSpid   []int // outermost first
	Threads int
	SigPnd  uint64
	ShdPnd  uint64
	SigBlk  uint64
}

// Frame is one line of /proc/PID/stack: "[<0>] fuse_flush+0x155/0x190 [fuse]".
type Frame struct {
	Function string
	Offset   uint64
	Size     uint64
	Module   string // "" for built-in code
}

// Stack is a kernel stack, innermost frame first.
type Stack []Frame

// Syscall is /proc/TID/syscall.
type Syscall struct {
	Running bool      // "running": the task is on a CPU, no syscall known
	Number  int       // -1 when blocked outside a syscall
	Args    [6]uint64 // valid when Number >= 0
	SP, PC  uint64
}

// FDInfo is /proc/PID/fdinfo/N.
type FDInfo struct {
	Pos   int64
	Flags uint64
	MntID int
	// FUSEConnection is set on a /dev/fuse fd (Linux ≥ 6.x prints "fuse_connection:").
	FUSEConnection    uint32
	HasFUSEConnection bool
}

var _ = mountinfo.Info{}

// ---- stubs below: replaced by the implementation ----

// Stat reads /proc/PID/stat.
func (fs FS) Stat(pid int) (Stat, error) { panic("unimplemented") }

// Status reads /proc/PID/status.
func (fs FS) Status(pid int) (Status, error) { panic("unimplemented") }

// Stack reads /proc/TID/stack.
func (fs FS) Stack(tid int) (Stack, error) { panic("unimplemented") }

// Wchan reads /proc/TID/wchan ("" or "0" means none).
func (fs FS) Wchan(tid int) (string, error) { panic("unimplemented") }

// Syscall reads /proc/TID/syscall.
func (fs FS) Syscall(tid int) (Syscall, error) { panic("unimplemented") }

// FDInfo reads /proc/PID/fdinfo/FD.
func (fs FS) FDInfo(pid, fd int) (FDInfo, error) { panic("unimplemented") }

// Tasks lists the thread ids of a thread group (/proc/PID/task).
func (fs FS) Tasks(pid int) ([]int, error) { panic("unimplemented") }

// PIDs lists every thread-group id in the FS.
func (fs FS) PIDs() ([]int, error) { panic("unimplemented") }

// NamespaceInode reads the inode of /proc/PID/ns/KIND ("pid", "mnt", …).
func (fs FS) NamespaceInode(pid int, kind string) (uint64, error) { panic("unimplemented") }

// Cgroup returns the process's cgroup path: the cgroup v2 ("0::") entry when
// present, else the first v1 entry's path.
func (fs FS) Cgroup(pid int) (string, error) { panic("unimplemented") }

// MountInfo reads /proc/PID/mountinfo.
func (fs FS) MountInfo(pid int) ([]*mountinfo.Info, error) { panic("unimplemented") }

// ParseStat, ParseStatus, ParseStack, ParseSyscall and ParseFDInfo parse one
// file's bytes.
func ParseStat(b []byte) (Stat, error)       { panic("unimplemented") }
func ParseStatus(b []byte) (Status, error)   { panic("unimplemented") }
func ParseStack(b []byte) (Stack, error)     { panic("unimplemented") }
func ParseSyscall(b []byte) (Syscall, error) { panic("unimplemented") }
func ParseFDInfo(b []byte) (FDInfo, error)   { panic("unimplemented") }

// Has reports whether any frame is the function fn.
func (s Stack) Has(fn string) bool { panic("unimplemented") }

// FD returns the file descriptor the syscall operates on, for the syscalls
// whose argument names one fd that can sit on a FUSE file (read, pread64,
// readv, write, …, fsync, fdatasync, getdents64, ioctl, fstat, lseek, ftruncate,
// fallocate, flock, fcntl, copy_file_range, splice, sendfile's in_fd …).
func (s Syscall) FD() (int, bool) { panic("unimplemented") }
