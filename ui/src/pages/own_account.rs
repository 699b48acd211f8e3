//! The logged-in user's own account: who they are, and a change of their password (the
//! current one, then the new one twice).

use crate::components::{ErrorNotice, TextField};
use crate::forms::PasswordForm;
use crate::hooks::use_action;
use crate::session::{Session, SessionContext};
use left4me_protocol::command;
use yew::prelude::*;

#[function_component(OwnAccount)]
pub fn own_account() -> Html {
    let session = use_context::<SessionContext>().expect("session context");
    let form = use_state(PasswordForm::default);
    let changed = use_state(|| false);
    let action = use_action();
    let hints = form.hints();
    let field = |apply: fn(&mut PasswordForm, String)| {
        let (form, changed) = (form.clone(), changed.clone());
        Callback::from(move |value: String| {
            let mut next = (*form).clone();
            apply(&mut next, value);
            form.set(next);
            changed.set(false);
        })
    };
    let on_submit = {
        let (form, changed, action) = (form.clone(), changed.clone(), action.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Ok((current, new)) = form.value() else {
                return;
            };
            let (form, changed) = (form.clone(), changed.clone());
            action.run(command::ChangePassword { current, new }, move |()| {
                form.set(PasswordForm::default());
                changed.set(true);
            });
        })
    };
    let (name, role) = match &*session {
        Session::LoggedIn(user) => (
            user.username.clone(),
            if user.is_admin { "an admin" } else { "a user" },
        ),
        _ => (String::new(), ""),
    };
    html! {
        <section class="card narrow" aria-labelledby="own-account-title">
            <h1 id="own-account-title">{ "Your account" }</h1>
            <p>{ "You are logged in as " }<strong id="own-username">{ name }</strong>{ format!(", {role}.") }</p>
            <h2>{ "Change your password" }</h2>
            <form id="change-password-form" onsubmit={on_submit}>
                <TextField id="current-password" label="Current password" kind="password" value={form.current.clone()}
                    on_change={field(|f, v| f.current = v)} autocomplete="current-password" />
                <TextField id="new-password" label="New password" kind="password" value={form.new.clone()}
                    on_change={field(|f, v| f.new = v)} autocomplete="new-password" hint={hints.new.map(AttrValue::from)} />
                <TextField id="new-password-again" label="New password again" kind="password" value={form.again.clone()}
                    on_change={field(|f, v| f.again = v)} autocomplete="new-password" hint={hints.again.map(AttrValue::from)} />
                if let Some(error) = action.error() {
                    <ErrorNotice {error} />
                }
                if *changed {
                    <p class="notice notice-ok" id="password-changed" role="status">{ "Your password was changed: use it at your next login." }</p>
                }
                <button type="submit" id="change-password-submit" disabled={action.busy() || form.value().is_err()}
                    aria-busy={action.busy().then_some("true")}>
                    { if action.busy() { "Working…" } else { "Change password" } }
                </button>
            </form>
        </section>
    }
}
