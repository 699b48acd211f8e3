//! `l4d2-agent`: the only program that changes a left4me host. The app runs it over SSH
//! with `--json`; admins run it by hand. `main.rs` only parses arguments and maps errors to
//! exit codes; every command lives here, and [`run`] hands each to its module.
//!
//! Modules depend on each other one way: in this list, each imports only modules named
//! before it.
//! - leaves: `layout`, `mountinfo`, `dir`, `fsutil`, `lock`, `live`, `ports`, `a2s`, `rcon`,
//!   `dbus`, `steamcmd`, `timing`; then `error`, `sys`, `systemd`, `output`, `names`, `input`,
//!   `accounts`, `pty`, `mounts`, `readiness`, `version`;
//! - `host`: the host a command acts on (`Host`, `is_root`, the mount table);
//! - `fill`: every change of an overlay's content, whole or not at all; `import` builds on it;
//! - `events`, the host's outbox, and `notify`, which sends what is worth telling;
//! - the commands: `console`, `logs`, `setup`, `install`, `script`, `workshop`, `facts`,
//!   `server`, `overlay` and `service` (the last two ask `server` about declared servers),
//!   `hooks` (what systemd runs when a game ends), `watch` (finding hung servers),
//!   `backup` (a server's own files, kept and put back), `rollout` (a game update moved
//!   across the servers, a canary first, or their waiting changes applied the same way);
//! - `cli`, the command line (naming `install`'s, `workshop`'s and `service`'s argument
//!   types), and [`run`].

pub mod a2s;
pub mod accounts;
pub mod backup;
pub mod cli;
pub mod console;
pub mod dbus;
pub mod dir;
pub mod drain;
pub mod error;
pub mod events;
pub mod facts;
pub mod fill;
pub mod fsutil;
pub mod hooks;
pub mod host;
pub mod import;
pub mod input;
pub mod install;
pub mod layout;
pub mod limits;
pub mod live;
pub mod lock;
pub mod logs;
pub mod mountinfo;
pub mod mounts;
pub mod names;
pub mod notify;
pub mod output;
pub mod overlay;
pub mod ports;
pub mod pty;
pub mod rcon;
pub mod readiness;
pub mod rollout;
pub mod schedule;
pub mod script;
pub mod server;
pub mod service;
pub mod setup;
pub mod steamcmd;
pub mod sys;
pub mod systemd;
pub mod timing;
pub mod version;
pub mod watch;
pub mod workshop;

pub use error::AgentError;

use cli::{
    BackupCommand, Cli, Command, HookCommand, NotifyCommand, OverlayCommand, RolloutCommand,
    ScheduleCommand,
};
use host::Host;
use left4me_protocol::agent::{OverlayList, ServerList};
use left4me_protocol::backup::{BackupKind, Retention};
use output::Output;
use service::Action;

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

/// `list`: every server's state, and the newest event in the host's outbox.
fn list(
    host: &Host<'_>,
    systemd: &dyn systemd::Systemd,
    out: &mut Output<'_>,
) -> Result<(), AgentError> {
    let servers = service::list(host, systemd)?;
    let events_last = Some(events::Outbox::new(&host.layout.automation()).last());
    timing::mark("outbox");
    let said = out.message(&ServerList {
        servers,
        events_last,
    });
    timing::mark("output");
    said
}

/// `serve`: answers each request line on stdin with one line on stdout, until stdin ends.
/// A request that fails is answered with its error, and the next is read.
fn serve(
    host: &Host<'_>,
    systemd: &dyn systemd::Systemd,
    out: &mut Output<'_>,
) -> Result<(), AgentError> {
    use std::io::{BufRead, Read};
    systemd::keep_bus();
    let mut stdin = std::io::stdin().lock();
    let mut request = String::new();
    loop {
        request.clear();
        let read = stdin
            .by_ref()
            .take(4096)
            .read_line(&mut request)
            .map_err(|e| AgentError::failed("cannot read a request", e))?;
        if read == 0 {
            return Ok(());
        }
        timing::begin();
        let answered = match request.trim() {
            "list" => list(host, systemd, out),
            other => Err(AgentError::Invalid(format!(
                "serve answers `list`, not {other:?}"
            ))),
        };
        timing::end();
        match answered {
            Err(AgentError::Output(e)) => return Err(AgentError::Output(e)),
            Err(e) => out.error(&e)?,
            Ok(()) => {}
        }
    }
}

/// Runs one parsed command line against the real system, writing its answer to `out`.
pub fn run(cli: &Cli, out: &mut Output<'_>) -> Result<(), AgentError> {
    // A server's game just ended: its last console lines may still be on their way into
    // journald's files. Only root may ask it to write them out, so that is done first.
    if host::is_root()
        && let Command::Hook {
            command: HookCommand::Stopped { .. },
        } = &cli.command
    {
        logs::sync_journal();
    }
    // Run by root, a command that is not root's becomes the owner's before it touches
    // anything: what it writes belongs to the owner, and no link the owner planted is
    // followed as root. (A host without the owner account has nobody to protect from.)
    if host::is_root() && !is_roots(&cli.command) && accounts::lookup(&cli.owner_account).is_ok() {
        accounts::switch_to(&cli.owner_account)?;
    }
    let systemd = &systemd::Systemctl;
    let host = Host::new(&cli.root, &cli.owner_account, &cli.game_account);
    let control = |action, name| service::control(&host, systemd, action, name);
    match &cli.command {
        Command::Version => out.message(&version::report()),
        Command::Facts => out.message(&facts::read(&host.layout)),
        Command::Install(args) => install::command(&host.layout, args, cli.json, out),
        Command::ForgetSteamLogin { steamcmd } => {
            install::forget_command(&host.layout, steamcmd.as_deref(), out)
        }
        Command::Initialize {
            name,
            file,
            rcon_password_stdin,
        } => {
            let before = names::server_name(name)
                .ok()
                .and_then(|n| server::read_spec(&host, &n).ok());
            server::initialize_command(&host, name, file, *rcon_password_stdin, out)?;
            // Changed limits reach a running server at once: systemd allows that for all.
            let name = names::server_name(name)?;
            let after = server::read_spec(&host, &name)?;
            let running =
                systemd::Systemd::show(systemd, &systemd::unit(&name)).is_ok_and(|s| s.is_active());
            if running && before.is_some_and(|b| b.limits != after.limits) {
                service::apply_limits_live(&name)?;
            }
            Ok(())
        }
        Command::Mount { name } => out.message(&server::mount(&host, name)?),
        Command::Umount { name } => out.message(&server::umount(&host, name)?),
        Command::Start { name } => out.message(&control(Action::Start, name)?),
        Command::Stop { name } => out.message(&control(Action::Stop, name)?),
        Command::Restart { name } => out.message(&control(Action::Restart, name)?),
        Command::Delete { name } => {
            let done = control(Action::Delete, name)?;
            // Its schedules go with it, so that none acts on a server of the same name
            // later; the list is the owner's to change.
            let server = names::server_name(name)?;
            accounts::run_as(host.owner()?, || {
                schedule::forget_server(&host, &server).map(drop)
            })?;
            out.message(&done)
        }
        Command::Backup { command } => match command {
            BackupCommand::Create { name, scheduled } => {
                let kind = if *scheduled {
                    BackupKind::Scheduled
                } else {
                    BackupKind::Manual
                };
                out.message(&backup::create(&host, name, kind)?)
            }
            BackupCommand::List { name } => out.message(&backup::list(&host, name)?),
            BackupCommand::Verify { name, id } => out.message(&backup::verify(&host, name, id)?),
            BackupCommand::Restore { name, id, from } => {
                out.message(&backup::restore(&host, systemd, name, id, from.as_deref())?)
            }
            BackupCommand::Prune {
                name,
                keep_last,
                keep_daily,
                keep_weekly,
            } => out.message(&backup::prune(
                &host,
                name,
                Retention {
                    last: *keep_last,
                    daily: *keep_daily,
                    weekly: *keep_weekly,
                },
            )?),
            BackupCommand::Get { name, id } => {
                backup::get(&host, name, id, &mut std::io::stdout().lock())
            }
            BackupCommand::Put { name } => {
                out.message(&backup::put(&host, name, &mut std::io::stdin().lock())?)
            }
        },
        Command::Status { name } => out.message(&service::status(&host, systemd, name)?),
        Command::List => {
            timing::mark("start");
            list(&host, systemd, out)
        }
        Command::Serve => serve(&host, systemd, out),
        Command::Rcon { name, command } => out.message(&service::rcon(&host, name, command)?),
        Command::Logs {
            name,
            lines,
            follow,
            no_follow: _,
        } => logs::command(name, *lines, *follow, out),
        Command::Overlay { command } => match command {
            OverlayCommand::List => out.message(&OverlayList {
                overlays: overlay::list(&host)?,
            }),
            OverlayCommand::Create { name } => out.message(&overlay::create(&host, name)?),
            OverlayCommand::Delete { name } => out.message(&overlay::delete(&host, name)?),
            OverlayCommand::Workshop(args) => workshop::command(&host, args, out),
            OverlayCommand::Script {
                name,
                timeout,
                max_bytes,
            } => script::command(&host, name, *timeout, *max_bytes, out),
            OverlayCommand::Import { name, max_bytes } => {
                let archive = std::io::stdin().lock();
                out.message(&overlay::import(&host, name, archive, *max_bytes)?)
            }
        },
        Command::Fetch { url, file, retries } => out.message(&script::fetch(url, file, *retries)?),
        Command::Events { after } => {
            out.message(&events::Outbox::new(&host.layout.automation()).after(*after)?)
        }
        Command::Watch => {
            let hung = watch::watch(&host, systemd, &host::hostname())?;
            out.message(&output::done("watch", &host::hostname(), hung > 0))
        }
        Command::Notify { command } => {
            let automation = host.layout.automation();
            match command {
                NotifyCommand::List => out.message(&notify::summaries(&notify::load(&automation)?)),
                NotifyCommand::Set => {
                    out.message(&notify::set(&automation, std::io::stdin().lock())?)
                }
                NotifyCommand::Test { name } => out.streamed(|each| {
                    notify::test(&automation, name.as_deref(), &host::hostname(), &mut |r| {
                        each(r)
                    })
                }),
                NotifyCommand::Run => notify::run(&automation, &host::hostname()),
            }
        }
        Command::Schedule { command } => match command {
            ScheduleCommand::List => out.message(&schedule::list_all(&host)?),
            ScheduleCommand::Set => out.message(&schedule::set(&host, std::io::stdin().lock())?),
            ScheduleCommand::Preview {
                calendar,
                time_zone,
                count,
                restart,
            } => out.message(&schedule::preview(
                calendar,
                time_zone.as_deref(),
                *restart,
                *count,
            )?),
            ScheduleCommand::Run { name } => {
                let outcome = out.streamed(|each| {
                    schedule::run(&host, systemd, name, &host::hostname(), &mut |ran| {
                        each(ran)
                    })
                })?;
                if outcome == left4me_protocol::schedule::RunOutcome::Failed {
                    return Err(AgentError::failed(
                        format!("schedule \"{name}\" failed"),
                        "see its record above, or `l4d2-agent events`",
                    ));
                }
                Ok(())
            }
        },
        Command::Rollout { command } => match command {
            RolloutCommand::Status => out.message(&rollout::status(&host)?),
            RolloutCommand::Start {
                changes,
                canary,
                drain_minutes,
                check_seconds,
            } => {
                let options = rollout::StartOptions {
                    changes: *changes,
                    canary: canary.clone(),
                    drain_minutes: *drain_minutes,
                    check_seconds: *check_seconds,
                };
                out.message(&rollout::start(&host, systemd, &options)?)
            }
            RolloutCommand::Pause => out.message(&rollout::pause(&host)?),
            RolloutCommand::Back => out.message(&rollout::back(&host)?),
            RolloutCommand::Stop => out.message(&rollout::stop(&host)?),
            RolloutCommand::Run => {
                rollout::run(&host, systemd, &host::hostname())?;
                out.message(&rollout::status(&host)?)
            }
        },
        Command::Hook { command } => match command {
            HookCommand::Stopped { name } => {
                hooks::stopped(&host.layout, &names::server_name(name)?, &host::hostname())
            }
            HookCommand::GaveUp { name } => hooks::gave_up(
                &host.layout,
                systemd,
                &names::server_name(name)?,
                &host::hostname(),
            ),
        },
        Command::Setup { authorize_key } => {
            out.message(&setup::setup(systemd, authorize_key.as_deref())?)
        }
        // The game's own status is the unit's: passed on as it is.
        Command::Console { command } => std::process::exit(console::run(command)?),
        Command::Privileged {
            action,
            name,
            backup: backup_arg,
        } => {
            service::privileged_host(&host)?;
            use service::PrivilegedAction as P;
            if backup_arg.is_some() != (*action == P::Restore) {
                return Err(AgentError::Invalid(
                    "privileged: --backup goes with restore, and only with it".to_owned(),
                ));
            }
            let done = match (*action, name) {
                (P::Schedules, None) => schedule::privileged_timers(systemd)?,
                (P::Schedules, Some(_)) => {
                    return Err(AgentError::Invalid(
                        "privileged schedules takes no server name".to_owned(),
                    ));
                }
                (_, None) => {
                    return Err(AgentError::Invalid(
                        "privileged: name the server".to_owned(),
                    ));
                }
                (P::Limits, Some(name)) => service::privileged_limits(name)?,
                // The stream is the answer: nothing else goes to stdout.
                (P::Backup, Some(name)) => return backup::privileged_backup(&host, name),
                (P::Restore, Some(name)) => {
                    let from = backup_arg.as_deref().unwrap_or_default();
                    backup::privileged_restore(&host, systemd, name, from)?;
                    output::done("restore", &names::server_name(name)?, true)
                }
                (P::Start, Some(name)) => service::privileged(systemd, Action::Start, name)?,
                (P::Stop, Some(name)) => service::privileged(systemd, Action::Stop, name)?,
                (P::Restart, Some(name)) => service::privileged(systemd, Action::Restart, name)?,
                (P::Delete, Some(name)) => service::privileged(systemd, Action::Delete, name)?,
            };
            out.message(&done)
        }
    }
}
