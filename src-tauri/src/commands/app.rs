//! Facts about the app itself.

use crate::state::{AppState, error_chain};
use left4me_protocol::command::{
    AppFacts, CloseAnyway, CreateVault, MoveSecretsToOsStore, OpenLogFolder, PickFolder,
    SecretStore, SetNotifications, UnlockVault,
};
use left4me_protocol::{ErrorCode, IpcError, PROTOCOL_VERSION};

pub fn app_facts(
    state: &AppState,
    AppFacts {}: AppFacts,
) -> Result<left4me_protocol::AppFacts, IpcError> {
    let app = state.app()?;
    let store = app.store();
    let storage = |e: app_core::StoreError| IpcError::new(ErrorCode::Storage, error_chain(&e));
    Ok(left4me_protocol::AppFacts {
        app_version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol_version: PROTOCOL_VERSION,
        database_path: store.path().display().to_string(),
        schema_version: store.schema_version().map_err(storage)?,
        notifications: store.desktop_notifications().map_err(storage)?,
        log_path: log_dir()?
            .join(app_core::applog::FILE)
            .display()
            .to_string(),
    })
}

fn log_dir() -> Result<std::path::PathBuf, IpcError> {
    app_core::paths::log_dir().map_err(|e| IpcError::new(ErrorCode::Internal, e.to_string()))
}

/// The desktop's own way to show a folder.
#[cfg(target_os = "linux")]
const FILE_MANAGER: &str = "xdg-open";
#[cfg(target_os = "macos")]
const FILE_MANAGER: &str = "open";
#[cfg(windows)]
const FILE_MANAGER: &str = "explorer";

pub fn open_log_folder(_: &AppState, OpenLogFolder {}: OpenLogFolder) -> Result<(), IpcError> {
    let dir = log_dir()?;
    std::process::Command::new(FILE_MANAGER)
        .arg(&dir)
        .spawn()
        .map(drop)
        .map_err(|e| {
            IpcError::new(
                ErrorCode::Internal,
                format!("cannot open {} with {FILE_MANAGER}: {e}", dir.display()),
            )
        })
}

pub fn set_notifications(
    state: &AppState,
    SetNotifications { enabled }: SetNotifications,
) -> Result<(), IpcError> {
    state
        .app()?
        .store()
        .set_desktop_notifications(enabled)
        .map_err(|e| IpcError::new(ErrorCode::Storage, error_chain(&e)))
}

pub async fn close_anyway(
    handle: &tauri::AppHandle,
    CloseAnyway {}: CloseAnyway,
) -> Result<(), IpcError> {
    crate::closing::confirm();
    for window in tauri::Manager::webview_windows(handle).into_values() {
        let _ = window.close();
    }
    Ok(())
}

pub fn secret_store(
    state: &AppState,
    SecretStore {}: SecretStore,
) -> Result<left4me_protocol::SecretStore, IpcError> {
    state.secret_store()
}

pub async fn create_vault(
    handle: &tauri::AppHandle,
    CreateVault { passphrase }: CreateVault,
) -> Result<(), IpcError> {
    open_vault(handle, zeroize::Zeroizing::new(passphrase), true).await
}

pub async fn unlock_vault(
    handle: &tauri::AppHandle,
    UnlockVault { passphrase }: UnlockVault,
) -> Result<(), IpcError> {
    open_vault(handle, zeroize::Zeroizing::new(passphrase), false).await
}

/// Deriving the vault's key takes a good part of a second: off the async threads.
async fn open_vault(
    handle: &tauri::AppHandle,
    passphrase: zeroize::Zeroizing<String>,
    create: bool,
) -> Result<(), IpcError> {
    let opener = handle.clone();
    tauri::async_runtime::spawn_blocking(move || {
        use tauri::Manager;
        opener
            .state::<AppState>()
            .open_vault(&passphrase, create)
            .map(drop)
    })
    .await
    .map_err(|e| IpcError::new(ErrorCode::Internal, e.to_string()))??;
    super::jobs::forward_events(handle.clone());
    Ok(())
}

pub fn move_secrets_to_os_store(
    state: &AppState,
    MoveSecretsToOsStore {}: MoveSecretsToOsStore,
) -> Result<usize, IpcError> {
    state.move_secrets_to_os_store()
}

pub async fn pick_folder(
    handle: &tauri::AppHandle,
    PickFolder { title }: PickFolder,
) -> Result<Option<String>, IpcError> {
    use tauri_plugin_dialog::DialogExt;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut dialog = handle.dialog().file().set_title(title);
    // In the home folder, not among "recent" files, which a folder dialog cannot choose.
    if let Ok(home) = tauri::Manager::path(handle).home_dir() {
        dialog = dialog.set_directory(home);
    }
    dialog.pick_folder(move |folder| {
        let _ = tx.send(folder);
    });
    let folder = rx
        .await
        .map_err(|_| IpcError::new(ErrorCode::Internal, "the folder dialog went away"))?;
    Ok(folder
        .and_then(|f| f.into_path().ok())
        .map(|path| path.display().to_string()))
}
