#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# guest-fetch.sh - fetch what the guest tier needs from Debian sid (and the
# bookworm headers for the VM rig's 6.1 kernel) into a cache outside the
# source tree, keyed by package version, without touching this machine's apt
# configuration. Prints shell assignments (VDC_...=...) naming what it got.
# See usage() below and the README, "The guest side".
set -euo pipefail

prog=guest-fetch.sh

usage() {
	cat <<EOF
Usage: $prog [--offline] [--kernel-dir DIR]

Fetches into the cache (once per package version) and prints, as shell
assignments:
  VDC_SID_ROOT       a Debian sid root (debootstrap minbase) holding
                     qemu-system-x86, gcc, make, can-utils, iproute2 and the
                     headers of sid's kernel: QEMU and the 7.2 module build
                     run chrooted in it
  VDC_SID_KERNEL     sid's kernel image and modules (dpkg -x), and
  VDC_SID_KVER       its release (uname -r), VDC_SID_VMLINUZ its image,
  VDC_SID_MODBASE    the base directory of its modules (modprobe -d)
  VDC_LINUX_SOURCE   the linux-source-X.Y tarball of that kernel
  VDC_OLD_KERNEL     the VM rig's Debian 12 kernel (vm-test.sh's cache, or
                     --kernel-dir), VDC_OLD_KVER its release, and
  VDC_OLD_HEADERS    its headers and kbuild (dpkg -x, bookworm)

  --offline         use only what is cached (no apt-get at all)
  --kernel-dir DIR  the Debian 12 kernel to fetch headers for (default: the
                    newest one in vm-test.sh's cache)

The archive is the Debian one this machine's own apt sources name (suite
sid for the new packages); set VDC_DEBIAN_MIRROR to use another. Private
apt state lives under the cache; /etc/apt is only read.

Environment:
  VDC_GUEST_CACHE   the cache (default /var/cache/vhost-device-can/guest,
                    or ~/.cache/vhost-device-can/guest when not writable)
  VDC_KERNEL_CACHE  vm-test.sh's kernel cache (default as vm-test.sh)
Exit status: 0, or 1 with a message on stderr naming what could not be had.
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 1
}
log() { echo "$prog: $*" >&2; }

offline=0
old_kdir=
while [ $# -gt 0 ]; do
	case $1 in
	--offline) offline=1 ;;
	--kernel-dir)
		[ $# -ge 2 ] || {
			usage >&2
			exit 2
		}
		old_kdir=$2
		shift
		;;
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

cache_dir() { # NAME: the default cache directory of that name
	if mkdir -p "/var/cache/vhost-device-can/$1" 2>/dev/null &&
		[ -w "/var/cache/vhost-device-can/$1" ]; then
		echo "/var/cache/vhost-device-can/$1"
	else
		echo "${XDG_CACHE_HOME:-$HOME/.cache}/vhost-device-can/$1"
	fi
}
cache=${VDC_GUEST_CACHE:-$(cache_dir guest)}
mkdir -p "$cache" || die "cannot create the cache $cache"
cache=$(cd "$cache" && pwd -P)
# One fetch at a time, also across concurrent runs.
exec 8>"$cache/.lock"
flock 8

# --- the archive: from this machine's own apt sources -----------------------
# The first Debian main archive entry (not the security one): a deb822
# stanza whose URIs end in /debian, or a one-line "deb URI SUITE" entry.
mirror_from_sources() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk '
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { if (types && uri) { print uri; exit } types = 0; uri = ""; next }
			tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") types = 1 }
			tolower($1) == "uris:" { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/ && uri == "") uri = $i }
			END { if (types && uri) print uri }
		' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk '$1 == "deb" {
			for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) break
			if ($i ~ /\/debian\/?$/) print $i
		}' "$f"
	done
}
mirror=${VDC_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(mirror_from_sources | head -n 1)
fi
mirror=${mirror%/}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# --- private apt state for sid ----------------------------------------------
apt_dir=$cache/apt-sid
apt_opts=(
	-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=-
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
	-o "Dir::State::status=$apt_dir/status" -o Dir::Etc::preferencesparts=-
	-o Acquire::Check-Valid-Until=false -o APT::Architectures=amd64
	-o APT::Install-Recommends=false -o Debug::NoLocking=1
)
sid_apt() { # apt-get update of the private sid lists; 1 with a message on failure
	[ -n "$mirror" ] || {
		log "no Debian archive found in /etc/apt/sources.list{,.d} (set VDC_DEBIAN_MIRROR)"
		return 1
	}
	[ -r "$keyring" ] || {
		log "no $keyring (install debian-archive-keyring)"
		return 1
	}
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
	: >"$apt_dir/status"
	echo "deb [signed-by=$keyring] $mirror sid main" >"$apt_dir/sources.list"
	log "apt-get update (sid, from $mirror, private state in $apt_dir)"
	# apt-get update exits 0 when the archive cannot be reached: its
	# messages say it.
	if ! apt-get "${apt_opts[@]}" update -qq >"$apt_dir/update.log" 2>&1 ||
		grep -qE '^(E:|W: (Failed to fetch|Some index files))' "$apt_dir/update.log"; then
		log "apt-get update of sid from $mirror failed: $(tail -n 3 "$apt_dir/update.log")"
		return 1
	fi
}
sid_version() { # PACKAGE: its candidate version in sid
	apt-cache "${apt_opts[@]}" show --no-all-versions "$1" 2>/dev/null |
		awk '$1 == "Version:" { print $2; exit }' || true
}

# fetch_x DIR APTGET-ARGS... PKG=VER...: apt-get download the packages and
# dpkg -x them all into DIR (once: DIR/.complete marks a finished one).
fetch_x() {
	local dir=$1 a
	shift
	[ ! -e "$dir/.complete" ] && [ $offline -eq 1 ] && die "--offline, and $dir is not cached"
	[ -e "$dir/.complete" ] && return 0
	rm -rf "$dir" "$dir.tmp"
	mkdir -p "$dir.tmp/deb"
	log "fetching $(printf '%s\n' "$@" | grep '=' | grep -v '::' | tr '\n' ' ')into $dir"
	if ! (cd "$dir.tmp/deb" && apt-get download -qq "$@" >../download.log 2>&1); then
		a=$(tail -n 3 "$dir.tmp/download.log")
		rm -rf "$dir.tmp"
		die "apt-get download $* failed: $a"
	fi
	for a in "$dir.tmp"/deb/*.deb; do
		dpkg -x "$a" "$dir.tmp" || {
			rm -rf "$dir.tmp"
			die "dpkg -x $a failed"
		}
	done
	rm -rf "$dir.tmp/deb" "$dir.tmp/download.log" "$dir.tmp/usr/share/doc"
	touch "$dir.tmp/.complete"
	mv "$dir.tmp" "$dir"
}

# Offline: the newest complete cached entry matching a pattern.
newest_cached() { # GLOB
	find "$cache" -mindepth 2 -maxdepth 2 -name .complete -path "$cache/$1/.complete" \
		-printf '%h\n' 2>/dev/null | sort -V | tail -n 1
}

# --- sid: kernel, its source and the root -----------------------------------
if [ $offline -eq 0 ] && ! sid_apt; then
	# What was fetched before still serves; nothing cached is an error below.
	log "sid cannot be reached: using what is cached"
	offline=1
fi
if [ $offline -eq 0 ]; then
	sid_image=$(apt-cache "${apt_opts[@]}" depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }' || true)
	[ -n "$sid_image" ] || die "sid has no linux-image-amd64 dependency to follow"
	kabi=${sid_image#linux-image-}          # 7.2.13+deb14-amd64
	kver_pkg=$(sid_version "$sid_image")    # 7.2.13-1
	kmm=$(echo "$kabi" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/') # 7.2
	qemu_ver=$(sid_version qemu-system-x86)
	[ -n "$qemu_ver" ] || die "sid has no qemu-system-x86"
	src_pkg=linux-source-$kmm
	src_ver=$(sid_version "$src_pkg")
	[ -n "$src_ver" ] || die "sid has no $src_pkg for its kernel $kabi"

	sid_kernel=$cache/sid-kernel_${kabi}_$kver_pkg
	# The image is split in sid: vmlinuz in linux-binary-*, modules apart.
	if [ ! -e "$sid_kernel/.complete" ]; then
		dl=()
		for p in "linux-binary-$kabi" "linux-modules-$kabi"; do
			v=$(sid_version "$p")
			[ -n "$v" ] && dl+=("$p=$v")
		done
		[ ${#dl[@]} -gt 0 ] || dl=("$sid_image=$kver_pkg")
		fetch_x "$sid_kernel" "${apt_opts[@]}" "${dl[@]}"
	fi
	sid_source=$cache/sid-source_${src_pkg}_$src_ver
	fetch_x "$sid_source" "${apt_opts[@]}" "$src_pkg=$src_ver"

	sid_root=$cache/sid-root_qemu-${qemu_ver//:/_}_linux-$kabi
else
	sid_kernel=$(newest_cached 'sid-kernel_*')
	sid_source=$(newest_cached 'sid-source_*')
	sid_root=$(newest_cached 'sid-root_*')
	[ -n "$sid_kernel" ] && [ -n "$sid_source" ] && [ -n "$sid_root" ] ||
		die "--offline, and nothing (or not all) of sid is cached in $cache"
	kabi=${sid_root##*_linux-}
fi

# The root: debootstrap's minbase plus what QEMU, the 7.2 module build and
# the guest's userland need, all from sid's own packages.
root_pkgs="qemu-system-x86 make gcc linux-headers-$kabi can-utils iproute2 kmod xz-utils"
if [ ! -e "$sid_root/.complete" ]; then
	command -v debootstrap >/dev/null ||
		die "debootstrap is not installed (apt-get install debootstrap)"
	[ "$(id -u)" -eq 0 ] || die "building the sid root needs root (debootstrap, chroot)"
	rm -rf "$sid_root" "$sid_root.tmp"
	log "debootstrap --variant=minbase sid into $sid_root (a few minutes, once)"
	if ! debootstrap --variant=minbase --keyring="$keyring" sid "$sid_root.tmp" "$mirror" \
		>"$cache/debootstrap.log" 2>&1; then
		rm -rf "$sid_root.tmp"
		die "debootstrap of sid from $mirror failed: $(tail -n 3 "$cache/debootstrap.log")"
	fi
	log "installing $root_pkgs in the sid root"
	mount -t proc proc "$sid_root.tmp/proc"
	set +e
	chroot "$sid_root.tmp" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive sh -c \
		"apt-get -o Acquire::Check-Valid-Until=false update -qq &&
		 apt-get install -y -qq --no-install-recommends $root_pkgs && apt-get clean" \
		>"$cache/root-install.log" 2>&1
	rc=$?
	set -e
	umount "$sid_root.tmp/proc"
	if [ $rc -ne 0 ]; then
		rm -rf "$sid_root.tmp"
		die "installing $root_pkgs in the sid root failed: $(tail -n 3 "$cache/root-install.log")"
	fi
	rm -rf "$sid_root.tmp/usr/share/doc" "$sid_root.tmp/usr/share/man" "$sid_root.tmp/usr/share/locale"
	# Mount points the guest tier binds the test's directories on, since the
	# root is read-only there.
	mkdir -p "$sid_root.tmp/vdc/run" "$sid_root.tmp/vdc/src" "$sid_root.tmp/vdc/out" "$sid_root.tmp/vdc/linux"
	touch "$sid_root.tmp/.complete"
	mv "$sid_root.tmp" "$sid_root"
fi

sid_kver=$(find "$sid_kernel/lib/modules" "$sid_kernel/usr/lib/modules" -mindepth 1 -maxdepth 1 \
	-printf '%f\n' 2>/dev/null | head -n 1 || true)
[ -n "$sid_kver" ] || die "no modules in $sid_kernel: remove it"
# Module base (sid ships them under /usr/lib/modules) and the load order
# index modprobe needs; the package leaves that to its postinst.
sid_modbase=$sid_kernel
[ ! -d "$sid_kernel/usr/lib/modules/$sid_kver" ] || sid_modbase=$sid_kernel/usr
sid_vmlinuz=
for f in "$sid_modbase/lib/modules/$sid_kver/vmlinuz" "$sid_kernel/boot/vmlinuz-$sid_kver"; do
	[ ! -f "$f" ] || sid_vmlinuz=$f
done
[ -n "$sid_vmlinuz" ] || die "no vmlinuz in $sid_kernel: remove it"
if [ ! -f "$sid_modbase/lib/modules/$sid_kver/modules.dep.bin" ]; then
	depmod -b "$sid_modbase" "$sid_kver" 2>/dev/null || die "depmod failed for $sid_kernel"
fi
src_tar=$(find "$sid_source/usr/src" -maxdepth 1 -name 'linux-source-*.tar.*' | head -n 1)
[ -n "$src_tar" ] || die "no linux-source tarball in $sid_source: remove it"

# --- the Debian 12 kernel of the VM rig, and its headers ---------------------
if [ -z "$old_kdir" ]; then
	kcache=${VDC_KERNEL_CACHE:-$(cache_dir kernel)}
	old_kdir=$(find "$kcache" -mindepth 2 -maxdepth 2 -name .complete -printf '%h\n' 2>/dev/null |
		sort -V | tail -n 1)
	[ -n "$old_kdir" ] || die "no Debian 12 kernel in $kcache: run scripts/vm-test.sh --quick once"
fi
old_kver=$(find "$old_kdir/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | head -n 1)
[ -n "$old_kver" ] || die "no kernel in $old_kdir"
# Same source package version as the image: linux-image-ABI_VERSION.
old_pver=${old_kdir##*_}
old_headers=$cache/headers_${old_kver}_$old_pver
if [ ! -e "$old_headers/.complete" ]; then
	[ $offline -eq 0 ] || die "--offline, and $old_headers is not cached"
	common=$(apt-cache show "linux-headers-$old_kver=$old_pver" 2>/dev/null |
		sed -n 's/^Depends://p' | tr ',' '\n' | sed -nE 's/^ *(linux-(headers|kbuild)-[^ ]+).*/\1/p')
	[ -n "$common" ] || die "apt knows no linux-headers-$old_kver=$old_pver (apt-get update?)"
	dl=("linux-headers-$old_kver=$old_pver")
	for p in $common; do dl+=("$p=$old_pver"); done
	fetch_x "$old_headers" "${dl[@]}"
	# Debian's arch headers include the common part by its absolute /usr/src
	# path: point it into the cache instead.
	sed -i -E "s|^include /usr/src/|include $old_headers/usr/src/|" \
		"$old_headers/usr/src/linux-headers-$old_kver/Makefile"
fi

q() { printf '%q' "$1"; }
echo "VDC_SID_ROOT=$(q "$sid_root")"
echo "VDC_SID_KERNEL=$(q "$sid_kernel")"
echo "VDC_SID_KVER=$(q "$sid_kver")"
echo "VDC_SID_MODBASE=$(q "$sid_modbase")"
echo "VDC_SID_VMLINUZ=$(q "$sid_vmlinuz")"
echo "VDC_LINUX_SOURCE=$(q "$src_tar")"
echo "VDC_OLD_KERNEL=$(q "$old_kdir")"
echo "VDC_OLD_KVER=$(q "$old_kver")"
echo "VDC_OLD_HEADERS=$(q "$old_headers/usr/src/linux-headers-$old_kver")"
echo "VDC_SID_HEADERS=$(q "/usr/src/linux-headers-$kabi")"
