//! About: which app this is, where it keeps its data, and whether it raises desktop
//! notifications.

use crate::components::ErrorNotice;
use crate::hooks::{Loadable, use_action, use_query};
use left4me_protocol::{SecretStore, command};
use web_sys::HtmlInputElement;
use yew::prelude::*;

#[function_component(About)]
pub fn about() -> Html {
    let facts = use_query(command::AppFacts {}, 0);
    let open_logs = use_action();
    html! {
        <section class="card" aria-labelledby="about-title">
            <h1 id="about-title">{ "About this app" }</h1>
            {
                match facts {
                    Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
                    Loadable::Failed(error) => html! { <ErrorNotice {error} /> },
                    Loadable::Ready(facts) => html! {
                        <>
                            <dl class="facts" id="app-facts">
                                <dt>{ "Version" }</dt>
                                <dd id="app-version">{ &facts.app_version }</dd>
                                <dt>{ "Agent protocol" }</dt>
                                <dd id="protocol-version">{ facts.protocol_version }</dd>
                                <dt>{ "Database" }</dt>
                                <dd id="database-path"><code>{ &facts.database_path }</code></dd>
                                <dt>{ "Schema version" }</dt>
                                <dd id="schema-version">{ facts.schema_version }</dd>
                                <dt>{ "Log" }</dt>
                                <dd>
                                    <code id="log-path">{ &facts.log_path }</code>{ " " }
                                    <button id="open-log-folder" class="plain small" onclick={open_logs.on_click(command::OpenLogFolder {})}>{ "Show the folder" }</button>
                                </dd>
                            </dl>
                            if let Some(error) = open_logs.error() {
                                <ErrorNotice {error} />
                            }
                            <SecretsPlace />
                            <NotificationsToggle on={facts.notifications} />
                        </>
                    },
                }
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct ToggleProps {
    /// As the app last said.
    on: bool,
}

#[function_component(NotificationsToggle)]
fn notifications_toggle(props: &ToggleProps) -> Html {
    let on = use_state(|| props.on);
    let action = use_action();
    let onchange = {
        let (on, action) = (on.clone(), action.clone());
        Callback::from(move |e: Event| {
            let enabled = e.target_unchecked_into::<HtmlInputElement>().checked();
            let on = on.clone();
            action.run(command::SetNotifications { enabled }, move |()| {
                on.set(enabled)
            });
        })
    };
    html! {
        <>
            <label class="check"><input type="checkbox" id="notifications-toggle" checked={*on} disabled={action.busy()} {onchange} />
                { "Desktop notifications when a server crash-loops, a host stops answering or a job fails" }</label>
            if let Some(error) = action.error() {
                <ErrorNotice {error} />
            }
        </>
    }
}

/// Where the secrets are; from the local vault, a way into the OS store once it answers.
#[function_component(SecretsPlace)]
fn secrets_place() -> Html {
    let moved = use_state(|| None::<usize>);
    // Asked again once the secrets moved.
    let store = use_query(command::SecretStore {}, u64::from(moved.is_some()));
    let action = use_action();
    let on_move = {
        let (action, moved) = (action.clone(), moved.clone());
        Callback::from(move |_: MouseEvent| {
            let moved = moved.clone();
            action.run(command::MoveSecretsToOsStore {}, move |n| {
                moved.set(Some(n))
            });
        })
    };
    let Loadable::Ready(store) = store else {
        return Html::default();
    };
    html! {
        <div id="secrets-place">
            {
                match store {
                    SecretStore::Os { name } => html! { <p>{ format!("Passwords and keys are kept in {name}.") }</p> },
                    SecretStore::Vault { os_store } => html! {
                        <>
                            <p>{ "Passwords and keys are kept in the local vault, opened with its passphrase at each start." }</p>
                            if os_store {
                                <button id="move-secrets" class="secondary" disabled={action.busy()} onclick={on_move}>
                                    { "Move them into the system's credential store" }
                                </button>
                            } else {
                                <p class="muted">{ "Once a credential store such as GNOME Keyring or KWallet runs, they can move there." }</p>
                            }
                        </>
                    },
                    _ => Html::default(),
                }
            }
            if let Some(n) = *moved {
                <p id="secrets-moved">{ format!("Moved {}; the vault is removed.", crate::text::count(n as u64, "secret", "secrets")) }</p>
            }
            if let Some(error) = action.error() {
                <ErrorNotice {error} />
            }
        </div>
    }
}
