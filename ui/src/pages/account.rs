//! The first run (create the first admin) and the login, with what the backend says when
//! they fail shown where the user acted.

use crate::components::{ErrorNotice, TextField};
use crate::forms::MIN_PASSWORD;
use crate::ipc;
use crate::session::{SessionAction, SessionContext};
use left4me_protocol::{IpcError, command};
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

/// Why the first admin's form cannot be sent yet, if it cannot.
pub fn first_run_problem(username: &str, password: &str, again: &str) -> Option<&'static str> {
    if username.trim().is_empty() {
        Some("choose a username")
    } else if password.chars().count() < MIN_PASSWORD {
        Some("use at least 8 characters")
    } else if password != again {
        Some("the two passwords differ")
    } else {
        None
    }
}

#[derive(Properties, PartialEq)]
pub struct Props {
    /// The first run instead of the login.
    pub first_run: bool,
}

#[function_component(AccountForm)]
pub fn account_form(props: &Props) -> Html {
    let session = use_context::<SessionContext>().expect("the session is provided by the app");
    let username = use_state(String::new);
    let password = use_state(String::new);
    let again = use_state(String::new);
    let busy = use_state(|| false);
    let error = use_state(|| None::<IpcError>);
    let first_run = props.first_run;
    let problem = first_run
        .then(|| first_run_problem(&username, &password, &again))
        .flatten();
    let touched = !password.is_empty() || !again.is_empty();

    let on_submit = {
        let (username, password, busy, error) = (
            username.clone(),
            password.clone(),
            busy.clone(),
            error.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if *busy || (first_run && problem.is_some()) {
                return;
            }
            busy.set(true);
            error.set(None);
            let (username, password) = ((*username).clone(), (*password).clone());
            let (busy, error, session) = (busy.clone(), error.clone(), session.clone());
            spawn_local(async move {
                let answer = if first_run {
                    ipc::call(&command::CreateFirstAdmin { username, password }).await
                } else {
                    ipc::call(&command::Login { username, password }).await
                };
                match answer {
                    Ok(user) => session.dispatch(SessionAction::LoggedIn(user)),
                    Err(err) => error.set(Some(err)),
                }
                busy.set(false);
            });
        })
    };
    let set = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |value: String| state.set(value))
    };
    let (title, action, form_id) = if first_run {
        (
            "Create the first admin",
            "Create and log in",
            "first-run-form",
        )
    } else {
        ("Log in", "Log in", "login-form")
    };
    html! {
        <section class="card narrow" aria-labelledby="account-title">
            <h1 id="account-title">{ title }</h1>
            if first_run {
                <p class="muted">{ "Nobody uses this app yet. The first account manages hosts and the other accounts." }</p>
            }
            <form id={form_id} onsubmit={on_submit}>
                <TextField id="username" label="Username" value={(*username).clone()} on_change={set(&username)} autocomplete="username" />
                <TextField
                    id="password"
                    label="Password"
                    kind="password"
                    value={(*password).clone()}
                    on_change={set(&password)}
                    autocomplete={if first_run { "new-password" } else { "current-password" }}
                />
                if first_run {
                    <TextField
                        id="password-again"
                        label="Password again"
                        kind="password"
                        value={(*again).clone()}
                        on_change={set(&again)}
                        autocomplete="new-password"
                        hint={problem.filter(|_| touched).map(AttrValue::from)}
                    />
                }
                if let Some(error) = (*error).clone() {
                    <ErrorNotice {error} />
                }
                <button type="submit" id="account-submit" disabled={*busy || problem.is_some()} aria-busy={busy.then_some("true")}>
                    { if *busy { "Working…" } else { action } }
                </button>
            </form>
        </section>
    }
}
