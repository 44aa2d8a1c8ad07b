package wrapper

import (
	"reflect"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/killer"
)

// TestKillerOptionsCarryPolicy: the rescue after `docker kill` uses the
// wrapper's policy and timeouts (the node configuration's, set by
// cmd/fuseguard).
func TestKillerOptionsCarryPolicy(t *testing.T) {
	w := &Wrapper{
		VerifyTimeout: time.Second, DiagnoseTimeout: 2 * time.Second, RecoverTimeout: 3 * time.Second,
		Policy: killer.Policy{AllowSharedFSTypes: []string{"fuse.x"}, AbortShared: true},
	}
	o := w.killerOptions(nil, nil, true)
	if !reflect.DeepEqual(o.Policy, w.Policy) || o.VerifyTimeout != time.Second || o.DiagnoseTimeout != 2*time.Second || o.RecoverTimeout != 3*time.Second || !o.VerifyOnly {
		t.Errorf("killerOptions = %+v, want the wrapper's policy and timeouts", o)
	}
}
