// Command fuseguard keeps containers from wedging on FUSE: an OCI hook and
// runtime wrapper that record each container's FUSE connections, and a
// bounded kill that aborts exactly the container's stuck connections when
// init cannot finish dying.
//
// Exit codes: 0 success; 1 the target is still stuck (or another failure);
// 2 usage error; 3 no such process, or the pid was reused.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, filepath.Base(os.Args[0]), os.Args[1:])
	stop()
	os.Exit(code)
}
