//! SSH to hosts (russh): host-key checking, login, and commands on one shared connection.
//!
//! One [`Connection`] per host carries every command as its own channel. OpenSSH refuses
//! more than `MaxSessions` (10 by default) channels per connection, so a connection hands
//! out at most [`MAX_CHANNELS`] at once and waits for a free one; an open that sshd still
//! refuses (it frees a slot only after cleaning up a closed channel) is retried with
//! backoff.
//!
//! Host keys: the first contact only reads the host's key ([`fetch_host_key`]) for the
//! user to confirm. Every later connection requires exactly the confirmed key and stops
//! during key exchange, before any credential is sent, if the host shows another one.

use russh::client::{self, Handle};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Sig};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeroize::Zeroizing;

/// Channels one connection opens at once: OpenSSH's default `MaxSessions`.
pub const MAX_CHANNELS: usize = 10;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// Unanswered keepalives after which the connection counts as lost.
const KEEPALIVE_MAX: usize = 3;

/// Where to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub address: String,
    pub port: u16,
    pub user: String,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.address, self.port)
    }
}

/// How to log in.
pub enum Credential {
    /// A private key (the app's own, or a user's key file already decrypted).
    Key(Arc<PrivateKey>),
    /// The account's password.
    Password(Zeroizing<String>),
    /// The keys of an ssh-agent: its Unix socket, or on Windows its named pipe.
    Agent(std::path::PathBuf),
}

/// The named pipe of the OpenSSH agent that ships with Windows.
#[cfg(windows)]
pub const WINDOWS_AGENT_PIPE: &str = r"\\.\pipe\openssh-ssh-agent";

impl Credential {
    /// The ssh-agent of this session: `SSH_AUTH_SOCK` when set; on Windows, else the
    /// OpenSSH agent's pipe.
    pub fn agent_from_env() -> Option<Self> {
        let named = std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty());
        #[cfg(windows)]
        let named = named.or_else(|| Some(WINDOWS_AGENT_PIPE.into()));
        named.map(|s| Self::Agent(s.into()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot reach {address}:{port}")]
    Connect {
        address: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("{address}:{port} did not complete the SSH handshake within {} s", CONNECT_TIMEOUT.as_secs())]
    Timeout { address: String, port: u16 },
    #[error(
        "the host key of {address}:{port} has changed: the confirmed key is {expected}, the \
         host now shows {found}. Nothing was sent to it. If the host was reinstalled, confirm \
         its new key; otherwise someone may be intercepting the connection"
    )]
    HostKeyChanged {
        address: String,
        port: u16,
        expected: String,
        found: String,
    },
    #[error("{endpoint} refused the login with {method}")]
    AuthRejected {
        endpoint: String,
        method: &'static str,
    },
    #[error("no usable ssh-agent for {endpoint}: {reason}")]
    Agent { endpoint: String, reason: String },
    #[error("the connection to {address} was lost")]
    Lost { address: String },
    #[error("SSH failed talking to {address}")]
    Protocol {
        address: String,
        #[source]
        source: russh::Error,
    },
}

/// The SHA256 fingerprint of a key as OpenSSH prints it (`SHA256:…`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// What the handler learned during key exchange.
#[derive(Default)]
struct Seen {
    key: Option<PublicKey>,
    mismatch: bool,
}

struct Client {
    /// The confirmed key; `None` to only read the host's key and stop.
    expected: Option<PublicKey>,
    seen: Arc<Mutex<Seen>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Certificates are not accepted: the app pins plain host keys.
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_key else {
            return Ok(false);
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.key = Some(key.clone());
        match &self.expected {
            Some(expected) if expected.key_data() == key.key_data() => Ok(true),
            Some(_) => {
                seen.mismatch = true;
                Ok(false)
            }
            None => Ok(false),
        }
    }
}

fn config() -> Arc<client::Config> {
    Arc::new(client::Config {
        keepalive_interval: Some(KEEPALIVE_INTERVAL),
        keepalive_max: KEEPALIVE_MAX,
        nodelay: true,
        ..Default::default()
    })
}

/// The TCP connection under SSH, with Nagle's algorithm off (russh's `nodelay` applies
/// only to the connections it makes itself). With it on, a request written while the
/// channel's last window adjustment waits for its acknowledgement was held until the host's
/// delayed acknowledgement came, some 40 ms, every status look.
async fn tcp(address: &str, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect((address, port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn handshake(
    address: &str,
    port: u16,
    expected: Option<PublicKey>,
) -> (Result<Handle<Client>, SshError>, Seen) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let handler = Client {
        expected,
        seen: seen.clone(),
    };
    let result = async {
        let stream = tcp(address, port)
            .await
            .map_err(|source| SshError::Connect {
                address: address.to_owned(),
                port,
                source,
            })?;
        client::connect_stream(config(), stream, handler)
            .await
            .map_err(|source| SshError::Protocol {
                address: address.to_owned(),
                source,
            })
    };
    let result = tokio::time::timeout(CONNECT_TIMEOUT, result)
        .await
        .unwrap_or_else(|_| {
            Err(SshError::Timeout {
                address: address.to_owned(),
                port,
            })
        });
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|p| p.into_inner()));
    (result, seen)
}

/// Reads a host's key without logging in, for the user to confirm on first contact.
pub async fn fetch_host_key(address: &str, port: u16) -> Result<PublicKey, SshError> {
    let (result, seen) = handshake(address, port, None).await;
    match (seen.key, result) {
        (Some(key), _) => Ok(key),
        (None, Err(err)) => Err(err),
        (None, Ok(_)) => unreachable!("a handshake without an expected key never succeeds"),
    }
}

/// A logged-in connection to one host.
pub struct Connection {
    handle: Handle<Client>,
    slots: Arc<Semaphore>,
    endpoint: Endpoint,
}

impl Connection {
    /// Connects, requires the host to show `host_key`, and logs in.
    pub async fn open(
        endpoint: &Endpoint,
        host_key: &PublicKey,
        credential: &Credential,
    ) -> Result<Self, SshError> {
        let (result, seen) =
            handshake(&endpoint.address, endpoint.port, Some(host_key.clone())).await;
        if seen.mismatch {
            return Err(SshError::HostKeyChanged {
                address: endpoint.address.clone(),
                port: endpoint.port,
                expected: fingerprint(host_key),
                found: seen.key.as_ref().map(fingerprint).unwrap_or_default(),
            });
        }
        let mut handle = result?;
        let protocol = |source| SshError::Protocol {
            address: endpoint.address.clone(),
            source,
        };
        let (ok, method) = match credential {
            Credential::Key(key) => {
                let hash = handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(protocol)?
                    .flatten();
                let key = PrivateKeyWithHashAlg::new(key.clone(), hash);
                let result = handle
                    .authenticate_publickey(&endpoint.user, key)
                    .await
                    .map_err(protocol)?;
                (result.success(), "its key")
            }
            Credential::Password(password) => {
                let result = handle
                    .authenticate_password(&endpoint.user, password.as_str())
                    .await
                    .map_err(protocol)?;
                (result.success(), "the password")
            }
            Credential::Agent(socket) => (
                agent_login(&mut handle, endpoint, socket).await?,
                "the ssh-agent's keys",
            ),
        };
        if !ok {
            return Err(SshError::AuthRejected {
                endpoint: endpoint.to_string(),
                method,
            });
        }
        Ok(Self {
            handle,
            slots: Arc::new(Semaphore::new(MAX_CHANNELS)),
            endpoint: endpoint.clone(),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// True once the connection is gone (closed, or lost and noticed by keepalives).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    fn lost_or(&self, source: russh::Error) -> SshError {
        if self.is_closed() {
            SshError::Lost {
                address: self.endpoint.address.clone(),
            }
        } else {
            SshError::Protocol {
                address: self.endpoint.address.clone(),
                source,
            }
        }
    }

    /// Starts `command` (one shell line, built by [`crate::remote`]) on its own channel.
    pub async fn exec(&self, command: &str) -> Result<Exec, SshError> {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the channel semaphore is never closed");
        let mut delay = Duration::from_millis(5);
        let channel = loop {
            match self.handle.channel_open_session().await {
                Ok(channel) => break channel,
                // sshd frees a session slot a moment after the channel closed.
                Err(russh::Error::ChannelOpenFailure(_)) if delay < Duration::from_secs(2) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(err) => return Err(self.lost_or(err)),
            }
        };
        channel
            .exec(true, command)
            .await
            .map_err(|e| self.lost_or(e))?;
        Ok(Exec {
            channel,
            _permit: permit,
            address: self.endpoint.address.clone(),
            exit_status: None,
        })
    }

    /// Runs `command` to its end, feeding `stdin`, and collects its output.
    pub async fn run(&self, command: &str, stdin: &[u8]) -> Result<Output, SshError> {
        let mut exec = self.exec(command).await?;
        exec.send_stdin(stdin).await?;
        exec.close_stdin().await?;
        let mut output = Output::default();
        while let Some(event) = exec.next().await? {
            match event {
                ExecEvent::Stdout(data) => output.stdout.extend_from_slice(&data),
                ExecEvent::Stderr(data) => output.stderr.extend_from_slice(&data),
            }
        }
        output.status = exec.exit_status();
        if output.status.is_none() && self.is_closed() {
            return Err(SshError::Lost {
                address: self.endpoint.address.clone(),
            });
        }
        Ok(output)
    }

    /// Closes the connection politely.
    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

async fn agent_login(
    handle: &mut Handle<Client>,
    endpoint: &Endpoint,
    socket: &std::path::Path,
) -> Result<bool, SshError> {
    let agent_error = |reason: String| SshError::Agent {
        endpoint: endpoint.to_string(),
        reason,
    };
    let mut agent = open_agent(socket)
        .await
        .map_err(|e| agent_error(format!("cannot connect to {}: {e}", socket.display())))?;
    let identities = agent
        .request_identities()
        .await
        .map_err(|e| agent_error(format!("cannot list its keys: {e}")))?;
    let hash = handle
        .best_supported_rsa_hash()
        .await
        .map_err(|source| SshError::Protocol {
            address: endpoint.address.clone(),
            source,
        })?
        .flatten();
    for identity in identities {
        let AgentIdentity::PublicKey { key, .. } = identity else {
            continue;
        };
        match handle
            .authenticate_publickey_with(&endpoint.user, key, hash, &mut agent)
            .await
        {
            Ok(result) if result.success() => return Ok(true),
            Ok(_) => {}
            Err(e) => return Err(agent_error(format!("signing failed: {e}"))),
        }
    }
    Ok(false)
}

/// An ssh-agent by its Unix socket.
#[cfg(unix)]
async fn open_agent(
    socket: &std::path::Path,
) -> Result<AgentClient<tokio::net::UnixStream>, russh::keys::Error> {
    AgentClient::connect_uds(socket).await
}

/// An ssh-agent by its named pipe (Windows' OpenSSH agent listens on one).
#[cfg(windows)]
async fn open_agent(
    pipe: &std::path::Path,
) -> Result<AgentClient<tokio::net::windows::named_pipe::NamedPipeClient>, russh::keys::Error> {
    AgentClient::connect_named_pipe(pipe).await
}

/// What a remote command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit status; `None` if the command ended without one (killed by a signal).
    pub status: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A command running on a host.
pub struct Exec {
    channel: russh::Channel<client::Msg>,
    _permit: OwnedSemaphorePermit,
    address: String,
    exit_status: Option<u32>,
}

impl Exec {
    pub async fn send_stdin(&mut self, data: &[u8]) -> Result<(), SshError> {
        if data.is_empty() {
            return Ok(());
        }
        self.channel.data(data).await.map_err(|_| self.lost())
    }

    pub async fn close_stdin(&mut self) -> Result<(), SshError> {
        self.channel.eof().await.map_err(|_| self.lost())
    }

    fn lost(&self) -> SshError {
        SshError::Lost {
            address: self.address.clone(),
        }
    }

    /// The next output, or `None` once the command ended and the channel closed. The exit
    /// status may come before or after the end of output; read until `None`.
    pub async fn next(&mut self) -> Result<Option<ExecEvent>, SshError> {
        loop {
            match self.channel.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    return Ok(Some(ExecEvent::Stdout(data.to_vec())));
                }
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    return Ok(Some(ExecEvent::Stderr(data.to_vec())));
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    self.exit_status = Some(exit_status)
                }
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }

    /// The command's exit status, once [`Exec::next`] returned `None`.
    pub fn exit_status(&self) -> Option<u32> {
        self.exit_status
    }

    /// Asks sshd to send SIGTERM to the command's process group (OpenSSH ≥ 7.9).
    pub async fn terminate(&self) -> Result<(), SshError> {
        self.channel
            .signal(Sig::TERM)
            .await
            .map_err(|_| self.lost())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_connection_to_a_host_sends_small_writes_at_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stream = super::tcp("127.0.0.1", port).await.unwrap();
        assert!(stream.nodelay().unwrap(), "Nagle's algorithm is on");
    }
}
