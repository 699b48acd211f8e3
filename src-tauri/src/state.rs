//! The state every command reaches through `tauri::State`: app-core's engine and who is
//! logged in at this window.

use app_core::app::{App, AppConfig};
use app_core::secrets::Secrets;
use app_core::vault::{KdfCost, Vault, VaultError};
use app_core::{Session, Store, paths};
use left4me_protocol::{ErrorCode, IpcError, SecretStore};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Made empty (`default`); commands wait until [`AppState::open`] has opened the engine.
#[derive(Default)]
pub struct AppState {
    /// The engine, or why it could not start, or the vault it waits for. An app whose
    /// database fails still opens its window, so the user reads the reason instead of
    /// seeing nothing. Opened off the main thread while the window loads.
    core: OnceLock<Engine>,
    session: Mutex<Option<Session>>,
    /// Servers whose log the window follows, their lines waiting for the window to ask.
    pub logs: crate::logs::Follows,
    /// The task that pushes live server state to the window, while it wants it.
    pub status_feed: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
}

/// What opening the engine gave.
enum Engine {
    Ready(Arc<App>, &'static str),
    Failed(IpcError),
    /// The secrets are (to be) in the local vault: the engine starts once it is open.
    Vault(Box<VaultGate>),
}

/// The engine's parts while the vault is locked or not made yet.
struct VaultGate {
    path: PathBuf,
    /// Why the OS store is not used, when it did not answer.
    reason: Option<String>,
    /// Taken by the unlock that starts the engine.
    parts: Mutex<Option<(Store, String, AppConfig)>>,
    app: OnceLock<Arc<App>>,
}

/// Names the static agent to deploy for x86_64 hosts; a packaged app finds it among its
/// resources instead.
pub const AGENT_ENV: &str = "LEFT4ME_AGENT";

/// The local vault's file in the data folder.
const VAULT_FILE: &str = "vault";

impl AppState {
    /// Opens the engine: the database, its migrations and the credential store, which take
    /// tens of milliseconds. The app calls this on a thread of its own, so the window loads
    /// meanwhile; a command that comes first waits for it.
    pub fn open(&self, resource_dir: Option<PathBuf>) {
        let core = std::panic::catch_unwind(|| open_core(resource_dir)).unwrap_or_else(|_| {
            Engine::Failed(IpcError::new(
                ErrorCode::Internal,
                "the app's engine failed to start",
            ))
        });
        match &core {
            Engine::Failed(err) => log::error!("{}", err.message),
            Engine::Vault(gate) => log::warn!(
                "secrets go to the local vault {}{}",
                gate.path.display(),
                gate.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            Engine::Ready(..) => {}
        }
        // Only this call sets it.
        let _ = self.core.set(core);
    }

    pub fn app(&self) -> Result<Arc<App>, IpcError> {
        match self.core.wait() {
            Engine::Ready(app, _) => Ok(app.clone()),
            Engine::Failed(err) => Err(err.clone()),
            Engine::Vault(gate) => gate.app.get().cloned().ok_or_else(|| {
                IpcError::new(
                    ErrorCode::VaultLocked,
                    "the app keeps its secrets in a local vault: open it first",
                )
            }),
        }
    }

    /// The engine if it has opened (or failed to), without waiting for it.
    pub fn app_if_open(&self) -> Option<Result<Arc<App>, IpcError>> {
        self.core.get().map(|_| self.app())
    }

    /// Where the secrets are kept, and what the window must ask for first.
    pub fn secret_store(&self) -> Result<SecretStore, IpcError> {
        Ok(match self.core.wait() {
            Engine::Ready(_, name) => SecretStore::Os {
                name: (*name).to_owned(),
            },
            Engine::Failed(err) => return Err(err.clone()),
            Engine::Vault(gate) if gate.app.get().is_some_and(|app| !app.secrets().in_vault()) => {
                // Moved into the OS store since the start.
                SecretStore::Os {
                    name: app_core::secrets::PLATFORM.to_owned(),
                }
            }
            Engine::Vault(gate) if gate.app.get().is_some() => SecretStore::Vault {
                os_store: Secrets::os("probe").is_ok(),
            },
            Engine::Vault(gate) if gate.path.exists() => SecretStore::Locked {
                reason: gate.reason.clone(),
            },
            Engine::Vault(gate) => SecretStore::NoStore {
                reason: gate
                    .reason
                    .clone()
                    .unwrap_or_else(|| "no credential store answers".into()),
            },
        })
    }

    /// Makes the vault (`create`) or opens it, then starts the engine on it.
    pub fn open_vault(&self, passphrase: &str, create: bool) -> Result<Arc<App>, IpcError> {
        let Engine::Vault(gate) = self.core.wait() else {
            return Err(IpcError::new(
                ErrorCode::Conflict,
                "the app keeps its secrets in the OS credential store; there is no vault",
            ));
        };
        let mut parts = gate.parts.lock().unwrap_or_else(|p| p.into_inner());
        let Some((store, install_id, config)) = parts.take() else {
            return Err(IpcError::new(
                ErrorCode::Conflict,
                "the vault is open already",
            ));
        };
        let vault = if create {
            Vault::create(&gate.path, passphrase, KdfCost::DEFAULT)
        } else {
            Vault::open(&gate.path, passphrase)
        };
        let vault = match vault {
            Ok(vault) => vault,
            Err(err) => {
                *parts = Some((store, install_id, config));
                let code = match err {
                    VaultError::Io { .. } => ErrorCode::Internal,
                    _ => ErrorCode::InvalidInput,
                };
                return Err(IpcError::new(code, error_chain(&err)));
            }
        };
        let secrets = Secrets::vault(Arc::new(vault), &install_id);
        let app = App::start(store, secrets, config).map_err(IpcError::from)?;
        let _ = gate.app.set(app.clone());
        log::info!("the local vault is open");
        Ok(app)
    }

    /// Moves the vault's secrets into the OS store, which answers now.
    pub fn move_secrets_to_os_store(&self) -> Result<usize, IpcError> {
        let app = self.app()?;
        let install_id = app
            .store()
            .install_id()
            .map_err(|e| IpcError::new(ErrorCode::Storage, error_chain(&e)))?;
        let internal =
            |e: &dyn std::error::Error| IpcError::new(ErrorCode::Internal, error_chain(e));
        let os = Secrets::os(&install_id).map_err(|e| internal(&e))?;
        let moved = app.secrets().move_into(&os).map_err(|e| internal(&e))?;
        log::info!("moved {moved} secrets from the local vault into the OS credential store");
        Ok(moved)
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
        self.logs.stop_all();
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

fn open_core(resource_dir: Option<PathBuf>) -> Engine {
    let storage = |message: String| Engine::Failed(IpcError::new(ErrorCode::Storage, message));
    let path = match paths::database_path() {
        Ok(path) => path,
        Err(e) => return storage(e.to_string()),
    };
    let store = match Store::open(&path) {
        Ok(store) => store,
        Err(e) => return storage(error_chain(&e)),
    };
    let install_id = match store.install_id() {
        Ok(id) => id,
        Err(e) => return storage(error_chain(&e)),
    };
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
        backup_pull_every: None,
    };
    let vault = path.with_file_name(VAULT_FILE);
    // A vault made once stays in use until its secrets are moved to the OS store.
    let os = if vault.exists() {
        None
    } else {
        Some(Secrets::os(&install_id))
    };
    match os {
        Some(Ok(secrets)) => match App::start(store, secrets, config) {
            Ok(app) => Engine::Ready(app, app_core::secrets::PLATFORM),
            Err(e) => Engine::Failed(IpcError::from(e)),
        },
        unavailable => Engine::Vault(Box::new(VaultGate {
            path: vault,
            reason: unavailable.and_then(|r| r.err()).map(|e| error_chain(&e)),
            parts: Mutex::new(Some((store, install_id, config))),
            app: OnceLock::new(),
        })),
    }
}

/// An error and its causes on one line, as users read them.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    app_core::error::chain(err)
}
