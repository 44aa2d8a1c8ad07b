#!/usr/bin/env bash
# Prints fuseguard's figures. Every figure is a ratio (or a duration next to
# its baseline) measured in the same run, because these machines are noisy:
# the pairs are alternated and the medians compared. Needs root and
# /dev/fuse; the Docker figures also need docker.io, runc and strace.
#
# First issue 14's table (the healthy path: docker run, docker kill,
# killer.Kill, the watcher) with the per-call breakdown of docker run and
# docker kill, then the other benchmarks (skipped with BENCH_HEALTHY_ONLY=1).
# FUSEGUARD_BENCH_BEFORE=<an earlier fuseguard binary> adds that build to
# every round of docker run and kill: a before/after in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# go_bench PKG REGEX BENCHTIME: runs the benchmarks, keeps their result
# lines in $out and prints everything but go test's preamble.
go_bench() {
	echo "== $1 $2"
	go test -run='^$' -bench="$2" -benchtime="$3" -timeout 20m "$1" | tee -a "$out" |
		grep -vE '^(goos|goarch|pkg|cpu):' || true
}

echo "### issue 14: the healthy path"
# 12 alternated pairs of docker run and of docker kill, then the breakdown.
go_bench ./test/e2e/ '^BenchmarkHealthy$' 12x
go_bench ./killer/ '^BenchmarkKillHealthy$' 300x
watcher=$(mktemp)
trap 'rm -f "$out" "$watcher"' EXIT
if [ -e bench/watcher.sh ]; then
	echo "== bench/watcher.sh"
	bash bench/watcher.sh | tee "$watcher" || echo "watcher: bench/watcher.sh failed" | tee "$watcher"
else
	echo "watcher: not measured (bench/watcher.sh missing)" | tee "$watcher"
fi

# BENCH_HEALTHY_ONLY=1 stops after issue 14's figures.
if [ -z "${BENCH_HEALTHY_ONLY:-}" ]; then
	echo
	echo "### other figures"
	go_bench ./killer/ '^BenchmarkW2Rescue$' 3x
	go_bench ./killer/ '^BenchmarkDiagnose$' 20x
	go_bench ./executor/ '^BenchmarkKill/healthy$' 15x
	go_bench ./executor/ '^BenchmarkKill/W2$' 1x
	go_bench ./internal/watch/ '^BenchmarkWatcher' 1x
	go_bench ./test/e2e/ '^BenchmarkDocker/kill-W2$' 3x
	go_bench ./test/tracing/ '^Benchmark(HookRun|KillW2)$' 8x
	go_bench ./internal/telemetry/otelsdk/ '^BenchmarkOverhead' 200x
fi

echo
echo "### issue 14's table (medians of alternated pairs, this run; rerun on an idle machine for the record)"
# A result line: name, N, ns/op value and unit, then value-unit pairs.
awk '
function row(what, fg, base, unit, ratio, goal,   verdict) {
	verdict = (ratio <= goal) ? "meets" : "OVER"
	printf "%-52s %9.2f %-3s vs %9.2f %-3s  ratio %5.3f  goal <= %.2f  %s\n", what, fg, unit, base, unit, ratio, goal, verdict
}
/^Benchmark/ {
	delete m
	for (i = 3; i < NF; i += 2) m[$(i + 1)] = $i
	name = $1; sub(/-[0-9]+$/, "", name)
	if (name == "BenchmarkHealthy/run") {
		row("docker run --rm … true: fuseguard vs runc", m["fuseguard-ms"], m["runc-ms"], "ms", m["ratio"], m["goal"])
		if ("before-ms" in m)
			row("  the same, the FUSEGUARD_BENCH_BEFORE build", m["before-ms"], m["runc-ms"], "ms", m["before-ratio"], m["goal"])
	} else if (name == "BenchmarkHealthy/kill") {
		row("healthy docker kill: fuseguard vs runc", m["fuseguard-ms"], m["runc-ms"], "ms", m["ratio"], m["goal"])
		if ("before-ms" in m)
			row("  the same, the FUSEGUARD_BENCH_BEFORE build", m["before-ms"], m["runc-ms"], "ms", m["before-ratio"], m["goal"])
	}
	else if (name == "BenchmarkKillHealthy") {
		row("killer.Kill vs kill(2)+wait of a healthy process", m["fuseguard-µs"], m["plain-µs"], "µs", m["ratio"], 1.05)
		printf "  of which the safe floor (pidfd, held mount table) vs kill(2)+wait: %.3f; killer.Kill vs the floor: %.3f\n", m["floor-ratio"], m["fuseguard/floor"]
		printf "  killer.Kill stages (µs): open %.1f, snapshot %.1f, signal %.1f, verify %.1f; its bookkeeping (deadline, spans, report, closes) %.1f; the caller'"'"'s reap %.1f\n", m["open-µs"], m["snapshot-µs"], m["signal-µs"], m["verify-µs"], m["bookkeeping-µs"], m["reap-µs"]
	}
}' "$out"
cat "$watcher"

echo
echo "all result lines:"
grep -E '^Benchmark' "$out" | sed -E 's/[[:space:]]+/ /g'
if grep -q FAIL "$out"; then exit 1; fi
