//! Secrets in the OS credential store: the Secret Service on Linux, the Keychain on macOS,
//! the Credential Manager on Windows.
//!
//! The database never holds a secret, only whether one exists. Each secret is an entry
//! of the service `left4me`, named after this install and what it is for, so two installs
//! on one computer (or a test run) never read each other's entries.
//!
//! Store calls block (a D-Bus round trip on Linux); async code calls them through
//! `spawn_blocking`.

use keyring_core::{CredentialStore, Entry};
use std::sync::Arc;
use zeroize::Zeroizing;

const SERVICE: &str = "left4me";

/// What a secret is for. Ids are the database rows the secret belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretKey {
    /// The app's own SSH private key (OpenSSH format), made once per install.
    AppSshKey,
    /// The password of a host's set-up account, kept only if the admin asked.
    SudoPassword { host: i64 },
    /// The passphrase of the key file used to reach a host.
    KeyPassphrase { host: i64 },
    /// A server's RCON password.
    RconPassword { server: i64 },
    /// The Steam account used to install the game (`user\npassword`).
    SteamLogin,
}

impl SecretKey {
    fn name(&self) -> String {
        match self {
            Self::AppSshKey => "app/ssh-key".into(),
            Self::SudoPassword { host } => format!("host/{host}/sudo-password"),
            Self::KeyPassphrase { host } => format!("host/{host}/key-passphrase"),
            Self::RconPassword { server } => format!("server/{server}/rcon-password"),
            Self::SteamLogin => "steam/login".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot reach the system's credential store ({store})")]
    Unavailable {
        store: &'static str,
        #[source]
        source: keyring_core::Error,
    },
    #[error("the credential store failed on {what}")]
    Failed {
        what: String,
        #[source]
        source: keyring_core::Error,
    },
}

/// This install's secrets in the OS credential store.
#[derive(Clone)]
pub struct Secrets {
    store: Arc<CredentialStore>,
    install_id: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("store", &self.store.vendor())
            .field("install_id", &self.install_id)
            .finish()
    }
}

impl Secrets {
    /// Connects to the platform's credential store.
    pub fn os(install_id: &str) -> Result<Self, SecretsError> {
        let store = platform_store().map_err(|source| SecretsError::Unavailable {
            store: PLATFORM_STORE,
            source,
        })?;
        Ok(Self {
            store,
            install_id: install_id.to_owned(),
        })
    }

    fn entry(&self, key: &SecretKey) -> Result<Entry, SecretsError> {
        let user = format!("{}/{}", self.install_id, key.name());
        self.store
            .build(SERVICE, &user, None)
            .map_err(|source| self.failed(key, source))
    }

    fn failed(&self, key: &SecretKey, source: keyring_core::Error) -> SecretsError {
        SecretsError::Failed {
            what: key.name(),
            source,
        }
    }

    /// Stores (or replaces) a secret.
    pub fn set(&self, key: &SecretKey, secret: &[u8]) -> Result<(), SecretsError> {
        self.entry(key)?
            .set_secret(secret)
            .map_err(|source| self.failed(key, source))
    }

    /// Reads a secret; `None` if there is none.
    pub fn get(&self, key: &SecretKey) -> Result<Option<Zeroizing<Vec<u8>>>, SecretsError> {
        match self.entry(key)?.get_secret() {
            Ok(secret) => Ok(Some(Zeroizing::new(secret))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(source) => Err(self.failed(key, source)),
        }
    }

    /// Reads a secret kept as text (a password, a login); `None` if there is none.
    pub fn get_text(&self, key: &SecretKey) -> Result<Option<Zeroizing<String>>, SecretsError> {
        Ok(self
            .get(key)?
            .map(|bytes| Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned())))
    }

    /// Removes a secret; removing a missing one succeeds.
    pub fn delete(&self, key: &SecretKey) -> Result<(), SecretsError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(source) => Err(self.failed(key, source)),
        }
    }
}

#[cfg(target_os = "linux")]
const PLATFORM_STORE: &str = "Secret Service over D-Bus";
#[cfg(target_os = "linux")]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(zbus_secret_service_keyring_store::Store::new()?)
}

#[cfg(target_os = "macos")]
const PLATFORM_STORE: &str = "macOS Keychain";
#[cfg(target_os = "macos")]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(apple_native_keyring_store::keychain::Store::new()?)
}

#[cfg(target_os = "windows")]
const PLATFORM_STORE: &str = "Windows Credential Manager";
#[cfg(target_os = "windows")]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(windows_native_keyring_store::Store::new()?)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
compile_error!("left4me keeps secrets in the OS credential store: Linux, macOS or Windows");
