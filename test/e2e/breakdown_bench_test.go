package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/benchutil"
	"github.com/fuseguard/fuseguard/test/breakdown"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/gobuild"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// The syscalls the breakdown traces: execs, the clones that tell threads
// from children, and file syncs. strace filters them with seccomp-bpf, so
// every other syscall runs at full speed.
const traceCalls = "execve,clone,clone3,fork,vfork,fsync,fdatasync,syncfs,sync_file_range"

// tracedRuntime writes a runtime entry for daemon.json that runs real
// under `strace -f`, each invocation logging to dir/trace.<pid>: every
// runtime command and every process it starts (the hooks) with its exec,
// exit and file syncs, on the clock time.Now reads. -D keeps the runtime
// the shim's own child: strace runs apart and follows `runc init` until
// the container ends without holding up `runc create`.
func tracedRuntime(b *testing.B, dir, name, real string) string {
	b.Helper()
	strace := testenv.RequireBinary(b, "strace")
	script := filepath.Join(dir, name)
	body := fmt.Sprintf("#!/bin/sh\nexec %s -D -f --seccomp-bpf -q -s 256 -ttt -T -e trace=%s -e signal=none -o %s/trace.$$ %s \"$@\"\n",
		strace, traceCalls, dir, real)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		b.Fatal(err)
	}
	return script
}

// traceWindow is one timed Docker operation of the breakdown.
type traceWindow struct {
	title    string
	from, to time.Time
}

// printBreakdown is the per-call breakdown of issue 14: for docker run and
// docker kill through each runtime (traced, so slower than in the table),
// every runtime invocation and hook process with its wall time and file
// syncs; then the start-up cost of a fuseguard process.
func (e *dockerEnv) printBreakdown(b *testing.B, traceDir string) {
	b.Helper()
	var windows []traceWindow
	for _, rt := range []string{"fuseguard", "runc"} {
		// Once untimed: the first traced start pays strace's page cache.
		e.runTrue(b, rt+"-traced")
		from := time.Now()
		e.runTrue(b, rt+"-traced")
		windows = append(windows, traceWindow{"docker run --rm … true via " + rt, from, time.Now()})
	}
	for _, rt := range []string{"fuseguard", "runc"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		id, err := e.d.RunDetached(ctx, e.image, rt+"-traced", nil, "sleep", "1000")
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		from := time.Now()
		if err := e.d.Kill(ctx, id); err != nil {
			cancel()
			b.Fatal(err)
		}
		windows = append(windows, traceWindow{"docker kill via " + rt, from, time.Now()})
		if err := e.d.Rm(ctx, id, true); err != nil {
			cancel()
			b.Fatal(err)
		}
		cancel()
	}
	// strace writes a process's last lines as it exits, just after
	// Docker's answer.
	time.Sleep(200 * time.Millisecond)
	procs, err := breakdown.ParseFiles(filepath.Join(traceDir, "trace.*"))
	if err != nil {
		b.Fatal(err)
	}
	fmt.Println("\nbreakdown (under strace -f, so slower than the table; * marks fuseguard's own processes):")
	for _, w := range windows {
		breakdown.Write(os.Stdout, w.title, w.to.Sub(w.from), breakdown.Rows(procs, w.from, w.to))
	}
	printStartup(b, e.stateDir)
}

// printStartup prints what one fuseguard process costs before it does
// anything: the wrapper passing a command through against runc alone, a
// hook run, and the Go package initialisation of the binary.
func printStartup(b *testing.B, stateDir string) {
	b.Helper()
	runc := testenv.RequireBinary(b, "runc")
	env := append(os.Environ(), record.EnvStateDir+"="+stateDir)
	timeCmd := func(stdin []byte, argv ...string) time.Duration {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env, cmd.Stdin = env, bytes.NewReader(stdin)
		begin := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %v\n%s", argv, err, out)
		}
		return time.Since(begin)
	}
	state := []byte(`{"ociVersion":"1.0.2","id":"bench-nonexistent","status":"stopped","bundle":"/nonexistent"}`)
	gostart := gobuild.Binary(b, "github.com/fuseguard/fuseguard/test/cmd/gostart")
	var wrapped, plain, hook, version, floor, truth []time.Duration
	for range 15 {
		wrapped = append(wrapped, timeCmd(nil, fgcmd.Runtime(b), "--version"))
		plain = append(plain, timeCmd(nil, runc, "--version"))
		hook = append(hook, timeCmd(state, fgcmd.Runtime(b), "hook", "--state-dir", stateDir, "poststop"))
		version = append(version, timeCmd(nil, fgcmd.Binary(b), "version"))
		floor = append(floor, timeCmd(nil, gostart))
		truth = append(truth, timeCmd(nil, "/bin/true"))
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fmt.Println("\nstart-up (medians of 15, alternated):")
	fmt.Printf("  fuseguard-runtime --version (wrapper, then exec runc): %.1f ms; runc --version: %.1f ms; the wrapper's cost per passed-through call: %.1f ms\n",
		ms(benchutil.Median(wrapped)), ms(benchutil.Median(plain)), ms(benchutil.Median(wrapped)-benchutil.Median(plain)))
	fmt.Printf("  fuseguard-runtime hook poststop (no record): %.1f ms; fuseguard version: %.1f ms; a Go program of the standard library only: %.1f ms; /bin/true: %.1f ms\n",
		ms(benchutil.Median(hook)), ms(benchutil.Median(version)), ms(benchutil.Median(floor)), ms(benchutil.Median(truth)))
	printInitTrace(b, "fuseguard-runtime (wrapper and hooks)", state, fgcmd.Runtime(b), "hook", "--state-dir", stateDir, "poststop")
	printInitTrace(b, "fuseguard (the full binary)", nil, fgcmd.Binary(b), "version")
	printSyscallSummary(b, env)
}

// printSyscallSummary prints `strace -f -c` of one passed-through wrapper
// call (`fuseguard-runtime --version`, which execs runc): the syscalls of
// the wrapper's start-up and of runc's, by time.
func printSyscallSummary(b *testing.B, env []string) {
	b.Helper()
	out := filepath.Join(b.TempDir(), "strace-c")
	cmd := exec.Command(testenv.RequireBinary(b, "strace"), "-f", "-c", "-o", out, fgcmd.Runtime(b), "--version")
	cmd.Env = env
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("strace -c: %v\n%s", err, o)
	}
	text, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(text), "\n"), "\n")
	fmt.Println("  strace -f -c of fuseguard-runtime --version (the wrapper, then runc), the costliest syscalls:")
	for i, l := range lines {
		// The header and its rule, 8 rows, the total.
		if i < 10 || i == len(lines)-1 {
			fmt.Println("    " + l)
		}
	}
}

// printInitTrace runs argv (stdin on its standard input) under
// GODEBUG=inittrace=1 and prints the package initialisation every process
// of that binary pays: its total, when the last package was ready, and the
// costliest packages.
func printInitTrace(b *testing.B, label string, stdin []byte, argv ...string) {
	b.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("%v: %v\n%s", argv, err, out)
	}
	type pkgInit struct {
		name      string
		at, clock float64
	}
	var inits []pkgInit
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// init PKG @0.52 ms, 0.17 ms clock, 15072 bytes, 95 allocs
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[0] != "init" {
			continue
		}
		at, err1 := strconv.ParseFloat(strings.TrimPrefix(f[2], "@"), 64)
		clock, err2 := strconv.ParseFloat(f[4], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		inits = append(inits, pkgInit{f[1], at, clock})
	}
	var total, last float64
	for _, i := range inits {
		total += i.clock
		last = max(last, i.at+i.clock)
	}
	slices.SortFunc(inits, func(a, b pkgInit) int { return int((b.clock - a.clock) * 1e6) })
	fmt.Printf("  Go package init of %s (GODEBUG=inittrace=1): %d packages, %.2f ms in all, the last ready %.1f ms after start; costliest:", label, len(inits), total, last)
	for _, i := range inits[:min(6, len(inits))] {
		fmt.Printf(" %s %.2f,", i.name, i.clock)
	}
	fmt.Println()
}
