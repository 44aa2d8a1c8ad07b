package fusefixture

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// eventPrefix starts every progress line (parsed by test/fixture).
const eventPrefix = "fusefixture: "

// emit prints one event line with a single write.
func emit(event string, kv ...any) {
	var b strings.Builder
	b.WriteString(eventPrefix)
	b.WriteString(event)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	b.WriteByte('\n')
	os.Stdout.WriteString(b.String())
}

// ready reports that the process is armed, on stdout and in file when set.
func ready(file, role string) error {
	emit("ready", "role", role)
	if file == "" {
		return nil
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	if _, err := f.WriteString("ready\n"); err != nil {
		f.Close()
		return fmt.Errorf("ready file: %w", err)
	}
	return f.Close()
}

// waitSignal blocks until SIGTERM or SIGINT. (A bare select{} would make the
// Go runtime abort with "all goroutines are asleep".)
func waitSignal() os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	return <-ch
}
