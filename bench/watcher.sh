#!/usr/bin/env bash
# bench/watcher.sh: the node watcher at fleet scale, on this machine.
#
# Runs the real `fuseguard watch` over FUSEGUARD_BENCH_CONTAINERS (1000)
# idle containers (each a sleep that is PID 1 of its own PID and mount
# namespaces, recorded in a private state directory) at default settings,
# once with the kernel's exit notifications and once polling
# (--exit-events off), and prints one line per figure with its goal:
# idle CPU (% of a core from /proc/PID/stat utime+stime over the window),
# RSS (VmRSS), and the detection latency p50/p99 from the SIGKILL of a
# wedged W2 container (real FUSE daemon) to its detection, over
# FUSEGUARD_BENCH_WEDGES (10) exits per mode.
#
# The window (FUSEGUARD_BENCH_SECONDS, 62) spans two of the 30 s safety
# checks and rescans, so their cost is in the figure. Everything it starts
# (containers, watchers, FUSE daemons, state directories) is ended by the
# Go benchmark's cleanups, also on failure. Needs root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export FUSEGUARD_BENCH_CONTAINERS=${FUSEGUARD_BENCH_CONTAINERS:-1000}
export FUSEGUARD_BENCH_SECONDS=${FUSEGUARD_BENCH_SECONDS:-62}
export FUSEGUARD_BENCH_WEDGES=${FUSEGUARD_BENCH_WEDGES:-10}
export FUSEGUARD_BENCH_SUMMARY=1
pkg=./internal/watch
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! nice -n 10 go test -count=1 -run '^$' -bench '^BenchmarkWatcher$' -benchtime 1x -timeout 30m "$pkg" >"$out" 2>&1; then
	cat "$out" >&2
	echo "bench/watcher.sh: the watcher benchmark failed" >&2
	exit 1
fi
grep '^watcher ' "$out"
