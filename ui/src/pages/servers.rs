//! Servers: create one on a host from a blueprint, start, stop, restart, delete, reassign.

use crate::activity::ActivityContext;
use crate::app::{Navigator, Screen};
use crate::components::{Dialog, ErrorNotice, SelectField, TextField};
use crate::forms::ServerForm;
use crate::hooks::{Loadable, use_action, use_query, use_revision};
use crate::live::{LiveContext, state_word};
use crate::pages::hosts::ready_hosts;
use left4me_protocol::command;
use left4me_protocol::model::{Host, Server};
use left4me_protocol::{IpcError, JobState};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub navigate: Navigator,
}

#[function_component(Servers)]
pub fn servers(props: &Props) -> Html {
    let (revision, reload) = use_revision();
    let servers = use_query(command::Servers {}, revision);
    let hosts = use_query(command::Hosts {}, revision);
    let blueprints = use_query(command::Blueprints {}, revision);
    let blueprint_options: Vec<(String, String)> = blueprints
        .ready()
        .map(|list| {
            list.iter()
                .map(|b| (b.id.to_string(), b.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    let list = match &servers {
        Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
        Loadable::Failed(error) => html! { <ErrorNotice error={error.clone()} /> },
        Loadable::Ready(list) if list.is_empty() => {
            html! { <p class="muted">{ "No servers yet." }</p> }
        }
        Loadable::Ready(list) => html! {
            <table class="table" id="servers-table">
                <thead><tr>
                    <th scope="col">{ "Server" }</th><th scope="col">{ "Host" }</th><th scope="col">{ "Port" }</th>
                    <th scope="col">{ "Blueprint" }</th><th scope="col">{ "State" }</th><th scope="col">{ "Actions" }</th>
                </tr></thead>
                <tbody>
                    { for list.iter().map(|server| html! {
                        <ServerRow key={server.id} server={server.clone()} blueprints={blueprint_options.clone()}
                            navigate={props.navigate.clone()} on_changed={reload.clone()} />
                    }) }
                </tbody>
            </table>
        },
    };
    html! {
        <>
            <section class="card" aria-labelledby="servers-title">
                <h1 id="servers-title">{ "Servers" }</h1>
                { list }
            </section>
            <CreateServer hosts={hosts.ready().cloned().unwrap_or_default()} blueprints={blueprint_options} on_created={reload} />
        </>
    }
}

#[derive(Properties, PartialEq)]
struct RowProps {
    server: Server,
    blueprints: Vec<(String, String)>,
    navigate: Navigator,
    on_changed: Callback<()>,
}

#[function_component(ServerRow)]
fn server_row(props: &RowProps) -> Html {
    let activity = use_context::<ActivityContext>().expect("activity context");
    let live = use_context::<LiveContext>().expect("live context");
    let server = &props.server;
    let id = server.id;
    let action = use_action();
    let deleting = use_state(|| false);
    let reassign_to = use_state(|| server.blueprint_id.to_string());
    let job = activity.active_for_server(id).cloned();
    let busy = action.busy() || job.is_some();
    let on_delete = {
        let (action, deleting) = (action.clone(), deleting.clone());
        Callback::from(move |()| {
            let deleting = deleting.clone();
            action.run(command::DeleteServer { server_id: id }, move |_| {
                deleting.set(false)
            });
        })
    };
    let on_reassign = {
        let (action, reassign_to, on_changed) = (
            action.clone(),
            reassign_to.clone(),
            props.on_changed.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let Ok(blueprint_id) = reassign_to.parse::<i64>() else {
                return;
            };
            let on_changed = on_changed.clone();
            let reassign = command::ReassignServer {
                server_id: id,
                blueprint_id,
            };
            action.run(reassign, move |_| on_changed.emit(()));
        })
    };
    let open = {
        let navigate = props.navigate.clone();
        Callback::from(move |_| navigate.emit(Screen::Server(id)))
    };
    // A running job shows in the state column, so that nothing in the table moves under
    // the pointer while jobs come and go.
    let state = match &job {
        Some(job) if job.state == JobState::Queued => "queued".to_owned(),
        Some(job) => format!("{}…", job.kind.doing()),
        None => live
            .statuses
            .get(&id)
            .map_or("…", |l| state_word(l.state))
            .to_owned(),
    };
    let name = server.name.to_string();
    html! {
        <tr id={format!("server-{name}")}>
            <td><button class="link" onclick={open}>{ &name }</button></td>
            <td>{ &server.host }</td>
            <td>{ server.port }
                if let Some(ports) = other_ports(server) {
                    <span class="muted small" title="client and SourceTV ports">{ ports }</span>
                }
            </td>
            <td>{ &server.blueprint }
                if server.pending_changes { <span class="pending" title="the blueprint changed; the next start or restart applies it">{ " (changed)" }</span> }
            </td>
            <td><span class={classes!("state", state.replace(' ', "-"))}>{ state }</span></td>
            <td class="actions">
                <button class="small start" aria-label={format!("Start {name}")} disabled={busy} onclick={action.on_click(command::StartServer { server_id: id })}>{ "Start" }</button>
                <button class="small stop" aria-label={format!("Stop {name}")} disabled={busy} onclick={action.on_click(command::StopServer { server_id: id })}>{ "Stop" }</button>
                <button class="small restart" aria-label={format!("Restart {name}")} disabled={busy} onclick={action.on_click(command::RestartServer { server_id: id })}>{ "Restart" }</button>
                <button class="small danger" aria-label={format!("Delete {name}")} disabled={busy}
                    onclick={{ let deleting = deleting.clone(); Callback::from(move |_| deleting.set(true)) }}>{ "Delete" }</button>
                <div class="inline-select">
                    <SelectField id={format!("reassign-{name}")} label="Blueprint" options={props.blueprints.clone()} value={(*reassign_to).clone()}
                        on_change={{ let r = reassign_to.clone(); Callback::from(move |v: String| r.set(v)) }} />
                    <button class="small plain" aria-label={format!("Reassign {name}")}
                        disabled={busy || *reassign_to == server.blueprint_id.to_string()} onclick={on_reassign}>{ "Reassign" }</button>
                </div>
                if let Some(error) = action.error() {
                    <ErrorNotice {error} />
                }
                if *deleting {
                    <Dialog id="delete-server-dialog" title={format!("Delete {name}?")} confirm_label="Delete server" danger=true busy={action.busy()}
                        on_confirm={on_delete} on_cancel={{ let deleting = deleting.clone(); Callback::from(move |()| deleting.set(false)) }}>
                        <p>{ format!("This stops {name} if it runs and removes it from {}: its unit, its runtime folder and its saved changes. Overlays and the blueprint stay.", server.host) }</p>
                    </Dialog>
                }
            </td>
        </tr>
    }
}

#[derive(Properties, PartialEq)]
struct CreateProps {
    hosts: Vec<Host>,
    blueprints: Vec<(String, String)>,
    on_created: Callback<()>,
}

#[function_component(CreateServer)]
fn create_server(props: &CreateProps) -> Html {
    let form = use_state(|| ServerForm {
        port: "27015".into(),
        ..ServerForm::default()
    });
    let action = use_action();
    let edit = |apply: fn(&mut ServerForm, String)| crate::hooks::field(&form, apply);
    let on_submit = {
        let (form, action, on_created) = (form.clone(), action.clone(), props.on_created.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let server = match form.value() {
                Ok(server) => server,
                Err(message) => {
                    return action.fail(IpcError::new(
                        left4me_protocol::ErrorCode::InvalidInput,
                        message,
                    ));
                }
            };
            let (form, on_created) = (form.clone(), on_created.clone());
            action.run(command::CreateServer { server }, move |_| {
                form.set(ServerForm {
                    port: "27015".into(),
                    ..(*form).clone()
                });
                on_created.emit(());
            });
        })
    };
    let hosts = ready_hosts(&props.hosts);
    html! {
        <section class="card narrow" aria-labelledby="new-server-title">
            <h2 id="new-server-title">{ "New server" }</h2>
            if hosts.is_empty() || props.blueprints.is_empty() {
                <p class="muted">{ "A server needs a host that is set up and a blueprint." }</p>
            }
            <form id="new-server-form" onsubmit={on_submit}>
                <TextField id="server-name" label="Name" value={form.name.clone()} hint={form.name_hint().map(AttrValue::from)}
                    on_change={edit(|f, v| f.name = v)} autocomplete="off" />
                <SelectField id="server-host" label="Host" options={hosts} value={form.host_id.map(|i| i.to_string()).unwrap_or_default()}
                    placeholder="Choose a host" on_change={edit(|f, v| f.host_id = v.parse().ok())} />
                <SelectField id="server-blueprint" label="Blueprint" options={props.blueprints.clone()}
                    value={form.blueprint_id.map(|i| i.to_string()).unwrap_or_default()}
                    placeholder="Choose a blueprint" on_change={edit(|f, v| f.blueprint_id = v.parse().ok())} />
                <TextField id="server-port" label="Port" value={form.port.clone()} hint={form.port_hint().map(AttrValue::from)}
                    on_change={edit(|f, v| f.port = v)} />
                if let Some(error) = action.error() {
                    <ErrorNotice {error} />
                }
                <button type="submit" id="create-server" disabled={action.busy() || form.value().is_err()}>{ "Create server" }</button>
            </form>
        </section>
    }
}

/// The client and SourceTV ports under the game port, as a short line.
fn other_ports(server: &Server) -> Option<String> {
    match (server.client_port, server.tv_port) {
        (None, None) => None,
        (client, tv) => Some(format!(
            " client {} · TV {}",
            client.map_or("auto".to_owned(), |p| p.to_string()),
            tv.map_or("auto".to_owned(), |p| p.to_string())
        )),
    }
}
