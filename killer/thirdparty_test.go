package killer

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/fixture"
)

// TestKillRefusesThirdPartyDaemons: real third-party FUSE daemons from
// Debian (sshfs over a private sshd, bindfs, lxcfs), mounted on the host and
// bind-mounted into a container that wedges at exit on its own mount (W3
// with the daemon inside). The waiting task names no fd, so every
// connection of the container with requests waiting is a candidate — and
// the third-party one has a host reader waiting (its daemon stopped). The
// default policy aborts only the container's own connection and refuses the
// third-party one, naming its fs type; allowing that fs type plans it (a
// dry run: nothing but the test's own is ever aborted). Resumed, the daemon
// answers the host reader, which was never failed, and keeps serving.
func TestKillRefusesThirdPartyDaemons(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		mount func(testing.TB) *fixture.ThirdParty
	}{
		{"sshfs", fixture.SSHFS},
		{"bindfs", fixture.BindFS},
		{"lxcfs", fixture.LXCFS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			c := fixture.W3(t, true)
			tp := tc.mount(t)
			t.Logf("%s: connection %d, fs type %q, mounted on %s", tc.name, tp.Conn, tp.FSType, tp.Dir)
			bound := c.BindHost(tp.Dir)
			tp.Stop()
			reader := tp.StartReader()
			t.Logf("armed in %v", time.Since(start))

			// The operator allowed the fs type: a dry run plans the
			// third-party connection (and the container's own).
			opts := testOptions()
			opts.Policy.DryRun = true
			opts.Policy.AllowSharedFSTypes = []string{tp.FSType}
			rep := killAndCheck(t, c, opts, OutcomeStillStuck)
			i := slices.IndexFunc(rep.Aborted, func(a Abort) bool { return a.Conn == tp.Conn })
			if i < 0 || rep.Aborted[i].Owned || rep.Aborted[i].FSType != tp.FSType || rep.Aborted[i].MountPoint != bound {
				t.Fatalf("allowing %s planned %+v, want shared connection %d at %s", tp.FSType, rep.Aborted, tp.Conn, bound)
			}
			if !slices.ContainsFunc(rep.Aborted, func(a Abort) bool { return a.Conn == c.Conn }) {
				t.Fatalf("dry run planned %+v, want the container's connection %d too", rep.Aborted, c.Conn)
			}

			// The default policy: the container's own connection only.
			opts = testOptions()
			opts.VerifyOnly = true
			rep = killAndCheck(t, c, opts, OutcomeRecovered, c.Conn)
			i = slices.IndexFunc(rep.Refused, func(a Abort) bool { return a.Conn == tp.Conn })
			if i < 0 {
				t.Fatalf("refused %+v, want %s connection %d", rep.Refused, tc.name, tp.Conn)
			}
			want := "shared with the host (" + tp.FSType + "), kept: allow with --allow-shared-fstype=" + tp.FSType
			if r := rep.Refused[i]; r.Owned || !strings.HasSuffix(r.Reason, want) {
				t.Fatalf("connection %d refused with %q (owned %v), want the reason to end %q", tp.Conn, r.Reason, r.Owned, want)
			}
			reaped(t, c)

			// Untouched: the host reader still waits on the stopped daemon;
			// resumed, it reads, and the mount serves.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tp.ResumeIntact(ctx, reader); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: done in %v", tc.name, time.Since(start))
		})
	}
}
