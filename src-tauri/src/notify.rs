//! Desktop notifications: app-core decides what is news ([`app_core::notices`]); this sends
//! it through the OS (the freedesktop notification service on Linux), unless the user
//! turned notifications off.

use app_core::Session;
use app_core::app::App;
use app_core::notices::{FleetWatch, Named, Notice};
use left4me_protocol::model::HostEventRow;
use left4me_protocol::{Job, ServerLive};
use std::collections::HashMap;
use tauri::AppHandle;
use tauri_plugin_notification::NotificationExt;

/// Raises what a new fleet state gives against the last one `watch` saw.
pub fn fleet(
    handle: &AppHandle,
    app: &App,
    session: &Session,
    watch: &mut FleetWatch,
    lives: &[ServerLive],
) {
    let Ok(servers) = app.store().servers(session) else {
        return;
    };
    let hosts: HashMap<i64, &str> = servers.iter().map(|s| (s.id, s.host.as_str())).collect();
    let named: Vec<Named<'_>> = lives
        .iter()
        .filter_map(|live| {
            let host = hosts.get(&live.server_id)?;
            Some(Named { live, host })
        })
        .collect();
    for notice in watch.update(&named) {
        log::info!("{}: {}", notice.title, notice.body);
        show(handle, app, notice);
    }
}

/// Raises the crashes and give-ups just read from a host.
pub fn host_events(handle: &AppHandle, app: &App, rows: &[HostEventRow]) {
    for notice in app_core::notices::host_event_notices(rows) {
        show(handle, app, notice);
    }
}

/// Raises a job's failure.
pub fn job(handle: &AppHandle, app: &App, job: &Job) {
    if let Some(notice) = app_core::notices::job_notice(job) {
        show(handle, app, notice);
    }
}

fn show(handle: &AppHandle, app: &App, notice: Notice) {
    if !app.store().desktop_notifications().unwrap_or(true) {
        return;
    }
    if let Err(e) = handle
        .notification()
        .builder()
        .title(&notice.title)
        .body(&notice.body)
        .show()
    {
        log::warn!("cannot show a notification ({}): {e}", notice.title);
    }
}
