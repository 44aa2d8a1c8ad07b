package dockerd

import (
	"archive/tar"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/testenv"
)

// ImportImage builds an image named name without a registry: a root file
// system of busybox-static (every applet linked in /bin), the usual empty
// directories, and extraFiles (path in the image → host file, copied with
// its mode), streamed as a tar into `docker import`. It returns the image
// reference and fails t when any step fails or ImportTimeout passes.
func (d *Daemon) ImportImage(t testing.TB, name string, extraFiles map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ImportTimeout)
	defer cancel()
	write := RootfsWriter(t, ctx, extraFiles)

	begin := time.Now()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	out, _, err := d.dockerStdin(ctx, pr, "import", "-", name)
	pr.CloseWithError(io.ErrClosedPipe) // unblock the writer if docker quit early
	if err != nil {
		t.Fatalf("dockerd: image %s: %v", name, err)
	}
	t.Logf("imported %s (%s) in %v", name, strings.TrimSpace(out), time.Since(begin).Round(time.Millisecond))
	return name
}

// RootfsWriter returns what writes ImportImage's root file system as a tar
// stream (busybox-static with every applet linked in /bin, the usual empty
// directories, and extraFiles), for any engine's import. It fails t when
// busybox-static is missing or lists no applets within ctx.
func RootfsWriter(t testing.TB, ctx context.Context, extraFiles map[string]string) func(io.Writer) error {
	t.Helper()
	busybox := testenv.RequireBinary(t, "busybox")
	if err := requireStatic(busybox); err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	applets, err := busyboxApplets(ctx, busybox)
	if err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	return func(w io.Writer) error { return writeRootfs(w, busybox, applets, extraFiles) }
}

// requireStatic refuses a dynamically linked busybox: the image has no
// libc for it.
func requireStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("busybox: %w", err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; install busybox-static", p)
		}
	}
	return nil
}

func busyboxApplets(ctx context.Context, busybox string) ([]string, error) {
	out, err := exec.CommandContext(ctx, busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busybox, err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("%s --list printed no applets", busybox)
	}
	return applets, nil
}

// writeRootfs writes the image's root file system as a tar stream.
func writeRootfs(w io.Writer, busybox string, applets []string, extra map[string]string) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	mkdir := func(p string) error {
		var missing []string
		for p = path.Clean(p); p != "." && p != "/" && !dirs[p]; p = path.Dir(p) {
			missing = append(missing, p)
		}
		for i := len(missing) - 1; i >= 0; i-- {
			dirs[missing[i]] = true
			mode := int64(0o755)
			if missing[i] == "tmp" {
				mode = 0o1777
			}
			hdr := &tar.Header{Typeflag: tar.TypeDir, Name: missing[i] + "/", Mode: mode, ModTime: time.Unix(0, 0)}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
		}
		return nil
	}
	for _, dir := range []string{"bin", "dev", "etc", "proc", "sys", "tmp", "mnt", "root", "run", "var"} {
		if err := mkdir(dir); err != nil {
			return err
		}
	}
	if err := addFile(tw, "bin/busybox", busybox); err != nil {
		return err
	}
	for _, a := range applets {
		hdr := &tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(extra))
	for name := range extra {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		rel := strings.TrimPrefix(path.Clean("/"+name), "/")
		if rel == "" {
			return fmt.Errorf("extra file %q: not a file path", name)
		}
		if err := mkdir(path.Dir(rel)); err != nil {
			return err
		}
		if err := addFile(tw, rel, extra[name]); err != nil {
			return err
		}
	}
	return tw.Close()
}

// addFile copies the host file src into the tar as name, keeping its
// permission bits.
func addFile(tw *tar.Writer, name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", src)
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(fi.Mode().Perm()), Size: fi.Size(), ModTime: fi.ModTime()}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return nil
}
