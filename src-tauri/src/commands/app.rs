//! Facts about the app itself.

use crate::state::{AppState, error_chain};
use left4me_protocol::command::{AppFacts, CloseAnyway};
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
    })
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
