#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Every log line of the daemon (proto/ and src/) that a peer (frontend,
# guest, bus) can cause must go through a rate limit (vlog_limited, see
# include/vhost-user/vlog.h). This lists every call of vlog_err/vlog_warn/vlog_info/
# vlog() that does not, by file and format string, and compares the list
# with log_unlimited.txt: the lines that may stay unlimited because they run
# once (start-up, the end, a fatal error) or only on the operator's word,
# each with its reason. A new unlimited line fails until it is limited or
# listed; a listed line that is gone fails too, so the list stays true.
# Debug lines (vlog_debug, off by default) are the operator's choice to see
# every frame and are not checked. The frontend tool (src/frontend/) is
# a separate program, not the daemon.
#
# Usage: log_limits.sh [source root]   (default: two levels up)
set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
allow="$(cd "$(dirname "$0")" && pwd)/log_unlimited.txt"

found=$(mktemp)
listed=$(mktemp)
trap 'rm -f "$found" "$listed"' EXIT

for f in "$root"/proto/*.c "$root"/src/*/*.c; do
	rel=${f#"$root"/}
	# The frontend is a tool a user runs against one backend, not the
	# daemon: its lines go to that user's terminal.
	case "$rel" in
	proto/vlog.c | src/frontend/*) continue ;;
	esac
	# A call may span lines: take it from its name to the first string
	# literal (the format) and print "file|format".
	awk -v rel="$rel" '
		function flush(s) {
			if (match(s, /"([^"\\]|\\.)*"/)) {
				print rel "|" substr(s, RSTART + 1, RLENGTH - 2)
				return 1
			}
			return 0
		}
		pending != "" {
			pending = pending " " $0
			if (flush(pending) || ++lines > 4) pending = ""
			next
		}
		/(^|[^a-z_])vlog(_err|_warn|_info)?\(/ {
			s = substr($0, match($0, /vlog(_err|_warn|_info)?\(/))
			lines = 0
			if (!flush(s)) pending = s
		}
	' "$f"
done | sort >"$found"

# Entries verbatim; lines starting with # (the reasons) and empty ones skipped.
{ grep -v '^\(#\|[[:space:]]*$\)' "$allow" || true; } | sort >"$listed"

status=0
new=$(comm -23 "$found" "$listed")
gone=$(comm -13 "$found" "$listed")
if [ -n "$new" ]; then
	echo "log lines without a rate limit (use vlog_limited, or list a start-up line in $allow):"
	echo "$new" | sed 's/^/  /'
	status=1
fi
if [ -n "$gone" ]; then
	echo "listed in $allow but not in the sources any more:"
	echo "$gone" | sed 's/^/  /'
	status=1
fi
if [ $status -eq 0 ]; then
	echo "$(wc -l <"$found") unlimited log lines, all start-up or operator lines listed in $(basename "$allow")"
fi
exit $status
