package podman

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// shippedBinary is the binary the shipped hooks.d files run.
const shippedBinary = shippedBinDir + "fuseguard"

// nsReadyTimeout bounds setting up the private mount namespace.
const nsReadyTimeout = 10 * time.Second

// nsReadTimeout bounds one read of a process's mount namespace: the read
// waits on a task inside execve (proc.FS.NamespaceInode).
const nsReadTimeout = time.Second

// mountNS returns pid's mount namespace inode, bounded by nsReadTimeout.
func mountNS(pid int) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), nsReadTimeout)
	defer cancel()
	return proc.NewFS("").NamespaceInode(ctx, pid, "mnt")
}

// privateNSScript runs under `unshare --mount --propagation private` with
// $1 the test's fuseguard binary and $2 an empty directory of the test's.
// /run and /usr/local/bin become tmpfs of this namespace that hold the
// host's entries bound back in, except fuseguard: /usr/local/bin/fuseguard
// is the test's binary, and /run/fuseguard does not exist until the hooks
// make it, on the namespace's tmpfs. Then it says ready and stays, the
// namespace's holder.
const privateNSScript = `set -eu
bin=$1 work=$2
private() {
	old=$work/$(echo "$1" | tr / _)
	mkdir "$old"
	mount --rbind "$1" "$old"
	mount -t tmpfs -o mode=755 fuseguard-test "$1"
	ls -A "$old" | while read -r e; do
		[ "$e" = fuseguard ] && continue
		if [ -L "$old/$e" ]; then ln -s "$(readlink "$old/$e")" "$1/$e"; continue; fi
		# mount(8) may have made /run/mount (libmount's utab) meanwhile.
		if [ -d "$old/$e" ]; then mkdir -p "$1/$e"; elif [ ! -e "$1/$e" ]; then : >"$1/$e"; fi
		mount --rbind "$old/$e" "$1/$e"
	done
}
private /run
private /usr/local/bin
: >/usr/local/bin/fuseguard
mount --bind "$bin" /usr/local/bin/fuseguard
echo ready
exec sleep 100000
`

// privateNS is a mount namespace in which the shipped hooks.d files work
// unchanged (see privateNSScript), held by one process of the test's.
type privateNS struct {
	holder int    // its pid
	inode  uint64 // its mount namespace
}

// newPrivateNS starts the namespace for binary and registers its end
// with t.Cleanup: every process still in it (the holder, a watcher a
// hook started) is killed, so the namespace and its tmpfs go with them.
func newPrivateNS(t testing.TB, binary string) *privateNS {
	t.Helper()
	unshare := testenv.RequireBinary(t, "unshare")
	sh := testenv.RequireBinary(t, "sh")
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", sh, "-c", privateNSScript, "sh", binary, t.TempDir())
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(waited)
	}()
	ns := &privateNS{holder: cmd.Process.Pid}
	t.Cleanup(func() { ns.end(t, waited) })
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line == "ready\n"
	}()
	select {
	case ok := <-ready:
		if !ok {
			<-waited
			t.Fatalf("private mount namespace: %s", stderr.String())
		}
	case <-time.After(nsReadyTimeout):
		t.Fatalf("private mount namespace not ready within %v: %s", nsReadyTimeout, stderr.String())
	}
	if ns.inode, err = mountNS(ns.holder); err != nil {
		t.Fatal(err)
	}
	if own, err := mountNS(os.Getpid()); err != nil || own == ns.inode {
		t.Fatalf("mount namespace %d is the test's own (%d, %v)", ns.inode, own, err)
	}
	return ns
}

// enter is the command prefix that runs a program in the namespace.
func (ns *privateNS) enter(t testing.TB) []string {
	return []string{testenv.RequireBinary(t, "nsenter"), "--target", strconv.Itoa(ns.holder), "--mount", "--"}
}

// stateDir is the namespace's /run/fuseguard as the test reaches it.
func (ns *privateNS) stateDir() string {
	return filepath.Join("/proc", strconv.Itoa(ns.holder), "root", record.DefaultStateDir)
}

// end kills every process in the namespace and waits, bounded, until
// none is left.
func (ns *privateNS) end(t testing.TB, holderWaited <-chan struct{}) {
	inside := func() []int {
		pids, _ := proc.NewFS("").PIDs()
		var in []int
		for _, pid := range pids {
			if ino, err := mountNS(pid); err == nil && ino == ns.inode {
				in = append(in, pid)
			}
		}
		return in
	}
	deadline := time.Now().Add(killWaitTimeout)
	for {
		left := inside()
		if ns.inode == 0 || len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("private mount namespace: processes %v survived SIGKILL for %v", left, killWaitTimeout)
			break
		}
		for _, pid := range left {
			if pid != ns.holder {
				t.Logf("private mount namespace: killing %d", pid)
			}
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(pollInterval)
	}
	_ = unix.Kill(ns.holder, unix.SIGKILL)
	select {
	case <-holderWaited:
	case <-time.After(killWaitTimeout):
		t.Errorf("private mount namespace: holder %d not reaped within %v", ns.holder, killWaitTimeout)
	}
}
