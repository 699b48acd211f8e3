//! Overlays: layers of game files that blueprints stack. Global ones (managed by admins)
//! and the user's own; made from Workshop items, a script, or an uploaded folder; what
//! fills them edited; filled on a host, refreshed everywhere (with the servers that wait for
//! a restart to switch to the new version, restarted one by one), deleted when no blueprint
//! uses them.

use crate::activity::ActivityContext;
use crate::components::{ErrorNotice, SelectField, TextArea, TextField};
use crate::forms::{OverlayForm, OverlayKind};
use crate::hooks::{Loadable, use_action, use_query, use_revision};
use crate::pages::hosts::ready_hosts;
use crate::session::{Session, SessionContext};
use crate::text::count;
use left4me_protocol::command;
use left4me_protocol::model::{NewOverlay, Overlay, OverlayHost, OverlaySource};
use left4me_protocol::units::human_bytes;
use left4me_protocol::{ErrorCode, IpcError, Job};
use web_sys::HtmlInputElement;
use yew::prelude::*;

#[function_component(Overlays)]
pub fn overlays() -> Html {
    let session = use_context::<SessionContext>().expect("session context");
    let is_admin = matches!(&*session, Session::LoggedIn(user) if user.is_admin);
    let (revision, reload) = use_revision();
    let overlays = use_query(command::Overlays {}, revision);
    let hosts = use_query(command::Hosts {}, revision);
    let ready_hosts = hosts.ready().map(|l| ready_hosts(l)).unwrap_or_default();
    let list = match &overlays {
        Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
        Loadable::Failed(error) => html! { <ErrorNotice error={error.clone()} /> },
        Loadable::Ready(list) => html! {
            <div class="stack" id="overlays-list">
                { for list.iter().map(|o| html! {
                    <OverlayCard key={o.id} overlay={o.clone()} hosts={ready_hosts.clone()} may_edit={!o.global || is_admin} on_changed={reload.clone()} />
                }) }
            </div>
        },
    };
    html! {
        <>
            <section class="card" aria-labelledby="overlays-title">
                <h1 id="overlays-title">{ "Overlays" }</h1>
                { list }
            </section>
            <CreateOverlay {is_admin} on_created={reload} />
        </>
    }
}

#[derive(Properties, PartialEq)]
struct CardProps {
    overlay: Overlay,
    hosts: Vec<(String, String)>,
    may_edit: bool,
    on_changed: Callback<()>,
}

#[function_component(OverlayCard)]
fn overlay_card(props: &CardProps) -> Html {
    let o = &props.overlay;
    let id = o.id;
    let action = use_action();
    // Until the user picks one, the first host (the list may arrive after the card).
    let host = use_state(String::new);
    let folder = use_state(String::new);
    let started = use_state(|| None::<String>);
    let editing = use_state(|| false);
    let chosen = if host.is_empty() {
        props
            .hosts
            .first()
            .map(|(id, _)| id.clone())
            .unwrap_or_default()
    } else {
        (*host).clone()
    };
    let host_id = chosen.parse::<i64>().ok();
    let is_upload = matches!(
        o.source,
        OverlaySource::Upload { .. } | OverlaySource::Empty
    );
    // The desktop's own folder dialog, through the app (the page cannot reach the disk).
    let on_choose = {
        let (folder, name) = (folder.clone(), o.name.to_string());
        Callback::from(move |_: MouseEvent| {
            let (folder, name) = (folder.clone(), name.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let title = format!("Choose the folder to upload into {name}");
                if let Ok(Some(path)) = crate::ipc::call(&command::PickFolder { title }).await {
                    folder.set(path);
                }
            });
        })
    };
    let on_fill = {
        let (action, folder, started) = (action.clone(), folder.clone(), started.clone());
        Callback::from(move |_: MouseEvent| {
            let Some(host_id) = host_id else { return };
            let started = started.clone();
            let note =
                move |_: Job| started.set(Some("Filling: follow it on the Jobs screen.".into()));
            if is_upload {
                let upload = command::UploadOverlay {
                    overlay_id: id,
                    host_id,
                    folder: (*folder).clone(),
                };
                action.run(upload, note);
            } else {
                let fill = command::FillOverlay {
                    overlay_id: id,
                    host_id,
                };
                action.run(fill, note);
            }
        })
    };
    let on_refresh = {
        let (action, started) = (action.clone(), started.clone());
        Callback::from(move |_: MouseEvent| {
            let started = started.clone();
            action.run(command::RefreshOverlay { overlay_id: id }, move |jobs| {
                started.set(Some(format!("Refreshing on {} hosts.", jobs.len())))
            });
        })
    };
    let on_delete = {
        let (action, on_changed) = (action.clone(), props.on_changed.clone());
        Callback::from(move |_: MouseEvent| {
            let on_changed = on_changed.clone();
            action.run(command::DeleteOverlay { overlay_id: id }, move |()| {
                on_changed.emit(())
            });
        })
    };
    let source = match &o.source {
        OverlaySource::Empty => "empty: upload a folder to fill it".to_owned(),
        OverlaySource::Workshop { items, collections } => format!(
            "Workshop: {}, {}",
            count(items.len() as u64, "item", "items"),
            count(collections.len() as u64, "collection", "collections")
        ),
        OverlaySource::Script { script } => {
            format!(
                "script, {}",
                count(script.lines().count() as u64, "line", "lines")
            )
        }
        OverlaySource::Upload { files, bytes } => {
            format!(
                "uploaded folder, {}, {}",
                count(*files, "file", "files"),
                human_bytes(*bytes)
            )
        }
    };
    let in_use = (!o.used_by.is_empty()).then(|| format!("used by {}", o.used_by.join(", ")));
    let waiting = o.hosts.iter().any(OverlayHost::waits_for_restart);
    let on_edit = {
        let editing = editing.clone();
        Callback::from(move |_: MouseEvent| editing.set(!*editing))
    };
    let on_edited = {
        let (editing, on_changed) = (editing.clone(), props.on_changed.clone());
        Callback::from(move |()| {
            editing.set(false);
            on_changed.emit(());
        })
    };
    html! {
        <article class="overlay" id={format!("overlay-{}", o.name)} aria-label={format!("Overlay {}", o.name)}>
            <header class="row">
                <h2>{ &o.name }</h2>
                if o.global { <span class="badge-muted">{ "global" }</span> }
                <span class="muted">{ source }</span>
            </header>
            if !o.description.is_empty() { <p>{ &o.description }</p> }
            <p class="muted used-by">{ in_use.clone().unwrap_or_else(|| "not used by your blueprints".into()) }</p>
            <p class="muted">
                { if o.hosts.is_empty() { "Not on any host yet: a server's first start fills it.".to_owned() } else {
                    format!("On {}", o.hosts.iter().map(|h| format!("{}{}", h.host, if h.waits_for_restart() { " (new version waits for a restart)" } else { "" })).collect::<Vec<_>>().join(", "))
                } }
            </p>
            if props.may_edit {
                <div class="row actions">
                    <SelectField id={format!("overlay-{}-host", o.name)} label="Host" options={props.hosts.clone()} value={chosen}
                        on_change={{ let h = host.clone(); Callback::from(move |v: String| h.set(v)) }} />
                    if is_upload {
                        <TextField id={format!("overlay-{}-folder", o.name)} label="Folder on this computer" value={(*folder).clone()}
                            on_change={{ let f = folder.clone(); Callback::from(move |v: String| f.set(v)) }} />
                        <button class="small plain" id={format!("overlay-{}-choose", o.name)} disabled={action.busy()} onclick={on_choose}>{ "Choose…" }</button>
                    }
                    <button class="small fill" disabled={action.busy() || host_id.is_none() || (is_upload && folder.is_empty())} onclick={on_fill}>
                        { if is_upload { "Upload" } else { "Fill on host" } }
                    </button>
                    if !is_upload && !o.hosts.is_empty() {
                        <button class="small plain" id={format!("overlay-{}-refresh", o.name)} disabled={action.busy()} onclick={on_refresh}>{ "Refresh everywhere" }</button>
                    }
                    <button class="small plain edit" aria-label={format!("Edit {}", o.name)} aria-expanded={(*editing).to_string()}
                        onclick={on_edit}>{ "Edit" }</button>
                    <button class="small plain danger" disabled={action.busy() || in_use.is_some()} onclick={on_delete}
                        title={in_use.clone().map(|u| format!("{u}: remove it from them first"))}>{ "Delete" }</button>
                </div>
            }
            if let Some(note) = &*started { <p class="muted">{ note }</p> }
            if let Some(error) = action.error() { <ErrorNotice {error} /> }
            if props.may_edit && *editing {
                <EditOverlay overlay={o.clone()} on_saved={on_edited} />
            }
            if waiting {
                <PendingRestarts overlay_id={id} name={o.name.clone()} />
            }
        </article>
    }
}

#[derive(Properties, PartialEq)]
struct EditProps {
    overlay: Overlay,
    on_saved: Callback<()>,
}

/// What fills an overlay and its description, edited in place; its name and kind stay.
#[function_component(EditOverlay)]
fn edit_overlay(props: &EditProps) -> Html {
    let form = use_state(|| OverlayForm::from_overlay(&props.overlay));
    let action = use_action();
    let name = &props.overlay.name;
    let before = props.overlay.source.clone();
    let source = form.edited_source(&before);
    let edit = |apply: fn(&mut OverlayForm, String)| crate::hooks::field(&form, apply);
    let on_submit = {
        let (form, action, on_saved) = (form.clone(), action.clone(), props.on_saved.clone());
        let overlay_id = props.overlay.id;
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let source = match form.edited_source(&before) {
                Ok(source) => source,
                Err(message) => {
                    return action.fail(IpcError::new(ErrorCode::InvalidInput, message));
                }
            };
            let update = command::UpdateOverlay {
                overlay_id,
                source,
                description: form.description.clone(),
            };
            let on_saved = on_saved.clone();
            action.run(update, move |_| on_saved.emit(()));
        })
    };
    let id = |field: &str| format!("edit-{name}-{field}");
    html! {
        <form class="edit-overlay" id={id("form")} onsubmit={on_submit} aria-label={format!("Edit {name}")}>
            { match form.kind {
                OverlayKind::Workshop => html! { <>
                    <TextArea id={id("items")} label="Workshop items (ids or links)" rows={3} value={form.workshop_items.clone()}
                        hint={form.items_hint().map(AttrValue::from)} on_change={edit(|f, v| f.workshop_items = v)} />
                    <TextArea id={id("collections")} label="Workshop collections (ids or links)" rows={2} value={form.workshop_collections.clone()}
                        hint={form.collections_hint().map(AttrValue::from)} on_change={edit(|f, v| f.workshop_collections = v)} />
                </> },
                OverlayKind::Script => html! {
                    <TextArea id={id("script")} label="Script (run with /bin/sh on the host, in the empty overlay folder)" rows={8}
                        value={form.script.clone()} on_change={edit(|f, v| f.script = v)} />
                },
                OverlayKind::Upload => html! {
                    <p class="muted">{ "An upload fills it: upload a folder again to change what it holds." }</p>
                },
            } }
            <TextField id={id("description")} label="Description" value={form.description.clone()} on_change={edit(|f, v| f.description = v)} />
            if let Err(problem) = &source {
                <p class="field-hint">{ problem }</p>
            }
            <p class="muted small-text">{ "Saving changes what the next fill or refresh puts on the hosts." }</p>
            if let Some(error) = action.error() {
                <ErrorNotice {error} />
            }
            <button type="submit" id={id("save")} disabled={action.busy() || source.is_err()}>{ "Save" }</button>
        </form>
    }
}

#[derive(Properties, PartialEq)]
struct PendingProps {
    overlay_id: i64,
    name: String,
}

/// The user's servers still running the overlay's previous version: each switches at its
/// next start, so each can be restarted here, one at a time.
#[function_component(PendingRestarts)]
fn pending_restarts(props: &PendingProps) -> Html {
    let activity = use_context::<ActivityContext>().expect("activity context");
    let servers = use_query(
        command::PendingRestarts {
            overlay_id: props.overlay_id,
        },
        activity.revision,
    );
    let action = use_action();
    let list = match &servers {
        Loadable::Loading => return html! {},
        Loadable::Failed(error) => return html! { <ErrorNotice error={error.clone()} /> },
        Loadable::Ready(list) if list.is_empty() => return html! {},
        Loadable::Ready(list) => list,
    };
    html! {
        <div class="pending-restarts" id={format!("overlay-{}-pending", props.name)}>
            <p><strong>{ "A new version waits for a restart." }</strong>
                { " These servers run the previous one until their next start:" }</p>
            <ul>
                { for list.iter().map(|server| {
                    let restarting = activity.active_for_server(server.id).is_some();
                    html! {
                        <li id={format!("pending-{}", server.name)}>
                            <span>{ format!("{} on {}", server.name, server.host) }</span>
                            <button class="small restart" aria-label={format!("Restart {} with the new version", server.name)}
                                disabled={action.busy() || restarting}
                                onclick={action.on_click(command::RestartServer { server_id: server.id })}>
                                { if restarting { "Restarting…" } else { "Restart" } }
                            </button>
                        </li>
                    }
                }) }
            </ul>
            if let Some(error) = action.error() { <ErrorNotice {error} /> }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct CreateProps {
    is_admin: bool,
    on_created: Callback<()>,
}

#[function_component(CreateOverlay)]
fn create_overlay(props: &CreateProps) -> Html {
    let form = use_state(OverlayForm::default);
    let action = use_action();
    let edit = |apply: fn(&mut OverlayForm, String)| crate::hooks::field(&form, apply);
    let kind = |value: OverlayKind, label: &str, id: &str| {
        let f = form.clone();
        html! {
            <label class="check">
                <input type="radio" name="overlay-kind" id={id.to_owned()} checked={form.kind == value}
                    onchange={Callback::from(move |_| { let mut next = (*f).clone(); next.kind = value; f.set(next); })} />
                { label.to_owned() }
            </label>
        }
    };
    let on_submit = {
        let (form, action, on_created) = (form.clone(), action.clone(), props.on_created.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let source = match form.source() {
                Ok(source) => source,
                Err(message) => {
                    return action.fail(IpcError::new(ErrorCode::InvalidInput, message));
                }
            };
            let overlay = NewOverlay {
                name: form.name.clone(),
                global: form.global,
                source,
                description: form.description.clone(),
            };
            let (form, on_created) = (form.clone(), on_created.clone());
            action.run(command::CreateOverlay { overlay }, move |_| {
                form.set(OverlayForm::default());
                on_created.emit(());
            });
        })
    };
    let on_global = {
        let form = form.clone();
        Callback::from(move |e: Event| {
            let mut next = (*form).clone();
            next.global = e.target_unchecked_into::<HtmlInputElement>().checked();
            form.set(next);
        })
    };
    html! {
        <section class="card narrow" aria-labelledby="new-overlay-title">
            <h2 id="new-overlay-title">{ "New overlay" }</h2>
            <form id="new-overlay-form" onsubmit={on_submit}>
                <TextField id="overlay-name" label="Name" value={form.name.clone()} hint={form.name_hint().map(AttrValue::from)}
                    on_change={edit(|f, v| f.name = v)} autocomplete="off" />
                <fieldset>
                    <legend>{ "Filled from" }</legend>
                    <div class="row">
                        { kind(OverlayKind::Workshop, "Workshop items", "overlay-kind-workshop") }
                        { kind(OverlayKind::Script, "A script", "overlay-kind-script") }
                        { kind(OverlayKind::Upload, "A folder I upload", "overlay-kind-upload") }
                    </div>
                </fieldset>
                { match form.kind {
                    OverlayKind::Workshop => html! { <>
                        <TextArea id="overlay-items" label="Workshop items (ids or links)" rows={3} value={form.workshop_items.clone()}
                            hint={form.items_hint().map(AttrValue::from)} on_change={edit(|f, v| f.workshop_items = v)} />
                        <TextArea id="overlay-collections" label="Workshop collections (ids or links)" rows={2} value={form.workshop_collections.clone()}
                            hint={form.collections_hint().map(AttrValue::from)} on_change={edit(|f, v| f.workshop_collections = v)} />
                    </> },
                    OverlayKind::Script => html! {
                        <TextArea id="overlay-script" label="Script (run with /bin/sh on the host, in the empty overlay folder)" rows={8}
                            value={form.script.clone()} on_change={edit(|f, v| f.script = v)}
                            placeholder="fetch https://example.org/plugin.zip plugin.zip && unzip plugin.zip -d left4dead2/addons" />
                    },
                    OverlayKind::Upload => html! {
                        <p class="muted">{ "The overlay starts empty; upload a folder to a host from its card." }</p>
                    },
                } }
                <TextField id="overlay-description" label="Description" value={form.description.clone()} on_change={edit(|f, v| f.description = v)} />
                if props.is_admin {
                    <label class="check"><input type="checkbox" id="overlay-global" checked={form.global} onchange={on_global} />
                        { "Global: every user may use it" }</label>
                }
                if let Some(error) = action.error() {
                    <ErrorNotice {error} />
                }
                <button type="submit" id="create-overlay" disabled={action.busy() || form.source().is_err()}>{ "Create overlay" }</button>
            </form>
        </section>
    }
}
