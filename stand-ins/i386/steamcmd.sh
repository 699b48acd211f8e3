#!/bin/bash
# The stand-in steamcmd.sh, shaped like Valve's launcher of 2024: a bash script that finds
# its own folder, puts linux32/ first in the library path and runs the i386 linux32/steamcmd
# as a child (not with exec), so a crash is reported by bash on stderr. After updating itself
# steamcmd exits 42, and the script says so on stderr and starts itself again; any other
# status is passed on.

log() {
	echo "steamcmd.sh[$$]: $*" >&2 || :
}

root="$(cd "${0%/*}" && echo "$PWD")"
name="$(basename "$0" .sh)"
if [ "$(uname)" != "Linux" ]; then
	log "this stand-in runs on Linux only"
	exit 1
fi
program="$root/linux32/$name"
export LD_LIBRARY_PATH="$root/linux32:$LD_LIBRARY_PATH"
ulimit -n 2048 2>/dev/null

"$program" "$@"
status=$?

if [ "$status" -eq 42 ]; then
	log "Restarting steamcmd by request..."
	exec "$0" "$@"
fi
exit "$status"
