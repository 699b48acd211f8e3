#!/bin/sh
# The stand-in srcds_run, shaped like Valve's: a POSIX sh script (dash runs it) that goes to
# its own folder, puts the tree's libraries first, checks the engine binary, and with
# -norestart replaces itself with srcds_linux, which becomes the unit's main process. As in
# Valve's script, the arguments are passed on unquoted ($*): words split on spaces.

cd "$(dirname "$0")" || exit 1
export LD_LIBRARY_PATH=".:bin:$LD_LIBRARY_PATH"

HL=./srcds_linux
PARAMS=$*
RESTART=yes
GAME=
while test $# -gt 0; do
	case "$1" in
	-game)
		GAME="$2"
		shift ;;
	-norestart)
		RESTART= ;;
	-binary)
		HL="$2"
		shift ;;
	esac
	shift
done

if test -z "$GAME" || test ! -d "$GAME"; then
	echo "srcds_run: no game folder '$GAME' in $(pwd)"
	exit 1
fi
if test ! -f "$HL"; then
	echo "srcds_run: the engine binary '$HL' is missing"
	exit 1
elif test ! -x "$HL"; then
	echo "srcds_run: the engine binary '$HL' is not executable"
	exit 1
fi

if test -z "$RESTART"; then
	exec $HL $PARAMS
fi

echo "srcds_run: restarting the server whenever it fails"
while true; do
	$HL $PARAMS
	status=$?
	if test $status -eq 0; then
		break
	fi
	echo "srcds_run: $(date): restart in 10 seconds"
	sleep 10
done
