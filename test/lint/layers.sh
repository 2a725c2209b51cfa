#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# The layers, as the README's Layout draws them: every quoted #include of
# proto/, include/ and src/ resolves to its own folder or to a folder below
# it, never to one above or beside it. The build already refuses most of
# this (a library sees only the headers of what it links); this check says
# it in one place and also catches a header found by a path the build
# happens to offer.
#
#   include/vhost-user  <- proto <- src/can <- src/device <- src/daemon
#   src/device/wire (the virtio-can wire format) <- src/device, src/frontend
#   src/frontend        <- include/vhost-user, src/can, src/device/wire
#
# Usage: layers.sh [source root]   (default: two levels up)
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"

# The folders a folder may include from, after its own.
below() {
	case "$1" in
	include/vhost-user) echo "" ;;
	proto) echo "include/vhost-user" ;;
	src/can) echo "include/vhost-user" ;;
	src/device/wire) echo "" ;;
	src/device) echo "src/device/wire src/can include/vhost-user" ;;
	src/daemon) echo "src/device src/can include/vhost-user" ;;
	src/frontend) echo "src/device/wire src/can include/vhost-user" ;;
	*) return 1 ;;
	esac
}
all="include/vhost-user proto src/can src/device/wire src/device src/daemon src/frontend"

status=0
checked=0
for dir in $all; do
	allowed=$(below "$dir")
	for f in "$dir"/*.[ch]; do
		[ -e "$f" ] || continue
		while IFS= read -r inc; do
			checked=$((checked + 1))
			# The folder the header is in: the protocol's API by its
			# namespace, else the including file's own folder, else the
			# project folder that has it.
			where=
			if [[ $inc == vhost-user/* ]] && [ -e "include/$inc" ]; then
				where=include/vhost-user
			elif [ -e "$dir/$inc" ]; then
				where=$dir
			else
				for d in $all; do
					if [ -e "$d/$inc" ]; then
						where=$d
						break
					fi
				done
			fi
			if [ -z "$where" ]; then
				echo "$f: #include \"$inc\" is in no project folder (system headers take <>)"
				status=1
			elif [ "$where" != "$dir" ] && [[ " $allowed " != *" $where "* ]]; then
				echo "$f: #include \"$inc\" is in $where, above or beside $dir (it may use: ${allowed:-nothing})"
				status=1
			fi
		done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
	done
done
[ "$checked" -gt 50 ] || { echo "only $checked includes seen: is $root the source tree?"; exit 1; }
[ "$status" -eq 0 ] && echo "layers: $checked quoted includes, each in its own folder or below"
exit "$status"
