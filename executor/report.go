package executor

import (
	"fmt"
	"io"
	"time"

	"github.com/fuseguard/fuseguard/internal/untrusted"
	"github.com/fuseguard/fuseguard/killer"
)

// OutcomeUnknown: the call ended (its context, or no pid to signal) before
// anything could tell whether the container died.
const OutcomeUnknown killer.Outcome = "unknown"

// Stages of a Kill or Stop; each is one span named "executor.<stage>".
const (
	StageInspect    = "inspect"     // bounded ContainerInspect: init's pid
	StageRecord     = "record"      // the fuseguard record, or a snapshot of init
	StageDockerTerm = "docker_term" // bounded ContainerKill SIGTERM (Stop)
	StagePidfdTerm  = "pidfd_term"  // SIGTERM through a pidfd when Docker did not answer (Stop)
	StageGrace      = "grace"       // wait on init's pidfd up to the grace period (Stop)
	StageDockerKill = "docker_kill" // bounded ContainerKill SIGKILL
	StagePidfdKill  = "pidfd_kill"  // killer.Kill: SIGKILL through a pidfd, verify, rescue
	StageVerify     = "verify"      // killer.Kill VerifyOnly: Docker signalled; verify, rescue
	StageConfirm    = "confirm"     // bounded inspects until Docker says it stopped
)

// Report is what a Kill or Stop did and saw.
type Report struct {
	// ContainerID is the id Docker answered with (the full id), else the
	// record's, else the one the caller gave.
	ContainerID string `json:"container_id"`
	// Target is the container's init; PIDFrom says who named it:
	// "docker" or "record".
	Target  killer.Target `json:"target"`
	PIDFrom string        `json:"pid_from,omitempty"`
	// Outcome: exited, recovered (exited after fuseguard aborted FUSE
	// connections), still-stuck, already-gone (it was not running), or
	// unknown.
	Outcome killer.Outcome `json:"outcome"`
	// DockerConfirmed: Docker said the container no longer runs.
	DockerConfirmed bool           `json:"docker_confirmed"`
	Stages          []killer.Stage `json:"stages"`
	// Rescue is killer.Kill's report: its stages, the connections it
	// aborted and, when it had to, its diagnosis.
	Rescue *killer.Report `json:"rescue,omitempty"`
	// Notes explain skipped steps and fallbacks.
	Notes []string      `json:"notes,omitempty"`
	Total time.Duration `json:"total_ns"`
}

// Stage returns the first stage called name.
func (r Report) Stage(name string) (killer.Stage, bool) {
	for _, s := range r.Stages {
		if s.Name == name {
			return s, true
		}
	}
	return killer.Stage{}, false
}

// Timeline writes the stages in milliseconds since the call began, the
// rescue's own stages indented under the stage that ran it; what a
// container named is escaped (package untrusted).
func (r Report) Timeline(w io.Writer) {
	fmt.Fprintf(w, "container %s init %d (pid from %s)\n", untrusted.Text(shortID(r.ContainerID)), r.Target.PID, untrusted.Text(orNone(r.PIDFrom)))
	for _, s := range r.Stages {
		line := fmt.Sprintf("%8.1f ms  %-11s %8.1f ms", ms(s.Start), s.Name, ms(s.Duration))
		if s.Err != "" {
			line += "  error: " + untrusted.Line(s.Err)
		}
		fmt.Fprintln(w, line)
		if r.Rescue != nil && (s.Name == StagePidfdKill || s.Name == StageVerify) {
			for _, st := range r.Rescue.Stages {
				line := fmt.Sprintf("%8.1f ms    %-9s %8.1f ms", ms(s.Start+st.Start), st.Name, ms(st.Duration))
				if st.Err != "" {
					line += "  error: " + untrusted.Line(st.Err)
				}
				fmt.Fprintln(w, line)
			}
			for _, a := range r.Rescue.Aborted {
				fmt.Fprintf(w, "              connection %d aborted=%v: %s\n", a.Conn, a.Done, untrusted.Line(a.Reason))
			}
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", untrusted.Line(n))
	}
	fmt.Fprintf(w, "outcome %s (docker confirmed: %v) after %.1f ms\n", r.Outcome, r.DockerConfirmed, ms(r.Total))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func orNone(s string) string {
	if s == "" {
		return "nowhere"
	}
	return s
}
