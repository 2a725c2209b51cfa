#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# profile-tx.sh BUILD_DIR [SECONDS] - where the daemon's CPU goes in the
# guest -> bus benchmark, inside the VM rig (scripts/vm-test.sh runs it):
# perf (Debian's linux-perf) samples the whole VM on cpu-clock (TCG has no
# hardware counters) with call graphs while bench_tx runs, then prints the
# daemon's top symbols, kernel and user space, self time first (its comm is
# cut to 15 characters: vhost-device-ca).
#   scripts/vm-test.sh --build-dir build -- bash test/bench/profile-tx.sh build 3
# Needs perf on the host (the VM uses the host's files): scripts/install-deps.sh profile
set -euo pipefail
build=$(cd "$1" && pwd)
secs=${2:-3}
command -v perf >/dev/null || { echo "profile-tx.sh: perf not installed (Debian: linux-perf)" >&2; exit 77; }
out=$(mktemp -d /tmp/vdc-prof.XXXXXX)
echo 1 >/proc/sys/kernel/perf_event_paranoid 2>/dev/null || true
echo 0 >/proc/sys/kernel/kptr_restrict 2>/dev/null || true
BENCH_REPS=1 perf record -q -a -g -e cpu-clock -F 2000 -o "$out/perf.data" -- \
	"$build/test/bench_tx" "$secs" >"$out/bench.log" 2>&1 || { cat "$out/bench.log"; exit 1; }
grep BENCH "$out/bench.log" || true
# head ends the pipe early: that is not a failure.
set +o pipefail
echo "=== every sample by command (the VM's two vCPUs, idle included)"
perf report -q -i "$out/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null |
	sed '/^$/d' | head -12
echo "=== the daemon's samples by symbol (self, % of all samples), top 40"
perf report -q -i "$out/perf.data" --comm vhost-device-ca --no-children --sort dso,sym \
	--stdio -g none 2>/dev/null | sed '/^$/d' | head -40
echo "=== the daemon's samples by dso"
perf report -q -i "$out/perf.data" --comm vhost-device-ca --no-children --sort dso \
	--stdio -g none 2>/dev/null | sed '/^$/d' | head -12
rm -rf "$out"
