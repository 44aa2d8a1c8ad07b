#!/usr/bin/env bash
# Runs every Go fuzz target in the module for $FUZZTIME each (default 3s).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-3s}
count=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

fuzz_one() { go test -run='^$' -fuzz="^${2}\$" -fuzztime="$fuzztime" "$1" >"$log" 2>&1; }
fail() {
	cat "$log"
	echo "fuzz: $1 $2 FAILED"
	exit 1
}
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		echo "fuzz: $pkg $target ($fuzztime)"
		if ! fuzz_one "$pkg" "$target"; then
			# Go's fuzzer sometimes reports "context deadline exceeded" when
			# -fuzztime ends mid-run, with no failing input: run it again.
			if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
				echo "fuzz: $pkg $target: deadline flake of the Go fuzzer, running again"
				fuzz_one "$pkg" "$target" || fail "$pkg" "$target"
			else
				fail "$pkg" "$target"
			fi
		fi
		count=$((count + 1))
	done
done
echo "fuzz: $count targets ran without a failure"
