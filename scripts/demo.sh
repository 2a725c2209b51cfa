#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# demo.sh - see vhost-device-can move CAN frames both ways, on a virtual
# CAN bus, without a VM. See usage() below.
set -uo pipefail

prog=demo.sh
root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
	cat <<EOF
Usage: $prog [--build-dir DIR] [--in-vm] [--first-step=N]
       $prog --guest [--build-dir DIR]

A guided demo of vhost-device-can, for newcomers; every step is printed
with the command it runs. On a fresh Debian machine, as root, it:

  1. installs what it needs (scripts/install-deps.sh build vm) and builds
     the daemon and the frontend tool with CMake into DIR (default: build);
  2. creates the virtual CAN interface vcan0 (scripts/vcan-setup.sh);
  3. starts the daemon on vcan0, and candump on vcan0 to watch the bus;
  4. connects vhost-device-can-frontend, which plays a VM with a VirtIO CAN
     device: the "guest" sends frames (candump sees them on the host) and
     cansend sends frames on the host (the tool prints them as received
     in the guest);
  5. stops everything (SIGTERM), checks the daemon removed its socket, and
     removes vcan0 again if the demo created it.

When this machine's kernel has no CAN support (no vcan module), the same
demo runs inside a small QEMU virtual machine that has it, through
scripts/vm-test.sh (the first run downloads Debian's kernel, about 70 MB).

  --guest          the same with a real VM instead of the frontend tool:
                   after the install and the build, test/guest/run.sh
                   --demo fetches Debian sid's QEMU and 7.2 kernel
                   (scripts/guest-fetch.sh; cached, about 1 GB the first
                   time), builds the virtio_can driver for that kernel
                   (scripts/virtio-can-driver.sh), boots the guest (nested
                   in the VM rig when this kernel has no CAN, minutes under
                   TCG) and shows candump can0 in the guest and candump
                   vcan0 here as frames cross both ways
  --build-dir DIR  the CMake build directory (default: $root/build)
  --in-vm          run in the VM rig: no install, no build, vcan0 given
  --first-step=N   number the steps from N (the VM run goes on counting)
  -h, --help       this text

Environment (for tests): VDC_DEMO_DAEMON_OPTS, extra daemon options.
Exit status: 0 when every frame crossed, 1 when one did not or a step
failed, 2 on a usage error, 77 when neither this kernel nor a VM can run
it; in the VM case, the other statuses of scripts/vm-test.sh.
EOF
}

build_dir=$root/build
in_vm=0
guest=0
step_no=0
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
	--in-vm)
		in_vm=1
		shift
		;;
	--guest)
		guest=1
		shift
		;;
	--first-step=*)
		step_no=${1#*=}
		[[ $step_no =~ ^[0-9]+$ ]] || {
			usage >&2
			exit 2
		}
		step_no=$((step_no - 1))
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
done

# --- how the steps are printed ----------------------------------------------
step() {
	step_no=$((step_no + 1))
	printf '\n[%d] %s\n' "$step_no" "$*"
}
note() {
	printf '    %s\n' "$@"
}
# The command as one would type it: relative to the source tree when inside it.
cmdline() {
	local out='' a
	for a in "$@"; do
		a=${a/#$root\//}
		out+=" $(printf '%q' "$a")"
	done
	printf '%s' "${out# }"
}
show() {
	printf '    $ %s\n' "$*"
}
# run CMD...: print it, run it, indent its output.
run() {
	local rc
	show "$(cmdline "$@")"
	"$@" 2>&1 | sed 's/^/      /'
	rc=${PIPESTATUS[0]}
	return "$rc"
}
# run_quiet CMD...: print it, run it, show its output only when it fails.
run_quiet() {
	local log rc=0
	show "$(cmdline "$@")"
	log=$(mktemp) || return 1
	"$@" >"$log" 2>&1 || rc=$?
	[ $rc -eq 0 ] || sed 's/^/      /' "$log"
	rm -f "$log"
	return "$rc"
}
fail() {
	printf '\n%s: FAILED: %s\n' "$prog" "$*" >&2
	exit 1
}

cd "$root" || exit 1
if [ "$(id -u)" -ne 0 ]; then
	echo "$prog: run it as root: it installs packages and creates a CAN interface" >&2
	exit 1
fi

# --- install and build (not in the VM: its filesystem is read-only) ----------
if [ $in_vm -eq 0 ]; then
	step "Install the Debian packages the build and the demo need (only the missing ones)"
	if [ $guest -eq 1 ]; then
		run scripts/install-deps.sh build vm guest || fail "installing the packages"
	else
		run scripts/install-deps.sh build vm || fail "installing the packages"
	fi

	step "Build the daemon and the frontend tool with CMake"
	run_quiet cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo ||
		fail "cmake configure"
	run cmake --build "$build_dir" -j"$(nproc)" --target vhost-device-can vhost-device-can-frontend ||
		fail "the build"
fi
daemon=$build_dir/vhost-device-can
frontend=$build_dir/vhost-device-can-frontend
for b in "$daemon" "$frontend"; do
	[ -x "$b" ] || fail "$b is missing: build first (cmake -S . -B build && cmake --build build)"
done

# --- a real guest: test/guest/run.sh --demo goes on from here ----------------
if [ $guest -eq 1 ]; then
	show "$(cmdline test/guest/run.sh --demo --first-step=$((step_no + 1)) "$build_dir")"
	exec test/guest/run.sh --demo --first-step=$((step_no + 1)) "$build_dir"
fi

# --- a kernel with CAN, or the VM ------------------------------------------
if [ $in_vm -eq 0 ]; then
	step "Check that this kernel has SocketCAN and virtual CAN (vcan)"
	if ! run modprobe vcan && [ ! -d /sys/module/vcan ]; then
		note "This kernel (Linux $(uname -r)) has no vcan support: there is no CAN bus" \
			"to put the daemon on here. The same demo now runs inside a small virtual" \
			"machine (QEMU, Debian's kernel, which has CAN) through scripts/vm-test.sh;" \
			"this machine's files are shared with it read-only. Booting takes a while."
		# Not through run: the VM's console is shown as it comes.
		show "$(cmdline scripts/vm-test.sh --build-dir "$build_dir" -- scripts/demo.sh --in-vm \
			--build-dir "$build_dir" --first-step=$((step_no + 1)))"
		scripts/vm-test.sh --build-dir "$build_dir" -- scripts/demo.sh --in-vm \
			--build-dir "$build_dir" --first-step=$((step_no + 1))
		exit $?
	fi
	note "It has: the vcan module is there."
fi

# --- the demo itself ---------------------------------------------------------
[ $in_vm -eq 0 ] || note "Running inside the VM rig (Linux $(uname -r), with vcan)."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdc-demo.XXXXXX") || exit 1
sock=$tmp/can.sock
daemon_pid=
candump_pid=
fe_pid=
created_vcan=0

# shellcheck disable=SC2317 # called by the trap
cleanup() {
	local p
	for p in $fe_pid $candump_pid $daemon_pid; do
		kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	if [ "$created_vcan" -eq 1 ]; then
		scripts/vcan-setup.sh --down vcan0 >/dev/null 2>&1
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

step "Create the virtual CAN interface vcan0 with CAN FD (MTU 72) and bring it up"
[ -e /sys/class/net/vcan0 ] || created_vcan=1
run scripts/vcan-setup.sh --fd vcan0 || fail "creating vcan0"
[ $created_vcan -eq 1 ] || note "vcan0 was already there: it stays when the demo ends."
run ip -details link show vcan0

step "Start the daemon on vcan0: frames from the guest go out on vcan0, frames on vcan0 go to the guest"
read -r -a extra <<<"${VDC_DEMO_DAEMON_OPTS:-}"
show "$(cmdline "$daemon" --socket-path="$sock" --can-in=vcan0 --can-out=vcan0 \
	"${extra[@]}") >daemon.log 2>&1 &"
"$daemon" --socket-path="$sock" --can-in=vcan0 --can-out=vcan0 "${extra[@]}" \
	>"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
	[ -S "$sock" ] && break
	kill -0 "$daemon_pid" 2>/dev/null || break
	sleep 0.1
done
if [ ! -S "$sock" ]; then
	sed 's/^/      /' "$tmp/daemon.log"
	fail "the daemon did not start listening on $sock"
fi
sed 's/^/      /' "$tmp/daemon.log"
daemon_lines=$(wc -l <"$tmp/daemon.log")
note "It listens on $sock, where a VMM (QEMU, cloud-hypervisor) would connect."

# Receivers on vcan0 known to the kernel: candump has bound when one more appears.
receivers() {
	local n
	n=$(grep -c ' vcan0 ' /proc/net/can/rcvlist_all 2>/dev/null)
	echo "${n:-0}"
}
step "Watch the bus on the host side with candump"
before=$(receivers)
show "candump vcan0 >candump.log &"
candump vcan0 >"$tmp/candump.log" 2>&1 &
candump_pid=$!
for _ in $(seq 50); do
	[ "$(receivers)" -gt "$before" ] && break
	sleep 0.1
done
note "candump prints one line per frame: interface, id, [length], data bytes." \
	"After an extended (8-digit) id it indents standard ids to line them up."

guest_frames=(123#DEADBEEF 12345678#00 123##1AABBCCDDEEFF0011 321#R2)
guest_on_bus=(
	"  vcan0  123   [4]  DE AD BE EF"
	"  vcan0  12345678   [1]  00"
	"  vcan0       123  [08]  AA BB CC DD EE FF 00 11"
	"  vcan0       321   [2]  remote request"
)
host_frames=(456#C0FFEE 1ABCDEF0#0102 456##1.11.22.33.44.55.66.77.88.99.AA.BB.CC)
host_in_guest=(
	"  virtio  456   [3]  C0 FF EE"
	"  virtio  1ABCDEF0   [2]  01 02"
	"  virtio       456  [12]  11 22 33 44 55 66 77 88 99 AA BB CC"
)

step "Connect the frontend tool (a VM's guest, without the VM) and send ${#guest_frames[@]} frames from the guest"
note "It sets up guest memory and the virtqueues over the socket, as a VMM does," \
	"sends START as the guest's driver does on 'ip link set up', sends the frames" \
	"and then prints each frame the guest receives, as candump does; -n ${#host_frames[@]}:" \
	"it ends after ${#host_frames[@]} frames (or after 120 seconds: -t 120); -v: it" \
	"reports each frame sent on stderr."
show "$(cmdline "$frontend" --socket-path="$sock" -v -n ${#host_frames[@]} -t 120 \
	"${guest_frames[@]}") >guest.out &"
"$frontend" --socket-path="$sock" -v -n ${#host_frames[@]} -t 120 "${guest_frames[@]}" \
	>"$tmp/guest.out" 2>"$tmp/guest.err" &
fe_pid=$!

# The guest's frames on the host bus, as candump printed them.
seen_all() {
	local l
	for l in "${guest_on_bus[@]}"; do
		grep -qxF -- "$l" "$tmp/candump.log" || return 1
	done
}
# The tool's verdict on a frame: "sent ..." or "frame ...: NOT_OK".
refused() {
	grep -q ': NOT_OK' "$tmp/guest.err"
}
answered() {
	[ "$(grep -cE ': (sent .*|frame .*: NOT_OK.*)$' "$tmp/guest.err")" -ge ${#guest_frames[@]} ]
}
for _ in $(seq 150); do
	seen_all && break
	kill -0 "$fe_pid" 2>/dev/null || break
	answered && refused && break
	sleep 0.1
done
note "What candump printed on the host:"
sed 's/^/      /' "$tmp/candump.log"
crossed=1
for l in "${guest_on_bus[@]}"; do
	if ! grep -qxF -- "$l" "$tmp/candump.log"; then
		note "MISSING on the host: '$l'"
		crossed=0
	fi
done
[ $crossed -eq 1 ] && note "All ${#guest_frames[@]} guest frames reached vcan0."

step "Send ${#host_frames[@]} frames on the host bus with cansend; the guest receives them"
for f in "${host_frames[@]}"; do
	run cansend vcan0 "$f" || crossed=0
done
for _ in $(seq 100); do
	kill -0 "$fe_pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$fe_pid" 2>/dev/null; then
	note "The guest did not receive every frame within 10 seconds: stopping the tool."
	show "kill -TERM $fe_pid   # vhost-device-can-frontend"
	kill -TERM "$fe_pid"
fi
fe_status=0
wait "$fe_pid" || fe_status=$?
fe_pid=
note "What the frontend tool printed as received in the guest (guest.out):"
sed 's/^/      /' "$tmp/guest.out"
note "and its report (guest.err):"
sed 's/^/      /' "$tmp/guest.err"
i=0
while IFS= read -r l; do
	if [ "$l" != "${host_in_guest[$i]:-}" ]; then
		note "UNEXPECTED in the guest: '$l' (expected '${host_in_guest[$i]:-nothing}')"
		crossed=0
	fi
	i=$((i + 1))
done <"$tmp/guest.out"
if [ $i -ne ${#host_in_guest[@]} ]; then
	note "The guest received $i of ${#host_in_guest[@]} frames."
	crossed=0
fi
if [ $fe_status -ne 0 ]; then
	note "The frontend tool exited with status $fe_status."
	crossed=0
fi
[ $crossed -eq 1 ] && note "All ${#host_frames[@]} host frames reached the guest."

step "Stop everything: candump, then the daemon (SIGTERM prints its counters and removes the socket)"
show "kill -TERM $candump_pid   # candump"
kill -TERM "$candump_pid" && wait "$candump_pid" 2>/dev/null
candump_pid=
show "kill -TERM $daemon_pid   # vhost-device-can"
kill -TERM "$daemon_pid"
daemon_status=0
wait "$daemon_pid" || daemon_status=$?
daemon_pid=
tail -n +$((daemon_lines + 1)) "$tmp/daemon.log" | sed 's/^/      /'
stopped=1
if [ $daemon_status -ne 0 ]; then
	note "The daemon exited with status $daemon_status (expected 0)."
	stopped=0
fi
if [ -e "$sock" ]; then
	note "The daemon left its socket $sock behind."
	stopped=0
fi
[ $stopped -eq 1 ] && note "The daemon exited with status 0 and removed its socket."

if [ $created_vcan -eq 1 ]; then
	step "Remove vcan0, which the demo created"
	run scripts/vcan-setup.sh --down vcan0 || stopped=0
	created_vcan=0
fi

echo
if [ $crossed -eq 1 ] && [ $stopped -eq 1 ]; then
	echo "$prog: PASSED: ${#guest_frames[@]} frames guest -> host, ${#host_frames[@]} frames host -> guest, clean stop."
	exit 0
fi
[ $crossed -eq 1 ] || fail "a frame did not cross (see above)"
fail "the daemon did not stop cleanly (see above)"
