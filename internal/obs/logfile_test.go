package obs_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fuseguard/fuseguard/internal/obs"
)

// Environment of a writer process of TestLogFileRotationConcurrentWriters.
const (
	envWriterLog   = "OBS_TEST_WRITER_LOG"
	envWriterID    = "OBS_TEST_WRITER_ID"
	writerLines    = 400
	writerMaxSize  = 8 << 10
	writerKeep     = 1000 // enough to keep every line: nothing may be lost
	writerLineBody = "0123456789abcdefghijklmnopqrstuvwxyz"
)

// TestMain runs the test binary as one writer process of
// TestLogFileRotationConcurrentWriters when envWriterLog is set.
func TestMain(m *testing.M) {
	if path := os.Getenv(envWriterLog); path != "" {
		if err := writeLines(path, os.Getenv(envWriterID)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func writeLines(path, id string) error {
	lf, err := obs.OpenLogFile(path, writerMaxSize, writerKeep)
	if err != nil {
		return err
	}
	defer lf.Close()
	for i := range writerLines {
		if _, err := fmt.Fprintf(lf, "writer=%s line=%d %s\n", id, i, writerLineBody); err != nil {
			return err
		}
	}
	return nil
}

// TestLogFileRotationConcurrentWriters: several processes append to one
// capped log at once, as concurrent hook runs do. Every line arrives
// exactly once and whole, in order per writer, no file exceeds the cap, and
// the log was rotated.
func TestLogFileRotationConcurrentWriters(t *testing.T) {
	const writers = 6
	path := filepath.Join(t.TempDir(), "hook.log")
	cmds := make([]*exec.Cmd, writers)
	for w := range writers {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), envWriterLog+"="+path, envWriterID+"="+strconv.Itoa(w))
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		cmds[w] = cmd
	}
	for w, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("writer %d: %v\n%s", w, err, cmd.Stdout)
		}
	}

	files, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	// Oldest first: path.N … path.1, path.
	var ordered []string
	for i := writerKeep; i >= 1; i-- {
		if p := fmt.Sprintf("%s.%d", path, i); fileExists(p) {
			ordered = append(ordered, p)
		}
	}
	ordered = append(ordered, path)
	if len(ordered) < 2 {
		t.Fatalf("files %v: the log was never rotated", files)
	}
	next := make([]int, writers) // the line each writer must show next
	total := 0
	for _, p := range ordered {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > writerMaxSize {
			t.Errorf("%s: %d bytes, over the cap %d", p, fi.Size(), writerMaxSize)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var w, i int
			var body string
			if n, err := fmt.Sscanf(sc.Text(), "writer=%d line=%d %s", &w, &i, &body); n != 3 || err != nil || body != writerLineBody || w < 0 || w >= writers {
				t.Fatalf("%s: mangled line %q", p, sc.Text())
			}
			if i != next[w] {
				t.Fatalf("%s: writer %d line %d, want line %d: lost or out of order", p, w, i, next[w])
			}
			next[w]++
			total++
		}
		f.Close()
	}
	if total != writers*writerLines {
		t.Errorf("%d lines in %d files, want %d", total, len(ordered), writers*writerLines)
	}
	t.Logf("%d lines from %d processes in %d files", total, writers, len(ordered))
}

// TestLogFileKeepsOnlyKeep: rotation drops the oldest file beyond keep.
func TestLogFileKeepsOnlyKeep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runtime.log")
	lf, err := obs.OpenLogFile(path, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	line := strings.Repeat("x", 59) + "\n" // 60 bytes: one rotation per line
	for range 10 {
		if _, err := lf.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(path + "*")
	var logs []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".lock") {
			logs = append(logs, filepath.Base(f))
		}
	}
	if want := []string{"runtime.log", "runtime.log.1", "runtime.log.2"}; strings.Join(logs, " ") != strings.Join(want, " ") {
		t.Errorf("files %v, want %v", logs, want)
	}
}

// TestLogFileRefusesSymlinks: a symlink at the log or at its lock is
// refused and the file it points to stays untouched.
func TestLogFileRefusesSymlinks(t *testing.T) {
	for _, link := range []string{"watch.log", "watch.log.lock"} {
		t.Run(link, func(t *testing.T) {
			dir := t.TempDir()
			victim := filepath.Join(dir, "victim")
			if err := os.WriteFile(victim, []byte("keep\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, filepath.Join(dir, link)); err != nil {
				t.Fatal(err)
			}
			lf, err := obs.OpenLogFile(filepath.Join(dir, "watch.log"), 0, 0)
			if err == nil {
				lf.Write([]byte("written through\n"))
				lf.Close()
				t.Fatalf("symlinked %s accepted", link)
			}
			if !strings.Contains(err.Error(), "symlink") || !strings.Contains(err.Error(), link) {
				t.Errorf("error %q does not say %s is a symlink", err, link)
			}
			if b, _ := os.ReadFile(victim); string(b) != "keep\n" {
				t.Errorf("symlink target changed: %q", b)
			}
		})
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
