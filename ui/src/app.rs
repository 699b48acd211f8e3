//! The app's frame: the header and the page below it. Until someone is logged in, the page
//! is the first run or the login; then the screen chosen in the header's navigation (the
//! `Screen` "route", switched on in `Workspace`).

use crate::activity::{Activity, ActivityAction, ActivityContext};
use crate::components::{Dialog, ErrorNotice};
use crate::hooks::use_event;
use crate::ipc;
use crate::live::{Live, LiveAction, LiveContext};
use crate::pages::about::About;
use crate::pages::account::AccountForm;
use crate::pages::blueprints::Blueprints;
use crate::pages::dashboard::Dashboard;
use crate::pages::hosts::Hosts;
use crate::pages::jobs::Jobs;
use crate::pages::overlays::Overlays;
use crate::pages::own_account::OwnAccount;
use crate::pages::server::ServerPage;
use crate::pages::servers::Servers;
use crate::pages::users::Users;
use crate::pages::vault::VaultGate;
use crate::session::{Session, SessionAction, SessionContext};
use left4me_protocol::model::JobFilter;
use left4me_protocol::{
    APP_EVENT, CLOSE_EVENT, IpcError, JobsToCut, STATUS_EVENT, SecretStore, command,
};
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

/// The screens of a logged-in user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Dashboard,
    Servers,
    /// One server's page: live state, log, RCON.
    Server(i64),
    Blueprints,
    Overlays,
    Hosts,
    Jobs,
    Accounts,
    /// The logged-in user's own account: their password.
    OwnAccount,
    About,
}

/// Switches the screen, for pages that link to another (a card to its server's page).
pub type Navigator = Callback<Screen>;

/// How often the status feed asks the hosts.
const STATUS_PERIOD_MS: u64 = 2000;

#[function_component(App)]
pub fn app() -> Html {
    let session = use_reducer(Session::default);
    let screen = use_state(|| Screen::Dashboard);
    let load_error = use_state(|| None::<IpcError>);
    // Where the secrets are, when the vault must be made or opened before anything else.
    let vault = use_state(|| None::<SecretStore>);
    // Bumped when the vault opens: the app is asked again who is in.
    let loads = use_state(|| 0u32);
    {
        let (session, load_error, vault) = (session.clone(), load_error.clone(), vault.clone());
        use_effect_with(*loads, move |_| {
            spawn_local(async move {
                match ipc::call(&command::SecretStore {}).await {
                    Ok(store @ (SecretStore::NoStore { .. } | SecretStore::Locked { .. })) => {
                        vault.set(Some(store));
                        return;
                    }
                    Ok(_) => vault.set(None),
                    Err(err) => {
                        load_error.set(Some(err));
                        return;
                    }
                }
                // Both asked at once.
                let (needs, me) = futures::future::join(
                    ipc::call(&command::NeedsFirstAdmin {}),
                    ipc::call(&command::Me {}),
                )
                .await;
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
            screen.set(Screen::Dashboard);
            let session = session.clone();
            spawn_local(async move {
                // Logging out cannot fail in a way the user could act on; the screen changes
                // either way.
                let _ = ipc::call(&command::Logout {}).await;
                session.dispatch(SessionAction::LoggedOut);
            });
        })
    };
    let page = match (&*session, (*load_error).clone()) {
        (_, Some(error)) => html! { <><ErrorNotice {error} /><About /></> },
        _ if vault.is_some() => {
            let on_open = {
                let loads = loads.clone();
                Callback::from(move |()| loads.set(*loads + 1))
            };
            html! { <VaultGate store={(*vault).clone().expect("checked")} {on_open} /> }
        }
        (Session::Loading, None) => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
        (Session::FirstRun, None) => html! { <><AccountForm first_run=true /><About /></> },
        (Session::LoggedOut, None) => html! { <><AccountForm first_run=false /><About /></> },
        (Session::LoggedIn(_), None) => {
            let navigate = {
                let screen = screen.clone();
                Callback::from(move |s: Screen| screen.set(s))
            };
            html! { <Workspace screen={*screen} {navigate} /> }
        }
    };
    html! {
        <ContextProvider<SessionContext> context={session.clone()}>
            <div class="frame">
                <header class="topbar">
                    <span class="brand" aria-label="left4me">{ "left4me" }</span>
                    if let Session::LoggedIn(user) = &*session {
                        <nav class="nav" aria-label="Screens">
                            { nav_button(&screen, Screen::Dashboard, "Dashboard", "nav-dashboard") }
                            { nav_button(&screen, Screen::Servers, "Servers", "nav-servers") }
                            { nav_button(&screen, Screen::Blueprints, "Blueprints", "nav-blueprints") }
                            { nav_button(&screen, Screen::Overlays, "Overlays", "nav-overlays") }
                            { nav_button(&screen, Screen::Hosts, "Hosts", "nav-hosts") }
                            { nav_button(&screen, Screen::Jobs, "Jobs", "nav-jobs") }
                            if user.is_admin {
                                { nav_button(&screen, Screen::Accounts, "Accounts", "nav-accounts") }
                            }
                            { nav_button(&screen, Screen::About, "About", "nav-about") }
                        </nav>
                        <span class="spacer" />
                        <button id="current-user" class="user" title="Your account: change your password"
                            aria-current={(*screen == Screen::OwnAccount).then_some("page")}
                            onclick={{ let screen = screen.clone(); Callback::from(move |_| screen.set(Screen::OwnAccount)) }}>
                            { &user.username }
                        </button>
                        if user.is_admin {
                            <span class="badge">{ "admin" }</span>
                        }
                        <button id="logout" class="secondary small" onclick={on_logout}>{ "Log out" }</button>
                    }
                </header>
                <main class="page">{ page }</main>
            </div>
            <ClosePrompt />
        </ContextProvider<SessionContext>>
    }
}

/// Asks before the window closes while jobs run, naming the jobs it would cut.
#[function_component(ClosePrompt)]
fn close_prompt() -> Html {
    let asked = use_state(|| None::<JobsToCut>);
    {
        let asked = asked.clone();
        use_event(
            CLOSE_EVENT,
            Callback::from(move |jobs| asked.set(Some(jobs))),
        );
    }
    let Some(to_cut) = &*asked else {
        return Html::default();
    };
    let on_close = Callback::from(|()| {
        spawn_local(async {
            let _ = ipc::call(&command::CloseAnyway {}).await;
        });
    });
    let on_keep = {
        let asked = asked.clone();
        Callback::from(move |()| asked.set(None))
    };
    let count = to_cut.jobs.len() + to_cut.others;
    html! {
        <Dialog id="close-dialog" title={format!("Close left4me while {}?", crate::text::count(count as u64, "job runs", "jobs run"))}
            confirm_label="Close anyway" cancel_label="Keep it open" danger=true
            on_confirm={on_close} on_cancel={on_keep}>
            <p>{ "Closing the app cuts these jobs off where they are; the jobs list will show them as interrupted." }</p>
            <ul id="close-dialog-jobs">
                { for to_cut.jobs.iter().map(|job| html! {
                    <li>{ format!("{}: {}", job.kind.doing(), job.target) }</li>
                }) }
                if to_cut.others > 0 {
                    <li>{ crate::text::count(to_cut.others as u64, "job of another account", "jobs of other accounts") }</li>
                }
            </ul>
        </Dialog>
    }
}

fn nav_button(current: &UseStateHandle<Screen>, target: Screen, label: &str, id: &str) -> Html {
    let onclick = {
        let current = current.clone();
        Callback::from(move |_| current.set(target))
    };
    html! {
        <button id={id.to_owned()} class="nav-link" {onclick}
            aria-current={(**current == target || matches!((**current, target), (Screen::Server(_), Screen::Servers))).then_some("page")}>
            { label.to_owned() }
        </button>
    }
}

#[derive(Properties, PartialEq)]
struct WorkspaceProps {
    screen: Screen,
    navigate: Navigator,
}

/// What a logged-in user works in: the jobs and the servers' live state, kept current from
/// the backend's events for every page, and the chosen screen.
#[function_component(Workspace)]
fn workspace(props: &WorkspaceProps) -> Html {
    let activity = use_reducer(Activity::default);
    let live = use_reducer(Live::default);
    {
        let activity = activity.clone();
        use_event(
            APP_EVENT,
            Callback::from(move |event| activity.dispatch(ActivityAction::Event(event))),
        );
    }
    {
        let live = live.clone();
        use_event(
            STATUS_EVENT,
            Callback::from(move |update| live.dispatch(LiveAction::Update(update))),
        );
    }
    {
        let (activity, live) = (activity.clone(), live.clone());
        use_effect_with((), move |()| {
            spawn_local(async move {
                let filter = JobFilter {
                    limit: Some(200),
                    ..JobFilter::default()
                };
                if let Ok(jobs) = ipc::call(&command::Jobs { filter }).await {
                    activity.dispatch(ActivityAction::Loaded(jobs));
                }
                let watch = command::WatchStatuses {
                    period_ms: STATUS_PERIOD_MS,
                };
                if let Err(error) = ipc::call(&watch).await {
                    live.dispatch(LiveAction::Update(Err(error)));
                }
            });
            || {
                spawn_local(async {
                    let _ = ipc::call(&command::UnwatchStatuses {}).await;
                });
            }
        });
    }
    let navigate = props.navigate.clone();
    let page = match props.screen {
        Screen::Dashboard => html! { <Dashboard {navigate} /> },
        Screen::Servers => html! { <Servers {navigate} /> },
        Screen::Server(id) => html! { <ServerPage key={id} server_id={id} {navigate} /> },
        Screen::Blueprints => html! { <Blueprints /> },
        Screen::Overlays => html! { <Overlays /> },
        Screen::Hosts => html! { <Hosts /> },
        Screen::Jobs => html! { <Jobs /> },
        Screen::Accounts => html! { <Users /> },
        Screen::OwnAccount => html! { <OwnAccount /> },
        Screen::About => html! { <About /> },
    };
    html! {
        <ContextProvider<ActivityContext> context={activity}>
            <ContextProvider<LiveContext> context={live}>
                { page }
            </ContextProvider<LiveContext>>
        </ContextProvider<ActivityContext>>
    }
}
