//! Jobs: the history of everything the app did on hosts, filtered by host, server and
//! state; each job's full log, live while it runs; cancelling a running one.

use crate::activity::ActivityContext;
use crate::components::{ErrorNotice, SelectField};
use crate::hooks::{Loadable, use_action, use_event, use_query};
use crate::pages::host_events::HostEventLog;
use left4me_protocol::model::JobFilter;
use left4me_protocol::{APP_EVENT, AppEvent, Job, JobEvent, JobEventData, JobState, command};
use yew::prelude::*;

const STATES: [JobState; 6] = [
    JobState::Queued,
    JobState::Running,
    JobState::Succeeded,
    JobState::Failed,
    JobState::Interrupted,
    JobState::Cancelled,
];

#[function_component(Jobs)]
pub fn jobs() -> Html {
    let activity = use_context::<ActivityContext>().expect("activity context");
    let filter = use_state(|| JobFilter {
        limit: Some(200),
        ..JobFilter::default()
    });
    let jobs = use_query(
        command::Jobs {
            filter: (*filter).clone(),
        },
        activity.revision,
    );
    let hosts = use_query(command::Hosts {}, 0);
    let servers = use_query(command::Servers {}, 0);
    let open = use_state(|| None::<i64>);
    let set_filter = |apply: fn(&mut JobFilter, String)| {
        let filter = filter.clone();
        Callback::from(move |value: String| {
            let mut next = (*filter).clone();
            apply(&mut next, value);
            filter.set(next);
        })
    };
    let host_options: Vec<(String, String)> = hosts
        .ready()
        .map(|l| {
            l.iter()
                .map(|h| (h.id.to_string(), h.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    let server_options: Vec<(String, String)> = servers
        .ready()
        .map(|l| {
            l.iter()
                .map(|s| (s.id.to_string(), format!("{} on {}", s.name, s.host)))
                .collect()
        })
        .unwrap_or_default();
    let state_options: Vec<(String, String)> = STATES
        .iter()
        .map(|s| (s.as_str().to_owned(), s.as_str().to_owned()))
        .collect();
    let list = match &jobs {
        Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
        Loadable::Failed(error) => html! { <ErrorNotice error={error.clone()} /> },
        Loadable::Ready(list) if list.is_empty() => {
            html! { <p class="muted" id="no-jobs">{ "No jobs match." }</p> }
        }
        Loadable::Ready(list) => html! {
            <table class="table" id="jobs-table">
                <thead><tr>
                    <th scope="col">{ "Job" }</th><th scope="col">{ "What" }</th><th scope="col">{ "On" }</th>
                    <th scope="col">{ "State" }</th><th scope="col">{ "Took" }</th><th scope="col"><span class="visually-hidden">{ "Log" }</span></th>
                </tr></thead>
                <tbody>
                    { for list.iter().map(|job| {
                        let id = job.id;
                        let toggle = { let open = open.clone(); Callback::from(move |_| open.set(if *open == Some(id) { None } else { Some(id) })) };
                        let took = match (job.started_ms, job.finished_ms) {
                            (Some(s), Some(f)) => format!("{:.1} s", (f - s) as f64 / 1000.0),
                            (Some(_), None) => "running".into(),
                            _ => "–".into(),
                        };
                        html! {
                            <>
                                <tr id={format!("job-{id}")} class={classes!("job", job.state.as_str())}>
                                    <td>{ format!("#{id}") }</td>
                                    <td>{ job.kind.as_str().replace('_', " ") }</td>
                                    <td>{ &job.target }</td>
                                    <td><span class="state">{ job.state.as_str() }</span>
                                        if let Some(error) = &job.error { <p class="small-text job-error">{ error }</p> }</td>
                                    <td>{ took }</td>
                                    <td><button class="small plain" aria-expanded={(*open == Some(id)).to_string()}
                                        aria-label={format!("Log of job {id}")} onclick={toggle}>{ if *open == Some(id) { "Hide log" } else { "Log" } }</button></td>
                                </tr>
                                if *open == Some(id) {
                                    <tr><td colspan="6"><JobLog job={job.clone()} /></td></tr>
                                }
                            </>
                        }
                    }) }
                </tbody>
            </table>
        },
    };
    html! {
        <>
        <section class="card" aria-labelledby="jobs-title">
            <h1 id="jobs-title">{ "Jobs" }</h1>
            <div class="row filters" role="group" aria-label="Filters">
                <SelectField id="jobs-host" label="Host" options={host_options} placeholder="All hosts"
                    value={filter.host_id.map(|i| i.to_string()).unwrap_or_default()} on_change={set_filter(|f, v| f.host_id = v.parse().ok())} />
                <SelectField id="jobs-server" label="Server" options={server_options} placeholder="All servers"
                    value={filter.server_id.map(|i| i.to_string()).unwrap_or_default()} on_change={set_filter(|f, v| f.server_id = v.parse().ok())} />
                <SelectField id="jobs-state" label="State" options={state_options} placeholder="Any state"
                    value={filter.state.map(|s| s.as_str().to_owned()).unwrap_or_default()} on_change={set_filter(|f, v| f.state = JobState::parse(&v))} />
            </div>
            { list }
        </section>
        <HostEventLog />
        </>
    }
}

#[derive(Properties, PartialEq)]
struct LogProps {
    job: Job,
}

/// A job's log: what was stored, then what arrives while it runs.
#[function_component(JobLog)]
fn job_log(props: &LogProps) -> Html {
    let id = props.job.id;
    let stored = use_query(command::JobEvents { job_id: id }, 0);
    let arrived = use_state(Vec::<JobEvent>::new);
    let action = use_action();
    {
        let arrived = arrived.clone();
        use_event(
            APP_EVENT,
            Callback::from(move |event| {
                if let AppEvent::JobEvent(e) = event
                    && e.job_id == id
                {
                    let mut next = (*arrived).clone();
                    next.push(e);
                    arrived.set(next);
                }
            }),
        );
    }
    let lines: Vec<String> = match &stored {
        Loadable::Ready(events) => {
            let last = events.last().map_or(0, |e| e.id);
            events
                .iter()
                .chain(arrived.iter().filter(|e| e.id > last))
                .filter_map(|e| match &e.data {
                    JobEventData::Line { stream, text } => Some(format!("[{stream}] {text}")),
                    JobEventData::WorkshopItem(item) => Some(format!(
                        "[workshop] {} {:?} ({}/{}){}",
                        item.title,
                        item.outcome,
                        item.items_done,
                        item.items_total,
                        item.reason
                            .as_ref()
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default()
                    )),
                    // Progress is shown as a bar where the job was started.
                    JobEventData::Progress(_) | JobEventData::WorkshopProgress(_) => None,
                })
                .collect()
        }
        _ => Vec::new(),
    };
    let on_cancel = {
        let action = action.clone();
        Callback::from(move |_: MouseEvent| action.run(command::CancelJob { job_id: id }, drop))
    };
    html! {
        <div class="job-log">
            if let Loadable::Failed(error) = &stored { <ErrorNotice error={error.clone()} /> }
            if !props.job.state.is_finished() {
                <button class="small danger" id={format!("cancel-job-{id}")} disabled={action.busy()} onclick={on_cancel}>{ "Cancel job" }</button>
            }
            if let Some(error) = action.error() { <ErrorNotice {error} /> }
            <pre class="log" id={format!("job-{id}-log")}>{ lines.join("\n") }</pre>
        </div>
    }
}
