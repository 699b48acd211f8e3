//! The stand-in steamcmd. It takes steamcmd's command-line grammar (`+command args…`, and
//! `+runscript FILE` with one command per line), prints steamcmd's real progress lines at a
//! realistic pace, and lays out an L4D2 dedicated server tree launched as the real one is:
//! `srcds_run`, a POSIX sh script, `exec`s `srcds_linux`, an i386 program that needs the
//! host's 32-bit runtime, which hands over to the stand-in server in `bin/` (taken from
//! beside this binary).
//!
//! Reproduced quirks: since November 2024 an anonymous Linux install of 222860 fails with
//! `ERROR! Failed to install app '222860' (Invalid platform)` unless a pass with
//! `@sSteamCmdForcePlatformType windows` ran first (or the account owns the game); a failed
//! command does not change the exit status unless `@ShutdownOnFailedCommand 1` is set, in
//! which case steamcmd exits 8 at once.
//!
//! Its output is written as C stdio writes it ([`crate::stdio`]): on a pipe, in 4 KiB
//! blocks, so progress sits unseen until a block fills (LinuxGSM#3655).
//!
//! Environment knobs for tests: `STAND_IN_STEAMCMD_HOLD` (see [`hold_once`]),
//! `STAND_IN_STEAMCMD_CRASH_AT_EXIT` (a SIGSEGV at `quit`, after the work is done),
//! `STAND_IN_STEAMCMD_STEP_MS` (pause between progress lines,
//! default 40), `STAND_IN_STEAMCMD_BUILDID` (the build "published" now).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const APP_ID: &str = "222860";
const DEFAULT_BUILD: &str = "16075386";
/// What the real server's download weighs, as the progress lines report it.
const TOTAL_BYTES: u64 = 8_915_324_133;
/// Exit status of steamcmd when a command fails under `@ShutdownOnFailedCommand 1`.
pub const EXIT_FAILED: i32 = 8;

/// The maps the stand-in install ships (one per campaign start, enough for tests).
const MAPS: &[&str] = &[
    "c1m1_hotel",
    "c2m1_highway",
    "c3m1_plankcountry",
    "c4m1_milltown_a",
    "c5m1_waterfront",
];

#[derive(Debug, Clone, PartialEq)]
enum Login {
    Anonymous,
    Account(String),
}

struct Session {
    install_dir: Option<PathBuf>,
    platform: String,
    login: Option<Login>,
    shutdown_on_failed: bool,
    step: Duration,
}

/// Splits steamcmd's arguments into commands: each `+word` starts one.
pub fn commands(args: &[String]) -> Vec<Vec<String>> {
    let mut commands: Vec<Vec<String>> = Vec::new();
    for arg in args {
        match arg.strip_prefix('+') {
            Some(name) => commands.push(vec![name.to_owned()]),
            None => match commands.last_mut() {
                Some(command) => command.push(arg.clone()),
                None => commands.push(vec![arg.clone()]),
            },
        }
    }
    commands
}

/// Runs a whole command line; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let mut session = Session {
        install_dir: None,
        platform: "linux".to_owned(),
        login: None,
        shutdown_on_failed: false,
        step: Duration::from_millis(
            std::env::var("STAND_IN_STEAMCMD_STEP_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(40),
        ),
    };
    say("Redirecting stderr to '/root/Steam/logs/stderr.txt'");
    say("[  0%] Checking for available updates...");
    say("[----] Verifying installation...");
    // Its self-update lays out its own files beside it, the Steam client library among them
    // (the one game servers load as `~/.steam/sdk32/steamclient.so`).
    if let Err(e) = bootstrap() {
        say(&format!("[----] Failed to verify installation: {e}"));
    }
    say("Steam Console Client (c) Valve Corporation - version 1731366461");
    say("-- type 'quit' to exit --");
    say("Loading Steam API...OK");
    let mut quit = false;
    for command in commands(args) {
        match session.execute(&command) {
            Step::Continue => {}
            Step::Quit => {
                quit = true;
                break;
            }
            Step::Exit(code) => return code,
        }
    }
    if !quit {
        // Without +quit steamcmd reads commands from its prompt until the input ends.
        let stdin = std::io::stdin();
        for line in stdin.lock().lines().map_while(Result::ok) {
            let words: Vec<String> = line.split_whitespace().map(String::from).collect();
            match session.execute(&words) {
                Step::Continue => {}
                Step::Quit => break,
                Step::Exit(code) => return code,
            }
        }
    }
    if std::env::var_os("STAND_IN_STEAMCMD_CRASH_AT_EXIT").is_some() {
        // Some steamcmd builds crash on their way out after a finished install: a real
        // SIGSEGV, which loses whatever stdio still buffered (all of it, on a pipe).
        crate::crash();
    }
    say("Unloading Steam API...OK");
    // Failed commands do not change the exit status here: that is steamcmd's way.
    0
}

enum Step {
    Continue,
    Quit,
    Exit(i32),
}

impl Session {
    fn execute(&mut self, command: &[String]) -> Step {
        let Some((name, args)) = command.split_first() else {
            return Step::Continue;
        };
        let result = match (name.as_str(), args) {
            ("quit" | "exit", _) => return Step::Quit,
            ("@ShutdownOnFailedCommand", [value]) => {
                self.shutdown_on_failed = value == "1";
                Ok(())
            }
            ("@NoPromptForPassword", [_]) => Ok(()),
            ("@sSteamCmdForcePlatformType", [platform]) => {
                self.platform = platform.clone();
                Ok(())
            }
            ("force_install_dir", [dir]) => {
                self.install_dir = Some(PathBuf::from(dir));
                Ok(())
            }
            ("login", [user]) if user == "anonymous" => {
                say("Connecting anonymously to Steam Public...OK");
                say("Waiting for client config...OK");
                say("Waiting for user info...OK");
                self.login = Some(Login::Anonymous);
                Ok(())
            }
            ("login", [user, ..]) => {
                say(&format!("Logging in user '{user}' to Steam Public..."));
                say("Waiting for client config...OK");
                say("Waiting for user info...OK");
                self.login = Some(Login::Account(user.clone()));
                Ok(())
            }
            ("app_update", [app, rest @ ..]) => {
                let validate = rest.iter().any(|a| a == "validate");
                self.app_update(app, validate)
            }
            ("runscript", [file]) => return self.runscript(Path::new(file)),
            _ => Err(format!("Unknown command \"{name}\"")),
        };
        match result {
            Ok(()) => Step::Continue,
            Err(message) => {
                say(&message);
                if self.shutdown_on_failed {
                    Step::Exit(EXIT_FAILED)
                } else {
                    Step::Continue
                }
            }
        }
    }

    fn runscript(&mut self, file: &Path) -> Step {
        let Ok(text) = std::fs::read_to_string(file) else {
            say(&format!("Failed to open script file '{}'", file.display()));
            return Step::Continue;
        };
        for line in text.lines() {
            let line = line.split("//").next().unwrap_or("").trim();
            let words: Vec<String> = line.split_whitespace().map(String::from).collect();
            match self.execute(&words) {
                Step::Continue => {}
                other => return other,
            }
        }
        Step::Continue
    }

    fn app_update(&mut self, app: &str, validate: bool) -> Result<(), String> {
        let Some(login) = self.login.clone() else {
            return Err("ERROR! Not logged on.".to_owned());
        };
        if app != APP_ID {
            return Err(format!(
                "ERROR! Failed to install app '{app}' (No subscription)"
            ));
        }
        let dir = self
            .install_dir
            .clone()
            .ok_or_else(|| "ERROR! No install directory (use force_install_dir)".to_owned())?;
        let build =
            std::env::var("STAND_IN_STEAMCMD_BUILDID").unwrap_or_else(|_| DEFAULT_BUILD.to_owned());
        let manifest = dir
            .join("steamapps")
            .join(format!("appmanifest_{APP_ID}.acf"));
        let platforms = dir.join("steamapps/.stand-in-platforms");
        let installed_platforms = std::fs::read_to_string(&platforms).unwrap_or_default();

        let linux = self.platform == "linux";
        if linux && login == Login::Anonymous && !installed_platforms.contains("windows") {
            self.progress(0x3, "reconfiguring", 0, 0, 2);
            return Err(format!(
                "ERROR! Failed to install app '{APP_ID}' (Invalid platform)"
            ));
        }
        let current = std::fs::read_to_string(&manifest)
            .ok()
            .and_then(|m| manifest_build(&m));
        if current.as_deref() == Some(build.as_str())
            && installed_platforms.contains(&self.platform)
            && !validate
        {
            say(&format!("Success! App '{APP_ID}' already up to date."));
            return Ok(());
        }

        self.progress(0x3, "reconfiguring", 0, 0, 1);
        if validate {
            self.progress(0x5, "validating", 0, TOTAL_BYTES, 5);
        }
        self.progress(0x11, "preallocating", 0, TOTAL_BYTES, 2);
        self.progress(0x61, "downloading", 0, TOTAL_BYTES, 20);
        lay_out_tree(&dir, &self.platform).map_err(|e| {
            format!("ERROR! Failed to install app '{APP_ID}' (Disk write failure: {e})")
        })?;
        self.progress(0x81, "verifying update", 0, TOTAL_BYTES, 4);
        let mut platforms_text = installed_platforms;
        if !platforms_text.contains(&self.platform) {
            platforms_text.push_str(&self.platform);
            platforms_text.push('\n');
        }
        let write = |path: &Path, text: &str| {
            std::fs::write(path, text).map_err(|e| {
                format!("ERROR! Failed to install app '{APP_ID}' (Disk write failure: {e})")
            })
        };
        write(&platforms, &platforms_text)?;
        write(&manifest, &manifest_text(&build))?;
        say(&format!("Success! App '{APP_ID}' fully installed."));
        Ok(())
    }

    /// Prints `steps` progress lines of one update state, like steamcmd does while it works.
    fn progress(&self, code: u32, state: &str, from: u64, total: u64, steps: u64) {
        for step in 1..=steps {
            let done = if total == 0 {
                0
            } else {
                from + (total - from) * step / steps
            };
            let percent = if total == 0 {
                0.0
            } else {
                done as f64 * 100.0 / total as f64
            };
            say(&format!(
                " Update state (0x{code:x}) {state}, progress: {percent:.2} ({done} / {total})"
            ));
            hold_once();
            std::thread::sleep(self.step);
        }
    }
}

/// For tests of how soon output arrives: with `STAND_IN_STEAMCMD_HOLD=<path>`, the first
/// progress line is followed by a pause until `<path>` exists (at most a minute); the
/// stand-in creates `<path>.held` when it starts waiting.
fn hold_once() {
    static HELD: std::sync::Once = std::sync::Once::new();
    let Some(release) = std::env::var_os("STAND_IN_STEAMCMD_HOLD") else {
        return;
    };
    HELD.call_once(|| {
        let release = PathBuf::from(release);
        let mut held = release.clone().into_os_string();
        held.push(".held");
        let _ = std::fs::write(&held, b"");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !release.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    });
}

/// What the stand-in's `linux32/steamclient.so` holds: a marker, not a library.
pub const STEAMCLIENT: &[u8] = b"stand-in steamclient.so\n";

/// steamcmd's own files beside it: `linux32/steamclient.so`.
fn bootstrap() -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let linux32 = exe
        .parent()
        .ok_or_else(|| std::io::Error::other("steamcmd has no folder"))?
        .join("linux32");
    let library = linux32.join("steamclient.so");
    if std::fs::read(&library).is_ok_and(|b| b == STEAMCLIENT) {
        return Ok(());
    }
    std::fs::create_dir_all(&linux32)?;
    let partial = linux32.join(".steamclient.so.partial");
    std::fs::write(&partial, STEAMCLIENT)?;
    std::fs::rename(&partial, &library)
}

/// Prints a line as steamcmd's stdio does: at once on a terminal, in 4 KiB blocks on a pipe.
fn say(line: &str) {
    crate::stdio::print_line(line);
}

/// The `"buildid"` of an appmanifest.
pub fn manifest_build(manifest: &str) -> Option<String> {
    manifest.lines().find_map(|line| {
        let mut words = line.split('"').filter(|w| !w.trim().is_empty());
        (words.next() == Some("buildid")).then(|| words.next().map(str::to_owned))?
    })
}

fn manifest_text(build: &str) -> String {
    format!(
        "\"AppState\"\n{{\n\t\"appid\"\t\t\"{APP_ID}\"\n\t\"Universe\"\t\t\"1\"\n\t\"name\"\t\t\"Left 4 Dead 2 Dedicated Server\"\n\t\"StateFlags\"\t\t\"4\"\n\t\"installdir\"\t\t\"Left 4 Dead 2 Dedicated Server\"\n\t\"buildid\"\t\t\"{build}\"\n\t\"SizeOnDisk\"\t\t\"{TOTAL_BYTES}\"\n}}\n"
    )
}

/// Writes the server tree: the game folder with its configs and maps for both platforms,
/// and the platform's launcher (`srcds_run`, the stand-in server, on Linux).
fn lay_out_tree(dir: &Path, platform: &str) -> std::io::Result<()> {
    let game = dir.join("left4dead2");
    for sub in ["cfg", "addons", "maps", "bin"] {
        std::fs::create_dir_all(game.join(sub))?;
    }
    std::fs::create_dir_all(dir.join("steamapps"))?;
    std::fs::write(
        game.join("gameinfo.txt"),
        "\"GameInfo\"\n{\n\tgame\t\"Left 4 Dead 2\"\n\tFileSystem\n\t{\n\t\tSteamAppId\t550\n\t}\n}\n",
    )?;
    std::fs::write(
        game.join("cfg/server_example.cfg"),
        "// Example server.cfg shipped with the dedicated server\nhostname \"Left 4 Dead 2\"\n",
    )?;
    for map in MAPS {
        std::fs::write(
            game.join("maps").join(format!("{map}.bsp")),
            b"VBSP\x15\0\0\0",
        )?;
    }
    match platform {
        "windows" => std::fs::write(dir.join("srcds.exe"), b"MZ stand-in")?,
        _ => {
            // The engine's logic: the stand-in server, beside steamcmd.
            let engine = std::env::current_exe()?
                .parent()
                .map(|d| d.join("srcds_stand_in"))
                .filter(|p| p.is_file())
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the stand-in server srcds_stand_in is not beside steamcmd",
                    )
                })?;
            std::fs::create_dir_all(dir.join("bin"))?;
            place(&dir.join("bin/srcds_stand_in"), &std::fs::read(engine)?)?;
            place(&dir.join("srcds_linux"), SRCDS_LINUX)?;
            place(&dir.join("srcds_run"), SRCDS_RUN.as_bytes())?;
        }
    }
    Ok(())
}

/// The stand-in `srcds_linux`, an i386 program built by `build.rs`.
const SRCDS_LINUX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/srcds_linux"));
/// The stand-in `srcds_run`, a POSIX sh script shaped like Valve's.
const SRCDS_RUN: &str = include_str!("../i386/srcds_run.sh");

/// Writes an executable file of the tree whole: a partial file renamed into place.
fn place(target: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let partial = target.with_file_name(format!(".{name}.partial"));
    std::fs::write(&partial, contents)?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&partial, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn command_line_splits_into_commands() {
        assert_eq!(
            commands(&words(
                "+@sSteamCmdForcePlatformType windows +force_install_dir /srv/l4d2 +login anonymous +app_update 222860 validate +quit"
            )),
            [
                words("@sSteamCmdForcePlatformType windows"),
                words("force_install_dir /srv/l4d2"),
                words("login anonymous"),
                words("app_update 222860 validate"),
                words("quit"),
            ]
        );
    }

    #[test]
    fn build_id_is_read_from_the_manifest() {
        assert_eq!(
            manifest_build(&manifest_text("123")).as_deref(),
            Some("123")
        );
        assert_eq!(manifest_build("\"AppState\"\n{\n}\n"), None);
    }
}
