package fusefixture

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sync"

	"golang.org/x/sys/unix"
)

// initCmd is PID 1 of a new PID and mount namespace, like docker-init: it
// starts its children and reaps every task it inherits until none is left.
// Killing it makes the kernel tear the namespace down in
// zap_pid_ns_processes, which is the wait fuseguard rescues.
func initCmd(args []string) error {
	fl := flag.NewFlagSet("init", flag.ExitOnError)
	private := fl.Bool("private", true, "make / rprivate first, so that no mount propagates back to the parent namespace")
	copies := fl.Int("n", 1, "start this many copies of the command")
	readyFile := fl.String("ready", "", "also append \"ready\" to this file once the children are started")
	fl.Parse(args)
	if fl.NArg() == 0 || *copies < 1 {
		return errors.New("usage: init [-private=true] [-n N] [-ready FILE] -- cmd args…")
	}
	if *private {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("make / rprivate: %w", err)
		}
	}
	argv := fl.Args()
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if err := startCopies(path, argv, *copies); err != nil {
		return err
	}
	if err := ready(*readyFile, "init"); err != nil {
		return err
	}
	return reapAll()
}

// startCopies starts n copies of argv, several at a time: each start waits
// for its exec to finish.
func startCopies(path string, argv []string, n int) error {
	attr := &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, startParallelism)
	)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			p, err := os.StartProcess(path, argv, attr)
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("start %s: %w", argv[0], err))
				mu.Unlock()
				return
			}
			if n == 1 {
				emit("spawned", "by", "init", "pid", p.Pid)
			}
			// Reaping is done with wait4(-1); only drop the handle.
			p.Release()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startParallelism bounds concurrent starts in startCopies.
const startParallelism = 16

// reapAll reaps children until there are none, then exits with the status
// of the last one reaped.
func reapAll() error {
	code := 0
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ECHILD):
			os.Exit(code)
		case err != nil:
			return fmt.Errorf("wait4: %w", err)
		}
		code = exitCode(ws)
		emit("reaped", "by", "init", "pid", pid, "status", code)
	}
}

func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
