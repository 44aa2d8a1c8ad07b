package gobuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/testenv"
)

// buildTimeout bounds one go build of a command of the module (a cold
// build cache on two cores takes about a minute).
const buildTimeout = 5 * time.Minute

// EnvPrebuilt names a directory of commands built beforehand, each named by
// the last element of its package path: where there is no Go toolchain (the
// kernel matrix's VMs, test/kernels), Binary takes them from there instead
// of building.
const EnvPrebuilt = "FUSEGUARD_PREBUILT_DIR"

// builds caches one build per package for the test process: the result
// cannot live in a t.TempDir, which would vanish with the first test that
// asked for it.
var builds sync.Map // pkg → func() (string, error)

// Binary returns the path of the command pkg (an import path, or a path
// relative to the module root such as "./test/cmd/fusefixture"), built once
// per test process (or taken from $FUSEGUARD_PREBUILT_DIR).
//
// The binary lives at $TMPDIR/fuseguard-build-<hash of module root and
// pkg>/<last element of pkg>. Every test process rebuilds it (the build
// cache makes that cheap) into a temporary file and renames it into place,
// which is atomic and safe while other test processes run the old one.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	return Tagged(t, pkg, path.Base(pkg))
}

// Tagged is Binary built with the build tags given and named name (which
// is also its name in $FUSEGUARD_PREBUILT_DIR), such as the lean build of
// cmd/fuseguard, fuseguard-runtime.
func Tagged(t testing.TB, pkg, name string, tags ...string) string {
	t.Helper()
	if dir := os.Getenv(EnvPrebuilt); dir != "" {
		bin := filepath.Join(dir, name)
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s=%s: %v", EnvPrebuilt, dir, err)
		}
		return bin
	}
	testenv.RequireBinary(t, "go")
	key := strings.Join(append([]string{pkg, name}, tags...), "\x00")
	once, _ := builds.LoadOrStore(key, sync.OnceValues(func() (string, error) { return build(pkg, name, tags) }))
	bin, err := once.(func() (string, error))()
	if err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	return bin
}

func build(pkg, name string, tags []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	id := root + "\x00" + pkg
	if len(tags) > 0 || name != path.Base(pkg) {
		id += "\x00" + name + "\x00" + strings.Join(tags, ",")
	}
	sum := sha256.Sum256([]byte(id))
	dir := filepath.Join(os.TempDir(), "fuseguard-build-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "build.*.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // a no-op once renamed

	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", strings.Join(tags, ","), "-o", tmp.Name(), pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w: %s", pkg, err, stderr.String())
	}
	bin := filepath.Join(dir, name)
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// moduleRoot is the directory of the go.mod of the working directory (a
// test's package directory).
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module (GOMOD=%q)", gomod)
	}
	return filepath.Dir(gomod), nil
}
