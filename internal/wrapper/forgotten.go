package wrapper

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/record"
)

// runtimeForgot reports whether the runtime has provably no container
// inv.ContainerID: its command line names its state root (--root, which
// containerd's shim always passes) and the root holds no directory for
// the id. runc makes that directory at create, before init exists, and
// removes it at delete, after init is gone; so `<runtime> state` would
// only fail, and the wrapper need not start it. Docker deletes every
// container twice (the shim's delete, then its own delete --force), and
// the second one, whose record poststop already removed, skips a process.
// Anything uncertain (no --root, an id that is not a plain file name, a
// stat error other than "does not exist") answers false: ask the runtime.
func runtimeForgot(inv oci.Invocation) bool {
	root := globalRoot(inv.GlobalFlags)
	if root == "" || record.ValidateID(inv.ContainerID) != nil {
		return false
	}
	_, err := os.Lstat(filepath.Join(root, inv.ContainerID))
	return errors.Is(err, fs.ErrNotExist)
}

// globalRoot is the value of runc's global --root flag, "" when absent.
// The values of runc's other global flags are skipped, so that a --log
// whose value looks like --root=… is not taken for one.
func globalRoot(flags []string) string {
	root := ""
	for i := 0; i < len(flags); i++ {
		f := flags[i]
		if f == "--" || !strings.HasPrefix(f, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(f, "-"), "=")
		if !oci.GlobalFlagTakesValue(name) {
			continue
		}
		if !hasValue {
			if i+1 >= len(flags) {
				return ""
			}
			i++
			value = flags[i]
		}
		if name == "root" {
			root = value // the last one wins, as in runc's flag parsing
		}
	}
	return root
}
