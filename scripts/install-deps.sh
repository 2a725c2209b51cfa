#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# install-deps.sh [build] [vm] [guest] [fuzz] [coverage] [bench] [profile]
# Installs, with apt-get, the Debian packages the named jobs need and that
# are missing. Runs "apt-get update" at most once. Needs root for installs.
set -euo pipefail

declare -A groups=(
	[build]="cmake make gcc pkg-config libsocketcan-dev libseccomp-dev libcap-ng-dev libcmocka-dev python3 systemd groff-base man-db"
	[vm]="qemu-system-x86 busybox-static kmod cpio can-utils iproute2 tshark debootstrap e2fsprogs"
	[guest]="debootstrap debian-archive-keyring gcc make xz-utils zstd"
	[fuzz]="clang libclang-rt-14-dev"
	[coverage]="lcov"
	[bench]="valgrind"
	[profile]="linux-perf strace"
)

want=()
[ $# -gt 0 ] || set -- build
for g in "$@"; do
	if [ -z "${groups[$g]+x}" ]; then
		echo "install-deps.sh: unknown group '$g' (known: ${!groups[*]})" >&2
		exit 2
	fi
	for p in ${groups[$g]}; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
			want+=("$p")
		fi
	done
done

[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: missing packages: ${want[*]}; run as root or install them" >&2
	exit 1
fi
echo "install-deps.sh: installing ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
