#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# vm-test.sh - run a command, by default the real-CAN test suite, in a small
# QEMU virtual machine that has SocketCAN and vcan interfaces.
#
# The machine boots Debian's own kernel (downloaded once into a cache outside
# the source tree) with a busybox initramfs, mounts this host's / read-only
# over 9p, chroots into it and runs the command with the host's binaries.
# Inside, vcan0 (MTU 72, CAN FD), vcan1 (default MTU) and vcan2 (MTU 16,
# classic only) are up. Only tmpfs (/tmp, /run) is writable there, unless
# --share-rw gives the guest host directories to write into.
# See usage() below and shared notes "vm-rig".
set -euo pipefail

prog=vm-test.sh
root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
	cat <<EOF
Usage: $prog [--build-dir DIR] [--share-rw DIR] [--root-image IMG] [--quick] [--] [COMMAND [ARG...]]

Boots a QEMU virtual machine with the host's filesystem (read-only) and
real vcan interfaces, runs COMMAND in it and exits with its status.

  --build-dir DIR  the CMake build directory holding the test programs
                   (default: $root/build); passed to the suite and
                   exported as VDC_BUILD_DIR
  --share-rw DIR   also share the host directory DIR writable, at the same
                   path in the guest (for example a coverage build, whose
                   .gcda counters the guest's runs then add to); may be
                   given more than once
  --root-image IMG boot IMG (a raw ext4 root filesystem, see
                   scripts/vm/systemd-image.sh) with its own init, systemd,
                   instead of chrooting into the host: the host's / is then
                   read-only at /host, no vcan is created, COMMAND (with
                   guest paths, e.g. /host/...) runs as a oneshot service
                   once the system is up, and what it writes goes to the
                   console; the image itself is never modified (snapshot)
  --quick          a smoke run: the default command becomes
                   "ip -details link show" instead of the suite
  -h, --help       this text

Without COMMAND, runs test/vm/run-suite.sh DIR. The command starts in the
current directory with HOME=/tmp; vcan0 (MTU 72), vcan1 and vcan2 (MTU 16)
are up. Exit status: the command's; 77 when the VM cannot run here (or the
command skipped); 124 when the run timed out; 125 when the VM broke.

Environment:
  VDC_KERNEL_CACHE  where Debian's kernel is cached, per package version
                    (default: /var/cache/vhost-device-can/kernel, or
                    ~/.cache/vhost-device-can/kernel when not writable)
  VDC_VM_TIMEOUT    seconds before the whole run is abandoned (default 1500)
  VDC_VM_MEMORY     guest memory in MiB (default 1024)
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 125
}
skip() {
	echo "$prog: SKIPPED: $*" >&2
	exit 77
}

build_dir=$root/build
quick=0
share_rw=()
root_image=
while [ $# -gt 0 ]; do
	case $1 in
	--build-dir)
		[ $# -ge 2 ] || {
			usage >&2
			exit 2
		}
		build_dir=$2
		shift 2
		;;
	--build-dir=*)
		build_dir=${1#*=}
		shift
		;;
	--share-rw)
		[ $# -ge 2 ] || {
			usage >&2
			exit 2
		}
		share_rw+=("$2")
		shift 2
		;;
	--share-rw=*)
		share_rw+=("${1#*=}")
		shift
		;;
	--root-image)
		[ $# -ge 2 ] || {
			usage >&2
			exit 2
		}
		root_image=$2
		shift 2
		;;
	--root-image=*)
		root_image=${1#*=}
		shift
		;;
	--quick)
		quick=1
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		shift
		break
		;;
	-*)
		echo "$prog: unknown option '$1'" >&2
		usage >&2
		exit 2
		;;
	*) break ;;
	esac
done
if [ $# -eq 0 ] && [ $quick -eq 1 ]; then
	set -- ip -details link show
fi
if [ -d "$build_dir" ]; then
	build_dir=$(cd "$build_dir" && pwd)
elif [ $# -eq 0 ]; then
	skip "no build directory $build_dir (build first, or give --build-dir)"
fi
[ $# -gt 0 ] || [ -z "$root_image" ] || die "--root-image needs a COMMAND"
[ $# -gt 0 ] || set -- "$root/test/vm/run-suite.sh" "$build_dir"
if [ -n "$root_image" ]; then
	[ -f "$root_image" ] || die "--root-image: no file $root_image"
	[ ${#share_rw[@]} -eq 0 ] || die "--share-rw does not go with --root-image"
	root_image=$(cd "$(dirname "$root_image")" && pwd -P)/$(basename "$root_image")
fi
# Absolute paths: the guest mounts each one where the host has it.
rw_dirs=()
for d in "${share_rw[@]}"; do
	[ -d "$d" ] || die "--share-rw: no directory $d"
	rw_dirs+=("$(cd "$d" && pwd -P)")
done

# --- what the host needs ---------------------------------------------------
if ! "$root/scripts/install-deps.sh" vm; then
	skip "the VM packages are missing and cannot be installed"
fi
for t in qemu-system-x86_64 busybox depmod modprobe cpio gzip apt-get dpkg flock timeout; do
	command -v "$t" >/dev/null || skip "'$t' is not installed"
done
busybox_bin=$(command -v busybox)
# The initramfs runs busybox alone, without a loader: it must be static.
if ldd "$busybox_bin" >/dev/null 2>&1; then
	skip "$busybox_bin is not static (install busybox-static)"
fi

# --- the kernel: Debian's, cached per package version -----------------------
if [ -n "${VDC_KERNEL_CACHE:-}" ]; then
	cache=$VDC_KERNEL_CACHE
elif mkdir -p /var/cache/vhost-device-can/kernel 2>/dev/null &&
	[ -w /var/cache/vhost-device-can/kernel ]; then
	cache=/var/cache/vhost-device-can/kernel
else
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/vhost-device-can/kernel
fi
mkdir -p "$cache" || skip "cannot create the kernel cache $cache"

kernel_package() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}
pkg=$(kernel_package)
if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
	apt-get update -qq >/dev/null 2>&1 || true
	pkg=$(kernel_package)
fi

kdir=
if [ -n "$pkg" ]; then
	pver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null |
		awk '$1 == "Version:" { print $2; exit }')
	kdir=$cache/${pkg}_${pver}
	# One download at a time, also across concurrent runs.
	exec 9>"$cache/.lock"
	flock 9
	if [ ! -e "$kdir/.complete" ]; then
		echo "$prog: fetching $pkg $pver into $kdir"
		rm -rf "$kdir" "$kdir.tmp"
		mkdir -p "$kdir.tmp/deb"
		if (cd "$kdir.tmp/deb" && apt-get download -qq "$pkg=$pver" >/dev/null 2>&1) &&
			dpkg -x "$kdir.tmp"/deb/*.deb "$kdir.tmp"; then
			rm -rf "$kdir.tmp/deb" "$kdir.tmp/usr/share/doc"
			touch "$kdir.tmp/.complete"
			mv "$kdir.tmp" "$kdir"
		else
			rm -rf "$kdir.tmp"
			echo "$prog: could not download $pkg" >&2
			kdir=
		fi
	fi
	flock -u 9
fi
if [ -z "$kdir" ]; then
	# Offline: the newest kernel already cached, if any.
	kdir=$(find "$cache" -mindepth 2 -maxdepth 2 -name .complete -printf '%h\n' 2>/dev/null |
		sort -V | tail -n 1)
	[ -n "$kdir" ] || skip "no Debian kernel package available (apt) and none cached in $cache"
fi
kver=$(find "$kdir/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | head -n 1)
vmlinuz=$kdir/boot/vmlinuz-$kver
[ -n "$kver" ] && [ -f "$vmlinuz" ] || die "the cached kernel in $kdir is incomplete: remove it"
[ -f "$kdir/lib/modules/$kver/modules.dep.bin" ] || depmod -b "$kdir" "$kver" ||
	die "depmod failed for $kdir"

# --- the initramfs -------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/vdc-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
ird=$work/initramfs
mkdir -p "$ird"/{bin,dev,proc,sys,host,newroot,modules}
cp "$busybox_bin" "$ird/bin/busybox"
cp "$root/scripts/vm/init" "$ird/init"
chmod 755 "$ird/init"

# Load order from modprobe itself: each module after what it needs.
mods="virtio_pci 9pnet_virtio 9p can can_raw can_dev vcan slcan"
# A root image: its disk and filesystem too (the image has no modules).
[ -z "$root_image" ] || mods="$mods virtio_blk ext4"
: >"$ird/modules/order"
for m in $mods; do
	modprobe -d "$kdir" -S "$kver" --show-depends "$m" ||
		die "module $m not found in $kdir"
done | awk '$1 == "insmod" { print $2 }' | while read -r ko; do
	base=$(basename "$ko")
	if ! grep -qxF "$base" "$ird/modules/order"; then
		cp "$ko" "$ird/modules/$base"
		echo "$base" >>"$ird/modules/order"
	fi
done
[ -s "$ird/modules/order" ] || die "no modules to load"

# Paths under /tmp or /run are hidden by the guest's tmpfs: bind them back.
q() { printf '%q ' "$@"; }
for p in "$root" "$build_dir" "$PWD" "$kdir"; do
	[ ! -d "$p" ] || echo "$p"
done >"$ird/binds"
# One virtfs device per writable directory, tagged rw0, rw1, ... for init.
rw_args=()
: >"$ird/rw"
for i in "${!rw_dirs[@]}"; do
	case ${rw_dirs[$i]} in
	*,*) die "--share-rw: QEMU cannot take a path with a comma: ${rw_dirs[$i]}" ;;
	esac
	rw_args+=(-virtfs "local,path=${rw_dirs[$i]},mount_tag=rw$i,security_model=none,multidevs=remap")
	echo "rw$i ${rw_dirs[$i]}" >>"$ird/rw"
done
{
	echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	echo "export HOME=/tmp TMPDIR=/tmp LANG=C.UTF-8"
	echo "export VDC_IN_VM=1 VDC_BUILD_DIR=$(q "$build_dir") VDC_SOURCE_DIR=$(q "$root")"
	echo "export VDC_KERNEL_DIR=$(q "$kdir")"
	echo "cd $(q "$PWD") || exit 125"
	echo "$(q "$@") </dev/null"
} >"$ird/cmd.sh"
root_args=()
if [ -n "$root_image" ]; then
	: >"$ird/root-image"
	cp "$root/scripts/vm/systemd-run.service" "$ird/vdc-run.service"
	# -snapshot: the guest's writes go to a temporary overlay.
	root_args=(-drive "file=$root_image,format=raw,if=virtio,snapshot=on")
	{
		echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		echo "export HOME=/root LANG=C.UTF-8"
		echo "export VDC_IN_VM=1 VDC_HOST=/host VDC_BUILD_DIR=$(q "/host$build_dir") VDC_SOURCE_DIR=$(q "/host$root")"
		echo "cd /"
		echo "$(q "$@") </dev/null"
	} >"$ird/cmd.sh"
fi
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# --- boot ------------------------------------------------------------------
timeout_s=${VDC_VM_TIMEOUT:-1500}
log=$work/console.log
start=$(date +%s)
set +e
# KVM hangs on these machines: TCG only. stdin is closed so -nographic does
# not take over a terminal; \r and the firmware's escapes are dropped.
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
	-accel tcg -cpu max -m "${VDC_VM_MEMORY:-1024}" -smp "${VDC_VM_CPUS:-1}" \
	-nographic -no-reboot -nic none \
	-kernel "$vmlinuz" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init systemd.show_status=0" \
	"${root_args[@]}" \
	-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
	"${rw_args[@]}" \
	</dev/null 2>&1 | sed -u 's/\r$//; s/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' | tee "$log"
qrc=${PIPESTATUS[0]}
set -e
elapsed=$(($(date +%s) - start))

if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
	echo "$prog: the VM run timed out after ${timeout_s}s" >&2
	exit 124
fi
rc=$(sed -n 's/^VDC-VM-EXIT=\([0-9]\{1,3\}\)$/\1/p' "$log" | tail -n 1)
if [ -z "$rc" ]; then
	echo "$prog: the VM stopped (qemu status $qrc) without reporting a status" >&2
	exit 125
fi
echo "$prog: guest command exited $rc after ${elapsed}s (boot included)"
exit "$rc"
