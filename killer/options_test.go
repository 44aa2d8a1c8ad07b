package killer

import (
	"testing"
	"time"
)

// TestOptionsBound: the documented sum, with the defaults filled in.
func TestOptionsBound(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want time.Duration
	}{
		{"defaults", Options{}, DefaultVerifyTimeout + DefaultDiagnoseTimeout + DefaultRecoverTimeout + BoundSlack},
		{"set", Options{VerifyTimeout: time.Second, DiagnoseTimeout: 3 * time.Second, RecoverTimeout: 5 * time.Second}, 9*time.Second + BoundSlack},
		{"negative is default", Options{VerifyTimeout: -1, DiagnoseTimeout: -1, RecoverTimeout: -1}, DefaultVerifyTimeout + DefaultDiagnoseTimeout + DefaultRecoverTimeout + BoundSlack},
	}
	for _, tt := range tests {
		if got := tt.o.Bound(); got != tt.want {
			t.Errorf("%s: Bound() = %v, want %v", tt.name, got, tt.want)
		}
	}
	if returnMargin >= BoundSlack {
		t.Errorf("returnMargin %v leaves nothing of BoundSlack %v to the steps no budget names", returnMargin, BoundSlack)
	}
}
