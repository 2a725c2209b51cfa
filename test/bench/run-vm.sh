#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# run-vm.sh BUILD_DIR [SECONDS [REPS]] - the real-CAN benchmarks, meant to run inside
# the scripts/vm-test.sh guest (called by scripts/bench.sh). Runs every
# built bench_* program but bench_inproc (a host one) one after the other;
# their "BENCH key value unit" lines are what bench.sh collects. Exits 1 when
# one of them failed.
set -uo pipefail

if [ $# -lt 1 ] || [ ! -d "$1" ]; then
	echo "usage: run-vm.sh BUILD_DIR [SECONDS [REPS]]" >&2
	exit 2
fi
build_dir=$(cd "$1" && pwd)
secs=${2:-3}
# The VM does not inherit the host's environment: the rounds come as an argument.
[ -z "${3:-}" ] || export BENCH_REPS=$3
failed=0
while IFS= read -r p; do
	name=$(basename "$p")
	[ "$name" = bench_inproc ] && continue
	echo "=== $name"
	# bench_idle's argument is its idle time, which stays 10 s.
	arg=$secs
	[ "$name" = bench_idle ] && arg=10
	timeout -k 5 600 "$p" "$arg"
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "--- FAILED $name (exit $rc)"
		failed=1
	fi
done < <(find "$build_dir" -maxdepth 3 -type f -name 'bench_*' -perm -u+x | sort)
exit $failed
