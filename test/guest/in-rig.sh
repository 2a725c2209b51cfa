#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# in-rig.sh [--demo] ENVFILE - the guest tier's body, run by
# test/guest/run.sh where vcan can be created: inside the VM rig, or
# directly on a host whose kernel has CAN. It runs in a network and mount
# namespace of its own, with its own vcan0 (CAN FD) and vcan1. For each
# guest kernel named in ENVFILE: starts the real daemon, boots sid's QEMU
# (chrooted in the sid root; KVM when ENVFILE says so, else TCG) with that
# kernel, a busybox initramfs and the virtio_can.ko built for it, and drives
# the guest's shell over its serial console: bind, START, frames of every
# kind both ways checked with can-utils on both sides, a burst each way with
# every frame accounted for, STOP and START again, bus-off, two devices.
# Prints one line per check and the time each took; exits 0 when all pass.
# VDC_GUEST_CHECKS (from the ENVFILE): a comma-separated subset of the
# check groups frames, burst, stopstart, busoff, two (default:
# all); bind, START and the daemon's activation are always checked.
# --demo: scripts/demo.sh --guest's part: the first kernel only, every
# command printed, candump on both sides; no checks.
set -uo pipefail

prog=in-rig.sh
args=("$@")
demo=0
if [ "${1:-}" = --demo ]; then
	demo=1
	shift
fi
env_file=${1:?usage: $prog [--demo] ENVFILE}
if [ "${VDC_GUEST_NETNS:-}" != 1 ]; then
	exec env VDC_GUEST_NETNS=1 unshare --mount --net --propagation private -- "$0" "${args[@]}"
fi
# shellcheck disable=SC1090
. "$env_file"
: "${VDC_SID_ROOT:?}" "${VDC_DAEMON:?}" "${VDC_GUEST_KERNELS:?}"
burst=${VDC_GUEST_BURST:-10000}
checks=${VDC_GUEST_CHECKS:-all}
R=$VDC_SID_ROOT
want() { [ "$checks" = all ] || [[ ,$checks, == *,$1,* ]]; }
accel=${VDC_GUEST_ACCEL:-tcg}
if [ "$accel" = kvm ]; then
	accel_args=(-accel kvm -cpu host)
else
	# shellcheck disable=SC2054 # one option's value, not two elements
	accel_args=(-accel tcg,tb-size=128 -cpu max)
fi

# This namespace's buses: nothing outside it sees their frames.
modprobe vcan 2>/dev/null
if ! { ip link set lo up && ip link add vcan0 type vcan && ip link set vcan0 mtu 72 up &&
	ip link add vcan1 type vcan && ip link set vcan1 up; }; then
	echo "$prog: cannot create vcan0 and vcan1 here" >&2
	exit 125
fi

work=$(mktemp -d /tmp/vdc-guest.XXXXXX)
fails=0
daemon_pid=
qpid=
mounted=()
t0=$(date +%s)

say() { echo "[$(($(date +%s) - t0))s] $*"; }
cleanup() {
	[ -z "$qpid" ] || kill -9 "$qpid" 2>/dev/null
	[ -z "$daemon_pid" ] || kill "$daemon_pid" 2>/dev/null
	wait 2>/dev/null
	local i
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[$i]}" 2>/dev/null; done
	# Directly on a host /tmp is not the rig's tmpfs: the initramfs go too.
	rm -rf "$work"
}
trap cleanup EXIT
bind() { # SRC DST: bind-mount, undone at exit
	mount --bind "$1" "$2" || {
		echo "$prog: cannot bind $1 on $2" >&2
		exit 125
	}
	mounted+=("$2")
}

# The sid root is read-only here (the rig's 9p): QEMU needs /dev, /proc and
# a place for the sockets and the guest's kernel, on mount points the fetch
# script made.
bind /dev "$R/dev"
mount -t proc proc "$R/proc" && mounted+=("$R/proc")
mkdir -p "$work/run"
bind "$work/run" "$R/vdc/run"
bind "$work/run" "$R/tmp"

# --- the guest's serial console -----------------------------------------------
# Commands go to QEMU's stdin (the guest's bash -s); their output and then
# "@@RC=<status>" come back on its stdout.
G_OUT=
G_RC=
glog=
expect_line() { # REGEX TIMEOUT: read console lines until one matches
	local re=$1 deadline=$(($(date +%s) + $2)) line
	while [ "$(date +%s)" -lt "$deadline" ]; do
		# The coproc's fds go when QEMU has exited.
		[ -n "${Q[0]:-}" ] || return 2
		if IFS= read -r -t 5 line <&"${Q[0]}"; then
			line=${line%$'\r'}
			echo "$line" >>"$glog"
			if [[ $line =~ $re ]]; then
				G_LINE=$line
				G_M=${BASH_REMATCH[1]:-}
				return 0
			fi
			G_OUT+=$line$'\n'
		elif ! kill -0 "$qpid" 2>/dev/null; then
			return 2
		fi
	done
	return 1
}
g() { # [-t SECONDS] COMMAND: run COMMAND in the guest, G_OUT/G_RC
	local to=300
	if [ "$1" = -t ]; then
		to=$2
		shift 2
	fi
	G_OUT=
	G_RC=
	echo "# $*" >>"$glog"
	# Through cat: not a terminal, so no colours. Background commands must
	# send their output to files (or cat would wait for them).
	printf '{ %s\n} </dev/null 2>&1 | cat; echo "@@RC=${PIPESTATUS[0]}"\n' "$*" >&"${Q[1]}"
	if ! expect_line '^@@RC=([0-9]+)$' "$to"; then
		G_RC=999
		return 1
	fi
	G_RC=$G_M
	[ "$G_RC" -eq 0 ]
}

check_start=0
begin() { check_start=$(date +%s); }
result() { # NAME OK(0/1) [DETAIL]
	local s=$(($(date +%s) - check_start))
	if [ "$2" -eq 0 ]; then
		say "ok   $kname: $1 (${s}s)${3:+ - $3}"
	else
		say "FAIL $kname: $1 (${s}s)${3:+ - $3}"
		fails=$((fails + 1))
	fi
}

# The QEMU device: virtio-can (36), its three queues, its config space.
vdev_opts=virtio-id=36,num_vqs=3,config_size=16,vq_size=256

# --- one guest ------------------------------------------------------------------
initramfs() { # KDIR(modules base) KVER KO CONFIG OUTDIR
	local mbase=$1 kver=$2 ko=$3 cfg=$4 out=$5 ird=$5/ird m f base
	rm -rf "$ird" "$out/deps"
	mkdir -p "$ird"/{bin,dev,proc,sys,modules}
	cp "$(command -v busybox)" "$ird/bin/busybox"
	cp "$VDC_SOURCE_DIR/test/guest/init" "$ird/init"
	chmod 755 "$ird/init"
	: >"$ird/modules/order"
	# Load order from modprobe itself; a module built into the kernel has
	# nothing to load (without modules.builtin modprobe may not know it).
	local -A cfgname=([virtio_pci]=VIRTIO_PCI [9pnet_virtio]=NET_9P_VIRTIO [9p]=9P_FS
		[can]=CAN [can_raw]=CAN_RAW [can_dev]=CAN_DEV)
	for m in virtio_pci 9pnet_virtio 9p can can_raw can_dev; do
		if ! modprobe -d "$mbase" -S "$kver" --show-depends "$m" >>"$out/deps" 2>/dev/null &&
			! grep -qx "CONFIG_${cfgname[$m]}=y" "$cfg"; then
			echo "$prog: module $m not found for $kver in $mbase" >&2
			return 1
		fi
	done
	for f in $(awk '$1 == "insmod" { print $2 }' "$out/deps"); do
		base=$(basename "$f")
		base=${base%.xz}
		base=${base%.zst}
		! grep -qxF "$base" "$ird/modules/order" || continue
		case $f in
		*.xz) xz -dc "$f" >"$ird/modules/$base" ;;
		*.zst) zstd -qdc "$f" >"$ird/modules/$base" ;;
		*) cp "$f" "$ird/modules/$base" ;;
		esac || return 1
		echo "$base" >>"$ird/modules/order"
	done
	cp "$ko" "$ird/modules/virtio_can.ko"
	echo virtio_can.ko >>"$ird/modules/order"
	(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) >"$out/initrd.gz"
}

host_dump() { # FILE COUNT: candump -L on vcan0 in the background (pid in HD)
	timeout 300 candump -L -n "$2" vcan0 >"$1" 2>&1 &
	HD=$!
	sleep 0.5
}
# The frames of a candump -L file, one per line as "ID#DATA", FD flags
# reduced to BRS (the FDF flag shows on newer kernels only).
frames() {
	awk 'NF >= 3 { f = $3
	       if (f ~ /##/) { split(f, a, "##"); fl = substr(a[2], 1, 1); d = substr(a[2], 2)
	                       f = a[1] "##" (index("13579BDFbdf", fl) ? "1" : "0") d }
	       print f }' "$1"
}
sent_frames() { printf '%s\n' 123#11223344 12345678#AABBCCDD 321#R 456##100112233445566778899AABB; }
expect_frames() { # FILE [nobrs]: the four sent frames, RTR with any DLC
	local brs='s/^(456##)1/\1X/'
	# virtio-can has no BRS flag: towards the guest, FD frames arrive
	# without it (the driver cannot know).
	[ "${2:-}" != nobrs ] || brs='s/^(456##)[01]/\1X/'
	frames "$1" | sed -E 's/^(321#R)[0-9]*$/\1/' | sed -E "$brs" |
		diff -u <(sent_frames | sed -E "$brs") - >"$work/diff" 2>&1
}
num() { [[ $1 =~ ^[0-9]+$ ]] && echo "$1" || echo -1; }

check_frames() { # classic, extended, RTR, FD both ways
	# Guest to host: the four kinds, candump on the rig's vcan0.
	begin
	host_dump "$work/h.log" 4
	g 'for f in 123#11223344 12345678#AABBCCDD 321#R 456##100112233445566778899AABB; do cansend can0 $f || exit 1; done'
	wait "$HD"
	expect_frames "$work/h.log"
	result "guest->host classic, extended, RTR, FD+BRS" $? "$(tr '\n' ' ' <"$work/diff")"

	# Host to guest: candump in the guest first, then cansend on vcan0.
	begin
	g 'candump -L -n 4 can0 >/tmp/g.log 2>&1 & echo $! >/tmp/g.pid; sleep 3'
	for f in $(sent_frames); do cansend vcan0 "$f"; done
	g -t 120 'timeout 100 tail --pid=$(cat /tmp/g.pid) -f /dev/null; cat /tmp/g.log'
	echo "$G_OUT" >"$work/g.log"
	expect_frames "$work/g.log" nobrs
	result "host->guest classic, extended, RTR, FD (BRS cannot cross virtio-can)" $? "$(tr '\n' ' ' <"$work/diff")"
}

check_burst() { # a burst each way, every frame counted
	local rx0 tx0 n
	# Bursts: every frame counted on the receiving side and by the
	# sender's interface counters.
	begin
	g 'cat /sys/class/net/can0/statistics/tx_packets'
	tx0=$(num "$(echo "$G_OUT" | head -n 1)")
	timeout 900 candump -n "$burst" vcan0 >"$work/hb.log" 2>&1 &
	HD=$!
	sleep 0.5
	g -t 900 "cangen can0 -n $burst -g 0 -p 1000 -I 2A -L 8 -D i && cat /sys/class/net/can0/statistics/tx_packets"
	local g_ok=$G_RC tx1
	tx1=$(num "$(echo "$G_OUT" | grep . | tail -n 1)")
	wait "$HD"
	n=$(grep -c ' 02A ' "$work/hb.log")
	[ "$g_ok" -eq 0 ] && [ "$n" -eq "$burst" ] && [ $((tx1 - tx0)) -eq "$burst" ]
	result "burst guest->host" $? "$burst sent, $n on vcan0, guest tx_packets +$((tx1 - tx0))"

	begin
	g 'cat /sys/class/net/can0/statistics/rx_packets'
	rx0=$(num "$(echo "$G_OUT" | head -n 1)")
	# candump in this slow guest falls behind: a socket buffer for the whole
	# burst, so that what the driver delivers is all counted.
	g 'echo 67108864 >/proc/sys/net/core/rmem_max; candump -r 67108864 -n '"$burst"' can0 >/tmp/gb.log 2>&1 & echo $! >/tmp/gb.pid; sleep 3'
	cangen vcan0 -n "$burst" -g 1 -p 1000 -I 2B -L 8 -D i
	g -t 900 'timeout 800 tail --pid=$(cat /tmp/gb.pid) -f /dev/null; grep -c " 02B " /tmp/gb.log; cat /sys/class/net/can0/statistics/rx_packets'
	n=$(num "$(echo "$G_OUT" | head -n 1)")
	local rx1
	rx1=$(num "$(echo "$G_OUT" | sed -n 2p)")
	[ "$n" = "$burst" ] && [ $((rx1 - rx0)) -eq "$burst" ]
	result "burst host->guest" $? "$burst sent on vcan0, $n in the guest's candump, guest rx_packets +$((rx1 - rx0))"
}

check_stopstart() { # STOP, START again, a frame after it
	begin
	g 'ip link set can0 down && ip link show can0 | grep -q "state DOWN" && ip link set can0 up && ip -details link show can0 | grep -q ERROR-ACTIVE'
	local ud=$G_RC
	host_dump "$work/h2.log" 1
	g 'cansend can0 7FF#0102'
	wait "$HD"
	local seen=0
	grep -q '7FF#0102' "$work/h2.log" || seen=1
	[ "$ud" -eq 0 ] && [ "$seen" -eq 0 ]
	result "STOP, START again, a frame after it" $? "$(cat "$work/h2.log")"
}

check_busoff() { # host bus-off reaches the guest, restart recovers
	local seen
	# Bus-off on the host side: an error frame with CAN_ERR_BUSOFF on vcan0
	# (cansend takes an 8-digit id with CAN_ERR_FLAG as an error frame).
	# The daemon stops the controller and tells the guest, whose driver
	# shows BUS-OFF; the guest's restart starts it again.
	begin
	cansend vcan0 20000040#0000000000000000
	local st=1
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		g 'ip -details link show can0'
		if echo "$G_OUT" | grep -q BUS-OFF; then
			st=0
			break
		fi
		sleep 1
	done
	result "host bus-off reaches the guest as BUS-OFF" "$st" "$(echo "$G_OUT" | grep -o 'state [A-Z-]*' | tail -n 1)"
	begin
	g 'ip link set can0 type can restart && sleep 1 && ip -details link show can0 | grep -q ERROR-ACTIVE'
	local rs=$G_RC
	host_dump "$work/h3.log" 1
	g 'cansend can0 5A5#0304'
	wait "$HD"
	seen=0
	grep -q '5A5#0304' "$work/h3.log" || seen=1
	[ "$rs" -eq 0 ] && [ "$seen" -eq 0 ]
	result "restart (ip link set can0 type can restart): ERROR-ACTIVE, a frame after it" $? "$(cat "$work/h3.log")"
}

check_two() { # can0 and can1 isolated
	# Two devices, one daemon: can0 is vcan0's, can1 is vcan1's, and no
	# frame crosses between them, either way.
	begin
	g 'test -e /sys/class/net/can1 && ip link set can1 up && ip -details link show can1 | grep -q ERROR-ACTIVE'
	local c1=$G_RC
	g 'candump -L can0 >/tmp/i0.log 2>&1 & echo $! >/tmp/i0.pid; candump -L can1 >/tmp/i1.log 2>&1 & echo $! >/tmp/i1.pid; sleep 2'
	cansend vcan0 1A0#A0
	cansend vcan1 1B1#B1
	# The host's candumps run until the guest's command has returned: in
	# the nested guest two cansend calls can take longer than any fixed
	# timeout (a CI run saw can1's frame arrive after an 8 s one ended).
	timeout 300 candump -L vcan0 >"$work/i0.log" 2>&1 &
	local p0=$!
	timeout 300 candump -L vcan1 >"$work/i1.log" 2>&1 &
	local p1=$!
	sleep 0.5
	g 'cansend can0 2A0#A0 && cansend can1 2B1#B1; sleep 2; kill $(cat /tmp/i0.pid) $(cat /tmp/i1.pid); sleep 1; echo can0: $(cut -d" " -f3 /tmp/i0.log); echo can1: $(cut -d" " -f3 /tmp/i1.log)'
	sleep 1
	kill "$p0" "$p1" 2>/dev/null
	wait "$p0" "$p1" 2>/dev/null
	local gi0 gi1 hi0 hi1
	gi0=$(echo "$G_OUT" | grep '^can0:')
	gi1=$(echo "$G_OUT" | grep '^can1:')
	hi0=$(cut -d' ' -f3 "$work/i0.log" | tr '\n' ' ')
	hi1=$(cut -d' ' -f3 "$work/i1.log" | tr '\n' ' ')
	[ "$c1" -eq 0 ] && [[ $gi0 == *1A0#A0* && $gi0 != *1B1* && $gi0 != *2B1* ]] &&
		[[ $gi1 == *1B1#B1* && $gi1 != *1A0* && $gi1 != *2A0* ]] &&
		[[ $hi0 == *2A0#A0* && $hi0 != *2B1* ]] && [[ $hi1 == *2B1#B1* && $hi1 != *2A0* ]]
	result "two devices, one daemon: can0 and can1 isolated both ways" $? \
		"can1 up rc=$c1; guest $gi0, $gi1; host vcan0: $hi0, vcan1: $hi1"
}

# qemu_args NAME NDEV: QEMU's options (in qargs) for guest NAME with NDEV
# virtio-can devices on the daemon's can.sock (and can1.sock); the tier and
# the demo boot the same machine.
# shellcheck disable=SC2054 # the commas are QEMU's, inside one option
qemu_args() {
	qargs=(-m 256 -smp 1 -display none -no-reboot -nic none -monitor none
		-chardev stdio,id=con,signal=off -serial chardev:con
		-kernel "/vdc/run/$1/vmlinuz" -initrd "/vdc/run/$1/initrd.gz"
		-append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init"
		-object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem
		-chardev socket,id=can0,path=/vdc/run/can.sock
		-device "vhost-user-test-device-pci,chardev=can0,$vdev_opts")
	if [ "$2" -ge 2 ]; then
		qargs+=(-chardev socket,id=can1,path=/vdc/run/can1.sock
			-device "vhost-user-test-device-pci,chardev=can1,$vdev_opts")
	fi
	qargs+=(-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap)
}

run_guest() { # NAME VMLINUZ MODULE_BASE KVER KO CONFIG
	kname=$1
	local vmlinuz=$2 mbase=$3 kver=$4 ko=$5 cfg=$6 d=$work/run/$1 boot_t
	mkdir -p "$d"
	glog=$work/$1.console.log
	: >"$glog"
	begin
	initramfs "$mbase" "$kver" "$ko" "$cfg" "$d" || {
		result "initramfs" 1
		return
	}
	cp "$vmlinuz" "$d/vmlinuz"
	result "initramfs with $(basename "$ko") for $kver" 0

	# One daemon for the whole tier, two devices (vcan0 and vcan1), started
	# by socket activation: systemd-socket-activate holds both sockets and
	# execs the daemon on the first connection, the first guest's QEMU.
	# The next guest's QEMU comes after the previous one got SIGKILL: the
	# same daemon must serve it.
	local activated=0 pre_exe=
	if [ -z "$daemon_pid" ]; then
		rm -f "$work/run/can.sock" "$work/run/can1.sock"
		systemd-socket-activate -l "$work/run/can.sock" -l "$work/run/can1.sock" \
			"$VDC_DAEMON" --device can-in=vcan0,can-out=vcan0 --device can-in=vcan1,can-out=vcan1 \
			--rx-backlog=$((burst + 1024)) 2>"$work/daemon.log" &
		daemon_pid=$!
		activated=1
		for _ in $(seq 50); do [ -S "$work/run/can1.sock" ] && break; sleep 0.2; done
		[ -S "$work/run/can1.sock" ] || {
			result "sockets listening (systemd-socket-activate)" 1 "$(tail -n 3 "$work/daemon.log")"
			return
		}
		pre_exe=$(readlink "/proc/$daemon_pid/exe")
	elif ! kill -0 "$daemon_pid" 2>/dev/null; then
		result "the daemon outlived the previous guest's QEMU" 1 "$(tail -n 3 "$work/daemon.log")"
		return
	fi

	begin
	qemu_args "$1" 2
	coproc Q {
		exec chroot "$R" qemu-system-x86_64 "${accel_args[@]}" "${qargs[@]}" 2>"$work/$1.qemu.log"
	}
	qpid=$Q_PID
	if ! expect_line '^VDC-GUEST-(READY|FAIL)' 900 || [[ $G_LINE != VDC-GUEST-READY* ]]; then
		result "boot" 1 "${G_LINE:-no READY line}; console: $(tail -n 5 "$glog" | tr '\n' '|'); qemu: $(tail -n 3 "$work/$1.qemu.log" | tr '\n' '|')"
		return
	fi
	boot_t=$(($(date +%s) - check_start))
	local booted
	booted=$(date +%s)
	result "boot (${G_LINE#VDC-GUEST-READY })" 0

	begin
	g 'test -e /sys/class/net/can0 && ip -details link show can0'
	result "bind: can0 appears" "$G_RC" "$(echo "$G_OUT" | tr -s ' \n' ' ')"
	[ "$G_RC" -eq 0 ] || return
	echo "$G_OUT" >"$work/$1.details"

	begin
	g 'ip link set can0 up && ip -details link show can0 | grep -q ERROR-ACTIVE && ip link set can0 txqueuelen 1000'
	result "START (ip link set can0 up): ERROR-ACTIVE" "$G_RC" "$(echo "$G_OUT" | tr '\n' ' ')"
	local post_exe
	post_exe=$(readlink "/proc/$daemon_pid/exe")
	if [ "$activated" -eq 1 ]; then
		begin
		[[ $pre_exe == *systemd-socket-activate && $post_exe == "$VDC_DAEMON" ]]
		result "socket activation: the daemon execs on QEMU's first connection" $? "before QEMU: $pre_exe, after: $post_exe"
	else
		begin
		[[ $post_exe == "$VDC_DAEMON" ]] && kill -0 "$daemon_pid"
		result "the previous guest's QEMU got SIGKILL: the same daemon (pid $daemon_pid) serves this one" $?
	fi

	want frames && check_frames
	want burst && check_burst
	want stopstart && check_stopstart
	want busoff && check_busoff
	want two && check_two

	say "$kname: boot ${boot_t}s, checks $(($(date +%s) - booted))s"
	# Nothing to keep in the guest: QEMU goes.
	kill -9 "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
	qpid=
}

# --- the demo (--demo): one guest, candump on both sides --------------------------
# Each step printed as scripts/demo.sh prints them; the guest's commands
# with the prompt "guest#", the host's (this machine, or the VM rig) with "$".
step_no=${VDC_DEMO_STEP:-0}
dstep() {
	step_no=$((step_no + 1))
	printf '\n[%d] %s\n' "$step_no" "$*"
}
dnote() { printf '    %s\n' "$@"; }
dguest() { # COMMAND: run in the guest, shown with its output
	local rc
	printf '    guest# %s\n' "$1"
	g "$1"
	rc=$?
	[ -z "$G_OUT" ] || printf '%s' "$G_OUT" | sed 's/^/      /'
	return $rc
}
dhost() { # CMD...: run here, shown with its output
	printf '    $ %s\n' "$*"
	"$@" 2>&1 | sed 's/^/      /'
	return "${PIPESTATUS[0]}"
}
demo_fail() {
	printf '\n%s: FAILED: %s\n' "demo" "$*"
	exit 1
}

run_demo() { # NAME VMLINUZ MODULE_BASE KVER KO CONFIG
	kname=$1
	local vmlinuz=$2 mbase=$3 kver=$4 ko=$5 cfg=$6 d=$work/run/$1 qver f ok=1
	local gframes=(123#DEADBEEF 12345678#00 321#R 456##1AABBCCDDEEFF0011)
	local hframes=(7A0#C0FFEE 1ABCDEF0#0102 7A1##0112233445566778899AABBCC)
	mkdir -p "$d"
	glog=$work/$1.console.log
	: >"$glog"
	dstep "Make the guest's initramfs: busybox, the $kver kernel's virtio and CAN modules, and virtio_can.ko built for it"
	initramfs "$mbase" "$kver" "$ko" "$cfg" "$d" || demo_fail "the initramfs"
	cp "$vmlinuz" "$d/vmlinuz"
	dnote "Its init loads virtio_can.ko, mounts a userland (sid: bash, iproute2, can-utils) over 9p and runs a shell on the serial console."

	dstep "Start the daemon on vcan0 (the CAN bus on this side); QEMU connects to its socket"
	local sock=$work/run/can.sock
	printf '    $ %s\n' "vhost-device-can --socket-path=$sock --can-in=vcan0 --can-out=vcan0 &"
	"$VDC_DAEMON" --socket-path="$sock" --can-in=vcan0 --can-out=vcan0 2>"$work/daemon.log" &
	daemon_pid=$!
	for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.2; done
	[ -S "$sock" ] || demo_fail "the daemon is not listening: $(cat "$work/daemon.log")"
	sed 's/^/      /' "$work/daemon.log"

	qver=$(chroot "$R" qemu-system-x86_64 --version | head -n 1)
	dstep "Boot the guest: $qver (Debian sid), a VirtIO CAN device on the daemon's socket"
	printf '    $ %s\n' "qemu-system-x86_64 -accel $accel -m 256 -nographic -kernel vmlinuz -initrd initrd.gz \\"
	printf '        %s\n' "-append 'console=ttyS0 quiet rdinit=/init' \\" \
		"-object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \\" \
		"-chardev socket,id=can0,path=$sock \\" \
		"-device vhost-user-test-device-pci,chardev=can0,$vdev_opts \\" \
		"-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on"
	dnote "(QEMU runs chrooted in the sid root, which has that folder mounted; its / is the guest's userland over 9p.)"
	qemu_args "$1" 1
	coproc Q {
		exec chroot "$R" qemu-system-x86_64 "${accel_args[@]}" "${qargs[@]}" 2>"$work/$1.qemu.log"
	}
	qpid=$Q_PID
	[ "$accel" = kvm ] || dnote "Under TCG (no KVM here) the boot takes a few minutes..."
	local t
	t=$(date +%s)
	if ! expect_line '^VDC-GUEST-(READY|FAIL)' 900 || [[ $G_LINE != VDC-GUEST-READY* ]]; then
		demo_fail "the guest did not boot: ${G_LINE:-}; $(tail -n 3 "$work/$1.qemu.log")"
	fi
	dnote "Booted in $(($(date +%s) - t)) s: Linux ${G_LINE#VDC-GUEST-READY }."

	dstep "In the guest: the virtio_can driver bound the device; can0 is there. Start it."
	dguest 'lsmod | grep -E "^(virtio_can|can_dev) "' || ok=0
	dguest 'ip -details link show can0' || demo_fail "no can0 in the guest"
	dguest 'ip link set can0 up && ip link show can0' || demo_fail "ip link set can0 up failed"

	dstep "candump on both sides: in the guest on can0, here on vcan0"
	dguest 'candump can0 >/tmp/candump.log 2>&1 & echo $! >/tmp/candump.pid'
	printf '    $ %s\n' "candump vcan0 >candump-host.log &"
	candump vcan0 >"$work/candump-host.log" 2>&1 &
	local hpid=$!
	sleep 1

	dstep "The guest sends ${#gframes[@]} frames (classic, extended, RTR, CAN FD)"
	for f in "${gframes[@]}"; do dguest "cansend can0 $f" || ok=0; done
	sleep 2
	dnote "Here, candump vcan0 printed:"
	sed 's/^/      /' "$work/candump-host.log"

	dstep "This side sends ${#hframes[@]} frames on vcan0"
	for f in "${hframes[@]}"; do dhost cansend vcan0 "$f" || ok=0; done
	sleep 2
	dnote "In the guest, candump can0 printed (first the guest's own frames: Linux" \
		"shows a frame sent on can0 to the other sockets on can0 too):"
	dguest 'cat /tmp/candump.log'
	local glines=$G_OUT

	# Every frame seen where it should be (ids only: the formats are candump's).
	for f in "${gframes[@]}"; do
		grep -qE " ${f%%#*} " "$work/candump-host.log" || { dnote "MISSING here: $f"; ok=0; }
	done
	for f in "${hframes[@]}"; do
		[[ $glines == *" ${f%%#*} "* ]] || { dnote "MISSING in the guest: $f"; ok=0; }
	done

	dstep "Stop: the guest's candump, QEMU, then the daemon (SIGTERM: it prints its counters)"
	dguest 'kill $(cat /tmp/candump.pid)'
	kill "$hpid" 2>/dev/null
	wait "$hpid" 2>/dev/null
	printf '    $ %s\n' "kill $qpid   # qemu-system-x86_64"
	kill "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
	qpid=
	local n0
	n0=$(wc -l <"$work/daemon.log")
	printf '    $ %s\n' "kill -TERM $daemon_pid   # vhost-device-can"
	kill -TERM "$daemon_pid"
	wait "$daemon_pid" 2>/dev/null
	daemon_pid=
	tail -n +$((n0 + 1)) "$work/daemon.log" | sed 's/^/      /'
	echo
	if [ "$ok" -eq 1 ]; then
		echo "demo: PASSED: ${#gframes[@]} frames guest -> host, ${#hframes[@]} frames host -> guest, through Linux $kver's virtio_can driver."
		return 0
	fi
	demo_fail "a frame did not cross (see above)"
}

if [ "$demo" -eq 1 ]; then
	IFS='|' read -r name vmlinuz mbase kver ko cfg <<<"$VDC_GUEST_KERNELS"
	run_demo "$name" "$vmlinuz" "$mbase" "$kver" "$ko" "$cfg"
	exit
fi

# VDC_GUEST_KERNELS: "NAME|VMLINUZ|MODULE_BASE|KVER|KO|CONFIG" lines.
while IFS='|' read -r name vmlinuz mbase kver ko cfg; do
	[ -n "$name" ] || continue
	run_guest "$name" "$vmlinuz" "$mbase" "$kver" "$ko" "$cfg"
	if [ -n "${VDC_GUEST_KEEP:-}" ]; then
		cp "$work"/*.log "$work"/*.details "$VDC_GUEST_KEEP/" 2>/dev/null
	fi
done <<<"$VDC_GUEST_KERNELS"

if [ -n "$daemon_pid" ]; then
	kill -USR1 "$daemon_pid" 2>/dev/null
	sleep 0.5
	kill "$daemon_pid" 2>/dev/null
	wait "$daemon_pid" 2>/dev/null
	daemon_pid=
	# The daemon's own account of the frames (printed at exit).
	grep -E '^(tx|rx|bus-off)|error|warn' "$work/daemon.log" | tail -n 12 | sed "s/^/  daemon: /"
fi
say "guest tier: $fails failure(s) in $(($(date +%s) - t0))s"
[ "$fails" -eq 0 ]
