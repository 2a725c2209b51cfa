#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# check-install.sh BUILD_DIR - what `cmake --install` and `cpack -G DEB`
# produce from BUILD_DIR: the files in place, the systemd units accepted by
# systemd-analyze verify, the man pages rendering without a groff warning,
# and the .deb holding exactly the installed files. Needs systemd-analyze,
# groff, man and dpkg-deb (scripts/install-deps.sh build installs them).
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/vdc-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "check-install: FAILED: $*" >&2
	exit 1
}

expected=(
	bin/vhost-device-can
	bin/vhost-device-can-frontend
	share/man/man1/vhost-device-can.1
	share/man/man1/vhost-device-can-frontend.1
	lib/systemd/system/vhost-device-can@.service
	lib/systemd/system/vhost-device-can@.socket
	share/doc/vhost-device-can/examples/can0.conf
	share/doc/vhost-device-can/README.md
	share/doc/vhost-device-can/Apache-2.0.txt
	share/doc/vhost-device-can/BSD-3-Clause.txt
)

echo "== cmake --install into a scratch prefix"
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in "${expected[@]}"; do
	[ -f "$prefix/$f" ] || fail "not installed: $f"
done
n=$(cd "$prefix" && find . -type f | wc -l)
[ "$n" -eq "${#expected[@]}" ] || fail "installed $n files, expected ${#expected[@]}"
"$prefix/bin/vhost-device-can" --print-capabilities | grep -q '"type": "can"' ||
	fail "the installed daemon does not print its capabilities"

echo "== the units name the installed binary and pass systemd-analyze verify"
grep -q "^ExecStart=$prefix/bin/vhost-device-can " \
	"$prefix/lib/systemd/system/vhost-device-can@.service" ||
	fail "ExecStart does not name $prefix/bin/vhost-device-can"
units=$tmp/units
mkdir "$units"
# A template is verified through an instance of it.
cp "$prefix/lib/systemd/system/vhost-device-can@.service" "$units/vhost-device-can@ci0.service"
cp "$prefix/lib/systemd/system/vhost-device-can@.socket" "$units/vhost-device-can@ci0.socket"
if ! out=$(cd "$units" && systemd-analyze verify --man=no \
	./vhost-device-can@ci0.socket ./vhost-device-can@ci0.service 2>&1); then
	fail "systemd-analyze verify: $out"
fi
[ -z "$out" ] || fail "systemd-analyze verify complained: $out"

echo "== the man pages render without warnings"
for page in "$prefix"/share/man/man1/*.1; do
	warn=$(groff -ww -z -man "$page" 2>&1) || fail "groff failed on $page: $warn"
	[ -z "$warn" ] || fail "groff warnings for $(basename "$page"): $warn"
	text=$(MANWIDTH=80 man -l "$page" 2>&1) || fail "man -l $page failed"
	for section in NAME SYNOPSIS OPTIONS "EXIT STATUS" SIGNALS EXAMPLES; do
		grep -q "^$section" <<<"$text" || fail "$(basename "$page") has no $section section"
	done
done
# Every long option of the daemon's --help is in its page.
for opt in $("$prefix/bin/vhost-device-can" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
	grep -q -- "${opt//-/\\\\-}" "$prefix/share/man/man1/vhost-device-can.1" ||
		fail "vhost-device-can(1) does not document $opt"
done

echo "== cpack -G DEB"
(cd "$build" && cpack -G DEB -B "$tmp/pkg" >/dev/null)
deb=$(ls "$tmp"/pkg/*.deb)
listing=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\./usr/||' | sort)
want=$(printf '%s\n' "${expected[@]}" | sort)
[ "$listing" = "$want" ] || fail "the .deb holds: $listing"
[ "$(dpkg-deb -f "$deb" Package)" = vhost-device-can ] || fail "package name"
dpkg-deb -f "$deb" Depends | grep -q libsocketcan2 || fail "no dependency on libsocketcan2"
# grep reads to the end: with -q it would quit at the match and tar, still
# writing the unit (several blocks), would die of SIGPIPE under pipefail.
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/lib/systemd/system/vhost-device-can@.service |
	grep '^ExecStart=/usr/bin/vhost-device-can ' >/dev/null ||
	fail "the packaged unit does not name /usr/bin"
echo "check-install: all good ($n files, $(basename "$deb"))"
