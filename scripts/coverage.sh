#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# coverage.sh [--no-vm]: line and branch coverage of proto/ and src/ from
# the unit and integration tiers and the real-CAN tier. On a fresh Debian 12
# machine as root: installs what is missing (build tools, lcov, the VM rig's
# packages), builds with gcc --coverage in build-cov/, runs
# ctest -L 'unit|integration', then the real-CAN suite in the VM rig
# (scripts/vm-test.sh), prints a table per file (lines %, branches %) with
# totals for proto/ and src/, and writes an HTML report. test/ and system
# headers are left out. --no-vm counts the host tiers only. Exits non-zero if
# the build or a test fails (the report is still printed when only tests
# failed); a VM tier that cannot run here is reported and left out.
#
# The VM's counters: the guest sees the host's / read-only, so build-cov/ is
# shared with it writable at its own path (vm-test.sh --share-rw). Each .gcda
# then sits where gcov looks for it, and the guest's processes add their
# counts to the host tiers' in place (gcov merges on exit), so one capture
# of build-cov/ holds all tiers: no GCOV_PREFIX, no copying, no second
# tracefile to line up.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-cov"
jobs=$(nproc)
vm=1
case ${1:-} in
--no-vm) vm=0 ;;
"") ;;
*)
	echo "usage: coverage.sh [--no-vm]" >&2
	exit 2
	;;
esac

"$root/scripts/install-deps.sh" build coverage

# lcov 2 renamed the switch that turns branch counts on.
lcov_major=$(lcov --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
if [ "${lcov_major:-1}" -ge 2 ]; then
	branch_rc=(--rc branch_coverage=1)
else
	branch_rc=(--rc lcov_branch_coverage=1)
fi
# Debian 12's geninfo prints harmless "Subroutine ... redefined" perl
# warnings on every capture; drop those lines, keep everything else.
lcov_q() { lcov --quiet "${branch_rc[@]}" "$@" 2>&1 | sed '/^Subroutine .* redefined at /d'; }

echo "== build (--coverage) in $build =="
# -O0 so lines and branches map one to one onto the source.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DENABLE_COVERAGE=ON >/dev/null
cmake --build "$build" -j"$jobs"

# Counters from an earlier run would be added to this one's.
lcov_q --zerocounters --directory "$build"
# A zero baseline, so that files no test reaches still show up at 0%.
lcov_q --capture --initial --directory "$build" --output-file "$build/cov-base.info"

echo "== tests: unit, integration =="
test_rc=0
ctest --test-dir "$build" --output-on-failure -j"$jobs" -L 'unit|integration' || test_rc=$?

tiers="unit + integration"
if [ "$vm" -eq 1 ]; then
	echo "== tests: real CAN (VM) =="
	vm_rc=0
	"$root/scripts/vm-test.sh" --build-dir "$build" --share-rw "$build" || vm_rc=$?
	case $vm_rc in
	0) tiers="$tiers + vm" ;;
	77) echo "coverage.sh: the VM tier cannot run here: not counted" >&2 ;;
	*)
		test_rc=$vm_rc
		tiers="$tiers + vm (failed)"
		;;
	esac
fi

lcov_q --capture --directory "$build" --output-file "$build/cov-run.info"
lcov_q --add-tracefile "$build/cov-base.info" --add-tracefile "$build/cov-run.info" \
	--output-file "$build/cov-all.info"
# Only the production code: drops test/, the frontend client and /usr/include.
lcov_q --extract "$build/cov-all.info" "$root/proto/*" "$root/src/*" \
	--output-file "$build/coverage.info"

echo "== coverage of proto/ and src/ ($tiers) =="
awk -v root="$root/" '
	function pct(hit, all) { return all ? sprintf("%6.1f%%", 100 * hit / all) : "     -" }
	function row(name, lh, lf, bh, bf) {
		printf "%-26s %s %11s   %s %11s\n", name, pct(lh, lf), lh "/" lf, pct(bh, bf), bh "/" bf
	}
	/^SF:/ { file = substr($0, 4); sub("^" root, "", file); lf = lh = bf = bh = 0 }
	/^LF:/ { lf = substr($0, 4) + 0 }
	/^LH:/ { lh = substr($0, 4) + 0 }
	/^BRF:/ { bf = substr($0, 5) + 0 }
	/^BRH:/ { bh = substr($0, 5) + 0 }
	/^end_of_record/ {
		n++; name[n] = file; LF[n] = lf; LH[n] = lh; BF[n] = bf; BH[n] = bh
		dir = file; sub("/.*", "", dir)
		dlf[dir] += lf; dlh[dir] += lh; dbf[dir] += bf; dbh[dir] += bh
		tlf += lf; tlh += lh; tbf += bf; tbh += bh
	}
	END {
		printf "%-26s %7s %11s   %7s %11s\n", "file", "lines", "", "branch", ""
		for (i = 1; i <= n; i++) row(name[i], LH[i], LF[i], BH[i], BF[i])
		print "--"
		row("total proto/", dlh["proto"], dlf["proto"], dbh["proto"], dbf["proto"])
		row("total src/", dlh["src"], dlf["src"], dbh["src"], dbf["src"])
		row("total", tlh, tlf, tbh, tbf)
	}' "$build/coverage.info"

genhtml --quiet --branch-coverage "${branch_rc[@]}" --prefix "$root" \
	--title "vhost-device-can: $tiers" \
	--output-directory "$build/html" "$build/coverage.info"
echo "HTML report: $build/html/index.html"
echo "lcov data:   $build/coverage.info"

if [ "$test_rc" -ne 0 ]; then
	echo "coverage.sh: tests failed (exit $test_rc)" >&2
	exit 1
fi
