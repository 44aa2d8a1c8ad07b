package killer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/untrusted"
)

// allows reports whether the policy lets fuseguard abort c. A connection
// whose ownership is unknown is not owned: only the policies that abort
// shared connections anyway let it through. A dedicated one (shared with
// the host but the pod's own, see Policy.DedicatedPrefixes) is let
// through like an owned one.
func (p Policy) allows(c ConnState) bool {
	return c.Owned || c.Dedicated || p.AbortShared || slices.Contains(p.AllowSharedFSTypes, c.FSType)
}

// plan chooses the connections to abort: first those a stuck task provably
// waits on, then the container's own connections with requests waiting.
// A shared connection with requests waiting is a candidate only while some
// stuck task waits in FUSE on a connection no fd names (a flush at exit, a
// lookup, a wait under a page fault): its waiting count may otherwise be
// the host's business. Only connections proven the container's instance
// (ConnState.Proven) are planned; other candidates, and shared ones the
// policy does not allow, are returned as refused, with why.
func (p Policy) plan(stuck []Task, conns []ConnState) (planned, refused []Abort) {
	waiters := map[fuseconn.ConnID][]string{}
	unexplained := false
	for _, t := range stuck {
		if t.HasConn {
			waiters[t.Conn] = append(waiters[t.Conn], fmt.Sprintf("task %d (%s) waits on it via %s", t.TID, untrusted.Text(t.Comm), t.Via))
		} else if t.Blocker == BlockerFUSERequest || t.Blocker == BlockerFUSEFlush {
			unexplained = true
		}
	}
	consider := func(c ConnState, reason string) {
		a := Abort{
			Conn: c.Conn, Gen: c.Gen, FSType: c.FSType, MountPoint: c.MountPoint,
			Owned: c.Owned, Dedicated: c.Dedicated, Waiting: c.Waiting, Reason: reason,
		}
		switch {
		case !c.Proven:
			a.Gen, a.Refusal = 0, RefusalUnproven
			a.Reason = fmt.Sprintf("%s; %s", reason, c.Unproven)
			refused = append(refused, a)
		case p.allows(c):
			if c.Dedicated {
				a.Reason = fmt.Sprintf("%s; %s", reason, c.Dedication)
			}
			planned = append(planned, a)
		case c.OwnershipUnknown != "":
			a.Refusal = RefusalOwnershipUnknown
			a.Reason = fmt.Sprintf("%s; %s: ownership unknown, not aborted", reason, c.OwnershipUnknown)
			refused = append(refused, a)
		case c.Dedication != "":
			a.Refusal = RefusalNotDedicated
			a.Reason = fmt.Sprintf("%s; shared with the host (%s), %s: kept", reason, c.FSType, c.Dedication)
			refused = append(refused, a)
		default:
			a.Refusal = RefusalShared
			a.Reason = fmt.Sprintf("%s; shared with the host (%s), kept: allow with --allow-shared-fstype=%s", reason, c.FSType, c.FSType)
			refused = append(refused, a)
		}
	}
	for _, c := range conns {
		if w, ok := waiters[c.Conn]; ok && c.Live {
			consider(c, strings.Join(w, "; "))
		}
	}
	for _, c := range conns {
		if _, ok := waiters[c.Conn]; !ok && c.Live && c.Waiting > 0 && (c.Owned || c.Dedicated || unexplained) {
			consider(c, fmt.Sprintf("%d request(s) waiting on a connection the container uses", c.Waiting))
		}
	}
	return planned, refused
}
