#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# fuzz.sh [seconds [runs]]
# Builds the libFuzzer targets (build-fuzz, clang, ENABLE_FUZZING=ON) and
# runs each in turn for the given seconds (default 60), or until it made
# the given number of executions when that comes first, one job, starting
# from a scratch copy of its checked-in corpus (which is never grown).
# Prints executions and crashes per target; exits non-zero on a crash and
# names the crash file. Crash files go to build-fuzz/fuzz-out/<target>/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
runs=${2:--1}
# seconds: digits; runs: digits, or -1 for no limit.
if ! [[ $secs =~ ^[0-9]+$ ]] || ! [[ $runs =~ ^(-1|[0-9]+)$ ]]; then
	echo "usage: fuzz.sh [seconds [runs]]" >&2
	exit 2
fi
build="$root/build-fuzz"

"$root/scripts/install-deps.sh" build fuzz

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DENABLE_FUZZING=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# Every test/fuzz/fuzz_*.c is a target: the list is the folder.
targets=()
for src in "$root"/test/fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
cmake --build "$build" -j2 --target "${targets[@]}" >/dev/null

failed=0
summary=()
for src in "$root"/test/fuzz/fuzz_*.c; do
	t=$(basename "$src" .c)
	out="$build/fuzz-out/$t"
	rm -rf "$out"
	mkdir -p "$out/corpus"
	cp "$root/test/fuzz/corpus/$t/"* "$out/corpus/" 2>/dev/null || true
	echo "== $t: ${secs}s$([ "$runs" -ge 0 ] && echo " or $runs runs") =="
	rc=0
	(cd "$out" && "$build/test/fuzz/$t" -max_total_time="$secs" -runs="$runs" \
		-timeout=20 -print_final_stats=1 -artifact_prefix="$out/" corpus) \
		>"$out/log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log" | tail -1)
	[ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$out/log" | tail -1)
	crashes=$(find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
		-o -name 'timeout-*' -o -name 'oom-*' \) | sort)
	ncrash=$(printf '%s' "$crashes" | grep -c . || true)
	line="$t: executions ${execs:-?}, crashes $ncrash"
	summary+=("$line")
	echo "$line"
	if [ "$rc" -ne 0 ] || [ "$ncrash" -ne 0 ]; then
		failed=1
		grep -E 'ERROR|SUMMARY|Test unit written' "$out/log" | head -5 || true
		for c in $crashes; do echo "crash file: $c"; done
		echo "log: $out/log"
	fi
done
echo "== summary =="
printf '%s\n' "${summary[@]}"
exit $failed
