//! What the hosts recorded on their own while nobody watched (crashes, servers systemd gave
//! up on, notifications they could not send): on the dashboard until dismissed ("while you
//! were away"), and on the jobs screen as a history.

use crate::activity::ActivityContext;
use crate::components::ErrorNotice;
use crate::hooks::{Loadable, use_action, use_query};
use left4me_protocol::command;
use left4me_protocol::events::EventKind;
use left4me_protocol::model::{HostEventRow, HostEventsReport};
use wasm_bindgen::JsValue;
use yew::prelude::*;

/// The dashboard's panel: the events not dismissed yet, newest first. Nothing shows when
/// there are none.
#[function_component(AwayPanel)]
pub fn away_panel() -> Html {
    let activity = use_context::<ActivityContext>().expect("activity context");
    let reloads = use_state(|| 0u64);
    let report = use_query(
        command::HostEvents { all: false },
        activity.host_events + *reloads,
    );
    let dismiss = use_action();
    let report = match report {
        Loadable::Ready(report) => report,
        Loadable::Loading => return html! {},
        Loadable::Failed(error) => return html! { <ErrorNotice {error} /> },
    };
    if report.events.is_empty() {
        return html! {};
    }
    let up_to = report.events.iter().map(|r| r.id).max().unwrap_or(0);
    let on_dismiss = {
        let (dismiss, reloads) = (dismiss.clone(), reloads.clone());
        Callback::from(move |_: MouseEvent| {
            let reloads = reloads.clone();
            dismiss.run(command::DismissHostEvents { up_to }, move |()| {
                reloads.set(*reloads + 1)
            });
        })
    };
    html! {
        <section class="card away" id="away" aria-labelledby="away-title">
            <header class="away-header">
                <h2 id="away-title">{ "While you were away" }</h2>
                <button id="away-dismiss" class="plain small" onclick={on_dismiss} disabled={dismiss.busy()}>
                    { "Dismiss" }
                </button>
            </header>
            if let Some(error) = dismiss.error() {
                <ErrorNotice {error} />
            }
            <EventList report={report.clone()} />
        </section>
    }
}

/// The jobs screen's history of host events, dismissed ones too.
#[function_component(HostEventLog)]
pub fn host_event_log() -> Html {
    let activity = use_context::<ActivityContext>().expect("activity context");
    let report = use_query(command::HostEvents { all: true }, activity.host_events);
    html! {
        <section class="card" id="host-event-log" aria-labelledby="host-events-title">
            <h2 id="host-events-title">{ "What the hosts recorded" }</h2>
            {
                match report {
                    Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
                    Loadable::Failed(error) => html! { <ErrorNotice {error} /> },
                    Loadable::Ready(report) if report.events.is_empty() => html! {
                        <p class="muted">{ "Nothing yet: crashes and other events the hosts record on their own appear here." }</p>
                    },
                    Loadable::Ready(report) => html! { <EventList {report} /> },
                }
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct ListProps {
    report: HostEventsReport,
}

#[function_component(EventList)]
fn event_list(props: &ListProps) -> Html {
    let report = &props.report;
    html! {
        <>
            <ul class="host-events">
                { for report.events.iter().map(|row| html! { <EventItem key={row.id} row={row.clone()} /> }) }
            </ul>
            <p class="muted small">
                if report.missed > 0 {
                    { format!("{} older events were dropped by the hosts before this app read them. ", report.missed) }
                }
                if let Some(days) = report.retention_days {
                    { format!("Hosts keep their events for {days} days for this app to read.") }
                }
            </p>
        </>
    }
}

#[derive(Properties, PartialEq)]
struct ItemProps {
    row: HostEventRow,
}

#[function_component(EventItem)]
fn event_item(props: &ItemProps) -> Html {
    let row = &props.row;
    let event = &row.event;
    let lines = match &event.what {
        EventKind::Crashed { last_lines, .. } => last_lines.join("\n"),
        _ => String::new(),
    };
    html! {
        <li class={classes!("host-event", event.is_alert().then_some("alert"))}
            id={format!("host-event-{}-{}", row.host_id, event.seq)}>
            <span class="when">{ local_time(&event.at) }</span>
            <span class="title">{ format!("{} ({})", event.title(), row.host) }</span>
            <span class="detail">{ event.detail() }</span>
            if !lines.is_empty() {
                <details>
                    <summary>{ "Last console lines" }</summary>
                    <pre class="console">{ lines }</pre>
                </details>
            }
        </li>
    }
}

/// An RFC 3339 time in the computer's time zone and way of writing dates.
pub(crate) fn local_time(at: &str) -> String {
    let date = js_sys::Date::new(&JsValue::from_str(at));
    if date.get_time().is_nan() {
        return at.to_owned();
    }
    date.to_locale_string("default", &JsValue::UNDEFINED)
        .as_string()
        .unwrap_or_else(|| at.to_owned())
}
