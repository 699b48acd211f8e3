//! Hosts: add, first contact, set-up, install, facts, removal.

use crate::state::AppState;
use app_core::app::SetupLogin;
use left4me_protocol::model::{Host, HostKeyOffer, NewHost, SetupRequest};
use left4me_protocol::{ErrorCode, IpcError, Job};
use tauri::State;
use zeroize::Zeroizing;

#[tauri::command]
pub fn hosts(state: State<'_, AppState>) -> Result<Vec<Host>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().hosts(&session)?)
}

#[tauri::command]
pub fn add_host(state: State<'_, AppState>, host: NewHost) -> Result<Host, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().add_host(&session, host)?)
}

#[tauri::command]
pub async fn fetch_host_key(
    state: State<'_, AppState>,
    host_id: i64,
) -> Result<HostKeyOffer, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.fetch_host_key(&session, host_id).await?)
}

#[tauri::command]
pub fn confirm_host_key(
    state: State<'_, AppState>,
    host_id: i64,
    key: String,
) -> Result<Host, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().confirm_host_key(&session, host_id, &key)?)
}

#[tauri::command]
pub async fn set_up_host(
    state: State<'_, AppState>,
    request: SetupRequest,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    let login = match request.login {
        left4me_protocol::model::SetupLogin::Password { password } => {
            SetupLogin::Password(Zeroizing::new(password))
        }
        left4me_protocol::model::SetupLogin::KeyFile { path, passphrase } => SetupLogin::KeyFile {
            path: path.into(),
            passphrase: passphrase.map(Zeroizing::new),
        },
        left4me_protocol::model::SetupLogin::Agent => {
            match app_core::ssh::Credential::agent_from_env() {
                Some(app_core::ssh::Credential::Agent(socket)) => SetupLogin::Agent(socket),
                _ => {
                    return Err(IpcError::new(
                        ErrorCode::InvalidInput,
                        "the app was started without an ssh-agent (SSH_AUTH_SOCK)",
                    ));
                }
            }
        }
    };
    Ok(app.set_up_host(
        &session,
        request.host_id,
        login,
        request.sudo_password.map(Zeroizing::new),
        request.remember,
    )?)
}

#[tauri::command]
pub async fn install_game(
    state: State<'_, AppState>,
    host_id: i64,
    validate: bool,
    guard_code: Option<String>,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    let guard_code = guard_code.map(Zeroizing::new);
    Ok(app.install_game(
        &session,
        host_id,
        validate,
        guard_code.as_deref().map(|c| c.as_str()),
    )?)
}

/// Whether Steam has a newer public build than the host's install.
#[tauri::command]
pub async fn check_game_update(state: State<'_, AppState>, host_id: i64) -> Result<Host, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.check_game_update(&session, host_id).await?)
}

#[tauri::command]
pub async fn refresh_host(state: State<'_, AppState>, host_id: i64) -> Result<Host, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.refresh_host(&session, host_id).await?)
}

#[tauri::command]
pub async fn remove_host(state: State<'_, AppState>, host_id: i64) -> Result<(), IpcError> {
    let (app, session) = state.session()?;
    Ok(app.remove_host(&session, host_id).await?)
}

/// The Steam account installs use; `None` for anonymous installs.
#[tauri::command]
pub fn steam_account(state: State<'_, AppState>) -> Result<Option<String>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.steam_account(&session)?)
}

/// Forgets the Steam account here and the login steamcmd cached on every set-up host.
#[tauri::command]
pub fn forget_steam_account(state: State<'_, AppState>) -> Result<Vec<Job>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.forget_steam_account(&session)?)
}

/// Keeps a Steam account for installs in the credential store, or forgets it (`None`).
#[tauri::command]
pub fn set_steam_login(
    state: State<'_, AppState>,
    user: Option<String>,
    password: Option<String>,
) -> Result<(), IpcError> {
    let (app, session) = state.session()?;
    let password = password.map(Zeroizing::new);
    let login = user.as_deref().zip(password.as_ref().map(|p| p.as_str()));
    Ok(app.set_steam_login(&session, login)?)
}
