package fuseconn

import (
	"errors"
	"strings"
	"testing"
)

const (
	podA = "0b1e7c6a-4b9d-4f5e-9a53-2d8c1f0e6b7a"
	podB = "5f0c2d1e-8a7b-4c3d-9e2f-1a0b9c8d7e6f"
)

func TestValidatePodUID(t *testing.T) {
	for _, tt := range []struct {
		uid string
		ok  bool
	}{
		{podA, true},
		{podB, true},
		{"00000000-0000-0000-0000-000000000000", true},
		{"", false},
		{strings.ToUpper(podA), false}, // another spelling of a UID: not canonical
		{"0b1e7c6a4b9d4f5e9a532d8c1f0e6b7a", false},
		{"{" + podA + "}", false},
		{podA + "\n", false},
		{podA[:35], false},
		{"0b1e7c6a-4b9d-4f5e-9a53_2d8c1f0e6b7a", false},
		{"0b1e7c6a-4b9d-4f5e-9a53-2d8c1f0e6b7g", false},
		{"../../../../../../../../../../etc/xx", false},
		{"0b1e7c6a-4b9d-4f5e-9a53-2d8c1f0e/../", false},
		{"0b1e7c6a-4b9d-4f5e-9a53-2d8c1f0e6b\x00a", false},
	} {
		err := ValidatePodUID(tt.uid)
		if (err == nil) != tt.ok {
			t.Errorf("ValidatePodUID(%q) = %v, want ok %v", tt.uid, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidPodUID) {
			t.Errorf("ValidatePodUID(%q) = %v, not ErrInvalidPodUID", tt.uid, err)
		}
	}
}

func TestPodUIDFromAnnotations(t *testing.T) {
	for _, tt := range []struct {
		name    string
		ann     map[string]string
		want    string
		wantErr bool
	}{
		{name: "none", ann: nil},
		{name: "other annotations only", ann: map[string]string{"io.kubernetes.cri.container-name": "app"}},
		{name: "containerd CRI", ann: map[string]string{AnnotationSandboxUID: podA}, want: podA},
		{name: "kubelet's name", ann: map[string]string{AnnotationPodUID: podA}, want: podA},
		{name: "both agree", ann: map[string]string{AnnotationSandboxUID: podA, AnnotationPodUID: podA}, want: podA},
		{name: "both disagree", ann: map[string]string{AnnotationSandboxUID: podA, AnnotationPodUID: podB}, wantErr: true},
		{name: "empty value", ann: map[string]string{AnnotationSandboxUID: ""}, wantErr: true},
		{name: "escape attempt", ann: map[string]string{AnnotationPodUID: "../" + podA}, wantErr: true},
		{name: "one valid, one invalid", ann: map[string]string{AnnotationSandboxUID: podA, AnnotationPodUID: podA + "/.."}, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PodUIDFromAnnotations(tt.ann)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("PodUIDFromAnnotations = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && (got != "" || !errors.Is(err, ErrInvalidPodUID)) {
				t.Errorf("error %v with UID %q: want ErrInvalidPodUID and no UID", err, got)
			}
		})
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, tt := range []struct {
		prefix string
		ok     bool
	}{
		{"/var/lib/kubelet/pods", true},
		{"/k", true},
		{"", false},
		{"/", false},
		{"var/lib/kubelet/pods", false},
		{"/var/lib/kubelet/pods/", false},
		{"/var/lib/kubelet/../pods", false},
		{"/var/lib//kubelet/pods", false},
		{"/var/lib/./kubelet", false},
		{"/var/lib/kubelet\n/pods", false},
		{"/var/lib/kubelet\x00/pods", false},
	} {
		if err := ValidatePrefix(tt.prefix); (err == nil) != tt.ok {
			t.Errorf("ValidatePrefix(%q) = %v, want ok %v", tt.prefix, err, tt.ok)
		}
	}
}

func TestPodVolumeDir(t *testing.T) {
	prefixes := []string{"/var/lib/kubelet/pods", "/srv/k/pods"}
	vol := "/var/lib/kubelet/pods/" + podA
	for _, tt := range []struct {
		name       string
		prefixes   []string
		uid, mount string
		want       string
	}{
		{name: "CSI volume mount", prefixes: prefixes, uid: podA, mount: vol + "/volumes/kubernetes.io~csi/vol/mount", want: vol},
		{name: "the pod's directory itself", prefixes: prefixes, uid: podA, mount: vol, want: vol},
		{name: "second prefix", prefixes: prefixes, uid: podA, mount: "/srv/k/pods/" + podA + "/volumes/x", want: "/srv/k/pods/" + podA},
		{name: "another pod's volume", prefixes: prefixes, uid: podA, mount: "/var/lib/kubelet/pods/" + podB + "/volumes/x"},
		{name: "a UID that only starts the same", prefixes: prefixes, uid: podA, mount: vol + "x/volumes"},
		{name: "outside every prefix", prefixes: prefixes, uid: podA, mount: "/mnt/gcs"},
		{name: "the prefix itself", prefixes: prefixes, uid: podA, mount: "/var/lib/kubelet/pods"},
		{name: "climbs out with ..", prefixes: prefixes, uid: podA, mount: vol + "/../" + podB + "/volumes"},
		{name: "climbs out to the root", prefixes: prefixes, uid: podA, mount: vol + "/../../../../../etc"},
		{name: "double slash", prefixes: prefixes, uid: podA, mount: vol + "//volumes"},
		{name: "relative", prefixes: prefixes, uid: podA, mount: "var/lib/kubelet/pods/" + podA},
		{name: "invalid UID names no directory", prefixes: prefixes, uid: "..", mount: "/var/lib/kubelet/pods/../x"},
		{name: "empty UID", prefixes: prefixes, uid: "", mount: "/var/lib/kubelet/pods//x"},
		{name: "invalid prefix matches nothing", prefixes: []string{"/var/lib/kubelet/pods/"}, uid: podA, mount: vol + "/volumes"},
		{name: "root prefix matches nothing", prefixes: []string{"/"}, uid: podA, mount: "/" + podA + "/x"},
		{name: "no prefixes", uid: podA, mount: vol + "/volumes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodVolumeDir(tt.prefixes, tt.uid, tt.mount); got != tt.want {
				t.Errorf("PodVolumeDir(%q, %q, %q) = %q, want %q", tt.prefixes, tt.uid, tt.mount, got, tt.want)
			}
		})
	}
}
