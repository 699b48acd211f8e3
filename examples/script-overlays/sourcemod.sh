#!/bin/sh
# SourceMod and MetaMod:Source: the newest stable builds from AlliedModders' drop folders.
#
# Each drop folder has a "<name>-latest-linux" file naming its newest tarball; both tarballs
# unpack into left4dead2/ (addons/ and cfg/). MetaMod:Source is loaded by the game through
# addons/metamod.vdf, written here for Left 4 Dead 2. To follow another branch, change the
# two folders below (for example .../smdrop/1.13 for SourceMod's development builds).
set -eu

SOURCEMOD_DROP=https://sm.alliedmods.net/smdrop/1.12
METAMOD_DROP=https://mms.alliedmods.net/mmsdrop/1.12

fetch() {
    "$LEFT4ME_AGENT" fetch "$1" "$2" > /dev/null
}

mkdir -p left4dead2
for package in "mmsource $METAMOD_DROP" "sourcemod $SOURCEMOD_DROP"; do
    name=${package%% *}
    drop=${package#* }
    fetch "$drop/$name-latest-linux" "$TMPDIR/$name-latest"
    tarball=$(tr -d '[:space:]' < "$TMPDIR/$name-latest")
    case $tarball in
        "$name"-*-linux.tar.gz) ;;
        *)
            echo "$drop/$name-latest-linux names no $name tarball: \"$tarball\"" >&2
            exit 1
            ;;
    esac
    echo "$name: $tarball"
    fetch "$drop/$tarball" "$TMPDIR/$tarball"
    tar -xzf "$TMPDIR/$tarball" -C left4dead2 --no-same-owner --no-same-permissions
done

cat > left4dead2/addons/metamod.vdf <<'VDF'
"Plugin"
{
	"file"	"../left4dead2/addons/metamod/bin/server"
}
VDF

test -d left4dead2/addons/sourcemod/plugins
echo "SourceMod plugins: $(ls left4dead2/addons/sourcemod/plugins | grep -c '\.smx$')"
