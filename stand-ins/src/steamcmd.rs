//! The stand-in steamcmd, laid out as Valve's: `steamcmd.sh`, a bash script, runs the i386
//! `linux32/steamcmd` (which needs the host's 32-bit runtime), which hands over to this
//! logic (`linux32/steamcmd_stand_in`). It takes steamcmd's command-line grammar
//! (`+command args…`, `+runscript FILE` with one command per line, commands typed at its
//! prompt), prints steamcmd's real output at a realistic pace, and lays out an L4D2
//! dedicated server tree launched as the real one is: `srcds_run`, a POSIX sh script,
//! `exec`s `srcds_linux`, an i386 program, which hands over to the stand-in server in `bin/`
//! (taken from beside this program).
//!
//! Reproduced quirks, each as real steamcmd shows it (see `host-agent/tests/steamcmd/` for
//! the transcripts they were taken from):
//! - its first run updates itself and exits 42, and `steamcmd.sh` starts it again;
//! - it redirects its own stderr into `~/Steam/logs/stderr.txt`;
//! - output is written as C stdio writes it ([`crate::stdio`]): on a pipe in 4 KiB blocks, so
//!   progress sits unseen until a block fills (LinuxGSM#3655), and a prompt never shows;
//! - the login line is printed in two parts (`…to Steam Public...`, then `OK` or
//!   `FAILED (reason)` once Steam answered); a refused login exits 5;
//! - Steam Guard by e-mail code and by authenticator code (prompts without a line break, read
//!   from stdin), and by confirmation in the Steam app (`Waiting for confirmation...`);
//! - a login that succeeded is cached in `config/config.vdf` and `login NAME` alone works
//!   until that file loses it;
//! - since November 2024 an anonymous Linux install of 222860 fails with `ERROR! Failed to
//!   install app '222860' (Invalid platform)` unless a pass with
//!   `@sSteamCmdForcePlatformType windows` ran first (or the account owns the game);
//! - a failed command does not change the exit status unless `@ShutdownOnFailedCommand 1`
//!   is set, in which case steamcmd exits 8 at once;
//! - `Error! App '222860' state is 0x202 after update job.` when the disk is too small, and
//!   `0x602` when the network fails (played by [`crate::steam`]);
//! - `app_info_print` answers from a cache that `app_info_update 1` refreshes only when the
//!   cache is missing, so it can name a stale build.
//!
//! What Steam knows (accounts, the public build, faults) comes from [`crate::steam`].
//! Environment knobs for tests: `STAND_IN_STEAMCMD_HOLD` (see [`hold_once`]),
//! `STAND_IN_STEAMCMD_CRASH_AT_EXIT` (a SIGSEGV at `quit`, after the work is done),
//! `STAND_IN_STEAMCMD_STEP_MS` (pause between progress lines, default 40),
//! `STAND_IN_STEAMCMD_BUILDID` (the build published now), `STAND_IN_STEAMCMD_PATCH` (its
//! `PatchVersion`), `STAND_IN_STEAMCMD_SIGNATURES=moved` (it breaks SourceMod's signatures).

use crate::steam::{Account, Fault, Guard, Steam};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const APP_ID: &str = "222860";
/// What the real server's download weighs, as the progress lines report it.
const TOTAL_BYTES: u64 = 8_915_324_133;
/// Exit status of steamcmd when a command fails under `@ShutdownOnFailedCommand 1`.
pub const EXIT_FAILED: i32 = 8;
/// Exit status of steamcmd when a login is refused.
pub const EXIT_LOGIN_FAILED: i32 = 5;
/// Exit status after steamcmd updated itself: `steamcmd.sh` starts it again.
pub const EXIT_RESTART: i32 = 42;
/// The version steamcmd reports after updating itself.
const VERSION: &str = "1731366461";

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
    Account(Account),
}

struct Session {
    /// The steamcmd tree: `steamcmd.sh` and `linux32/` are in it.
    root: PathBuf,
    steam: Steam,
    install_dir: Option<PathBuf>,
    platform: String,
    login: Option<Login>,
    shutdown_on_failed: bool,
    no_prompt: bool,
    /// A code given with `set_steam_guard_code`, for the next login.
    guard_code: Option<String>,
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

/// The steamcmd tree this program runs in (`<root>/linux32/steamcmd_stand_in`).
fn tree_root() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs a whole command line; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let root = tree_root();
    redirect_stderr();
    say("[  0%] Checking for available updates...");
    say("[----] Verifying installation...");
    if !updated(&root) {
        return update_self(&root);
    }
    // Printed without a line break: the next line is glued to it (pelican-eggs/eggs#2866).
    crate::stdio::print("UpdateUI: skip show logo");
    say(&format!(
        "Steam Console Client (c) Valve Corporation - version {VERSION}"
    ));
    say("-- type 'quit' to exit --");
    // Noise between the start of a line and its end (steam-for-linux#11562).
    crate::stdio::print("Loading Steam API...");
    say("IPC function call IClientUtils::GetSteamRealm took too long: 52 msec");
    say("OK");
    say("");
    let mut session = Session {
        steam: Steam::of(&root),
        root,
        install_dir: None,
        platform: "linux".to_owned(),
        login: None,
        shutdown_on_failed: false,
        no_prompt: false,
        guard_code: None,
        step: Duration::from_millis(
            std::env::var("STAND_IN_STEAMCMD_STEP_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(40),
        ),
    };
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
        loop {
            crate::stdio::print("Steam>");
            let Some(line) = read_line() else { break };
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

/// A line typed at steamcmd's prompt; `None` at the end of the input. (On a terminal the
/// prompt is already out; on a pipe stdio keeps it, and nobody sees what is asked.)
fn read_line() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
    }
}

/// steamcmd echoes a setting it was given: `"@NoPromptForPassword" = "1"`.
fn setting(name: &str, value: &str) {
    say(&format!("\"{name}\" = \"{value}\""));
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
                setting(name, value);
                Ok(())
            }
            ("@NoPromptForPassword", [value]) => {
                self.no_prompt = value == "1";
                setting(name, value);
                Ok(())
            }
            ("@sSteamCmdForcePlatformType", [platform]) => {
                self.platform = platform.clone();
                setting(name, platform);
                Ok(())
            }
            ("force_install_dir", [dir]) => {
                self.install_dir = Some(PathBuf::from(dir));
                Ok(())
            }
            ("set_steam_guard_code", [code]) => {
                self.guard_code = Some(code.clone());
                Ok(())
            }
            ("login", []) => {
                Err("Usage: login <username> [<password>] [<Steam guard code>]".to_owned())
            }
            ("login", [user]) if user == "anonymous" => {
                say("Connecting anonymously to Steam Public...OK");
                say("Waiting for client config...OK");
                say("Waiting for user info...OK");
                self.login = Some(Login::Anonymous);
                Ok(())
            }
            ("login", [user, rest @ ..]) => {
                if let Some(code) = rest.get(1) {
                    self.guard_code = Some(code.clone());
                }
                match self.log_in(user, rest.first().map(String::as_str)) {
                    LogIn::LoggedOn(account) => {
                        self.login = Some(Login::Account(account));
                        Ok(())
                    }
                    LogIn::NotLoggedOn => {
                        self.login = None;
                        Ok(())
                    }
                    LogIn::Refused(code) => return Step::Exit(code),
                }
            }
            ("app_info_update", [_]) => {
                self.app_info_update();
                Ok(())
            }
            ("app_info_print", [app]) => self.app_info_print(app),
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
            if !line.is_empty() {
                // Each command of a script is echoed, whatever it holds: a login's password
                // too (GamePanelX-V3#177 shows `login sUSERNAME PASSWORD`).
                say(line);
            }
            let words: Vec<String> = line.split_whitespace().map(String::from).collect();
            match self.execute(&words) {
                Step::Continue => {}
                other => return other,
            }
        }
        Step::Continue
    }

    /// Logs an account in as steamcmd does, printing what it prints (the wordings of 2023 on,
    /// see the transcripts in `host-agent/tests/steamcmd/`).
    fn log_in(&mut self, user: &str, password: Option<&str>) -> LogIn {
        let account = self.steam.account(user).cloned();
        let cached = account.is_some() && cached_login(&self.root, user);
        let password = match password {
            Some(password) => {
                say("Logging in using username/password.");
                Some(password.to_owned())
            }
            None if cached => {
                say("Logging in using cached credentials.");
                None
            }
            None => {
                say("Cached credentials not found.");
                if self.no_prompt {
                    // LinuxGSM tells a cached login from none by exactly this line.
                    crate::stdio::print(&format!(
                        "Logging in user '{user}' [U:1:0] to Steam Public..."
                    ));
                    return refused("FAILED (Invalid Password)");
                }
                say("");
                crate::stdio::print("password: ");
                match read_line() {
                    Some(password) => {
                        say("Proceeding with login using username/password.");
                        Some(password)
                    }
                    None => return refused("FAILED (Invalid Password)"),
                }
            }
        };
        if self.guard_code.is_some() {
            say("Steam Guard code provided.");
        }
        let id = account.as_ref().map_or(0, |a| account_id(&a.name));
        crate::stdio::print(&format!(
            "Logging in user '{user}' [U:1:{id}] to Steam Public..."
        ));
        self.pause();
        if self.steam.take(Fault::RateLimit) {
            return refused("ERROR (Rate Limit Exceeded)");
        }
        if self.steam.take(Fault::NoConnection) {
            for _ in 0..4 {
                say("Retrying...");
                self.pause();
            }
            return refused("FAILED (No Connection)");
        }
        let Some(account) = account.filter(|a| password.as_deref().is_none_or(|p| p == a.password))
        else {
            return refused("FAILED (Invalid Password)");
        };
        if !cached && let Some(refusal) = self.guard(&account) {
            return refusal;
        }
        say("OK");
        say("Waiting for client config...OK");
        if self.steam.take(Fault::UserInfoTimeout) {
            // Not logged on after all; steamcmd goes on to the next command
            // (steamcmd/docker#65 shows the stray OK).
            say("Waiting for user info...FAILED (Timed out)");
            say("OK");
            return LogIn::NotLoggedOn;
        }
        say("Waiting for user info...OK");
        remember_login(&self.root, user);
        LogIn::LoggedOn(account)
    }

    /// Steam Guard on a login from a machine the account has not approved; `None` once the
    /// owner proved it is theirs, else how the login ends.
    fn guard(&mut self, account: &Account) -> Option<LogIn> {
        const EMAIL_TEXT: [&str; 4] = [
            "Please check your email for the message from Steam, and enter the Steam Guard",
            " code from that message.",
            "You can also enter this code at any time using 'set_steam_guard_code'",
            " at the console.",
        ];
        match account.guard.clone() {
            Guard::None => None,
            Guard::Email { code } => {
                say("");
                let mut first = true;
                loop {
                    match self.guard_code.take() {
                        Some(given) if given == code => return None,
                        Some(_) => say("That Steam Guard code was invalid."),
                        None if first => say(
                            "This computer has not been authenticated for your account using Steam Guard.",
                        ),
                        None => {}
                    }
                    first = false;
                    for line in EMAIL_TEXT {
                        say(line);
                    }
                    match self.prompt("Steam Guard code:") {
                        Some(given) => self.guard_code = Some(given),
                        None => return Some(refused("FAILED (Account Logon Denied)")),
                    }
                }
            }
            Guard::TwoFactor { code } => {
                let given = match self.guard_code.take() {
                    Some(given) => given,
                    None => {
                        say("");
                        say(
                            "Enter the current code from your Steam Guard Mobile Authenticator app",
                        );
                        match self.prompt("Two-factor code:") {
                            Some(given) => given,
                            None => {
                                return Some(refused(
                                    "FAILED (Account logon denied, need two-factor code)",
                                ));
                            }
                        }
                    }
                };
                (given != code).then(|| refused("FAILED (Two-factor code mismatch)"))
            }
            Guard::Mobile { approve_after_ms } => {
                say("This account is protected by a Steam Guard mobile authenticator.");
                say("Please confirm the login in the Steam Mobile app on your phone.");
                say("");
                // Asked again and again until the owner answers (there is no end to it).
                let started = std::time::Instant::now();
                let poll = Duration::from_millis(500);
                loop {
                    crate::stdio::print("Waiting for confirmation...");
                    let approved = approve_after_ms
                        .is_some_and(|ms| started.elapsed() + poll >= Duration::from_millis(ms));
                    std::thread::sleep(match approve_after_ms {
                        Some(ms) if approved => {
                            Duration::from_millis(ms).saturating_sub(started.elapsed())
                        }
                        _ => poll,
                    });
                    if approved {
                        return None;
                    }
                    say("");
                }
            }
        }
    }

    /// A prompt without a line break, answered on stdin; `None` when nothing can answer
    /// (`@NoPromptForPassword 1`, or the input is closed).
    fn prompt(&self, prompt: &str) -> Option<String> {
        crate::stdio::print(prompt);
        if self.no_prompt {
            return None;
        }
        read_line()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
    }

    fn pause(&self) {
        std::thread::sleep(self.step);
    }

    fn app_info_update(&mut self) {
        let cache = self.root.join("appcache/appinfo.vdf");
        // The quirk LinuxGSM works around by deleting the cache first: a cache that exists is
        // not brought up to date.
        if cache.exists() {
            return;
        }
        if let Some(dir) = cache.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&cache, format!("{}\n", self.steam.build));
    }

    fn app_info_print(&mut self, app: &str) -> Result<(), String> {
        if self.login.is_none() {
            return Err("ERROR! Not logged on.".to_owned());
        }
        let cache = self.root.join("appcache/appinfo.vdf");
        let Some(build) = std::fs::read_to_string(&cache)
            .ok()
            .map(|b| b.trim().to_owned())
            .filter(|_| app == APP_ID)
        else {
            say(&format!("No app info for AppID {app} found, requesting..."));
            return Ok(());
        };
        say(&format!(
            "AppID : {APP_ID}, change number : 27463113/0, last change : Tue Nov 26 19:08:55 2024 "
        ));
        for line in app_info_text(&build).lines() {
            say(line);
        }
        Ok(())
    }

    fn app_update(&mut self, app: &str, validate: bool) -> Result<(), String> {
        let Some(login) = self.login.clone() else {
            return Err("ERROR! Not logged on.".to_owned());
        };
        let owns = match &login {
            Login::Anonymous => true,
            Login::Account(account) => account.owns_game,
        };
        if app != APP_ID || !owns {
            return Err(format!(
                "ERROR! Failed to install app '{app}' (No subscription)"
            ));
        }
        let dir = self
            .install_dir
            .clone()
            .ok_or_else(|| "ERROR! No install directory (use force_install_dir)".to_owned())?;
        if self.steam.take(Fault::AppInfoTimeout) {
            return Err("ERROR! Timed out waiting for AppInfo update.".to_owned());
        }
        let build = self.steam.build.clone();
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

        let total = self.steam.download.map_or(TOTAL_BYTES, |d| d.bytes);
        self.progress(0x3, "reconfiguring", 0, 0, 1);
        if validate {
            self.progress(0x5, "verifying install", 0, total, 5);
        }
        let state_error =
            |state: u32| format!("Error! App '{APP_ID}' state is 0x{state:x} after update job.");
        if self.steam.disk_free.is_some_and(|free| free < total) {
            // Preallocation finds too little room: the job stops there.
            self.progress(0x11, "preallocating", 0, total, 1);
            return Err(state_error(0x202));
        }
        self.progress(0x11, "preallocating", 0, total, 2);
        if self.steam.take(Fault::State602) {
            self.progress(0x61, "downloading", 0, total / 3, 3);
            return Err(state_error(0x602));
        }
        match self.steam.download {
            Some(download) => self.download(&dir, download).map_err(|e| {
                format!("ERROR! Failed to install app '{APP_ID}' (Disk write failure: {e})")
            })?,
            None => self.progress(0x61, "downloading", 0, total, 20),
        }
        let build_files = BuildFiles {
            patch: &self.steam.patch,
            signatures_moved: self.steam.signatures_moved,
        };
        lay_out_tree(&dir, &self.platform, &build_files).map_err(|e| {
            format!("ERROR! Failed to install app '{APP_ID}' (Disk write failure: {e})")
        })?;
        self.progress(0x81, "verifying update", 0, total, 4);
        say(&format!(
            " Update state (0x101) committing, progress: 0.00 (0 / {total})"
        ));
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

    /// Writes the download's bytes into the game's `pak01_NNN.vpk` files (256 MiB each, bytes
    /// that do not compress) at its rate, with a progress line each second as steamcmd
    /// prints them. Whole files already there are kept, as the platforms share them.
    fn download(&self, dir: &Path, download: crate::steam::Download) -> std::io::Result<()> {
        use std::io::Write;
        const PAK: u64 = 256 << 20;
        const CHUNK: usize = 1 << 20;
        let game = dir.join("left4dead2");
        std::fs::create_dir_all(&game)?;
        let start = std::time::Instant::now();
        let mut last_line = start;
        let mut state = u64::from(crate::random_u32()) | 1;
        let mut chunk = vec![0u8; CHUNK];
        let mut written = 0u64;
        let line = |done: u64| {
            let percent = done as f64 * 100.0 / download.bytes.max(1) as f64;
            say(&format!(
                " Update state (0x61) downloading, progress: {percent:.2} ({done} / {})",
                download.bytes
            ));
            if let Some(trace) = &self.steam.trace_progress {
                trace_line(trace, percent);
            }
        };
        while written < download.bytes {
            let end = (written + PAK).min(download.bytes);
            let path = game.join(format!("pak01_{:03}.vpk", written / PAK));
            // Content the other platform's pass fetched already is shared: not fetched again.
            if std::fs::metadata(&path).is_ok_and(|m| m.len() == end - written) {
                written = end;
                continue;
            }
            let mut file = std::fs::File::create(&path)?;
            while written < end {
                for word in chunk.chunks_exact_mut(8) {
                    // xorshift64: bytes that do not compress, cheaply.
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    word.copy_from_slice(&state.to_le_bytes());
                }
                let n = (end - written).min(CHUNK as u64) as usize;
                file.write_all(&chunk[..n])?;
                written += n as u64;
                let due = start + Duration::from_secs_f64(written as f64 / download.rate as f64);
                if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                    std::thread::sleep(wait);
                }
                if last_line.elapsed() >= Duration::from_secs(1) {
                    last_line = std::time::Instant::now();
                    line(written);
                }
            }
        }
        line(written);
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
            if let Some(trace) = &self.steam.trace_progress {
                trace_line(trace, percent);
            }
            hold_once();
            std::thread::sleep(self.step);
        }
    }
}

/// How a login ended.
enum LogIn {
    LoggedOn(Account),
    /// Not logged on, and steamcmd goes on with its commands.
    NotLoggedOn,
    /// Refused: steamcmd ends with this status.
    Refused(i32),
}

/// Notes when a progress line was printed (after it was written: on a terminal, when it
/// reached the reader).
fn trace_line(trace: &Path, percent: f64) {
    use std::io::Write;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(trace)
    {
        let _ = writeln!(file, "{now} {percent:.2}");
    }
}

/// Prints the end of a refused login line; steamcmd then ends with status 5.
fn refused(outcome: &str) -> LogIn {
    say(outcome);
    LogIn::Refused(EXIT_LOGIN_FAILED)
}

/// A Steam account id for a name: stable, not zero.
fn account_id(name: &str) -> u32 {
    name.bytes().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    }) | 1
}

/// steamcmd's own settings, where it caches logins.
fn config_vdf(root: &Path) -> PathBuf {
    root.join("config/config.vdf")
}

/// Whether `user` logged in here before and the cached login is still there: its name under
/// `Accounts` and a token under `ConnectCache`.
fn cached_login(root: &Path, user: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(config_vdf(root)) else {
        return false;
    };
    let key = format!("\"{:08x}1\"", account_id(user));
    text.contains(&format!("\"{user}\"")) && text.contains(&key)
}

fn remember_login(root: &Path, user: &str) {
    let id = account_id(user);
    let text = format!(
        "\"InstallConfigStore\"\n{{\n\t\"Software\"\n\t{{\n\t\t\"Valve\"\n\t\t{{\n\t\t\t\"Steam\"\n\t\t\t{{\n\t\t\t\t\"Accounts\"\n\t\t\t\t{{\n\t\t\t\t\t\"{user}\"\n\t\t\t\t\t{{\n\t\t\t\t\t\t\"SteamID\"\t\t\"{}\"\n\t\t\t\t\t}}\n\t\t\t\t}}\n\t\t\t\t\"ConnectCache\"\n\t\t\t\t{{\n\t\t\t\t\t\"{id:08x}1\"\t\t\"{:016x}\"\n\t\t\t\t}}\n\t\t\t}}\n\t\t}}\n\t}}\n}}\n",
        76_561_197_960_265_728u64 + u64::from(id),
        u64::from(crate::random_u32()) << 32 | u64::from(crate::random_u32()),
    );
    let path = config_vdf(root);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(path, text);
}

/// What `app_info_print 222860` prints after its header: the app's VDF, the public branch's
/// build id under `depots` → `branches` → `public`.
fn app_info_text(build: &str) -> String {
    format!(
        "\"{APP_ID}\"\n{{\n\t\"common\"\n\t{{\n\t\t\"name\"\t\t\"Left 4 Dead 2 Dedicated Server\"\n\t\t\"type\"\t\t\"Tool\"\n\t\t\"oslist\"\t\t\"windows,linux\"\n\t}}\n\t\"config\"\n\t{{\n\t\t\"installdir\"\t\t\"Left 4 Dead 2 Dedicated Server\"\n\t}}\n\t\"depots\"\n\t{{\n\t\t\"222861\"\n\t\t{{\n\t\t\t\"config\"\n\t\t\t{{\n\t\t\t\t\"oslist\"\t\t\"linux\"\n\t\t\t}}\n\t\t}}\n\t\t\"branches\"\n\t\t{{\n\t\t\t\"public\"\n\t\t\t{{\n\t\t\t\t\"buildid\"\t\t\"{build}\"\n\t\t\t\t\"timeupdated\"\t\t\"1732648135\"\n\t\t\t}}\n\t\t\t\"previous\"\n\t\t\t{{\n\t\t\t\t\"buildid\"\t\t\"9953145\"\n\t\t\t\t\"description\"\t\t\"previous build\"\n\t\t\t}}\n\t\t}}\n\t}}\n}}\n"
    )
}

/// steamcmd sends its stderr to `~/Steam/logs/stderr.txt` and says so first.
fn redirect_stderr() {
    use std::os::fd::AsRawFd;
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
    let path = home.join("Steam/logs/stderr.txt");
    say(&format!("Redirecting stderr to '{}'", path.display()));
    if let Some(logs) = path.parent() {
        say(&format!("Logging directory: '{}'", logs.display()));
    }
    let opened = path
        .parent()
        .map(std::fs::create_dir_all)
        .unwrap_or(Ok(()))
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        });
    if let Ok(file) = opened {
        // SAFETY: points fd 2 at a file we opened; the file's own descriptor is then closed.
        unsafe { libc::dup2(file.as_raw_fd(), 2) };
    }
}

/// Whether this steamcmd has updated itself: its package folder says so.
fn updated(root: &Path) -> bool {
    root.join("package/steam_cmd_linux.installed").is_file()
        && root.join("linux32/steamclient.so").is_file()
}

/// The first run: fetches the rest of steamcmd (the Steam client library among it, the one
/// game servers load as `~/.steam/sdk32/steamclient.so`), then exits for `steamcmd.sh` to
/// start it again. Worded as the bootstrapper of 2023 on prints it (CM2Walki/CSGO#97).
fn update_self(root: &Path) -> i32 {
    say("[  0%] Downloading update...");
    say("[  0%] Checking for available updates...");
    say("[----] Download complete.");
    for _ in 0..4 {
        say("[----] Extracting package...");
    }
    let written = (|| -> std::io::Result<()> {
        let linux32 = root.join("linux32");
        std::fs::create_dir_all(&linux32)?;
        let partial = linux32.join(".steamclient.so.partial");
        std::fs::write(&partial, STEAMCLIENT)?;
        std::fs::rename(&partial, linux32.join("steamclient.so"))?;
        std::fs::create_dir_all(root.join("package"))?;
        std::fs::write(
            root.join("package/steam_cmd_linux.installed"),
            format!("{VERSION}\n"),
        )
    })();
    if let Err(e) = written {
        say(&format!(
            "[----] !!! Fatal Error: cannot install the update: {e}"
        ));
        return 1;
    }
    for _ in 0..8 {
        say("[----] Installing update...");
    }
    say("[----] Cleaning up...");
    say("[----] Update complete, launching Steamcmd...");
    crate::stdio::print("UpdateUI: skip show logo");
    crate::stdio::flush();
    EXIT_RESTART
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

/// What of the tree differs from build to build.
struct BuildFiles<'a> {
    patch: &'a str,
    signatures_moved: bool,
}

/// Writes the server tree: the game folder with its configs and maps for both platforms,
/// `steam.inf` (the version A2S tells), the game's library (whose functions SourceMod finds
/// by signature) and the platform's launcher (`srcds_run`, the stand-in server, on Linux).
fn lay_out_tree(dir: &Path, platform: &str, build: &BuildFiles<'_>) -> std::io::Result<()> {
    let game = dir.join("left4dead2");
    for sub in ["cfg", "addons", "maps", "bin"] {
        std::fs::create_dir_all(game.join(sub))?;
    }
    std::fs::create_dir_all(dir.join("steamapps"))?;
    std::fs::write(
        game.join("gameinfo.txt"),
        "\"GameInfo\"\n{\n\tgame\t\"Left 4 Dead 2\"\n\tFileSystem\n\t{\n\t\tSteamAppId\t550\n\t}\n}\n",
    )?;
    let digits: String = build.patch.chars().filter(char::is_ascii_digit).collect();
    std::fs::write(
        game.join("steam.inf"),
        format!(
            "ClientVersion={digits}\nServerVersion={digits}\nPatchVersion={}\nProductName=l4d2\nappID=550\n",
            build.patch
        ),
    )?;
    std::fs::write(
        game.join("bin").join(crate::srcds::SERVER_LIBRARY),
        if build.signatures_moved {
            crate::srcds::SIGNATURES_MOVED
        } else {
            "stand-in server library\n"
        },
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

/// The stand-in `linux32/steamcmd`, an i386 program built by `build.rs`.
const STEAMCMD_I386: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steamcmd"));
/// The stand-in `steamcmd.sh`, a bash script shaped like Valve's.
const STEAMCMD_SH: &str = include_str!("../i386/steamcmd.sh");

/// Lays out a steamcmd folder in `dir` as Valve's tarball unpacks (`steamcmd.sh`,
/// `linux32/steamcmd`), with this program and the stand-in server beside them in `linux32/`.
/// It has not updated itself yet: its first run will.
pub fn write_tree(dir: &Path) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let server = exe.with_file_name("srcds_stand_in");
    let linux32 = dir.join("linux32");
    std::fs::create_dir_all(&linux32)?;
    place(&dir.join("steamcmd.sh"), STEAMCMD_SH.as_bytes())?;
    place(&linux32.join("steamcmd"), STEAMCMD_I386)?;
    place(&linux32.join("steamcmd_stand_in"), &std::fs::read(&exe)?)?;
    place(
        &linux32.join("srcds_stand_in"),
        &std::fs::read(&server)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", server.display())))?,
    )
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
