#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# run.sh BUILD_DIR - the systemd tier: packages BUILD_DIR with cpack, gets
# the cached Debian 12 root image (scripts/vm/systemd-image.sh, built once),
# boots it in the VM rig with systemd as PID 1 (vm-test.sh --root-image) and
# runs test/systemd/guest.sh there against the .deb and the frontend tool.
# A tier that cannot run FAILS; VDC_SYSTEMD_TIER=skip skips it (exit 77).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)
t0=$(date +%s)
fail() {
	echo "systemd tier: FAILED: $*" >&2
	exit 1
}
if [ "${VDC_SYSTEMD_TIER:-}" = skip ]; then
	echo "systemd tier: SKIPPED (VDC_SYSTEMD_TIER=skip)"
	exit 77
fi
[ -x "$build/vhost-device-can-frontend" ] || fail "no $build/vhost-device-can-frontend (build first)"

# The guest reads the host over 9p: the package goes into the build dir.
pkg=$build/systemd-tier
rm -rf "$pkg"
mkdir -p "$pkg"
(cd "$build" && cpack -G DEB -B "$pkg" >"$pkg/cpack.log" 2>&1) || fail "cpack: $(tail -n 20 "$pkg/cpack.log")"
deb=$(ls "$pkg"/*.deb)
img=$("$src/scripts/vm/systemd-image.sh") || fail "no root image (scripts/vm/systemd-image.sh)"
t1=$(date +%s)
echo "systemd tier: package and image ready in $((t1 - t0))s: $(basename "$deb"), $img"

rc=0
VDC_VM_TIMEOUT=${VDC_VM_TIMEOUT:-600} "$src/scripts/vm-test.sh" --build-dir "$build" \
	--root-image "$img" -- \
	/host"$src"/test/systemd/guest.sh /host"$deb" /host"$build"/vhost-device-can-frontend || rc=$?
echo "systemd tier: the VM run took $(($(date +%s) - t1))s"
case $rc in
0) ;;
77) fail "the VM rig cannot run here (set VDC_SYSTEMD_TIER=skip to skip)" ;;
*) fail "guest status $rc" ;;
esac
