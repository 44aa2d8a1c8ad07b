package proc

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/test/testenv"
)

// fakeTree writes a proc tree of status files: stats maps a pid to its
// status ("" for an empty file, the kernel's answer for a task it can no
// longer describe).
func fakeTree(t *testing.T, stats map[int]string) string {
	t.Helper()
	root := t.TempDir()
	for pid, line := range stats {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "status"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// statLine is a /proc/PID/status with the fields Descendants reads.
func statLine(pid int, state string, ppid int) string {
	return fmt.Sprintf("Name:\ttask %d\nUmask:\t0022\nState:\t%s (x)\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\n", pid, state, pid, pid, ppid)
}

func TestDescendants(t *testing.T) {
	root := fakeTree(t, map[int]string{
		1:  statLine(1, "S", 0),
		2:  statLine(2, "S", 0),
		10: statLine(10, "S", 1),
		11: statLine(11, "S", 10),
		12: statLine(12, "R", 10),
		13: statLine(13, "Z", 11),
		20: statLine(20, "S", 1),
		21: statLine(21, "D", 20),
		30: "", // exiting: its status reads empty
		31: statLine(31, "S", 30),
	})
	for _, dir := range []string{"40", "sys", "10/task/14"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("10", filepath.Join(root, "self")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		roots []int
		want  []int
	}{
		{"subtree", []int{10}, []int{10, 11, 12, 13}},
		{"breadth first, siblings ascending", []int{1}, []int{1, 10, 20, 11, 12, 21, 13}},
		{"several roots", []int{20, 11}, []int{20, 11, 21, 13}},
		{"repeated and nested roots", []int{11, 10, 11}, []int{11, 10, 13, 12}},
		{"zombie", []int{13}, []int{13}},
		{"pid 0 is not the whole system", []int{0}, nil},
		{"negative", []int{-1}, nil},
		{"no such pid", []int{99}, nil},
		{"unreadable status hides its subtree", []int{30}, nil},
		{"pid directory without status", []int{40}, nil},
		{"thread id", []int{14}, nil},
		{"no roots", nil, nil},
	}
	fs := NewFS(root)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fs.Descendants(tt.roots...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Descendants(%v) = %v, want %v", tt.roots, got, tt.want)
			}
		})
	}
}

func TestDescendantsErrors(t *testing.T) {
	malformed := fakeTree(t, map[int]string{
		1: statLine(1, "S", 0),
		2: "2 (truncated) S 1\n",
	})
	for name, root := range map[string]string{
		"malformed status": malformed,
		"no proc root":     filepath.Join(t.TempDir(), "missing"),
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := NewFS(root).Descendants(1); err == nil {
				t.Errorf("Descendants(1) = %v, want an error", got)
			}
		})
	}
}

// TestLiveDescendants finds a grandchild: sh → sh → sleep.
func TestLiveDescendants(t *testing.T) {
	sh := testenv.RequireBinary(t, "sh")
	testenv.RequireBinary(t, "sleep")
	// Neither shell execs its last command ("wait" is a builtin), so the
	// tree is exactly outer → inner → sleep; inner prints its pid and
	// sleep's.
	cmd := exec.Command(sh, "-c", `sh -c 'sleep 100 & echo "$$ $!"; wait' & wait`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outer := cmd.Process.Pid
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-waited:
			return // reaped: the group may be gone and its id reused
		default:
		}
		_ = unix.Kill(-outer, unix.SIGKILL)
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			t.Errorf("sh %d not reaped", outer)
		}
	})

	var inner, sleep int
	line, err := bufio.NewReader(out).ReadString('\n')
	if _, serr := fmt.Sscanf(line, "%d %d", &inner, &sleep); err != nil || serr != nil {
		t.Fatalf("reading the pids: %q: %v %v", line, err, serr)
	}

	fs := NewFS("")
	got, err := fs.Descendants(outer)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{outer, inner, sleep}; !slices.Equal(got, want) {
		t.Errorf("Descendants(sh) = %v, want %v", got, want)
	}
	self, err := fs.Descendants(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if i, j, k := slices.Index(self, outer), slices.Index(self, inner), slices.Index(self, sleep); i < 1 || j <= i || k <= j {
		t.Errorf("Descendants(self) = %v: want %d, %d, %d below self, parents first", self, outer, inner, sleep)
	}

	// Killing sleep ends both shells' waits: all three are reaped.
	if err := unix.Kill(sleep, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatalf("sh %d did not exit after its grandchild was killed", outer)
	}
	waited <- nil // for the cleanup
	self, err = fs.Descendants(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{outer, inner, sleep} {
		if slices.Contains(self, pid) {
			t.Errorf("Descendants(self) = %v: still has reaped %d", self, pid)
		}
	}
}
