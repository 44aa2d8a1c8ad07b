package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/config"
)

// TestWatchOptions: the watcher gets the configuration's settings and the
// same abort policy as every other entry point.
func TestWatchOptions(t *testing.T) {
	c := config.Defaults()
	c.StateDir = "/srv/fg"
	c.Watch.Grace = config.Duration(5 * time.Second)
	c.Timeouts.Recover = config.Duration(4 * time.Second)
	c.Policy.AbortShared = true
	c.Policy.DedicatedPrefixes = []string{"/var/lib/kubelet/pods"}
	wo := watchOptions(c)
	if wo.Grace != 5*time.Second || wo.RecoverTimeout != 4*time.Second || wo.StateDir != c.StateDir {
		t.Errorf("watchOptions = %+v", wo)
	}
	if !reflect.DeepEqual(wo.Policy, c.KillerPolicy()) {
		t.Errorf("watcher policy %+v, want the configuration's %+v", wo.Policy, c.KillerPolicy())
	}
}
