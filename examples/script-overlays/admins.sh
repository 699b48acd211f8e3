#!/bin/sh
# SourceMod's admin list. Put this overlay above the "sourcemod" overlay in a blueprint, so
# its admins_simple.ini is the one the servers see.
#
# One admin per line: their SteamID, then SourceMod flags ("z" is every flag; "b" is basic
# admin, "c" kick, "d" ban; see https://wiki.alliedmods.net/Adding_Admins_(SourceMod)).
set -eu

ADMINS='
"STEAM_1:0:0000001" "z"
'

mkdir -p left4dead2/addons/sourcemod/configs
{
    echo "// Written by the left4me \"admins\" overlay; edit the overlay's script, not this file."
    printf '%s\n' "$ADMINS" | sed '/^[[:space:]]*$/d'
} > left4dead2/addons/sourcemod/configs/admins_simple.ini
echo "admins: $(grep -c '^"' left4dead2/addons/sourcemod/configs/admins_simple.ini)"
