#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# run.sh [--demo [--first-step=N]] [--mode] BUILD_DIR - the guest tier (CTest
# label "guest"): the real daemon, sid's real QEMU and a Linux guest running
# the mainline virtio_can driver, built by scripts/virtio-can-driver.sh,
# against real vcan. Here (root): fetch what is needed
# (scripts/guest-fetch.sh, cached), build the module for Debian 12's 6.1
# kernel (with the compatibility header) and for sid's 7.2 kernel (in the
# sid root, with sid's compiler); then run test/guest/in-rig.sh, which
# boots one guest per kernel: directly on this machine when its kernel can
# create vcan interfaces (with KVM when /dev/kvm works), else inside the VM
# rig (scripts/vm-test.sh, TCG: QEMU nested).
#
# --demo: scripts/demo.sh --guest: one guest (VDC_GUEST_ONLY, default 7.2),
# every step printed with its command, candump on both sides, no checks.
# --mode: print the mode ("direct kvm", "direct tcg" or "rig tcg") this
# machine gets, and exit.
#
# Fails (exit 1) when the packages cannot be had, naming why, unless
# VDC_GUEST_SKIP_UNAVAILABLE=1 (not for CI) makes that a skip (77).
# VDC_GUEST_MODE=direct|rig forces the mode (default auto: direct when a
# vcan interface can be created here). For edit-test loops (CI sets none):
# VDC_GUEST_ONLY=6.1|7.2 runs one kernel; VDC_GUEST_CHECKS=GROUP,... runs
# only those check groups (frames, burst, stopstart, busoff, two; bind
# and START always run); VDC_GUEST_BURST sets the burst
# size (default 10000); VDC_GUEST_KEEP=DIR keeps the consoles and logs.
set -euo pipefail
prog=guest-tier
root=$(cd "$(dirname "$0")/../.." && pwd)
demo=0
step_no=0
print_mode=0
while [ $# -gt 1 ]; do
	case $1 in
	--demo) demo=1 ;;
	--first-step=*) step_no=$((${1#*=} - 1)) ;;
	--mode) print_mode=1 ;;
	*) break ;;
	esac
	shift
done
build=$(cd "${1:?usage: run.sh [--demo [--first-step=N]] [--mode] BUILD_DIR}" && pwd)

# --- where the guests run -----------------------------------------------------
# direct: this kernel creates vcan (tried in a throw-away network namespace,
# so nothing here changes); the guests then run in a network namespace of
# their own with their own vcan0 and vcan1 (in-rig.sh makes them).
can_here() {
	modprobe vcan 2>/dev/null || true
	unshare --net sh -c 'ip link add vcan0 type vcan' 2>/dev/null
}
# KVM: /dev/kvm there and QEMU able to start a machine on it (it hangs on
# some hosts: a time limit).
kvm_here() {
	[ -c /dev/kvm ] && [ -w /dev/kvm ] || return 1
	echo quit | timeout 30 qemu-system-x86_64 -machine none,accel=kvm -display none \
		-nodefaults -monitor stdio >/dev/null 2>&1
}
# --- the demo's way of printing steps -------------------------------------------
step() {
	[ "$demo" -eq 1 ] || return 0
	step_no=$((step_no + 1))
	printf '\n[%d] %s\n' "$step_no" "$*"
}
show() {
	[ "$demo" -eq 1 ] || return 0
	local a out=
	for a in "$@"; do out+=" $(printf '%q' "${a/#$root\//}")"; done
	printf '    $%s\n' "$out"
}

unavailable() {
	if [ "${VDC_GUEST_SKIP_UNAVAILABLE:-0}" = 1 ]; then
		echo "$prog: SKIPPED: $*" >&2
		exit 77
	fi
	echo "$prog: FAILED: $* (VDC_GUEST_SKIP_UNAVAILABLE=1 skips instead)" >&2
	exit 1
}
t0=$(date +%s)
[ "$(id -u)" -eq 0 ] || unavailable "needs root (debootstrap, chroot, mounts)"
[ -x "$build/vhost-device-can" ] || unavailable "no daemon in $build (build first)"
"$root/scripts/install-deps.sh" vm guest >/dev/null ||
	unavailable "the packages of the VM rig and the guest tier cannot be installed"
# (after the install: the KVM probe runs this machine's QEMU)
mode=${VDC_GUEST_MODE:-auto}
case $mode in
auto) if can_here; then mode=direct; else mode=rig; fi ;;
direct | rig) ;;
*)
	echo "$prog: VDC_GUEST_MODE=$mode: direct, rig or auto" >&2
	exit 2
	;;
esac
accel=tcg
[ "$mode" = rig ] || ! kvm_here || accel=kvm
if [ "$print_mode" -eq 1 ]; then
	echo "$mode $accel"
	exit 0
fi
# The rig's kernel (also the 6.1 guest's) must be there before its headers
# can be fetched.
[ -n "$(find "${VDC_KERNEL_CACHE:-/var/cache/vhost-device-can/kernel}" -name .complete 2>/dev/null)" ] ||
	"$root/scripts/vm-test.sh" --quick >/dev/null 2>&1 || true

step "Fetch the guest's pieces from Debian sid: QEMU 11 (in a debootstrap root), the 7.2 kernel and its source (cached: minutes and about 1 GB the first time)"
show "$root/scripts/guest-fetch.sh"
vars=$("$root/scripts/guest-fetch.sh") || unavailable "the guest packages cannot be fetched (above)"
eval "$vars"
echo "$prog: fetched in $(($(date +%s) - t0))s"

only=${VDC_GUEST_ONLY:-}
[ "$demo" -eq 0 ] || only=${only:-7.2}
want_kernel() { [ -z "$only" ] || [ "$only" = "$1" ]; }

# --- the modules ---------------------------------------------------------------
out=$build/guest
mkdir -p "$out"
ko_old=
if want_kernel 6.1; then
	step "Build the virtio_can driver for Debian 12's $VDC_OLD_KVER kernel (the 7.2 source and the compatibility header)"
	show "$root/scripts/virtio-can-driver.sh" --kernel-dir "$VDC_OLD_HEADERS" --kver "$VDC_OLD_KVER" \
		--source "$VDC_LINUX_SOURCE" --out "$out/ko-$VDC_OLD_KVER"
	t=$(date +%s)
	ko_old=$("$root/scripts/virtio-can-driver.sh" --kernel-dir "$VDC_OLD_HEADERS" --kver "$VDC_OLD_KVER" \
		--source "$VDC_LINUX_SOURCE" --out "$out/ko-$VDC_OLD_KVER")
	echo "$prog: built $ko_old in $(($(date +%s) - t))s"
fi

# sid's kernel wants sid's compiler and kbuild tools: build in the sid root.
R=$VDC_SID_ROOT
ko_sid=$out/ko-$VDC_SID_KVER/virtio_can.ko
mounts=()
undo() {
	local i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[$i]}" || true; done
}
trap undo EXIT
if want_kernel 7.2; then
	mkdir -p "$out/ko-$VDC_SID_KVER"
	step "Build the virtio_can driver for sid's $VDC_SID_KVER kernel from its own source, in the sid root (sid's gcc)"
	show chroot "$R" /vdc/src/scripts/virtio-can-driver.sh --kernel-dir "$VDC_SID_HEADERS" --kver "$VDC_SID_KVER" \
		--source "/vdc/linux/$(basename "$VDC_LINUX_SOURCE")" --out /vdc/out
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
	[ -f "$ko_sid" ] || { echo "$prog: no $ko_sid" >&2; exit 1; }
	echo "$prog: built $ko_sid in $(($(date +%s) - t))s"
fi

# --- the guests ------------------------------------------------------------------
kernels=
! want_kernel 6.1 ||
	kernels+="6.1|$VDC_OLD_KERNEL/boot/vmlinuz-$VDC_OLD_KVER|$VDC_OLD_KERNEL|$VDC_OLD_KVER|$ko_old|$VDC_OLD_KERNEL/boot/config-$VDC_OLD_KVER"$'\n'
! want_kernel 7.2 ||
	kernels+="7.2|$VDC_SID_VMLINUZ|$VDC_SID_MODBASE|$VDC_SID_KVER|$ko_sid|$R/usr/src/linux-headers-$VDC_SID_KVER/.config"$'\n'
[ -n "$kernels" ] || { echo "$prog: VDC_GUEST_ONLY=$only: 6.1 or 7.2" >&2; exit 2; }
q() { printf '%q' "$1"; }
{
	echo "VDC_SID_ROOT=$(q "$R")"
	echo "VDC_DAEMON=$(q "$build/vhost-device-can")"
	echo "VDC_SOURCE_DIR=$(q "$root")"
	echo "VDC_GUEST_BURST=$(q "${VDC_GUEST_BURST:-10000}")"
	echo "VDC_GUEST_CHECKS=$(q "${VDC_GUEST_CHECKS:-all}")"
	echo "VDC_GUEST_ACCEL=$accel"
	echo "VDC_GUEST_KERNELS=$(q "$kernels")"
	[ "$demo" -eq 0 ] || echo "VDC_DEMO_STEP=$((step_no + 1))"
} >"$out/env.sh"
keep=()
if [ -n "${VDC_GUEST_KEEP:-}" ]; then
	mkdir -p "$VDC_GUEST_KEEP"
	echo "VDC_GUEST_KEEP=$(q "$(cd "$VDC_GUEST_KEEP" && pwd)")" >>"$out/env.sh"
	keep=(--share-rw "$VDC_GUEST_KEEP")
fi
body=("$root/test/guest/in-rig.sh")
[ "$demo" -eq 0 ] || body+=(--demo)
body+=("$out/env.sh")
echo "$prog: mode $mode, accel $accel"
set +e
if [ "$mode" = direct ]; then
	how="TCG: no working /dev/kvm"
	[ "$accel" = tcg ] || how="with KVM"
	step "This kernel has CAN: the guest boots here ($how), in a network namespace with its own vcan0"
	"${body[@]}"
	rc=$?
else
	step "This kernel (Linux $(uname -r)) cannot create vcan: the guest boots nested in the VM rig (scripts/vm-test.sh: QEMU, Debian's kernel, which has CAN)"
	show "$root/scripts/vm-test.sh" --build-dir "$build" -- "${body[@]}"
	VDC_VM_MEMORY=${VDC_VM_MEMORY:-2048} VDC_VM_CPUS=${VDC_VM_CPUS:-2} VDC_VM_TIMEOUT=${VDC_VM_TIMEOUT:-2000} \
		"$root/scripts/vm-test.sh" --build-dir "$build" "${keep[@]}" -- "${body[@]}"
	rc=$?
fi
set -e
echo "$prog: exit $rc after $(($(date +%s) - t0))s in all"
exit $rc
