package cri

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/dockerd"
)

// ImportTimeout bounds building and importing one image.
const ImportTimeout = 60 * time.Second

// ImportImage builds the image name (a full reference such as
// docker.io/fgtest/x:1) without a registry — one layer of busybox-static
// plus extraFiles (path in the image → host file), cmd as its Cmd — as a
// docker-archive tarball, and imports it with `ctr images import` into the
// CRI's namespace, unpacked for the native snapshotter.
func (d *Daemon) ImportImage(t testing.TB, name string, cmd []string, extraFiles map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ImportTimeout)
	defer cancel()
	begin := time.Now()
	archive := filepath.Join(d.Dir, "image-"+strings.NewReplacer("/", "_", ":", "_").Replace(name)+".tar")
	if err := writeDockerArchive(ctx, archive, name, cmd, extraFiles); err != nil {
		t.Fatalf("image %s: %v", name, err)
	}
	// --local: the client unpacks into the named snapshotter itself.
	if _, err := d.Ctr(ctx, nil, "images", "import", "--local", "--snapshotter", "native", archive); err != nil {
		t.Fatalf("image %s: %v", name, err)
	}
	if _, err := d.Crictl(ctx, "inspecti", name); err != nil {
		t.Fatalf("image %s imported but unknown to the CRI: %v", name, err)
	}
	t.Logf("imported %s in %v", name, time.Since(begin).Round(time.Millisecond))
	return name
}

// writeDockerArchive writes the docker-archive (`docker save` format) of a
// one-layer image to path.
func writeDockerArchive(ctx context.Context, path, name string, cmd []string, extraFiles map[string]string) error {
	layer, err := os.CreateTemp(filepath.Dir(path), "layer-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(layer.Name())
	defer layer.Close()
	h := sha256.New()
	if err := dockerd.WriteRootfs(ctx, io.MultiWriter(layer, h), extraFiles); err != nil {
		return fmt.Errorf("root file system: %w", err)
	}
	diffID := "sha256:" + hex.EncodeToString(h.Sum(nil))
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config":       map[string]any{"Cmd": cmd, "Env": []string{"PATH=/bin"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	if err != nil {
		return err
	}
	manifest, err := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{name}, "Layers": []string{"layer.tar"}}})
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, e := range []struct {
		name string
		data []byte
	}{{"manifest.json", manifest}, {"config.json", config}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	fi, err := layer.Stat()
	if err != nil {
		return err
	}
	if _, err := layer.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "layer.tar", Mode: 0o644, Size: fi.Size(), ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, layer); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
