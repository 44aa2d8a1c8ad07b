#!/usr/bin/env bash
# Prints fuseguard's figures. Every figure is a ratio (or a duration next to
# its baseline) measured in the same run, because these machines are noisy.
# Needs root and /dev/fuse; the Docker figures also need docker.io and runc.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT

run() { # run PKG REGEX BENCHTIME
	echo "== $1 $2"
	go test -run='^$' -bench="$2" -benchtime="$3" -timeout 20m "$1" | tee -a "$out" | grep -E '^Benchmark|FAIL' || true
}

run ./killer/ '^BenchmarkKillHealthy$' 300x
run ./killer/ '^BenchmarkW2Rescue$' 3x
run ./killer/ '^BenchmarkDiagnose$' 20x
run ./executor/ '^BenchmarkKill/healthy$' 15x
run ./executor/ '^BenchmarkKill/W2$' 1x
run ./test/e2e/ '^BenchmarkDocker' 6x
run ./internal/watch/ '^BenchmarkWatcher' 1x
run ./test/tracing/ '^Benchmark(HookRun|KillW2)$' 8x
run ./internal/telemetry/otelsdk/ '^BenchmarkOverhead' 200x
for f in bench/*.sh; do
	[ -e "$f" ] || continue
	echo "== $f"
	bash "$f"
done

echo
echo "summary (goals: killer kill ratio ≤ 1.05, executor and docker ratios ≤ 1.10, watcher CPU ≤ 1 % and RSS ≤ 40 MiB for 1000 containers):"
grep -E '^Benchmark' "$out" | sed -E 's/[[:space:]]+/ /g'
if grep -q FAIL "$out"; then exit 1; fi
