package executor

import (
	"context"
	"errors"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

// TestDockerCall checks how a call's end is classified: its own deadline
// is Docker's silence, the caller's end is the caller's.
func TestDockerCall(t *testing.T) {
	block := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	short, cancelShort := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancelShort()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		call    func(context.Context) error
		want    error
		notWant error
	}{
		{"answered", context.Background(), func(context.Context) error { return nil }, nil, ErrDockerNoAnswer},
		{"own deadline", context.Background(), block, ErrDockerNoAnswer, context.Canceled},
		{"caller cancelled", cancelled, block, context.Canceled, ErrDockerNoAnswer},
		{"caller deadline first", short, block, context.DeadlineExceeded, ErrDockerNoAnswer},
		{"not found", context.Background(), func(context.Context) error { return cerrdefs.ErrNotFound }, ErrNoContainer, ErrDockerNoAnswer},
		{"other", context.Background(), func(context.Context) error { return cerrdefs.ErrConflict }, cerrdefs.ErrConflict, ErrDockerNoAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := dockerCall(tc.ctx, 50*time.Millisecond, "test", tc.call)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
			if errors.Is(err, tc.notWant) {
				t.Errorf("err %v is %v", err, tc.notWant)
			}
		})
	}
}
