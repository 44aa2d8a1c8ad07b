package killer

import (
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// signalNames decodes a /proc/PID/status signal mask (bit n-1 is signal n).
func signalNames(mask uint64) []string {
	var names []string
	for n := 1; n <= 64; n++ {
		if mask&(1<<(n-1)) == 0 {
			continue
		}
		name := unix.SignalName(syscall.Signal(n))
		if name == "" {
			name = "SIG" + strconv.Itoa(n)
		}
		names = append(names, name)
	}
	return names
}
