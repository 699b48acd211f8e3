//! Hosts: add one, confirm its key, set it up, install or update the game with its progress,
//! read its facts, remove it; the Steam account installs log in with, and the Steam Guard
//! code Steam asks for. Everyone sees the hosts; admins manage them.

use crate::activity::ActivityContext;
use crate::components::{Dialog, ErrorNotice, ProgressBar, TextField};
use crate::forms::HostForm;
use crate::hooks::{Loadable, use_action, use_query, use_revision};
use crate::pages::builds::HostBuilds;
use crate::pages::notifications::{NotificationTargets, TestNotifications};
use crate::pages::schedules::HostSchedules;
use crate::session::{Session, SessionContext};
use left4me_protocol::agent::AgentErrorCode;
use left4me_protocol::command;
use left4me_protocol::model::{Host, HostKeyOffer, HostState, SetupLogin, SetupRequest};
use left4me_protocol::units::human_bytes as bytes;
use left4me_protocol::{Job, JobKind, JobState};
use web_sys::HtmlInputElement;
use yew::prelude::*;

#[function_component(Hosts)]
pub fn hosts() -> Html {
    let session = use_context::<SessionContext>().expect("session context");
    let (revision, reload) = use_revision();
    let hosts = use_query(command::Hosts {}, revision);
    let is_admin = matches!(&*session, Session::LoggedIn(user) if user.is_admin);
    let list = match &hosts {
        Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
        Loadable::Failed(error) => html! { <ErrorNotice error={error.clone()} /> },
        Loadable::Ready(list) if list.is_empty() => html! {
            <p class="muted" id="no-hosts">{ if is_admin { "No hosts yet: add the first one below." } else { "No hosts yet: an admin adds them." } }</p>
        },
        Loadable::Ready(list) => html! {
            <div class="stack">
                { for list.iter().map(|host| html! {
                    <HostCard key={host.id} host={host.clone()} {is_admin} on_changed={reload.clone()} />
                }) }
            </div>
        },
    };
    html! {
        <>
            <section class="card" aria-labelledby="hosts-title">
                <h1 id="hosts-title">{ "Hosts" }</h1>
                { list }
            </section>
            if is_admin {
                <SteamAccount />
                <NotificationTargets />
                <AddHost on_added={reload} />
            }
        </>
    }
}

/// The hosts that are set up, as options of a drop-down list (id, name).
pub fn ready_hosts(hosts: &[Host]) -> Vec<(String, String)> {
    hosts
        .iter()
        .filter(|h| h.state == HostState::Ready)
        .map(|h| (h.id.to_string(), h.name.clone()))
        .collect()
}

/// The Steam account installs log in with: set it, or forget it here and on the hosts.
#[function_component(SteamAccount)]
fn steam_account() -> Html {
    let (revision, reload) = use_revision();
    let account = use_query(command::SteamAccount {}, revision);
    let user = use_state(String::new);
    let password = use_state(String::new);
    let action = use_action();
    let set = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |value: String| state.set(value))
    };
    let on_save = {
        let (user, password, action, reload) = (
            user.clone(),
            password.clone(),
            action.clone(),
            reload.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (password_field, reload) = (password.clone(), reload.clone());
            let login = command::SetSteamLogin {
                user: Some(user.trim().to_owned()),
                password: Some((*password).clone()),
            };
            action.run(login, move |()| {
                password_field.set(String::new());
                reload.emit(());
            });
        })
    };
    let on_forget = {
        let (action, reload) = (action.clone(), reload.clone());
        Callback::from(move |_| {
            let reload = reload.clone();
            action.run(command::ForgetSteamAccount {}, move |_| reload.emit(()));
        })
    };
    let body = match &account {
        Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
        Loadable::Failed(error) => html! { <ErrorNotice error={error.clone()} /> },
        Loadable::Ready(Some(name)) => html! {
            <>
                <p>{ "Installs log in to Steam as " }<strong id="steam-account-name">{ name }</strong>
                    { ". steamcmd keeps the login on each host after its first install, so Steam Guard asks for a code once per host." }</p>
                <button class="plain danger" id="forget-steam" onclick={on_forget} disabled={action.busy()}>
                    { "Forget the account (here and on every host)" }
                </button>
            </>
        },
        Loadable::Ready(None) => html! {
            <form id="steam-form" onsubmit={on_save}>
                <p class="muted">{ "Installs are anonymous. Steam refuses anonymous Linux installs of the L4D2 server unless the Windows files come first; an account that owns Left 4 Dead 2 installs in one pass. The password stays in this computer's credential store." }</p>
                <TextField id="steam-user" label="Steam account name" value={(*user).clone()} on_change={set(&user)} autocomplete="off" />
                <TextField id="steam-password" label="Password" kind="password" value={(*password).clone()} on_change={set(&password)} autocomplete="off" />
                <button type="submit" id="save-steam" disabled={action.busy() || user.trim().is_empty() || password.is_empty()}>
                    { "Use this account" }
                </button>
            </form>
        },
    };
    html! {
        <section class="card narrow" aria-labelledby="steam-title" id="steam-account">
            <h2 id="steam-title">{ "Steam account" }</h2>
            { body }
            if let Some(error) = action.error() {
                <ErrorNotice {error} />
            }
        </section>
    }
}

/// Asks for the Steam Guard code an install needs, then runs the install again with it.
#[derive(Properties, PartialEq)]
struct GuardCodeProps {
    host_id: i64,
    host_name: String,
    rejected: bool,
}

#[function_component(GuardCodeForm)]
fn guard_code_form(props: &GuardCodeProps) -> Html {
    let code = use_state(String::new);
    let action = use_action();
    let host_id = props.host_id;
    let on_submit = {
        let (code, action) = (code.clone(), action.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let field = code.clone();
            let install = command::InstallGame {
                host_id,
                validate: false,
                guard_code: Some(code.trim().to_owned()),
            };
            action.run(install, move |_| field.set(String::new()));
        })
    };
    let on_input = {
        let code = code.clone();
        Callback::from(move |value: String| code.set(value))
    };
    html! {
        <form class="inline guard-code" id={format!("guard-form-{}", props.host_name)} onsubmit={on_submit}>
            <TextField id={format!("guard-code-{}", props.host_name)}
                label={if props.rejected { "Steam Guard code (the last one was refused)" } else { "Steam Guard code" }}
                value={(*code).clone()} on_change={on_input} autocomplete="one-time-code" />
            <button type="submit" class="guard-submit" disabled={action.busy() || code.trim().is_empty()}>
                { "Continue the install" }
            </button>
            if let Some(error) = action.error() {
                <ErrorNotice {error} />
            }
        </form>
    }
}

#[derive(Properties, PartialEq)]
struct AddHostProps {
    on_added: Callback<()>,
}

#[function_component(AddHost)]
fn add_host(props: &AddHostProps) -> Html {
    let form = use_state(HostForm::new);
    let action = use_action();
    let hints = form.hints();
    let field = |set: fn(&mut HostForm, String)| {
        let form = form.clone();
        Callback::from(move |value: String| {
            let mut next = (*form).clone();
            set(&mut next, value);
            form.set(next);
        })
    };
    let on_submit = {
        let (form, action, on_added) = (form.clone(), action.clone(), props.on_added.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Ok(host) = form.value() else { return };
            let (form, on_added) = (form.clone(), on_added.clone());
            action.run(command::AddHost { host }, move |_| {
                form.set(HostForm::new());
                on_added.emit(());
            });
        })
    };
    html! {
        <section class="card narrow" aria-labelledby="add-host-title">
            <h2 id="add-host-title">{ "Add a host" }</h2>
            <form id="add-host-form" onsubmit={on_submit}>
                <TextField id="host-name" label="Name" value={form.name.clone()} hint={hints.name.map(AttrValue::from)}
                    on_change={field(|f, v| f.name = v)} autocomplete="off" />
                <TextField id="host-address" label="Address (name or IP)" value={form.address.clone()} hint={hints.address.map(AttrValue::from)}
                    on_change={field(|f, v| f.address = v)} autocomplete="off" />
                <TextField id="host-port" label="SSH port" value={form.port.clone()} hint={hints.port.map(AttrValue::from)}
                    on_change={field(|f, v| f.port = v)} />
                <TextField id="host-admin" label="Account with sudo" value={form.admin_user.clone()} hint={hints.admin_user.map(AttrValue::from)}
                    on_change={field(|f, v| f.admin_user = v)} autocomplete="off" />
                <TextField id="host-bind" label="Servers bind (blank: all addresses)" value={form.bind_address.clone()} hint={hints.bind_address.map(AttrValue::from)}
                    on_change={field(|f, v| f.bind_address = v)} autocomplete="off" />
                if let Some(error) = action.error() {
                    <ErrorNotice {error} />
                }
                <button type="submit" id="add-host" disabled={action.busy() || form.value().is_err()}>
                    { if action.busy() { "Adding…" } else { "Add host" } }
                </button>
            </form>
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct HostCardProps {
    host: Host,
    is_admin: bool,
    on_changed: Callback<()>,
}

#[function_component(HostCard)]
fn host_card(props: &HostCardProps) -> Html {
    let activity = use_context::<ActivityContext>().expect("activity context");
    let host = &props.host;
    let id = host.id;
    let action = use_action();
    let offer = use_state(|| None::<HostKeyOffer>);
    let removing = use_state(|| false);
    let schedules_open = use_state(|| false);
    let builds_open = use_state(|| false);
    let running = activity.active_for_host(id).cloned();

    let on_check_key = {
        let (action, offer) = (action.clone(), offer.clone());
        Callback::from(move |_| {
            let offer = offer.clone();
            action.run(command::FetchHostKey { host_id: id }, move |o| {
                offer.set(Some(o))
            });
        })
    };
    let on_trust = {
        let (action, offer, on_changed) = (action.clone(), offer.clone(), props.on_changed.clone());
        Callback::from(move |()| {
            let Some(key) = offer.as_ref().map(|o| o.key.clone()) else {
                return;
            };
            let (offer, on_changed) = (offer.clone(), on_changed.clone());
            action.run(command::ConfirmHostKey { host_id: id, key }, move |_| {
                offer.set(None);
                on_changed.emit(());
            });
        })
    };
    let on_distrust = {
        let offer = offer.clone();
        Callback::from(move |()| offer.set(None))
    };
    let on_install = {
        let action = action.clone();
        Callback::from(move |_| {
            let install = command::InstallGame {
                host_id: id,
                validate: false,
                guard_code: None,
            };
            action.run(install, drop);
        })
    };
    let on_check_update = {
        let (action, on_changed) = (action.clone(), props.on_changed.clone());
        Callback::from(move |_| {
            let on_changed = on_changed.clone();
            action.run(command::CheckGameUpdate { host_id: id }, move |_| {
                on_changed.emit(())
            });
        })
    };
    let on_refresh = {
        let (action, on_changed) = (action.clone(), props.on_changed.clone());
        Callback::from(move |_| {
            let on_changed = on_changed.clone();
            action.run(command::RefreshHost { host_id: id }, move |_| {
                on_changed.emit(())
            });
        })
    };
    let on_remove = {
        let (action, removing, on_changed) =
            (action.clone(), removing.clone(), props.on_changed.clone());
        Callback::from(move |()| {
            let (removing, on_changed) = (removing.clone(), on_changed.clone());
            action.run(command::RemoveHost { host_id: id }, move |()| {
                removing.set(false);
                on_changed.emit(());
            });
        })
    };

    let state = match (host.state, &host.host_key) {
        (HostState::Ready, _) => "ready",
        (HostState::New, Some(_)) => "key confirmed",
        (HostState::New, None) => "new",
    };
    let last_setup = activity
        .latest(id, JobKind::SetUp)
        .filter(|j| j.state != JobState::Succeeded);
    let builds_toggle = html! {
        <button class="plain builds-toggle" aria-expanded={builds_open.to_string()}
            onclick={{ let open = builds_open.clone(); Callback::from(move |_| open.set(!*open)) }}>
            { "Game builds" }
        </button>
    };
    let last_install = activity
        .latest(id, JobKind::Install)
        .filter(|j| j.state != JobState::Succeeded);
    html! {
        <article class="host" id={format!("host-{}", host.name)} aria-label={format!("Host {}", host.name)}>
            <header class="row">
                <h2>{ &host.name }</h2>
                <span class={classes!("state", state.replace(' ', "-"))}>{ state }</span>
                <span class="muted">{ format!("{}@{}:{}", host.admin_user, host.address, host.port) }</span>
                if let Some(bind) = host.bind_address {
                    <span class="muted">{ format!(" · servers bind {bind}") }</span>
                }
            </header>
            if let Some(facts) = &host.facts {
                <dl class="facts host-facts">
                    <dt>{ "System" }</dt><dd>{ format!("{}, kernel {} ({})", facts.os, facts.kernel, facts.arch) }</dd>
                    <dt>{ "CPU" }</dt><dd>{ format!("{} × {}", facts.cpus, facts.cpu) }</dd>
                    <dt>{ "Memory" }</dt><dd>{ bytes(facts.memory_bytes) }</dd>
                    <dt>{ "Disk" }</dt><dd>{ format!("{} free of {}", bytes(facts.disk_free_bytes), bytes(facts.disk_total_bytes)) }</dd>
                    <dt>{ "Game build" }</dt>
                    <dd>
                        <span class="installed-build">{ facts.installed_build.clone().unwrap_or_else(|| "not installed".into()) }</span>
                        if host.update_available() {
                            <span class="update-available">{ format!(" · update available: build {}", host.public_build.clone().unwrap_or_default()) }</span>
                        } else if host.public_build.is_some() && facts.installed_build.is_some() {
                            <span class="muted up-to-date">{ " · the public build" }</span>
                        }
                    </dd>
                    <dt>{ "Agent" }</dt><dd>{ &facts.agent_version }</dd>
                    <dt>{ "Can run the game" }</dt>
                    <dd class="readiness">{ match &facts.readiness {
                        Some(r) if r.can_run_game() => html! { <span class="ready">{ "yes" }</span> },
                        Some(r) => html! {
                            <>
                                <span class="not-ready">{ "no" }</span>
                                <ul class="problems">
                                    { for r.problems.iter().map(|p| html! { <li>{ p }</li> }) }
                                </ul>
                            </>
                        },
                        None => html! { <span class="muted">{ "unknown: refresh the facts" }</span> },
                    } }</dd>
                </dl>
            }
            if let Some(job) = &running {
                <JobProgress job={job.clone()} />
            }
            { for [last_setup, last_install].into_iter().flatten().filter(|j| j.state.is_finished()).map(|job| {
                let guard = match job.error_code {
                    Some(AgentErrorCode::SteamGuardCodeNeeded) => Some(false),
                    Some(AgentErrorCode::SteamGuardCodeRejected) => Some(true),
                    _ => None,
                };
                html! {
                    <div class="notice notice-error" role="alert">
                        <strong>{ format!("The {} {}", if job.kind == JobKind::SetUp { "set-up" } else { "install" }, job.state.as_str()) }</strong>
                        <p class="job-error">{ job.error.clone().unwrap_or_default() }</p>
                        if let (Some(rejected), true, None) = (guard, props.is_admin, &running) {
                            <GuardCodeForm host_id={id} host_name={host.name.clone()} {rejected} />
                        }
                    </div>
                }
            }) }
            if let Some(error) = action.error() {
                <ErrorNotice {error} />
            }
            if !props.is_admin && host.state == HostState::Ready {
                <div class="row actions">{ builds_toggle.clone() }</div>
            }
            if props.is_admin {
                <div class="row actions">
                    if host.host_key.is_none() {
                        <button class="check-key" onclick={on_check_key} disabled={action.busy()}>
                            { if action.busy() { "Contacting…" } else { "Check host key" } }
                        </button>
                    }
                    if host.state == HostState::Ready {
                        <button class="install" onclick={on_install} disabled={action.busy() || running.is_some()}>
                            { if host.facts.as_ref().is_some_and(|f| f.installed_build.is_some()) { "Update game" } else { "Install game" } }
                        </button>
                        <button class="plain check-update" onclick={on_check_update} disabled={action.busy() || running.is_some()}>{ "Check for update" }</button>
                        <button class="plain refresh" onclick={on_refresh} disabled={action.busy()}>{ "Refresh facts" }</button>
                        if props.is_admin {
                            <TestNotifications host_id={host.id} host_name={host.name.clone()} />
                        }
                        <button class="plain schedules-toggle" aria-expanded={schedules_open.to_string()}
                            onclick={{ let open = schedules_open.clone(); Callback::from(move |_| open.set(!*open)) }}>
                            { "Schedules" }
                        </button>
                        { builds_toggle }
                    }
                    <button class="plain danger remove" disabled={action.busy() || running.is_some()}
                        onclick={{ let removing = removing.clone(); Callback::from(move |_| removing.set(true)) }}>{ "Remove" }</button>
                </div>
                if *schedules_open && host.state == HostState::Ready {
                    <HostSchedules host_id={host.id} host_name={host.name.clone()} is_admin={props.is_admin} />
                }
            }
            if *builds_open && host.state == HostState::Ready {
                <HostBuilds host_id={host.id} host_name={host.name.clone()} is_admin={props.is_admin} />
            }
            if props.is_admin {
                if host.host_key.is_some() && host.state == HostState::New && running.is_none() {
                    <SetUpForm host={host.clone()} />
                }
            }
            if let Some(o) = &*offer {
                <Dialog id="host-key-dialog" title={format!("Trust the key of {}?", host.name)} confirm_label="Trust this key"
                    on_confirm={on_trust} on_cancel={on_distrust} busy={action.busy()}>
                    <p>{ "Compare this fingerprint with the one the host prints for " }<code>{ "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" }</code>{ ". Trust it only if they are the same." }</p>
                    <p class="fingerprint"><code id="host-fingerprint">{ &o.fingerprint }</code></p>
                </Dialog>
            }
            if *removing {
                <Dialog id="remove-host-dialog" title={format!("Remove {}?", host.name)} confirm_label="Remove host" danger=true
                    on_confirm={on_remove} on_cancel={{ let removing = removing.clone(); Callback::from(move |()| removing.set(false)) }} busy={action.busy()}>
                    <p>{ "The app forgets the host and its saved passwords. The host itself keeps what is on it; its servers must be deleted first." }</p>
                </Dialog>
            }
        </article>
    }
}

#[derive(Properties, PartialEq)]
pub struct JobProgressProps {
    pub job: Job,
}

/// A running job: its progress bar when it reports one, else its last line.
#[function_component(JobProgress)]
pub fn job_progress(props: &JobProgressProps) -> Html {
    let activity = use_context::<ActivityContext>().expect("activity context");
    let job = &props.job;
    let progress = activity.progress.get(&job.id);
    let last = activity.last_line.get(&job.id).cloned().unwrap_or_default();
    let what = job.kind.doing();
    let label = if job.state == JobState::Queued {
        format!("{what}: waiting for the job before it")
    } else {
        format!("{what}…")
    };
    html! {
        <div class="job-progress" aria-live="polite">
            <p><strong>{ label }</strong></p>
            <ProgressBar id={format!("job-{}-progress", job.id)} label={what}
                fraction={progress.map(|p| p.fraction())}
                words={progress.map(|p| p.words()).unwrap_or(last)} />
        </div>
    }
}

/// What a job of this kind is doing, as a label: `Starting`.
/// How the app logs in to a new host for its set-up.
#[derive(Properties, PartialEq)]
struct SetUpProps {
    host: Host,
}

#[derive(Clone, Copy, PartialEq)]
enum Method {
    Password,
    KeyFile,
    Agent,
}

#[function_component(SetUpForm)]
fn set_up_form(props: &SetUpProps) -> Html {
    let id = props.host.id;
    let method = use_state(|| Method::Password);
    let password = use_state(String::new);
    let key_path = use_state(String::new);
    let passphrase = use_state(String::new);
    let sudo_password = use_state(String::new);
    let remember = use_state(|| false);
    let action = use_action();
    let set = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |value: String| state.set(value))
    };
    let on_submit = {
        let (method, password, key_path, passphrase, sudo_password, remember, action) = (
            method.clone(),
            password.clone(),
            key_path.clone(),
            passphrase.clone(),
            sudo_password.clone(),
            remember.clone(),
            action.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let login = match *method {
                Method::Password => SetupLogin::Password {
                    password: (*password).clone(),
                },
                Method::KeyFile => SetupLogin::KeyFile {
                    path: (*key_path).clone(),
                    passphrase: (!passphrase.is_empty()).then(|| (*passphrase).clone()),
                },
                Method::Agent => SetupLogin::Agent,
            };
            let request = SetupRequest {
                host_id: id,
                login,
                sudo_password: (!sudo_password.is_empty()).then(|| (*sudo_password).clone()),
                remember: *remember,
            };
            let (password, passphrase, sudo_password) =
                (password.clone(), passphrase.clone(), sudo_password.clone());
            action.run(command::SetUpHost { request }, move |_| {
                password.set(String::new());
                passphrase.set(String::new());
                sudo_password.set(String::new());
            });
        })
    };
    let choice = |value: Method, label: &str, input_id: &str| {
        let m = method.clone();
        html! {
            <label class="check">
                <input type="radio" name={format!("setup-method-{id}")} id={input_id.to_owned()} checked={*method == value}
                    onchange={Callback::from(move |_| m.set(value))} />
                { label.to_owned() }
            </label>
        }
    };
    let ready = match *method {
        Method::Password => !password.is_empty(),
        Method::KeyFile => !key_path.is_empty(),
        Method::Agent => true,
    };
    let on_remember = {
        let remember = remember.clone();
        Callback::from(move |e: Event| {
            remember.set(e.target_unchecked_into::<HtmlInputElement>().checked())
        })
    };
    html! {
        <form class="setup" id={format!("setup-form-{}", props.host.name)} onsubmit={on_submit}>
            <fieldset>
                <legend>{ format!("Set up as {}: log in with", props.host.admin_user) }</legend>
                <div class="row">
                    { choice(Method::Password, "Password", "setup-by-password") }
                    { choice(Method::KeyFile, "Key file", "setup-by-key") }
                    { choice(Method::Agent, "ssh-agent", "setup-by-agent") }
                </div>
            </fieldset>
            if *method == Method::Password {
                <TextField id="setup-password" label="Password (for SSH and sudo)" kind="password" value={(*password).clone()} on_change={set(&password)} autocomplete="off" />
            }
            if *method == Method::KeyFile {
                <TextField id="setup-key-path" label="Private key file on this computer" value={(*key_path).clone()} on_change={set(&key_path)} autocomplete="off" />
                <TextField id="setup-passphrase" label="Its passphrase (if it has one)" kind="password" value={(*passphrase).clone()} on_change={set(&passphrase)} autocomplete="off" />
            }
            <TextField id="setup-sudo" label="sudo password (if different, or none)" kind="password" value={(*sudo_password).clone()} on_change={set(&sudo_password)} autocomplete="off" />
            <label class="check"><input type="checkbox" id="setup-remember" checked={*remember} onchange={on_remember} />
                { "Keep the sudo password in this computer's credential store, to set the host up again by itself" }</label>
            if let Some(error) = action.error() {
                <ErrorNotice {error} />
            }
            <button type="submit" id="setup-submit" disabled={action.busy() || !ready}>{ "Set up host" }</button>
        </form>
    }
}
