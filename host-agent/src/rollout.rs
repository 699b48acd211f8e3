//! Game updates rolled across the host's servers without kicking players. An update is
//! built beside the running install (`install`); a rollout then moves the servers over one
//! at a time: a canary first (the one the admin named, else the emptiest, of the servers
//! whose blueprint asks to go first if any do), drained,
//! restarted on the new build and checked (it answers A2S with the new version, SourceMod
//! logs no new signature or load errors, and it does not crash for a while), then the
//! rest, each once its players have left or at its deadline. A failed check puts the
//! server back on its old build and holds the rollout; the admin starts it again or rolls
//! it back. When every server runs the new build, the old one goes.
//!
//! A rollout of changes is the same rolling restart for the servers whose next start
//! would change something else (their spec, an overlay's content): each stays on the build
//! it runs, and a failed check holds the rest (there is no old spec to go back to, so such
//! a rollout is stopped, not rolled back).
//!
//! The rollout is one file, `installs/rollout.json`, the owner's: root reads it to mount
//! (`Layout::installation_for`), so a server not yet moved stays on its build whoever
//! starts it. The runner (`rollout run`) is `left4me-rollout.service`, started by its path
//! unit when a request lands in `automation/rollout/`, so a rollout goes on with the app
//! closed; it acts on what the admin asked last (`wanted`) between steps and during
//! drains.

use crate::drain::{self, Drained};
use crate::error::{AgentError, io_context};
use crate::host::Host;
use crate::lock::{Lock, LockError};
use crate::systemd::{Systemd, unit};
use left4me_protocol::ServerName;
use left4me_protocol::events::EventKind;
use left4me_protocol::rollout::{
    Build, Builds, CHECK_SECONDS, DEFAULT_CHECK_SECONDS, DEFAULT_DRAIN_MINUTES, InstallNumber,
    MAX_DRAIN_MINUTES, Rollout, RolloutKind, RolloutOutcome, RolloutServer, RolloutState, Step,
    Waiting, Wanted,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A file here asks `left4me-rollout.path` to start the runner.
const REQUESTS: &str = "rollout";
const REQUEST: &str = "request";
/// Held by the runner while it runs.
const RUN_LOCK: &str = "rollout.run.lock";
/// How long a restarted server may take to answer A2S.
const ANSWER_WITHIN: Duration = Duration::from_secs(120);
/// How often the canary is looked at while it is checked.
const CHECK_POLL: Duration = Duration::from_secs(2);

/// What `rollout start` is told.
#[derive(Debug, Default, Clone)]
pub struct StartOptions {
    /// A rolling restart that applies the changes waiting for each server's next start,
    /// rather than the current build.
    pub changes: bool,
    pub canary: Option<String>,
    pub drain_minutes: Option<u32>,
    pub check_seconds: Option<u32>,
}

/// The host's builds, which servers run which, and the rollout.
pub fn status(host: &Host<'_>) -> Result<Builds, AgentError> {
    let layout = &host.layout;
    let installs = layout.installs();
    let mut numbers: Vec<InstallNumber> = vec![0];
    if let Ok(entries) = std::fs::read_dir(&installs) {
        numbers.extend(
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()),
        );
    }
    numbers.sort_unstable();
    let current = crate::layout::current_install(&installs).unwrap_or(0);
    let running = mounted(host);
    let builds = numbers
        .into_iter()
        .filter_map(|n| {
            let dir = layout.install(n);
            let build = crate::install::manifest_value(&dir, "buildid");
            let servers: Vec<ServerName> = running
                .iter()
                .filter(|(_, install)| *install == Some(n))
                .map(|(name, _)| name.clone())
                .collect();
            (build.is_some() || !servers.is_empty()).then(|| Build {
                install: n,
                build,
                version: patch_version(&dir),
                current: n == current,
                servers,
            })
        })
        .collect();
    Ok(Builds {
        builds,
        rollout: crate::layout::read_rollout(&installs),
        waiting: waiting(host, &running)?,
    })
}

/// The mounted servers whose next start changes them, and how.
fn waiting(
    host: &Host<'_>,
    mounted: &[(ServerName, Option<InstallNumber>)],
) -> Result<Vec<Waiting>, AgentError> {
    if mounted.is_empty() {
        return Ok(Vec::new());
    }
    let table = host.mount_table()?;
    Ok(crate::server::list_specs(host)?
        .into_iter()
        .filter(|(name, _)| mounted.iter().any(|(m, _)| m == name))
        .filter_map(|(server, spec)| {
            let changes = crate::service::waiting_changes(host, &table, &server, &spec);
            (!changes.is_empty()).then_some(Waiting { server, changes })
        })
        .collect())
}

/// Begins a rollout of the current install to the running servers on another build, or
/// goes on with a paused or held one.
pub fn start(
    host: &Host<'_>,
    systemd: &dyn Systemd,
    options: &StartOptions,
) -> Result<Builds, AgentError> {
    if let Some(minutes) = options.drain_minutes
        && minutes > MAX_DRAIN_MINUTES
    {
        return Err(AgentError::Invalid(format!(
            "--drain-minutes {minutes} is more than a day ({MAX_DRAIN_MINUTES})"
        )));
    }
    if options
        .check_seconds
        .is_some_and(|s| !CHECK_SECONDS.contains(&s))
    {
        return Err(AgentError::Invalid(format!(
            "--check-seconds takes {} to {}",
            CHECK_SECONDS.start(),
            CHECK_SECONDS.end()
        )));
    }
    let canary = options
        .canary
        .as_deref()
        .map(crate::names::server_name)
        .transpose()?;
    let installs = host.layout.installs();
    crate::fsutil::create_dir(&installs, 0o755).map_err(io_context("create", &installs))?;
    let _held = Lock::wait_for_dir(&installs).map_err(io_context("lock", &installs))?;
    let now = now();
    let kind = if options.changes {
        RolloutKind::Changes
    } else {
        RolloutKind::Build
    };
    let rollout = match crate::layout::read_rollout(&installs).filter(|r| r.state.is_open()) {
        Some(open) if open.kind != kind => {
            let end = match open.kind {
                RolloutKind::Build => "wait for it to end, or roll it back (`rollout back`)",
                RolloutKind::Changes => "wait for it to end, or stop it (`rollout stop`)",
            };
            return Err(AgentError::InUse(format!(
                "the rollout of {} is {} ({}): {end}",
                open.what(),
                open.state.describe(),
                open.progress()
            )));
        }
        Some(mut open) => {
            if let Some(minutes) = options.drain_minutes {
                open.drain_minutes = minutes;
            }
            if let Some(seconds) = options.check_seconds {
                open.check_seconds = seconds;
            }
            if open.state == RolloutState::Held {
                // The server that failed gets another try, first.
                for s in open.servers.iter_mut().filter(|s| s.step == Step::Failed) {
                    s.step = Step::Waiting;
                }
            }
            open.state = RolloutState::Running;
            open.wanted = Wanted::Run;
            open.reason = None;
            open.updated = now;
            open
        }
        None => new_rollout(host, systemd, kind, canary, options, now)?,
    };
    save(&installs, &rollout)?;
    request(host)?;
    status(host)
}

/// The rollout of the current install to every running server on another build, or (of
/// changes) the rolling restart of every running server whose next start changes it.
fn new_rollout(
    host: &Host<'_>,
    systemd: &dyn Systemd,
    kind: RolloutKind,
    canary: Option<ServerName>,
    options: &StartOptions,
    now: String,
) -> Result<Rollout, AgentError> {
    let installs = host.layout.installs();
    let to = crate::layout::current_install(&installs).unwrap_or(0);
    let to_dir = host.layout.install(to);
    let to_build = crate::install::manifest_value(&to_dir, "buildid");
    let running = mounted(host)
        .into_iter()
        .filter(|(name, _)| systemd.show(&unit(name)).is_ok_and(|s| s.is_active()));
    let waiting = |name, from, detail| RolloutServer {
        name,
        from,
        step: Step::Waiting,
        detail,
        downtime_ms: None,
    };
    let servers: Vec<RolloutServer> = match kind {
        RolloutKind::Build => running
            .filter_map(|(name, install)| {
                let from = install?;
                (from != to).then(|| waiting(name, from, None))
            })
            .collect(),
        RolloutKind::Changes => {
            let table = host.mount_table()?;
            let specs = crate::server::list_specs(host)?;
            running
                .filter_map(|(name, install)| {
                    let from = install?;
                    let (_, spec) = specs.iter().find(|(n, _)| *n == name)?;
                    let changes = crate::service::waiting_changes(host, &table, &name, spec);
                    (!changes.is_empty()).then(|| waiting(name, from, Some(changes.join("; "))))
                })
                .collect()
        }
    };
    if servers.is_empty() {
        return Err(AgentError::InUse(match kind {
            RolloutKind::Build => format!(
                "nothing to roll out: every running server runs build {} already",
                to_build.as_deref().unwrap_or("(unknown)")
            ),
            RolloutKind::Changes => {
                "nothing to restart: no running server has changes waiting for its next start"
                    .to_owned()
            }
        }));
    }
    let canary = match canary {
        Some(name) if servers.iter().any(|s| s.name == name) => name,
        Some(name) => {
            let which = match kind {
                RolloutKind::Build => "a running server on another build",
                RolloutKind::Changes => "a running server with changes waiting",
            };
            return Err(AgentError::Invalid(format!(
                "the canary {name} is not {which}; these are: {}",
                names(&servers)
            )));
        }
        None => pick_canary(host, &servers),
    };
    let from = servers
        .iter()
        .find(|s| s.name == canary)
        .map_or(0, |s| s.from);
    let to = match kind {
        RolloutKind::Build => to,
        // Each server stays on its build; the canary's says which build is checked.
        RolloutKind::Changes => from,
    };
    Ok(Rollout {
        kind,
        from,
        to,
        to_build: crate::install::manifest_value(&host.layout.install(to), "buildid"),
        to_version: match kind {
            RolloutKind::Build => patch_version(&to_dir),
            RolloutKind::Changes => None,
        },
        canary,
        drain_minutes: options.drain_minutes.unwrap_or(DEFAULT_DRAIN_MINUTES),
        check_seconds: options.check_seconds.unwrap_or(DEFAULT_CHECK_SECONDS),
        state: RolloutState::Running,
        wanted: Wanted::Run,
        servers,
        reason: None,
        started: now.clone(),
        updated: now,
    })
}

/// Stops the rollout before its next server (a drain under way is called off).
pub fn pause(host: &Host<'_>) -> Result<Builds, AgentError> {
    change(host, |rollout, runner_active| {
        rollout.wanted = Wanted::Pause;
        if !runner_active {
            rollout.state = RolloutState::Paused;
        }
        Ok(false)
    })
}

/// Puts every server the rollout moved back on the build it ran, and drops the new build.
pub fn back(host: &Host<'_>) -> Result<Builds, AgentError> {
    change(host, |rollout, _| {
        if rollout.kind == RolloutKind::Changes {
            return Err(AgentError::Invalid(
                "a restart with changes has no old spec to go back to: stop it (`rollout stop`), and the servers not restarted yet keep their changes for their next start"
                    .to_owned(),
            ));
        }
        rollout.wanted = Wanted::Back;
        Ok(true)
    })
}

/// Ends a rollout of changes before its next server (a drain under way is called off).
pub fn stop(host: &Host<'_>) -> Result<Builds, AgentError> {
    change(host, |rollout, runner_active| {
        if rollout.kind == RolloutKind::Build {
            return Err(AgentError::Invalid(format!(
                "the rollout of {} is rolled back (`rollout back`) or paused, not stopped: its servers would be left on two builds",
                rollout.what()
            )));
        }
        rollout.wanted = Wanted::Stop;
        if !runner_active {
            rollout.state = RolloutState::Stopped;
        }
        Ok(false)
    })
}

/// Changes the open rollout under its lock; `act` says whether the runner must be started.
fn change(
    host: &Host<'_>,
    act: impl FnOnce(&mut Rollout, bool) -> Result<bool, AgentError>,
) -> Result<Builds, AgentError> {
    let installs = host.layout.installs();
    let runner_active = runner_is_active(host);
    {
        let _held = Lock::wait_for_dir(&installs).map_err(io_context("lock", &installs))?;
        let mut rollout = match crate::layout::read_rollout(&installs) {
            Some(r) if r.state.is_open() => r,
            Some(r) => {
                return Err(AgentError::InUse(format!(
                    "the rollout of {} is {}: there is nothing to change",
                    r.what(),
                    r.state.describe()
                )));
            }
            None => {
                return Err(AgentError::NotFound {
                    what: "rollout",
                    name: "on this host".to_owned(),
                });
            }
        };
        let wake = act(&mut rollout, runner_active)?;
        rollout.updated = now();
        save(&installs, &rollout)?;
        if wake {
            request(host)?;
        }
    }
    status(host)
}

/// Whether a runner holds the run lock now.
fn runner_is_active(host: &Host<'_>) -> bool {
    let path = host.layout.automation().join(RUN_LOCK);
    matches!(Lock::try_acquire(&path), Err(LockError::Busy))
}

/// Asks the path unit to start the runner.
fn request(host: &Host<'_>) -> Result<(), AgentError> {
    let dir = host.layout.automation().join(REQUESTS);
    crate::fsutil::create_dir(&dir, 0o755).map_err(io_context("create", &dir))?;
    let file = dir.join(REQUEST);
    crate::fsutil::write_atomic(&file, now().as_bytes(), 0o644).map_err(io_context("write", &file))
}

/// The runner: moves servers until the rollout is done, paused, held or rolled back.
/// Another runner already at work makes this one leave at once.
pub fn run(
    host: &Host<'_>,
    systemd: &dyn Systemd,
    hostname: &str,
) -> Result<Option<Rollout>, AgentError> {
    let automation = host.layout.automation();
    let lock = automation.join(RUN_LOCK);
    let _runner = match Lock::try_acquire(&lock) {
        Ok(held) => held,
        Err(LockError::Busy) => return Ok(None),
        Err(LockError::Io(e)) => return Err(io_context("lock", &lock)(e)),
    };
    let request = automation.join(REQUESTS).join(REQUEST);
    match std::fs::remove_file(&request) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_context("remove", &request)(e));
        }
        _ => {}
    }
    let mut runner = Runner {
        host,
        systemd,
        hostname,
    };
    loop {
        let Some(rollout) = runner.read() else {
            return Ok(None);
        };
        if !rollout.state.is_open() {
            return Ok(Some(rollout));
        }
        match rollout.wanted {
            Wanted::Back => return runner.roll_back().map(Some),
            Wanted::Pause => {
                return runner.update(|r| r.state = RolloutState::Paused).map(Some);
            }
            Wanted::Stop => {
                return runner.update(|r| r.state = RolloutState::Stopped).map(Some);
            }
            Wanted::Run if rollout.state != RolloutState::Running => return Ok(Some(rollout)),
            Wanted::Run => {}
        }
        let canary = rollout.server(&rollout.canary).map(|s| s.step);
        let next = match canary {
            Some(Step::Waiting | Step::Draining | Step::Restarting | Step::Checking) => {
                Some(rollout.canary.clone())
            }
            _ => rollout
                .servers
                .iter()
                .find(|s| s.step != Step::Moved)
                .map(|s| s.name.clone()),
        };
        let Some(next) = next else {
            return runner.finish().map(Some);
        };
        runner.move_server(&rollout, &next)?;
    }
}

struct Runner<'a> {
    host: &'a Host<'a>,
    systemd: &'a dyn Systemd,
    hostname: &'a str,
}

/// How one server's move went.
enum Moved {
    /// On the new build, with what to say.
    Done(String, Option<u64>),
    /// Not now: the admin paused or rolled back meanwhile.
    NotNow,
    /// Failed its check (why).
    Failed(String),
}

impl Runner<'_> {
    fn installs(&self) -> PathBuf {
        self.host.layout.installs()
    }

    fn read(&self) -> Option<Rollout> {
        crate::layout::read_rollout(&self.installs())
    }

    /// Changes the rollout under its lock, keeping what the admin asked meanwhile.
    fn update(&self, change: impl FnOnce(&mut Rollout)) -> Result<Rollout, AgentError> {
        let installs = self.installs();
        let _held = Lock::wait_for_dir(&installs).map_err(io_context("lock", &installs))?;
        let mut rollout = self.read().ok_or_else(|| AgentError::NotFound {
            what: "rollout",
            name: "on this host".to_owned(),
        })?;
        change(&mut rollout);
        rollout.updated = now();
        save(&installs, &rollout)?;
        Ok(rollout)
    }

    fn set_step(
        &self,
        name: &ServerName,
        step: Step,
        detail: Option<String>,
    ) -> Result<Rollout, AgentError> {
        self.update(|r| {
            if let Some(s) = r.servers.iter_mut().find(|s| &s.name == name) {
                s.step = step;
                if detail.is_some() {
                    s.detail = detail;
                }
            }
        })
    }

    fn wanted(&self) -> Wanted {
        self.read().map_or(Wanted::Pause, |r| r.wanted)
    }

    fn move_server(&mut self, rollout: &Rollout, name: &ServerName) -> Result<(), AgentError> {
        let canary = &rollout.canary == name;
        let running = self.systemd.show(&unit(name)).is_ok_and(|s| s.is_active());
        if !running {
            // Stopped since the rollout began: it starts on the new build (with its
            // changes). A canary that stopped hands the check to the next running server.
            let said = match rollout.kind {
                RolloutKind::Build => "was not running: it starts on the new build",
                RolloutKind::Changes => "was not running: its next start applies its changes",
            };
            let rollout = self.set_step(name, Step::Moved, Some(said.to_owned()))?;
            if canary {
                let next = rollout
                    .servers
                    .iter()
                    .find(|s| s.step == Step::Waiting)
                    .map(|s| s.name.clone());
                if let Some(next) = next {
                    self.update(|r| r.canary = next)?;
                }
            }
            return Ok(());
        }
        match self.restart_on_new_build(rollout, name, canary)? {
            Moved::Done(detail, downtime_ms) => {
                self.update(|r| {
                    if let Some(s) = r.servers.iter_mut().find(|s| &s.name == name) {
                        s.step = Step::Moved;
                        s.detail = Some(detail);
                        s.downtime_ms = downtime_ms;
                    }
                })?;
            }
            Moved::NotNow => {
                // A drain called off leaves it where it was; a check cut short by a roll
                // back leaves it on the new build, for the roll back to bring back.
                self.update(|r| {
                    if let Some(s) = r.servers.iter_mut().find(|s| &s.name == name)
                        && s.step == Step::Draining
                    {
                        s.step = Step::Waiting;
                    }
                })?;
            }
            Moved::Failed(why) => self.hold(rollout, name, why)?,
        }
        Ok(())
    }

    /// Drains `name`, restarts it on the new build and checks it.
    fn restart_on_new_build(
        &mut self,
        rollout: &Rollout,
        name: &ServerName,
        canary: bool,
    ) -> Result<Moved, AgentError> {
        let spec = crate::server::read_spec(self.host, name)?;
        let address = (crate::server::query_ip(&spec), spec.port).into();
        self.set_step(name, Step::Draining, None)?;
        let mut players = Draining {
            players: crate::service::LivePlayers::new(self.host, name, &spec),
            installs: self.installs(),
        };
        let drained = drain::drain(
            &mut players,
            &drain::Wall(Instant::now()),
            Duration::from_secs(u64::from(rollout.drain_minutes) * 60),
            match rollout.kind {
                RolloutKind::Build => "restarts for a game update",
                RolloutKind::Changes => "restarts to apply changes",
            },
        );
        if drained == Drained::CalledOff {
            return Ok(Moved::NotNow);
        }
        let errors_before = sourcemod_errors(&self.host.layout.server(name).upper());
        self.set_step(name, Step::Restarting, None)?;
        let stopped = Instant::now();
        if let Err(e) = crate::service::control(
            self.host,
            self.systemd,
            crate::service::Action::Restart,
            name.as_str(),
        ) {
            return Ok(Moved::Failed(format!(
                "{}: {}",
                match rollout.kind {
                    RolloutKind::Build => "it did not restart on the new build",
                    RolloutKind::Changes => "it did not start again",
                },
                crate::error::chain(&e)
            )));
        }
        let Some(info) = answer_within(address, ANSWER_WITHIN) else {
            return Ok(Moved::Failed(format!(
                "it did not answer queries within {} s of its restart",
                ANSWER_WITHIN.as_secs()
            )));
        };
        let downtime_ms = u64::try_from(stopped.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Some(version) = &rollout.to_version
            && &info.version != version
        {
            return Ok(Moved::Failed(format!(
                "it answers as version {}, not the new build's {version}",
                info.version
            )));
        }
        let mut said = format!(
            "restarted {}; answered {:.1} s after its stop",
            drained.describe(),
            downtime_ms as f64 / 1000.0
        );
        if canary {
            self.set_step(name, Step::Checking, None)?;
            let state = self.systemd.show(&unit(name)).unwrap_or_default();
            let deadline = Instant::now() + Duration::from_secs(u64::from(rollout.check_seconds));
            loop {
                if let Some(why) =
                    new_errors(&self.host.layout.server(name).upper(), &errors_before)
                {
                    return Ok(Moved::Failed(why));
                }
                let now = self.systemd.show(&unit(name)).unwrap_or_default();
                if !now.is_active()
                    || now.main_pid != state.main_pid
                    || now.restarts != state.restarts
                {
                    return Ok(Moved::Failed(format!(
                        "it stopped or crashed within {} s {} ({}, {})",
                        rollout.check_seconds,
                        match rollout.kind {
                            RolloutKind::Build => "on the new build",
                            RolloutKind::Changes => "of its restart",
                        },
                        now.active_state,
                        now.result
                    )));
                }
                if Instant::now() >= deadline {
                    break;
                }
                if self.wanted() == Wanted::Back {
                    return Ok(Moved::NotNow);
                }
                std::thread::sleep(CHECK_POLL);
            }
            said.push_str(&format!(
                "; checked for {} s: version {}, no SourceMod errors, no crash",
                rollout.check_seconds, info.version
            ));
        } else if let Some(why) = new_errors(&self.host.layout.server(name).upper(), &errors_before)
        {
            return Ok(Moved::Failed(why));
        }
        Ok(Moved::Done(said, Some(downtime_ms)))
    }

    /// A server failed on the new build: back to its old build, the rollout held, the
    /// admin told.
    fn hold(
        &mut self,
        rollout: &Rollout,
        name: &ServerName,
        why: String,
    ) -> Result<(), AgentError> {
        self.set_step(name, Step::Failed, Some(why.clone()))?;
        if rollout.kind == RolloutKind::Changes {
            let reason = format!(
                "{name} failed its check after its restart with its changes: {why}. It stays as it is (there is no old spec to go back to); the other servers keep their changes waiting until the restart is started again or stopped."
            );
            self.update(|r| {
                r.state = RolloutState::Held;
                r.reason = Some(reason.clone());
            })?;
            return self.tell(Some(name), rollout, RolloutOutcome::Held, reason);
        }
        let from = rollout.server(name).map_or(rollout.from, |s| s.from);
        let old_build = crate::install::manifest_value(&self.host.layout.install(from), "buildid");
        // Its step now mounts its old build.
        let back = crate::service::control(
            self.host,
            self.systemd,
            crate::service::Action::Restart,
            name.as_str(),
        );
        let build = rollout.to_build.clone().unwrap_or_else(|| "?".to_owned());
        let mut reason = format!(
            "{name} failed its check on build {build}: {why}. It is back on build {}",
            old_build.as_deref().unwrap_or("?")
        );
        if let Err(e) = back {
            reason = format!(
                "{name} failed its check on build {build}: {why}. Its restart on build {} failed too: {}",
                old_build.as_deref().unwrap_or("?"),
                crate::error::chain(&e)
            );
        }
        reason.push_str("; the other servers stay where they are until the rollout is started again or rolled back.");
        self.update(|r| {
            r.state = RolloutState::Held;
            r.reason = Some(reason.clone());
        })?;
        self.tell(Some(name), rollout, RolloutOutcome::Held, reason)
    }

    /// Every server runs the new build: the rollout is done, and the builds nothing runs go.
    fn finish(&mut self) -> Result<Rollout, AgentError> {
        let rollout = self.update(|r| r.state = RolloutState::Done)?;
        let downtimes: Vec<String> = rollout
            .servers
            .iter()
            .filter_map(|s| {
                Some(format!(
                    "{} {:.1} s",
                    s.name,
                    s.downtime_ms? as f64 / 1000.0
                ))
            })
            .collect();
        let detail = format!(
            "{} server{} {}{}",
            rollout.servers.len(),
            if rollout.servers.len() == 1 { "" } else { "s" },
            match rollout.kind {
                RolloutKind::Build => format!("moved to {}", rollout.what()),
                RolloutKind::Changes => "restarted with their changes".to_owned(),
            },
            if downtimes.is_empty() {
                String::new()
            } else {
                format!(" (down for {})", downtimes.join(", "))
            }
        );
        self.tell(None, &rollout, RolloutOutcome::Done, detail)?;
        if rollout.kind == RolloutKind::Build {
            crate::install::remove_unused_installs(&self.host.layout);
        }
        Ok(rollout)
    }

    /// Every server the rollout moved goes back to the build it ran (at once: the admin
    /// asked), new mounts use the old build again, and the new one goes.
    fn roll_back(&mut self) -> Result<Rollout, AgentError> {
        let rollout = self.read().ok_or_else(|| AgentError::NotFound {
            what: "rollout",
            name: "on this host".to_owned(),
        })?;
        let mut failed = Vec::new();
        for server in &rollout.servers {
            let on_new = matches!(server.step, Step::Restarting | Step::Checking | Step::Moved);
            self.set_step(&server.name, Step::Back, None)?;
            let running = self
                .systemd
                .show(&unit(&server.name))
                .is_ok_and(|s| s.is_active());
            if on_new
                && running
                && let Err(e) = crate::service::control(
                    self.host,
                    self.systemd,
                    crate::service::Action::Restart,
                    server.name.as_str(),
                )
            {
                failed.push(format!("{}: {}", server.name, crate::error::chain(&e)));
            }
        }
        let installs = self.installs();
        let pointer = installs.join(crate::layout::CURRENT_INSTALL);
        if rollout.from == 0 {
            match std::fs::remove_file(&pointer) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_context("remove", &pointer)(e));
                }
                _ => {}
            }
        } else {
            crate::fsutil::write_atomic(&pointer, format!("{}\n", rollout.from).as_bytes(), 0o644)
                .map_err(io_context("write", &pointer))?;
        }
        let rollout = self.update(|r| r.state = RolloutState::RolledBack)?;
        let build = rollout.to_build.clone().unwrap_or_else(|| "?".to_owned());
        let old =
            crate::install::manifest_value(&self.host.layout.install(rollout.from), "buildid");
        let mut detail = format!(
            "{} server{} back on build {}; build {build} removed",
            rollout.servers.len(),
            if rollout.servers.len() == 1 { "" } else { "s" },
            old.as_deref().unwrap_or("?")
        );
        if !failed.is_empty() {
            detail.push_str(&format!("; restarts that failed: {}", failed.join("; ")));
        }
        self.tell(None, &rollout, RolloutOutcome::RolledBack, detail)?;
        crate::install::remove_unused_installs(&self.host.layout);
        Ok(rollout)
    }

    fn tell(
        &self,
        server: Option<&ServerName>,
        rollout: &Rollout,
        outcome: RolloutOutcome,
        detail: String,
    ) -> Result<(), AgentError> {
        let what = EventKind::Rollout {
            outcome,
            kind: rollout.kind,
            build: rollout.to_build.clone().unwrap_or_else(|| "?".to_owned()),
            detail,
        };
        crate::notify::tell(
            &self.host.layout.automation(),
            server.map(ServerName::as_str),
            what,
            self.hostname,
        )
        .map(drop)
    }
}

/// A server being drained for its turn; the drain stops when the admin pauses or rolls back.
struct Draining<'h> {
    players: crate::service::LivePlayers<'h>,
    installs: PathBuf,
}

impl drain::Players for Draining<'_> {
    fn humans(&mut self) -> Option<u32> {
        self.players.humans()
    }

    fn say(&mut self, text: &str) {
        self.players.say(text);
    }

    fn called_off(&mut self) -> bool {
        crate::layout::read_rollout(&self.installs).is_none_or(|r| r.wanted != Wanted::Run)
    }
}

/// The server's A2S_INFO once it answers, polling until `within` has passed.
fn answer_within(address: std::net::SocketAddr, within: Duration) -> Option<crate::a2s::Info> {
    let deadline = Instant::now() + within;
    let client = crate::a2s::Client::new(address, Duration::from_millis(500)).ok()?;
    loop {
        if let Ok(info) = client.info() {
            return Some(info);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Each mounted server and the install it runs (`None`: not one of this host's installs),
/// by name.
fn mounted(host: &Host<'_>) -> Vec<(ServerName, Option<InstallNumber>)> {
    let layout = &host.layout;
    let Some(binds) = crate::install::installation_binds(layout) else {
        return Vec::new();
    };
    let mut numbers: Vec<(InstallNumber, PathBuf)> = vec![(0, layout.first_installation())];
    if let Ok(entries) = std::fs::read_dir(layout.installs()) {
        for entry in entries.flatten() {
            if let Some(n) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                numbers.push((n, entry.path()));
            }
        }
    }
    let mut servers = binds
        .into_iter()
        .filter_map(|(target, root)| {
            // runtime/<name>/idmap/_installation
            let name = target.parent()?.parent()?.file_name()?.to_str()?;
            let name = ServerName::new(name).ok()?;
            let install = numbers
                .iter()
                .find(|(_, dir)| crate::install::in_use(dir, std::slice::from_ref(&root)))
                .map(|(n, _)| *n);
            Some((name, install))
        })
        .collect::<Vec<_>>();
    servers.sort_by(|a, b| a.0.cmp(&b.0));
    servers
}

/// The canary when the admin named none: the emptiest of the servers whose blueprint asks
/// to go first, else the emptiest of all (by A2S; the first by name among equals).
fn pick_canary(host: &Host<'_>, servers: &[RolloutServer]) -> ServerName {
    let candidates = servers.iter().map(|s| {
        let spec = crate::server::read_spec(host, &s.name).ok();
        let humans = spec.as_ref().and_then(|spec| {
            let address = (crate::server::query_ip(spec), spec.port).into();
            let info = crate::a2s::Client::new(address, Duration::from_secs(1))
                .ok()?
                .info()
                .ok()?;
            Some(u32::from(info.players.saturating_sub(info.bots)))
        });
        let asked = spec.is_some_and(|spec| spec.rollout_canary);
        (s.name.clone(), asked, humans)
    });
    first_canary(candidates).unwrap_or_else(|| servers[0].name.clone())
}

/// Of `(server, its blueprint asks to go first, its human players if it answered)`: those
/// that ask first, then the fewest players (a server that did not answer last), then by name.
fn first_canary(
    candidates: impl IntoIterator<Item = (ServerName, bool, Option<u32>)>,
) -> Option<ServerName> {
    candidates
        .into_iter()
        .min_by_key(|(name, asked, humans)| (!asked, humans.unwrap_or(u32::MAX), name.clone()))
        .map(|(name, _, _)| name)
}

fn names(servers: &[RolloutServer]) -> String {
    servers
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `PatchVersion` of an install's `left4dead2/steam.inf`: the version A2S tells.
pub fn patch_version(install: &Path) -> Option<String> {
    std::fs::read_to_string(install.join("left4dead2/steam.inf"))
        .ok()?
        .lines()
        .find_map(|line| line.trim().strip_prefix("PatchVersion="))
        .map(|v| v.trim().to_owned())
}

/// SourceMod's error log lines in a server's upper layer, without their time stamps. Read
/// as the owner, without following links the game account may have put there.
fn sourcemod_errors(upper: &Path) -> Vec<String> {
    let Ok(upper) = crate::dir::Dir::open_no_follow(upper) else {
        return Vec::new();
    };
    let Ok(Some(logs)) = upper.open_beneath(Path::new("left4dead2/addons/sourcemod/logs")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = logs
        .names()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with("errors_") && n.ends_with(".log"))
        .collect();
    names.sort();
    let mut lines = Vec::new();
    for name in names {
        if let Ok(Some(bytes)) = logs.read_file(&name, 8 << 20) {
            lines.extend(
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(|l| without_stamp(l).to_owned()),
            );
        }
    }
    lines
}

/// `L 09/01/2024 - 21:58:29: [SM] …` without `L 09/01/2024 - 21:58:29: `.
fn without_stamp(line: &str) -> &str {
    match line.strip_prefix("L ") {
        Some(rest) if rest.len() > 23 && rest.as_bytes().get(21) == Some(&b':') => {
            rest[22..].trim()
        }
        _ => line.trim(),
    }
}

/// What of SourceMod's error log is new since `before` and tells of a game update
/// breaking it: a signature not found, an extension or plugin that did not load.
fn new_errors(upper: &Path, before: &[String]) -> Option<String> {
    let now = sourcemod_errors(upper);
    let breaking: Vec<&String> = now
        .iter()
        .filter(|line| !before.contains(line) && is_breakage(line))
        .collect();
    let first = breaking.first()?;
    let plugin = breaking
        .iter()
        .find(|l| l.contains("Unable to load plugin") || l.contains("Unable to load extension"));
    Some(match plugin {
        Some(plugin) if plugin != first => {
            format!("SourceMod's error log says \"{first}\" and \"{plugin}\"")
        }
        _ => format!("SourceMod's error log says \"{first}\""),
    })
}

fn is_breakage(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    [
        "signature",
        "unable to load extension",
        "unable to load plugin",
        "failed to load extension",
    ]
    .iter()
    .any(|p| lower.contains(p))
}

fn save(installs: &Path, rollout: &Rollout) -> Result<(), AgentError> {
    let path = installs.join(crate::layout::ROLLOUT);
    let text = serde_json::to_vec_pretty(rollout)
        .map_err(|e| AgentError::failed("cannot write the rollout", e))?;
    crate::fsutil::write_atomic(&path, &text, 0o644).map_err(io_context("write", &path))
}

fn now() -> String {
    left4me_protocol::time::rfc3339(crate::events::now_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canary_is_one_that_asks_to_go_first_then_the_emptiest_then_by_name() {
        let n = |name: &str| ServerName::new(name).unwrap();
        let pick = |c: Vec<(&str, bool, Option<u32>)>| {
            first_canary(
                c.into_iter()
                    .map(|(name, asked, humans)| (n(name), asked, humans)),
            )
        };
        assert_eq!(
            pick(vec![
                ("a", false, Some(0)),
                ("b", true, Some(5)),
                ("c", true, Some(3))
            ]),
            Some(n("c"))
        );
        assert_eq!(
            pick(vec![
                ("b", false, Some(2)),
                ("a", false, Some(2)),
                ("c", false, None)
            ]),
            Some(n("a"))
        );
        // One that did not answer goes after every one that did.
        assert_eq!(
            pick(vec![("a", false, None), ("b", false, Some(8))]),
            Some(n("b"))
        );
        assert_eq!(pick(vec![]), None);
    }

    #[test]
    fn sourcemod_lines_lose_their_stamp_and_breakage_is_told_by_its_words() {
        let line = "L 09/01/2024 - 21:58:29: [SM] Exception reported: 'a2s_fix' Signature broken.";
        assert_eq!(
            without_stamp(line),
            "[SM] Exception reported: 'a2s_fix' Signature broken."
        );
        assert!(is_breakage(without_stamp(line)));
        assert!(is_breakage(
            "[SM] Unable to load extension \"left4dhooks.ext\": file not found"
        ));
        assert!(!is_breakage("SourceMod error session started"));
        assert!(!is_breakage(
            "[SM] Failed to load plugin \"nextmap.smx\": Nextmap is incompatible with this game."
        ));
    }

    #[test]
    fn only_new_breakage_fails_a_check() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("left4dead2/addons/sourcemod/logs");
        std::fs::create_dir_all(&logs).unwrap();
        let old = "L 11/30/2026 - 10:00:00: [SM] Unable to load plugin \"old.smx\": Error detected in plugin startup (see error logs)\n";
        std::fs::write(logs.join("errors_20261130.log"), old).unwrap();
        let before = sourcemod_errors(dir.path());
        // The same failure again after the restart is the old one, not the update's.
        std::fs::write(
            logs.join("errors_20261201.log"),
            old.replace("11/30", "12/01"),
        )
        .unwrap();
        assert_eq!(new_errors(dir.path(), &before), None);
        std::fs::write(
            logs.join("errors_20261201.log"),
            "L 12/01/2026 - 10:00:00: [SM] Exception reported: Failed to find signature: CTerrorPlayer::OnStaggered\n\
             L 12/01/2026 - 10:00:00: [SM] Blaming: l4d2_stagger.smx\n\
             L 12/01/2026 - 10:00:00: [SM] Unable to load plugin \"l4d2_stagger.smx\": Error detected in plugin startup (see error logs)\n",
        )
        .unwrap();
        assert_eq!(
            new_errors(dir.path(), &before).unwrap(),
            "SourceMod's error log says \"[SM] Exception reported: Failed to find signature: \
             CTerrorPlayer::OnStaggered\" and \"[SM] Unable to load plugin \"l4d2_stagger.smx\": \
             Error detected in plugin startup (see error logs)\""
        );
    }

    #[test]
    fn a_link_in_the_upper_layer_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(
            elsewhere.path().join("errors_20261201.log"),
            "L 12/01/2026 - 10:00:00: [SM] Unable to load plugin \"x.smx\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("left4dead2/addons/sourcemod")).unwrap();
        std::os::unix::fs::symlink(
            elsewhere.path(),
            dir.path().join("left4dead2/addons/sourcemod/logs"),
        )
        .unwrap();
        assert!(sourcemod_errors(dir.path()).is_empty());
    }
}
