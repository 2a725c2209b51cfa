#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# The test command. On a fresh Debian 12 machine as root: installs what is
# missing, builds, runs every tier (unit, integration, vm, systemd, guest,
# bench smoke; --quick leaves out the guest tier, for edit-test loops),
# then builds again with ASan+UBSan and runs the unit and integration
# tiers once more, and last builds the libFuzzer targets with clang and
# replays their corpora (label fuzz), and compiles every other documented
# build configuration (scripts/build-matrix.sh). Exits non-zero on any
# failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
skip_tiers=()
if [ "${1:-}" = --quick ]; then
	# The guest tier boots two nested Linux guests: half an hour.
	skip_tiers=(-LE guest)
fi

"$root/scripts/install-deps.sh" build vm fuzz

echo "== build (plain) =="
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" -j"$jobs"
echo "== tests: unit, integration, vm, systemd, guest =="
ctest --test-dir "$root/build" --output-on-failure -j"$jobs" "${skip_tiers[@]}"

echo "== build (ASan + UBSan) =="
cmake -S "$root" -B "$root/build-san" -DCMAKE_BUILD_TYPE=Debug -DENABLE_SANITIZERS=ON >/dev/null
cmake --build "$root/build-san" -j"$jobs"
echo "== tests under sanitizers: unit, integration =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir "$root/build-san" --output-on-failure -j"$jobs" -L 'unit|integration'
echo "== build (libFuzzer targets, clang) =="
cmake -S "$root" -B "$root/build-fuzz-replay" -DCMAKE_C_COMPILER=clang -DENABLE_FUZZING=ON \
	-DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build-fuzz-replay" -j"$jobs"
echo "== fuzz targets over their corpora =="
ctest --test-dir "$root/build-fuzz-replay" --output-on-failure -j"$jobs" -L fuzz
echo "== every other documented build configuration =="
"$root/scripts/build-matrix.sh" "$root/build-matrix"
echo "== all tests passed =="
