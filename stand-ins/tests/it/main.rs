//! Integration tests of the stand-ins, run as the agent will run them: real processes,
//! real sockets on loopback, driven by the agent's own A2S and RCON clients.

/// The stand-in game server: command line, A2S, RCON, console lines, crashes.
mod srcds;
/// The stand-in steamcmd: its launcher, self-update, logins, Steam Guard, failures.
mod steamcmd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A steamcmd folder as Valve's tarball unpacks, with the stand-in in it.
pub struct Steamcmd {
    dir: tempfile::TempDir,
}

impl Steamcmd {
    pub fn fresh() -> Steamcmd {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new(env!("CARGO_BIN_EXE_steamcmd_stand_in"))
            .arg("--write-tree")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        Steamcmd { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn script(&self) -> PathBuf {
        self.dir.path().join("steamcmd.sh")
    }

    /// Sets the scene: the stand-in Steam's accounts, build and faults.
    pub fn steam(&self, conf: &str) {
        std::fs::write(self.dir.path().join("stand-in-steam.conf"), conf).unwrap();
    }

    /// A command line (words) through `steamcmd.sh`, with no pauses between progress lines;
    /// stdin is closed.
    pub fn command(&self, args: &str) -> Command {
        let mut command = Command::new(self.script());
        command
            .args(args.split_whitespace())
            .env("STAND_IN_STEAMCMD_STEP_MS", "0")
            .env("HOME", self.dir.path());
        command
    }

    pub fn run(&self, args: &str) -> Output {
        self.command(args)
            .output()
            .expect("run the stand-in steamcmd")
    }
}

/// Installs the stand-in server into `dir` the way the agent does anonymously: two passes.
pub fn install(dir: &Path) {
    let steamcmd = Steamcmd::fresh();
    for platform in ["windows", "linux"] {
        let out = steamcmd.run(&format!(
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
