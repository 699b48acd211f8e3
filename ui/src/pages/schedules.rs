//! A host's schedules: read from the host, which keeps and runs them with this app closed.
//! A new schedule is previewed first (the host's systemd reads the calendar in this
//! computer's time zone and gives the next runs), and a restart more often than hourly has
//! to be confirmed before it is saved.

use crate::components::{ErrorNotice, SelectField, TextField};
use crate::hooks::{Loadable, use_action, use_query};
use crate::pages::host_events::local_time;
use left4me_protocol::ScheduleName;
use left4me_protocol::command;
use left4me_protocol::model::{Overlay, OverlaySource};
use left4me_protocol::schedule::{
    DEFAULT_DRAIN_MINUTES, RunOutcome, Schedule, ScheduleAction, ScheduleInfo, SchedulePreview,
};
use wasm_bindgen::JsValue;
use web_sys::HtmlInputElement;
use yew::prelude::*;

const ACTIONS: [(&str, &str); 7] = [
    (
        "restart",
        "Restart (players are warned, and it waits for them to leave)",
    ),
    ("say", "Message to the players"),
    ("command", "Console command"),
    ("update_check", "Check for a game update"),
    (
        "game_update",
        "Update the game (servers switch at their next start)",
    ),
    ("overlay_refresh", "Fetch a Workshop overlay again"),
    (
        "backup",
        "Back up (the server's own files, kept on the host)",
    ),
];

/// This computer's time zone (`Europe/Berlin`), which calendars are read in.
fn computer_zone() -> Option<String> {
    let format = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new());
    js_sys::Reflect::get(&format.resolved_options(), &JsValue::from_str("timeZone"))
        .ok()?
        .as_string()
}

#[derive(Clone, PartialEq)]
struct Form {
    name: String,
    server: String,
    /// The Workshop overlay to refresh, by its folder on hosts.
    overlay: String,
    action: String,
    drain_minutes: String,
    command: String,
    message: String,
    /// How many backups retention keeps: the last, daily and weekly ones.
    keep: [String; 3],
    calendar: String,
    time_zone: String,
}

impl Form {
    fn new() -> Form {
        Form {
            name: String::new(),
            server: String::new(),
            overlay: String::new(),
            action: "restart".to_owned(),
            drain_minutes: DEFAULT_DRAIN_MINUTES.to_string(),
            command: String::new(),
            message: String::new(),
            keep: ["3".to_owned(), "7".to_owned(), "4".to_owned()],
            calendar: "*-*-* 05:00".to_owned(),
            time_zone: computer_zone().unwrap_or_default(),
        }
    }

    /// The schedule it describes, or why it is not one yet.
    fn schedule(&self, overlays: &[Overlay]) -> Result<Schedule, String> {
        let name = ScheduleName::new(self.name.trim()).map_err(|e| e.to_string())?;
        let action =
            match self.action.as_str() {
                "restart" => ScheduleAction::Restart {
                    drain_minutes: self.drain_minutes.trim().parse().map_err(|_| {
                        "the wait for players is a whole number of minutes".to_owned()
                    })?,
                },
                "say" => ScheduleAction::Say {
                    message: self.message.trim().to_owned(),
                },
                "command" => ScheduleAction::Command {
                    command: self.command.trim().to_owned(),
                },
                "game_update" => ScheduleAction::GameUpdate { steam_user: None },
                "backup" => {
                    let keep = |i: usize| {
                        self.keep[i].trim().parse::<u32>().map_err(|_| {
                            "how many backups to keep is a whole number (0: no rule)".to_owned()
                        })
                    };
                    ScheduleAction::Backup {
                        keep_last: keep(0)?,
                        keep_daily: keep(1)?,
                        keep_weekly: keep(2)?,
                    }
                }
                "overlay_refresh" => {
                    let overlay = overlays
                        .iter()
                        .find(|o| o.host_name.as_str() == self.overlay)
                        .ok_or_else(|| "choose the Workshop overlay to fetch again".to_owned())?;
                    let OverlaySource::Workshop { items, collections } = &overlay.source else {
                        return Err(format!("{} is not a Workshop overlay", overlay.name));
                    };
                    ScheduleAction::OverlayRefresh {
                        overlay: overlay.host_name.clone(),
                        items: items.clone(),
                        collections: collections.clone(),
                        api_url: None,
                    }
                }
                _ => ScheduleAction::UpdateCheck,
            };
        let server = match (&action, self.server.as_str()) {
            (
                ScheduleAction::UpdateCheck
                | ScheduleAction::GameUpdate { .. }
                | ScheduleAction::OverlayRefresh { .. },
                _,
            )
            | (_, "") => None,
            (_, server) => {
                Some(left4me_protocol::ServerName::new(server).map_err(|e| e.to_string())?)
            }
        };
        let schedule = Schedule {
            name,
            calendar: self.calendar.trim().to_owned(),
            time_zone: Some(self.time_zone.trim().to_owned()).filter(|z| !z.is_empty()),
            server,
            action,
        };
        schedule.check()?;
        Ok(schedule)
    }

    /// What a preview was asked for: one that no longer matches the form is stale.
    fn preview_key(&self) -> (String, String, bool) {
        (
            self.calendar.trim().to_owned(),
            self.time_zone.trim().to_owned(),
            self.action == "restart",
        )
    }
}

#[derive(Properties, PartialEq)]
pub struct Props {
    pub host_id: i64,
    pub host_name: String,
    pub is_admin: bool,
}

#[function_component(HostSchedules)]
pub fn host_schedules(props: &Props) -> Html {
    let host_id = props.host_id;
    let reloads = use_state(|| 0u64);
    let list = use_query(command::HostSchedules { host_id }, *reloads);
    let servers = use_query(command::Servers {}, 0);
    let form = use_state(Form::new);
    let preview = use_state(|| None::<((String, String, bool), SchedulePreview)>);
    let confirmed = use_state(|| false);
    let action = use_action();

    let change = {
        let (form, confirmed) = (form.clone(), confirmed.clone());
        move |set: fn(&mut Form, String)| {
            let (form, confirmed) = (form.clone(), confirmed.clone());
            Callback::from(move |value: String| {
                let mut next = (*form).clone();
                set(&mut next, value);
                form.set(next);
                confirmed.set(false);
            })
        }
    };
    let overlays = use_query(command::Overlays {}, 0);
    let workshop: Vec<Overlay> = match &overlays {
        Loadable::Ready(all) => all
            .iter()
            .filter(|o| matches!(o.source, OverlaySource::Workshop { .. }))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let draft = form.schedule(&workshop);
    let fresh = preview
        .as_ref()
        .filter(|(key, _)| *key == form.preview_key())
        .map(|(_, p)| p.clone());
    let can_save = draft.is_ok()
        && fresh
            .as_ref()
            .is_some_and(|p| p.warning.is_none() || *confirmed);

    let on_preview = {
        let (action, form, preview) = (action.clone(), form.clone(), preview.clone());
        Callback::from(move |_| {
            let key = form.preview_key();
            let preview = preview.clone();
            action.run(
                command::PreviewSchedule {
                    host_id,
                    calendar: key.0.clone(),
                    time_zone: Some(key.1.clone()).filter(|z| !z.is_empty()),
                    restart: key.2,
                },
                move |got| preview.set(Some((key, got))),
            );
        })
    };
    let on_save = {
        let (action, reloads, form, preview) = (
            action.clone(),
            reloads.clone(),
            form.clone(),
            preview.clone(),
        );
        let draft = draft.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Ok(schedule) = draft.clone() else {
                return;
            };
            let (reloads, form, preview) = (reloads.clone(), form.clone(), preview.clone());
            action.run(
                command::SaveSchedule {
                    host_id,
                    schedule,
                    replaces: None,
                },
                move |_| {
                    form.set(Form::new());
                    preview.set(None);
                    reloads.set(*reloads + 1);
                },
            );
        })
    };

    let rows = match &list {
        Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Asking the host…" }</p> },
        Loadable::Failed(error) => html! { <ErrorNotice error={error.clone()} /> },
        Loadable::Ready(list) if list.schedules.is_empty() => html! {
            <p class="muted no-schedules">{ "No schedules on this host." }</p>
        },
        Loadable::Ready(list) => html! {
            <ul class="schedule-list">
                { for list.schedules.iter().map(|info| {
                    let on_delete = {
                        let (action, reloads) = (action.clone(), reloads.clone());
                        let name = info.schedule.name.clone();
                        Callback::from(move |_| {
                            let reloads = reloads.clone();
                            action.run(command::DeleteSchedule { host_id, name: name.clone() }, move |_| {
                                reloads.set(*reloads + 1)
                            });
                        })
                    };
                    schedule_row(info, props.is_admin.then_some(on_delete), action.busy())
                }) }
            </ul>
        },
    };

    let server_options: Vec<(String, String)> =
        std::iter::once((String::new(), "Every server on this host".to_owned()))
            .chain(match &servers {
                Loadable::Ready(all) => all
                    .iter()
                    .filter(|s| s.host_id == host_id)
                    .map(|s| (s.name.to_string(), s.name.to_string()))
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
    let action_options: Vec<(String, String)> = ACTIONS
        .iter()
        .map(|(v, l)| ((*v).to_owned(), (*l).to_owned()))
        .collect();
    let problem = match &draft {
        Err(e) if !form.name.trim().is_empty() => Some(AttrValue::from(e.clone())),
        _ => None,
    };
    let zone = form.time_zone.clone();
    html! {
        <section class="schedules" id={format!("schedules-{}", props.host_name)} aria-label={format!("Schedules of {}", props.host_name)}>
            <h3>{ "Schedules" }</h3>
            <p class="muted">{ "Run by the host's own timers, also while this app is closed. Restarts warn the players and wait for the last to leave, at most the time given." }</p>
            { rows }
            if props.is_admin {
                <form class="schedule-form" onsubmit={on_save}>
                    <TextField id={format!("schedule-name-{}", props.host_name)} label="Name" value={form.name.clone()}
                        on_change={change(|f, v| f.name = v)} autocomplete="off" hint={problem} />
                    <SelectField id={format!("schedule-action-{}", props.host_name)} label="What" options={action_options}
                        value={form.action.clone()} on_change={change(|f, v| f.action = v)} />
                    if form.action == "overlay_refresh" {
                        <SelectField id={format!("schedule-overlay-{}", props.host_name)} label="Overlay"
                            options={workshop.iter().map(|o| (o.host_name.to_string(), o.name.clone())).collect::<Vec<_>>()}
                            placeholder="Choose a Workshop overlay"
                            value={form.overlay.clone()} on_change={change(|f, v| f.overlay = v)} />
                    }
                    if !["update_check", "game_update", "overlay_refresh"].contains(&form.action.as_str()) {
                        <SelectField id={format!("schedule-server-{}", props.host_name)} label="On" options={server_options}
                            value={form.server.clone()} on_change={change(|f, v| f.server = v)} />
                    }
                    if form.action == "restart" {
                        <TextField id={format!("schedule-drain-{}", props.host_name)} label="Wait for players to leave, at most (minutes; 0: at once)"
                            kind="number" value={form.drain_minutes.clone()} on_change={change(|f, v| f.drain_minutes = v)} />
                    }
                    if form.action == "backup" {
                        <fieldset class="keep" id={format!("schedule-keep-{}", props.host_name)}>
                            <legend>{ "Keep (older ones are removed after each backup)" }</legend>
                            <TextField id={format!("schedule-keep-last-{}", props.host_name)} label="The newest" kind="number"
                                value={form.keep[0].clone()} on_change={change(|f, v| f.keep[0] = v)} />
                            <TextField id={format!("schedule-keep-daily-{}", props.host_name)} label="One a day, for days" kind="number"
                                value={form.keep[1].clone()} on_change={change(|f, v| f.keep[1] = v)} />
                            <TextField id={format!("schedule-keep-weekly-{}", props.host_name)} label="One a week, for weeks" kind="number"
                                value={form.keep[2].clone()} on_change={change(|f, v| f.keep[2] = v)} />
                        </fieldset>
                    }
                    if form.action == "say" {
                        <TextField id={format!("schedule-message-{}", props.host_name)} label="Message" value={form.message.clone()}
                            on_change={change(|f, v| f.message = v)} autocomplete="off" />
                    }
                    if form.action == "command" {
                        <TextField id={format!("schedule-command-{}", props.host_name)} label="Console command" value={form.command.clone()}
                            on_change={change(|f, v| f.command = v)} autocomplete="off" />
                    }
                    <TextField id={format!("schedule-calendar-{}", props.host_name)} label="When (a systemd calendar)"
                        value={form.calendar.clone()} on_change={change(|f, v| f.calendar = v)} autocomplete="off"
                        help={AttrValue::from("e.g. *-*-* 05:00 (daily), Mon..Fri 06:30, Sun 04:00, *:0/30 (every half hour)")} />
                    <TextField id={format!("schedule-zone-{}", props.host_name)} label="Time zone" value={zone}
                        on_change={change(|f, v| f.time_zone = v)} autocomplete="off" />
                    <div class="row actions">
                        <button type="button" class="plain schedule-preview" onclick={on_preview} disabled={action.busy()}>
                            { "Preview the next runs" }
                        </button>
                        <button type="submit" class="schedule-save" disabled={action.busy() || !can_save}>{ "Save schedule" }</button>
                    </div>
                    if let Some(p) = &fresh {
                        <div class="schedule-next">
                            <p class="muted">{ format!("The host reads it as {}; next runs, in this computer's time:", p.normalized) }</p>
                            <ol>{ for p.next_runs.iter().map(|t| html! { <li>{ local_time(t) }</li> }) }</ol>
                            if let Some(warning) = &p.warning {
                                <p class="notice notice-warning" role="alert">{ format!("Warning: {warning}.") }</p>
                                <label class="check"><input type="checkbox" class="schedule-confirm" checked={*confirmed}
                                    onchange={{ let c = confirmed.clone(); Callback::from(move |e: Event| c.set(e.target_unchecked_into::<HtmlInputElement>().checked())) }} />
                                    { "Restart this often anyway" }</label>
                            }
                        </div>
                    } else if draft.is_ok() {
                        <p class="muted">{ "Preview the next runs to save it." }</p>
                    }
                </form>
            }
            if let Some(error) = action.error() {
                <ErrorNotice {error} />
            }
        </section>
    }
}

fn schedule_row(info: &ScheduleInfo, on_delete: Option<Callback<MouseEvent>>, busy: bool) -> Html {
    let s = &info.schedule;
    let next = info
        .next_runs
        .first()
        .map_or("no more runs".to_owned(), |t| {
            format!("next {}", local_time(t))
        });
    let last = info.last_run.as_ref().map(|r| {
        let word = match r.outcome {
            RunOutcome::Done => "done",
            RunOutcome::Skipped => "skipped",
            RunOutcome::Failed => "failed",
        };
        (
            format!("Last run ({}): {word}: {}", local_time(&r.slot), r.detail),
            r.outcome,
        )
    });
    html! {
        <li key={s.name.to_string()} id={format!("schedule-{}", s.name)} class="schedule">
            <strong>{ s.name.to_string() }</strong>
            <span class="what">{ format!("{} · {} ({})", s.describe(), s.on_calendar(), next) }</span>
            if let Some((text, outcome)) = last {
                <p class={if outcome == RunOutcome::Failed { "last-run failed" } else { "last-run" }}>{ text }</p>
            }
            if let Some(on_delete) = on_delete {
                <button class="plain danger small" aria-label={format!("Remove schedule {}", s.name)}
                    onclick={on_delete} disabled={busy}>{ "Remove" }</button>
            }
        </li>
    }
}
