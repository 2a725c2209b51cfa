#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# virtio-can-driver.sh - build (and optionally install and load) the Linux
# virtio_can driver for a guest kernel that lacks it: from the driver in a
# Linux >= 7.2 source (the distribution's linux-source-X.Y package or any
# tree), for kernels 6.1 to 7.1 with this project's compatibility header
# (scripts/guest-driver/virtio_can_compat.h). No kernel code is kept in this project: the
# driver is taken from the given source at build time.
# See usage() below and the README, "The guest side".
set -euo pipefail

prog=virtio-can-driver.sh
here=$(cd "$(dirname "$0")" && pwd)

usage() {
	cat <<EOF
Usage: $prog [OPTION]...

Builds virtio_can.ko for a kernel (default: the running one) from the
driver in a Linux >= 7.2 source.

  --kernel-dir DIR  the kernel's build directory (its headers), default
                    /lib/modules/KVER/build
  --kver KVER       the kernel release to build for (default: uname -r)
  --source PATH     a Linux source tree, or a linux-source-X.Y.tar.{xz,bz2,gz}
                    (default: the newest /usr/src/linux-source-*.tar.* or
                    /usr/src/linux-source-*/ of version 7.2 or later)
  --out DIR         where to build and leave virtio_can.ko (default: a new
                    directory under \${TMPDIR:-/tmp}, printed)
  --install         copy the module under /lib/modules/KVER/updates and run
                    depmod (root)
  --load            load it now (modprobe after --install, else insmod; root)
  --force           build even if the kernel has the driver already
  -h, --help        this text

Environment: CC (the compiler, default the one the kernel was built with
when found, else gcc), MAKE (default make).

On Debian: apt install linux-headers-\$(uname -r) linux-source-7.2 gcc make
(linux-source from a suite that has it, e.g. sid, or any 7.2+ tree).
Exit status: 0, 1 on an error (the message says which), 2 usage.
EOF
}

die() {
	echo "$prog: error: $*" >&2
	exit 1
}
log() { echo "$prog: $*" >&2; }

kdir=
kver=
source=
out=
install=0
load=0
force=0
while [ $# -gt 0 ]; do
	case $1 in
	--kernel-dir | --kver | --source | --out)
		[ $# -ge 2 ] || {
			usage >&2
			exit 2
		}
		case $1 in
		--kernel-dir) kdir=$2 ;;
		--kver) kver=$2 ;;
		--source) source=$2 ;;
		--out) out=$2 ;;
		esac
		shift
		;;
	--install) install=1 ;;
	--load) load=1 ;;
	--force) force=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "$prog: unknown argument '$1'" >&2
		usage >&2
		exit 2
		;;
	esac
	shift
done

# version_ge A B: dotted version A >= B
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]; }

# --- the kernel's headers -------------------------------------------------
uts() { # DIR: the release the headers in DIR are for
	sed -nE 's/^#define UTS_RELEASE "(.*)"$/\1/p' "$1/include/generated/utsrelease.h" 2>/dev/null || true
}
if [ -z "$kver" ]; then
	kver=$( [ -z "$kdir" ] || uts "$kdir")
	[ -n "$kver" ] || kver=$(uname -r)
fi
[ -n "$kdir" ] || kdir=/lib/modules/$kver/build
if [ ! -f "$kdir/Makefile" ] || [ ! -f "$kdir/.config" ]; then
	die "no kernel headers for $kver at $kdir (Debian: apt install linux-headers-$kver; or give --kernel-dir)"
fi
kdir=$(cd "$kdir" && pwd)
hrel=$(uts "$kdir")
[ -z "$hrel" ] || [ "$hrel" = "$kver" ] ||
	die "the headers in $kdir are for $hrel, not $kver (give --kver $hrel, or the right --kernel-dir)"
kbase=$(echo "$kver" | sed -nE 's/^([0-9]+\.[0-9]+(\.[0-9]+)?).*/\1/p')
[ -n "$kbase" ] || die "cannot read a version in the kernel release '$kver'"
version_ge "$kbase" 6.1 || die "kernel $kver is older than 6.1: not supported"
grep -q '^CONFIG_VIRTIO=' "$kdir/.config" || die "kernel $kver is built without CONFIG_VIRTIO"
grep -q '^CONFIG_CAN_DEV=' "$kdir/.config" ||
	die "kernel $kver is built without CONFIG_CAN_DEV (the CAN device layer the driver needs)"
if grep -qE '^CONFIG_CAN_VIRTIO_CAN=[ym]' "$kdir/.config" && [ $force -eq 0 ]; then
	log "kernel $kver already has the driver (CONFIG_CAN_VIRTIO_CAN): modprobe virtio_can (--force builds anyway)"
	exit 0
fi
# Debian splits headers in an arch part whose Makefile includes the common
# part: the kernel's include/ lives there.
srctree=$kdir
inc=$(sed -nE 's/^include[[:space:]]+(.*)\/Makefile[[:space:]]*$/\1/p' "$kdir/Makefile" | head -n 1)
[ -z "$inc" ] || [ ! -d "$inc/include" ] || srctree=$inc

# --- the compiler ---------------------------------------------------------
if [ -z "${CC:-}" ]; then
	# The kernel's own compiler when installed (Debian names it gcc-N).
	ccv=$(sed -nE 's/^CONFIG_GCC_VERSION=([0-9]+)[0-9]{4}$/\1/p' "$kdir/.config")
	if [ -n "$ccv" ] && command -v "gcc-$ccv" >/dev/null; then
		CC=gcc-$ccv
	else
		CC=gcc
	fi
fi
command -v "$CC" >/dev/null ||
	die "no C compiler '$CC' (Debian: apt install gcc${ccv:+-$ccv}; or set CC)"
MAKE=${MAKE:-make}
command -v "$MAKE" >/dev/null || die "no '$MAKE' (Debian: apt install make)"

# --- the driver's source --------------------------------------------------
drv=drivers/net/can/virtio_can.c
uapi=include/uapi/linux/virtio_can.h
if [ -z "$source" ]; then
	source=$(find /usr/src -maxdepth 1 \( -name 'linux-source-*.tar.*' -o -name 'linux-source-*' -type d \) \
		2>/dev/null | sort -V | tail -n 1)
	[ -n "$source" ] ||
		die "no Linux source found in /usr/src: give --source (a 7.2+ tree or tarball; Debian: apt install linux-source-7.2)"
fi
[ -e "$source" ] || die "no such source '$source'"

if [ -z "$out" ]; then
	out=$(mktemp -d "${TMPDIR:-/tmp}/virtio-can.XXXXXX")
else
	mkdir -p "$out" || die "cannot create $out"
	out=$(cd "$out" && pwd)
fi
mkdir -p "$out/include/linux"

if [ -d "$source" ]; then
	[ -f "$source/$drv" ] ||
		die "source too old: $source has no $drv (the driver is in Linux from 7.2)"
	cp "$source/$drv" "$out/virtio_can.c"
	[ ! -f "$source/$uapi" ] || cp "$source/$uapi" "$out/include/linux/virtio_can.h"
else
	case $source in
	*.tar.xz) tz=-J ;;
	*.tar.bz2) tz=-j ;;
	*.tar.gz | *.tgz) tz=-z ;;
	*) die "--source: '$source' is neither a directory nor a .tar.{xz,bz2,gz}" ;;
	esac
	command -v tar >/dev/null || die "no tar"
	# Only the two files: the top directory's name varies.
	tar -C "$out" $tz -xf "$source" --wildcards --no-anchored --strip-components=1 \
		"*/$drv" "*/$uapi" 2>/dev/null || true
	if [ -f "$out/$drv" ]; then
		mv "$out/$drv" "$out/virtio_can.c"
	else
		die "source too old: $source has no $drv (the driver is in Linux from 7.2)"
	fi
	[ ! -f "$out/$uapi" ] || mv "$out/$uapi" "$out/include/linux/virtio_can.h"
	rm -rf "$out/drivers" "$out/include/uapi"
fi
# The kernel's own uapi header wins when it has one.
if [ -f "$srctree/$uapi" ]; then
	rm -f "$out/include/linux/virtio_can.h"
elif [ ! -f "$out/include/linux/virtio_can.h" ]; then
	die "neither the kernel headers nor the source have $uapi"
fi

# --- what the kernel lacks: probed in its headers ---------------------------
flags=""
compat=0
if ! version_ge "$kbase" 7.2; then
	compat=1
	hdr=
	for d in "$here/guest-driver" "$here/../share/vhost-device-can" /usr/share/vhost-device-can; do
		[ -f "$d/virtio_can_compat.h" ] && hdr=$(cd "$d" && pwd)/virtio_can_compat.h && break
	done
	[ -n "$hdr" ] || die "kernel $kver is older than 7.2 and virtio_can_compat.h was not found next to $prog"
	cp "$hdr" "$out/virtio_can_compat.h"
	flags="-include \$(src)/virtio_can_compat.h -fms-extensions"
	if ! grep -q 'struct virtqueue_info' "$srctree/include/linux/virtio_config.h" 2>/dev/null; then
		flags="$flags -DVDC_NO_VIRTQUEUE_INFO"
	fi
	if ! grep -q 'struct data_bittiming_params' "$srctree/include/linux/can/dev.h" 2>/dev/null; then
		flags="$flags -DVDC_NO_CAN_FD_PARAMS"
	fi
fi
{
	echo "obj-m := virtio_can.o"
	echo "ccflags-y := -I\$(src)/include $flags"
} >"$out/Kbuild"

note=; [ $compat -eq 0 ] || note=", with the compatibility header"
log "building virtio_can.ko for $kver in $out (CC=$CC$note)"
if ! "$MAKE" -C "$kdir" M="$out" CC="$CC" modules >"$out/build.log" 2>&1; then
	grep -E 'error|Error' "$out/build.log" | head -n 20 >&2 || tail -n 20 "$out/build.log" >&2
	die "the build failed (full log: $out/build.log)"
fi
[ -f "$out/virtio_can.ko" ] || die "the build made no virtio_can.ko (log: $out/build.log)"
log "built $out/virtio_can.ko"

ko=$out/virtio_can.ko
if [ $install -eq 1 ]; then
	[ "$(id -u)" -eq 0 ] || die "--install needs root"
	dest=${INSTALL_MOD_PATH:-}/lib/modules/$kver/updates
	mkdir -p "$dest" && cp "$ko" "$dest/virtio_can.ko" || die "cannot install into $dest"
	depmod ${INSTALL_MOD_PATH:+-b "$INSTALL_MOD_PATH"} "$kver" || die "depmod $kver failed"
	log "installed $dest/virtio_can.ko"
fi
if [ $load -eq 1 ]; then
	[ "$(id -u)" -eq 0 ] || die "--load needs root"
	[ "$kver" = "$(uname -r)" ] || die "--load: built for $kver, but this kernel is $(uname -r)"
	# can-dev first: insmod does not resolve dependencies.
	modprobe can-dev 2>/dev/null || true
	if [ $install -eq 1 ]; then
		err=$(modprobe virtio_can 2>&1) || rc=$?
	else
		err=$(insmod "$ko" 2>&1) || rc=$?
	fi
	if [ "${rc:-0}" -ne 0 ]; then
		dmesg 2>/dev/null | grep -iE 'virtio_can|module' | tail -n 3 >&2 || true
		die "the kernel refused the module: $err"
	fi
	log "loaded virtio_can"
fi
echo "$ko"
