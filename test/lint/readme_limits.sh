#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# The limits the README's security section quotes are the ones the code
# enforces: each phrase is built from the constant's value in the header
# and must appear in README.md (line breaks taken as spaces).
#
# Usage: readme_limits.sh [source root]   (default: two levels up)
set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
readme=$(tr '\n' ' ' <"$root/README.md" | tr -s ' ')

# The value of #define name in file.
val() {
	sed -n "s/^#define $2 \([0-9]\+\).*/\1/p" "$root/$1"
}

status=0
want() {
	if [[ "$readme" != *"$1"* ]]; then
		echo "README.md does not say \"$1\" ($2)"
		status=1
	fi
}

want "queue sizes are powers of two up to $(val src/device/device.h DEVICE_MAX_QUEUE_SIZE)." DEVICE_MAX_QUEUE_SIZE
want "a request has at most $(val src/device/device.h DEVICE_MAX_CHAIN) descriptors" DEVICE_MAX_CHAIN
want "($(val src/device/device.h DEVICE_TX_BUDGET) on the Txq, $(val src/device/device.h DEVICE_RX_BUDGET) on the Rxq, $(val src/device/device.h DEVICE_CTRL_BUDGET) and at most $(val src/device/device.h DEVICE_CTRL_REQS) requests on the Controlq" "DEVICE_*_BUDGET, DEVICE_CTRL_REQS"
[ "$(val include/vhost-user/vlog.h VLOG_LIMIT_WINDOW_MS)" = 1000 ] ||
	{ echo "VLOG_LIMIT_WINDOW_MS is not a second: fix the README's rate"; status=1; }
want "rate-limited ($(val include/vhost-user/vlog.h VLOG_LIMIT_BURST) a second" VLOG_LIMIT_BURST
[ $status -eq 0 ] && echo "README.md quotes the limits the code enforces"
exit $status
