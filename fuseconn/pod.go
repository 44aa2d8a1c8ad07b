package fuseconn

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// OCI annotations that name a container's Kubernetes pod. containerd's CRI
// plugin (1.6 and 2.x) writes AnnotationSandboxUID on every container of
// a pod; AnnotationPodUID is the kubelet's name for the same value (a
// label in containerd, an annotation with other runtimes and in bundles
// written by hand).
const (
	AnnotationSandboxUID = "io.kubernetes.cri.sandbox-uid"
	AnnotationPodUID     = "io.kubernetes.pod.uid"
)

// Sentinel errors of the pod checks.
var (
	// ErrInvalidPodUID: an annotation's value is not a pod UID in RFC
	// 4122 form, or two annotations disagree.
	ErrInvalidPodUID = errors.New("invalid pod UID")
	// ErrInvalidPrefix: a dedicated prefix is not a clean absolute path.
	ErrInvalidPrefix = errors.New("invalid dedicated prefix")
)

// podUIDLen is len("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx").
const podUIDLen = 36

// ValidatePodUID accepts a UID in the canonical RFC 4122 text form the
// API server writes: 36 bytes, lowercase hex in groups of 8-4-4-4-12. The
// UID becomes a path element under a dedicated prefix, and it comes from
// annotations that whoever creates the container writes: nothing but this
// form ("..", "/", NUL, uppercase spellings of another pod's UID) gets
// through.
func ValidatePodUID(uid string) error {
	if len(uid) != podUIDLen {
		return fmt.Errorf("%w: %q: want 36 characters in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", ErrInvalidPodUID, uid)
	}
	for i := 0; i < len(uid); i++ {
		b := uid[i]
		switch i {
		case 8, 13, 18, 23:
			if b != '-' {
				return fmt.Errorf("%w: %q: byte %d is %q, want '-'", ErrInvalidPodUID, uid, i, b)
			}
		default:
			if !('0' <= b && b <= '9' || 'a' <= b && b <= 'f') {
				return fmt.Errorf("%w: %q: byte %d is %q, want a lowercase hex digit", ErrInvalidPodUID, uid, i, b)
			}
		}
	}
	return nil
}

// PodUIDFromAnnotations returns the pod UID that a container's OCI
// annotations name, "" when none does. Both annotations are read; when
// both are set they must agree. A value that is not a valid UID is an
// error (ErrInvalidPodUID): such a container belongs to no pod as far as
// fuseguard is concerned.
func PodUIDFromAnnotations(annotations map[string]string) (string, error) {
	uid := ""
	for _, key := range []string{AnnotationSandboxUID, AnnotationPodUID} {
		v, ok := annotations[key]
		if !ok {
			continue
		}
		if err := ValidatePodUID(v); err != nil {
			return "", fmt.Errorf("annotation %s: %w", key, err)
		}
		if uid != "" && v != uid {
			return "", fmt.Errorf("%w: annotations %s and %s disagree (%q, %q)", ErrInvalidPodUID, AnnotationSandboxUID, AnnotationPodUID, uid, v)
		}
		uid = v
	}
	return uid, nil
}

// ValidatePrefix accepts a dedicated prefix: an absolute, clean path
// (path.Clean leaves it unchanged: no "..", ".", "//" or trailing slash)
// other than "/", without NUL or newline.
func ValidatePrefix(prefix string) error {
	switch {
	case prefix == "":
		return fmt.Errorf("%w: empty", ErrInvalidPrefix)
	case !strings.HasPrefix(prefix, "/"):
		return fmt.Errorf("%w: %q: not an absolute path", ErrInvalidPrefix, prefix)
	case prefix == "/":
		return fmt.Errorf("%w: %q: every mount would be under it", ErrInvalidPrefix, prefix)
	case path.Clean(prefix) != prefix:
		return fmt.Errorf("%w: %q: not a clean path (want %q)", ErrInvalidPrefix, prefix, path.Clean(prefix))
	case strings.ContainsAny(prefix, "\x00\n"):
		return fmt.Errorf("%w: %q: NUL or newline", ErrInvalidPrefix, prefix)
	}
	return nil
}

// PodVolumeDir returns the first directory prefix/<uid> of prefixes that
// holds mountPoint (or is it), "" when none does. uid must be valid
// (ValidatePodUID) and every prefix too (ValidatePrefix): an invalid one
// matches nothing. A mount point that is not clean (the kernel prints
// clean ones; a " (deleted)" suffix or a path with ".." is not) matches
// nothing either, so no path can climb out of the pod's directory.
func PodVolumeDir(prefixes []string, uid, mountPoint string) string {
	if ValidatePodUID(uid) != nil || !strings.HasPrefix(mountPoint, "/") || path.Clean(mountPoint) != mountPoint {
		return ""
	}
	for _, p := range prefixes {
		if ValidatePrefix(p) != nil {
			continue
		}
		dir := p + "/" + uid
		if mountPoint == dir || strings.HasPrefix(mountPoint, dir+"/") {
			return dir
		}
	}
	return ""
}
