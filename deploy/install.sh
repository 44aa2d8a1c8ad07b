#!/bin/sh
# Installs fuseguard without systemd (what `make install` runs):
#
#   $DESTDIR$PREFIX/bin/fuseguard                  the binary
#   $DESTDIR$PREFIX/bin/fuseguard-runtime          the runtime wrapper for Docker and containerd and
#                                                  the hooks it injects: the lean build of the binary
#                                                  (it runs the fuseguard beside it for the watcher)
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
# The Debian package (`make deb`) stages with PREFIX=/usr,
# HOOKSDIR=/usr/share/containers/oci/hooks.d (the vendor directory podman
# and CRI-O read besides /etc's), EXAMPLESDIR=/usr/share/doc/fuseguard/examples
# and UNITDIR=/usr/lib/systemd/system (the unit is installed only when set).
#
# usage: DESTDIR=… PREFIX=… [HOOKSDIR=… EXAMPLESDIR=… UNITDIR=…] deploy/install.sh BINARY RUNTIME_BINARY
set -eu
bin=${1:?usage: install.sh BINARY RUNTIME_BINARY}
rtbin=${2:?usage: install.sh BINARY RUNTIME_BINARY}
prefix=${PREFIX:-/usr/local}
destdir=${DESTDIR:-}
hooksdir=${HOOKSDIR:-/etc/containers/oci/hooks.d}
examplesdir=${EXAMPLESDIR:-/etc/fuseguard}
unitdir=${UNITDIR:-}
here=$(cd "$(dirname "$0")" && pwd)

install -d -m 0755 "$destdir$prefix/bin" "$destdir$hooksdir" "$destdir$examplesdir"
install -m 0755 "$bin" "$destdir$prefix/bin/fuseguard"
# Through a temporary and a rename: an older install's fuseguard-runtime
# is a symlink to fuseguard, which must not be written through, and a
# runtime call in between must find one whole binary or the other.
install -m 0755 "$rtbin" "$destdir$prefix/bin/.fuseguard-runtime.new"
mv -f "$destdir$prefix/bin/.fuseguard-runtime.new" "$destdir$prefix/bin/fuseguard-runtime"

rewrite() { sed "s#/usr/local/bin/#$prefix/bin/#g" "$1"; }
for f in "$here"/hooks.d/fuseguard-*.json; do
	rewrite "$f" >"$destdir$hooksdir/$(basename "$f")"
	chmod 0644 "$destdir$hooksdir/$(basename "$f")"
done
rewrite "$here/docker/daemon.json" >"$destdir$examplesdir/docker-daemon.json"
rewrite "$here/docker/daemon.default-runtime.json" >"$destdir$examplesdir/docker-daemon.default-runtime.json"
for f in "$here"/containerd/fuseguard*.toml; do
	rewrite "$f" >"$destdir$examplesdir/containerd-$(basename "$f")"
done
chmod 0644 "$destdir$examplesdir"/docker-daemon*.json "$destdir$examplesdir"/containerd-*.toml
if [ -n "$unitdir" ]; then
	install -d -m 0755 "$destdir$unitdir"
	rewrite "$here/fuseguard-watch.service" >"$destdir$unitdir/fuseguard-watch.service"
	chmod 0644 "$destdir$unitdir/fuseguard-watch.service"
fi
install -d -m 0755 "$destdir/etc/fuseguard"
if [ ! -e "$destdir/etc/fuseguard/config.toml" ]; then
	install -m 0644 "$here/config.toml" "$destdir/etc/fuseguard/config.toml"
fi
