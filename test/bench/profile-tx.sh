#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# profile-tx.sh BUILD_DIR [SECONDS] - where the daemon's CPU goes in the
# guest -> bus benchmark, inside the VM rig (scripts/vm-test.sh runs it):
# perf (Debian's linux-perf) samples the whole VM on cpu-clock (TCG has no
# hardware counters) with call graphs while bench_tx runs; then every
# sample of the daemon (its comm is cut to 15 characters: vhost-device-ca)
# is counted from `perf script`: by the system call it was taken in (or
# user space), by the function it was taken in (self time), top 30, and
# the user-space samples by function.
# `perf report --comm` is not used: on this perf it drops most of the
# daemon's kernel samples.
#   scripts/vm-test.sh --build-dir build -- bash test/bench/profile-tx.sh build 3
# Needs perf on the host (the VM uses the host's files): scripts/install-deps.sh profile
set -euo pipefail
build=$(cd "$1" && pwd)
secs=${2:-3}
command -v perf >/dev/null || { echo "profile-tx.sh: perf not installed (Debian: linux-perf)" >&2; exit 77; }
out=$(mktemp -d /tmp/vdc-prof.XXXXXX)
trap 'rm -rf "$out"' EXIT
echo 1 >/proc/sys/kernel/perf_event_paranoid 2>/dev/null || true
echo 0 >/proc/sys/kernel/kptr_restrict 2>/dev/null || true
BENCH_REPS=1 perf record -q -a -g -e cpu-clock -F 2000 -o "$out/perf.data" -- \
	"$build/test/bench_tx" "$secs" >"$out/bench.log" 2>&1 || { cat "$out/bench.log"; exit 1; }
grep '^BENCH tx_classic8_evidx ' "$out/bench.log" || true
perf script -i "$out/perf.data" -F comm,ip,sym 2>/dev/null >"$out/script.txt"
# A sample is a "comm" line, then one "ip symbol" line per frame of its
# stack (innermost first), then a blank line.
awk -v want=vhost-device-ca -v out="$out" '
	function flush() {
		if (n > 0 && comm == want) {
			total++
			self[st[0]]++
			sc = "(user space)"
			for (i = 0; i < n; i++)
				if (st[i] ~ /^__x64_sys_/) { sc = st[i]; break }
			sys[sc]++
			if (sc == "(user space)")
				user[st[0]]++
		}
		n = 0
	}
	/^[^ \t]/ { flush(); comm = $1; next }
	/^[ \t]*$/ { flush(); next }
	{ st[n++] = $2 }
	END {
		flush()
		if (total == 0) { print "no samples of the daemon"; exit 1 }
		printf "%d samples of the daemon\n", total
		for (k in sys) printf "%6.2f%% %s\n", 100 * sys[k] / total, k > (out "/sys.txt")
		for (k in self) printf "%6.2f%% %s\n", 100 * self[k] / total, k > (out "/self.txt")
		for (k in user) printf "%6.2f%% %s\n", 100 * user[k] / total, k > (out "/user.txt")
	}' "$out/script.txt"
echo "=== the daemon's samples by system call (% of its samples)"
sort -rn "$out/sys.txt" | head -10
echo "=== the daemon's samples by function, self (% of its samples), top 30"
sort -rn "$out/self.txt" | head -30
echo "=== of those in user space, by function (% of all its samples), top 15"
sort -rn "$out/user.txt" | head -15
