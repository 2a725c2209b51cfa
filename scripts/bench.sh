#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# bench.sh - build (RelWithDebInfo) and run the benchmarks: the real-CAN ones
# in one run of the QEMU VM rig (scripts/vm-test.sh), the host ones here.
# Prints a table and writes the same figures as JSON to
# BUILD_DIR/bench-results.json. Ratios compare with a baseline measured in
# the same run on the same interface. See usage() below.
set -euo pipefail

prog=bench.sh
root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
	cat <<EOF
Usage: $prog [--build-dir DIR] [--secs N] [--no-deps]

  --build-dir DIR  where to build (default: $root/build-bench)
  --secs N         seconds per timed run (default 3)
  --no-deps        do not install missing packages (scripts/install-deps.sh)
  -h, --help       this text

BENCH_REPS (default 5, at most 15) sets the rounds of each comparison,
inside the VM too. Run as root on a fresh machine it installs what it needs
first. Exit status:
0; 1 when a benchmark failed; 77 when the VM cannot run here.
EOF
}

build_dir=$root/build-bench
secs=3
deps=1
while [ $# -gt 0 ]; do
	case $1 in
	--build-dir)
		build_dir=${2:?--build-dir needs a value}
		shift 2
		;;
	--secs)
		secs=${2:?--secs needs a value}
		shift 2
		;;
	--no-deps)
		deps=0
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
done

if [ $deps -eq 1 ] && [ "$(id -u)" -eq 0 ]; then
	"$root/scripts/install-deps.sh" build vm bench
fi

cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j2 >/dev/null
build_dir=$(cd "$build_dir" && pwd)
log=$build_dir/bench.log
json=$build_dir/bench-results.json

# Two vCPUs: the guest driver, the daemon and the bus peer run side by side,
# as a guest's vCPU and the daemon's thread do beside a real VM.
export VDC_VM_CPUS=${VDC_VM_CPUS:-2}
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), host $(nproc) cores, VM: QEMU TCG with $VDC_VM_CPUS vCPUs" |
	tee "$log"
set +e
"$root/scripts/vm-test.sh" --build-dir "$build_dir" -- \
	bash "$root/test/bench/run-vm.sh" "$build_dir" "$secs" "${BENCH_REPS:-}" 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
inproc=$build_dir/test/bench_inproc
# Host figures, with EVENT_IDX and indirect descriptors as the Linux driver
# negotiates them.
if [ -x "$inproc" ]; then
	echo "=== bench_inproc (host)" | tee -a "$log"
	"$inproc" --frames 20000 2>&1 | grep -v ': info: ' | tee -a "$log"
	[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
# How long the loop can be kept from other sources while a guest refills
# its TX ring flat out (issue 10's figure): longest turn, message and frame wait.
loopb=$build_dir/test/bench_loop
if [ -x "$loopb" ]; then
	echo "=== bench_loop (host)" | tee -a "$log"
	"$loopb" 3 2>&1 | grep -v ': info: ' | tee -a "$log"
	[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
# Instructions per frame of the backend + device (the loop thread only),
# from two runs so that connection set-up cancels out.
ir() {
	valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect=loop \
		"$inproc" "$1" --frames "$2" 2>&1 |
		sed -n 's/.*Collected : \([0-9][0-9]*\).*/\1/p'
}
if [ -x "$inproc" ] && command -v valgrind >/dev/null; then
	echo "=== callgrind (host)" | tee -a "$log"
	for dir in tx rx; do
		a=$(ir --$dir 1000)
		b=$(ir --$dir 3000)
		if [ -n "$a" ] && [ -n "$b" ]; then
			# Each run moves N classic and N FD frames.
			echo "BENCH callgrind_${dir}_instr_per_frame $(((b - a) / 4000)) instructions" |
				tee -a "$log"
		else
			echo "--- FAILED callgrind $dir" | tee -a "$log"
			status=1
		fi
	done
fi
set -e

# The table and the JSON, from the BENCH lines of the log.
awk -v json="$json" -v date="$(date -u '+%Y-%m-%dT%H:%MZ')" '
	BEGIN { n = 0 }
	{ sub(/\r$/, "") }
	$1 == "BENCH" && NF == 4 { key[n] = $2; val[n] = $3; unit[n] = $4; n++ }
	END {
		printf "\n%-36s %14s  %s\n", "figure", "value", "unit"
		for (i = 0; i < n; i++)
			printf "%-36s %14s  %s\n", key[i], val[i], unit[i]
		printf "{\n  \"date\": \"%s\",\n  \"figures\": {\n", date > json
		for (i = 0; i < n; i++)
			printf "    \"%s\": {\"value\": %s, \"unit\": \"%s\"}%s\n", key[i], val[i],
			       unit[i], (i + 1 < n ? "," : "") > json
		printf "  }\n}\n" > json
	}' "$log"
echo "results: $json"
exit "$status"
