package killer

import (
	"context"
	"syscall"
	"testing"
	"time"
	"fmt"

	"github.com/fuseguard/fuseguard/test/benchutil"
)

func BenchmarkScratch(b *testing.B) {
	st := map[string][]time.Duration{}
	var tot, wait []time.Duration
	for b.Loop() {
		c := startSleeper(b)
		t0 := time.Now()
		rep, _ := Kill(context.Background(), Target{PID: c.Process.Pid}, Options{})
		t1 := time.Now()
		_ = c.Wait()
		tot = append(tot, rep.Total)
		wait = append(wait, time.Since(t1))
		_ = t0
		for _, s := range rep.Stages { st[s.Name] = append(st[s.Name], s.Duration) }
		c = startSleeper(b)
		t0 = time.Now()
		_ = c.Process.Signal(syscall.SIGKILL)
		_ = c.Wait()
		st["plain"] = append(st["plain"], time.Since(t0))
	}
	for k, v := range st { fmt.Println(k, benchutil.Median(v)) }
	fmt.Println("total", benchutil.Median(tot), "wait", benchutil.Median(wait))
}
