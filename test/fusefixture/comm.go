package fusefixture

import (
	"fmt"
	"os"
	"path/filepath"
)

// EnvComm, when set, names every fusefixture process, as a container
// names its own: tests of escaping put terminal escapes in it. The kernel
// keeps the first 15 bytes.
const EnvComm = "FUSEFIXTURE_COMM"

// setComm names every thread of the process: a thread may write the comm
// of any thread of its group, and threads started later copy their
// creator's.
func setComm(name string) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, task := range tasks {
		if err := os.WriteFile(filepath.Join("/proc/self/task", task.Name(), "comm"), []byte(name), 0); err != nil {
			return fmt.Errorf("set comm: %w", err)
		}
	}
	return nil
}
