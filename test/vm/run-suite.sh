#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# run-suite.sh BUILD_DIR - the real-CAN test suite, meant to run inside the
# scripts/vm-test.sh guest (vcan0 MTU 72, vcan1, vcan2 MTU 16 up).
#
# Runs every test/vm/test_*.sh script (given BUILD_DIR as argument) and
# every built test_vm_* program found in BUILD_DIR, one after the other.
# Each one's output goes to a log in a scratch directory (tmpfs in the VM)
# and is printed after it ends. Exit status per test: 0 passed, 77 skipped,
# anything else (a timeout too) failed. The suite exits 1 when a test
# failed, 77 when nothing passed and nothing failed, else 0.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: run-suite.sh BUILD_DIR" >&2
	exit 2
fi
build_dir=$(cd "$1" && pwd)
per_test_timeout=${VDC_VM_TEST_TIMEOUT:-300}

logs=$(mktemp -d "${TMPDIR:-/tmp}/vdc-suite.XXXXXX") || exit 1
trap 'rm -rf "$logs"' EXIT

tests=()
for s in "$here"/test_*.sh; do
	[ -f "$s" ] && tests+=("$s")
done
while IFS= read -r p; do
	tests+=("$p")
done < <(find "$build_dir" -maxdepth 4 -type f -name 'test_vm_*' -perm -u+x | sort)

passed=0
failed=0
skipped=0
failed_names=()
if ! find "$build_dir" -maxdepth 4 -type f -name 'test_vm_*' -perm -u+x | grep -q .; then
	echo "--- SKIPPED test_vm_*: no test programs built in $build_dir"
	skipped=$((skipped + 1))
fi
for t in "${tests[@]}"; do
	name=$(basename "$t")
	log=$logs/$name.log
	echo "=== $name"
	start=$(date +%s)
	case $t in
	*.sh) timeout -k 5 "$per_test_timeout" bash "$t" "$build_dir" >"$log" 2>&1 ;;
	*) timeout -k 5 "$per_test_timeout" "$t" >"$log" 2>&1 ;;
	esac
	rc=$?
	secs=$(($(date +%s) - start))
	cat "$log"
	case $rc in
	0)
		echo "--- PASSED $name (${secs}s)"
		passed=$((passed + 1))
		;;
	77)
		echo "--- SKIPPED $name"
		skipped=$((skipped + 1))
		;;
	124 | 137)
		echo "--- FAILED $name: timed out after ${per_test_timeout}s"
		failed=$((failed + 1))
		failed_names+=("$name")
		;;
	*)
		echo "--- FAILED $name (exit $rc)"
		failed=$((failed + 1))
		failed_names+=("$name")
		;;
	esac
done

echo
[ $failed -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "vm-suite: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] || exit 1
[ $passed -gt 0 ] || exit 77
exit 0
