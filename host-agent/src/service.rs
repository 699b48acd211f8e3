//! `start`, `stop`, `restart` and `status` of a server's unit.
//!
//! Controlling units needs root. Run as root, the agent calls systemctl itself; run as the
//! `left4me` account (as the app does), it asks `sudo` to run `l4d2-agent privileged
//! <action> <name>`, the one command the host's sudo rule allows, which accepts nothing but
//! a valid action and name and always works on the fixed host layout.

use crate::a2s;
use crate::error::AgentError;
use crate::host::{Host, is_root};
use crate::layout::DEFAULT_ROOT;
use crate::names::server_name;
use crate::systemd::{Systemd, mount_unit, unit};
use left4me_protocol::agent::{DoneReport, LiveInfo, LivePlayer, ServerStatus};
use left4me_protocol::{AgentMessage, Envelope, InstanceSpec, ServerName};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Where `setup` installs the agent; the sudo rule names this path.
pub const INSTALLED_AGENT: &str = "/opt/left4me/l4d2-agent";

/// What is done to a server's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
    // Stop, unmount and remove the server (its upper layer belongs to the game account).
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Delete => "delete",
        }
    }
}

/// `start|stop|restart <name>` as the caller asked for it.
pub fn control(
    host: &Host<'_>,
    systemd: &dyn Systemd,
    action: Action,
    name: &str,
) -> Result<DoneReport, AgentError> {
    let name = server_name(name)?;
    if action == Action::Delete {
        return delete(host, systemd, &name);
    }
    let spec = crate::server::read_spec(host, &name)?;
    let done = if is_root() {
        control_as_root(systemd, action, &name, Some(&spec.limits))?
    } else {
        through_sudo(action, &name)?
    };
    if action != Action::Stop && host.layout.root() == Path::new(DEFAULT_ROOT) {
        await_answer(host, systemd, &name, &spec)?;
    }
    Ok(done)
}

/// How long a server that was just started has to answer A2S (a real one loads its map
/// first).
pub const START_WAIT: Duration = Duration::from_secs(60);

/// After a start: waits until the server answers A2S on its own port, as it does once it is
/// up. A server that stops meanwhile fails the start; one that answers on a port near its
/// own instead (srcds may drift to the next free port when its own is taken) is stopped, and
/// the start fails saying so.
fn await_answer(
    host: &Host<'_>,
    systemd: &dyn Systemd,
    name: &ServerName,
    spec: &left4me_protocol::InstanceSpec,
) -> Result<(), AgentError> {
    let failed = |why: String| AgentError::failed(format!("cannot start server \"{name}\""), why);
    let ip = crate::server::query_ip(spec);
    let answers = |port: u16| {
        a2s::Client::new((ip, port).into(), Duration::from_millis(250))
            .ok()?
            .info()
            .ok()
    };
    let game_uid = host.game()?.uid;
    let deadline = std::time::Instant::now() + START_WAIT;
    // Asked often at first, when a stand-in or a quick server is about to answer, then less.
    let mut pause = Duration::from_millis(5);
    loop {
        if answers(spec.port).is_some() {
            return Ok(());
        }
        let state = systemd
            .show(&unit(name))
            .map_err(|e| failed(e.to_string()))?;
        if !state.is_active() {
            return Err(failed(format!(
                "it stopped ({}, {}); see `l4d2-agent logs {name}`",
                state.active_state, state.result
            )));
        }
        if let Some(drifted) = drifted_port(host, name, spec, game_uid, &answers) {
            let _ = control(host, systemd, Action::Stop, name.as_str());
            let holder = crate::ports::taken()
                .into_iter()
                .find(|t| t.port == spec.port && t.uid != game_uid)
                .map(|t| {
                    format!(
                        " (a {} socket of {} holds it)",
                        t.protocol,
                        crate::accounts::describe(t.uid)
                    )
                })
                .unwrap_or_default();
            return Err(failed(format!(
                "it bound port {drifted} instead of its own port {}{holder}, so it was stopped",
                spec.port
            )));
        }
        if std::time::Instant::now() >= deadline {
            return Err(failed(format!(
                "it did not answer on port {} within {} s; see `l4d2-agent logs {name}`",
                spec.port,
                START_WAIT.as_secs()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// A port just above `spec`'s own that a socket of the game account holds, that no other
/// server declares, and where A2S answers: where a drifted server went.
fn drifted_port(
    host: &Host<'_>,
    name: &ServerName,
    spec: &left4me_protocol::InstanceSpec,
    game_uid: u32,
    answers: &dyn Fn(u16) -> Option<a2s::Info>,
) -> Option<u16> {
    let declared: Vec<u16> = crate::server::list_specs(host)
        .ok()?
        .into_iter()
        .filter(|(other, _)| other != name)
        .flat_map(|(_, s)| s.ports())
        .collect();
    crate::ports::taken()
        .into_iter()
        .filter(|t| t.protocol == "UDP" && t.uid == game_uid)
        .map(|t| t.port)
        .filter(|p| (spec.port + 1..=spec.port.saturating_add(10)).contains(p))
        .filter(|p| !declared.contains(p) && !spec.ports().contains(p))
        .find(|p| answers(*p).is_some())
}

/// Deletes a server: root's part (stop its unit, unmount, remove its runtime folder and
/// environment file), then the owner's (forget its spec and RCON password). Units exist only
/// for the host layout, so a server under another `--root` is just removed.
fn delete(
    host: &Host<'_>,
    systemd: &dyn Systemd,
    name: &ServerName,
) -> Result<DoneReport, AgentError> {
    if host.layout.root() != Path::new(DEFAULT_ROOT) {
        return crate::server::delete(host, name);
    }
    let root_part = if is_root() {
        privileged_delete(host, systemd, name)?
    } else {
        through_sudo(Action::Delete, name)?
    };
    // The owner's files are the owner's to remove.
    let declared = crate::server::declared(host, name).unwrap_or(true);
    crate::accounts::run_as(host.owner()?, || {
        crate::server::forget(&host.layout, name).map(drop)
    })?;
    Ok(done(Action::Delete, name, root_part.changed || declared))
}

/// Root's part of deleting a server.
fn privileged_delete(
    host: &Host<'_>,
    systemd: &dyn Systemd,
    name: &ServerName,
) -> Result<DoneReport, AgentError> {
    control_as_root(systemd, Action::Stop, name, None)?;
    let removed = crate::server::remove_runtime(host, name)?;
    Ok(done(Action::Delete, name, removed))
}

/// What the sudo rule lets the left4me account have root do: `privileged`'s first argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrivilegedAction {
    Start,
    Stop,
    Restart,
    Delete,
    /// Set the server's limits from its spec, now.
    Limits,
    /// Make the timers of the owner's schedules (no server name).
    Schedules,
    /// Stream the server's upper layer as a tar on stdout, for `backup create`.
    Backup,
    /// Put a backup (`--backup <server>/<id>`) in place of the stopped server's upper layer.
    Restore,
}

/// Refuses a `privileged` command told of a host other than the host's own layout and
/// accounts, or not run as root.
pub fn privileged_host(host: &Host<'_>) -> Result<(), AgentError> {
    let fixed = host.layout.root() == Path::new(DEFAULT_ROOT)
        && host.owner_account == crate::accounts::OWNER
        && host.game_account == crate::accounts::GAME;
    if !fixed {
        return Err(AgentError::Invalid(
            "privileged: --root, --owner-account and --game-account are not accepted".to_owned(),
        ));
    }
    if !is_root() {
        return Err(AgentError::failed(
            "privileged commands need root",
            "run them through sudo, as `l4d2-agent start` does",
        ));
    }
    Ok(())
}

/// `privileged <action> <name>`: what sudo runs. Fixed layout, validated name, root only.
pub fn privileged(
    systemd: &dyn Systemd,
    action: Action,
    name: &str,
) -> Result<DoneReport, AgentError> {
    if !is_root() {
        return Err(AgentError::failed(
            "privileged commands need root",
            "run them through sudo, as `l4d2-agent start` does",
        ));
    }
    let name = server_name(name)?;
    let host = Host::new(
        Path::new(DEFAULT_ROOT),
        crate::accounts::OWNER,
        crate::accounts::GAME,
    );
    if action == Action::Delete {
        return privileged_delete(&host, systemd, &name);
    }
    if !crate::server::declared(&host, &name)? {
        return Err(AgentError::NotFound {
            what: "server",
            name: name.to_string(),
        });
    }
    let spec = crate::server::read_spec(&host, &name)?;
    control_as_root(systemd, action, &name, Some(&spec.limits))
}

/// `privileged limits <name>`: sets the spec's limits on the server's unit at once (systemd
/// applies them to a running server). Fixed layout, validated name, root only.
pub fn privileged_limits(name: &str) -> Result<DoneReport, AgentError> {
    let name = server_name(name)?;
    let host = Host::new(
        Path::new(DEFAULT_ROOT),
        crate::accounts::OWNER,
        crate::accounts::GAME,
    );
    let spec = crate::server::read_spec(&host, &name)?;
    crate::limits::apply(&unit(&name), &spec.limits)?;
    Ok(done_named("limits", &name))
}

/// Sets a running server's limits from its spec now, through the sudo rule.
pub fn apply_limits_live(name: &ServerName) -> Result<DoneReport, AgentError> {
    if is_root() {
        return privileged_limits(name.as_str());
    }
    sudo_agent(
        &["privileged", "limits", name.as_str()],
        &format!("set the limits of server \"{name}\""),
    )
}

/// Starts, stops or restarts the unit as root; a start or restart sets `limits` on it first
/// (from the spec as it is now).
fn control_as_root(
    systemd: &dyn Systemd,
    action: Action,
    name: &ServerName,
    limits: Option<&left4me_protocol::limits::Limits>,
) -> Result<DoneReport, AgentError> {
    let unit = unit(name);
    let before = systemd
        .show(&unit)
        .map_err(|e| AgentError::failed(format!("cannot read the state of {unit}"), e))?;
    let wanted_active = action != Action::Stop;
    if action != Action::Restart && before.is_active() == wanted_active {
        return Ok(done(action, name, false));
    }
    let failed = |e| AgentError::failed(format!("cannot {} server \"{name}\"", action.as_str()), e);
    let began = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // A start that fails in the mount step says why, not only that a dependency failed.
    let why = |e: String| match systemd.agent_error(&mount_unit(name), began) {
        Some(mount) => AgentError::failed(
            format!("cannot {} server \"{name}\"", action.as_str()),
            format!("its game tree was not mounted: {mount}"),
        ),
        None => AgentError::failed(format!("cannot {} server \"{name}\"", action.as_str()), e),
    };
    if action != Action::Start {
        // Stopping the game tree's unit too makes the unmount part of the command, and a
        // restart then mounts the spec as it is now (overlays may have changed).
        systemd.control("stop", &unit).map_err(failed)?;
        systemd.control("stop", &mount_unit(name)).map_err(failed)?;
    }
    if wanted_active {
        if let Some(limits) = limits {
            crate::limits::apply(&unit, limits)?;
        }
        if before.active_state == "failed" {
            // A server stopped by its start limit starts again only after a reset.
            let _ = systemd.control("reset-failed", &unit);
        }
        systemd
            .control("start", &unit)
            .map_err(|e| why(e.to_string()))?;
    }
    let after = systemd
        .show(&unit)
        .map_err(|e| AgentError::failed(format!("cannot read the state of {unit}"), e))?;
    if after.is_active() != wanted_active {
        return Err(why(format!(
            "{unit} is {} ({}); see `l4d2-agent logs {name}`",
            after.active_state, after.result
        )));
    }
    Ok(done(action, name, true))
}

fn done_named(action: &str, name: &ServerName) -> DoneReport {
    crate::output::done(action, name, true)
}

fn done(action: Action, name: &ServerName, changed: bool) -> DoneReport {
    crate::output::done(action.as_str(), name, changed)
}

/// Runs the action as root through the host's sudo rule and relays its answer.
fn through_sudo(action: Action, name: &ServerName) -> Result<DoneReport, AgentError> {
    let what = format!("{} server \"{name}\"", action.as_str());
    sudo_agent(&["privileged", action.as_str(), name.as_str()], &what).map_err(|e| match e {
        AgentError::NotFound { .. } => AgentError::NotFound {
            what: "server",
            name: name.to_string(),
        },
        e => e,
    })
}

/// Runs `l4d2-agent <args> --json` as root through the host's sudo rule (`what` says what
/// for, in errors: "make the schedules' timers") and relays its answer.
pub fn sudo_agent(args: &[&str], what: &str) -> Result<DoneReport, AgentError> {
    let out = Command::new("sudo")
        .arg("-n")
        .arg(INSTALLED_AGENT)
        .args(args)
        .arg("--json")
        .output()
        .map_err(|e| AgentError::failed("cannot run sudo", e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines().rev() {
        match Envelope::parse(line).map(|e| e.message) {
            Ok(AgentMessage::Done(done)) => return Ok(done),
            Ok(AgentMessage::Error(err)) => {
                return Err(match err.code {
                    left4me_protocol::AgentErrorCode::NotFound => AgentError::NotFound {
                        what: "item",
                        name: err.message,
                    },
                    left4me_protocol::AgentErrorCode::InvalidInput => {
                        AgentError::Invalid(err.message)
                    }
                    _ => AgentError::Relayed(err.message),
                });
            }
            _ => {}
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(AgentError::failed(
        format!("cannot {what} as root"),
        format!(
            "sudo refused or failed ({}); run `l4d2-agent setup` as root first",
            stderr.lines().next().unwrap_or("no output").trim()
        ),
    ))
}

/// `status <name>`: systemd's view, mounts, installed build, and the live A2S answer.
pub fn status(
    host: &Host<'_>,
    systemd: &dyn Systemd,
    name: &str,
) -> Result<ServerStatus, AgentError> {
    let name = server_name(name)?;
    let spec = crate::server::read_spec(host, &name)?;
    let table = host.mount_table()?;
    let mut status = status_of(
        host,
        systemd,
        &name,
        &spec,
        &table,
        crate::install::installed_build(&host.layout),
    )?;
    if status.active_state == "active" {
        status.usage = crate::limits::usage(&unit(&name)).map(|mut usage| {
            // The game's own view: whether it keeps its tickrate.
            usage.fps_hundredths = rcon(host, name.as_str(), &["stats".to_owned()])
                .ok()
                .and_then(|a| crate::limits::fps_of_stats(&a.answer))
                .map(|fps| (fps * 100.0).round() as u32);
            usage.tickrate = Some(spec.launch.tickrate);
            Box::new(usage)
        });
    }
    Ok(status)
}

/// `list`: the status of every server. systemd is asked about every unit at once, and every
/// running server is queried at once on this thread (`a2s::query_all`; a thread each cost
/// more than the queries): each answer is a wait on the bus or the network, not work, so a
/// host's servers cost about what one does.
pub fn list(host: &Host<'_>, systemd: &dyn Systemd) -> Result<Vec<ServerStatus>, AgentError> {
    let table = host.mount_table()?;
    let build = crate::install::installed_build(&host.layout);
    let specs = crate::server::list_specs(host)?;
    crate::timing::mark("specs");
    let names: Vec<&ServerName> = specs.iter().map(|(name, _)| name).collect();
    let states = unit_states(host, systemd, &names)?;
    crate::timing::mark("systemd");
    let running: Vec<usize> = (0..specs.len())
        .filter(|&i| states[i].active_state == "active")
        .collect();
    let addrs: Vec<std::net::SocketAddr> = running
        .iter()
        .map(|&i| (crate::server::query_ip(&specs[i].1), specs[i].1.port).into())
        .collect();
    let mut lives: Vec<Option<LiveInfo>> = vec![None; specs.len()];
    for (i, answered) in running
        .into_iter()
        .zip(a2s::query_all(&addrs, QUERY_TIMEOUT))
    {
        lives[i] = answered.map(|(info, players)| live_info(info, players));
    }
    crate::timing::mark("a2s");
    let listed = specs
        .iter()
        .zip(states)
        .zip(lives)
        .map(|(((name, spec), state), live)| {
            Ok(status_from(
                host,
                name,
                spec,
                &table,
                build.clone(),
                state,
                live,
            ))
        })
        .collect();
    crate::timing::mark("changes");
    listed
}

/// What systemd says of each server's unit. Units run servers of the host layout only; one
/// under another --root never runs.
fn unit_states(
    host: &Host<'_>,
    systemd: &dyn Systemd,
    names: &[&ServerName],
) -> Result<Vec<crate::systemd::UnitState>, AgentError> {
    if host.layout.root() != Path::new(DEFAULT_ROOT) {
        let never = crate::systemd::UnitState {
            active_state: "inactive".to_owned(),
            sub_state: "dead".to_owned(),
            result: "success".to_owned(),
            ..Default::default()
        };
        return Ok(vec![never; names.len()]);
    }
    let units: Vec<String> = names.iter().map(|name| unit(name)).collect();
    systemd
        .show_many(&units)
        .into_iter()
        .zip(&units)
        .map(|(state, unit)| {
            state.map_err(|e| AgentError::failed(format!("cannot read the state of {unit}"), e))
        })
        .collect()
}

fn status_of(
    host: &Host<'_>,
    systemd: &dyn Systemd,
    name: &ServerName,
    spec: &left4me_protocol::InstanceSpec,
    table: &[crate::mountinfo::Mount],
    installed_build: Option<String>,
) -> Result<ServerStatus, AgentError> {
    let state = unit_states(host, systemd, &[name])?.remove(0);
    let live = if state.active_state == "active" {
        query(spec)
    } else {
        None
    };
    Ok(status_from(
        host,
        name,
        spec,
        table,
        installed_build,
        state,
        live,
    ))
}

fn status_from(
    host: &Host<'_>,
    name: &ServerName,
    spec: &InstanceSpec,
    table: &[crate::mountinfo::Mount],
    installed_build: Option<String>,
    state: crate::systemd::UnitState,
    live: Option<LiveInfo>,
) -> ServerStatus {
    let active = state.active_state == "active";
    let restart_applies = active && !waiting_changes(host, table, name, spec).is_empty();
    ServerStatus {
        name: name.to_string(),
        port: spec.port,
        map: spec.launch.map.to_string(),
        overlays: spec.overlays.iter().map(|o| o.to_string()).collect(),
        active_state: state.active_state,
        sub_state: state.sub_state,
        result: state.result,
        main_pid: (state.main_pid != 0).then_some(state.main_pid),
        since: state.since,
        restarts: state.restarts,
        mounted: crate::mounts::is_mounted(table, &host.layout.server(name)),
        installed_build,
        live,
        restart_applies,
        usage: None,
    }
}

/// What a running server's next start would change, in words: its spec (changed since it
/// started, in what only a start applies) and the overlays with new content since it
/// mounted them. Empty when a restart changes nothing.
pub fn waiting_changes(
    host: &Host<'_>,
    table: &[crate::mountinfo::Mount],
    name: &ServerName,
    spec: &InstanceSpec,
) -> Vec<String> {
    let mut changes = Vec::new();
    if crate::server::started_from(&host.layout, name)
        .is_some_and(|started| started != crate::server::start_digest(spec))
    {
        changes.push("its spec changed".to_owned());
    }
    for overlay in crate::overlay::behind_for(&host.layout, table, name, spec) {
        changes.push(format!("overlay {overlay} has new content"));
    }
    changes
}

/// Asks the server on this host for its A2S_INFO, and its A2S_PLAYER when someone is on,
/// briefly: a busy or starting server may not answer, and status must stay fast.
fn query(spec: &left4me_protocol::InstanceSpec) -> Option<LiveInfo> {
    let addr = (crate::server::query_ip(spec), spec.port).into();
    let client = a2s::Client::new(addr, QUERY_TIMEOUT).ok()?;
    let info = client.info().ok()?;
    let players = if info.players > 0 {
        // The count stands without the names when the second question goes unanswered.
        client.players().unwrap_or_default()
    } else {
        Vec::new()
    };
    Some(live_info(info, players))
}

/// How long a status waits for each answer of a server's game.
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);

fn live_info(info: a2s::Info, players: Vec<a2s::Player>) -> LiveInfo {
    LiveInfo {
        name: info.name,
        map: info.map,
        players: info.players,
        max_players: info.max_players,
        version: Some(info.version),
        player_list: live_players(players),
    }
}

/// A2S_PLAYER's entries as the app shows them: whole seconds, never negative (the engine's
/// float is garbage for a slot mid-connect).
fn live_players(players: Vec<a2s::Player>) -> Vec<LivePlayer> {
    players
        .into_iter()
        .map(|p| LivePlayer {
            name: p.name,
            score: p.score,
            seconds: if p.duration.is_finite() && p.duration > 0.0 {
                p.duration.min(u32::MAX as f32) as u32
            } else {
                0
            },
        })
        .collect()
}

/// `rcon <name> <command…>`: runs a console command through RCON on this host, with the
/// password only the agent reads, and returns the answer.
pub fn rcon(
    host: &Host<'_>,
    name: &str,
    command: &[String],
) -> Result<left4me_protocol::agent::RconAnswer, AgentError> {
    let name = server_name(name)?;
    let command = command.join(" ");
    if command.trim().is_empty() || command.contains(['\n', '\r', '\0']) {
        return Err(AgentError::Invalid(
            "rcon: give one command line without line breaks".to_owned(),
        ));
    }
    if command.len() > crate::rcon::MAX_BODY {
        return Err(AgentError::Invalid(format!(
            "rcon: the command is longer than {} bytes",
            crate::rcon::MAX_BODY
        )));
    }
    let spec = crate::server::read_spec(host, &name)?;
    let password = crate::server::rcon_password(host, &name)?.ok_or_else(|| {
        AgentError::failed(
            format!("server \"{name}\" has no RCON password"),
            "set one with `initialize --rcon-password-stdin`",
        )
    })?;
    let addr = (crate::server::query_ip(&spec), spec.port).into();
    let failed = |e| AgentError::failed(format!("RCON to server \"{name}\" failed"), e);
    let mut client =
        crate::rcon::Client::connect(addr, &password, Duration::from_secs(3)).map_err(failed)?;
    let answer = client.exec(&command).map_err(failed)?;
    Ok(left4me_protocol::agent::RconAnswer { command, answer })
}

/// A running server's players, as a drain counts (A2S) and tells them (`say` over RCON).
pub struct LivePlayers<'h> {
    host: &'h Host<'h>,
    name: &'h ServerName,
    client: Option<a2s::Client>,
}

impl<'h> LivePlayers<'h> {
    pub fn new(host: &'h Host<'h>, name: &'h ServerName, spec: &InstanceSpec) -> Self {
        let address = (crate::server::query_ip(spec), spec.port).into();
        LivePlayers {
            host,
            name,
            client: a2s::Client::new(address, Duration::from_secs(1)).ok(),
        }
    }
}

impl crate::drain::Players for LivePlayers<'_> {
    fn humans(&mut self) -> Option<u32> {
        let info = self.client.as_ref()?.info().ok()?;
        Some(u32::from(info.players.saturating_sub(info.bots)))
    }

    fn say(&mut self, text: &str) {
        // A message that cannot be said does not stop the drain.
        let _ = rcon(self.host, self.name.as_str(), &[format!("say {text}")]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::Recording;

    const SERVER: &str = "left4me-server@coop-1.service";
    const MOUNT: &str = "left4me-mount@coop-1.service";

    fn name() -> ServerName {
        ServerName::new("coop-1").unwrap()
    }

    #[test]
    fn players_get_whole_seconds_never_negative() {
        let player = |duration| a2s::Player {
            index: 0,
            name: "Zoey".into(),
            score: 7,
            duration,
        };
        let got = live_players(vec![
            player(61.9),
            player(-3.0),
            player(f32::NAN),
            player(f32::INFINITY),
            player(1e12),
        ]);
        let seconds: Vec<u32> = got.iter().map(|p| p.seconds).collect();
        assert_eq!(seconds, [61, 0, 0, 0, u32::MAX]);
        assert_eq!((got[0].name.as_str(), got[0].score), ("Zoey", 7));
    }

    #[test]
    fn start_acts_only_when_inactive() {
        let systemd = Recording::default();
        assert!(
            control_as_root(&systemd, Action::Start, &name(), None)
                .unwrap()
                .changed
        );
        assert!(
            !control_as_root(&systemd, Action::Start, &name(), None)
                .unwrap()
                .changed
        );
        assert_eq!(systemd.calls(), [format!("start {SERVER}")]);
    }

    #[test]
    fn stop_takes_the_game_tree_down_too() {
        let systemd = Recording::default();
        systemd.set_state(SERVER, "active");
        systemd.set_state(MOUNT, "active");
        assert!(
            control_as_root(&systemd, Action::Stop, &name(), None)
                .unwrap()
                .changed
        );
        assert_eq!(
            systemd.calls(),
            [format!("stop {SERVER}"), format!("stop {MOUNT}")]
        );
        assert!(
            !control_as_root(&systemd, Action::Stop, &name(), None)
                .unwrap()
                .changed
        );
    }

    #[test]
    fn restart_remounts_so_a_changed_spec_applies() {
        let systemd = Recording::default();
        systemd.set_state(SERVER, "active");
        control_as_root(&systemd, Action::Restart, &name(), None).unwrap();
        assert_eq!(
            systemd.calls(),
            [
                format!("stop {SERVER}"),
                format!("stop {MOUNT}"),
                format!("start {SERVER}")
            ]
        );
    }

    #[test]
    fn a_server_stopped_by_its_start_limit_is_reset_before_starting() {
        let systemd = Recording::default();
        systemd.set_state(SERVER, "failed");
        control_as_root(&systemd, Action::Start, &name(), None).unwrap();
        assert_eq!(
            systemd.calls(),
            [format!("reset-failed {SERVER}"), format!("start {SERVER}")]
        );
    }

    #[test]
    fn a_start_that_does_not_take_says_where_to_look() {
        let systemd = Recording::default();
        systemd.fail_start(SERVER);
        let err = control_as_root(&systemd, Action::Start, &name(), None).unwrap_err();
        assert_eq!(
            crate::error::chain(&err),
            "cannot start server \"coop-1\": left4me-server@coop-1.service is failed (exit-code); see `l4d2-agent logs coop-1`"
        );
    }

    #[test]
    fn a_start_whose_mount_fails_says_why_the_mount_failed() {
        let systemd = Recording::default();
        systemd.fail_start(MOUNT);
        let err = control_as_root(&systemd, Action::Start, &name(), None).unwrap_err();
        assert_eq!(
            crate::error::chain(&err),
            "cannot start server \"coop-1\": its game tree was not mounted: left4me-mount@coop-1.service was made to fail"
        );
    }
}
