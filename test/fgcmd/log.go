package fgcmd

import (
	"bufio"
	"os"
	"strings"
)

// LogLines returns the JSON lines of a state-dir log (hook.log,
// runtime.log) that mention container id.
func LogLines(path, id string) []string {
	return LogLinesBy(path, "id", id)
}

// LogLinesBy returns the JSON lines of a state-dir log whose field key is
// value (the watcher names a container "container", not "id"); none when
// the log does not exist.
func LogLinesBy(path, key, value string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"`+key+`":"`+value+`"`) {
			out = append(out, sc.Text())
		}
	}
	return out
}
