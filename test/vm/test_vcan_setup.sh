#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# scripts/vcan-setup.sh against a kernel with vcan (the VM rig): creation,
# FD MTU, idempotence, teardown, refusals, and the message for a kernel
# without vcan (by unloading the module, then restoring the rig's links).
# The eval'd checks expand when they run, on purpose.
# shellcheck disable=SC2016,SC2034
set -uo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
vs=$src/scripts/vcan-setup.sh
fails=0
n=0

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	fails=$((fails + 1))
	echo "not ok $n - $1"
}
# check DESCRIPTION COMMAND...: the command must succeed.
check() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
mtu_of() { cat "/sys/class/net/$1/mtu" 2>/dev/null; }
is_up() { ip link show dev "$1" 2>/dev/null | grep -q '<[^>]*\bUP\b'; }
is_vcan() { ip -details link show dev "$1" 2>/dev/null | awk 'NR > 1 && $1 == "vcan" { f = 1 } END { exit !f }'; }
absent() { [ ! -e "/sys/class/net/$1" ]; }

if [ "$(id -u)" -ne 0 ] || ! ip link add dev vst9 type vcan 2>/dev/null; then
	echo "SKIPPED: needs root and a kernel with vcan (run it through scripts/vm-test.sh)"
	exit 77
fi
ip link del dev vst9

# usage and refusals
out=$("$vs" -h 2>&1)
check "-h exits 0 with a usage text" [ $? -eq 0 ]
check "the usage names --fd and --down" grep -q -- '--fd' <<<"$out"
"$vs" --bogus >/dev/null 2>&1
check "an unknown option exits 2" [ $? -eq 2 ]
"$vs" 'a/b' >/dev/null 2>&1
check "an invalid name exits 2" [ $? -eq 2 ]
"$vs" abcdefghijklmnop >/dev/null 2>&1
check "a 16-byte name exits 2" [ $? -eq 2 ]
"$vs" --fd --down vst0 >/dev/null 2>&1
check "--fd with --down exits 2" [ $? -eq 2 ]
check "refusals created nothing" absent vst0

# creation, classic then FD, idempotent
out=$("$vs" vst0 2>&1)
check "create vst0 exits 0" [ $? -eq 0 ]
check "vst0 is a vcan interface" is_vcan vst0
check "vst0 is up" is_up vst0
check "vst0 has the classic MTU 16" [ "$(mtu_of vst0)" = 16 ]
"$vs" vst0 >/dev/null 2>&1
check "running it again exits 0" [ $? -eq 0 ]
check "vst0 is still up with MTU 16" eval 'is_up vst0 && [ "$(mtu_of vst0)" = 16 ]'
"$vs" --fd vst0 >/dev/null 2>&1
check "--fd on an existing classic interface exits 0" [ $? -eq 0 ]
check "vst0 now has MTU 72 and is up" eval 'is_up vst0 && [ "$(mtu_of vst0)" = 72 ]'
ip link set dev vst0 down
"$vs" --fd vst0 >/dev/null 2>&1
check "an existing interface that is down is brought up" is_up vst0
"$vs" --fd vst1 vst2 >/dev/null 2>&1
check "several names at once" eval 'is_up vst1 && is_up vst2 && [ "$(mtu_of vst2)" = 72 ]'
"$vs" --fd >/dev/null 2>&1
check "the default name is vcan0" eval 'is_vcan vcan0 && is_up vcan0 && [ "$(mtu_of vcan0)" = 72 ]'

# what is not vcan is left alone
lo_mtu=$(mtu_of lo)
"$vs" lo >/dev/null 2>&1
check "refuses an existing non-vcan interface (exit 1)" [ $? -eq 1 ]
check "lo is untouched" eval 'is_up lo && [ "$(mtu_of lo)" = "$lo_mtu" ]'
"$vs" --down lo >/dev/null 2>&1
check "--down refuses a non-vcan interface (exit 1)" [ $? -eq 1 ]
check "lo still exists" [ -e /sys/class/net/lo ]

# teardown
"$vs" --down vst0 vst1 vst2 >/dev/null 2>&1
check "--down exits 0" [ $? -eq 0 ]
check "--down deleted all three" eval 'absent vst0 && absent vst1 && absent vst2'
out=$("$vs" --teardown vst0 2>&1)
check "--teardown of an absent interface exits 0" [ $? -eq 0 ]
check "and says it is not present" grep -q 'not present' <<<"$out"

# a kernel without vcan: unload the module (the rig's links go first) and
# hide modprobe; then put everything back as the rig made it.
kver=$(uname -r)
ko=${VDC_KERNEL_DIR:-}/lib/modules/$kver/kernel/drivers/net/can/vcan.ko
if [ "${VDC_IN_VM:-0}" = 1 ] && [ -f "$ko" ]; then
	saved=()
	for l in /sys/class/net/*; do
		l=${l##*/}
		is_vcan "$l" && saved+=("$l:$(mtu_of "$l")")
	done
	for s in "${saved[@]}"; do ip link del dev "${s%%:*}"; done
	if rmmod vcan; then
		fake=$(mktemp -d)
		printf '#!/bin/sh\necho "modprobe: FATAL: Module $*" not found >&2\nexit 1\n' >"$fake/modprobe"
		chmod +x "$fake/modprobe"
		out=$(PATH=$fake:$PATH "$vs" vst0 2>&1)
		rc=$?
		rm -rf "$fake"
		check "no vcan support: exit 3" [ $rc -eq 3 ]
		check "no vcan support: says so and points at vm-test.sh" \
			eval 'grep -q "this kernel has no vcan support" <<<"$out" && grep -q "scripts/vm-test.sh" <<<"$out"'
		check "no vcan support: created nothing" absent vst0
		insmod "$ko" || not_ok "insmod vcan.ko to restore the module"
	else
		not_ok "rmmod vcan"
	fi
	for s in "${saved[@]}"; do
		ip link add dev "${s%%:*}" type vcan &&
			ip link set dev "${s%%:*}" mtu "${s##*:}" up ||
			not_ok "restore ${s%%:*}"
	done
	for s in "${saved[@]}"; do
		check "${s%%:*} is back with MTU ${s##*:}" \
			eval 'is_vcan "${s%%:*}" && is_up "${s%%:*}" && [ "$(mtu_of "${s%%:*}")" = "${s##*:}" ]'
	done
else
	echo "# not in the VM rig: the no-vcan message is not exercised"
fi

echo "1..$n"
[ $fails -eq 0 ]
