//! First run, login, logout, the user's own password and account management.

use crate::state::AppState;
use left4me_protocol::IpcError;
use left4me_protocol::command::{
    ChangePassword, CreateFirstAdmin, CreateUser, Login, Logout, Me, NeedsFirstAdmin,
    ResetPassword, SetUserAdmin, SetUserDisabled, Users,
};
use left4me_protocol::model::User;

pub fn needs_first_admin(
    state: &AppState,
    NeedsFirstAdmin {}: NeedsFirstAdmin,
) -> Result<bool, IpcError> {
    Ok(state.app()?.store().needs_first_admin()?)
}

pub fn create_first_admin(
    state: &AppState,
    CreateFirstAdmin { username, password }: CreateFirstAdmin,
) -> Result<User, IpcError> {
    let app = state.app()?;
    let session = app.store().create_first_admin(&username, &password)?;
    let me = app.store().me(&session)?;
    state.set_session(Some(session));
    Ok(me)
}

pub fn login(state: &AppState, Login { username, password }: Login) -> Result<User, IpcError> {
    let app = state.app()?;
    let session = app.store().login(&username, &password)?;
    let me = app.store().me(&session)?;
    state.set_session(Some(session));
    Ok(me)
}

pub fn logout(state: &AppState, Logout {}: Logout) -> Result<(), IpcError> {
    state.set_session(None);
    Ok(())
}

/// The logged-in account, or `None` at the login screen.
pub fn me(state: &AppState, Me {}: Me) -> Result<Option<User>, IpcError> {
    let app = state.app()?;
    match state.current_session() {
        Some(session) => Ok(Some(app.store().me(&session)?)),
        None => Ok(None),
    }
}

pub fn change_password(
    state: &AppState,
    ChangePassword { current, new }: ChangePassword,
) -> Result<(), IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().change_password(&session, &current, &new)?)
}

pub fn users(state: &AppState, Users {}: Users) -> Result<Vec<User>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().users(&session)?)
}

pub fn create_user(
    state: &AppState,
    CreateUser {
        username,
        password,
        is_admin,
    }: CreateUser,
) -> Result<User, IpcError> {
    let (app, session) = state.session()?;
    Ok(app
        .store()
        .create_user(&session, &username, &password, is_admin)?)
}

pub fn set_user_disabled(
    state: &AppState,
    SetUserDisabled { user_id, disabled }: SetUserDisabled,
) -> Result<User, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().set_user_disabled(&session, user_id, disabled)?)
}

pub fn set_user_admin(
    state: &AppState,
    SetUserAdmin { user_id, is_admin }: SetUserAdmin,
) -> Result<User, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().set_user_admin(&session, user_id, is_admin)?)
}

pub fn reset_password(
    state: &AppState,
    ResetPassword { user_id, password }: ResetPassword,
) -> Result<User, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().reset_password(&session, user_id, &password)?)
}
