//! Accounts (admins only): create, promote or demote, disable or enable, reset a password.

use crate::components::{ErrorNotice, TextField};
use crate::ipc;
use left4me_protocol::model::User;
use left4me_protocol::{Command, IpcError, command};
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// Runs one account command; the list reloads after it, and its error shows above it.
#[derive(Clone, PartialEq)]
struct Runner {
    action_error: UseStateHandle<Option<IpcError>>,
    busy: UseStateHandle<bool>,
    reload: Callback<()>,
}

impl Runner {
    fn run<C: Command + 'static>(&self, command: C) {
        let (action_error, busy, reload) = (
            self.action_error.clone(),
            self.busy.clone(),
            self.reload.clone(),
        );
        busy.set(true);
        action_error.set(None);
        spawn_local(async move {
            if let Err(err) = ipc::call(&command).await {
                action_error.set(Some(err));
            }
            busy.set(false);
            reload.emit(());
        });
    }
}

#[function_component(Users)]
pub fn users() -> Html {
    let users = use_state(|| None::<Result<Vec<User>, IpcError>>);
    let action_error = use_state(|| None::<IpcError>);
    let busy = use_state(|| false);
    let reload = {
        let users = users.clone();
        Callback::from(move |()| {
            let users = users.clone();
            spawn_local(async move {
                users.set(Some(ipc::call(&command::Users {}).await));
            });
        })
    };
    {
        let reload = reload.clone();
        use_effect_with((), move |()| reload.emit(()));
    }
    let run = Runner {
        action_error: action_error.clone(),
        busy: busy.clone(),
        reload: reload.clone(),
    };

    let username = use_state(String::new);
    let password = use_state(String::new);
    let make_admin = use_state(|| false);
    let on_create = {
        let (run, username, password, make_admin) = (
            run.clone(),
            username.clone(),
            password.clone(),
            make_admin.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            run.run(command::CreateUser {
                username: (*username).clone(),
                password: (*password).clone(),
                is_admin: *make_admin,
            });
            username.set(String::new());
            password.set(String::new());
        })
    };
    let set = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |value: String| state.set(value))
    };
    let reset_for = use_state(|| None::<i64>);
    let reset_password = use_state(String::new);

    let rows = match &*users {
        None => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
        Some(Err(error)) => html! { <ErrorNotice error={error.clone()} /> },
        Some(Ok(list)) => html! {
            <table class="table" id="users-table">
                <thead><tr><th scope="col">{ "Username" }</th><th scope="col">{ "Role" }</th><th scope="col">{ "State" }</th><th scope="col">{ "Actions" }</th></tr></thead>
                <tbody>
                    { for list.iter().map(|user| {
                        let id = user.id;
                        let on_admin = {
                            let (run, is_admin) = (run.clone(), !user.is_admin);
                            Callback::from(move |_| run.run(command::SetUserAdmin { user_id: id, is_admin }))
                        };
                        let on_disable = {
                            let (run, disabled) = (run.clone(), !user.disabled);
                            Callback::from(move |_| run.run(command::SetUserDisabled { user_id: id, disabled }))
                        };
                        let on_reset_open = {
                            let (reset_for, reset_password) = (reset_for.clone(), reset_password.clone());
                            Callback::from(move |_| { reset_for.set(Some(id)); reset_password.set(String::new()); })
                        };
                        let on_reset = {
                            let (run, reset_for, reset_password) = (run.clone(), reset_for.clone(), reset_password.clone());
                            Callback::from(move |e: SubmitEvent| {
                                e.prevent_default();
                                run.run(command::ResetPassword { user_id: id, password: (*reset_password).clone() });
                                reset_for.set(None);
                            })
                        };
                        let name = user.username.clone();
                        html! {
                            <tr id={format!("user-{}", user.username)}>
                                <td>{ &user.username }</td>
                                <td>{ if user.is_admin { "admin" } else { "user" } }</td>
                                <td class="state">{ if user.disabled { "disabled" } else { "active" } }</td>
                                <td class="actions">
                                    <button class="small" disabled={*busy} aria-label={format!("{} {name}", if user.is_admin { "Remove admin from" } else { "Make admin" })}
                                        onclick={on_admin}>
                                        { if user.is_admin { "Remove admin" } else { "Make admin" } }
                                    </button>
                                    <button class="small disable" disabled={*busy} aria-label={format!("{} {name}", if user.disabled { "Enable" } else { "Disable" })}
                                        onclick={on_disable}>
                                        { if user.disabled { "Enable" } else { "Disable" } }
                                    </button>
                                    <button class="small" disabled={*busy} aria-label={format!("Reset the password of {name}")} onclick={on_reset_open}>{ "Reset password" }</button>
                                    if *reset_for == Some(id) {
                                        <form class="inline" onsubmit={on_reset}>
                                            <TextField id={format!("reset-{name}")} label="New password" kind="password" value={(*reset_password).clone()} on_change={set(&reset_password)} autocomplete="new-password" />
                                            <button type="submit" class="small">{ "Set" }</button>
                                        </form>
                                    }
                                </td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
        },
    };
    let on_admin_toggle = {
        let make_admin = make_admin.clone();
        Callback::from(move |e: Event| {
            make_admin.set(e.target_unchecked_into::<HtmlInputElement>().checked())
        })
    };
    html! {
        <>
            <section class="card" aria-labelledby="users-title">
                <h1 id="users-title">{ "Accounts" }</h1>
                if let Some(error) = (*action_error).clone() {
                    <ErrorNotice {error} />
                }
                { rows }
            </section>
            <section class="card narrow" aria-labelledby="new-user-title">
                <h2 id="new-user-title">{ "New account" }</h2>
                <form id="new-user-form" onsubmit={on_create}>
                    <TextField id="new-username" label="Username" value={(*username).clone()} on_change={set(&username)} autocomplete="off" />
                    <TextField id="new-password" label="Password" kind="password" value={(*password).clone()} on_change={set(&password)} autocomplete="new-password" />
                    <label class="check"><input type="checkbox" id="new-is-admin" checked={*make_admin} onchange={on_admin_toggle} />{ "Admin" }</label>
                    <button type="submit" id="create-user" disabled={*busy || username.is_empty() || password.is_empty()}>{ "Create account" }</button>
                </form>
            </section>
        </>
    }
}
