#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# guest.sh DEB FRONTEND - the systemd tier, inside a Debian 12 guest with
# systemd as PID 1 (test/systemd/run.sh boots it). Installs DEB with dpkg -i
# as a user would, configures device can0 on vcan0 from the packaged
# example, and checks the units end to end. Exits 0 when all is well, 1 on
# the first failure (with the unit's status and journal).
set -uo pipefail
deb=$1
frontend=$2
sock=/run/vhost-device-can/can0.sock
svc=vhost-device-can@can0.service
skt=vhost-device-can@can0.socket
conf=/etc/vhost-device-can/can0.conf
cap=/var/log/vhost-device-can/can0.log
tmp=$(mktemp -d)
t0=$(date +%s)

step() { echo "systemd-tier: [$(($(date +%s) - t0))s] $*"; }
fail() {
	echo "systemd-tier: FAILED: $*"
	systemctl status --no-pager "$skt" "$svc" 2>&1 | tail -n 40
	journalctl --no-pager -n 40 -u "$svc" -u "$skt" 2>&1
	exit 1
}
prop() { systemctl show -P "$2" "$1"; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
	local n=$(($1 * 10))
	shift
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ $n -gt 0 ] || return 1
		sleep 0.1
	done
}
is_state() { [ "$(prop "$1" ActiveState)" = "$2" ]; }
# frames SEND RECV: the frontend sends SEND to the daemon and must receive
# RECV, which cansend puts on vcan0 until the frontend has it; candump
# must see SEND.
frames() {
	candump -L vcan0 >"$tmp/candump" 2>&1 &
	local dump=$! fe i
	local rc attempt
	# The frontend waits 5 s for each reply, the first one included: on a
	# loaded machine under TCG the activated daemon can take longer to
	# start. Another try then, once the service is up (the tool's limit,
	# not the units'; a VMM waits).
	for attempt in 1 2 3; do
		"$frontend" -s "$sock" -w 20 -n 1 -t 30 "$1" >"$tmp/fe.out" 2>"$tmp/fe.err" &
		fe=$!
		for _ in $(seq 300); do
			kill -0 $fe 2>/dev/null || break
			is_state $svc active && cansend vcan0 "$2"
			sleep 0.2
		done
		rc=0
		wait $fe || rc=$?
		[ $rc -ne 0 ] && grep -q 'cannot set up a session' "$tmp/fe.err" || break
		step "the frontend's session set-up timed out (attempt $attempt): $(cat "$tmp/fe.err")"
		wait_for 30 is_state $svc active || break
	done
	[ $rc -eq 0 ] || { kill $dump; fail "frontend exited $rc: $(cat "$tmp/fe.err")"; }
	kill $dump
	wait $dump 2>/dev/null
	local id=${2%%#*} data=${2#*#}
	grep -q " $id .*$(echo "$data" | sed 's/../& /g; s/ $//')" "$tmp/fe.out" ||
		fail "the frontend did not receive $2: $(cat "$tmp/fe.out")"
	grep -q "vcan0 ${1}\$" "$tmp/candump" || fail "vcan0 did not carry $1: $(cat "$tmp/candump")"
}

step "the guest: $(systemctl --version | head -n 1), PID 1 is $(cat /proc/1/comm)"
[ "$(cat /proc/1/comm)" = systemd ] || fail "PID 1 is not systemd"
# The reload check proves nothing on a system that has /bin/kill.
[ ! -e /bin/kill ] && [ ! -e /usr/bin/kill ] || fail "this image has a kill binary (procps)"
ip link add dev vcan0 type vcan && ip link set dev vcan0 mtu 72 up || fail "cannot make vcan0"

step "dpkg -i $(basename "$deb")"
dpkg -i "$deb" >"$tmp/dpkg" 2>&1 || fail "dpkg -i: $(cat "$tmp/dpkg")"
systemctl daemon-reload
mkdir -p /etc/vhost-device-can
sed 's/^CAN_IN=.*/CAN_IN=vcan0/; s/^CAN_OUT=.*/CAN_OUT=vcan0/; s|^OPTIONS=.*|OPTIONS=--capture='"$cap"'|' \
	/usr/share/doc/vhost-device-can/examples/can0.conf >$conf
grep -q "$cap" /usr/share/doc/vhost-device-can/examples/can0.conf ||
	fail "the example config does not name the capture place $cap"
out=$(systemd-analyze verify --man=no "$skt" "$svc" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify complained: $out"
exposure=$(systemd-analyze security --no-pager "$svc" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
step "systemd-analyze security: exposure $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }' || fail "exposure $exposure above 2.0"

step "enable --now the socket: path, mode, no daemon yet"
systemctl enable --now "$skt" || fail "enable --now $skt"
[ -S $sock ] || fail "no socket $sock"
[ "$(stat -c '%a %U' $sock)" = "660 root" ] || fail "socket mode/owner $(stat -c '%a %U' $sock)"
[ "$(stat -c '%a' /run/vhost-device-can)" = 755 ] || fail "directory mode"
is_state $skt active || fail "the socket unit is not active"
is_state $svc inactive || fail "the service runs before any connection"

step "activation by the frontend, READY=1, frames both ways, capture"
frames 123#DEADBEEF 321#CAFE
# Type=notify: active only once READY=1 came.
is_state $svc active || fail "the service is not active after the session"
[ "$(prop $svc SubState)" = running ] || fail "substate $(prop $svc SubState)"
pid=$(prop $svc MainPID)
[ "$pid" -gt 0 ] || fail "no main PID"

step "the process: user, capabilities, no_new_privs, seccomp (pid $pid)"
st=/proc/$pid/status
uid=$(awk '$1 == "Uid:" { print $2 }' $st)
[ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] || fail "not a dynamic user: uid $uid"
grep -q '^NoNewPrivs:[[:space:]]*1$' $st || fail "no_new_privs not set"
grep -q '^Seccomp:[[:space:]]*2$' $st || fail "no seccomp filter"
[ "$(awk '$1 == "CapBnd:" { print $2 }' $st)" = 0000000000001000 ] ||
	fail "bounding set is not CAP_NET_ADMIN alone: $(grep Cap $st)"
# The daemon drops the granted CAP_NET_ADMIN itself without --link-up,
# where it confines itself (--sandbox); before that the unit's grant stays.
want=0000000000001000
/usr/bin/vhost-device-can --help | grep -q -- --sandbox && want=0000000000000000
[ "$(awk '$1 == "CapEff:" { print $2 }' $st)" = $want ] || fail "CapEff not $want: $(grep Cap $st)"

step "reload: the counters in the journal"
cursor=$(journalctl -n 0 --show-cursor | sed -n 's/^-- cursor: //p')
systemctl reload $svc || fail "systemctl reload"
wait_for 10 sh -c "journalctl --no-pager -u $svc --after-cursor='$cursor' | grep -q 'rx: dropped by the kernel'" ||
	fail "no counters in the journal after reload: $(journalctl --no-pager -u $svc --after-cursor="$cursor")"

step "capture in $cap, SIGHUP rotation"
wait_for 10 grep -q '123#DEADBEEF' $cap || fail "$cap lacks the guest's frame: $(cat $cap 2>&1)"
grep -q '321#CAFE' $cap || fail "$cap lacks the bus's frame"
mv $cap $cap.1
systemctl kill -s HUP --kill-whom=main $svc || fail "SIGHUP"
"$frontend" -s $sock -w 10 -t 0 124#01 >/dev/null 2>&1 || fail "frontend after rotation"
wait_for 10 grep -q '124#01' $cap || fail "no new $cap after SIGHUP"
grep -q '124#01' $cap.1 && fail "the rotated file got the new frame"

step "stop, then a second activation"
systemctl stop $svc || fail "stop"
is_state $svc inactive || fail "service not inactive after stop"
is_state $skt active || fail "socket not listening after the service stopped"
frames 125#0102 322#BEEF
pid2=$(prop $svc MainPID)
[ "$pid2" -gt 0 ] && [ "$pid2" != "$pid" ] || fail "no new daemon ($pid2)"

step "a broken config: the reason in systemctl status, the socket stays"
systemctl stop $svc
sed -i 's/^CAN_IN=.*/CAN_IN=nosuch0/' $conf
for _ in 1 2 3 4 5 6 7; do
	timeout 20 "$frontend" -s $sock -w 3 -t 0 126#01 >/dev/null 2>&1 && fail "a session with a broken config"
	wait_for 10 sh -c "! systemctl -q is-active $svc" || fail "the broken service stays up"
done
is_state $svc failed || fail "service state $(prop $svc ActiveState), not failed"
[ "$(prop $svc NRestarts)" = 0 ] || fail "a start-up failure was retried ($(prop $svc NRestarts))"
status=$(systemctl status --no-pager -n 20 $svc 2>&1)
grep -q 'status=1/FAILURE' <<<"$status" || fail "status lacks the exit status: $status"
grep -q 'nosuch0' <<<"$status" || fail "status lacks the reason: $status"
is_state $skt active || fail "the socket is $(prop $skt ActiveState)/$(prop $skt Result) after the failures"
sed -i 's/^CAN_IN=.*/CAN_IN=vcan0/' $conf
frames 127#AA 323#BB

step "--link-up: the daemon keeps CAP_NET_ADMIN and brings vcan0 up"
systemctl stop $svc
sed -i 's|^OPTIONS=.*|& --link-up|' $conf
ip link set dev vcan0 down
is_up() { ip -o link show dev vcan0 | grep -q '[<,]UP[,>]'; }
# Up from the guest's START to its STOP: looked at during a session (a
# second try when the frontend's set-up timed out, see frames).
up=0
for attempt in 1 2 3; do
	"$frontend" -s $sock -w 20 -t 8 128#01 >/dev/null 2>"$tmp/fe.err" &
	fe=$!
	if wait_for 15 is_up; then
		up=1
		pid=$(prop $svc MainPID)
		capeff=$(awk '$1 == "CapEff:" { print $2 }' /proc/$pid/status)
	fi
	wait $fe
	[ $up -eq 0 ] || break
done
[ $up -eq 1 ] || fail "vcan0 did not come up: $(ip -o link show dev vcan0); $(cat "$tmp/fe.err")"
[ "$capeff" = 0000000000001000 ] || fail "--link-up without CAP_NET_ADMIN: CapEff $capeff"

step "disable --now leaves nothing behind"
systemctl disable --now $skt $svc >/dev/null 2>&1 || fail "disable --now"
is_state $svc inactive || fail "service still $(prop $svc ActiveState)"
[ ! -e $sock ] || fail "$sock left behind"
[ -z "$(find /etc/systemd/system -name 'vhost-device-can*')" ] ||
	fail "links left: $(find /etc/systemd/system -name 'vhost-device-can*')"
pgrep_out=$(grep -l '^Name:.*vhost-device-c' /proc/[0-9]*/status 2>/dev/null)
[ -z "$pgrep_out" ] || fail "a daemon is left: $pgrep_out"
step "all good"
rm -rf "$tmp"
