#!/bin/sh
# A competitive-style versus configuration: fixed rates, no all-talk, strict consistency.
#
# Config overlays put their files in left4dead2/cfg/left4me.d/: every server's server.cfg
# runs them first, so a blueprint's own cvars still win. Edit the values below to taste.
set -eu

mkdir -p left4dead2/cfg/left4me.d
cat > left4dead2/cfg/left4me.d/competitive.cfg <<'CFG'
// Competitive versus, from the left4me "competitive" overlay.
mp_gamemode "versus"
sv_gametypes "versus"
z_difficulty "Normal"
sv_alltalk "0"
sv_consistency "1"
sv_allow_lobby_connect_only "0"
sv_minrate "30000"
sv_maxrate "100000"
sv_mincmdrate "30"
sv_maxcmdrate "100"
sv_minupdaterate "30"
sv_maxupdaterate "100"
sv_client_min_interp_ratio "1"
sv_client_max_interp_ratio "2"
CFG
echo "wrote cfg/left4me.d/competitive.cfg"
