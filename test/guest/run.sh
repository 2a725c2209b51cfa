#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# run.sh BUILD_DIR - the guest tier (CTest label "guest"): the real daemon,
# sid's real QEMU and a Linux guest running the mainline virtio_can driver,
# built by scripts/virtio-can-driver.sh, against real vcan. Here (root on
# the host): fetch what is needed (scripts/guest-fetch.sh, cached), build
# the module for Debian 12's 6.1 kernel (with the compatibility header) and
# for sid's 7.2 kernel (in the sid root, with sid's compiler); then, since
# this machine's kernel may have no CAN, run test/guest/in-rig.sh inside the
# VM rig (scripts/vm-test.sh), which boots one guest per kernel.
#
# Fails (exit 1) when the packages cannot be had, naming why, unless
# VDC_GUEST_SKIP_UNAVAILABLE=1 (not for CI) makes that a skip (77).
# VDC_GUEST_ONLY=6.1|7.2 runs one kernel; VDC_GUEST_BURST sets the burst
# size (default 10000); VDC_GUEST_KEEP=DIR keeps the consoles and logs.
set -euo pipefail
prog=guest-tier
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)

unavailable() {
	if [ "${VDC_GUEST_SKIP_UNAVAILABLE:-0}" = 1 ]; then
		echo "$prog: SKIPPED: $*" >&2
		exit 77
	fi
	echo "$prog: FAILED: $* (VDC_GUEST_SKIP_UNAVAILABLE=1 skips instead)" >&2
	exit 1
}
t0=$(date +%s)
[ "$(id -u)" -eq 0 ] || unavailable "needs root (debootstrap, chroot, mounts in the VM rig)"
[ -x "$build/vhost-device-can" ] || unavailable "no daemon in $build (build first)"
"$root/scripts/install-deps.sh" vm guest >/dev/null ||
	unavailable "the packages of the VM rig and the guest tier cannot be installed"
# The rig's kernel must be there before its headers can be fetched.
[ -n "$(find "${VDC_KERNEL_CACHE:-/var/cache/vhost-device-can/kernel}" -name .complete 2>/dev/null)" ] ||
	"$root/scripts/vm-test.sh" --quick >/dev/null 2>&1 || true

vars=$("$root/scripts/guest-fetch.sh") || unavailable "the guest packages cannot be fetched (above)"
eval "$vars"
echo "$prog: fetched in $(($(date +%s) - t0))s"

# --- the modules ---------------------------------------------------------------
out=$build/guest
mkdir -p "$out"
t=$(date +%s)
ko_old=$("$root/scripts/virtio-can-driver.sh" --kernel-dir "$VDC_OLD_HEADERS" --kver "$VDC_OLD_KVER" \
	--source "$VDC_LINUX_SOURCE" --out "$out/ko-$VDC_OLD_KVER")
echo "$prog: built $ko_old in $(($(date +%s) - t))s"

# sid's kernel wants sid's compiler and kbuild tools: build in the sid root.
R=$VDC_SID_ROOT
mkdir -p "$out/ko-$VDC_SID_KVER"
mounts=()
undo() {
	local i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[$i]}" || true; done
}
trap undo EXIT
t=$(date +%s)
mount --bind "$root" "$R/vdc/src" && mounts+=("$R/vdc/src")
mount --bind "$(dirname "$VDC_LINUX_SOURCE")" "$R/vdc/linux" && mounts+=("$R/vdc/linux")
mount --bind "$out/ko-$VDC_SID_KVER" "$R/vdc/out" && mounts+=("$R/vdc/out")
mount -t proc proc "$R/proc" && mounts+=("$R/proc")
chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	/vdc/src/scripts/virtio-can-driver.sh --kernel-dir "$VDC_SID_HEADERS" --kver "$VDC_SID_KVER" \
	--source "/vdc/linux/$(basename "$VDC_LINUX_SOURCE")" --out /vdc/out >/dev/null
undo
mounts=()
ko_sid=$out/ko-$VDC_SID_KVER/virtio_can.ko
[ -f "$ko_sid" ] || { echo "$prog: no $ko_sid" >&2; exit 1; }
echo "$prog: built $ko_sid in $(($(date +%s) - t))s"

# --- the guests, inside the VM rig ----------------------------------------------
kernels=
if [ "${VDC_GUEST_ONLY:-6.1}" = 6.1 ] || [ -z "${VDC_GUEST_ONLY:-}" ]; then
	kernels+="6.1|$VDC_OLD_KERNEL/boot/vmlinuz-$VDC_OLD_KVER|$VDC_OLD_KERNEL|$VDC_OLD_KVER|$ko_old|$VDC_OLD_KERNEL/boot/config-$VDC_OLD_KVER"$'\n'
fi
if [ "${VDC_GUEST_ONLY:-7.2}" = 7.2 ] || [ -z "${VDC_GUEST_ONLY:-}" ]; then
	kernels+="7.2|$VDC_SID_VMLINUZ|$VDC_SID_MODBASE|$VDC_SID_KVER|$ko_sid|$R/usr/src/linux-headers-$VDC_SID_KVER/.config"$'\n'
fi
q() { printf '%q' "$1"; }
{
	echo "VDC_SID_ROOT=$(q "$R")"
	echo "VDC_DAEMON=$(q "$build/vhost-device-can")"
	echo "VDC_SOURCE_DIR=$(q "$root")"
	echo "VDC_GUEST_BURST=$(q "${VDC_GUEST_BURST:-10000}")"
	echo "VDC_GUEST_KERNELS=$(q "$kernels")"
} >"$out/env.sh"
keep=()
if [ -n "${VDC_GUEST_KEEP:-}" ]; then
	mkdir -p "$VDC_GUEST_KEEP"
	echo "VDC_GUEST_KEEP=$(q "$(cd "$VDC_GUEST_KEEP" && pwd)")" >>"$out/env.sh"
	keep=(--share-rw "$VDC_GUEST_KEEP")
fi
set +e
VDC_VM_MEMORY=${VDC_VM_MEMORY:-2048} VDC_VM_CPUS=${VDC_VM_CPUS:-2} VDC_VM_TIMEOUT=${VDC_VM_TIMEOUT:-2000} \
	"$root/scripts/vm-test.sh" --build-dir "$build" "${keep[@]}" -- \
	"$root/test/guest/in-rig.sh" "$out/env.sh"
rc=$?
set -e
echo "$prog: exit $rc after $(($(date +%s) - t0))s in all"
exit $rc
