//! One server's page: its live state and actions, its console log as it is written
//! (follow, pause, search) and an RCON console while it runs.

use crate::activity::ActivityContext;
use crate::app::{Navigator, Screen};
use crate::components::{ErrorNotice, SelectField, TextField};
use crate::hooks::{Loadable, use_action, use_query, use_revision};
use crate::ipc;
use crate::live::{Card, LiveContext};
use crate::logview::{LogView, SHOW};
use crate::pages::host_events::local_time;
use crate::pages::hosts::JobProgress;
use crate::text;
use left4me_protocol::agent::LiveInfo;
use left4me_protocol::model::{NewServer, Server};
use left4me_protocol::units::human_bytes;
use left4me_protocol::{ErrorCode, IpcError, LiveState, command};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub server_id: i64,
    pub navigate: Navigator,
}

#[function_component(ServerPage)]
pub fn server_page(props: &Props) -> Html {
    let activity = use_context::<ActivityContext>().expect("activity context");
    let live = use_context::<LiveContext>().expect("live context");
    let (revision, reload) = use_revision();
    let servers = use_query(command::Servers {}, revision);
    let id = props.server_id;
    let action = use_action();
    let others: Vec<Server> = servers
        .ready()
        .map(|list| {
            list.iter()
                .filter(|s| s.id != id && !s.cores.is_empty())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let server = match &servers {
        Loadable::Loading => return html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
        Loadable::Failed(error) => return html! { <ErrorNotice error={error.clone()} /> },
        Loadable::Ready(list) => match list.iter().find(|s| s.id == id) {
            Some(server) => server.clone(),
            None => {
                let navigate = props.navigate.clone();
                return html! {
                    <section class="card">
                        <p>{ "This server no longer exists." }</p>
                        <button onclick={Callback::from(move |_| navigate.emit(Screen::Servers))}>{ "Back to servers" }</button>
                    </section>
                };
            }
        },
    };
    let status = live.statuses.get(&id);
    let card = Card::new(&server, status);
    let running = status.is_some_and(|s| s.state == LiveState::Running);
    let job = activity.active_for_server(id).cloned();
    let busy = action.busy() || job.is_some();
    let detail = status.and_then(|s| s.status.as_ref());
    let answer = detail.and_then(|d| d.live.clone());
    html! {
        <>
            <section class="card" aria-labelledby="server-title">
                <header class="row">
                    <h1 id="server-title">{ &card.name }</h1>
                    <span class={classes!("state", card.state.replace(' ', "-"))} id="server-state">{ card.state }</span>
                </header>
                <dl class="facts">
                    <dt>{ "Map" }</dt><dd id="server-map">{ card.map.clone().unwrap_or_else(|| "–".into()) }</dd>
                    <dt>{ "Players" }</dt><dd id="server-players">{ card.players.map_or_else(|| "–".into(), |(n, m)| format!("{n}/{m}")) }</dd>
                    <dt>{ "Host" }</dt><dd>{ format!("{}:{}", card.host, card.port) }</dd>
                    <dt>{ "Blueprint" }</dt><dd>{ &card.blueprint }{ if card.pending_changes { " (changed: a restart applies it)" } else { "" } }</dd>
                    if let Some(d) = detail {
                        <dt>{ "Since" }</dt><dd>{ d.since.clone().unwrap_or_else(|| "–".into()) }</dd>
                        <dt>{ "Restarts after crashes" }</dt><dd>{ d.restarts }</dd>
                    }
                </dl>
                if let Some(text) = &card.detail {
                    <p class="detail">{ text }</p>
                }
                <div class="row actions">
                    <button id="server-start" disabled={busy} onclick={action.on_click(command::StartServer { server_id: id })}>{ "Start" }</button>
                    <button id="server-stop" disabled={busy} onclick={action.on_click(command::StopServer { server_id: id })}>{ "Stop" }</button>
                    <button id="server-restart" disabled={busy} onclick={action.on_click(command::RestartServer { server_id: id })}>{ "Restart" }</button>
                </div>
                if let Some(job) = job {
                    <JobProgress {job} />
                }
                if let Some(error) = action.error() {
                    <ErrorNotice {error} />
                }
            </section>
            <PlayerList live={answer} {running} />
            <ResourcePanel server_id={id} {running} />
            <CoreMap server={server.clone()} {others} on_changed={reload} />
            <BackupPanel server={server.clone()} {busy} />
            <LogPanel server_id={id} />
            <RconConsole server_id={id} {running} />
        </>
    }
}

#[derive(Properties, PartialEq)]
struct ResourceProps {
    server_id: i64,
    running: bool,
}

/// What the server's cgroup shows of its limits at work, read from its host on request:
/// the game's own memory (not the page cache it shares), out-of-memory kills, CPU time
/// its quota held back, and whether the game keeps its tickrate.
#[function_component(ResourcePanel)]
fn resource_panel(props: &ResourceProps) -> Html {
    let reloads = use_state(|| 0u64);
    // Asked again when the server starts or stops, and on "Refresh".
    let revision = *reloads * 2 + u64::from(props.running);
    let usage = use_query(
        command::ServerUsage {
            server_id: props.server_id,
        },
        revision,
    );
    let refresh = {
        let reloads = reloads.clone();
        Callback::from(move |_| reloads.set(*reloads + 1))
    };
    let body = match &usage {
        Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Asking the host…" }</p> },
        Loadable::Failed(error) => html! { <ErrorNotice error={error.clone()} /> },
        Loadable::Ready(None) => html! { <p class="muted">{ "Shown while the server runs." }</p> },
        Loadable::Ready(Some(u)) => {
            let bytes = |b: Option<u64>| b.map_or("–".to_owned(), human_bytes);
            let seconds = |us: Option<u64>| {
                us.map_or("–".to_owned(), |us| format!("{:.1} s", us as f64 / 1e6))
            };
            let kills = u.oom_kills.unwrap_or(0);
            let short_of_cpu = match (u.fps(), u.tickrate) {
                (Some(fps), Some(tickrate)) => fps < 0.9 * f32::from(tickrate),
                _ => false,
            };
            html! {
                <dl class="facts">
                    <dt>{ "Memory" }</dt>
                    <dd id="usage-memory">{ format!("{} of its own ({} with shared page cache)", bytes(u.memory_anon), bytes(u.memory_current)) }</dd>
                    <dt>{ "Out-of-memory kills" }</dt>
                    <dd id="usage-oom" class={classes!((kills > 0).then_some("danger"))}>{ kills }</dd>
                    <dt>{ "CPU" }</dt>
                    <dd id="usage-cpu">{ format!("{} used; {} held back by its quota ({} times)", seconds(u.cpu_usec), seconds(u.throttled_usec), u.throttled_periods.unwrap_or(0)) }</dd>
                    <dt>{ "Frame rate" }</dt>
                    <dd id="usage-fps" class={classes!(short_of_cpu.then_some("danger"))}>
                        { match (u.fps(), u.tickrate) {
                            (Some(fps), Some(tickrate)) => format!("{fps:.2} fps at tickrate {tickrate}{}", if short_of_cpu { ": short of CPU" } else { "" }),
                            _ => "–".to_owned(),
                        } }
                    </dd>
                    <dt>{ "Limits in force" }</dt>
                    <dd id="usage-limits">{ if u.in_force.is_empty() { "none".to_owned() } else { u.in_force.join(", ") } }</dd>
                    <dt>{ "Figures from" }</dt><dd>{ format!("cgroup {}", u.cgroup) }</dd>
                </dl>
            }
        }
    };
    html! {
        <section class="card" aria-labelledby="usage-title" id="server-usage">
            <header class="row">
                <h2 id="usage-title">{ "Resources" }</h2>
                <button class="plain small" id="usage-refresh" onclick={refresh}>{ "Refresh" }</button>
            </header>
            { body }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct BackupProps {
    server: Server,
    /// A job runs on the server: no backup or restore is started meanwhile.
    busy: bool,
}

/// The server's backups, kept on its host: made now or by a schedule, each with what it
/// holds and whether this computer has a copy; any of them can be put back, after a
/// confirmation that says what a restore does.
#[function_component(BackupPanel)]
fn backup_panel(props: &BackupProps) -> Html {
    let (revision, _) = use_revision();
    let backups = use_query(
        command::ServerBackups {
            server_id: props.server.id,
        },
        revision,
    );
    let action = use_action();
    let confirming = use_state(|| None::<String>);
    let copying = use_state(|| None::<String>);
    let id = props.server.id;
    let name = props.server.name.to_string();
    let busy = props.busy || action.busy();
    let body = match &backups {
        Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Asking the host…" }</p> },
        Loadable::Failed(error) => html! { <ErrorNotice error={error.clone()} /> },
        Loadable::Ready(list) if list.is_empty() => {
            html! { <p class="muted" id="backups-none">{ "No backups yet." }</p> }
        }
        Loadable::Ready(list) => html! {
            <table class="table" id="backups-table">
                <thead><tr>
                    <th scope="col">{ "Made" }</th><th scope="col">{ "Why" }</th><th scope="col">{ "Size" }</th>
                    <th scope="col">{ "Files" }</th><th scope="col">{ "Game build" }</th><th scope="col">{ "Copy here" }</th><th></th>
                </tr></thead>
                <tbody>
                    { for list.iter().map(|b| {
                        let info = &b.info;
                        let ask = {
                            let (confirming, backup) = (confirming.clone(), info.id.clone());
                            Callback::from(move |_| confirming.set(Some(backup.clone())))
                        };
                        let ask_new = {
                            let (copying, backup) = (copying.clone(), info.id.clone());
                            Callback::from(move |_| copying.set(Some(backup.clone())))
                        };
                        html! {
                            <tr id={format!("backup-{}", info.id)}>
                                <td title={info.id.clone()}>{ local_time(&info.created) }</td>
                                <td>{ info.kind.describe() }</td>
                                <td>{ human_bytes(info.bytes) }</td>
                                <td>{ format!("{} ({} deleted)", info.files, info.deleted) }</td>
                                <td>{ info.base_build.clone().unwrap_or_else(|| "–".into()) }</td>
                                <td class="backup-copy">{ if b.on_this_computer { "yes" } else { "no" } }</td>
                                <td><div class="row backup-actions">
                                    <button class="plain small backup-restore" disabled={busy} onclick={ask}
                                        aria-label={format!("Restore {name} from {}", info.id)}>{ "Restore" }</button>
                                    <button class="plain small backup-as-new" disabled={busy} onclick={ask_new}
                                        aria-label={format!("Make a new server from backup {} of {name}", info.id)}>{ "As a new server…" }</button>
                                </div></td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
        },
    };
    let confirm = (*confirming).clone().map(|backup| {
        let restore = {
            let (action, confirming, backup) = (action.clone(), confirming.clone(), backup.clone());
            Callback::from(move |_| {
                confirming.set(None);
                action.run(
                    command::RestoreServer {
                        server_id: id,
                        backup_id: backup.clone(),
                    },
                    drop,
                );
            })
        };
        let cancel = {
            let confirming = confirming.clone();
            Callback::from(move |_| confirming.set(None))
        };
        html! {
            <div class="notice notice-warning" role="alertdialog" id="backup-restore-dialog">
                <p><strong>{ format!("Restore {name} from {backup}?") }</strong></p>
                <p>{ "The server stops, its own files are replaced by the backup's (kept first as a backup of their own, to undo this), and it starts again if it was running." }</p>
                <div class="row actions">
                    <button class="danger" id="backup-restore-confirm" onclick={restore}>{ "Restore" }</button>
                    <button class="plain" onclick={cancel}>{ "Cancel" }</button>
                </div>
            </div>
        }
    });
    html! {
        <section class="card" aria-labelledby="backups-title" id="server-backups">
            <header class="row">
                <h2 id="backups-title">{ "Backups" }</h2>
                <button class="plain small" id="backup-now" disabled={busy}
                    onclick={action.on_click(command::BackupServer { server_id: id })}>{ "Back up now" }</button>
            </header>
            <p class="field-help">{ "What cannot be downloaded again: the server's own files (databases, configs its plugins wrote, bans, logs) and its settings, kept on its host and copied to this computer. Schedules on the host can back up nightly." }</p>
            { body }
            { for confirm }
            if let Some(backup) = (*copying).clone() {
                <RestoreAsNew server={props.server.clone()} {backup}
                    on_done={{ let copying = copying.clone(); Callback::from(move |()| copying.set(None)) }} />
            }
            if let Some(error) = action.error() {
                <ErrorNotice {error} />
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct RestoreAsNewProps {
    server: Server,
    backup: String,
    on_done: Callback<()>,
}

/// A new server from one of this server's backups, on this host or another (how a server
/// moves): named, placed and given a blueprint like any new server, its files from the
/// backup.
#[function_component(RestoreAsNew)]
fn restore_as_new(props: &RestoreAsNewProps) -> Html {
    let hosts = use_query(command::Hosts {}, 0);
    let blueprints = use_query(command::Blueprints {}, 0);
    let name = use_state(|| format!("{}-copy", props.server.name));
    let host = use_state(|| props.server.host_id.to_string());
    let blueprint = use_state(|| props.server.blueprint_id.to_string());
    let port = use_state(String::new);
    let made = use_state(|| None::<String>);
    let action = use_action();
    let set = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |v: String| state.set(v))
    };
    let host_options: Vec<(String, String)> = hosts
        .ready()
        .map(|all| {
            all.iter()
                .map(|h| (h.id.to_string(), h.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    let blueprint_options: Vec<(String, String)> = blueprints
        .ready()
        .map(|all| {
            all.iter()
                .map(|b| (b.id.to_string(), b.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    let on_submit = {
        let (action, made) = (action.clone(), made.clone());
        let (name, host, blueprint, port) = (
            (*name).clone(),
            (*host).clone(),
            (*blueprint).clone(),
            (*port).clone(),
        );
        let (server_id, backup_id) = (props.server.id, props.backup.clone());
        let host_name = host_options
            .iter()
            .find(|(id, _)| *id == host)
            .map(|(_, n)| n.clone())
            .unwrap_or_default();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (Ok(host_id), Ok(blueprint_id)) = (host.parse(), blueprint.parse()) else {
                return action.fail(IpcError::new(
                    ErrorCode::InvalidInput,
                    "choose a host and a blueprint",
                ));
            };
            let Ok(port) = port.trim().parse::<u16>() else {
                return action.fail(IpcError::new(
                    ErrorCode::InvalidInput,
                    "the port is a number from 1024 to 65535",
                ));
            };
            let made = made.clone();
            let said = format!(
                "Making {} on {host_name} from backup {backup_id}: it is left stopped, and the Jobs page follows it.",
                name.trim()
            );
            action.run(
                command::RestoreAsNewServer {
                    server_id,
                    backup_id: backup_id.clone(),
                    server: NewServer {
                        name: name.trim().to_owned(),
                        host_id,
                        blueprint_id,
                        port,
                    },
                },
                move |_| made.set(Some(said)),
            );
        })
    };
    let cancel = {
        let on_done = props.on_done.clone();
        Callback::from(move |_| on_done.emit(()))
    };
    html! {
        <form class="notice restore-as-new" id="restore-as-new" onsubmit={on_submit}>
            <p><strong>{ format!("A new server from backup {} of {}", props.backup, props.server.name) }</strong></p>
            <p class="field-help">{ "On this host or another: the new server gets this backup's files (its databases, configs and bans) and the blueprint, host and port given here. To move a server, make it on the other host, then delete this one." }</p>
            <TextField id="restore-as-new-name" label="Name" value={(*name).clone()} on_change={set(&name)} autocomplete="off" />
            <SelectField id="restore-as-new-host" label="Host" options={host_options} value={(*host).clone()} on_change={set(&host)} />
            <SelectField id="restore-as-new-blueprint" label="Blueprint" options={blueprint_options} value={(*blueprint).clone()} on_change={set(&blueprint)} />
            <TextField id="restore-as-new-port" label="Port" kind="number" value={(*port).clone()} on_change={set(&port)} />
            if let Some(said) = &*made {
                <p class="made" role="status">{ said }</p>
            }
            if let Some(error) = action.error() {
                <ErrorNotice {error} />
            }
            <div class="row actions">
                <button type="submit" id="restore-as-new-submit" disabled={action.busy() || made.is_some()}>{ "Make the server" }</button>
                <button type="button" class="plain" onclick={cancel}>{ if made.is_some() { "Close" } else { "Cancel" } }</button>
            </div>
        </form>
    }
}

#[derive(Properties, PartialEq)]
struct CoreMapProps {
    server: Server,
    /// The user's other pinned servers: on this host, they show on the cores they hold.
    others: Vec<Server>,
    on_changed: Callback<()>,
}

/// Pinning to whole physical cores, opt-in: the host's cores as a map, each with its
/// hardware threads and the servers pinned to it, where a click picks or drops a core.
/// Hosts that cannot pin (cgroup v1, no cpuset controller) show the map with the reason.
#[function_component(CoreMap)]
fn core_map(props: &CoreMapProps) -> Html {
    let hosts = use_query(command::Hosts {}, 0);
    let chosen = use_state(|| props.server.cores.clone());
    // What became of the last pick, once saved.
    let saved = use_state(|| None::<String>);
    let action = use_action();
    {
        // What the host has is the truth once saved.
        let chosen = chosen.clone();
        use_effect_with(props.server.cores.clone(), move |cores| {
            chosen.set(cores.clone());
        });
    }
    let server = &props.server;
    let facts = hosts
        .ready()
        .and_then(|hosts| hosts.iter().find(|h| h.id == server.host_id))
        .and_then(|h| h.facts.clone());
    let body = match (&hosts, facts) {
        (Loadable::Loading, _) => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
        (Loadable::Failed(error), _) => html! { <ErrorNotice error={error.clone()} /> },
        (_, Some(facts)) if !facts.cores.is_empty() => {
            let refused = facts.pinning_refused.clone();
            let toggle = |core: u32| {
                let chosen = chosen.clone();
                let saved = saved.clone();
                Callback::from(move |_: MouseEvent| {
                    let mut next = (*chosen).clone();
                    match next.iter().position(|c| *c == core) {
                        Some(at) => {
                            next.remove(at);
                        }
                        None => {
                            next.push(core);
                            next.sort_unstable();
                        }
                    }
                    saved.set(None);
                    chosen.set(next);
                })
            };
            let cells = facts.cores.iter().enumerate().map(|(index, cpus)| {
                let core = index as u32;
                let holders: Vec<String> = props
                    .others
                    .iter()
                    .filter(|s| s.host_id == server.host_id && s.cores.contains(&core))
                    .map(|s| s.name.to_string())
                    .collect();
                let picked = chosen.contains(&core);
                let threads = cpus.iter().map(u32::to_string).collect::<Vec<_>>().join(" + ");
                html! {
                    <button
                        class={classes!("core", picked.then_some("picked"), (!holders.is_empty()).then_some("held"))}
                        id={format!("core-{core}")}
                        aria-pressed={picked.to_string()}
                        disabled={refused.is_some() || action.busy()}
                        onclick={toggle(core)}
                    >
                        <span class="core-name">{ format!("core {core}") }</span>
                        <span class="core-cpus">{ format!("CPU {threads}") }</span>
                        <span class="core-holders">{ if holders.is_empty() { "free".to_owned() } else { holders.join(", ") } }</span>
                    </button>
                }
            });
            // Where the host cannot pin, the one change left is to unpin.
            let changed = if refused.is_some() {
                !server.cores.is_empty()
            } else {
                *chosen != server.cores
            };
            let save = {
                let (action, chosen, saved, on_changed) = (
                    action.clone(),
                    chosen.clone(),
                    saved.clone(),
                    props.on_changed.clone(),
                );
                let server_id = server.id;
                let unpin_only = refused.is_some();
                Callback::from(move |_: MouseEvent| {
                    let (saved, on_changed) = (saved.clone(), on_changed.clone());
                    saved.set(None);
                    let pin = command::PinServer {
                        server_id,
                        cores: if unpin_only {
                            Vec::new()
                        } else {
                            (*chosen).clone()
                        },
                    };
                    action.run(pin, move |_| {
                        spawn_local(async move {
                            let given =
                                ipc::call(&command::ApplyServerLimitsNow { server_id }).await;
                            saved.set(Some(
                                if given.is_ok_and(|said| !said.now.is_empty()) {
                                    "Saved and given to the host: in force at once while it runs."
                                } else {
                                    "Saved: the next start or restart applies it, with its other changes."
                                }
                                .to_owned(),
                            ));
                            on_changed.emit(());
                        });
                    });
                })
            };
            let shared: Vec<u32> = chosen
                .iter()
                .copied()
                .filter(|c| {
                    props
                        .others
                        .iter()
                        .any(|s| s.host_id == server.host_id && s.cores.contains(c))
                })
                .collect();
            html! {
                <>
                    if let Some(why) = &refused {
                        <p class="muted" id="cores-refused">{ format!("{}: {why}.", server.host) }</p>
                    }
                    <div class="core-map" role="group" aria-label={format!("Cores of {}", server.host)}>
                        { for cells }
                    </div>
                    if !shared.is_empty() {
                        <p class="field-hint" id="cores-shared">{ format!("Shared with another of your servers: {}. Pinned servers on one core take turns on it.", shared.iter().map(|c| format!("core {c}")).collect::<Vec<_>>().join(", ")) }</p>
                    }
                    // Where the host cannot pin, only a server pinned before can be unpinned.
                    if refused.is_none() || !server.cores.is_empty() {
                    <div class="row actions">
                        <button id="cores-save" disabled={!changed || action.busy()} onclick={save}>
                            { if chosen.is_empty() || refused.is_some() { "Unpin".to_owned() } else { format!("Pin to {}", text::count(chosen.len() as u64, "core", "cores")) } }
                        </button>
                        if let (Some(said), false) = (&*saved, changed) {
                            <span class="muted" id="cores-saved">{ said }</span>
                        }
                    </div>
                    }
                    if let Some(error) = action.error() {
                        <ErrorNotice {error} />
                    }
                </>
            }
        }
        _ => {
            html! { <p class="muted">{ "The host has not told its cores: refresh its facts on the Hosts page." }</p> }
        }
    };
    html! {
        <section class="card" aria-labelledby="cores-title" id="server-cores">
            <h2 id="cores-title">{ "Cores" }</h2>
            <p class="field-help">{ "Optional: pin this server to whole physical cores of its host, each with all its hardware threads, so that other work does not take its CPU time mid-tick." }</p>
            { body }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct PlayersProps {
    /// The server's last A2S answer, when it gave one.
    live: Option<LiveInfo>,
    running: bool,
}

/// Who is playing, from the status feed: name, score and time connected.
#[function_component(PlayerList)]
fn player_list(props: &PlayersProps) -> Html {
    let body = match &props.live {
        _ if !props.running => html! { <p class="muted">{ "Not running." }</p> },
        None => html! { <p class="muted">{ "The server does not answer queries yet." }</p> },
        Some(live) if live.players == 0 => html! { <p class="muted">{ "Nobody is playing." }</p> },
        Some(live) if live.player_list.is_empty() => html! {
            <p class="muted">{ format!("{}; the server did not say who.", text::count(live.players.into(), "player", "players")) }</p>
        },
        Some(live) => html! {
            <table class="table" id="server-player-list">
                <thead><tr><th scope="col">{ "Name" }</th><th scope="col">{ "Score" }</th><th scope="col">{ "Connected" }</th></tr></thead>
                <tbody>
                    { for live.player_list.iter().map(|p| html! {
                        <tr>
                            <td>{ if p.name.is_empty() { "(connecting)" } else { &p.name } }</td>
                            <td>{ p.score }</td>
                            <td>{ text::duration(p.seconds) }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
        },
    };
    html! {
        <section class="card" aria-labelledby="players-title" id="server-players-card">
            <h2 id="players-title">{ "Players" }</h2>
            { body }
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct PanelProps {
    pub server_id: i64,
}

/// The followed log. Lines are kept outside Yew's state (an answer mutates the buffer in
/// place) and each answer renders once. The panel asks for the next lines only once the
/// last ones reached the screen, so a flood waits in the app, not in the window.
#[function_component(LogPanel)]
pub fn log_panel(props: &PanelProps) -> Html {
    let id = props.server_id;
    let view = use_mut_ref(LogView::default);
    let redraw = use_force_update();
    let search = use_state(String::new);
    let error = use_state(|| None);
    // Bumped by "Follow again" after a follow ended.
    let attempt = use_state(|| 0u32);
    let ended = use_state(|| false);
    let pre = use_node_ref();
    {
        let (view, redraw, error, ended) =
            (view.clone(), redraw.clone(), error.clone(), ended.clone());
        use_effect_with((id, *attempt), move |&(id, _)| {
            let alive = Rc::new(Cell::new(true));
            let follow_id = Rc::new(Cell::new(None));
            {
                let (alive, follow_id) = (alive.clone(), follow_id.clone());
                spawn_local(async move {
                    let follow = command::FollowLogs {
                        server_id: id,
                        lines: 200,
                    };
                    let follow = match ipc::call(&follow).await {
                        Ok(follow) => follow,
                        Err(e) => {
                            if alive.get() {
                                error.set(Some(e));
                            }
                            return;
                        }
                    };
                    if !alive.get() {
                        let _ = ipc::call(&command::StopLogs { follow }).await;
                        return;
                    }
                    follow_id.set(Some(follow));
                    loop {
                        let answer = ipc::call(&command::LogLines { follow }).await;
                        if !alive.get() {
                            return;
                        }
                        match answer {
                            Ok(poll) => {
                                if !poll.lines.is_empty() {
                                    view.borrow_mut().push(poll.lines);
                                    redraw.force_update();
                                }
                                if poll.ended {
                                    ended.set(true);
                                    return;
                                }
                            }
                            Err(e) => {
                                error.set(Some(e));
                                return;
                            }
                        }
                        next_frame().await;
                    }
                });
            }
            move || {
                alive.set(false);
                if let Some(follow) = follow_id.get() {
                    spawn_local(async move {
                        let _ = ipc::call(&command::StopLogs { follow }).await;
                    });
                }
            }
        });
    }
    let follow_again = {
        let (view, attempt, ended, error) =
            (view.clone(), attempt.clone(), ended.clone(), error.clone());
        Callback::from(move |_| {
            *view.borrow_mut() = LogView::default();
            ended.set(false);
            error.set(None);
            attempt.set(*attempt + 1);
        })
    };
    let paused = view.borrow().is_paused();
    {
        // Following keeps the newest line in sight.
        let pre = pre.clone();
        use_effect(move || {
            if !paused && let Some(element) = pre.cast::<web_sys::Element>() {
                element.set_scroll_top(element.scroll_height());
            }
        });
    }
    let on_pause = {
        let (view, redraw) = (view.clone(), redraw.clone());
        Callback::from(move |_| {
            view.borrow_mut().toggle_pause();
            redraw.force_update();
        })
    };
    let v = view.borrow();
    // Following, the newest lines in chunks; searching, the matches as one text.
    let (body, matching) = if search.is_empty() {
        let chunks = v.chunks();
        let body = html! {
            for chunks.into_iter().map(|(key, text)| html! {
                <span class="log-chunk" {key}>{ text }</span>
            })
        };
        (body, v.kept())
    } else {
        let (text, matching) = v.render(&search);
        (html! { { text } }, matching)
    };
    html! {
        <section class="card" aria-labelledby="log-title">
            <header class="row">
                <h2 id="log-title">{ "Console log" }</h2>
                <span class="spacer" />
                <TextField id="log-search" label="Search" value={(*search).clone()}
                    on_change={{ let s = search.clone(); Callback::from(move |v: String| s.set(v)) }} />
                <button id="log-pause" class="plain" aria-pressed={paused.to_string()} onclick={on_pause}>
                    { if paused { "Follow" } else { "Pause" } }
                </button>
            </header>
            if let Some(e) = (*error).clone() {
                <ErrorNotice error={e} />
            }
            if *ended {
                <p class="notice notice-warning" id="log-ended" role="status">
                    { "The log stopped following: the connection to its host ended. " }
                    <button class="plain" id="log-follow-again" onclick={follow_again}>{ "Follow again" }</button>
                </p>
            }
            <p class="muted" id="log-counts" aria-live="off">
                { format!("{} lines received", v.received) }
                if !search.is_empty() { { format!(", {matching} matching") } }
                if matching > SHOW { { format!(", showing the last {SHOW}") } }
                if v.dropped() > 0 { { format!(", {} oldest no longer kept", v.dropped()) } }
                if paused { { format!(" · paused, {} new", v.held()) } }
            </p>
            <pre class="log" id="server-log" ref={pre} tabindex="0" aria-label="Console log">{ body }</pre>
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct RconProps {
    server_id: i64,
    running: bool,
}

#[function_component(RconConsole)]
fn rcon_console(props: &RconProps) -> Html {
    let id = props.server_id;
    let command = use_state(String::new);
    let transcript = use_state(Vec::<(String, String)>::new);
    let action = use_action();
    let on_submit = {
        let (command, transcript, action) = (command.clone(), transcript.clone(), action.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let sent = command.trim().to_owned();
            if sent.is_empty() {
                return;
            }
            let (transcript, command) = (transcript.clone(), command.clone());
            let rcon = command::Rcon {
                server_id: id,
                command: sent.clone(),
            };
            action.run(rcon, move |answer| {
                let mut next = (*transcript).clone();
                next.push((sent, answer));
                transcript.set(next);
                command.set(String::new());
            });
        })
    };
    html! {
        <section class="card" aria-labelledby="rcon-title">
            <h2 id="rcon-title">{ "RCON console" }</h2>
            if !props.running {
                <p class="muted">{ "The console answers while the server runs." }</p>
            }
            <pre class="log rcon" id="rcon-output" aria-live="polite">
                { for transcript.iter().map(|(sent, answer)| html! { <>{ format!("] {sent}\n{answer}\n") }</> }) }
            </pre>
            <form class="inline" id="rcon-form" onsubmit={on_submit}>
                <TextField id="rcon-command" label="Command" value={(*command).clone()}
                    on_change={{ let c = command.clone(); Callback::from(move |v: String| c.set(v)) }} autocomplete="off" />
                <button type="submit" id="rcon-send" disabled={!props.running || action.busy() || command.trim().is_empty()}>
                    { if action.busy() { "Sending…" } else { "Send" } }
                </button>
            </form>
            if let Some(error) = action.error() {
                <ErrorNotice {error} />
            }
        </section>
    }
}

/// Resolves at the window's next animation frame, once what was rendered is about to be
/// drawn; at once where there are no frames (no window).
async fn next_frame() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let asked = web_sys::window()
            .and_then(|w| w.request_animation_frame(&resolve).ok())
            .is_some();
        if !asked {
            let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
