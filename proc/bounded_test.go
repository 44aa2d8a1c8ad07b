package proc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/test/benchutil"
)

// The bounded reader is tested on FIFOs: open(2) of a FIFO with no writer
// sleeps in the kernel as a read of a locked /proc file does, and a writer
// lets it go. The real lock (a task asleep inside execve) is tested with
// the W6 scenario in test/fixture.

// fifoFS is an FS whose files "stack" of pids are FIFOs with no writer.
func fifoFS(t *testing.T, pids ...int) (FS, func(pid int)) {
	t.Helper()
	root := t.TempDir()
	for _, pid := range pids {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mkfifo(filepath.Join(dir, "stack"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// release opens the writer end and closes it: the blocked open returns
	// and its read sees end of file.
	// An abandoned read's goroutine may not have reached its open yet (a
	// slow VM: make kernels); ENXIO says no reader is there so far.
	release := func(pid int) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			fd, err := unix.Open(filepath.Join(root, strconv.Itoa(pid), "stack"), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if errors.Is(err, unix.ENXIO) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			if err != nil {
				t.Errorf("release %d: %v", pid, err)
				return
			}
			unix.Close(fd)
			return
		}
	}
	return NewFS(root), release
}

// waitAbandoned waits until BlockedReads reports want abandoned reads.
func waitAbandoned(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, abandoned := BlockedReads()
		if abandoned == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d abandoned reads, want %d", abandoned, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The tests below share the process's count of blocked reads: not parallel.

func TestBoundedReadReturnsAtDeadline(t *testing.T) {
	const pid = 1000001
	p, release := fifoFS(t, pid)
	const bound = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	start := time.Now()
	_, err := p.Stack(ctx, pid)
	took := time.Since(start)
	if !errors.Is(err, ErrReadTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked read: err %v, want ErrReadTimeout and DeadlineExceeded", err)
	}
	if took > bound+time.Second {
		t.Errorf("blocked read returned after %v, bound %v", took, bound)
	}
	waitAbandoned(t, 1)

	// A second read of the same task fails at once, even with time left.
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Hour)
	defer cancel2()
	if _, err := p.Stack(ctx2, pid); !errors.Is(err, ErrReadTimeout) {
		t.Fatalf("read of a task with a read still blocked: err %v, want ErrReadTimeout", err)
	}
	if inFlight, _ := BlockedReads(); inFlight != 1 {
		t.Errorf("%d reads in flight, want the one abandoned", inFlight)
	}

	release(pid)
	waitAbandoned(t, 0)
	// Released, the task reads again (the FIFO has no writer: it blocks
	// again, so only check that the read is admitted and bounded).
	ctx3, cancel3 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel3()
	if _, err := p.Stack(ctx3, pid); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read after release: err %v, want its own deadline", err)
	}
	release(pid)
	waitAbandoned(t, 0)
}

func TestBoundedReadCap(t *testing.T) {
	pids := make([]int, MaxBlockedReads+1)
	for i := range pids {
		pids[i] = 2000000 + i
	}
	p, release := fifoFS(t, pids...)
	t.Cleanup(func() {
		for _, pid := range pids[:MaxBlockedReads] {
			release(pid)
		}
		waitAbandoned(t, 0)
	})
	for i, pid := range pids[:MaxBlockedReads] {
		// On a slow machine (a VM without KVM: make kernels) a short
		// deadline can pass before the read starts, which then abandons
		// nothing: read again, with a longer one.
		for bound := time.Millisecond; ; bound *= 2 {
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			_, err := p.Stack(ctx, pid)
			cancel()
			if !errors.Is(err, ErrReadTimeout) {
				t.Fatalf("read %d: err %v, want ErrReadTimeout", pid, err)
			}
			if _, abandoned := BlockedReads(); abandoned == i+1 {
				break
			}
			if bound > time.Second {
				t.Fatalf("read %d: not abandoned at a deadline of %v", pid, bound)
			}
		}
	}
	waitAbandoned(t, MaxBlockedReads)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	start := time.Now()
	_, err := p.Stack(ctx, pids[MaxBlockedReads])
	if !errors.Is(err, ErrTooManyBlockedReads) {
		t.Fatalf("read beyond the cap: err %v, want ErrTooManyBlockedReads", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("read beyond the cap took %v, want at once", took)
	}
	// A real /proc read is refused too while the cap is reached.
	if _, err := NewFS("").Stat(ctx, os.Getpid()); !errors.Is(err, ErrTooManyBlockedReads) {
		t.Fatalf("stat while the cap is reached: err %v, want ErrTooManyBlockedReads", err)
	}
}

func TestBoundedReadNoDeadlineGetsDefault(t *testing.T) {
	// Without a deadline a read that can block is still bounded: check it
	// reads (the default does not cut a normal read short).
	if _, err := NewFS("").Stat(context.Background(), os.Getpid()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewFS("").Stat(ctx, os.Getpid()); !errors.Is(err, ErrReadTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("read with an ended context: err %v, want ErrReadTimeout and Canceled", err)
	}
}

// BenchmarkBoundedRead pairs, in every iteration, a direct read of
// /proc/self/stat with a bounded one (a goroutine that can be abandoned)
// and reports the ratio of the medians: the price of the bound.
func BenchmarkBoundedRead(b *testing.B) {
	p := NewFS("")
	pid := os.Getpid()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	var direct, bounded []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, _, err := p.read(pid, "stat"); err != nil {
			b.Fatal(err)
		}
		direct = append(direct, time.Since(start))
		start = time.Now()
		if _, _, err := p.readBounded(ctx, pid, false, "stat"); err != nil {
			b.Fatal(err)
		}
		bounded = append(bounded, time.Since(start))
	}
	d, bd := benchutil.Median(direct), benchutil.Median(bounded)
	b.ReportMetric(float64(d)/float64(time.Microsecond), "µs/direct")
	b.ReportMetric(float64(bd)/float64(time.Microsecond), "µs/bounded")
	b.ReportMetric(benchutil.Ratio(bd, d), "ratio-bounded/direct")
}
