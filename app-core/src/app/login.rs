//! How the app logs in to a host for its set-up, before `left4me` exists there: the login
//! the admin gives, the SSH credential and sudo password it yields, what the model keeps of
//! it (never a secret), and the login a redeploy rebuilds from that.

use crate::hosts::RememberedLogin;
use crate::jobs::JobFailure;
use crate::secrets::SecretKey;
use crate::ssh::Credential;
use std::path::PathBuf;
use std::sync::Arc;
use zeroize::Zeroizing;

/// How the app logs in for a host's set-up, before `left4me` exists there.
pub enum SetupLogin {
    /// The account's password, for SSH and for sudo.
    Password(Zeroizing<String>),
    /// A private key file on this computer, decrypted with `passphrase` if it has one.
    KeyFile {
        path: PathBuf,
        passphrase: Option<Zeroizing<String>>,
    },
    /// The running ssh-agent.
    Agent(PathBuf),
}

/// The SSH credential of a set-up login, and its password when sudo may use it too.
pub(super) fn credential(
    login: SetupLogin,
) -> std::result::Result<(Credential, Option<Zeroizing<String>>), JobFailure> {
    Ok(match login {
        SetupLogin::Password(password) => (Credential::Password(password.clone()), Some(password)),
        SetupLogin::KeyFile { path, passphrase } => {
            let key = russh::keys::load_secret_key(&path, passphrase.as_ref().map(|p| p.as_str()))
                .map_err(|e| {
                    JobFailure::failed(format!("cannot read the key {}: {e}", path.display()))
                })?;
            (Credential::Key(Arc::new(key)), None)
        }
        SetupLogin::Agent(socket) => (Credential::Agent(socket), None),
    })
}

/// What the model keeps of a set-up login: the method and key path, never a secret.
pub(super) fn remembered(login: &SetupLogin) -> RememberedLogin {
    match login {
        SetupLogin::Password(_) => RememberedLogin::Password,
        SetupLogin::KeyFile { path, .. } => RememberedLogin::KeyFile { path: path.clone() },
        SetupLogin::Agent(_) => RememberedLogin::Agent,
    }
}

/// Sudo's password: the one given for this set-up, else the login's own password, else the
/// one remembered for the host (read only when needed), else none (passwordless sudo).
pub(super) fn choose_sudo_password<E>(
    given: Option<Zeroizing<String>>,
    login_password: Option<Zeroizing<String>>,
    remembered: impl FnOnce() -> std::result::Result<Option<Zeroizing<String>>, E>,
) -> std::result::Result<Option<Zeroizing<String>>, E> {
    match given.or(login_password) {
        Some(password) => Ok(Some(password)),
        None => remembered(),
    }
}

/// The login a redeploy uses, rebuilt from what was remembered: its secrets from the
/// credential store (`secret`), an ssh-agent from the app's environment. `None` when a
/// piece is gone, so the agent cannot be replaced without the admin.
pub(super) fn redeploy_login(
    remembered: RememberedLogin,
    host: i64,
    agent_socket: Option<PathBuf>,
    mut secret: impl FnMut(SecretKey) -> std::result::Result<Option<Zeroizing<String>>, JobFailure>,
) -> std::result::Result<Option<SetupLogin>, JobFailure> {
    Ok(match remembered {
        RememberedLogin::Password => {
            secret(SecretKey::SudoPassword { host })?.map(SetupLogin::Password)
        }
        RememberedLogin::KeyFile { path } => Some(SetupLogin::KeyFile {
            path,
            passphrase: secret(SecretKey::KeyPassphrase { host })?,
        }),
        RememberedLogin::Agent => agent_socket.map(SetupLogin::Agent),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Option<Zeroizing<String>> {
        Some(Zeroizing::new(s.to_owned()))
    }

    fn text(p: &Option<Zeroizing<String>>) -> Option<&str> {
        p.as_ref().map(|p| p.as_str())
    }

    #[test]
    fn sudo_password_prefers_the_given_then_the_login_then_the_remembered() {
        // (given, login's password, remembered, expected, remembered read?)
        let table = [
            (pw("given"), pw("login"), pw("kept"), Some("given"), false),
            (pw("given"), None, pw("kept"), Some("given"), false),
            (None, pw("login"), pw("kept"), Some("login"), false),
            (None, None, pw("kept"), Some("kept"), true),
            (None, None, None, None, true),
        ];
        for (given, login, kept, expected, reads) in table {
            let mut read = false;
            let chosen = choose_sudo_password::<()>(given, login, || {
                read = true;
                Ok(kept)
            })
            .unwrap();
            assert_eq!(text(&chosen), expected);
            assert_eq!(read, reads, "expected {expected:?}");
        }
    }

    #[test]
    fn a_failed_read_of_the_remembered_password_fails_the_choice() {
        assert!(choose_sudo_password(None, None, || Err("keyring down")).is_err());
    }

    /// The login a redeploy rebuilds for host 7 from what was kept, described in words.
    fn redeploy(kept: &str, sudo: Option<&str>, passphrase: Option<&str>, agent: bool) -> String {
        let remembered = match kept {
            "password" => RememberedLogin::Password,
            "key" => RememberedLogin::KeyFile {
                path: PathBuf::from("/home/ann/.ssh/id_ed25519"),
            },
            _ => RememberedLogin::Agent,
        };
        let socket = agent.then(|| PathBuf::from("/run/user/1000/ssh-agent"));
        let secret = |key: SecretKey| {
            let found = match key {
                SecretKey::SudoPassword { host: 7 } => sudo,
                SecretKey::KeyPassphrase { host: 7 } => passphrase,
                other => panic!("asked for {other:?}"),
            };
            Ok(found.map(|s| Zeroizing::new(s.to_owned())))
        };
        match redeploy_login(remembered, 7, socket, secret).unwrap() {
            None => "none".to_owned(),
            Some(SetupLogin::Password(p)) => format!("password {}", p.as_str()),
            Some(SetupLogin::KeyFile { path, passphrase }) => {
                format!("key {} {:?}", path.display(), text(&passphrase))
            }
            Some(SetupLogin::Agent(s)) => format!("agent {}", s.display()),
        }
    }

    #[test]
    fn a_redeploy_logs_in_as_the_set_up_did_or_not_at_all() {
        let table = [
            (redeploy("password", Some("pw"), None, false), "password pw"),
            (redeploy("password", None, None, true), "none"),
            (
                redeploy("key", None, Some("phrase"), false),
                "key /home/ann/.ssh/id_ed25519 Some(\"phrase\")",
            ),
            (
                redeploy("key", Some("pw"), None, false),
                "key /home/ann/.ssh/id_ed25519 None",
            ),
            (
                redeploy("agent", Some("pw"), None, true),
                "agent /run/user/1000/ssh-agent",
            ),
            (redeploy("agent", Some("pw"), None, false), "none"),
        ];
        for (got, expected) in table {
            assert_eq!(got, expected);
        }
    }
}
