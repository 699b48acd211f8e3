//! First run, login, logout and account management.

use crate::state::AppState;
use left4me_protocol::IpcError;
use left4me_protocol::model::User;
use tauri::State;

#[tauri::command]
pub fn needs_first_admin(state: State<'_, AppState>) -> Result<bool, IpcError> {
    Ok(state.app()?.store().needs_first_admin()?)
}

#[tauri::command]
pub fn create_first_admin(
    state: State<'_, AppState>,
    username: String,
    password: String,
) -> Result<User, IpcError> {
    let app = state.app()?;
    let session = app.store().create_first_admin(&username, &password)?;
    let me = app.store().me(&session)?;
    state.set_session(Some(session));
    Ok(me)
}

#[tauri::command]
pub fn login(
    state: State<'_, AppState>,
    username: String,
    password: String,
) -> Result<User, IpcError> {
    let app = state.app()?;
    let session = app.store().login(&username, &password)?;
    let me = app.store().me(&session)?;
    state.set_session(Some(session));
    Ok(me)
}

#[tauri::command]
pub fn logout(state: State<'_, AppState>) {
    state.set_session(None);
}

/// The logged-in account, or `None` at the login screen.
#[tauri::command]
pub fn me(state: State<'_, AppState>) -> Result<Option<User>, IpcError> {
    let app = state.app()?;
    match state.current_session() {
        Some(session) => Ok(Some(app.store().me(&session)?)),
        None => Ok(None),
    }
}

#[tauri::command]
pub fn change_password(
    state: State<'_, AppState>,
    current: String,
    new: String,
) -> Result<(), IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().change_password(&session, &current, &new)?)
}

#[tauri::command]
pub fn users(state: State<'_, AppState>) -> Result<Vec<User>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().users(&session)?)
}

#[tauri::command]
pub fn create_user(
    state: State<'_, AppState>,
    username: String,
    password: String,
    is_admin: bool,
) -> Result<User, IpcError> {
    let (app, session) = state.session()?;
    Ok(app
        .store()
        .create_user(&session, &username, &password, is_admin)?)
}

#[tauri::command]
pub fn set_user_disabled(
    state: State<'_, AppState>,
    user_id: i64,
    disabled: bool,
) -> Result<User, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().set_user_disabled(&session, user_id, disabled)?)
}

#[tauri::command]
pub fn set_user_admin(
    state: State<'_, AppState>,
    user_id: i64,
    is_admin: bool,
) -> Result<User, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().set_user_admin(&session, user_id, is_admin)?)
}

#[tauri::command]
pub fn reset_password(
    state: State<'_, AppState>,
    user_id: i64,
    password: String,
) -> Result<User, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().reset_password(&session, user_id, &password)?)
}
