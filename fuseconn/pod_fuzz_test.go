package fuseconn

import (
	"path"
	"strings"
	"testing"
)

// FuzzPodVolumeDir: whatever a container writes in its annotations and
// whatever mount point a table shows, a UID is either refused or in its
// strict form, and a mount point is only ever placed in the pod's own
// directory: a lexically clean path below <prefix>/<uid>, never the
// prefix, never another directory, never above it.
func FuzzPodVolumeDir(f *testing.F) {
	for _, s := range [][3]string{
		{podA, "", "/var/lib/kubelet/pods/" + podA + "/volumes/kubernetes.io~csi/vol/mount"},
		{"", podA, "/var/lib/kubelet/pods/" + podA},
		{podA, podB, "/var/lib/kubelet/pods/" + podB + "/volumes"},
		{"../" + podA, "", "/var/lib/kubelet/pods/" + podA + "/../x"},
		{strings.ToUpper(podA), "", "/var/lib/kubelet/pods/" + strings.ToUpper(podA)},
		{podA, "", "/var/lib/kubelet/pods/" + podA + "x"},
		{podA, "", "/var/lib/kubelet/pods/" + podA + "//x"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	const prefix = "/var/lib/kubelet/pods"
	f.Fuzz(func(t *testing.T, sandboxUID, podUID, mountPoint string) {
		ann := map[string]string{}
		if sandboxUID != "" {
			ann[AnnotationSandboxUID] = sandboxUID
		}
		if podUID != "" {
			ann[AnnotationPodUID] = podUID
		}
		uid, err := PodUIDFromAnnotations(ann)
		if err != nil {
			if uid != "" {
				t.Fatalf("refused annotations %q gave UID %q", ann, uid)
			}
			return
		}
		if uid != "" && (ValidatePodUID(uid) != nil || (uid != sandboxUID && uid != podUID)) {
			t.Fatalf("UID %q from %q is not one of them in strict form", uid, ann)
		}
		dir := PodVolumeDir([]string{prefix}, uid, mountPoint)
		if dir == "" {
			return
		}
		if uid == "" || dir != prefix+"/"+uid {
			t.Fatalf("PodVolumeDir(%q, %q) = %q, want %s/<uid> or nothing", uid, mountPoint, dir, prefix)
		}
		if path.Clean(mountPoint) != mountPoint || (mountPoint != dir && !strings.HasPrefix(mountPoint, dir+"/")) {
			t.Fatalf("mount point %q placed in %q", mountPoint, dir)
		}
		for _, elem := range strings.Split(mountPoint, "/") {
			if elem == ".." || elem == "." {
				t.Fatalf("mount point %q with %q placed in %q", mountPoint, elem, dir)
			}
		}
	})
}
