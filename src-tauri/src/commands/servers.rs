//! Servers: create, act, live state, logs and RCON.

use crate::state::AppState;
use left4me_protocol::model::{NewServer, Server, ServerLogLine};
use left4me_protocol::{IpcError, Job, ServerLive};
use tauri::{AppHandle, Emitter, State};

/// The event that carries followed log lines to the window.
pub const LOG_EVENT: &str = "server-log";

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
        while let Some(line) = rx.recv().await {
            if handle
                .emit(LOG_EVENT, ServerLogLine { server_id, line })
                .is_err()
            {
                return;
            }
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
