//! `install [--validate]`: installs or updates the base game (app 222860) with steamcmd into
//! `<root>/installation`, streaming steamcmd's progress.
//!
//! Anonymous Linux installs of 222860 fail with "Invalid platform" since November 2024; the
//! known workaround is a first pass with `@sSteamCmdForcePlatformType windows`, then the
//! Linux pass. With a Steam account that owns the game, one Linux pass suffices. Account
//! credentials reach steamcmd through a `+runscript` file readable only by this account,
//! never through a command line.

use crate::error::AgentError;
use crate::layout::Layout;
use left4me_protocol::agent::{InstallProgress, Installed};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const APP_ID: &str = "222860";

/// Valve's steamcmd for Linux, fetched when a host has none.
pub const STEAMCMD_URL: &str =
    "https://steamcdn-a.akamaihd.net/client/installer/steamcmd_linux.tar.gz";

/// The largest steamcmd download accepted (the real one is about 3 MB).
const MAX_STEAMCMD_BYTES: u64 = 64 << 20;

/// Where a system-wide steamcmd is looked for (Debian's package), after the fetched one.
pub const SYSTEM_STEAMCMD: &[&str] = &["/usr/games/steamcmd", "/usr/bin/steamcmd"];

/// A Steam account that owns the game.
pub struct SteamLogin {
    pub user: String,
    pub password: String,
}

impl SteamLogin {
    /// Reads `user` and `password` from the first two non-empty lines of `text`.
    pub fn parse(text: &str) -> Result<SteamLogin, AgentError> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let (Some(user), Some(password)) = (lines.next(), lines.next()) else {
            return Err(AgentError::Invalid(
                "Steam login: give the account name on the first line and the password on the second"
                    .to_owned(),
            ));
        };
        let plain = |s: &str| {
            !s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '"')
        };
        if !plain(user) || !plain(password) {
            return Err(AgentError::Invalid(
                "Steam login: the account name and password may not contain spaces, quotes or control characters"
                    .to_owned(),
            ));
        }
        Ok(SteamLogin {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }

    /// Reads a login file, which must be readable by its owner only.
    pub fn from_file(path: &Path) -> Result<SteamLogin, AgentError> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| {
            AgentError::Invalid(format!(
                "cannot read Steam login file {}: {e}",
                path.display()
            ))
        })?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(AgentError::Invalid(format!(
                "Steam login file {} must have mode 0600 (it holds a password)",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            AgentError::Invalid(format!(
                "cannot read Steam login file {}: {e}",
                path.display()
            ))
        })?;
        Self::parse(&text)
    }
}

/// One line of steamcmd's output, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// ` Update state (0x61) downloading, progress: 45.23 (4032156416 / 8915324133)`
    Progress {
        code: u32,
        state: String,
        percent: f64,
        done: u64,
        total: u64,
    },
    /// `Success! App '222860' fully installed.` or `… already up to date.`
    Success,
    /// `ERROR! Failed to install app '222860' (Invalid platform)`
    Error(String),
    Other,
}

pub fn parse_line(line: &str) -> Line {
    let trimmed = line.trim();
    if trimmed.starts_with("Success! App '") {
        return Line::Success;
    }
    if trimmed.starts_with("ERROR!") || trimmed.starts_with("Error!") {
        return Line::Error(trimmed.to_owned());
    }
    let Some(rest) = trimmed.strip_prefix("Update state (0x") else {
        return Line::Other;
    };
    let parse = || -> Option<Line> {
        let (code, rest) = rest.split_once(") ")?;
        let code = u32::from_str_radix(code, 16).ok()?;
        let (state, rest) = rest.split_once(", progress: ")?;
        let (percent, rest) = rest.split_once(" (")?;
        let (done, total) = rest.strip_suffix(')')?.split_once(" / ")?;
        Some(Line::Progress {
            code,
            state: state.to_owned(),
            percent: percent.parse().ok()?,
            done: done.parse().ok()?,
            total: total.parse().ok()?,
        })
    };
    parse().unwrap_or(Line::Other)
}

/// Where a fetched steamcmd goes: /opt/left4me/steamcmd/current on a host set up by `setup`
/// (the steamcmd folder belongs to left4me), else `<root>/steamcmd/current`.
pub fn steamcmd_home(layout: &Layout) -> PathBuf {
    let base = if layout.root() == Path::new(crate::layout::DEFAULT_ROOT) {
        PathBuf::from("/opt/left4me/steamcmd")
    } else {
        layout.root().join("steamcmd")
    };
    base.join("current")
}

/// Fetches steamcmd's tarball from `url` and unpacks it into `home` (replacing it whole);
/// returns the path of `steamcmd.sh`. The archive gets the same checks as overlay imports.
pub fn fetch_steamcmd(home: &Path, url: &str) -> Result<PathBuf, AgentError> {
    let failed = |e: String| AgentError::failed(format!("cannot fetch steamcmd from {url}"), e);
    let response = ureq::get(url)
        .config()
        .timeout_global(Some(std::time::Duration::from_secs(120)))
        .build()
        .call()
        .map_err(|e| failed(e.to_string()))?;
    let body = response
        .into_body()
        .into_with_config()
        .limit(MAX_STEAMCMD_BYTES)
        .read_to_vec()
        .map_err(|e| failed(e.to_string()))?;
    let parent = home.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(crate::error::io_context("create", parent))?;
    let gz = flate2::read::GzDecoder::new(body.as_slice());
    let target = crate::overlay::FillTarget {
        owner: None,
        stage: false,
    };
    crate::import::import(home, gz, MAX_STEAMCMD_BYTES * 4, &target)
        .map_err(|e| failed(crate::error::chain(&e)))?;
    let script = home.join("steamcmd.sh");
    if !script.is_file() {
        let _ = std::fs::remove_dir_all(home);
        return Err(failed("the archive has no steamcmd.sh".to_owned()));
    }
    Ok(script)
}

/// Finds steamcmd: the given path, else a fetched one, else Debian's, else `steamcmd` on
/// PATH. `None` when this host has none.
pub fn find_steamcmd(given: Option<&Path>, layout: &Layout) -> Result<Option<PathBuf>, AgentError> {
    if let Some(path) = given {
        return if path.is_file() {
            Ok(Some(path.to_path_buf()))
        } else {
            Err(AgentError::Invalid(format!(
                "--steamcmd {}: no such file",
                path.display()
            )))
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("steamcmd"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    Ok(std::iter::once(steamcmd_home(layout).join("steamcmd.sh"))
        .chain(SYSTEM_STEAMCMD.iter().map(PathBuf::from))
        .chain(on_path)
        .find(|p| p.is_file()))
}

/// Runs the install; `progress` receives every progress line as it comes.
pub fn install(
    layout: &Layout,
    steamcmd: &Path,
    login: Option<&SteamLogin>,
    validate: bool,
    progress: &mut dyn FnMut(InstallProgress) -> Result<(), AgentError>,
) -> Result<Installed, AgentError> {
    let dir = layout.installation();
    crate::fsutil::create_dir(&dir, 0o755).map_err(crate::error::io_context("create", &dir))?;
    let before = crate::service::installed_build(layout);
    // Anonymous installs need the Windows pass first (see the module's comment).
    let platforms: &[&str] = if login.is_some() {
        &["linux"]
    } else {
        &["windows", "linux"]
    };
    let script = match login {
        Some(login) => Some(RunScript::new(layout, login)?),
        None => None,
    };
    for (pass, platform) in platforms.iter().enumerate() {
        let mut args: Vec<String> = [
            "+@ShutdownOnFailedCommand",
            "1",
            "+@NoPromptForPassword",
            "1",
            "+@sSteamCmdForcePlatformType",
            platform,
            "+force_install_dir",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.push(dir.display().to_string());
        match &script {
            Some(script) => {
                args.push("+runscript".to_owned());
                args.push(script.path.display().to_string());
            }
            None => args.extend(["+login".to_owned(), "anonymous".to_owned()]),
        }
        args.extend(["+app_update".to_owned(), APP_ID.to_owned()]);
        if validate {
            args.push("validate".to_owned());
        }
        args.push("+quit".to_owned());
        run_pass(
            steamcmd,
            &dir,
            &args,
            pass as u32 + 1,
            platforms.len() as u32,
            platform,
            progress,
        )?;
    }
    let build = crate::service::installed_build(layout).ok_or_else(|| {
        AgentError::failed(
            "steamcmd reported success but left no app manifest",
            format!(
                "{} has no steamapps/appmanifest_{APP_ID}.acf",
                dir.display()
            ),
        )
    })?;
    check_launchers(&dir)?;
    let steam_client = provide_steam_client(layout, steamcmd)?;
    Ok(Installed {
        changed: before.as_deref() != Some(build.as_str()),
        previous_build: before,
        build,
        steam_client,
    })
}

/// Where steamcmd keeps the Steam client library it brings: beside it (Valve's tarball,
/// `linux32/`), or in its home (Debian's package runs it from `~/.steam/steamcmd`).
fn steam_client_of(steamcmd: &Path) -> Option<PathBuf> {
    let beside = steamcmd
        .parent()
        .map(|dir| dir.join("linux32/steamclient.so"));
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let in_home = home.iter().flat_map(|home| {
        [
            home.join(".steam/steamcmd/linux32/steamclient.so"),
            home.join("Steam/linux32/steamclient.so"),
        ]
    });
    beside.into_iter().chain(in_home).find(|p| p.is_file())
}

/// Where the install keeps the Steam client library for its servers: srcds loads
/// `$HOME/.steam/sdk32/steamclient.so`, and the unit gives the game its own tree as `HOME`.
pub const STEAM_CLIENT_IN_INSTALL: &str = ".steam/sdk32/steamclient.so";

/// Copies steamcmd's Steam client library into the install, after every install and update
/// (LinuxGSM does the same into the server account's home). Whether there was one.
fn provide_steam_client(layout: &Layout, steamcmd: &Path) -> Result<bool, AgentError> {
    let Some(library) = steam_client_of(steamcmd) else {
        return Ok(false);
    };
    let bytes = std::fs::read(&library).map_err(crate::error::io_context("read", &library))?;
    let target = layout.installation().join(STEAM_CLIENT_IN_INSTALL);
    if std::fs::read(&target).is_ok_and(|b| b == bytes) {
        return Ok(true);
    }
    if let Some(dir) = target.parent() {
        crate::fsutil::create_dir(dir, 0o755).map_err(crate::error::io_context("create", dir))?;
    }
    crate::fsutil::write_atomic(&target, &bytes, 0o755)
        .map_err(crate::error::io_context("write", &target))?;
    Ok(true)
}

fn run_pass(
    steamcmd: &Path,
    install_dir: &Path,
    args: &[String],
    pass: u32,
    passes: u32,
    platform: &str,
    progress: &mut dyn FnMut(InstallProgress) -> Result<(), AgentError>,
) -> Result<(), AgentError> {
    // On a terminal, steamcmd's stdio writes each line as it is printed; on a pipe, progress
    // would arrive 4 KiB at a time (LinuxGSM runs it through `unbuffer` for this).
    let mut error = None;
    let mut succeeded = false;
    // What steamcmd said last, for a failure it gives no reason for.
    let mut last: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let status = crate::pty::run_lines(Command::new(steamcmd).args(args), &mut |line| {
        if !line.trim().is_empty() {
            if last.len() == 6 {
                last.pop_front();
            }
            last.push_back(line.trim().to_owned());
        }
        match parse_line(line) {
            Line::Progress {
                code,
                state,
                percent,
                done,
                total,
            } => progress(InstallProgress {
                pass,
                passes,
                platform: platform.to_owned(),
                state_code: code,
                state,
                percent,
                bytes_done: done,
                bytes_total: total,
            })?,
            Line::Success => succeeded = true,
            Line::Error(text) => error = Some(text),
            Line::Other => {}
        }
        Ok(())
    })?;
    // steamcmd may exit 0 after a failed command, and crash on its way out after a finished
    // install: its own words and the app manifest it leaves decide, not its exit status.
    let failed =
        |why: String| AgentError::failed(format!("steamcmd failed ({platform} pass)"), why);
    if let Some(text) = error {
        return Err(failed(text));
    }
    if !succeeded {
        return Err(failed(format!(
            "it exited with {status} without reporting success; its last lines: {}",
            last.iter().cloned().collect::<Vec<_>>().join(" | ")
        )));
    }
    match manifest_value(install_dir, "StateFlags").and_then(|f| f.parse::<u32>().ok()) {
        Some(flags) if flags & STATE_FULLY_INSTALLED != 0 => Ok(()),
        Some(flags) => Err(failed(format!(
            "it reported success, but its app manifest says the app is not fully installed \
             (StateFlags {flags})"
        ))),
        None => Err(failed(format!(
            "it reported success but left no steamapps/appmanifest_{APP_ID}.acf in {}",
            install_dir.display()
        ))),
    }
}

/// What every server start runs: `srcds_run` and the `srcds_linux` it starts. An install
/// that lacks either, or has them without the execute bit, would fail at every start.
fn check_launchers(dir: &Path) -> Result<(), AgentError> {
    use std::os::unix::fs::PermissionsExt;
    for name in ["srcds_run", "srcds_linux"] {
        let path = dir.join(name);
        let problem = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => continue,
            Ok(m) if m.is_file() => "is not executable",
            Ok(_) => "is not a regular file",
            Err(_) => "is missing",
        };
        return Err(AgentError::failed(
            format!("steamcmd reported success, but the install's {name} {problem}"),
            "run the install again with --validate, which has steamcmd check every file",
        ));
    }
    Ok(())
}

/// The app manifest's `StateFlags` bit for a complete install.
const STATE_FULLY_INSTALLED: u32 = 4;

/// A value of the app manifest steamcmd left in the install `dir` (`"key"\t\t"value"`).
pub fn manifest_value(dir: &Path, key: &str) -> Option<String> {
    let text =
        std::fs::read_to_string(dir.join(format!("steamapps/appmanifest_{APP_ID}.acf"))).ok()?;
    text.lines().find_map(|line| {
        let words: Vec<&str> = line.split('"').filter(|w| !w.trim().is_empty()).collect();
        (words.first() == Some(&key)).then(|| words.get(1).map(|v| (*v).to_owned()))?
    })
}

/// A `+runscript` file with the login line: mode 0600 in a 0700 folder of the owner's home,
/// removed when dropped.
struct RunScript {
    path: PathBuf,
}

impl RunScript {
    fn new(layout: &Layout, login: &SteamLogin) -> Result<RunScript, AgentError> {
        let dir = layout.home().join(".steam-login");
        crate::fsutil::create_dir(&dir, 0o700).map_err(crate::error::io_context("create", &dir))?;
        let path = dir.join(format!("login-{}.txt", std::process::id()));
        crate::fsutil::write_atomic(
            &path,
            format!("login {} {}\n", login.user, login.password).as_bytes(),
            0o600,
        )
        .map_err(crate::error::io_context("write", &path))?;
        Ok(RunScript { path })
    }
}

impl Drop for RunScript {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steamcmd_lines_are_understood() {
        assert_eq!(
            parse_line(
                " Update state (0x61) downloading, progress: 45.23 (4032156416 / 8915324133)"
            ),
            Line::Progress {
                code: 0x61,
                state: "downloading".into(),
                percent: 45.23,
                done: 4_032_156_416,
                total: 8_915_324_133,
            }
        );
        assert_eq!(
            parse_line(" Update state (0x81) verifying update, progress: 100.00 (1 / 1)"),
            Line::Progress {
                code: 0x81,
                state: "verifying update".into(),
                percent: 100.0,
                done: 1,
                total: 1,
            }
        );
        assert_eq!(
            parse_line("Success! App '222860' fully installed."),
            Line::Success
        );
        assert_eq!(
            parse_line("ERROR! Failed to install app '222860' (Invalid platform)"),
            Line::Error("ERROR! Failed to install app '222860' (Invalid platform)".into())
        );
        assert_eq!(parse_line("Loading Steam API...OK"), Line::Other);
        assert_eq!(parse_line(" Update state (0x61) downloading"), Line::Other);
    }

    #[test]
    fn logins_are_two_plain_lines() {
        let login = SteamLogin::parse("admin\nhunter2\n").unwrap();
        assert_eq!(
            (login.user.as_str(), login.password.as_str()),
            ("admin", "hunter2")
        );
        assert!(SteamLogin::parse("admin\n").is_err());
        assert!(SteamLogin::parse("admin\npass word\n").is_err());
        assert!(SteamLogin::parse("admin\n\"x\n").is_err());
    }
}
