package executor_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/executor"
	"github.com/fuseguard/fuseguard/killer"
)

// TestFromConfig: the node configuration sets the Docker timeout, the
// rescue's timeouts and policy, and the store, and so the bound.
func TestFromConfig(t *testing.T) {
	c := config.Defaults()
	c.StateDir = "/srv/fg"
	c.Timeouts.Docker = config.Duration(time.Second)
	c.Timeouts.Recover = config.Duration(3 * time.Second)
	c.Policy = config.Policy{AllowSharedFSTypes: []string{"fuse.x"}, AbortShared: true}
	k := executor.FromConfig(c)
	if k.DockerTimeout != time.Second || k.Store.Dir != "/srv/fg" || k.Options.RecoverTimeout != 3*time.Second ||
		!reflect.DeepEqual(k.Options.Policy, c.KillerPolicy()) {
		t.Errorf("FromConfig = %+v", k)
	}
	d := executor.FromConfig(config.Defaults())
	want := 3*(time.Second-executor.DefaultDockerTimeout) + (3*time.Second - killer.DefaultRecoverTimeout)
	if got := k.Bound() - d.Bound(); got != want {
		t.Errorf("Bound differs from the defaults' by %v, want %v", got, want)
	}
}
