#!/bin/sh
# Installs fuseguard without systemd (what `make install` runs):
#
#   $DESTDIR$PREFIX/bin/fuseguard                  the binary
#   $DESTDIR$PREFIX/bin/fuseguard-runtime          symlink: the runtime wrapper for Docker
#   $DESTDIR/etc/containers/oci/hooks.d/fuseguard-*.json   hooks for podman and CRI-O
#   $DESTDIR/etc/fuseguard/docker-daemon.json      runtimes snippet to merge into /etc/docker/daemon.json
#   $DESTDIR/etc/fuseguard/docker-daemon.default-runtime.json   the same, with fuseguard as default runtime
#   $DESTDIR/etc/fuseguard/containerd-fuseguard.toml          containerd 2 CRI runtime handler "fuseguard"
#   $DESTDIR/etc/fuseguard/containerd-fuseguard-default.toml  containerd 2: the default "runc" handler through fuseguard
#   $DESTDIR/etc/fuseguard/config.toml             the node configuration (the defaults, commented);
#                                                  an existing one is kept
#
# The deploy files name /usr/local/bin; they are rewritten for $PREFIX.
# /etc/docker/daemon.json and /etc/containerd itself are never touched.
#
# usage: DESTDIR=… PREFIX=… deploy/install.sh BINARY
set -eu
bin=${1:?usage: install.sh BINARY}
prefix=${PREFIX:-/usr/local}
destdir=${DESTDIR:-}
here=$(cd "$(dirname "$0")" && pwd)

install -d -m 0755 "$destdir$prefix/bin" "$destdir/etc/containers/oci/hooks.d" "$destdir/etc/fuseguard"
install -m 0755 "$bin" "$destdir$prefix/bin/fuseguard"
ln -sfn fuseguard "$destdir$prefix/bin/fuseguard-runtime"

rewrite() { sed "s#/usr/local/bin/#$prefix/bin/#g" "$1"; }
for f in "$here"/hooks.d/fuseguard-*.json; do
	rewrite "$f" >"$destdir/etc/containers/oci/hooks.d/$(basename "$f")"
	chmod 0644 "$destdir/etc/containers/oci/hooks.d/$(basename "$f")"
done
rewrite "$here/docker/daemon.json" >"$destdir/etc/fuseguard/docker-daemon.json"
rewrite "$here/docker/daemon.default-runtime.json" >"$destdir/etc/fuseguard/docker-daemon.default-runtime.json"
for f in "$here"/containerd/fuseguard*.toml; do
	rewrite "$f" >"$destdir/etc/fuseguard/containerd-$(basename "$f")"
done
if [ ! -e "$destdir/etc/fuseguard/config.toml" ]; then
	install -m 0644 "$here/config.toml" "$destdir/etc/fuseguard/config.toml"
fi
chmod 0644 "$destdir"/etc/fuseguard/docker-daemon*.json "$destdir"/etc/fuseguard/containerd-*.toml
