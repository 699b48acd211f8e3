//! One SSH connection per host as `left4me`, made on first use, reused by every call, and
//! made again after it was lost. Each new connection checks that the host's agent speaks
//! this app's protocol.

use crate::agent::{AgentFailure, Session};
use crate::hosts::Host;
use crate::remote::AgentCall;
use crate::secrets::{SecretKey, Secrets, SecretsError};
use crate::ssh::{Connection, Credential, Endpoint, SshError};
use left4me_protocol::{AgentMessage, PROTOCOL_VERSION};
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// The account the app logs in as once a host is set up.
pub const APP_ACCOUNT: &str = "left4me";

/// The app's own SSH key: made once per install, private part in the OS credential store.
pub fn app_key(secrets: &Secrets, install_id: &str) -> Result<Arc<PrivateKey>, AppKeyError> {
    if let Some(pem) = secrets.get(&SecretKey::AppSshKey)? {
        let text = std::str::from_utf8(&pem).map_err(|_| AppKeyError::Unreadable)?;
        return PrivateKey::from_openssh(text)
            .map(Arc::new)
            .map_err(|_| AppKeyError::Unreadable);
    }
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| AppKeyError::Random(e.to_string()))?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(format!("left4me-{install_id}"));
    let pem = key
        .to_openssh(LineEnding::LF)
        .expect("an ed25519 key encodes as OpenSSH");
    secrets.set(&SecretKey::AppSshKey, pem.as_bytes())?;
    Ok(Arc::new(key))
}

#[derive(Debug, thiserror::Error)]
pub enum AppKeyError {
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("the app's SSH key in the credential store is not an OpenSSH private key")]
    Unreadable,
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// The public half as an `authorized_keys` line.
pub fn public_line(key: &PrivateKey) -> String {
    key.public_key()
        .to_openssh()
        .expect("an ed25519 public key encodes as OpenSSH")
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("host {0:?} is not set up yet")]
    NotSetUp(String),
    #[error("host {0:?} has no confirmed host key")]
    NoHostKey(String),
    #[error("the confirmed host key of {0:?} is not readable; confirm it again")]
    BadHostKey(String),
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error(
        "the agent on {host:?} speaks protocol {found} (agent {agent_version}); this app needs \
         protocol {PROTOCOL_VERSION}: set the host up again to update it"
    )]
    AgentMismatch {
        host: String,
        found: u32,
        agent_version: String,
    },
    #[error("cannot check the agent on {host:?}")]
    Agent {
        host: String,
        #[source]
        source: Box<AgentFailure>,
    },
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Connection>>>>;

/// A host's kept agent session ([`Session`]), if it has one.
#[derive(Default)]
enum Kept {
    #[default]
    Nothing,
    Running(Session),
    /// The agent on this connection ended its session before its first answer (an agent
    /// from before `serve`): each look runs `list` on its own until the next connection.
    Refused(Weak<Connection>),
}

type SessionSlot = Arc<tokio::sync::Mutex<Kept>>;

pub struct Connections {
    key: Arc<PrivateKey>,
    slots: Mutex<HashMap<i64, Slot>>,
    sessions: Mutex<HashMap<i64, SessionSlot>>,
}

impl Connections {
    pub fn new(key: Arc<PrivateKey>) -> Self {
        Self {
            key,
            slots: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub fn key(&self) -> &Arc<PrivateKey> {
        &self.key
    }

    fn slot(&self, host_id: i64) -> Slot {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(host_id)
            .or_default()
            .clone()
    }

    /// The host's connection as `left4me`; connects (and checks the agent) if there is none
    /// or the last one was lost.
    pub async fn get(&self, host: &Host) -> Result<Arc<Connection>, ConnectError> {
        if host.state != crate::hosts::HostState::Ready {
            return Err(ConnectError::NotSetUp(host.name.clone()));
        }
        let slot = self.slot(host.id);
        let mut slot = slot.lock().await;
        if let Some(conn) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let host_key = confirmed_key(host)?;
        let endpoint = Endpoint {
            address: host.address.clone(),
            port: host.port,
            user: APP_ACCOUNT.to_owned(),
        };
        let conn = Arc::new(
            Connection::open(&endpoint, &host_key, &Credential::Key(self.key.clone())).await?,
        );
        check_agent(&conn, &host.name).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Drops a host's connection (the host was removed or set up again).
    pub async fn forget(&self, host_id: i64) {
        let session = self.session_slot(host_id);
        *session.lock().await = Kept::Nothing;
        let slot = self.slot(host_id);
        if let Some(conn) = slot.lock().await.take() {
            conn.close().await;
        }
    }

    fn session_slot(&self, host_id: i64) -> SessionSlot {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(host_id)
            .or_default()
            .clone()
    }

    /// The host's `list`, asked over its kept agent session on `conn` (started on first
    /// use, and again after a failure), or by one `list` process when the agent keeps none.
    pub async fn list(
        &self,
        host_id: i64,
        conn: &Arc<Connection>,
    ) -> Result<Vec<AgentMessage>, AgentFailure> {
        let slot = self.session_slot(host_id);
        let mut kept = slot.lock().await;
        // Opened for this look: a session that breaks at once is refused on this connection.
        let opened = match &*kept {
            Kept::Nothing => true,
            Kept::Running(session) => !session.runs_on(conn),
            Kept::Refused(on) => !std::ptr::eq(on.as_ptr(), Arc::as_ptr(conn)),
        };
        if opened {
            *kept = match Session::open(conn).await {
                Ok(session) => Kept::Running(session),
                Err(_) => Kept::Nothing,
            };
        }
        if let Kept::Running(session) = &mut *kept {
            match session.ask("list").await {
                Ok(message) => return Ok(vec![message]),
                // The agent answered, with an error: the session goes on.
                Err(failure @ AgentFailure::Agent { .. }) => return Err(failure),
                Err(failure) => {
                    log::warn!(
                        "the agent session on {} failed: {}",
                        conn.endpoint().address,
                        crate::error::chain(&failure)
                    );
                    *kept = match (opened, failure) {
                        (true, AgentFailure::Broken(_)) => Kept::Refused(Arc::downgrade(conn)),
                        _ => Kept::Nothing,
                    };
                }
            }
        }
        drop(kept);
        crate::agent::run(conn, &AgentCall::list(), b"", None).await
    }
}

pub(crate) fn confirmed_key(host: &Host) -> Result<PublicKey, ConnectError> {
    let text = host
        .host_key
        .as_deref()
        .ok_or_else(|| ConnectError::NoHostKey(host.name.clone()))?;
    PublicKey::from_openssh(text).map_err(|_| ConnectError::BadHostKey(host.name.clone()))
}

/// Asks the agent its version; refuses one that speaks another protocol.
pub(crate) async fn check_agent(conn: &Connection, host: &str) -> Result<(), ConnectError> {
    let out = conn.run(&AgentCall::version().command_line(), b"").await?;
    let line = String::from_utf8_lossy(&out.stdout);
    let line = line.trim();
    #[derive(serde::Deserialize)]
    struct Head {
        v: u32,
        #[serde(default)]
        agent_version: String,
    }
    let head: Head = serde_json::from_str(line).map_err(|_| ConnectError::Agent {
        host: host.to_owned(),
        source: Box::new(AgentFailure::Broken(if out.status == Some(127) {
            "the agent is not installed: set the host up".into()
        } else {
            format!("unexpected answer to `version`: {line:?}")
        })),
    })?;
    if head.v != PROTOCOL_VERSION {
        return Err(ConnectError::AgentMismatch {
            host: host.to_owned(),
            found: head.v,
            agent_version: head.agent_version,
        });
    }
    // Parse fully now that the version is known to be ours.
    match left4me_protocol::Envelope::parse(line).map(|e| e.message) {
        Ok(AgentMessage::Version(_)) => Ok(()),
        _ => Err(ConnectError::Agent {
            host: host.to_owned(),
            source: Box::new(AgentFailure::Broken(format!(
                "unexpected answer to `version`: {line:?}"
            ))),
        }),
    }
}
