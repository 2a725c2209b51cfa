#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# systemd-image.sh - print the path of a small Debian 12 root filesystem
# image (ext4, raw) with systemd as init, building it first when it is not
# cached. Used by the systemd tier (test/systemd/run.sh) through
# vm-test.sh --root-image.
#
# Contents: debootstrap --variant=minbase bookworm, plus the packages in
# $pkgs below (systemd, can-utils, iproute2 and the libraries the project's
# .deb depends on, so that `dpkg -i` works in a guest without network).
# The cache key is a hash of this script, which holds everything that
# decides the contents. The Debian archive is the one this machine's apt
# uses (/etc/apt/sources.list.d/*.sources or /etc/apt/sources.list).
#
# Environment: VDC_IMAGE_CACHE (default /var/cache/vhost-device-can/image,
# or ~/.cache/vhost-device-can/image when not writable). Needs root
# (debootstrap), debootstrap and mkfs.ext4 (e2fsprogs). Exit status 0 with
# the path on stdout; 1 when the image cannot be made.
set -euo pipefail
prog=systemd-image.sh
suite=bookworm
pkgs=systemd,systemd-sysv,iproute2,can-utils,libsocketcan2,libseccomp2,libcap-ng0
size=1G

die() {
	echo "$prog: $*" >&2
	exit 1
}

if [ -n "${VDC_IMAGE_CACHE:-}" ]; then
	cache=$VDC_IMAGE_CACHE
elif mkdir -p /var/cache/vhost-device-can/image 2>/dev/null &&
	[ -w /var/cache/vhost-device-can/image ]; then
	cache=/var/cache/vhost-device-can/image
else
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/vhost-device-can/image
fi
mkdir -p "$cache" || die "cannot create the image cache $cache"
key=$(sha256sum "$0" | cut -c1-16)
img=$cache/$suite-systemd-$key.img
if [ -e "$img" ]; then
	echo "$img"
	exit 0
fi

# The archive this machine's apt already uses for Debian's main component.
mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# deb822 stanzas: the URIs of one whose Suites has $suite.
		awk -v s="$suite" '
			/^[ \t]*$/ { if (u != "" && ok && deb) { print u; exit } u = ""; ok = 0; deb = 0; next }
			tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
			tolower($1) == "uris:" { u = $2 }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
			END { if (u != "" && ok && deb) print u }' "$f"
	done
	if [ -f /etc/apt/sources.list ]; then
		awk -v s="$suite" '$1 == "deb" {
			i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
			if ($(i + 1) == s) { print $i; exit } }' /etc/apt/sources.list
	fi
}
uri=$(mirror | head -n 1)
[ -n "$uri" ] || die "no 'deb' source for $suite in /etc/apt/sources.list{,.d/*.sources}"
[ "$(id -u)" -eq 0 ] || die "building the image needs root (debootstrap)"
for t in debootstrap mkfs.ext4 flock; do
	command -v "$t" >/dev/null || die "'$t' is not installed"
done

exec 9>"$cache/.lock"
flock 9
if [ -e "$img" ]; then
	echo "$img"
	exit 0
fi
tmp=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dir=$tmp/root
echo "$prog: debootstrap $suite from $uri into $dir (once)" >&2
debootstrap --variant=minbase --include="$pkgs" "$suite" "$dir" "$uri" >"$tmp/log" 2>&1 ||
	{ tail -n 20 "$tmp/log" >&2; die "debootstrap failed"; }
# A machine that boots straight to a console, no network, no login prompt.
echo vdc-systemd >"$dir/etc/hostname"
echo "/dev/vda / ext4 rw,noatime 0 1" >"$dir/etc/fstab"
: >"$dir/etc/machine-id"
ln -sf /dev/null "$dir/etc/systemd/system/getty@.service"
ln -sf /dev/null "$dir/etc/systemd/system/serial-getty@.service"
ln -sf /dev/null "$dir/etc/systemd/system/systemd-timesyncd.service"
ln -sf /dev/null "$dir/etc/systemd/system/apt-daily.timer"
ln -sf /dev/null "$dir/etc/systemd/system/apt-daily-upgrade.timer"
ln -sf /dev/null "$dir/etc/systemd/system/e2scrub_all.timer"
ln -sf /dev/null "$dir/etc/systemd/system/fstrim.timer"
mkdir -p "$dir/host"
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
truncate -s "$size" "$tmp/img"
mkfs.ext4 -q -F -L vdc-root -d "$dir" "$tmp/img" || die "mkfs.ext4 failed"
mv "$tmp/img" "$img"
echo "$img"
