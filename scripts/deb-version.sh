#!/bin/sh
# Turns a `git describe --tags --always --dirty` string (the Makefile's
# VERSION) into a Debian package version, which must start with a digit
# and may hold only [A-Za-z0-9.+~] (no revision, so no hyphen):
#
#   v1.2.3              1.2.3
#   v1.2.3-4-gabc1234   1.2.3+git4.abc1234
#   v1.2.3-rc1          1.2.3~rc1             (sorts before 1.2.3)
#   abc1234             0.0.0~gitabc1234      (no tag yet: sorts before 0.0.0)
#   …-dirty             …+dirty
#
# usage: scripts/deb-version.sh VERSION
set -eu
v=${1:?usage: deb-version.sh VERSION}
dirty=
case $v in *-dirty) dirty=+dirty; v=${v%-dirty} ;; esac
v=${v#v}
git=
if printf '%s\n' "$v" | grep -Eq '^[0-9a-f]{7,40}$'; then
	# No tag: describe --always gave the abbreviated commit alone.
	v=0.0.0~git$v
else
	if printf '%s\n' "$v" | grep -Eq '.-[0-9]+-g[0-9a-f]+$'; then
		git=$(printf '%s\n' "$v" | sed -E 's/^.*-([0-9]+)-g([0-9a-f]+)$/+git\1.\2/')
		v=$(printf '%s\n' "$v" | sed -E 's/-[0-9]+-g[0-9a-f]+$//')
	fi
	case $v in
	[0-9]*) v=$(printf '%s' "$v" | tr '-' '~') ;;      # 1.2.3-rc1: 1.2.3~rc1
	*) v=0.0.0~$(printf '%s' "$v" | tr -c 'A-Za-z0-9.+~' '.') ;;
	esac
fi
v=$v$git$dirty
if ! printf '%s\n' "$v" | grep -Eq '^[0-9][A-Za-z0-9.+~]*$'; then
	echo "deb-version.sh: cannot make a Debian version of $1 (got $v)" >&2
	exit 1
fi
printf '%s\n' "$v"
