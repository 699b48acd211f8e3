//! Overlays and blueprints.

use crate::state::AppState;
use left4me_protocol::model::{Blueprint, BlueprintDraft, NewOverlay, Overlay, OverlaySource};
use left4me_protocol::{IpcError, Job};
use tauri::State;

#[tauri::command]
pub fn overlays(state: State<'_, AppState>) -> Result<Vec<Overlay>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().overlays(&session)?)
}

#[tauri::command]
pub fn create_overlay(
    state: State<'_, AppState>,
    overlay: NewOverlay,
) -> Result<Overlay, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().create_overlay(&session, overlay)?)
}

#[tauri::command]
pub fn update_overlay(
    state: State<'_, AppState>,
    overlay_id: i64,
    source: OverlaySource,
    description: String,
) -> Result<Overlay, IpcError> {
    let (app, session) = state.session()?;
    Ok(app
        .store()
        .update_overlay(&session, overlay_id, source, description)?)
}

#[tauri::command]
pub fn delete_overlay(state: State<'_, AppState>, overlay_id: i64) -> Result<(), IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().delete_overlay(&session, overlay_id)?)
}

#[tauri::command]
pub async fn upload_overlay(
    state: State<'_, AppState>,
    overlay_id: i64,
    host_id: i64,
    folder: String,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.upload_overlay(&session, overlay_id, host_id, std::path::Path::new(&folder))?)
}

/// Fills an overlay on a host from its source (Workshop items), as a job.
#[tauri::command]
pub async fn fill_overlay(
    state: State<'_, AppState>,
    overlay_id: i64,
    host_id: i64,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.fill_overlay(&session, overlay_id, host_id)?)
}

/// Fills an overlay again on every host that has it; one job per host.
#[tauri::command]
pub async fn refresh_overlay(
    state: State<'_, AppState>,
    overlay_id: i64,
) -> Result<Vec<Job>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.refresh_overlay(&session, overlay_id)?)
}

/// The user's servers that switch to a refreshed overlay at their next start or restart.
#[tauri::command]
pub fn pending_restarts(
    state: State<'_, AppState>,
    overlay_id: i64,
) -> Result<Vec<left4me_protocol::model::Server>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.pending_restarts(&session, overlay_id)?)
}

#[tauri::command]
pub fn blueprints(state: State<'_, AppState>) -> Result<Vec<Blueprint>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().blueprints(&session)?)
}

#[tauri::command]
pub fn create_blueprint(
    state: State<'_, AppState>,
    draft: BlueprintDraft,
) -> Result<Blueprint, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().create_blueprint(&session, draft)?)
}

#[tauri::command]
pub fn update_blueprint(
    state: State<'_, AppState>,
    blueprint_id: i64,
    draft: BlueprintDraft,
) -> Result<Blueprint, IpcError> {
    let (app, session) = state.session()?;
    Ok(app
        .store()
        .update_blueprint(&session, blueprint_id, draft)?)
}

#[tauri::command]
pub fn delete_blueprint(state: State<'_, AppState>, blueprint_id: i64) -> Result<(), IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().delete_blueprint(&session, blueprint_id)?)
}
