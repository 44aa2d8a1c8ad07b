package doctor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fuseguard/fuseguard/internal/untrusted"
	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/record"
)

// CheckWatcher reports whether a node watcher holds the state dir's lock.
// None is a warning, not a failure: kills through the runtime wrapper and
// `fuseguard kill` are rescued without it, and the hook starts one at the
// next container start (unless FUSEGUARD_WATCHER=0); until then a
// container whose init gets stuck exiting on its own is not rescued.
func CheckWatcher(stateDir string) Check {
	c := Check{Name: "watcher"}
	dir := untrusted.Text(stateDir)
	pid, err := watch.Holder(stateDir)
	switch {
	case err != nil:
		c.Status, c.Detail = Warn, untrusted.Line(err.Error())
		c.Fix = "check " + untrusted.Text(filepath.Join(stateDir, watch.LockName))
	case pid > 0:
		c.Status, c.Detail = OK, fmt.Sprintf("running, pid %d, for %s", pid, dir)
	case pid < 0:
		c.Status, c.Detail = OK, "running, pid unknown, for "+dir
	default:
		c.Status = Warn
		c.Detail = "no watcher for " + dir + ": a container stuck exiting on its own is not rescued until the hook starts one"
		c.Fix = "systemctl enable --now fuseguard-watch (deploy/fuseguard-watch.service), or run fuseguard watch --state-dir " + dir
	}
	return c
}

// CheckStateDir checks the state directory as every command does before
// trusting its records: root-owned, 0700, not a symlink.
func CheckStateDir(stateDir string) Check {
	c := Check{Name: "state dir"}
	dir := untrusted.Text(stateDir)
	if err := record.CheckStateDir(stateDir); err != nil {
		c.Status, c.Detail = Fail, untrusted.Line(err.Error())
		c.Fix = fmt.Sprintf("chown root:root %s && chmod 0700 %s (a symlink: replace it with a directory)", dir, dir)
		return c
	}
	if _, err := os.Lstat(stateDir); errors.Is(err, os.ErrNotExist) {
		c.Status, c.Detail = OK, dir+" does not exist yet: fuseguard creates it 0700 at first use"
		return c
	}
	c.Status, c.Detail = OK, fmt.Sprintf("%s is a directory owned by uid %d, mode 0700", dir, os.Geteuid())
	return c
}

// CheckExitEvents reports whether the watcher can have the kernel's
// taskstats exit notifications, which tell it which container's init
// begins to exit. Without them it works as well, polling every init.
func CheckExitEvents() Check {
	c := Check{Name: "exit notifications"}
	if err := watch.ProbeExitEvents(); err != nil {
		c.Status, c.Detail = Warn, untrusted.Line(err.Error())+": the watcher polls every init's exit state instead (about 1.5 % of a core per 1000 containers at the default check interval)"
		c.Fix = "run the watcher as root with CAP_NET_ADMIN in the host's user and PID namespaces, on a kernel with CONFIG_TASKSTATS"
		return c
	}
	c.Status, c.Detail = OK, "taskstats exit notifications work: the watcher checks an init only when it begins to exit"
	return c
}
