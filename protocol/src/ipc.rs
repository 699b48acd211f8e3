//! Messages between the Tauri shell and the Yew UI.
//!
//! Every command returns `Result<T, IpcError>`; the UI branches on [`ErrorCode`], never on
//! message text.

use serde::{Deserialize, Serialize};

/// A failed command as the UI receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpcError {
    pub code: ErrorCode,
    pub message: String,
}

impl IpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for IpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IpcError {}

/// What kind of failure an [`IpcError`] is; closed so the UI can match on it exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The UI runs outside the desktop app (a plain browser): there is no backend.
    NoBackend,
    /// The backend's answer did not have the expected shape (UI and app out of step).
    BadResponse,
    /// The input was rejected; nothing changed.
    InvalidInput,
    /// The thing asked for does not exist (or is not the caller's).
    NotFound,
    /// Valid, but the current state forbids it (a port taken, a blueprint in use).
    Conflict,
    /// The logged-in user may not do this.
    Forbidden,
    /// Not logged in, wrong credentials, or the account was disabled.
    Unauthenticated,
    /// Too many failed logins; wait before trying again.
    RateLimited,
    /// The local database failed.
    Storage,
    /// Anything else; the message says what.
    Internal,
}

/// Facts about the running app, shown on the About screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppFacts {
    /// The app's package version.
    pub app_version: String,
    /// The agent protocol version this app speaks.
    pub protocol_version: u32,
    /// Absolute path of the app's SQLite file.
    pub database_path: String,
    /// The number of migrations applied to that file.
    pub schema_version: u32,
}
