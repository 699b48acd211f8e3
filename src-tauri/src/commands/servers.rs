//! Servers: create, act, live state, logs and RCON.

use crate::state::AppState;
use left4me_protocol::model::{NewServer, Server, ServerLogBatch};
use left4me_protocol::{IpcError, Job, ServerLive};
use tauri::{AppHandle, Emitter, State};

/// The event that carries followed log lines to the window, as `ServerLogBatch`es.
pub const LOG_EVENT: &str = "server-log";
/// The event that carries every server's live state to the window: a serialised
/// `Result<Vec<ServerLive>, IpcError>`.
pub const STATUS_EVENT: &str = "server-status";

/// The most lines one `server-log` event carries.
const LOG_BATCH_MAX: usize = 5000;
/// The pause after each `server-log` event: at most 20 events a second per followed log.
const LOG_BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

#[tauri::command]
pub fn servers(state: State<'_, AppState>) -> Result<Vec<Server>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().servers(&session)?)
}

#[tauri::command]
pub fn create_server(state: State<'_, AppState>, server: NewServer) -> Result<Server, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().create_server(&session, server)?)
}

#[tauri::command]
pub fn reassign_server(
    state: State<'_, AppState>,
    server_id: i64,
    blueprint_id: i64,
) -> Result<Server, IpcError> {
    let (app, session) = state.session()?;
    Ok(app
        .store()
        .reassign_server(&session, server_id, blueprint_id)?)
}

#[tauri::command]
pub async fn start_server(state: State<'_, AppState>, server_id: i64) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.start_server(&session, server_id)?)
}

#[tauri::command]
pub async fn stop_server(state: State<'_, AppState>, server_id: i64) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.stop_server(&session, server_id)?)
}

#[tauri::command]
pub async fn restart_server(state: State<'_, AppState>, server_id: i64) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.restart_server(&session, server_id)?)
}

#[tauri::command]
pub async fn delete_server(state: State<'_, AppState>, server_id: i64) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.delete_server(&session, server_id)?)
}

/// Every server of the user with its live state, one agent call per host.
#[tauri::command]
pub async fn statuses(state: State<'_, AppState>) -> Result<Vec<ServerLive>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.statuses(&session).await?)
}

#[tauri::command]
pub async fn rcon(
    state: State<'_, AppState>,
    server_id: i64,
    command: String,
) -> Result<String, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.rcon(&session, server_id, &command).await?)
}

/// Starts sending the server's log to the window as `server-log` events: the last `lines`,
/// then new ones, until `stop_logs`.
#[tauri::command]
pub async fn follow_logs(
    handle: AppHandle,
    state: State<'_, AppState>,
    server_id: i64,
    lines: u32,
) -> Result<(), IpcError> {
    let (app, session) = state.session()?;
    let mut rx = app.follow_logs(&session, server_id, lines).await?;
    let task = tauri::async_runtime::spawn(async move {
        let mut lines = Vec::new();
        // Whatever arrived since the last event goes out as one batch; the pause between
        // batches lets a fast log fill them instead of sending an event per line.
        while rx.recv_many(&mut lines, LOG_BATCH_MAX).await > 0 {
            let batch = ServerLogBatch {
                server_id,
                lines: std::mem::take(&mut lines),
            };
            if handle.emit(LOG_EVENT, batch).is_err() {
                return;
            }
            tokio::time::sleep(LOG_BATCH_PAUSE).await;
        }
    });
    if let Some(old) = state
        .logs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(server_id, task)
    {
        old.abort();
    }
    Ok(())
}

/// Stops following a server's log; the remote `logs --follow` ends with it.
#[tauri::command]
pub fn stop_logs(state: State<'_, AppState>, server_id: i64) {
    if let Some(task) = state
        .logs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&server_id)
    {
        task.abort();
    }
}

/// Pushes every server's live state to the window as `server-status` events, every
/// `period_ms` (at least 500), until `unwatch_statuses` or logout.
#[tauri::command]
pub async fn watch_statuses(
    handle: AppHandle,
    state: State<'_, AppState>,
    period_ms: u64,
) -> Result<(), IpcError> {
    let (app, session) = state.session()?;
    let period = std::time::Duration::from_millis(period_ms.max(500));
    let mut feed = app.status_feed(&session, period)?;
    let task = tauri::async_runtime::spawn(async move {
        while let Some(update) = feed.recv().await {
            // `{"Ok": [ServerLive…]}` or `{"Err": IpcError}`.
            let update: Result<Vec<ServerLive>, IpcError> = update.map_err(IpcError::from);
            if handle.emit(STATUS_EVENT, update).is_err() {
                return;
            }
        }
    });
    if let Some(old) = state
        .status_feed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .replace(task)
    {
        old.abort();
    }
    Ok(())
}

#[tauri::command]
pub fn unwatch_statuses(state: State<'_, AppState>) {
    if let Some(task) = state
        .status_feed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        task.abort();
    }
}
