//! The app's frame: the header and the page below it. Until someone is logged in, the page
//! is the first run or the login.

use crate::components::ErrorNotice;
use crate::ipc::{self, NoArgs};
use crate::pages::about::About;
use crate::pages::account::AccountForm;
use crate::pages::users::Users;
use crate::session::{Session, SessionAction, SessionContext};
use left4me_protocol::IpcError;
use left4me_protocol::model::User;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

/// The screens of a logged-in user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    About,
    Accounts,
}

#[function_component(App)]
pub fn app() -> Html {
    let session = use_reducer(Session::default);
    let screen = use_state(|| Screen::About);
    let load_error = use_state(|| None::<IpcError>);
    {
        let (session, load_error) = (session.clone(), load_error.clone());
        use_effect_with((), move |()| {
            spawn_local(async move {
                let needs = ipc::invoke::<_, bool>("needs_first_admin", &NoArgs {}).await;
                let me = ipc::invoke::<_, Option<User>>("me", &NoArgs {}).await;
                match (needs, me) {
                    (Ok(needs_first_admin), Ok(me)) => session.dispatch(SessionAction::Loaded {
                        needs_first_admin,
                        me,
                    }),
                    (Err(err), _) | (_, Err(err)) => load_error.set(Some(err)),
                }
            });
        });
    }
    let on_logout = {
        let (session, screen) = (session.clone(), screen.clone());
        Callback::from(move |_| {
            screen.set(Screen::About);
            let session = session.clone();
            spawn_local(async move {
                // Logging out cannot fail in a way the user could act on; the screen changes
                // either way.
                let _ = ipc::invoke::<_, ()>("logout", &NoArgs {}).await;
                session.dispatch(SessionAction::LoggedOut);
            });
        })
    };
    let page = match (&*session, (*load_error).clone()) {
        (_, Some(error)) => html! { <><ErrorNotice {error} /><About /></> },
        (Session::Loading, None) => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
        (Session::FirstRun, None) => html! { <><AccountForm first_run=true /><About /></> },
        (Session::LoggedOut, None) => html! { <><AccountForm first_run=false /><About /></> },
        (Session::LoggedIn(_), None) => match *screen {
            Screen::About => html! { <About /> },
            Screen::Accounts => html! { <Users /> },
        },
    };
    html! {
        <ContextProvider<SessionContext> context={session.clone()}>
            <div class="frame">
                <header class="topbar">
                    <span class="brand" aria-label="left4me">{ "left4me" }</span>
                    if let Session::LoggedIn(user) = &*session {
                        <nav class="nav" aria-label="Screens">
                            { nav_button(&screen, Screen::About, "About", "nav-about") }
                            if user.is_admin {
                                { nav_button(&screen, Screen::Accounts, "Accounts", "nav-accounts") }
                            }
                        </nav>
                        <span class="spacer" />
                        <span id="current-user" class="user">{ &user.username }</span>
                        if user.is_admin {
                            <span class="badge">{ "admin" }</span>
                        }
                        <button id="logout" class="secondary" onclick={on_logout}>{ "Log out" }</button>
                    }
                </header>
                <main class="page">{ page }</main>
            </div>
        </ContextProvider<SessionContext>>
    }
}

fn nav_button(current: &UseStateHandle<Screen>, target: Screen, label: &str, id: &str) -> Html {
    let onclick = {
        let current = current.clone();
        Callback::from(move |_| current.set(target))
    };
    html! {
        <button id={id.to_owned()} class="nav-link" {onclick}
            aria-current={(**current == target).then_some("page")}>
            { label.to_owned() }
        </button>
    }
}
