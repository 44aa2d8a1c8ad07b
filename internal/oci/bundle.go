package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/fuseguard/fuseguard/internal/volatile"
)

// ErrNoConfig is returned when a bundle has no config.json.
var ErrNoConfig = errors.New("bundle has no config.json")

// PatchBundle injects hooks into <bundleDir>/config.json (see InjectHooks).
// The file is rewritten only when it changed, atomically: a temporary file
// in the same directory with the original's mode and owner is written,
// fsynced (unless on tmpfs or ramfs) and renamed over it, so the runtime
// never reads half a config.
// (A config.json that is a symlink is thereby replaced by a regular file.)
func PatchBundle(bundleDir string, hooks HookSet) (changed bool, err error) {
	path := filepath.Join(bundleDir, "config.json")
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("%w: %w", ErrNoConfig, err)
	}
	if err != nil {
		return false, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	out, changed, err := InjectHooks(data, hooks)
	if err != nil || !changed {
		return false, err
	}
	if err := writeFileAtomic(path, out, fi); err != nil {
		return false, err
	}
	return true, nil
}

// writeFileAtomic replaces path with data, keeping like's mode and owner.
func writeFileAtomic(path string, data []byte, like fs.FileInfo) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if err != nil && !renamed {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(like.Mode().Perm()); err != nil {
		return err
	}
	if err = sameOwner(f, like); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	// A bundle on tmpfs (containerd's and Docker's under /run) has nothing
	// to make durable.
	mem := volatile.Dir(dir)
	if !mem {
		if err = f.Sync(); err != nil {
			return err
		}
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	renamed = true
	if mem {
		return nil
	}
	// The rename is durable only once the directory is synced.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// sameOwner gives f like's owner when it differs (a file made by root in a
// rootless bundle, or in a setgid directory).
func sameOwner(f *os.File, like fs.FileInfo) error {
	want, ok := like.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if got, ok := fi.Sys().(*syscall.Stat_t); ok && got.Uid == want.Uid && got.Gid == want.Gid {
		return nil
	}
	return f.Chown(int(want.Uid), int(want.Gid))
}
