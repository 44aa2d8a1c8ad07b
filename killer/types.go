package killer

import (
	"errors"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// Sentinel errors.
var (
	// ErrStaleTarget: the pid now belongs to another process (start time differs).
	ErrStaleTarget = errors.New("stale target: pid was reused")
	// ErrNoTarget: no process with that pid.
	ErrNoTarget = errors.New("no such process")
	// ErrStillStuck: the target did not exit even after the rescue.
	ErrStillStuck = errors.New("target still stuck")
	// ErrUnprovenTarget: the start time could not be read in time, and
	// the target's status and cgroup do not prove it the init of the
	// container whose cgroup it names either (see Open): nothing is
	// signalled. The pid may or may not have been reused.
	ErrUnprovenTarget = errors.New("target's identity not proven")
	// ErrNoPidfd: the kernel has no pidfd_open (Linux before 5.3). fuseguard
	// then signals nothing: kill(2) by pid could hit a process that reused it.
	ErrNoPidfd = errors.New("kernel has no pidfd_open (Linux 5.3 or later needed)")
	// ErrNoInit: nothing names a live init for the container — no record,
	// and the runtime (or Docker) does not say — so there is no Target.
	// The executor and the runtime wrapper return it.
	ErrNoInit = errors.New("container init unknown")
)

// Target is a process identified beyond its pid.
type Target struct {
	PID       int
	StartTime uint64 // field 22 of /proc/PID/stat; 0 = read it now
	// Cgroup is the cgroup of the container whose init PID is, as its
	// record has it (record.Record.Cgroup): the second proof of identity
	// when stat cannot be read in time (see Open). "": none, and an
	// unreadable start time refuses the target.
	Cgroup string `json:",omitempty"`
}

// RecordTarget is the target a container's record names: its init, with
// the start time and cgroup the hook recorded.
func RecordTarget(rec *record.Record) Target {
	return Target{PID: rec.InitPID, StartTime: rec.InitStartTime, Cgroup: rec.Cgroup}
}

// Outcome of a kill.
type Outcome string

const (
	OutcomeExited      Outcome = "exited"       // died within the verify timeout
	OutcomeRecovered   Outcome = "recovered"    // died after fuseguard aborted connections
	OutcomeStillStuck  Outcome = "still-stuck"  // alive after everything
	OutcomeAlreadyGone Outcome = "already-gone" // was not there to kill
)

// Policy decides which connections may be aborted.
type Policy struct {
	AllowSharedFSTypes []string // fs types ("fuse.NAME") whose shared connections may be aborted
	AbortShared        bool     // abort shared connections too (operator's explicit flag)
	DryRun             bool     // plan only, abort nothing

	// DedicatedPrefixes turns the dedicated class on (empty: off). A
	// shared connection is dedicated to the container's pod, and may be
	// aborted, when the container's record names its pod (Record.PodUID),
	// every host mount of the connection lies under <prefix>/<pod UID>
	// for one of these prefixes (the kubelet's pod directory, where CSI
	// FUSE drivers mount each pod's volumes), and no live container of
	// another pod has it mounted.
	DedicatedPrefixes []string
	// Records is the node's records: the pod's other containers are
	// recognised by theirs, and a container that uses the connection is
	// named by its id. Nil: none is known, and every other container's
	// use of the connection refuses it.
	Records *record.Store
}

// Options tune a Kill.
type Options struct {
	VerifyTimeout  time.Duration // wait for the exit after SIGKILL; default 2s
	RecoverTimeout time.Duration // one budget for the aborts and the wait after them; default 2s
	VerifyOnly     bool          // the signal was already sent by someone else
	Policy         Policy
	Record         *record.Record     // what was recorded while it ran; nil = snapshot before signalling
	Proc           proc.FS            // zero value: /proc
	Control        fuseconn.Control   // zero value: /sys/fs/fuse/connections
	Log            logrus.FieldLogger // nil: discard
	Tracer         trace.Tracer       // nil: no spans

	// DiagnoseTimeout bounds the diagnosis: reads of /proc that do not
	// return in time are abandoned and the diagnosis goes on with what it
	// could read; default 2s.
	DiagnoseTimeout time.Duration
}

// Stage is one timed stage of a kill ("open", "snapshot", "signal",
// "verify", "diagnose", "abort", "reverify") or of an executor's Kill or
// Stop (executor.StageInspect, …), timed by RunStage.
type Stage struct {
	Name     string        `json:"name"`
	Start    time.Duration `json:"start_ns"` // since the kill (or the executor's call) began
	Duration time.Duration `json:"duration_ns"`
	Err      string        `json:"error,omitempty"`
}

// Abort is one connection fuseguard aborted (or, in a dry run, would abort).
type Abort struct {
	Conn       fuseconn.ConnID     `json:"conn"`
	Gen        fuseconn.Generation `json:"gen,omitempty"` // the instance proven the container's
	FSType     string              `json:"fs_type"`
	MountPoint string              `json:"mount_point"`
	Owned      bool                `json:"owned"`
	Dedicated  bool                `json:"dedicated,omitempty"` // shared with the host, but dedicated to the container's pod
	Waiting    int                 `json:"waiting"`
	Reason     string              `json:"reason"`            // why it was chosen
	Refusal    Refusal             `json:"refusal,omitempty"` // why the policy kept it (Report.Refused only)
	Done       bool                `json:"done"`              // false in a dry run or on error
	Err        string              `json:"error,omitempty"`
}

// Refusal is the class of a policy's refusal, a fixed set (for metrics
// and alerts; Abort.Reason says the rest).
type Refusal string

const (
	RefusalUnproven         Refusal = "unproven"          // not proven the container's instance of the connection
	RefusalOwnershipUnknown Refusal = "ownership-unknown" // the host mount table could not be read
	RefusalShared           Refusal = "shared"            // shared with the host, fs type not allowed
	// RefusalNotDedicated: shared, the dedicated class is on, and the
	// connection is not dedicated to the container's pod (Abort.Reason
	// says why: used by another live container, mounted outside the
	// pod's volume directory, no pod UID recorded, …).
	RefusalNotDedicated Refusal = "not-dedicated"
)

// Report is what a Kill did and saw.
type Report struct {
	Target    Target        `json:"target"`
	Outcome   Outcome       `json:"outcome"`
	Stages    []Stage       `json:"stages"`
	Aborted   []Abort       `json:"aborted,omitempty"`
	Refused   []Abort       `json:"refused,omitempty"` // candidates the policy kept
	Diagnosis *Diagnosis    `json:"diagnosis,omitempty"`
	Total     time.Duration `json:"total_ns"`
}

// BlockerKind classifies what a stuck task waits on.
type BlockerKind string

const (
	BlockerFUSERequest BlockerKind = "fuse-request"    // request_wait_answer, not at exit
	BlockerFUSEFlush   BlockerKind = "fuse-flush-exit" // fuse_flush under do_exit
	BlockerOther       BlockerKind = "other"           // NFS, freezer, …: reported, never touched

	// BlockerUnknown: the kernel stack could not be read in time (a task
	// inside execve holds the lock the read needs): it gives no evidence.
	BlockerUnknown BlockerKind = "unknown"
)

// Task is one task of the container.
type Task struct {
	TID     int         `json:"tid"`
	TGID    int         `json:"tgid"`
	Comm    string      `json:"comm"`
	State   string      `json:"state"`
	Exiting bool        `json:"exiting"`
	Stack   proc.Stack  `json:"stack,omitempty"`
	Wchan   string      `json:"wchan,omitempty"`
	SigPnd  []string    `json:"sig_pending,omitempty"`
	ShdPnd  []string    `json:"shared_pending,omitempty"`
	Blocker BlockerKind `json:"blocker,omitempty"`
	// Conn is the FUSE connection the task provably waits on, when known.
	Conn    fuseconn.ConnID `json:"conn,omitempty"`
	HasConn bool            `json:"has_conn"`
	Via     string          `json:"via,omitempty"` // how Conn was found: "syscall fd 8 → mnt_id 91"
	// Untrusted says why the fd of the blocked call does not prove the
	// connection waited on (e.g. the wait is under a page fault).
	Untrusted string `json:"evidence_refused,omitempty"`

	// Unreadable says why the stack (and so what the task waits on) could
	// not be read, e.g. a read that did not return by its deadline.
	Unreadable string `json:"unreadable,omitempty"`
}

// ConnState is a connection of the container at diagnosis time.
type ConnState struct {
	fuseconn.Connection
	// Waiting is the connection's count of requests waiting in fusectl.
	// An unknown count is 0, never negative: the connection is not Live,
	// or its count was unreadable (Err says why). watch.ConnStatus (and
	// so `fuseguard status`) follows the same convention.
	Waiting int  `json:"waiting"`
	Live    bool `json:"live"`
	// Proven: a live mount table of the container shows this connection
	// and its generation (Gen) held while the tables were read. Only a
	// proven connection may be aborted; Unproven says why one is not.
	Proven      bool                `json:"proven"`
	MountedIn   string              `json:"mounted_in,omitempty"`
	RecordedGen fuseconn.Generation `json:"recorded_gen,omitempty"`
	Unproven    string              `json:"unproven,omitempty"`
	Err         string              `json:"error,omitempty"`
	// Dedicated: the connection is shared with the host but dedicated to
	// the container's pod (Policy.DedicatedPrefixes); Dedication says
	// why it is, or, for a shared one checked under the policy, why not.
	Dedicated  bool   `json:"dedicated,omitempty"`
	Dedication string `json:"dedication,omitempty"`
}

// Diagnosis explains a stuck exit. It never kills and never aborts.
type Diagnosis struct {
	Init        Task        `json:"init"`
	InitInZap   bool        `json:"init_in_zap_pid_ns_processes"`
	Stuck       []Task      `json:"stuck"` // tasks in D
	Connections []ConnState `json:"connections"`
	Plan        []Abort     `json:"plan"`    // what Kill would abort under the policy
	Refused     []Abort     `json:"refused"` // candidates the policy keeps
	Notes       []string    `json:"notes,omitempty"`
}

// Signalled reports whether the kill sent its SIGKILL: false for a
// VerifyOnly kill, and for one that stopped before the signal (the target
// gone, its pid reused, no pidfd).
func (r Report) Signalled() bool {
	return slices.ContainsFunc(r.Stages, func(s Stage) bool { return s.Name == "signal" && s.Err == "" })
}
