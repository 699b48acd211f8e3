//! Servers: create, act, live state, logs and RCON.

use crate::logs;
use crate::state::AppState;
use left4me_protocol::command::{
    BackupServer, CreateServer, DeleteServer, FollowLogs, LogLines, PinServer, Rcon,
    ReassignServer, RestartServer, RestoreAsNewServer, RestoreServer, ServerBackups, ServerUsage,
    Servers, StartServer, StopLogs, StopServer, UnwatchStatuses, WatchStatuses,
};
use left4me_protocol::model::{LogPoll, Server, ServerBackup};
use left4me_protocol::{IpcError, Job, STATUS_EVENT, ServerLive};
use tauri::{AppHandle, Manager};

pub fn servers(state: &AppState, Servers {}: Servers) -> Result<Vec<Server>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().servers(&session)?)
}

pub fn create_server(
    state: &AppState,
    CreateServer { server }: CreateServer,
) -> Result<Server, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().create_server(&session, server)?)
}

pub fn reassign_server(
    state: &AppState,
    ReassignServer {
        server_id,
        blueprint_id,
    }: ReassignServer,
) -> Result<Server, IpcError> {
    let (app, session) = state.session()?;
    Ok(app
        .store()
        .reassign_server(&session, server_id, blueprint_id)?)
}

pub fn pin_server(
    state: &AppState,
    PinServer { server_id, cores }: PinServer,
) -> Result<Server, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().pin_server(&session, server_id, cores)?)
}

pub async fn server_backups(
    state: &AppState,
    ServerBackups { server_id }: ServerBackups,
) -> Result<Vec<ServerBackup>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.server_backups(&session, server_id).await?)
}

pub async fn backup_server(
    state: &AppState,
    BackupServer { server_id }: BackupServer,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.backup_server(&session, server_id)?)
}

pub async fn restore_server(
    state: &AppState,
    RestoreServer {
        server_id,
        backup_id,
    }: RestoreServer,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.restore_server(&session, server_id, &backup_id)?)
}

pub async fn restore_as_new_server(
    state: &AppState,
    RestoreAsNewServer {
        server_id,
        backup_id,
        server,
    }: RestoreAsNewServer,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.restore_as_new_server(&session, server_id, &backup_id, server)?)
}

pub async fn start_server(
    state: &AppState,
    StartServer { server_id }: StartServer,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.start_server(&session, server_id)?)
}

pub async fn stop_server(
    state: &AppState,
    StopServer { server_id }: StopServer,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.stop_server(&session, server_id)?)
}

pub async fn restart_server(
    state: &AppState,
    RestartServer { server_id }: RestartServer,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.restart_server(&session, server_id)?)
}

pub async fn delete_server(
    state: &AppState,
    DeleteServer { server_id }: DeleteServer,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.delete_server(&session, server_id)?)
}

pub async fn rcon(state: &AppState, Rcon { server_id, command }: Rcon) -> Result<String, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.rcon(&session, server_id, &command).await?)
}

pub async fn server_usage(
    state: &AppState,
    ServerUsage { server_id }: ServerUsage,
) -> Result<Option<left4me_protocol::limits::Usage>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.server_usage(&session, server_id).await?)
}

/// Starts following the server's log (the last `lines`, then new ones) for `log_lines` to
/// read; answers the follow's id.
pub async fn follow_logs(
    state: &AppState,
    FollowLogs { server_id, lines }: FollowLogs,
) -> Result<u64, IpcError> {
    let (app, session) = state.session()?;
    let lines = app.follow_logs(&session, server_id, lines).await?;
    Ok(state.logs.start(server_id, lines))
}

/// The followed log's next lines, once there are some.
pub async fn log_lines(
    state: &AppState,
    LogLines { follow }: LogLines,
) -> Result<LogPoll, IpcError> {
    Ok(state.logs.next(follow, logs::MAX_LINES, logs::QUIET).await)
}

/// Stops following a server's log; the remote `logs --follow` ends with it.
pub fn stop_logs(state: &AppState, StopLogs { follow }: StopLogs) -> Result<(), IpcError> {
    state.logs.stop(follow);
    Ok(())
}

/// Pushes every server's live state to the window as [`STATUS_EVENT`]s, every `period_ms`
/// (at least 500), until `unwatch_statuses` or logout.
pub async fn watch_statuses(
    handle: &AppHandle,
    WatchStatuses { period_ms }: WatchStatuses,
) -> Result<(), IpcError> {
    let state = handle.state::<AppState>();
    let (app, session) = state.session()?;
    let period = std::time::Duration::from_millis(period_ms.max(500));
    let mut feed = app.status_feed(&session, period)?;
    let handle = handle.clone();
    let task = tauri::async_runtime::spawn(async move {
        let mut watch = app_core::notices::FleetWatch::default();
        while let Some(update) = feed.recv().await {
            if let Ok(lives) = &update {
                crate::notify::fleet(&handle, &app, &session, &mut watch, lives);
            }
            // `{"Ok": [ServerLive…]}` or `{"Err": IpcError}`.
            let update: Result<Vec<ServerLive>, IpcError> = update.map_err(IpcError::from);
            if !super::emit(&handle, STATUS_EVENT, update) {
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

pub fn unwatch_statuses(
    state: &AppState,
    UnwatchStatuses {}: UnwatchStatuses,
) -> Result<(), IpcError> {
    if let Some(task) = state
        .status_feed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        task.abort();
    }
    Ok(())
}
