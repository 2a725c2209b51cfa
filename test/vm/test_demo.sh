#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# scripts/demo.sh in the VM suite, so that it never rots: it passes and
# prints its steps with their commands; it leaves vcan0 alone when it was
# there and removes it when it created it; it leaves no process, socket or
# scratch directory behind; and it fails when a frame cannot cross (the
# daemon run without CAN FD).
# shellcheck disable=SC2016 # the eval'd checks expand when they run
set -uo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
demo=$src/scripts/demo.sh
build=${1:-${VDC_BUILD_DIR:-$src/build}}
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
check() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
has() { grep -qF -- "$1" <<<"$out"; }
# shellcheck disable=SC2001 # a prefix on every line
show_out() { sed 's/^/# /' <<<"$out"; }
mtu_of() { cat "/sys/class/net/$1/mtu" 2>/dev/null; }
leftovers() {
	# Names beyond 15 characters are cut in the process table: match the command line.
	pgrep -f -- "$build/vhost-device-can " >/dev/null || pgrep -x candump >/dev/null ||
		pgrep -f -- "$build/vhost-device-can-frontend" >/dev/null ||
		compgen -G "${TMPDIR:-/tmp}/vdc-demo.*" >/dev/null
}

if [ "$(id -u)" -ne 0 ] || [ ! -e /sys/class/net/vcan0 ] || [ ! -x "$build/vhost-device-can-frontend" ]; then
	echo "SKIPPED: needs root, vcan0 and a build with the frontend tool (run it through scripts/vm-test.sh)"
	exit 77
fi

# 1. vcan0 given (as the rig makes it): the demo passes and leaves it.
out=$("$demo" --in-vm --build-dir "$build" 2>&1)
rc=$?
show_out
check "the demo exits 0" [ $rc -eq 0 ]
check "it says every frame crossed" has "PASSED: 4 frames guest -> host, 3 frames host -> guest, clean stop."
check "it shows the daemon's command" has "vhost-device-can --socket-path="
check "it shows candump" has '$ candump vcan0'
check "it shows the frontend tool's command" has "vhost-device-can-frontend --socket-path="
check "it shows cansend" has '$ cansend vcan0 456#C0FFEE'
check "the guest's FD frame is on the bus" has "  vcan0       123  [08]  AA BB CC DD EE FF 00 11"
check "the host's FD frame is in the guest" has "  virtio       456  [12]  11 22 33 44 55 66 77 88 99 AA BB CC"
check "the daemon stopped cleanly" has "The daemon exited with status 0 and removed its socket."
check "vcan0 is still there with MTU 72" eval '[ "$(mtu_of vcan0)" = 72 ]'
check "nothing is left running or lying around" eval '! leftovers'

# 2. A frame that cannot cross: the daemon offers no CAN FD.
out=$(VDC_DEMO_DAEMON_OPTS=--no-fd "$demo" --in-vm --build-dir "$build" 2>&1)
rc=$?
show_out
check "without CAN FD the demo exits 1" [ $rc -eq 1 ]
check "and says a frame did not cross" has "FAILED: a frame did not cross"
check "it names the missing frame" has "MISSING on the host: '  vcan0       123  [08]"
check "nothing is left after a failure" eval '! leftovers'

# 3. No vcan0: the demo creates it and removes it again.
saved_mtu=$(mtu_of vcan0)
if ip link del dev vcan0; then
	out=$("$demo" --in-vm --build-dir "$build" 2>&1)
	rc=$?
	show_out
	check "the demo that created vcan0 exits 0" [ $rc -eq 0 ]
	check "it says it removes vcan0" has "Remove vcan0, which the demo created"
	check "vcan0 is gone again" [ ! -e /sys/class/net/vcan0 ]
	if ! { ip link add dev vcan0 type vcan && ip link set dev vcan0 mtu "$saved_mtu" up; }; then
		not_ok "restore vcan0"
	fi
	check "vcan0 is back with MTU $saved_mtu" eval '[ "$(mtu_of vcan0)" = "$saved_mtu" ]'
else
	not_ok "remove vcan0 to let the demo create it"
fi

echo "1..$n"
[ $fails -eq 0 ]
