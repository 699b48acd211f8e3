//! Where the hosts send notifications (crashes, servers systemd gave up on), set once for
//! every host, and a test sent from a host, which proves that host can reach each target.

use crate::components::{ErrorNotice, SelectField, TextField};
use crate::hooks::{Loadable, use_action, use_query};
use left4me_protocol::agent::{NotifyKind, NotifyTarget, NotifyTested};
use left4me_protocol::command;
use left4me_protocol::notify::validate_target;
use yew::prelude::*;

const KINDS: [NotifyKind; 4] = [
    NotifyKind::Discord,
    NotifyKind::Webhook,
    NotifyKind::Ntfy,
    NotifyKind::Gotify,
];

fn kind_value(kind: NotifyKind) -> &'static str {
    match kind {
        NotifyKind::Discord => "discord",
        NotifyKind::Webhook => "webhook",
        NotifyKind::Ntfy => "ntfy",
        NotifyKind::Gotify => "gotify",
    }
}

/// What the secret field means for each kind, and whether it is needed.
fn secret_label(kind: NotifyKind) -> Option<&'static str> {
    match kind {
        NotifyKind::Discord => None,
        NotifyKind::Webhook => Some("Shared secret (signs each message)"),
        NotifyKind::Ntfy => Some("Access token (optional)"),
        NotifyKind::Gotify => Some("Application token"),
    }
}

#[function_component(NotificationTargets)]
pub fn notification_targets() -> Html {
    let reloads = use_state(|| 0u64);
    let targets = use_query(command::NotificationTargets {}, *reloads);
    let name = use_state(String::new);
    let kind = use_state(|| NotifyKind::Discord);
    let url = use_state(String::new);
    let secret = use_state(String::new);
    let action = use_action();
    let set = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |value: String| state.set(value))
    };
    let draft = NotifyTarget {
        name: name.trim().to_owned(),
        kind: *kind,
        url: url.trim().to_owned(),
        secret: Some((*secret).clone()).filter(|s| !s.is_empty()),
    };
    // Checked as the host checks it; the message shows once there is something to check.
    let problem = (!draft.name.is_empty() && !draft.url.is_empty())
        .then(|| validate_target(&draft).err())
        .flatten();
    let on_add = {
        let (action, reloads) = (action.clone(), reloads.clone());
        let (name, url, secret) = (name.clone(), url.clone(), secret.clone());
        let draft = draft.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (reloads, name, url, secret) =
                (reloads.clone(), name.clone(), url.clone(), secret.clone());
            action.run(
                command::AddNotificationTarget {
                    target: draft.clone(),
                },
                move |_| {
                    name.set(String::new());
                    url.set(String::new());
                    secret.set(String::new());
                    reloads.set(*reloads + 1);
                },
            );
        })
    };
    let list = match &targets {
        Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
        Loadable::Failed(error) => html! { <ErrorNotice error={error.clone()} /> },
        Loadable::Ready(list) if list.is_empty() => html! {
            <p class="muted" id="no-targets">{ "No targets: crashes are shown here when the app looks, but nobody is told while it is closed." }</p>
        },
        Loadable::Ready(list) => html! {
            <ul class="targets" id="notify-targets-list">
                { for list.iter().map(|t| {
                    let on_remove = {
                        let (action, reloads, id) = (action.clone(), reloads.clone(), t.id);
                        Callback::from(move |_| {
                            let reloads = reloads.clone();
                            action.run(command::RemoveNotificationTarget { target_id: id }, move |_| {
                                reloads.set(*reloads + 1)
                            });
                        })
                    };
                    html! {
                        <li key={t.id} id={format!("target-{}", t.name)}>
                            <strong>{ &t.name }</strong>{ format!(" · {} at {}", t.kind.label(), t.endpoint) }
                            <button class="plain danger small" aria-label={format!("Remove {}", t.name)}
                                onclick={on_remove} disabled={action.busy()}>{ "Remove" }</button>
                        </li>
                    }
                }) }
            </ul>
        },
    };
    let kind_options: Vec<(String, String)> = KINDS
        .iter()
        .map(|k| (kind_value(*k).to_owned(), k.label().to_owned()))
        .collect();
    let on_kind = {
        let kind = kind.clone();
        Callback::from(move |value: String| {
            if let Some(k) = KINDS.into_iter().find(|k| kind_value(*k) == value) {
                kind.set(k);
            }
        })
    };
    html! {
        <section class="card narrow" aria-labelledby="notify-title" id="notify-targets">
            <h2 id="notify-title">{ "Notifications" }</h2>
            <p class="muted">{ "Each host sends these itself when a server crashes or systemd stops restarting it, so they arrive while this app is closed. URLs and tokens stay in this computer's credential store and in a file on each host only left4me can read." }</p>
            { list }
            <form id="notify-form" onsubmit={on_add}>
                <TextField id="notify-name" label="Name" value={(*name).clone()} on_change={set(&name)} autocomplete="off" />
                <SelectField id="notify-kind" label="Kind" options={kind_options} value={kind_value(*kind)} on_change={on_kind} />
                <TextField id="notify-url" label="URL" value={(*url).clone()} on_change={set(&url)} autocomplete="off"
                    hint={problem.clone().map(AttrValue::from)} />
                if let Some(label) = secret_label(*kind) {
                    <TextField id="notify-secret" {label} kind="password" value={(*secret).clone()} on_change={set(&secret)} autocomplete="off" />
                }
                <button type="submit" id="add-target" disabled={action.busy() || draft.name.is_empty() || draft.url.is_empty() || problem.is_some()}>
                    { "Add target" }
                </button>
            </form>
            if let Some(error) = action.error() {
                <ErrorNotice {error} />
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct TestProps {
    pub host_id: i64,
    pub host_name: String,
}

/// A host card's "Send a test notification": sent by that host, with each target's answer.
#[function_component(TestNotifications)]
pub fn test_notifications(props: &TestProps) -> Html {
    let action = use_action();
    let answers = use_state(|| None::<Vec<NotifyTested>>);
    let on_test = {
        let (action, answers, host_id) = (action.clone(), answers.clone(), props.host_id);
        Callback::from(move |_| {
            let answers = answers.clone();
            action.run(command::TestNotifications { host_id }, move |got| {
                answers.set(Some(got))
            });
        })
    };
    html! {
        <>
            <button class="plain notify-test" onclick={on_test} disabled={action.busy()}>
                { if action.busy() { "Sending…" } else { "Send a test notification" } }
            </button>
            if let Some(list) = &*answers {
                <ul class="notify-results" id={format!("notify-test-{}", props.host_name)}>
                    { for list.iter().map(|a| html! {
                        <li class={if a.delivered { "delivered" } else { "not-delivered" }}>
                            { format!("{}: {} ({})", a.target, if a.delivered { "delivered" } else { "not delivered" }, a.detail) }
                        </li>
                    }) }
                </ul>
            }
            if let Some(error) = action.error() {
                <ErrorNotice {error} />
            }
        </>
    }
}
