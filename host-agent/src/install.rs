//! `install [--validate]`: installs or updates the base game (app 222860) with steamcmd into
//! `<root>/installation`, streaming steamcmd's progress.
//!
//! steamcmd runs on a terminal, so its progress arrives as it prints it, and its words are
//! read by [`crate::steamcmd`]: success is what it says together with the app manifest it
//! leaves, never its exit status alone, and every failure is classified. Failures that often
//! clear (the network) are retried a few times; a run that prints nothing for too long is
//! ended.
//!
//! Anonymous Linux installs of 222860 fail with "Invalid platform" since November 2024; the
//! known workaround is a pass with `@sSteamCmdForcePlatformType windows`, then the Linux
//! pass. It is used only when a Linux pass is refused so: an install that has the Linux
//! files is updated with the Linux pass alone, and an account that owns the game never
//! needs it. Account credentials and Steam Guard codes reach steamcmd through a
//! `+runscript` file readable only by this account, never through a command line; steamcmd
//! caches the login in its folder, so later runs need only the account name.

use crate::error::AgentError;
use crate::input::{Secret, read_secret};
use crate::layout::Layout;
use crate::output::{Output, done};
use crate::steamcmd::{Failure, Guard, Run, Said};
use left4me_protocol::agent::{
    InstallNotice, InstallNoticeKind, InstallProgress, Installed, UpdateCheck,
};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const APP_ID: &str = "222860";

/// Valve's steamcmd for Linux, fetched when a host has none.
pub const STEAMCMD_URL: &str =
    "https://steamcdn-a.akamaihd.net/client/installer/steamcmd_linux.tar.gz";

/// The largest steamcmd download accepted (the real one is about 3 MB).
const MAX_STEAMCMD_BYTES: u64 = 64 << 20;

/// Where a system-wide steamcmd is looked for (Debian's package), after the fetched one.
pub const SYSTEM_STEAMCMD: &[&str] = &["/usr/games/steamcmd", "/usr/bin/steamcmd"];

// `install`'s command line (its help is the subcommand's, in `cli`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check every file of the install, not only what changed
    #[arg(long)]
    pub validate: bool,
    /// steamcmd to use (default: the usual places, then PATH, else it is fetched)
    #[arg(long, value_name = "PATH")]
    pub steamcmd: Option<PathBuf>,
    /// Where to fetch steamcmd from when this host has none
    #[arg(long, value_name = "URL", default_value = STEAMCMD_URL)]
    pub steamcmd_url: String,
    /// Log in with a Steam account that owns L4D2: a file (mode 0600) with the account
    /// name on the first line, the password on the second (none once steamcmd has the
    /// login cached on this host) and a Steam Guard code on the third, if Steam asked
    /// for one. At a terminal the agent asks for the code itself
    #[arg(long, value_name = "FILE", conflicts_with = "steam_login_stdin")]
    pub steam_login_file: Option<PathBuf>,
    /// Read the Steam login from stdin, in the lines of --steam-login-file
    #[arg(long)]
    pub steam_login_stdin: bool,
    /// Only say whether Steam has a newer public build than the installed one; install
    /// nothing (steamcmd's app-info cache is cleared first: it returns stale build ids)
    #[arg(long, conflicts_with = "validate")]
    pub check: bool,
    /// End steamcmd when it prints nothing for this long
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub silence_timeout: u64,
    /// How long a login waits for its approval in the Steam app
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub approval_timeout: u64,
}

/// `install`: takes the Steam login from a file or stdin, finds steamcmd (or fetches it),
/// then checks for an update or installs, streaming progress and notices to `out`.
pub fn command(
    layout: &Layout,
    args: &Args,
    json: bool,
    out: &mut Output<'_>,
) -> Result<(), AgentError> {
    let login = match (&args.steam_login_file, args.steam_login_stdin) {
        (Some(file), _) => Some(SteamLogin::from_file(file)?),
        (None, true) => Some(SteamLogin::parse(&read_secret(Secret::Whole)?)?),
        (None, false) => None,
    };
    let steamcmd = match find_steamcmd(args.steamcmd.as_deref(), layout)? {
        Some(path) => path,
        // None on this host: fetch Valve's (needs internet, or a mirror's URL).
        None => fetch_steamcmd(&steamcmd_home(layout), &args.steamcmd_url)?,
    };
    let limits = Limits {
        silence: Duration::from_secs(args.silence_timeout),
        approval: Duration::from_secs(args.approval_timeout),
    };
    if args.check {
        return out.message(&check(layout, &steamcmd, login.as_ref(), limits)?);
    }
    // People at a terminal are asked for a Steam Guard code; the app is told one is
    // needed, asks its admin and runs the install again with it.
    let mut ask = |guard, rejected| ask_guard_code(guard, rejected);
    let at_terminal = !json && std::io::stderr().is_terminal();
    let options = Options {
        login,
        validate: args.validate,
        limits,
        ask_code: if at_terminal { Some(&mut ask) } else { None },
    };
    let installed = install(layout, &steamcmd, options, &mut |event| match event {
        Event::Progress(progress) => out.progress(&progress),
        Event::Notice(notice) => out.notice(&notice),
    })
    .map_err(|e| guard_code_hint(e, json))?;
    out.finish_progress()?;
    out.message(&installed)
}

/// Tells people who could not be asked for a Steam Guard code where it goes.
fn guard_code_hint(err: AgentError, json: bool) -> AgentError {
    match err {
        AgentError::Steam { failure, message }
            if !json
                && matches!(
                    failure,
                    Failure::GuardCodeNeeded(_) | Failure::GuardCodeRejected(_)
                ) =>
        {
            AgentError::Steam {
                failure,
                message: format!(
                    "{message}: give it as the third line of the Steam login and run the \
                     install again"
                ),
            }
        }
        other => other,
    }
}

/// `forget-steam-login`: removes the login cached by the steamcmd found here.
pub fn forget_command(
    layout: &Layout,
    steamcmd: Option<&Path>,
    out: &mut Output<'_>,
) -> Result<(), AgentError> {
    let steamcmd = find_steamcmd(steamcmd, layout)?;
    let changed = forget_steam_login(steamcmd.as_deref())?;
    out.message(&done("forget-steam-login", &"steamcmd", changed))
}

/// A Steam account that owns the game.
#[derive(Clone)]
pub struct SteamLogin {
    pub user: String,
    /// Absent when steamcmd has this account's login cached on this host.
    pub password: Option<String>,
    /// A Steam Guard code, for a login from a host the account has not approved yet.
    pub guard_code: Option<String>,
}

impl SteamLogin {
    /// Reads the account name from the first line, the password from the second (which may
    /// be empty or missing when the login is cached here) and a Steam Guard code from the
    /// third.
    pub fn parse(text: &str) -> Result<SteamLogin, AgentError> {
        let mut lines = text.lines().map(str::trim);
        let user = lines.next().unwrap_or_default();
        let password = lines.next().unwrap_or_default();
        let code = lines.next().unwrap_or_default();
        if user.is_empty() {
            return Err(AgentError::Invalid(
                "Steam login: give the account name on the first line, the password on the second (none if this host has the login cached) and a Steam Guard code on the third (if Steam asked for one)"
                    .to_owned(),
            ));
        }
        let plain = |s: &str| {
            !s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '"')
        };
        if !plain(user) || !plain(password) || !plain(code) {
            return Err(AgentError::Invalid(
                "Steam login: the account name, password and code may not contain spaces, quotes or control characters"
                    .to_owned(),
            ));
        }
        let given = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Ok(SteamLogin {
            user: user.to_owned(),
            password: given(password),
            guard_code: given(code),
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
    let target = crate::fill::FillTarget {
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

/// What an install tells as it goes.
pub enum Event {
    Progress(InstallProgress),
    Notice(InstallNotice),
}

/// How long steamcmd may go without printing anything, and how long a login may wait for
/// the owner's approval in the Steam app.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub silence: Duration,
    pub approval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            silence: Duration::from_secs(600),
            approval: Duration::from_secs(300),
        }
    }
}

/// How an install goes.
pub struct Options<'a> {
    pub login: Option<SteamLogin>,
    pub validate: bool,
    pub limits: Limits,
    /// Asks whoever runs the agent for a Steam Guard code (people at a terminal); `None`
    /// when nobody can answer, and the need is reported as a failure instead. Its argument
    /// says whether a code given before was refused.
    pub ask_code: Option<&'a mut dyn FnMut(Guard, bool) -> Option<String>>,
}

/// Waits before each retry of a failure that often clears.
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(3),
    Duration::from_secs(10),
    Duration::from_secs(30),
];

/// Runs the install; `event` receives progress and notices as they come.
pub fn install(
    layout: &Layout,
    steamcmd: &Path,
    options: Options<'_>,
    event: &mut dyn FnMut(Event) -> Result<(), AgentError>,
) -> Result<Installed, AgentError> {
    let Options {
        mut login,
        validate,
        limits,
        mut ask_code,
    } = options;
    if let Some(login) = &login
        && login.password.is_none()
        && !has_cached_login(steamcmd, &login.user)
    {
        return Err(AgentError::Invalid(format!(
            "Steam login: steamcmd on this host has no saved login for '{}'; give the password too",
            login.user
        )));
    }
    let _lock = install_lock(layout)?;
    let before = installed_build(layout);
    let current = layout.installation();
    remove_unused(layout);
    let dir = build_folder(layout, &current, event)?;
    // The Linux pass alone first; the Windows pass is added only if Steam asks for it.
    let mut plan = vec!["linux"];
    let mut step = 0;
    let mut pass = 0;
    let mut passes = 1;
    while step < plan.len() {
        let platform = plan[step];
        pass += 1;
        let outcome = run_with_retries(
            steamcmd,
            layout,
            &dir,
            login.as_ref(),
            validate,
            limits,
            (pass, passes, platform),
            event,
        );
        match outcome {
            Ok(()) => step += 1,
            Err(AgentError::Steam {
                failure: Failure::InvalidPlatform,
                ..
            }) if login.is_none() && plan.len() == 1 => {
                plan = vec!["windows", "linux"];
                step = 0;
                passes = pass + 2;
                event(Event::Notice(InstallNotice {
                    kind: InstallNoticeKind::PlatformWorkaround,
                    message: "Steam refuses anonymous Linux-only installs: fetching the Windows \
                              files first, then the Linux ones"
                        .to_owned(),
                }))?;
            }
            Err(AgentError::Steam {
                failure: Failure::GuardCodeNeeded(guard) | Failure::GuardCodeRejected(guard),
                message,
            }) if login.is_some() && ask_code.is_some() => {
                let rejected = login.as_ref().is_some_and(|l| l.guard_code.is_some());
                let ask = ask_code.as_mut().expect("checked above");
                let Some(code) = ask(guard, rejected) else {
                    return Err(AgentError::Steam {
                        failure: if rejected {
                            Failure::GuardCodeRejected(guard)
                        } else {
                            Failure::GuardCodeNeeded(guard)
                        },
                        message,
                    });
                };
                if let Some(login) = login.as_mut() {
                    login.guard_code = Some(code);
                }
                pass -= 1;
            }
            Err(e) => return Err(e),
        }
    }
    let build = manifest_value(&dir, "buildid").ok_or_else(|| {
        AgentError::failed(
            "steamcmd reported success but left no app manifest",
            format!(
                "{} has no steamapps/appmanifest_{APP_ID}.acf",
                dir.display()
            ),
        )
    })?;
    check_launchers(&dir)?;
    let steam_client = provide_steam_client(&dir, steamcmd)?;
    let pending = dir != current;
    if pending {
        switch_to_next(layout)?;
    }
    Ok(Installed {
        changed: before.as_deref() != Some(build.as_str()),
        previous_build: before,
        build,
        steam_client,
        pending,
    })
}

/// One install at a time on a host: a second one is refused as busy.
fn install_lock(layout: &Layout) -> Result<crate::lock::Lock, AgentError> {
    let dir = if layout.installs().is_dir() {
        layout.installs()
    } else {
        let home = layout.home();
        crate::fsutil::create_dir(&home, 0o700)
            .map_err(crate::error::io_context("create", &home))?;
        home
    };
    let path = dir.join(".install.lock");
    crate::lock::Lock::try_acquire(&path).map_err(|e| match e {
        crate::lock::LockError::Busy => AgentError::Busy {
            what: "install",
            name: "the game".to_owned(),
        },
        crate::lock::LockError::Io(e) => crate::error::io_context("lock", &path)(e),
    })
}

/// The install folders mounted servers run from, as the mount table names them: each
/// `idmap/_installation` bind's folder inside its file system.
fn mounted_installs(layout: &Layout) -> Vec<PathBuf> {
    match installation_binds(layout) {
        Some(binds) => binds.into_iter().map(|(_, root)| root).collect(),
        // Unknown: every install counts as in use.
        None => vec![PathBuf::new()],
    }
}

/// Each mounted server's `idmap/_installation` bind: where it is, and the install folder it
/// binds, named inside its file system (without a leading `/`). `None` when the mount table
/// cannot be read.
pub fn installation_binds(layout: &Layout) -> Option<Vec<(PathBuf, PathBuf)>> {
    let table = crate::mountinfo::read().ok()?;
    let runtimes = layout.runtimes();
    let binds = table
        .into_iter()
        .filter(|m| {
            m.target.starts_with(&runtimes)
                && m.target.file_name()
                    == Some(std::ffi::OsStr::new(crate::layout::INSTALLATION_IDMAP))
        })
        .map(|m| {
            let root = m.root.strip_prefix("/").unwrap_or(&m.root).to_path_buf();
            (m.target, root)
        })
        .collect();
    Some(binds)
}

/// Whether a mounted server runs from `dir`. A bind's folder is named from the root of its
/// file system, which may lie below `/` (the state root on a file system of its own) or
/// above it (a container's root in a folder of the host's): one path ends the other.
pub fn in_use(dir: &Path, mounted: &[PathBuf]) -> bool {
    let dir = dir.strip_prefix("/").unwrap_or(dir);
    mounted
        .iter()
        .any(|root| root.as_os_str().is_empty() || dir.ends_with(root) || root.ends_with(dir))
}

/// Where this install runs steamcmd. Into the current install while no server has it
/// mounted; else into `installs/next`, a copy of it, for the running servers' trees must
/// not change under them (overlayfs leaves that undefined).
fn build_folder(
    layout: &Layout,
    current: &Path,
    event: &mut dyn FnMut(Event) -> Result<(), AgentError>,
) -> Result<PathBuf, AgentError> {
    let io = crate::error::io_context;
    let installs = layout.installs();
    let next = installs.join("next");
    if !in_use(current, &mounted_installs(layout)) {
        // A build left beside an install that nothing runs from any more is stale.
        if next.is_dir() {
            std::fs::remove_dir_all(&next).map_err(io("remove", &next))?;
        }
        crate::fsutil::create_dir(current, 0o755).map_err(io("create", current))?;
        return Ok(current.to_path_buf());
    }
    if !installs.is_dir() {
        return Err(AgentError::InUse(
            "running servers have the game mounted, and this host's set-up predates updates \
             built beside it: stop the servers, or run `l4d2-agent setup` again (in the app: \
             set the host up again) and update then"
                .to_owned(),
        ));
    }
    if next.is_dir() {
        // An earlier update that did not finish: steamcmd takes it from where it stopped.
        return Ok(next);
    }
    let (_, bytes) = crate::fsutil::usage(current);
    let free = crate::fsutil::free_bytes(&installs).unwrap_or(u64::MAX);
    if free < bytes {
        return Err(AgentError::failed(
            "not enough disk space to build the update beside the running install",
            format!(
                "{} free in {}, and a copy of the install takes {}",
                left4me_protocol::units::human_bytes(free),
                installs.display(),
                left4me_protocol::units::human_bytes(bytes)
            ),
        ));
    }
    event(Event::Notice(InstallNotice {
        kind: InstallNoticeKind::BuildingBeside,
        message: format!(
            "servers run from the install: the update is built beside it (a copy of {} first), \
             and each server switches to it at its next start",
            left4me_protocol::units::human_bytes(bytes)
        ),
    }))?;
    let copy = installs.join("next.copy");
    if copy.exists() {
        std::fs::remove_dir_all(&copy).map_err(io("remove", &copy))?;
    }
    let status = Command::new("cp")
        .args(["-a", "--reflink=auto", "--no-target-directory"])
        .arg(current)
        .arg(&copy)
        .status()
        .map_err(|e| AgentError::failed("cannot run cp", e))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&copy);
        return Err(AgentError::failed(
            format!("cannot copy {} to {}", current.display(), copy.display()),
            format!("cp exited with {status}"),
        ));
    }
    std::fs::rename(&copy, &next).map_err(io("rename", &copy))?;
    Ok(next)
}

/// Makes the finished `installs/next` the install new mounts use: `installs/<n>`, named by
/// `installs/current`. Servers that run keep the folder they mounted.
fn switch_to_next(layout: &Layout) -> Result<(), AgentError> {
    let io = crate::error::io_context;
    let installs = layout.installs();
    let highest = std::fs::read_dir(&installs)
        .map_err(io("read", &installs))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .chain(crate::layout::current_install(&installs))
        .max()
        .unwrap_or(0);
    let n = highest + 1;
    let next = installs.join("next");
    let target = installs.join(n.to_string());
    std::fs::rename(&next, &target).map_err(io("rename", &next))?;
    let pointer = installs.join(crate::layout::CURRENT_INSTALL);
    crate::fsutil::write_atomic(&pointer, format!("{n}\n").as_bytes(), 0o644)
        .map_err(io("write", &pointer))
}

/// Removes the installs no mounted server runs from and new mounts will not use: older
/// builds in `installs/`, and the first install's files once it is not current. Skipped
/// while an install runs (it may be switching). Run as the owner, whose folders they are.
pub fn remove_unused_installs(layout: &Layout) {
    if !layout.installs().is_dir() {
        return;
    }
    if let Ok(_lock) = install_lock(layout) {
        remove_unused(layout);
    }
}

/// How long after a switch the install it replaced is kept whatever the mount table says:
/// a mount that read `installs/current` just before the switch may not have bound it yet.
const SWITCH_GRACE: Duration = Duration::from_secs(10);

/// [`remove_unused_installs`] for the install that holds the lock.
fn remove_unused(layout: &Layout) {
    let installs = layout.installs();
    if !installs.is_dir() {
        return;
    }
    let switched = std::fs::symlink_metadata(installs.join(crate::layout::CURRENT_INSTALL))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| at.elapsed().ok());
    if switched.is_some_and(|ago| ago < SWITCH_GRACE) {
        return;
    }
    let current = layout.installation();
    let mut mounted = mounted_installs(layout);
    // An open rollout still needs every build it moves servers from or to.
    if let Some(rollout) = crate::layout::read_rollout(&installs)
        && rollout.state.is_open()
    {
        let numbers = rollout.servers.iter().map(|s| s.from);
        for n in numbers.chain([rollout.from, rollout.to]) {
            mounted.push(layout.install(n));
        }
    }
    if let Ok(entries) = std::fs::read_dir(&installs) {
        for entry in entries.flatten() {
            let path = entry.path();
            let numbered = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok());
            if numbered && path != current && !in_use(&path, &mounted) {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
    let first = layout.first_installation();
    if first != current && !in_use(&first, &mounted) {
        // Its folder is root's to remove; its files are the owner's.
        if let Ok(entries) = std::fs::read_dir(&first) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = match entry.file_type() {
                    Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                    _ => std::fs::remove_file(&path),
                };
            }
        }
    }
}

/// Asks Steam for the public build of the game without installing anything, and compares
/// it with the installed one. steamcmd keeps app info in a cache that it does not always
/// bring up to date (LinuxGSM deletes it for the same reason), so the cache goes first.
pub fn check(
    layout: &Layout,
    steamcmd: &Path,
    login: Option<&SteamLogin>,
    limits: Limits,
) -> Result<UpdateCheck, AgentError> {
    for cache in app_info_caches(steamcmd) {
        match std::fs::remove_file(&cache) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(crate::error::io_context("remove", &cache)(e)),
        }
    }
    let script = match login {
        Some(login) => Some(RunScript::new(layout, login)?),
        None => None,
    };
    let mut args = words(SETTINGS);
    args.extend(login_args(script.as_ref()));
    args.extend(
        ["+app_info_update", "1", "+app_info_print", APP_ID, "+quit"]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    let code_given = login.is_some_and(|l| l.guard_code.is_some());
    let (run, status, _) = watch(steamcmd, &args, code_given, limits, &mut |_| Ok(()))?;
    drop(script);
    let Some(public_build) = run.public_build.clone() else {
        let failure = run
            .finish(code_given, status.code())
            .unwrap_or(Failure::Other(
                "steamcmd printed no public build for the game".to_owned(),
            ));
        return Err(steam_error(failure, &run, &layout.installation(), 0));
    };
    let installed_build = installed_build(layout);
    Ok(UpdateCheck {
        update_available: installed_build.as_deref() != Some(public_build.as_str()),
        installed_build,
        public_build,
    })
}

/// Where steamcmd caches app info.
fn app_info_caches(steamcmd: &Path) -> Vec<PathBuf> {
    steam_folders(Some(steamcmd))
        .into_iter()
        .map(|d| d.join("appcache/appinfo.vdf"))
        .collect()
}

/// What every steamcmd run here is told first: stop at the first failed command, and never
/// wait at a prompt for a password (a prompt nobody can answer would hang the run).
const SETTINGS: &[&str] = &[
    "+@ShutdownOnFailedCommand",
    "1",
    "+@NoPromptForPassword",
    "1",
];

fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// The login: the account's runscript, else anonymous.
fn login_args(script: Option<&RunScript>) -> Vec<String> {
    match script {
        Some(script) => vec!["+runscript".to_owned(), script.path.display().to_string()],
        None => words(&["+login", "anonymous"]),
    }
}

/// One pass, run again after a failure that often clears (a bounded number of times).
#[allow(clippy::too_many_arguments)]
fn run_with_retries(
    steamcmd: &Path,
    layout: &Layout,
    dir: &Path,
    login: Option<&SteamLogin>,
    validate: bool,
    limits: Limits,
    (pass, passes, platform): (u32, u32, &str),
    event: &mut dyn FnMut(Event) -> Result<(), AgentError>,
) -> Result<(), AgentError> {
    let mut delays = RETRY_DELAYS.iter();
    loop {
        let script = match login {
            Some(login) => Some(RunScript::new(layout, login)?),
            None => None,
        };
        // The install folder goes before the login, as steamcmd asks.
        let mut args = words(SETTINGS);
        args.extend(words(&[
            "+@sSteamCmdForcePlatformType",
            platform,
            "+force_install_dir",
        ]));
        args.push(dir.display().to_string());
        args.extend(login_args(script.as_ref()));
        args.extend(["+app_update".to_owned(), APP_ID.to_owned()]);
        if validate {
            args.push("validate".to_owned());
        }
        args.push("+quit".to_owned());
        let code_given = login.is_some_and(|l| l.guard_code.is_some());
        let result = run_pass(
            steamcmd,
            dir,
            &args,
            code_given,
            limits,
            &mut |said| match said {
                Said::Progress {
                    code,
                    state,
                    percent,
                    done,
                    total,
                } => event(Event::Progress(InstallProgress {
                    pass,
                    passes,
                    platform: platform.to_owned(),
                    state_code: code,
                    state,
                    percent,
                    bytes_done: done,
                    bytes_total: total,
                })),
                other => notice_for(&other).map_or(Ok(()), |n| event(Event::Notice(n))),
            },
        );
        drop(script);
        match result {
            Err(AgentError::Steam { failure, message }) if failure.is_transient() => {
                let Some(delay) = delays.next() else {
                    return Err(AgentError::Steam { failure, message });
                };
                event(Event::Notice(InstallNotice {
                    kind: InstallNoticeKind::Retrying,
                    message: format!("{message}; trying again in {} s", delay.as_secs()),
                }))?;
                std::thread::sleep(*delay);
            }
            other => return other,
        }
    }
}

/// Asks the person at this terminal for a Steam Guard code (on `/dev/tty`, whatever stdin
/// carries); `None` when there is no terminal or nothing was typed.
pub fn ask_guard_code(guard: Guard, rejected: bool) -> Option<String> {
    use std::io::{BufRead, Write};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let mut out = &tty;
    let asked = match (guard, rejected) {
        (Guard::Email, false) => "Steam Guard: Steam e-mailed a code to the account's owner.",
        (Guard::TwoFactor, false) => "Steam Guard: the account uses the Steam app's authenticator.",
        (_, true) => "Steam Guard refused that code.",
    };
    write!(out, "{asked}\nSteam Guard code: ").ok()?;
    out.flush().ok()?;
    let mut line = String::new();
    std::io::BufReader::new(&tty).read_line(&mut line).ok()?;
    let code = line.trim();
    (!code.is_empty() && !code.chars().any(|c| c.is_whitespace() || c.is_control()))
        .then(|| code.to_owned())
}

/// What people are told about a step steamcmd announced.
fn notice_for(said: &Said) -> Option<InstallNotice> {
    match said {
        Said::WaitingForConfirmation => Some(InstallNotice {
            kind: InstallNoticeKind::WaitingForApproval,
            message: "waiting for approval in the Steam app: the account's owner must confirm \
                      this login on their phone"
                .to_owned(),
        }),
        Said::LoggedOn => Some(InstallNotice {
            kind: InstallNoticeKind::Approved,
            message: "the login was approved".to_owned(),
        }),
        _ => None,
    }
}

/// Where steamcmd keeps its own state (settings, cached logins, app info): its own folder
/// (Valve's tarball) or the Steam folders of this account's home (Debian's package).
fn steam_folders(steamcmd: Option<&Path>) -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    steamcmd
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .into_iter()
        .chain(home.iter().flat_map(|h| {
            [
                h.join("Steam"),
                h.join(".steam"),
                h.join(".steam/steam"),
                h.join(".local/share/Steam"),
            ]
        }))
        .collect()
}

/// Where steamcmd keeps its settings and cached logins.
fn steamcmd_configs(steamcmd: Option<&Path>) -> Vec<PathBuf> {
    steam_folders(steamcmd)
        .into_iter()
        .map(|d| d.join("config/config.vdf"))
        .collect()
}

/// Whether steamcmd has a login of `user` cached.
pub fn has_cached_login(steamcmd: &Path, user: &str) -> bool {
    steamcmd_configs(Some(steamcmd))
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .any(|text| text.contains(&format!("\"{user}\"")) && text.contains("\"ConnectCache\""))
}

/// Removes every login steamcmd cached on this host (its settings file, which holds them);
/// whether there was one.
pub fn forget_steam_login(steamcmd: Option<&Path>) -> Result<bool, AgentError> {
    let mut forgot = false;
    for config in steamcmd_configs(steamcmd) {
        let Ok(text) = std::fs::read_to_string(&config) else {
            continue;
        };
        if !text.contains("\"ConnectCache\"") && !text.contains("\"Accounts\"") {
            continue;
        }
        std::fs::remove_file(&config).map_err(crate::error::io_context("remove", &config))?;
        forgot = true;
    }
    Ok(forgot)
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
fn provide_steam_client(install: &Path, steamcmd: &Path) -> Result<bool, AgentError> {
    let Some(library) = steam_client_of(steamcmd) else {
        return Ok(false);
    };
    let bytes = std::fs::read(&library).map_err(crate::error::io_context("read", &library))?;
    let target = install.join(STEAM_CLIENT_IN_INSTALL);
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

/// Runs steamcmd once and reads what it says; `said` gets every line that means something.
/// Success is steamcmd's word and a fully installed app manifest, whatever its exit status.
fn run_pass(
    steamcmd: &Path,
    install_dir: &Path,
    args: &[String],
    code_given: bool,
    limits: Limits,
    said: &mut dyn FnMut(Said) -> Result<(), AgentError>,
) -> Result<(), AgentError> {
    let (run, status, bytes_total) = watch(steamcmd, args, code_given, limits, said)
        .map_err(|e| with_install_dir(e, install_dir))?;
    if let Some(failure) = run.finish(code_given, status.code()) {
        return Err(steam_error(failure, &run, install_dir, bytes_total));
    }
    let failed = |why: String| AgentError::failed("steamcmd failed", why);
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

/// A failure found while steamcmd ran, explained again with the install's folder (for the
/// free space a full disk reports).
fn with_install_dir(err: AgentError, install_dir: &Path) -> AgentError {
    match err {
        AgentError::Steam {
            failure: failure @ Failure::DiskFull { .. },
            ..
        } => steam_error(failure, &Run::default(), install_dir, 0),
        other => other,
    }
}

/// Runs steamcmd on a terminal and reads it as it goes; ends it at a prompt nobody can
/// answer, after too long a silence, or when an approval in the Steam app does not come.
/// Gives what it said, its exit status and the largest download it announced.
fn watch(
    steamcmd: &Path,
    args: &[String],
    code_given: bool,
    limits: Limits,
    said: &mut dyn FnMut(Said) -> Result<(), AgentError>,
) -> Result<(Run, std::process::ExitStatus, u64), AgentError> {
    let mut run = Run::default();
    let mut waiting_since: Option<Instant> = None;
    let mut bytes_total = 0u64;
    let stop = |failure: Failure, run: &Run| steam_error(failure, run, Path::new("/"), 0);
    let status = crate::pty::run(Command::new(steamcmd).args(args), &mut |printed| {
        use crate::pty::Printed;
        let meaning = match printed {
            Printed::Line(line) => Some(run.line(line)),
            Printed::Partial(text) => run.partial(text),
            Printed::Quiet(quiet) => {
                if let Some(since) = waiting_since {
                    if since.elapsed() > limits.approval {
                        return Err(stop(Failure::GuardNotConfirmed, &run));
                    }
                } else if quiet > limits.silence {
                    return Err(stop(
                        Failure::Silent {
                            seconds: quiet.as_secs(),
                        },
                        &run,
                    ));
                }
                None
            }
        };
        match meaning {
            // A prompt nobody can answer here: end at once rather than wait.
            Some(Said::GuardPrompt(_)) => {
                let failure = run
                    .verdict(code_given)
                    .unwrap_or(Failure::GuardCodeNeeded(Guard::Email));
                Err(stop(failure, &run))
            }
            Some(Said::PasswordPrompt) => Err(stop(
                Failure::LoginRefused("steamcmd asked for a password".to_owned()),
                &run,
            )),
            Some(Said::WaitingForConfirmation) => {
                if waiting_since.is_none() {
                    waiting_since = Some(Instant::now());
                    said(Said::WaitingForConfirmation)?;
                }
                Ok(())
            }
            Some(Said::LoggedOn) if waiting_since.take().is_some() => said(Said::LoggedOn),
            Some(progress @ Said::Progress { .. }) => {
                if let Said::Progress { total, .. } = &progress {
                    bytes_total = bytes_total.max(*total);
                }
                said(progress)
            }
            _ => Ok(()),
        }
    })?;
    Ok((run, status, bytes_total))
}

/// A failure with what this host adds to steamcmd's words: the space there is and is
/// needed, and the last lines steamcmd printed when its words do not say enough.
fn steam_error(failure: Failure, run: &Run, install_dir: &Path, bytes_total: u64) -> AgentError {
    let mut message = failure.explain();
    match &failure {
        Failure::DiskFull { .. } => {
            if let Some(free) = crate::fsutil::free_bytes(install_dir) {
                message.push_str(&format!(
                    ": {} free in {}",
                    left4me_protocol::units::human_bytes(free),
                    install_dir.display()
                ));
                if bytes_total > 0 {
                    message.push_str(&format!(
                        ", and the game needs {}",
                        left4me_protocol::units::human_bytes(bytes_total)
                    ));
                }
            }
        }
        Failure::Network(_)
        | Failure::Silent { .. }
        | Failure::CannotRun(_)
        | Failure::Other(_)
            if !run.last.is_empty() =>
        {
            message.push_str(&format!("; its last lines: {}", run.last_lines()));
        }
        _ => {}
    }
    AgentError::Steam { failure, message }
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

/// The build id steamcmd recorded for the base install.
pub fn installed_build(layout: &Layout) -> Option<String> {
    manifest_value(&layout.installation(), "buildid")
}

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
/// removed when dropped. (steamcmd echoes it; [`crate::steamcmd`] keeps that line out of
/// everything the agent shows.)
struct RunScript {
    path: PathBuf,
}

impl RunScript {
    fn new(layout: &Layout, login: &SteamLogin) -> Result<RunScript, AgentError> {
        let dir = layout.home().join(".steam-login");
        crate::fsutil::create_dir(&dir, 0o700).map_err(crate::error::io_context("create", &dir))?;
        let path = dir.join(format!("login-{}.txt", std::process::id()));
        let mut line = format!("login {}", login.user);
        if let Some(password) = &login.password {
            line.push(' ');
            line.push_str(password);
            if let Some(code) = &login.guard_code {
                line.push(' ');
                line.push_str(code);
            }
        }
        line.push('\n');
        crate::fsutil::write_atomic(&path, line.as_bytes(), 0o600)
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
    fn an_install_is_in_use_however_the_mount_table_roots_its_file_system() {
        let dir = Path::new("/var/lib/left4me/installs/3");
        let seen = |root: &str| in_use(dir, &[PathBuf::from(root)]);
        assert!(seen("var/lib/left4me/installs/3"));
        // The state root on a file system of its own.
        assert!(seen("installs/3"));
        // A container whose root is a folder of the host's.
        assert!(seen("srv/machines/h2/var/lib/left4me/installs/3"));
        assert!(!seen("var/lib/left4me/installs/4"));
        assert!(!seen("var/lib/left4me/installation"));
        // Unknown: in use.
        assert!(seen(""));
        assert!(!in_use(dir, &[]));
    }

    #[test]
    fn logins_are_plain_lines_and_the_password_may_be_left_to_the_cache() {
        let login = SteamLogin::parse("admin\nhunter2\n").unwrap();
        assert_eq!(
            (
                login.user.as_str(),
                login.password.as_deref(),
                login.guard_code
            ),
            ("admin", Some("hunter2"), None)
        );
        let login = SteamLogin::parse("admin\nhunter2\n4H7KQ\n").unwrap();
        assert_eq!(login.guard_code.as_deref(), Some("4H7KQ"));
        let cached = SteamLogin::parse("admin\n").unwrap();
        assert_eq!(cached.password, None);
        assert!(SteamLogin::parse("\n").is_err());
        assert!(SteamLogin::parse("admin\npass word\n").is_err());
        assert!(SteamLogin::parse("admin\n\"x\n").is_err());
    }
}
