//! Integration tests of the stand-ins, run as the agent will run them: real processes,
//! real sockets on loopback, driven by the agent's own A2S and RCON clients.

/// The stand-in game server: command line, A2S, RCON, console lines, crashes.
mod srcds;
/// The stand-in steamcmd: grammar, progress lines, the Invalid platform failure.
mod steamcmd;

use std::path::Path;
use std::process::{Command, Output};

/// Runs the stand-in steamcmd with `args` (words) and no pauses between progress lines.
pub fn steamcmd(args: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steamcmd"))
        .args(args.split_whitespace())
        .env("STAND_IN_STEAMCMD_STEP_MS", "0")
        .output()
        .expect("run the stand-in steamcmd")
}

/// Installs the stand-in server into `dir` the way the agent will: two passes, anonymous.
pub fn install(dir: &Path) {
    for platform in ["windows", "linux"] {
        let out = steamcmd(&format!(
            "+@ShutdownOnFailedCommand 1 +@NoPromptForPassword 1 +@sSteamCmdForcePlatformType {platform} +force_install_dir {} +login anonymous +app_update 222860 validate +quit",
            dir.display()
        ));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
