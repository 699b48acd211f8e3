//! Overlays and blueprints.

use crate::state::AppState;
use left4me_protocol::command::{
    ApplyLimitsNow, ApplyServerLimitsNow, Blueprints, CreateBlueprint, CreateOverlay,
    DeleteBlueprint, DeleteOverlay, FillOverlay, Overlays, PendingRestarts, RefreshOverlay,
    UpdateBlueprint, UpdateOverlay, UploadOverlay,
};
use left4me_protocol::model::{Blueprint, LimitsNow, Overlay, Server};
use left4me_protocol::{IpcError, Job};

pub fn overlays(state: &AppState, Overlays {}: Overlays) -> Result<Vec<Overlay>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().overlays(&session)?)
}

pub fn create_overlay(
    state: &AppState,
    CreateOverlay { overlay }: CreateOverlay,
) -> Result<Overlay, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().create_overlay(&session, overlay)?)
}

pub fn update_overlay(
    state: &AppState,
    UpdateOverlay {
        overlay_id,
        source,
        description,
    }: UpdateOverlay,
) -> Result<Overlay, IpcError> {
    let (app, session) = state.session()?;
    Ok(app
        .store()
        .update_overlay(&session, overlay_id, source, description)?)
}

pub fn delete_overlay(
    state: &AppState,
    DeleteOverlay { overlay_id }: DeleteOverlay,
) -> Result<(), IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().delete_overlay(&session, overlay_id)?)
}

pub async fn upload_overlay(
    state: &AppState,
    UploadOverlay {
        overlay_id,
        host_id,
        folder,
    }: UploadOverlay,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.upload_overlay(&session, overlay_id, host_id, std::path::Path::new(&folder))?)
}

/// Fills an overlay on a host from its source (Workshop items), as a job.
pub async fn fill_overlay(
    state: &AppState,
    FillOverlay {
        overlay_id,
        host_id,
    }: FillOverlay,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.fill_overlay(&session, overlay_id, host_id)?)
}

/// Fills an overlay again on every host that has it; one job per host.
pub async fn refresh_overlay(
    state: &AppState,
    RefreshOverlay { overlay_id }: RefreshOverlay,
) -> Result<Vec<Job>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.refresh_overlay(&session, overlay_id)?)
}

/// The user's servers that switch to a refreshed overlay at their next start or restart.
pub fn pending_restarts(
    state: &AppState,
    PendingRestarts { overlay_id }: PendingRestarts,
) -> Result<Vec<Server>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.pending_restarts(&session, overlay_id)?)
}

pub fn blueprints(state: &AppState, Blueprints {}: Blueprints) -> Result<Vec<Blueprint>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().blueprints(&session)?)
}

pub fn create_blueprint(
    state: &AppState,
    CreateBlueprint { draft }: CreateBlueprint,
) -> Result<Blueprint, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().create_blueprint(&session, draft)?)
}

pub fn update_blueprint(
    state: &AppState,
    UpdateBlueprint {
        blueprint_id,
        draft,
    }: UpdateBlueprint,
) -> Result<Blueprint, IpcError> {
    let (app, session) = state.session()?;
    Ok(app
        .store()
        .update_blueprint(&session, blueprint_id, draft)?)
}

/// After a server's cores were picked again: in force now if nothing else changed.
pub fn apply_server_limits_now(
    state: &AppState,
    ApplyServerLimitsNow { server_id }: ApplyServerLimitsNow,
) -> Result<LimitsNow, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.apply_server_limits_now(&session, server_id)?)
}

/// After an edit: the new limits now where nothing else changed, as jobs.
pub fn apply_limits_now(
    state: &AppState,
    ApplyLimitsNow { blueprint_id }: ApplyLimitsNow,
) -> Result<LimitsNow, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.apply_limits_now(&session, blueprint_id)?)
}

pub fn delete_blueprint(
    state: &AppState,
    DeleteBlueprint { blueprint_id }: DeleteBlueprint,
) -> Result<(), IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().delete_blueprint(&session, blueprint_id)?)
}
