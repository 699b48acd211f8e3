//! Closing the window while jobs run: the close waits for the user, who is told which jobs
//! it would cut (`CLOSE_EVENT`), and goes through only with `close_anyway`.

use crate::state::AppState;
use left4me_protocol::{CLOSE_EVENT, JobsToCut};
use std::sync::atomic::{AtomicBool, Ordering};
use tauri::{Manager, Window};

/// Set by `close_anyway`: the next close goes through.
static CONFIRMED: AtomicBool = AtomicBool::new(false);

/// Called for the window's close request; keeps it open when jobs would be cut.
pub fn requested(window: &Window, api: &tauri::CloseRequestApi) {
    if CONFIRMED.load(Ordering::SeqCst) {
        return;
    }
    let state = window.state::<AppState>();
    // An engine that never opened runs no jobs.
    let Some(Ok(app)) = state.app_if_open() else {
        return;
    };
    let unfinished = match app.jobs().unfinished() {
        Ok(jobs) => jobs,
        Err(e) => {
            log::error!("cannot tell which jobs run, closing anyway: {e}");
            return;
        }
    };
    if unfinished.is_empty() {
        return;
    }
    api.prevent_close();
    let session = state.current_session();
    let (jobs, others): (Vec<_>, Vec<_>) = unfinished.into_iter().partition(|job| {
        session
            .as_ref()
            .is_some_and(|s| app.jobs().job(s, job.id).is_ok())
    });
    crate::commands::emit(
        window.app_handle(),
        CLOSE_EVENT,
        JobsToCut {
            jobs,
            others: others.len(),
        },
    );
}

/// Lets the next close through, whatever runs.
pub fn confirm() {
    CONFIRMED.store(true, Ordering::SeqCst);
}
