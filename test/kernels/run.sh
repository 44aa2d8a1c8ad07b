#!/bin/sh
# run.sh [SUITE...] — the kernel matrix: boots each Debian SUITE's own kernel
# (default: bullseye bookworm trixie — 5.10, 6.1, 6.12) under
# qemu-system-x86_64 (TCG) with an initramfs of busybox, bin/fuseguard, the
# fusefixture and fuseguard-demo commands and the kernel-sensitive test binaries, and prints a
# table ROW × kernel (rows: test/kernels/scenarios). Exits non-zero unless
# every cell passed.
#
# Environment: GO (go), FUSEGUARD (bin/fuseguard, built CGO_ENABLED=0),
# KERNELS_DIR (bin/kernels: kernels, initramfs, serial logs),
# KERNELS_BOOT_TIMEOUT (seconds a boot may take, tests included: 600),
# KERNELS_ROWS (the rows to run, by name, space-separated: all),
# KERNELS_SMP (2),
# KERNELS_MEM (1024), KERNELS_TEST_TIMEOUT (-test.timeout per binary, 2m:
# four binaries, under the boot's bound),
# QEMU (qemu-system-x86_64).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
GO=${GO:-go}
FUSEGUARD=${FUSEGUARD:-bin/fuseguard}
dir=${KERNELS_DIR:-bin/kernels}
boot_timeout=${KERNELS_BOOT_TIMEOUT:-600}
smp=${KERNELS_SMP:-2}
mem=${KERNELS_MEM:-1024}
test_timeout=${KERNELS_TEST_TIMEOUT:-2m}
qemu=${QEMU:-qemu-system-x86_64}
[ $# -gt 0 ] || set -- bullseye bookworm trixie
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

command -v "$qemu" >/dev/null || { echo "run.sh: $qemu not found (apt-get install --no-install-recommends qemu-system-x86)" >&2; exit 1; }
[ -x "$FUSEGUARD" ] || { echo "run.sh: $FUSEGUARD missing (make build)" >&2; exit 1; }
busybox=$(command -v busybox) || { echo "run.sh: busybox missing (apt-get install busybox-static)" >&2; exit 1; }

# The rows: ROW PACKAGE TEST (comments and blank lines dropped).
rows=$dir/rows
grep -v '^[[:space:]]*\(#\|$\)' "$here/scenarios" >"$rows"
if [ -n "${KERNELS_ROWS:-}" ]; then
	awk -F'\t' -v want=" $KERNELS_ROWS " 'index(want, " " $1 " ")' "$rows" >"$rows.only"
	mv "$rows.only" "$rows"
	[ -s "$rows" ] || { echo "run.sh: KERNELS_ROWS=$KERNELS_ROWS names no row of $here/scenarios" >&2; exit 1; }
fi

# --- the initramfs, common to every kernel ---
stage=$dir/stage
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/fg" "$stage/lib/modules"
cp "$busybox" "$stage/bin/busybox"
cp "$here/init" "$stage/init"
cp "$FUSEGUARD" "$stage/fg/fuseguard"
CGO_ENABLED=0 "$GO" build -tags fuseguard_lean -o "$stage/fg/fuseguard-runtime" ./cmd/fuseguard
echo "run.sh: building the fusefixture and fuseguard-demo commands and the test binaries" >&2
CGO_ENABLED=0 "$GO" build -o "$stage/fg/fusefixture" ./test/cmd/fusefixture
CGO_ENABLED=0 "$GO" build -o "$stage/fg/fuseguard-demo" ./cmd/fuseguard-demo
: >"$stage/runs"
for pkg in $(cut -f2 "$rows" | sort -u); do
	# At its path in the module: a test reads its testdata from its own
	# directory (and killer's from ../proc/testdata).
	mkdir -p "$stage/src/$pkg"
	CGO_ENABLED=0 "$GO" test -c -o "$stage/src/$pkg/pkg.test" "./$pkg"
	[ ! -d "$pkg/testdata" ] || cp -r "$pkg/testdata" "$stage/src/$pkg/"
	# -test.run: the top-level tests the rows name, each with all its subtests.
	tests=$(awk -F'\t' -v p="$pkg" '$2 == p { sub(/\/.*/, "", $3); print $3 }' "$rows" | sort -u | paste -sd'|')
	printf '%s ^(%s)$\n' "$pkg" "$tests" >>"$stage/runs"
done
# The VM's environment: CI=true (a missing prerequisite fails, nothing
# skips); the commands come from /fg, not from a go build.
cat >"$stage/env" <<ENV
export CI=true FUSEGUARD_PREBUILT_DIR=/fg TEST_TIMEOUT=$test_timeout
ENV
common=$dir/common.cpio
(cd "$stage" && find . -mindepth 1 | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) >"$common"

status=0
results=$dir/results
: >"$results"
: >"$dir/boots"
for suite in "$@"; do
	kdir=$dir/$suite
	release=$("$here/fetch.sh" "$suite" "$kdir")
	kroot=$kdir/root
	modroot=$kroot/lib/modules/$release
	[ -d "$modroot" ] || modroot=$kroot/usr/lib/modules/$release
	config=$kroot/boot/config-$release
	# FUSE: a module on 5.10 and 6.1 (loaded by /init), built in on 6.12.
	mods=$kdir/modules
	rm -rf "$mods" && mkdir -p "$mods/lib/modules"
	case $(grep '^CONFIG_FUSE_FS=' "$config") in
	CONFIG_FUSE_FS=y) ;;
	CONFIG_FUSE_FS=m)
		ko=$(find "$modroot/kernel/fs/fuse" -name 'fuse.ko*' | head -n 1)
		case $ko in
		*.ko) cp "$ko" "$mods/lib/modules/fuse.ko" ;;
		*.ko.xz) xz -dc "$ko" >"$mods/lib/modules/fuse.ko" ;;
		*.ko.zst) zstd -dcq "$ko" >"$mods/lib/modules/fuse.ko" ;;
		*) echo "run.sh: $suite: no fuse.ko under $modroot" >&2; exit 1 ;;
		esac ;;
	*) echo "run.sh: $suite: $config has no CONFIG_FUSE_FS" >&2; exit 1 ;;
	esac
	initrd=$kdir/initrd.cpio
	(cd "$mods" && find . -mindepth 1 | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) | cat "$common" - >"$initrd"

	log=$kdir/serial.log
	echo "run.sh: $suite: booting $release (log: $log)" >&2
	start=$(date +%s)
	rc=0
	nice -n 10 timeout --kill-after=10 "$boot_timeout" "$qemu" -accel tcg -m "$mem" -smp "$smp" \
		-nographic -no-reboot -kernel "$kroot/boot/vmlinuz-$release" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 loglevel=4 rdinit=/init" </dev/null >"$log" 2>&1 || rc=$?
	took=$(($(date +%s) - start))
	tr -d '\r' <"$log" >"$log.txt"
	echo "run.sh: $suite: qemu exit $rc after ${took}s" >&2
	grep '^@@kernels ' "$log.txt" | grep -v '^@@kernels \(begin\|done\)' >&2 || true
	grep -q '^@@kernels done' "$log.txt" || { echo "run.sh: $suite: the VM did not finish (timeout ${boot_timeout}s or panic): see $log" >&2; status=1; }
	# Every test result: KERNEL PACKAGE TEST STATUS.
	awk -v k="$suite" '
		/^@@kernels begin pkg=/ { sub(/^@@kernels begin pkg=/, ""); pkg = $0 }
		/^[[:space:]]*--- (PASS|FAIL|SKIP): / { st = $2; sub(/:$/, "", st); print k "\t" pkg "\t" $3 "\t" st }
	' "$log.txt" >>"$results"
	printf '%s\t%s\t%s\n' "$suite" "$release" "$took" >>"$dir/boots"
done

# --- the table (also in $dir/table) ---
{
echo
awk -F'\t' -v suites="$*" '
	FILENAME == ARGV[1] { rel[$1] = $2; took[$1] = $3; next }
	FILENAME == ARGV[2] { res[$1 SUBSEP $2 SUBSEP $3] = $4; next }
	{ if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 }; need[$1] = need[$1] "|" $2 "\t" $3 }
	END {
		ns = split(suites, s, " ")
		printf "%-18s", "scenario"; for (i = 1; i <= ns; i++) printf " %-22s", s[i]; print ""
		printf "%-18s", "kernel"; for (i = 1; i <= ns; i++) printf " %-22s", rel[s[i]]; print ""
		bad = 0
		for (r = 1; r <= n; r++) {
			row = order[r]; printf "%-18s", row
			m = split(substr(need[row], 2), tests, "|")
			for (i = 1; i <= ns; i++) {
				cell = "pass"
				for (j = 1; j <= m; j++) {
					split(tests[j], pt, "\t"); st = res[s[i] SUBSEP pt[1] SUBSEP pt[2]]
					if (st != "PASS") { cell = "FAIL"; miss[s[i] "\t" pt[1] "\t" pt[2] "\t" (st == "" ? "NO-RESULT" : st)] = 1 }
				}
				if (cell != "pass") bad = 1
				printf " %-22s", cell
			}
			print ""
		}
		printf "%-18s", "boot+tests (s)"; for (i = 1; i <= ns; i++) printf " %-22s", took[s[i]]; print ""
		for (f in miss) print "  failed: " f
		exit bad
	}' "$dir/boots" "$results" "$rows" || status=1
# What the tests found this kernel does differently (their t.Logf lines).
for suite in "$@"; do
	grep -h 'this kernel' "$dir/$suite/serial.log.txt" | sed "s/^[[:space:]]*/  $suite: /" | sort -u
done
} >"$dir/table"
cat "$dir/table"
exit $status
