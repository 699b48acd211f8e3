//! Blueprints: what a server runs (overlays top first, launch parameters, cvars). List,
//! create, edit; delete only while no server is linked.

use crate::components::{ErrorNotice, SelectField, TextField};
use crate::forms::{BlueprintForm, CvarRow};
use crate::hooks::{Loadable, use_action, use_query, use_revision};
use crate::ipc;
use left4me_protocol::model::{Blueprint, LimitsNow};
use left4me_protocol::spec::LaunchFlag;
use left4me_protocol::{ErrorCode, IpcError, command};
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// Which blueprint the editor holds.
#[derive(Clone, PartialEq)]
enum Editing {
    Nothing,
    New,
    Existing(Box<Blueprint>),
}

#[function_component(Blueprints)]
pub fn blueprints() -> Html {
    let (revision, reload) = use_revision();
    let blueprints = use_query(command::Blueprints {}, revision);
    let overlays = use_query(command::Overlays {}, revision);
    let editing = use_state(|| Editing::Nothing);
    // What became of an edit's new limits.
    let limits_said = use_state(|| None::<String>);
    let action = use_action();
    let list = match &blueprints {
        Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
        Loadable::Failed(error) => html! { <ErrorNotice error={error.clone()} /> },
        Loadable::Ready(list) if list.is_empty() => {
            html! { <p class="muted">{ "No blueprints yet." }</p> }
        }
        Loadable::Ready(list) => html! {
            <table class="table" id="blueprints-table">
                <thead><tr>
                    <th scope="col">{ "Blueprint" }</th><th scope="col">{ "Overlays, top first" }</th>
                    <th scope="col">{ "Launch" }</th><th scope="col">{ "Servers" }</th><th scope="col">{ "Actions" }</th>
                </tr></thead>
                <tbody>
                    { for list.iter().map(|b| {
                        let edit = { let (editing, b) = (editing.clone(), b.clone()); Callback::from(move |_| editing.set(Editing::Existing(Box::new(b.clone())))) };
                        let delete = {
                            let (action, reload, editing, id) = (action.clone(), reload.clone(), editing.clone(), b.id);
                            Callback::from(move |_| {
                                let (reload, editing) = (reload.clone(), editing.clone());
                                action.run(command::DeleteBlueprint { blueprint_id: id }, move |()| {
                                    editing.set(Editing::Nothing);
                                    reload.emit(());
                                });
                            })
                        };
                        let in_use = (!b.servers.is_empty()).then(|| format!(
                            "used by {}: delete or reassign them first",
                            b.servers.iter().map(|s| format!("{} on {}", s.name, s.host)).collect::<Vec<_>>().join(", ")
                        ));
                        let reason_id = format!("blueprint-{}-in-use", b.id);
                        html! {
                            <tr id={format!("blueprint-{}", b.id)}>
                                <td class="name">{ &b.name }</td>
                                <td>{ if b.overlays.is_empty() { "none".to_owned() } else { b.overlays.join(" › ") } }</td>
                                <td>{ format!("{}, {} players, tick {}", b.launch.map, b.launch.max_players, b.launch.tickrate) }
                                    { for b.launch.flags.iter().map(|f| format!(" {}", f.as_arg())) }</td>
                                <td class="servers">{ if b.servers.is_empty() { "none".to_owned() } else { b.servers.iter().map(|s| s.name.clone()).collect::<Vec<_>>().join(", ") } }</td>
                                <td class="actions">
                                    <button class="small" aria-label={format!("Edit {}", b.name)} onclick={edit}>{ "Edit" }</button>
                                    <button class="small danger" aria-label={format!("Delete {}", b.name)} disabled={in_use.is_some() || action.busy()}
                                        aria-describedby={in_use.is_some().then(|| reason_id.clone())} onclick={delete}>{ "Delete" }</button>
                                    if let Some(reason) = in_use {
                                        <p class="muted small-text" id={reason_id}>{ reason }</p>
                                    }
                                </td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
        },
    };
    let on_new = {
        let editing = editing.clone();
        Callback::from(move |_| editing.set(Editing::New))
    };
    let on_done = {
        let (editing, reload, limits_said) = (editing.clone(), reload.clone(), limits_said.clone());
        Callback::from(move |said: Option<String>| {
            editing.set(Editing::Nothing);
            limits_said.set(said);
            reload.emit(());
        })
    };
    let overlay_names: Vec<String> = overlays
        .ready()
        .map(|list| list.iter().map(|o| o.name.clone()).collect())
        .unwrap_or_default();
    html! {
        <>
            <section class="card" aria-labelledby="blueprints-title">
                <header class="row">
                    <h1 id="blueprints-title">{ "Blueprints" }</h1>
                    <span class="spacer" />
                    <button id="new-blueprint" onclick={on_new}>{ "New blueprint" }</button>
                </header>
                if let Some(error) = action.error() {
                    <ErrorNotice {error} />
                }
                if let Some(said) = &*limits_said {
                    <p class="notice" id="limits-now" role="status">{ said }</p>
                }
                { list }
            </section>
            { match &*editing {
                Editing::Nothing => html! {},
                Editing::New => html! { <BlueprintEditor key="new" blueprint={None::<Blueprint>} overlays={overlay_names} {on_done} /> },
                Editing::Existing(b) => html! { <BlueprintEditor key={b.id} blueprint={Some((**b).clone())} overlays={overlay_names} {on_done} /> },
            } }
        </>
    }
}

/// What became of an edit's new limits, in a sentence.
fn limits_message(answer: Result<LimitsNow, IpcError>) -> String {
    let names = |all: &[String]| all.join(", ");
    match answer {
        Err(error) => format!(
            "The new limits reach the servers at their next restart: {}",
            error.message
        ),
        Ok(said) => {
            let mut text = Vec::new();
            if !said.now.is_empty() {
                text.push(format!(
                    "New limits go to {} now (systemd sets them at once on a running server; see Jobs).",
                    names(&said.now)
                ));
            }
            match said.at_restart.as_slice() {
                [] => {}
                [one] => text.push(format!(
                    "{one} gets the new limits at its restart, with its other changes."
                )),
                all => text.push(format!(
                    "{} get the new limits at their restart, with their other changes.",
                    names(all)
                )),
            }
            if text.is_empty() {
                text.push("No server of this blueprint had to change.".to_owned());
            }
            text.join(" ")
        }
    }
}

#[derive(Properties, PartialEq)]
struct EditorProps {
    blueprint: Option<Blueprint>,
    /// Every overlay the user may use, by name.
    overlays: Vec<String>,
    /// With what became of changed limits, when they changed.
    on_done: Callback<Option<String>>,
}

#[function_component(BlueprintEditor)]
fn blueprint_editor(props: &EditorProps) -> Html {
    let form = use_state(|| {
        props
            .blueprint
            .as_ref()
            .map(BlueprintForm::from_blueprint)
            .unwrap_or_default()
    });
    let adding = use_state(String::new);
    let action = use_action();
    let hints = form.hints();
    // Every change goes through a copy of the form: `change(|f| …)`.
    let change = {
        let form = form.clone();
        move |apply: Box<dyn Fn(&mut BlueprintForm)>| {
            let mut next = (*form).clone();
            apply(&mut next);
            form.set(next);
        }
    };
    let text = |apply: fn(&mut BlueprintForm, String)| {
        let change = change.clone();
        Callback::from(move |value: String| change(Box::new(move |f| apply(f, value.clone()))))
    };
    let on_submit = {
        let (form, action, on_done) = (form.clone(), action.clone(), props.on_done.clone());
        let id = props.blueprint.as_ref().map(|b| b.id);
        let limits_before = props.blueprint.as_ref().map(|b| b.limits.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let draft = match form.draft() {
                Ok(draft) => draft,
                Err(message) => {
                    return action.fail(IpcError::new(ErrorCode::InvalidInput, message));
                }
            };
            let on_done = on_done.clone();
            match (id, limits_before.clone()) {
                (Some(id), Some(before)) => {
                    let limits_changed = before != draft.limits;
                    action.run(
                        command::UpdateBlueprint {
                            blueprint_id: id,
                            draft,
                        },
                        move |_: Blueprint| {
                            if !limits_changed {
                                return on_done.emit(None);
                            }
                            spawn_local(async move {
                                let answer =
                                    ipc::call(&command::ApplyLimitsNow { blueprint_id: id }).await;
                                on_done.emit(Some(limits_message(answer)));
                            });
                        },
                    )
                }
                _ => action.run(command::CreateBlueprint { draft }, move |_: Blueprint| {
                    on_done.emit(None)
                }),
            }
        })
    };
    let title = match &props.blueprint {
        Some(b) => format!("Edit {}", b.name),
        None => "New blueprint".to_owned(),
    };
    let available: Vec<(String, String)> = props
        .overlays
        .iter()
        .filter(|o| !form.overlays.contains(o))
        .map(|o| (o.clone(), o.clone()))
        .collect();
    let on_add = {
        let (change, adding) = (change.clone(), adding.clone());
        Callback::from(move |_: MouseEvent| {
            let name = (*adding).clone();
            change(Box::new(move |f| f.add_overlay(&name)));
            adding.set(String::new());
        })
    };
    html! {
        <section class="card" aria-labelledby="editor-title">
            <h2 id="editor-title">{ title }</h2>
            <form id="blueprint-form" onsubmit={on_submit}>
                <TextField id="blueprint-name" label="Name" value={form.name.clone()} hint={hints.name.clone().map(AttrValue::from)}
                    on_change={text(|f, v| f.name = v)} autocomplete="off" />
                <fieldset>
                    <legend>{ "Overlays, top first (a file in a higher overlay hides the same file below it)" }</legend>
                    <ol class="overlay-order" id="blueprint-overlays">
                        { for form.overlays.iter().enumerate().map(|(i, name)| {
                            let last = i + 1 == form.overlays.len();
                            let up = { let c = change.clone(); Callback::from(move |_: MouseEvent| c(Box::new(move |f| f.raise(i)))) };
                            let down = { let c = change.clone(); Callback::from(move |_: MouseEvent| c(Box::new(move |f| f.lower(i)))) };
                            let remove = { let c = change.clone(); Callback::from(move |_: MouseEvent| c(Box::new(move |f| { f.overlays.remove(i); }))) };
                            html! {
                                <li>
                                    <span class="overlay-name">{ name }</span>
                                    <button type="button" class="small plain" aria-label={format!("Move {name} up")} disabled={i == 0} onclick={up}>{ "↑" }</button>
                                    <button type="button" class="small plain" aria-label={format!("Move {name} down")} disabled={last} onclick={down}>{ "↓" }</button>
                                    <button type="button" class="small plain" aria-label={format!("Remove {name}")} onclick={remove}>{ "✕" }</button>
                                </li>
                            }
                        }) }
                    </ol>
                    <div class="row">
                        <SelectField id="blueprint-add-overlay" label="Add an overlay" options={available} value={(*adding).clone()}
                            placeholder="Choose an overlay" on_change={{ let a = adding.clone(); Callback::from(move |v: String| a.set(v)) }} />
                        <button type="button" id="blueprint-add-overlay-button" class="plain" disabled={adding.is_empty()} onclick={on_add}>{ "Add" }</button>
                    </div>
                </fieldset>
                <fieldset>
                    <legend>{ "Launch parameters" }</legend>
                    <div class="row">
                        <TextField id="blueprint-map" label="Map" value={form.map.clone()} hint={hints.map.clone().map(AttrValue::from)} on_change={text(|f, v| f.map = v)} />
                        <TextField id="blueprint-max-players" label="Max players" value={form.max_players.clone()} hint={hints.max_players.clone().map(AttrValue::from)} on_change={text(|f, v| f.max_players = v)} />
                        <TextField id="blueprint-tickrate" label="Tickrate" value={form.tickrate.clone()} hint={hints.tickrate.clone().map(AttrValue::from)} on_change={text(|f, v| f.tickrate = v)} />
                    </div>
                    <div class="row">
                        { for LaunchFlag::ALL.iter().map(|&flag| {
                            let c = change.clone();
                            let on = Callback::from(move |e: Event| {
                                let checked = e.target_unchecked_into::<HtmlInputElement>().checked();
                                c(Box::new(move |f| { if checked { f.flags.insert(flag); } else { f.flags.remove(&flag); } }))
                            });
                            let what = match flag { LaunchFlag::Insecure => "VAC off", LaunchFlag::NoHltv => "SourceTV off" };
                            html! {
                                <label class="check"><input type="checkbox" id={format!("flag{}", flag.as_arg())} checked={form.flags.contains(&flag)} onchange={on} />
                                    <code>{ flag.as_arg() }</code>{ format!(" ({what})") }</label>
                            }
                        }) }
                    </div>
                </fieldset>
                <fieldset id="blueprint-limits">
                    <legend>{ "Resources (systemd limits on each server; empty: none)" }</legend>
                    <p class="muted">{ "srcds runs its game on one thread: a whole core and about 1 GiB suit most servers. Changed limits reach a running server at once when nothing else changed; otherwise at its next start or restart, with the rest. Its host refuses what it cannot hold." }</p>
                    <div class="row">
                        <TextField id="blueprint-cpu-weight" label="CPU weight (100: default)" kind="number" value={form.cpu_weight.clone()} on_change={text(|f, v| f.cpu_weight = v)} />
                        <TextField id="blueprint-cpu-quota" label="CPU quota (% of one CPU)" kind="number" value={form.cpu_quota_percent.clone()} on_change={text(|f, v| f.cpu_quota_percent = v)} />
                        <TextField id="blueprint-tasks-max" label="Tasks at most" kind="number" value={form.tasks_max.clone()} on_change={text(|f, v| f.tasks_max = v)} />
                    </div>
                    <div class="row">
                        <TextField id="blueprint-memory-high" label="Memory high (MiB: slowed above)" kind="number" value={form.memory_high_mib.clone()} on_change={text(|f, v| f.memory_high_mib = v)} />
                        <TextField id="blueprint-memory-max" label="Memory max (MiB: killed above)" kind="number" value={form.memory_max_mib.clone()} on_change={text(|f, v| f.memory_max_mib = v)} />
                    </div>
                    if let Some(problem) = &hints.limits {
                        <p class="field-hint" id="blueprint-limits-hint">{ problem }</p>
                    }
                </fieldset>
                <fieldset>
                    <legend>{ "When a server hangs" }</legend>
                    {{
                        let c = change.clone();
                        let on = Callback::from(move |e: Event| {
                            let checked = e.target_unchecked_into::<HtmlInputElement>().checked();
                            c(Box::new(move |f| f.restart_when_hung = checked))
                        });
                        html! {
                            <label class="check"><input type="checkbox" id="blueprint-restart-when-hung" checked={form.restart_when_hung} onchange={on} />
                                { "Restart it when it stops answering while its process runs (its host looks every 15 seconds; a hang is reported either way)" }</label>
                        }
                    }}
                </fieldset>
                <fieldset>
                    <legend>{ "When a game update rolls out" }</legend>
                    {{
                        let c = change.clone();
                        let on = Callback::from(move |e: Event| {
                            let checked = e.target_unchecked_into::<HtmlInputElement>().checked();
                            c(Box::new(move |f| f.rollout_canary = checked))
                        });
                        html! {
                            <label class="check"><input type="checkbox" id="blueprint-rollout-canary" checked={form.rollout_canary} onchange={on} />
                                { "Its servers go first: the new build is tried and checked on one of them (the emptiest) before the others move" }</label>
                        }
                    }}
                </fieldset>
                <fieldset>
                    <legend>{ "Cvars (written to server.cfg)" }</legend>
                    <table class="table cvars" id="blueprint-cvars">
                        <thead><tr><th scope="col">{ "Name" }</th><th scope="col">{ "Value" }</th><th scope="col"><span class="visually-hidden">{ "Remove" }</span></th></tr></thead>
                        <tbody>
                            { for form.cvars.iter().enumerate().map(|(i, row)| {
                                let hint = hints.cvars.get(i).cloned().flatten();
                                let name = { let c = change.clone(); Callback::from(move |e: InputEvent| { let v = e.target_unchecked_into::<HtmlInputElement>().value(); c(Box::new(move |f| f.cvars[i].name = v.clone())) }) };
                                let value = { let c = change.clone(); Callback::from(move |e: InputEvent| { let v = e.target_unchecked_into::<HtmlInputElement>().value(); c(Box::new(move |f| f.cvars[i].value = v.clone())) }) };
                                let remove = { let c = change.clone(); Callback::from(move |_: MouseEvent| c(Box::new(move |f| { f.cvars.remove(i); }))) };
                                let hint_id = format!("cvar-{i}-hint");
                                html! {
                                    <>
                                        <tr>
                                            <td><input id={format!("cvar-{i}-name")} aria-label={format!("Name of cvar {}", i + 1)} value={row.name.clone()} oninput={name}
                                                aria-invalid={hint.is_some().then_some("true")} aria-describedby={hint.is_some().then(|| hint_id.clone())} /></td>
                                            <td><input id={format!("cvar-{i}-value")} aria-label={format!("Value of cvar {}", i + 1)} value={row.value.clone()} oninput={value} /></td>
                                            <td><button type="button" class="small plain" aria-label={format!("Remove cvar {}", i + 1)} onclick={remove}>{ "✕" }</button></td>
                                        </tr>
                                        if let Some(hint) = hint {
                                            <tr><td colspan="3"><p class="field-hint" id={hint_id}>{ hint }</p></td></tr>
                                        }
                                    </>
                                }
                            }) }
                        </tbody>
                    </table>
                    <button type="button" id="add-cvar" class="plain"
                        onclick={{ let c = change.clone(); Callback::from(move |_: MouseEvent| c(Box::new(|f| f.cvars.push(CvarRow::default())))) }}>{ "Add a cvar" }</button>
                </fieldset>
                if let Some(error) = action.error() {
                    <ErrorNotice {error} />
                }
                if let Some(b) = &props.blueprint {
                    if !b.servers.is_empty() {
                        <p class="muted">{ format!("Saving changes {}: they apply at each one's next start or restart.",
                            b.servers.iter().map(|s| s.name.clone()).collect::<Vec<_>>().join(", ")) }</p>
                    }
                }
                <div class="row">
                    <button type="submit" id="save-blueprint" disabled={action.busy() || !hints.is_clean()}>{ "Save blueprint" }</button>
                    <button type="button" class="plain" onclick={props.on_done.reform(|_: MouseEvent| None)}>{ "Cancel" }</button>
                </div>
            </form>
        </section>
    }
}
