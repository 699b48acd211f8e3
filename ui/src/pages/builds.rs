//! A host's game builds and the rollout that moves its servers from one to the next, and
//! the same rolling restart for the changes that wait for servers' next start. The host
//! runs the rollout (with this app closed too) and sends no events about it, so while one
//! is under way the panel asks again every few seconds.

use crate::components::{Dialog, ErrorNotice, SelectField, TextField};
use crate::hooks::{Loadable, field, use_action, use_query, use_ticker};
use crate::pages::host_events::local_time;
use left4me_protocol::command;
use left4me_protocol::rollout::{
    Build, Builds, DEFAULT_CHECK_SECONDS, DEFAULT_DRAIN_MINUTES, Rollout, RolloutKind,
    RolloutServer, RolloutState, Step, Waiting,
};
use left4me_protocol::{ErrorCode, IpcError, ServerName};
use yew::prelude::*;

/// How often an open rollout is read again.
const POLL_MS: i32 = 3000;
/// How many reads after "Restart one at a time" wait for the host's rollout to open (the
/// app hands the servers their specs first).
const STARTING_POLLS: u64 = 40;

#[derive(Clone, PartialEq)]
struct StartForm {
    /// Empty: the host picks the emptiest server.
    canary: String,
    drain_minutes: String,
    check_seconds: String,
}

impl StartForm {
    fn new() -> StartForm {
        StartForm {
            canary: String::new(),
            drain_minutes: DEFAULT_DRAIN_MINUTES.to_string(),
            check_seconds: DEFAULT_CHECK_SECONDS.to_string(),
        }
    }

    /// The command it describes, or what is wrong with it.
    fn command(&self, host_id: i64) -> Result<command::StartRollout, String> {
        let (canary, drain_minutes, check_seconds) = self.pace()?;
        Ok(command::StartRollout {
            host_id,
            canary,
            drain_minutes: Some(drain_minutes),
            check_seconds: Some(check_seconds),
        })
    }

    /// The restart with changes it describes, or what is wrong with it.
    fn changes_command(&self, host_id: i64) -> Result<command::RestartWithChanges, String> {
        let (canary, drain_minutes, check_seconds) = self.pace()?;
        Ok(command::RestartWithChanges {
            host_id,
            canary,
            drain_minutes: Some(drain_minutes),
            check_seconds: Some(check_seconds),
        })
    }

    fn pace(&self) -> Result<(Option<ServerName>, u32, u32), String> {
        let canary = match self.canary.as_str() {
            "" => None,
            name => Some(ServerName::new(name).map_err(|e| e.to_string())?),
        };
        let drain_minutes = self
            .drain_minutes
            .trim()
            .parse()
            .map_err(|_| "the wait for players is a whole number of minutes".to_owned())?;
        let check_seconds = self
            .check_seconds
            .trim()
            .parse()
            .map_err(|_| "the canary's watch is a whole number of seconds".to_owned())?;
        Ok((canary, drain_minutes, check_seconds))
    }
}

#[derive(Properties, PartialEq)]
pub struct Props {
    pub host_id: i64,
    pub host_name: String,
    pub is_admin: bool,
}

#[function_component(HostBuilds)]
pub fn host_builds(props: &Props) -> Html {
    let host_id = props.host_id;
    let host = props.host_name.clone();
    let reloads = use_state(|| 0u64);
    let form = use_state(StartForm::new);
    let changes_form = use_state(StartForm::new);
    let confirm_back = use_state(|| false);
    let action = use_action();
    let open = use_state(|| false);
    // The tick at which a restart with changes was asked for, until its rollout opens.
    let starting = use_state(|| None::<u64>);
    let tick = use_ticker(*open || starting.is_some(), POLL_MS);
    let builds = use_query(command::HostBuilds { host_id }, *reloads + tick);
    let is_open = builds
        .ready()
        .and_then(|b| b.rollout.as_ref())
        .is_some_and(|r| r.state.is_open());
    if *open != is_open {
        open.set(is_open);
    }
    if let Some(asked) = *starting
        && (is_open || tick > asked + STARTING_POLLS)
    {
        starting.set(None);
    }

    let reload = {
        let reloads = reloads.clone();
        move |_: Builds| reloads.set(*reloads + 1)
    };
    let on_start = {
        let (action, form, reload) = (action.clone(), form.clone(), reload.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match form.command(host_id) {
                Ok(command) => action.run(command, reload.clone()),
                Err(message) => action.fail(IpcError::new(ErrorCode::InvalidInput, message)),
            }
        })
    };
    let on_changes = {
        let (action, form, starting) = (action.clone(), changes_form.clone(), starting.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match form.changes_command(host_id) {
                Ok(command) => {
                    let starting = starting.clone();
                    action.run(command, move |_| starting.set(Some(tick)))
                }
                Err(message) => action.fail(IpcError::new(ErrorCode::InvalidInput, message)),
            }
        })
    };
    let on_stop = {
        let (action, reload) = (action.clone(), reload.clone());
        Callback::from(move |_| action.run(command::StopRollout { host_id }, reload.clone()))
    };
    let go_on = {
        let (action, reload) = (action.clone(), reload.clone());
        Callback::from(move |_| {
            action.run(
                command::StartRollout {
                    host_id,
                    canary: None,
                    drain_minutes: None,
                    check_seconds: None,
                },
                reload.clone(),
            )
        })
    };
    let on_pause = {
        let (action, reload) = (action.clone(), reload.clone());
        Callback::from(move |_| action.run(command::PauseRollout { host_id }, reload.clone()))
    };
    let on_back = {
        let (action, reload, confirm) = (action.clone(), reload.clone(), confirm_back.clone());
        Callback::from(move |()| {
            let (reload, confirm) = (reload.clone(), confirm.clone());
            action.run(command::RollBack { host_id }, move |b| {
                confirm.set(false);
                reload(b)
            })
        })
    };

    let body = match &builds {
        Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Asking the host…" }</p> },
        Loadable::Failed(error) => html! { <ErrorNotice error={error.clone()} /> },
        Loadable::Ready(builds) => {
            let rollout = builds.rollout.as_ref();
            let behind = behind(builds);
            let any_open = rollout.is_some_and(|r| r.state.is_open());
            let can_start = props.is_admin && !behind.is_empty() && !any_open;
            let can_restart = props.is_admin && !builds.waiting.is_empty() && !any_open;
            // A restart with changes under way lists its servers itself.
            let show_waiting = !builds.waiting.is_empty()
                && !rollout.is_some_and(|r| r.state.is_open() && r.kind == RolloutKind::Changes);
            html! {
                <>
                    <ul class="build-list">
                        { for builds.builds.iter().map(|b| build_row(&host, b)) }
                    </ul>
                    if let Some(r) = rollout {
                        { rollout_panel(&host, r) }
                        if props.is_admin && r.state.is_open() {
                            <div class="row actions">
                                if r.state == RolloutState::Running {
                                    <button class="plain rollout-pause" onclick={on_pause} disabled={action.busy()}>{ "Pause" }</button>
                                } else {
                                    <button class="rollout-go-on" onclick={go_on} disabled={action.busy()}>
                                        { if r.state == RolloutState::Held { "Try again" } else { "Go on" } }
                                    </button>
                                }
                                if r.kind == RolloutKind::Changes {
                                    <button class="plain rollout-stop" onclick={on_stop} disabled={action.busy()}>{ "Stop" }</button>
                                } else {
                                    <button class="plain danger rollout-back" disabled={action.busy()}
                                        onclick={{ let c = confirm_back.clone(); Callback::from(move |_| c.set(true)) }}>{ "Roll back" }</button>
                                }
                            </div>
                        }
                    }
                    if can_start {
                        <form class="rollout-form" onsubmit={on_start}>
                            <p>{ format!("{} on an older build than the current one: {}.",
                                if behind.len() == 1 { "1 running server is".to_owned() } else { format!("{} running servers are", behind.len()) },
                                behind.iter().map(ServerName::as_str).collect::<Vec<_>>().join(", ")) }</p>
                            <SelectField id={format!("rollout-canary-{host}")} label="Canary (moved and checked first)"
                                options={std::iter::once((String::new(), "The emptiest server".to_owned()))
                                    .chain(behind.iter().map(|s| (s.to_string(), s.to_string()))).collect::<Vec<_>>()}
                                value={form.canary.clone()} on_change={field(&form, |f, v| f.canary = v)} />
                            <TextField id={format!("rollout-drain-{host}")} label="Wait for players to leave, at most (minutes)"
                                kind="number" value={form.drain_minutes.clone()} on_change={field(&form, |f, v| f.drain_minutes = v)} />
                            <TextField id={format!("rollout-check-{host}")} label="Watch the canary for (seconds)"
                                kind="number" value={form.check_seconds.clone()} on_change={field(&form, |f, v| f.check_seconds = v)} />
                            <div class="row actions">
                                <button type="submit" class="rollout-start" disabled={action.busy()}>{ "Start rollout" }</button>
                            </div>
                        </form>
                    } else if behind.is_empty() && !rollout.is_some_and(|r| r.state.is_open()) {
                        <p class="muted all-current">{ "Every running server is on the current build." }</p>
                    }
                    if show_waiting {
                        <div class="waiting-changes" id={format!("changes-{host}")}>
                            <p>{ format!("Changes wait for a restart on {}:",
                                if builds.waiting.len() == 1 { "1 running server".to_owned() } else { format!("{} running servers", builds.waiting.len()) }) }</p>
                            <ul>
                                { for builds.waiting.iter().map(|w| waiting_row(&host, w)) }
                            </ul>
                            if can_restart {
                                <form class="changes-form" onsubmit={on_changes}>
                                    <SelectField id={format!("changes-canary-{host}")} label="First (restarted and checked before the others)"
                                        options={std::iter::once((String::new(), "The emptiest server".to_owned()))
                                            .chain(builds.waiting.iter().map(|w| (w.server.to_string(), w.server.to_string()))).collect::<Vec<_>>()}
                                        value={changes_form.canary.clone()} on_change={field(&changes_form, |f, v| f.canary = v)} />
                                    <TextField id={format!("changes-drain-{host}")} label="Wait for players to leave, at most (minutes)"
                                        kind="number" value={changes_form.drain_minutes.clone()} on_change={field(&changes_form, |f, v| f.drain_minutes = v)} />
                                    <TextField id={format!("changes-check-{host}")} label="Watch the first one for (seconds)"
                                        kind="number" value={changes_form.check_seconds.clone()} on_change={field(&changes_form, |f, v| f.check_seconds = v)} />
                                    <div class="row actions">
                                        <button type="submit" class="changes-start" disabled={action.busy() || starting.is_some()}>{ "Restart one at a time" }</button>
                                    </div>
                                </form>
                            }
                            if starting.is_some() && !any_open {
                                <p class="muted changes-starting" aria-busy="true">{ "Handing the servers their changes; the host then restarts them one at a time." }</p>
                            }
                        </div>
                    }
                </>
            }
        }
    };
    html! {
        <section class="builds" id={format!("builds-{host}")} aria-label={format!("Game builds of {host}")}>
            <h3>{ "Game builds" }</h3>
            <p class="muted">{ "An update is built beside the running build. A rollout moves the servers to it one at a time: a canary first, checked on the new build, then each other server once its players have left. Changes that wait for a restart (a changed blueprint, an overlay with new content) are restarted into the same way. The host does it, also while this app is closed." }</p>
            { body }
            if let Some(error) = action.error() {
                <ErrorNotice {error} />
            }
            if *confirm_back {
                <Dialog id="roll-back-dialog" title={format!("Roll back the update on {host}?")} confirm_label="Roll back" danger=true
                    on_confirm={on_back} on_cancel={{ let c = confirm_back.clone(); Callback::from(move |()| c.set(false)) }} busy={action.busy()}>
                    <p>{ "Each server already moved restarts on the build it ran before, at once; the new build is removed." }</p>
                </Dialog>
            }
        </section>
    }
}

fn waiting_row(host: &str, w: &Waiting) -> Html {
    html! {
        <li class="waiting" id={format!("changes-{host}-{}", w.server)}>
            <strong>{ w.server.to_string() }</strong>
            { format!(": {}", w.changes.join("; ")) }
        </li>
    }
}

/// The running servers on another build than the current one: what a rollout would move.
fn behind(builds: &Builds) -> Vec<ServerName> {
    builds
        .builds
        .iter()
        .filter(|b| !b.current)
        .flat_map(|b| b.servers.iter().cloned())
        .collect()
}

fn build_row(host: &str, b: &Build) -> Html {
    let name = match (&b.build, &b.version) {
        (Some(build), Some(version)) => format!("Build {build} (version {version})"),
        (Some(build), None) => format!("Build {build}"),
        _ => "Unknown build".to_owned(),
    };
    let servers = if b.servers.is_empty() {
        "no server runs it".to_owned()
    } else {
        format!(
            "runs {}",
            b.servers
                .iter()
                .map(ServerName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    html! {
        <li class={classes!("build", b.current.then_some("current"))} id={format!("build-{host}-{}", b.install)}>
            <strong>{ name }</strong>
            if b.current {
                <span class="badge">{ "current" }</span>
            }
            <span class="muted">{ format!(" · {servers}") }</span>
        </li>
    }
}

fn rollout_panel(host: &str, r: &Rollout) -> Html {
    let title = match r.kind {
        RolloutKind::Build => format!(
            "Rollout to build {}: {}",
            r.to_build.as_deref().unwrap_or("?"),
            r.state.describe()
        ),
        RolloutKind::Changes => format!("Restart with changes: {}", r.state.describe()),
    };
    html! {
        <div class={classes!("rollout", state_class(r.state))} id={format!("rollout-{host}")}>
            <p class="rollout-state">
                <strong>{ title }</strong>
                { format!(" · {} · started {}", r.progress(), local_time(&r.started)) }
            </p>
            if let Some(reason) = &r.reason {
                <p class="notice notice-error rollout-reason" role="alert">{ reason }</p>
            }
            <ol class="rollout-servers">
                { for r.servers.iter().map(|s| server_row(host, r, s)) }
            </ol>
        </div>
    }
}

fn server_row(host: &str, r: &Rollout, s: &RolloutServer) -> Html {
    let canary = s.name == r.canary;
    let downtime = s
        .downtime_ms
        .map(|ms| format!("down {:.1} s", ms as f64 / 1000.0));
    html! {
        <li class={classes!("rollout-server", step_class(s.step))} id={format!("rollout-{host}-{}", s.name)}>
            <strong>{ s.name.to_string() }</strong>
            if canary {
                <span class="badge">{ "canary" }</span>
            }
            <span class="step">{ r.describe_step(s.step) }</span>
            if let Some(downtime) = downtime {
                <span class="muted downtime">{ downtime }</span>
            }
            if let Some(detail) = &s.detail {
                <p class="detail">{ detail }</p>
            }
        </li>
    }
}

fn state_class(state: RolloutState) -> &'static str {
    match state {
        RolloutState::Running => "running",
        RolloutState::Paused => "paused",
        RolloutState::Held => "held",
        RolloutState::Done => "done",
        RolloutState::RolledBack => "rolled-back",
        RolloutState::Stopped => "stopped",
    }
}

fn step_class(step: Step) -> &'static str {
    match step {
        Step::Waiting => "waiting",
        Step::Draining => "draining",
        Step::Restarting => "restarting",
        Step::Checking => "checking",
        Step::Moved => "moved",
        Step::Failed => "failed",
        Step::Back => "back",
    }
}
