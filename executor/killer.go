package executor

import (
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/internal/obs"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// DefaultDockerTimeout bounds one Docker call when Killer.DockerTimeout is
// zero. A healthy daemon answers an inspect in milliseconds and a kill of a
// healthy container well within it.
const DefaultDockerTimeout = config.DefaultDockerTimeout

// FromConfig returns a Killer set up from the node configuration (see
// config.Node): its Docker timeout, the rescue's timeouts and abort policy,
// and the state directory. The caller sets Docker, Log and Tracer.
func FromConfig(c config.Config) Killer {
	return Killer{
		DockerTimeout: c.Timeouts.Docker.Std(),
		Options:       c.KillerOptions(),
		Store:         record.NewStore(c.StateDir),
	}
}

// confirmInterval paces the inspects that wait for Docker to see the exit.
const confirmInterval = 10 * time.Millisecond

// Killer kills and stops containers through Docker without ever waiting on
// Docker past a deadline. The zero value of every field but Docker is
// usable; a Killer is safe for concurrent use once set up.
type Killer struct {
	// Docker is the Engine API client (see NewDockerClient). Required.
	Docker Docker
	// DockerTimeout bounds each Docker call; DefaultDockerTimeout when zero.
	DockerTimeout time.Duration
	// Options tune the verify-and-rescue (killer.Kill): verify and recover
	// timeouts, abort policy, /proc and fusectl. Record, VerifyOnly, Log
	// and Tracer are set per call.
	Options killer.Options
	// Store holds the records the fuseguard hook writes while containers
	// run; the zero value is record.NewStore("").
	Store record.Store
	// Log receives one line per stage; nil discards.
	Log logrus.FieldLogger
	// Tracer receives the spans executor.kill / executor.stop and one child
	// per stage; nil records nothing.
	Tracer trace.Tracer
}

// Bound is the longest Kill can take, and Kill enforces it: the whole
// call runs under one deadline Bound after it starts, which every step
// shares, so that a step that overruns its own timeout (a read of /proc
// that blocks, a Docker call slow to give up) cannot stretch it. The sum
// is an inspect, a kill and a confirming inspect, each bounded by
// DockerTimeout, and the rescue, killer.Kill, which enforces its own
// bound (killer.Options.Bound).
func (k *Killer) Bound() time.Duration {
	return 3*k.dockerTimeout() + k.Options.Bound()
}

// StopBound is the longest Stop with this grace can take, enforced like
// Bound: Bound, plus the SIGTERM's Docker call and the grace.
func (k *Killer) StopBound(grace time.Duration) time.Duration {
	return k.Bound() + k.dockerTimeout() + max(grace, 0)
}

func (k *Killer) dockerTimeout() time.Duration {
	if k.DockerTimeout > 0 {
		return k.DockerTimeout
	}
	return DefaultDockerTimeout
}

func (k *Killer) store() record.Store {
	if k.Store.Dir == "" {
		return record.NewStore("")
	}
	return k.Store
}

func (k *Killer) proc() proc.FS { return k.Options.Proc }

func (k *Killer) log() logrus.FieldLogger { return obs.Logger(k.Log) }

func (k *Killer) tracer() trace.Tracer { return obs.Tracer(k.Tracer) }
