package proc

import "strings"

// Wchan reads /proc/TID/wchan: the function a sleeping task waits in, ""
// when it waits in none (the kernel prints "0", or nothing).
func (fs FS) Wchan(tid int) (string, error) {
	b, _, err := fs.readMaybeEmpty(tid, "wchan")
	if err != nil {
		return "", err
	}
	w := strings.TrimSpace(string(b))
	if w == "0" {
		return "", nil
	}
	return w, nil
}
