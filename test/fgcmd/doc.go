// Package fgcmd gives tests the fuseguard command as processes run it: the
// binary, its fuseguard-runtime link (the runtime wrapper), runtime entries
// for a dockerd's daemon.json, and the JSON lines of its state-directory
// logs.
package fgcmd
