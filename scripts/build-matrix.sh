#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# build-matrix.sh [BUILD_ROOT] - build every configuration the README
# documents, with its warnings as errors, so that none of them rots: the
# default (RelWithDebInfo), Release, Debug, RelWithDebInfo with
# -DENABLE_SANITIZERS=ON, clang, and -DBUILD_TESTING=OFF. scripts/test.sh
# builds and tests the plain and the Debug sanitizer builds itself; this
# only compiles the others. Build trees go under BUILD_ROOT (default
# build-matrix in the source tree). Exits non-zero naming the first
# configuration that does not build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-matrix}
jobs=$(nproc)

configs=(
	"release:-DCMAKE_BUILD_TYPE=Release"
	"debug:-DCMAKE_BUILD_TYPE=Debug"
	"relwithdebinfo-san:-DCMAKE_BUILD_TYPE=RelWithDebInfo -DENABLE_SANITIZERS=ON"
	"clang:-DCMAKE_C_COMPILER=clang"
	"no-tests:-DBUILD_TESTING=OFF"
)
for c in "${configs[@]}"; do
	name=${c%%:*}
	# shellcheck disable=SC2206 # the flags are words
	flags=(${c#*:})
	echo "== build matrix: $name (${flags[*]})"
	if ! cmake -S "$root" -B "$out/$name" "${flags[@]}" >/dev/null ||
		! cmake --build "$out/$name" -j"$jobs" >"$out/$name.log" 2>&1; then
		tail -n 40 "$out/$name.log" >&2 || true
		echo "build-matrix.sh: configuration '$name' (${flags[*]}) does not build" >&2
		exit 1
	fi
done
echo "== build matrix: all ${#configs[@]} configurations build"
