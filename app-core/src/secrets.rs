//! Secrets in the OS credential store: the Secret Service on Linux, the Keychain on macOS,
//! the Credential Manager on Windows; or, on a computer without one, in the local vault
//! ([`crate::vault`]) the admin unlocks with a passphrase.
//!
//! The database never holds a secret, only whether one exists. Each secret is an entry
//! of the service `left4me`, named after this install and what it is for, so two installs
//! on one computer (or a test run) never read each other's entries.
//!
//! Store calls block (a D-Bus round trip on Linux); async code calls them through
//! `spawn_blocking`.

use crate::vault::{Vault, VaultError};
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
    /// A notification target's URL and secret (JSON): its URL may hold a token.
    NotifyTarget { id: i64 },
    /// Never stored: read once at start to check that the OS store answers.
    Probe,
}

impl SecretKey {
    fn name(&self) -> String {
        match self {
            Self::AppSshKey => "app/ssh-key".into(),
            Self::SudoPassword { host } => format!("host/{host}/sudo-password"),
            Self::KeyPassphrase { host } => format!("host/{host}/key-passphrase"),
            Self::RconPassword { server } => format!("server/{server}/rcon-password"),
            Self::SteamLogin => "steam/login".into(),
            Self::NotifyTarget { id } => format!("notify/{id}/target"),
            Self::Probe => "probe".into(),
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
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Where this install's secrets are.
#[derive(Clone)]
enum Backend {
    Os(Arc<CredentialStore>),
    Vault(Arc<Vault>),
}

/// This install's secrets. Clones share the backend, so when the vault's secrets move into
/// the OS store every holder follows.
#[derive(Clone)]
pub struct Secrets {
    backend: Arc<std::sync::RwLock<Backend>>,
    install_id: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store = match &*self.backend() {
            Backend::Os(store) => store.vendor(),
            Backend::Vault(vault) => vault.path().display().to_string(),
        };
        f.debug_struct("Secrets")
            .field("store", &store)
            .field("install_id", &self.install_id)
            .finish()
    }
}

/// The name of the platform's credential store, as users know it.
pub const PLATFORM: &str = PLATFORM_STORE;

impl Secrets {
    /// Connects to the platform's credential store and checks that it answers (a D-Bus
    /// session may have no Secret Service on it).
    pub fn os(install_id: &str) -> Result<Self, SecretsError> {
        let unavailable = |source| SecretsError::Unavailable {
            store: PLATFORM_STORE,
            source,
        };
        let store = platform_store().map_err(unavailable)?;
        let secrets = Self {
            backend: Arc::new(std::sync::RwLock::new(Backend::Os(store))),
            install_id: install_id.to_owned(),
        };
        match secrets.entry(&SecretKey::Probe)?.get_secret() {
            Ok(_) | Err(keyring_core::Error::NoEntry) => Ok(secrets),
            Err(source) => Err(unavailable(source)),
        }
    }

    /// This install's secrets in an unlocked local vault.
    pub fn vault(vault: Arc<Vault>, install_id: &str) -> Self {
        Self {
            backend: Arc::new(std::sync::RwLock::new(Backend::Vault(vault))),
            install_id: install_id.to_owned(),
        }
    }

    /// Whether the secrets are in the local vault rather than the OS store.
    pub fn in_vault(&self) -> bool {
        matches!(*self.backend(), Backend::Vault(_))
    }

    /// Copies every secret of the vault into `into` (the OS store), checks each there, then
    /// empties the vault; returns how many moved. A failure midway leaves the vault whole,
    /// and what was copied is copied again next time.
    pub fn move_into(&self, into: &Secrets) -> Result<usize, SecretsError> {
        let Backend::Vault(vault) = self.backend().clone() else {
            return Ok(0);
        };
        let entries = vault.entries();
        for (name, secret) in &entries {
            let entry = into.entry_named(name)?;
            let failed = |source| SecretsError::Failed {
                what: name.clone(),
                source,
            };
            entry.set_secret(secret).map_err(failed)?;
            let back = Zeroizing::new(entry.get_secret().map_err(failed)?);
            if back.as_slice() != secret.as_slice() {
                return Err(SecretsError::Failed {
                    what: name.clone(),
                    source: keyring_core::Error::Invalid(
                        "secret".into(),
                        "read back differently from the OS store".into(),
                    ),
                });
            }
        }
        // From here on every holder reads and writes the OS store; the emptied vault file
        // goes, so the next start uses the OS store too.
        *self.backend.write().unwrap_or_else(|p| p.into_inner()) = into.backend().clone();
        for (name, _) in &entries {
            vault.delete(name)?;
        }
        vault.remove()?;
        Ok(entries.len())
    }

    fn backend(&self) -> std::sync::RwLockReadGuard<'_, Backend> {
        self.backend.read().unwrap_or_else(|p| p.into_inner())
    }

    fn entry(&self, key: &SecretKey) -> Result<Entry, SecretsError> {
        self.entry_named(&format!("{}/{}", self.install_id, key.name()))
            .map_err(|e| match e {
                SecretsError::Failed { source, .. } => self.failed(key, source),
                other => other,
            })
    }

    /// The OS store's entry for `user`; only for the OS backend.
    fn entry_named(&self, user: &str) -> Result<Entry, SecretsError> {
        let Backend::Os(store) = self.backend().clone() else {
            return Err(SecretsError::Failed {
                what: user.to_owned(),
                source: keyring_core::Error::Invalid(
                    "store".into(),
                    "the local vault is not the OS credential store".into(),
                ),
            });
        };
        store
            .build(SERVICE, user, None)
            .map_err(|source| SecretsError::Failed {
                what: user.to_owned(),
                source,
            })
    }

    fn vault_name(&self, key: &SecretKey) -> String {
        format!("{}/{}", self.install_id, key.name())
    }

    fn failed(&self, key: &SecretKey, source: keyring_core::Error) -> SecretsError {
        SecretsError::Failed {
            what: key.name(),
            source,
        }
    }

    /// Stores (or replaces) a secret.
    pub fn set(&self, key: &SecretKey, secret: &[u8]) -> Result<(), SecretsError> {
        if let Backend::Vault(vault) = self.backend().clone() {
            return Ok(vault.set(&self.vault_name(key), secret)?);
        }
        self.entry(key)?
            .set_secret(secret)
            .map_err(|source| self.failed(key, source))
    }

    /// Reads a secret; `None` if there is none.
    pub fn get(&self, key: &SecretKey) -> Result<Option<Zeroizing<Vec<u8>>>, SecretsError> {
        if let Backend::Vault(vault) = self.backend().clone() {
            return Ok(vault.get(&self.vault_name(key)));
        }
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
        if let Backend::Vault(vault) = self.backend().clone() {
            return Ok(vault.delete(&self.vault_name(key))?);
        }
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
