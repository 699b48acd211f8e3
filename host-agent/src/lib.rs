//! `l4d2-agent`: the only program that changes a left4me host. The app runs it over SSH
//! with `--json`; admins run it by hand. `main.rs` only parses arguments and maps errors to
//! exit codes; every command lives here.

pub mod a2s;
pub mod accounts;
pub mod cli;
pub mod console;
pub mod dbus;
pub mod dir;
pub mod error;
pub mod facts;
pub mod fill;
pub mod fsutil;
pub mod host;
pub mod import;
pub mod install;
pub mod layout;
pub mod live;
pub mod lock;
pub mod logs;
pub mod mountinfo;
pub mod mounts;
pub mod output;
pub mod overlay;
pub mod ports;
pub mod pty;
pub mod rcon;
pub mod readiness;
pub mod script;
pub mod server;
pub mod service;
pub mod setup;
pub mod steamcmd;
pub mod sys;
pub mod systemd;
pub mod version;
pub mod workshop;

pub use error::AgentError;

use cli::{Cli, Command, OverlayCommand, PrivilegedAction};
use host::Host;
use left4me_protocol::agent::{DoneReport, OverlayList, ServerList};
use output::Output;
use service::Action;
use std::io::{BufRead, IsTerminal, Read};
use std::path::Path;

use server::MAX_SPEC_BYTES;

/// Whether a command is root's own (it mounts, controls units or prepares the host) or
/// needs root for a part (`delete`, which hands the owner's part to the owner); the others
/// are the owner's, and root runs them as the owner.
fn is_roots(command: &Command) -> bool {
    matches!(
        command,
        Command::Setup { .. }
            | Command::Console { .. }
            | Command::Mount { .. }
            | Command::Umount { .. }
            | Command::Privileged { .. }
            | Command::Delete { .. }
            | Command::Version
    )
}

/// Tells people who could not be asked for a Steam Guard code where it goes.
fn guard_code_hint(err: AgentError, json: bool) -> AgentError {
    match err {
        AgentError::Steam { failure, message }
            if !json
                && matches!(
                    failure,
                    steamcmd::Failure::GuardCodeNeeded(_) | steamcmd::Failure::GuardCodeRejected(_)
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

/// Runs one parsed command line against the real system, writing its answer to `out`.
pub fn run(cli: &Cli, out: &mut Output<'_>) -> Result<(), AgentError> {
    // Run by root, a command that is not root's becomes the owner's before it touches
    // anything: what it writes belongs to the owner, and no link the owner planted is
    // followed as root. (A host without the owner account has nobody to protect from.)
    if host::is_root() && !is_roots(&cli.command) && accounts::lookup(&cli.owner_account).is_ok() {
        accounts::switch_to(&cli.owner_account)?;
    }
    let systemd = &systemd::Systemctl;
    let host = Host::new(&cli.root, &cli.owner_account, &cli.game_account);
    match &cli.command {
        Command::Version => out.message(&version::report()),
        Command::Facts => out.message(&facts::read(&host.layout)),
        Command::Install {
            validate,
            steamcmd,
            steamcmd_url,
            steam_login_file,
            steam_login_stdin,
            silence_timeout,
            approval_timeout,
            check,
        } => {
            let login = match (steam_login_file, steam_login_stdin) {
                (Some(file), _) => Some(install::SteamLogin::from_file(file)?),
                (None, true) => {
                    let mut text = String::new();
                    std::io::stdin()
                        .take(4096)
                        .read_to_string(&mut text)
                        .map_err(|e| AgentError::Invalid(format!("cannot read stdin: {e}")))?;
                    Some(install::SteamLogin::parse(&text)?)
                }
                (None, false) => None,
            };
            let steamcmd = match install::find_steamcmd(steamcmd.as_deref(), &host.layout)? {
                Some(path) => path,
                // None on this host: fetch Valve's (needs internet, or a mirror's URL).
                None => {
                    install::fetch_steamcmd(&install::steamcmd_home(&host.layout), steamcmd_url)?
                }
            };
            if *check {
                let limits = install::Limits {
                    silence: std::time::Duration::from_secs(*silence_timeout),
                    approval: std::time::Duration::from_secs(*approval_timeout),
                };
                let report = install::check(&host.layout, &steamcmd, login.as_ref(), limits)?;
                return out.message(&report);
            }
            // People at a terminal are asked for a Steam Guard code; the app is told one is
            // needed, asks its admin and runs the install again with it.
            let mut ask = |guard, rejected| install::ask_guard_code(guard, rejected);
            let at_terminal = !cli.json && std::io::stderr().is_terminal();
            let options = install::Options {
                login,
                validate: *validate,
                limits: install::Limits {
                    silence: std::time::Duration::from_secs(*silence_timeout),
                    approval: std::time::Duration::from_secs(*approval_timeout),
                },
                ask_code: if at_terminal { Some(&mut ask) } else { None },
            };
            let installed =
                install::install(&host.layout, &steamcmd, options, &mut |event| match event {
                    install::Event::Progress(progress) => out.progress(&progress),
                    install::Event::Notice(notice) => out.notice(&notice),
                })
                .map_err(|e| guard_code_hint(e, cli.json))?;
            out.finish_progress()?;
            out.message(&installed)
        }
        Command::ForgetSteamLogin { steamcmd } => {
            let steamcmd = install::find_steamcmd(steamcmd.as_deref(), &host.layout)?;
            let changed = install::forget_steam_login(steamcmd.as_deref())?;
            out.message(&DoneReport {
                action: "forget-steam-login".to_owned(),
                target: "steamcmd".to_owned(),
                changed,
            })
        }
        Command::Rcon { name, command } => out.message(&service::rcon(&host, name, command)?),
        Command::Logs {
            name,
            lines,
            follow,
            no_follow: _,
        } => {
            let name = server::parse_name(name)?;
            logs::logs(&name, *lines, *follow, &mut |line| out.message(&line))
        }
        Command::Initialize {
            name,
            file,
            rcon_password_stdin,
        } => {
            // With both on stdin, the password is its first line and the spec the rest.
            let password = if *rcon_password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .take(4096)
                    .read_line(&mut line)
                    .map_err(|e| AgentError::Invalid(format!("cannot read stdin: {e}")))?;
                if !line.ends_with('\n') {
                    return Err(AgentError::Invalid(
                        "--rcon-password-stdin: the password must be one line ending in a newline"
                            .to_owned(),
                    ));
                }
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let spec = read_spec_input(file)?;
            out.message(&server::initialize(
                &host,
                name,
                &spec,
                password.as_deref(),
            )?)
        }
        Command::Mount { name } => out.message(&server::mount(&host, name)?),
        Command::Umount { name } => out.message(&server::umount(&host, name)?),
        Command::Start { name } => {
            out.message(&service::control(&host, systemd, Action::Start, name)?)
        }
        Command::Stop { name } => {
            out.message(&service::control(&host, systemd, Action::Stop, name)?)
        }
        Command::Restart { name } => {
            out.message(&service::control(&host, systemd, Action::Restart, name)?)
        }
        Command::Status { name } => out.message(&service::status(&host, systemd, name)?),
        Command::Delete { name } => {
            out.message(&service::control(&host, systemd, Action::Delete, name)?)
        }
        Command::List => out.message(&ServerList {
            servers: service::list(&host, systemd)?,
        }),
        Command::Overlay { command } => match command {
            OverlayCommand::List => out.message(&OverlayList {
                overlays: overlay::list(&host)?,
            }),
            OverlayCommand::Create { name } => out.message(&overlay::create(&host, name)?),
            OverlayCommand::Delete { name } => out.message(&overlay::delete(&host, name)?),
            OverlayCommand::Workshop {
                name,
                items,
                collections,
                api_url,
                parallel,
                max_bytes,
                retries,
                backoff_ms,
            } => {
                let request = workshop::Request {
                    items: items.clone(),
                    collections: collections.clone(),
                    api: api_url.clone(),
                    parallel: *parallel,
                    max_bytes: *max_bytes,
                    retries: *retries,
                    backoff: std::time::Duration::from_millis(*backoff_ms),
                };
                let mut output_error = None;
                let done = workshop::fill(&host, name, &request, &mut |event| {
                    let written = match event {
                        workshop::Event::Progress(p) => out.message(p),
                        workshop::Event::Item(item) => out.message(item),
                    };
                    if let Err(e) = written {
                        output_error.get_or_insert(e);
                    }
                })?;
                if let Some(e) = output_error {
                    return Err(e);
                }
                out.message(&done)
            }
            OverlayCommand::Script {
                name,
                timeout,
                max_bytes,
            } => {
                let mut output_error = None;
                let done = script::fill(
                    &host,
                    name,
                    std::io::stdin().lock(),
                    std::time::Duration::from_secs(*timeout),
                    *max_bytes,
                    &mut |line| {
                        if let Err(e) = out.message(line) {
                            output_error.get_or_insert(e);
                        }
                    },
                )?;
                if let Some(e) = output_error {
                    return Err(e);
                }
                out.message(&done)
            }
            OverlayCommand::Import { name, max_bytes } => out.message(&overlay::import(
                &host,
                name,
                std::io::stdin().lock(),
                *max_bytes,
            )?),
        },
        Command::Fetch { url, file, retries } => out.message(&script::fetch(url, file, *retries)?),
        Command::Setup { authorize_key } => {
            out.message(&setup::setup(systemd, authorize_key.as_deref())?)
        }
        Command::Console { command } => {
            let code = console::run(command)?;
            // The game's own status is the unit's: passed on as it is.
            std::process::exit(code)
        }
        Command::Privileged { action, name } => {
            // What sudo runs works on the host's own layout and accounts, whatever it is told.
            let fixed = cli.root == Path::new(layout::DEFAULT_ROOT)
                && cli.owner_account == accounts::OWNER
                && cli.game_account == accounts::GAME;
            if !fixed {
                return Err(AgentError::Invalid(
                    "privileged: --root, --owner-account and --game-account are not accepted"
                        .to_owned(),
                ));
            }
            let action = match action {
                PrivilegedAction::Start => Action::Start,
                PrivilegedAction::Stop => Action::Stop,
                PrivilegedAction::Restart => Action::Restart,
                PrivilegedAction::Delete => Action::Delete,
            };
            out.message(&service::privileged(systemd, action, name)?)
        }
    }
}

/// The spec's text from a file, or from stdin for `-`.
fn read_spec_input(file: &Path) -> Result<String, AgentError> {
    let mut text = String::new();
    let result = if file == Path::new("-") {
        std::io::stdin()
            .take(MAX_SPEC_BYTES)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(MAX_SPEC_BYTES).read_to_string(&mut text))
    };
    result.map_err(|e| AgentError::Invalid(format!("cannot read spec {}: {e}", file.display())))?;
    Ok(text)
}
