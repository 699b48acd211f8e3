//! Job history, logs and cancellation; live job events reach the window as
//! [`APP_EVENT`].

use crate::state::AppState;
use left4me_protocol::command::{CancelJob, JobEvents, Jobs};
use left4me_protocol::{APP_EVENT, AppEvent, IpcError, Job, JobEvent};
use std::collections::HashMap;
use tauri::{AppHandle, Manager};

pub fn jobs(state: &AppState, Jobs { filter }: Jobs) -> Result<Vec<Job>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.jobs().jobs(&session, &filter)?)
}

pub fn job_events(
    state: &AppState,
    JobEvents { job_id }: JobEvents,
) -> Result<Vec<JobEvent>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.jobs().events(&session, job_id)?)
}

pub fn cancel_job(state: &AppState, CancelJob { job_id }: CancelJob) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.jobs().cancel(&session, job_id)?)
}

/// Forwards the engine's events to the window, only those of jobs the logged-in user may
/// see. Runs for the life of the app.
pub fn forward_events(handle: AppHandle) {
    let state = handle.state::<AppState>();
    let Ok(app) = state.app() else { return };
    let mut rx = app.subscribe();
    tauri::async_runtime::spawn(async move {
        // Whether the current session may see a job, asked once per job and session.
        let mut visible: HashMap<(i64, i64), bool> = HashMap::new();
        loop {
            let event = match rx.recv().await {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let job_id = match &event {
                AppEvent::Job(job) => job.id,
                AppEvent::JobEvent(e) => e.job_id,
                // Hosts' events are every user's, as hosts are.
                AppEvent::HostEvents { rows } => {
                    if handle.state::<AppState>().current_session().is_some() {
                        crate::notify::host_events(&handle, &app, rows);
                        super::emit(&handle, APP_EVENT, event);
                    }
                    continue;
                }
            };
            let state = handle.state::<AppState>();
            let Some(session) = state.current_session() else {
                continue;
            };
            let show = *visible
                .entry((session.user_id(), job_id))
                .or_insert_with(|| app.jobs().job(&session, job_id).is_ok());
            if show {
                if let AppEvent::Job(job) = &event {
                    crate::notify::job(&handle, &app, job);
                }
                super::emit(&handle, APP_EVENT, event);
            }
        }
    });
}
