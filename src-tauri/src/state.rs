//! The state every command reaches through `tauri::State`.

use app_core::{Store, paths};
use left4me_protocol::{ErrorCode, IpcError};
use std::sync::{Mutex, MutexGuard};

pub struct AppState {
    /// The local database, or why it could not be opened. An app whose database fails still
    /// opens its window, so the user reads the reason instead of seeing nothing.
    store: Result<Mutex<Store>, IpcError>,
}

impl AppState {
    pub fn open() -> Self {
        let store = paths::database_path()
            .map_err(|e| IpcError::new(ErrorCode::Storage, e.to_string()))
            .and_then(|path| {
                Store::open(&path).map_err(|e| IpcError::new(ErrorCode::Storage, error_chain(&e)))
            })
            .map(Mutex::new);
        if let Err(err) = &store {
            eprintln!("left4me: {}", err.message);
        }
        Self { store }
    }

    pub fn store(&self) -> Result<MutexGuard<'_, Store>, IpcError> {
        let store = self.store.as_ref().map_err(Clone::clone)?;
        // A panic while holding the lock leaves SQLite consistent (transactions roll back), so
        // the poisoned guard is still usable.
        Ok(store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

/// An error and its causes on one line, as users read them.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
