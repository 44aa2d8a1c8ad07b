package proc

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Frame is one line of /proc/PID/stack: "[<0>] fuse_flush+0x155/0x190 [fuse]".
type Frame struct {
	Function string
	Offset   uint64
	Size     uint64
	Module   string // "" for built-in code
}

// Base is the function name without the suffixes the compiler appends to
// clones ("put_files_struct.part.0", ".isra.0", ".constprop.0", ".cold"):
// C identifiers have no '.', so everything from the first one is a suffix.
func (f Frame) Base() string {
	base, _, _ := strings.Cut(f.Function, ".")
	return base
}

// String formats the frame as the kernel does, without the address prefix.
func (f Frame) String() string {
	s := fmt.Sprintf("%s+%#x/%#x", f.Function, f.Offset, f.Size)
	if f.Module != "" {
		s += " [" + f.Module + "]"
	}
	return s
}

// FrameZapPidNS is the kernel function in which a PID namespace's init,
// dying, waits for every other task of the namespace to be reaped
// (kernel/pid_namespace.c): the frame killer.InZap looks for.
const FrameZapPidNS = "zap_pid_ns_processes"

// Stack is a kernel stack, innermost frame first.
type Stack []Frame

// Has reports whether any frame is the function fn, compared by Base so
// compiler clones match (fn may also name a clone exactly).
func (s Stack) Has(fn string) bool {
	for _, f := range s {
		if f.Base() == fn || f.Function == fn {
			return true
		}
	}
	return false
}

// Top is the innermost frame, the zero Frame for an empty stack.
func (s Stack) Top() Frame {
	if len(s) == 0 {
		return Frame{}
	}
	return s[0]
}

// String is the stack on one line, innermost first: "a <- b <- c".
func (s Stack) String() string {
	names := make([]string, len(s))
	for i, f := range s {
		names[i] = f.Function
	}
	return strings.Join(names, " <- ")
}

// Stack reads /proc/TID/stack. An empty stack (a task on a CPU, or one the
// kernel cannot unwind) is ErrUnreadable. The read takes the task's
// exec_update_lock (lock_trace), so it is bounded by ctx: ErrReadTimeout.
func (fs FS) Stack(ctx context.Context, tid int) (Stack, error) {
	b, p, err := fs.readBounded(ctx, tid, false, "stack")
	if err != nil {
		return nil, err
	}
	s, err := ParseStack(b)
	if err != nil {
		return nil, fmt.Errorf("proc: parse %s: %w", p, err)
	}
	return s, nil
}

// ParseStack parses the bytes of /proc/TID/stack; it needs at least one frame.
func ParseStack(b []byte) (Stack, error) {
	var s Stack
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		n++
		if line == "" {
			continue
		}
		f, err := parseFrame(line)
		if err != nil {
			return nil, fmt.Errorf("stack: line %d: %w", n, err)
		}
		s = append(s, f)
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("stack: no frames")
	}
	return s, nil
}

// parseFrame parses "[<addr>] symbol+0xoff/0xsize [module]". A symbol the
// kernel cannot name is printed as a bare address without +off/size.
func parseFrame(line string) (Frame, error) {
	addr, rest, ok := strings.Cut(line, "] ")
	if !ok || !strings.HasPrefix(addr, "[<") || !strings.HasSuffix(addr, ">") {
		return Frame{}, fmt.Errorf("%.60q: no \"[<addr>] \" prefix", line)
	}
	f := strings.Fields(rest)
	var fr Frame
	switch len(f) {
	case 2:
		mod := f[1]
		if len(mod) < 3 || mod[0] != '[' || mod[len(mod)-1] != ']' {
			return Frame{}, fmt.Errorf("%.60q: module %.30q not \"[name]\"", line, mod)
		}
		fr.Module = mod[1 : len(mod)-1]
	case 1:
	default:
		return Frame{}, fmt.Errorf("%.60q: want \"symbol+off/size [module]\"", line)
	}
	sym := f[0]
	i := strings.LastIndexByte(sym, '+')
	if i < 0 {
		fr.Function = sym
		return fr, nil
	}
	fr.Function = sym[:i]
	if fr.Function == "" {
		return Frame{}, fmt.Errorf("%.60q: empty function", line)
	}
	off, size, ok := strings.Cut(sym[i+1:], "/")
	if !ok {
		return Frame{}, fmt.Errorf("%.60q: no offset/size", line)
	}
	var err error
	if fr.Offset, err = parseHex(off); err != nil {
		return Frame{}, fmt.Errorf("%.60q: offset: %w", line, err)
	}
	if fr.Size, err = parseHex(size); err != nil {
		return Frame{}, fmt.Errorf("%.60q: size: %w", line, err)
	}
	return fr, nil
}

// parseHex parses the kernel's "0x%llx".
func parseHex(s string) (uint64, error) {
	h, ok := strings.CutPrefix(s, "0x")
	if !ok {
		return 0, fmt.Errorf("%.30q: no 0x prefix", s)
	}
	return strconv.ParseUint(h, 16, 64)
}
