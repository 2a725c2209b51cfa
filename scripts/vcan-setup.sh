#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# vcan-setup.sh - create and bring up virtual CAN (vcan) interfaces, or
# remove them again. See usage() below.
set -uo pipefail

prog=vcan-setup.sh

usage() {
	cat <<EOF
Usage: $prog [--fd] [NAME...]
       $prog --down [NAME...]

Creates the virtual CAN interfaces NAME (default: vcan0) and brings them
up, for a manual test setup of vhost-device-can. Loads the vcan module
when needed. An interface that already exists is reused (its MTU is
adjusted); running it twice is harmless. Needs root (CAP_NET_ADMIN).

  --fd                CAN FD: MTU 72 (without it: classic CAN, MTU 16)
  --down, --teardown  delete the interfaces instead
  -h, --help          this text

Examples:
  $prog --fd vcan0       # one CAN FD interface
  $prog --down vcan0     # remove it

When the running kernel has no vcan support (CONFIG_CAN_VCAN), nothing can
be created here: scripts/vm-test.sh runs commands in a small virtual
machine that has it.
EOF
}

err() {
	echo "$prog: $*" >&2
}

fd=0
down=0
names=()
while [ $# -gt 0 ]; do
	case $1 in
	--fd) fd=1 ;;
	--down | --teardown) down=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		shift
		names+=("$@")
		break
		;;
	-*)
		err "unknown option '$1'"
		usage >&2
		exit 2
		;;
	*) names+=("$1") ;;
	esac
	shift
done
[ ${#names[@]} -gt 0 ] || names=(vcan0)
if [ $fd -eq 1 ] && [ $down -eq 1 ]; then
	err "--fd and --down do not go together"
	exit 2
fi
for n in "${names[@]}"; do
	# Linux limits names to 15 bytes; no slashes, blanks or dots-only names.
	if [ ${#n} -gt 15 ] || [[ ! $n =~ ^[A-Za-z0-9_.:-]+$ ]] || [ "$n" = . ] || [ "$n" = .. ]; then
		err "'$n' is not a valid interface name"
		exit 2
	fi
done
command -v ip >/dev/null || {
	err "'ip' (iproute2) is not installed"
	exit 1
}

# The type of an existing interface: "vcan", something else, or "" (absent).
link_kind() {
	[ -e "/sys/class/net/$1" ] || return 0
	ip -details link show dev "$1" 2>/dev/null |
		awk 'NR > 1 && $1 == "vcan" { k = "vcan" } END { print (k ? k : "other") }'
}

if [ $down -eq 1 ]; then
	rc=0
	for n in "${names[@]}"; do
		case $(link_kind "$n") in
		"") echo "$prog: $n: not present" ;;
		vcan)
			if ip link del dev "$n"; then
				echo "$prog: $n: removed"
			else
				err "$n: could not remove it"
				rc=1
			fi
			;;
		*)
			err "$n: not a vcan interface, left alone"
			rc=1
			;;
		esac
	done
	exit $rc
fi

no_vcan() {
	err "this kernel has no vcan support (Linux $(uname -r) without CONFIG_CAN_VCAN," \
		"module vcan): use scripts/vm-test.sh to run the tests in a VM that has it"
	exit 3
}

# vcan is usually a module; a kernel with it built in has /sys/module/vcan too.
if [ ! -d /sys/module/vcan ]; then
	modprobe vcan 2>/dev/null || true
fi

mtu=16
[ $fd -eq 1 ] && mtu=72
rc=0
for n in "${names[@]}"; do
	case $(link_kind "$n") in
	"")
		if ! out=$(ip link add dev "$n" type vcan 2>&1); then
			case $out in
			*"Unknown device type"* | *"not supported"*) no_vcan ;;
			esac
			err "$n: could not create it: $out"
			rc=1
			continue
		fi
		;;
	vcan) ;;
	*)
		err "$n exists and is not a vcan interface, left alone"
		rc=1
		continue
		;;
	esac
	# vcan refuses an MTU change while up.
	cur=$(cat "/sys/class/net/$n/mtu")
	if [ "$cur" != "$mtu" ]; then
		ip link set dev "$n" down && ip link set dev "$n" mtu "$mtu" || {
			err "$n: could not set MTU $mtu"
			rc=1
			continue
		}
	fi
	if ! ip link set dev "$n" up; then
		err "$n: could not bring it up"
		rc=1
		continue
	fi
	if [ $mtu -eq 72 ]; then
		echo "$prog: $n: up (CAN FD, MTU 72)"
	else
		echo "$prog: $n: up (classic CAN, MTU 16)"
	fi
done
exit $rc
