#!/bin/sh
# fetch.sh SUITE DIR — Debian SUITE's own amd64 kernel (the package that
# linux-image-amd64 depends on), downloaded with apt-get through a private
# sources list, lists dir and cache (the host's apt state is untouched) and
# unpacked with dpkg-deb -x into DIR/root. Prints the kernel release.
# Idempotent: an unpacked kernel in DIR is reused.
set -eu
suite=$1
dir=$2
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -s "$dir/release" ] && [ -d "$dir/root/boot" ]; then
	cat "$dir/release"
	exit 0
fi
apt="$dir/apt"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dir/debs"
cat >"$apt/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security $suite-security main
SRC
# Bullseye's security suite is named bullseye-security too (since 11).
aptopts="-o Dir::Etc::SourceList=$apt/sources.list -o Dir::Etc::SourceParts=/dev/null
	-o Dir::State::Lists=$apt/lists -o Dir::Cache=$apt/cache
	-o Dir::State::status=/dev/null -o APT::Architecture=amd64
	-o APT::Architectures=amd64 -o Debug::NoLocking=1
	-o APT::Sandbox::User=root"
# shellcheck disable=SC2086
apt-get -q $aptopts update >&2
# The metapackage's first dependency is the image of the suite's kernel.
# shellcheck disable=SC2086
pkg=$(apt-cache $aptopts depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
[ -n "$pkg" ] || { echo "fetch.sh: $suite: no linux-image-<ver>-amd64 behind linux-image-amd64" >&2; exit 1; }
echo "fetch.sh: $suite: $pkg" >&2
rm -f "$dir"/debs/*.deb
# shellcheck disable=SC2086
(cd "$dir/debs" && apt-get -q $aptopts download "$pkg" >&2)
rm -rf "$dir/root"
dpkg-deb -x "$dir"/debs/"$pkg"_*.deb "$dir/root"
release=$(ls "$dir/root/lib/modules" 2>/dev/null || ls "$dir/root/usr/lib/modules")
# Only the kernel, its config and FUSE's modules are used: drop the rest
# (about 400 MB a kernel).
for m in "$dir/root/lib/modules/$release" "$dir/root/usr/lib/modules/$release"; do
	[ -d "$m/kernel" ] || continue
	mv "$m/kernel/fs/fuse" "$dir/fuse.keep"
	rm -rf "${m:?}"/*
	mkdir -p "$m/kernel/fs"
	mv "$dir/fuse.keep" "$m/kernel/fs/fuse"
done
echo "$release" >"$dir/release"
rm -rf "$dir/debs" "$apt/cache"
echo "$release"
