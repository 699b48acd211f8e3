//! The state every command reaches through `tauri::State`: app-core's engine and who is
//! logged in at this window.

use app_core::app::{App, AppConfig};
use app_core::secrets::Secrets;
use app_core::{Session, Store, paths};
use left4me_protocol::{ErrorCode, IpcError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Made empty (`default`); commands wait until [`AppState::open`] has opened the engine.
#[derive(Default)]
pub struct AppState {
    /// The engine, or why it could not start. An app whose database or credential store
    /// fails still opens its window, so the user reads the reason instead of seeing nothing.
    /// Opened off the main thread while the window loads (see [`AppState::open`]).
    core: OnceLock<Result<Arc<App>, IpcError>>,
    session: Mutex<Option<Session>>,
    /// Servers whose log the window follows, with the task that forwards it.
    pub logs: Mutex<HashMap<i64, tauri::async_runtime::JoinHandle<()>>>,
    /// The task that pushes live server state to the window, while it wants it.
    pub status_feed: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
}

/// Names the static agent to deploy for x86_64 hosts; a packaged app finds it among its
/// resources instead.
pub const AGENT_ENV: &str = "LEFT4ME_AGENT";

impl AppState {
    /// Opens the engine: the database, its migrations and the credential store, which take
    /// tens of milliseconds. The app calls this on a thread of its own, so the window loads
    /// meanwhile; a command that comes first waits for it.
    pub fn open(&self, resource_dir: Option<PathBuf>) {
        let core = std::panic::catch_unwind(|| open_core(resource_dir)).unwrap_or_else(|_| {
            Err(IpcError::new(
                ErrorCode::Internal,
                "the app's engine failed to start",
            ))
        });
        if let Err(err) = &core {
            log::error!("{}", err.message);
        }
        // Only this call sets it.
        let _ = self.core.set(core);
    }

    pub fn app(&self) -> Result<Arc<App>, IpcError> {
        self.core.wait().clone()
    }

    /// The engine if it has opened (or failed to), without waiting for it.
    pub fn app_if_open(&self) -> Option<Result<Arc<App>, IpcError>> {
        self.core.get().cloned()
    }

    /// The engine and the logged-in session; fails when nobody is logged in.
    pub fn session(&self) -> Result<(Arc<App>, Session), IpcError> {
        let app = self.app()?;
        let session = self
            .lock_session()
            .clone()
            .ok_or_else(|| IpcError::new(ErrorCode::Unauthenticated, "log in first"))?;
        Ok((app, session))
    }

    /// Logs in or out; whatever the last session followed stops.
    pub fn set_session(&self, session: Option<Session>) {
        *self.lock_session() = session;
        for (_, task) in self.logs.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            task.abort();
        }
        if let Some(task) = self
            .status_feed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }

    pub fn current_session(&self) -> Option<Session> {
        self.lock_session().clone()
    }

    fn lock_session(&self) -> MutexGuard<'_, Option<Session>> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn open_core(resource_dir: Option<PathBuf>) -> Result<Arc<App>, IpcError> {
    let path =
        paths::database_path().map_err(|e| IpcError::new(ErrorCode::Storage, e.to_string()))?;
    let store =
        Store::open(&path).map_err(|e| IpcError::new(ErrorCode::Storage, error_chain(&e)))?;
    let install_id = store
        .install_id()
        .map_err(|e| IpcError::new(ErrorCode::Storage, error_chain(&e)))?;
    let secrets = Secrets::os(&install_id)
        .map_err(|e| IpcError::new(ErrorCode::Internal, error_chain(&e)))?;
    let agent = std::env::var_os(AGENT_ENV)
        .map(PathBuf::from)
        .or_else(|| resource_dir.map(|dir| dir.join("l4d2-agent-x86_64")));
    let config = AppConfig {
        agent_binaries: agent
            .into_iter()
            .map(|path| ("x86_64".to_owned(), path))
            .collect(),
        steamcmd_url: std::env::var("LEFT4ME_STEAMCMD_URL").ok(),
        workshop_api: std::env::var("LEFT4ME_WORKSHOP_API").ok(),
    };
    App::start(store, secrets, config).map_err(IpcError::from)
}

/// An error and its causes on one line, as users read them.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    app_core::error::chain(err)
}
