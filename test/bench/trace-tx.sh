#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# trace-tx.sh BUILD_DIR - the daemon's system calls during the guest -> bus
# benchmark, inside the VM rig: strace -c on the daemon for 3 s while
# bench_tx keeps its Txq full (strace slows it; the counts per wake-up are
# what to read: sendmmsg per epoll_wait, call-fd writes per sendmmsg).
#   scripts/vm-test.sh --build-dir build -- bash test/bench/trace-tx.sh build
# Needs strace on the host (the VM uses the host's files): scripts/install-deps.sh profile
set -uo pipefail
build=$(cd "$1" && pwd)
command -v strace >/dev/null || { echo "trace-tx.sh: strace not installed" >&2; exit 77; }
out=$(mktemp -d /tmp/vdc-trace.XXXXXX)
BENCH_REPS=1 "$build/test/bench_tx" 6 >"$out/bench.log" 2>&1 &
bench=$!
# bench_tx runs its two raw baselines (6 s each) before the daemon.
pid=
for _ in $(seq 1 400); do
	pid=$(pgrep -f 'vhost-device-can --socket-path' | head -1)
	[ -n "$pid" ] && break
	sleep 0.05
done
[ -n "$pid" ] || { echo "trace-tx.sh: the daemon never started" >&2; wait "$bench"; exit 1; }
sleep 1
timeout 3 strace -c -f -p "$pid" -o "$out/strace.txt" >/dev/null 2>&1
cat "$out/strace.txt"
wait "$bench"
grep 'BENCH tx_classic8_evidx ' "$out/bench.log"
rm -rf "$out"
