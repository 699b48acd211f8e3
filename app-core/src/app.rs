//! The app's actions on hosts: set-up, installs, server lifecycles, live status, logs and
//! RCON. Everything here is async and runs on the caller's tokio runtime; every action
//! that changes a host is a job.

use crate::accounts::Session;
use crate::agent::{self, AgentFailure};
use crate::connections::{self, APP_ACCOUNT, ConnectError, Connections};
use crate::error::{Error, Result};
use crate::hosts::{Host, HostKeyOffer, HostState};
use crate::jobs::{JobCtx, JobFailure, Jobs, NewJob};
use crate::remote::{self, AgentCall};
use crate::secrets::{SecretKey, Secrets};
use crate::ssh::{self, Connection, Credential, Endpoint};
use crate::store::Store;
use left4me_protocol::agent::{HostFacts, LogLine, ServerStatus};
use left4me_protocol::{AgentMessage, AppEvent, Job, JobKind, LiveState, ServerLive, ServerName};
use sha2::Digest;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use zeroize::Zeroizing;

/// What the app is built and configured with.
#[derive(Debug, Clone, Default)]
pub struct AppConfig {
    /// The static agent binaries shipped with the app, by CPU architecture (`uname -m`).
    pub agent_binaries: HashMap<String, PathBuf>,
    /// Where hosts fetch steamcmd from when they have none (Valve's URL if unset).
    pub steamcmd_url: Option<String>,
    /// The Steam Web API hosts use for Workshop overlays (Valve's if unset).
    pub workshop_api: Option<String>,
}

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

pub struct App {
    store: Arc<Store>,
    secrets: Secrets,
    jobs: Arc<Jobs>,
    connections: Connections,
    config: AppConfig,
    /// One agent redeployment at a time per host.
    redeploys: HostLocks,
    /// One server start at a time per host checks and fills the overlays it needs, so two
    /// first starts that share an overlay fill it once instead of racing for it.
    overlay_checks: HostLocks,
}

/// An async lock per host, made on first use.
#[derive(Default)]
struct HostLocks(std::sync::Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>);

impl HostLocks {
    fn get(&self, host_id: i64) -> Arc<tokio::sync::Mutex<()>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(host_id)
            .or_default()
            .clone()
    }
}

#[derive(Debug, Clone, Copy)]
enum ServerAction {
    Start,
    Stop,
    Restart,
    Delete,
}

impl App {
    /// Starts the app's engine over an open store and credential store. Jobs the last run
    /// left behind are marked interrupted. Call inside a tokio runtime.
    pub fn start(store: Store, secrets: Secrets, config: AppConfig) -> Result<Arc<Self>> {
        let store = Arc::new(store);
        let install_id = store.install_id()?;
        let key = connections::app_key(&secrets, &install_id)
            .map_err(|e| Error::Remote(crate::error::chain(&e)))?;
        store.seed_example_overlays()?;
        let (events, _) = broadcast::channel(4096);
        let jobs = Jobs::start(store.clone(), events)?;
        Ok(Arc::new(Self {
            store,
            secrets,
            jobs,
            connections: Connections::new(key),
            config,
            redeploys: HostLocks::default(),
            overlay_checks: HostLocks::default(),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn jobs(&self) -> &Arc<Jobs> {
        &self.jobs
    }

    pub fn subscribe(&self) -> broadcast::Receiver<AppEvent> {
        self.jobs.subscribe()
    }

    /// The app's public key, as hosts' `authorized_keys` carry it.
    pub fn public_key(&self) -> String {
        connections::public_line(self.connections.key())
    }

    // ---- hosts ------------------------------------------------------------------------

    /// First contact: reads the host's key for the admin to confirm. Nothing is sent.
    pub async fn fetch_host_key(&self, session: &Session, host_id: i64) -> Result<HostKeyOffer> {
        self.store.actor(session)?.require_admin("contact hosts")?;
        let host = self.store.host_by_id(host_id)?;
        let key = ssh::fetch_host_key(&host.address, host.port)
            .await
            .map_err(remote_error)?;
        Ok(HostKeyOffer {
            fingerprint: ssh::fingerprint(&key),
            key: key.to_openssh().expect("a host key encodes as OpenSSH"),
        })
    }

    /// Deploys the agent and sets the host up, as a job. `sudo_password` is sudo's (None:
    /// the one remembered for this host, else passwordless sudo); with `remember` it is kept
    /// in the OS credential store for the next set-up.
    pub fn set_up_host(
        self: &Arc<Self>,
        session: &Session,
        host_id: i64,
        login: SetupLogin,
        sudo_password: Option<Zeroizing<String>>,
        remember: bool,
    ) -> Result<Job> {
        let me = self.store.actor(session)?.require_admin("set hosts up")?;
        let host = self.store.host_by_id(host_id)?;
        if host.host_key.is_none() {
            return Err(Error::Conflict(format!(
                "confirm the host key of {:?} before setting it up",
                host.name
            )));
        }
        let app = self.clone();
        self.jobs.submit(
            NewJob::on_host(
                JobKind::SetUp,
                me.id,
                host_id,
                format!("host {}", host.name),
            ),
            move |ctx| async move {
                app.run_set_up(Some(&ctx), host_id, login, sudo_password, remember)
                    .await
            },
        )
    }

    async fn run_set_up(
        &self,
        ctx: Option<&JobCtx>,
        host_id: i64,
        login: SetupLogin,
        sudo_password: Option<Zeroizing<String>>,
        remember: bool,
    ) -> std::result::Result<(), JobFailure> {
        let host = self.store.host_by_id(host_id)?;
        let host_key = connections::confirmed_key(&host).map_err(connect_failure)?;
        let endpoint = Endpoint {
            address: host.address.clone(),
            port: host.port,
            user: host.admin_user.clone(),
        };
        let remembered_login = match &login {
            SetupLogin::Password(_) => crate::hosts::RememberedLogin::Password,
            SetupLogin::KeyFile { path, .. } => {
                crate::hosts::RememberedLogin::KeyFile { path: path.clone() }
            }
            SetupLogin::Agent(_) => crate::hosts::RememberedLogin::Agent,
        };
        let key_passphrase = match &login {
            SetupLogin::KeyFile { passphrase, .. } => passphrase.clone(),
            _ => None,
        };
        let (credential, login_password) = match login {
            SetupLogin::Password(password) => {
                (Credential::Password(password.clone()), Some(password))
            }
            SetupLogin::KeyFile { path, passphrase } => {
                let key =
                    russh::keys::load_secret_key(&path, passphrase.as_ref().map(|p| p.as_str()))
                        .map_err(|e| {
                            JobFailure::failed(format!(
                                "cannot read the key {}: {e}",
                                path.display()
                            ))
                        })?;
                (Credential::Key(Arc::new(key)), None)
            }
            SetupLogin::Agent(socket) => (Credential::Agent(socket), None),
        };
        let remembered = match sudo_password.is_none() && login_password.is_none() {
            true => self
                .secrets
                .get(&SecretKey::SudoPassword { host: host_id })
                .map_err(|e| JobFailure::failed(crate::error::chain(&e)))?
                .map(|bytes| Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned())),
            false => None,
        };
        let sudo_password = sudo_password.or(login_password).or(remembered);

        say(ctx, &format!("connecting to {endpoint} for the set-up"));
        let conn = Connection::open(&endpoint, &host_key, &credential)
            .await
            .map_err(|e| connect_failure(e.into()))?;
        let arch = run_text(&conn, "uname -m").await?;
        if arch.trim() != "x86_64" {
            return Err(JobFailure::failed(format!(
                "this host is {}: Left 4 Dead 2's dedicated server exists only for x86 \
                 (i386) Linux, so left4me cannot run it there; use an x86-64 host",
                arch.trim()
            )));
        }
        let binary = self.config.agent_binaries.get(arch.trim()).ok_or_else(|| {
            JobFailure::failed(format!(
                "this app has no agent for {:?} hosts (it has: {})",
                arch.trim(),
                self.config
                    .agent_binaries
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let bytes = tokio::fs::read(binary).await.map_err(|e| {
            JobFailure::failed(format!("cannot read the agent {}: {e}", binary.display()))
        })?;
        let sha256 = hex(&sha2::Sha256::digest(&bytes));
        say(
            ctx,
            &format!(
                "uploading the agent for {} ({} KiB, sha256 {sha256})",
                arch.trim(),
                bytes.len() / 1024
            ),
        );
        let out = conn
            .run(
                "umask 077 && t=$(mktemp /tmp/l4d2-agent.XXXXXXXX) && cat > \"$t\" && chmod 700 \"$t\" && sha256sum \"$t\"",
                &bytes,
            )
            .await
            .map_err(|e| connect_failure(e.into()))?;
        let answer = String::from_utf8_lossy(&out.stdout);
        let (remote_sum, path) = answer
            .trim()
            .split_once("  ")
            .filter(|(_, path)| {
                path.starts_with("/tmp/l4d2-agent.")
                    && path
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
            })
            .ok_or_else(|| {
                JobFailure::failed(format!(
                    "the upload failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            })?;
        if remote_sum != sha256 {
            let _ = conn
                .run(&remote::command_line(&["rm", "-f", path]), b"")
                .await;
            return Err(JobFailure::failed(format!(
                "the uploaded agent is damaged: sha256 {remote_sum} on the host, {sha256} here"
            )));
        }
        say(
            ctx,
            "checksum verified on the host; running the agent's set-up with sudo",
        );
        let sudo: &[&str] = if sudo_password.is_some() {
            &["sudo", "-S", "-p", ""]
        } else {
            &["sudo", "-n"]
        };
        let mut words: Vec<String> = sudo.iter().map(|w| (*w).to_owned()).collect();
        words.extend(remote::AgentCall::setup_from(path, &self.public_key()));
        // The copy in /tmp goes whatever happens; the agent installed itself to /opt.
        let line = format!(
            "{}; rc=$?; rm -f {}; exit $rc",
            remote::command_line(&words),
            remote::shell_quote(path)
        );
        let stdin = sudo_password
            .as_ref()
            .map(|p| Zeroizing::new(format!("{}\n", p.as_str())))
            .unwrap_or_default();
        agent::run_line(&conn, &line, stdin.as_bytes(), ctx)
            .await
            .map_err(|failure| sudo_failure(failure, &host.admin_user))?;
        conn.close().await;

        if remember {
            let keep = |key: SecretKey, secret: &str| {
                self.secrets
                    .set(&key, secret.as_bytes())
                    .map_err(|e| JobFailure::failed(crate::error::chain(&e)))
            };
            if let Some(password) = &sudo_password {
                keep(SecretKey::SudoPassword { host: host_id }, password)?;
            }
            if let Some(passphrase) = &key_passphrase {
                keep(SecretKey::KeyPassphrase { host: host_id }, passphrase)?;
            }
            self.store
                .set_host_setup_login(host_id, &remembered_login)?;
            say(
                ctx,
                "the set-up login is remembered (its secrets in this computer's credential \
                 store): an outdated agent will be replaced without asking",
            );
        }
        self.store.set_host_ready(host_id)?;
        self.connections.forget(host_id).await;
        say(
            ctx,
            &format!("logging in as {APP_ACCOUNT} with the app's key"),
        );
        let host = self.store.host_by_id(host_id)?;
        let facts = self.read_facts(&host).await?;
        say(
            ctx,
            &format!(
                "{}: {}, kernel {}, {} CPUs, game {}",
                host.name,
                facts.os,
                facts.kernel,
                facts.cpus,
                facts.installed_build.as_deref().unwrap_or("not installed")
            ),
        );
        Ok(())
    }

    /// The host's connection as `left4me`. An agent that speaks another protocol is
    /// replaced first when the host's set-up login is remembered.
    async fn connection(
        &self,
        host: &Host,
        ctx: Option<&JobCtx>,
    ) -> std::result::Result<Arc<Connection>, JobFailure> {
        let mismatch = match self.connections.get(host).await {
            Err(err @ ConnectError::AgentMismatch { .. }) => err,
            other => return other.map_err(connect_failure),
        };
        let Some(remembered) = self.store.host_setup_login(host.id)? else {
            return Err(connect_failure(mismatch));
        };
        let login = match remembered {
            crate::hosts::RememberedLogin::Password => {
                match self.secret_text(&SecretKey::SudoPassword { host: host.id })? {
                    Some(password) => SetupLogin::Password(password),
                    None => return Err(connect_failure(mismatch)),
                }
            }
            crate::hosts::RememberedLogin::KeyFile { path } => SetupLogin::KeyFile {
                path,
                passphrase: self.secret_text(&SecretKey::KeyPassphrase { host: host.id })?,
            },
            crate::hosts::RememberedLogin::Agent => match Credential::agent_from_env() {
                Some(Credential::Agent(socket)) => SetupLogin::Agent(socket),
                _ => return Err(connect_failure(mismatch)),
            },
        };
        let lock = self.redeploys.get(host.id);
        let _redeploying = lock.lock().await;
        // Someone else may have redeployed while this call waited.
        if let Ok(conn) = self.connections.get(host).await {
            return Ok(conn);
        }
        say(
            ctx,
            &format!(
                "{}; deploying this app's agent again",
                crate::error::chain(&mismatch)
            ),
        );
        self.run_set_up(ctx, host.id, login, None, false).await?;
        self.connections.get(host).await.map_err(connect_failure)
    }

    fn secret_text(
        &self,
        key: &SecretKey,
    ) -> std::result::Result<Option<Zeroizing<String>>, JobFailure> {
        Ok(self
            .secrets
            .get(key)
            .map_err(|e| JobFailure::failed(crate::error::chain(&e)))?
            .map(|bytes| Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned())))
    }

    async fn read_facts(&self, host: &Host) -> std::result::Result<HostFacts, JobFailure> {
        let conn = self.connections.get(host).await.map_err(connect_failure)?;
        let messages = agent::run(&conn, &AgentCall::facts(), b"", None).await?;
        let facts = messages
            .into_iter()
            .find_map(|m| match m {
                AgentMessage::Facts(f) => Some(f),
                _ => None,
            })
            .ok_or_else(|| JobFailure::failed("the agent did not report the host's facts"))?;
        self.store.set_host_facts(host.id, &facts)?;
        Ok(facts)
    }

    /// Removes a host (admins only; refused while servers are on it), with its kept
    /// secrets and its connection. The host itself is left as it is.
    pub async fn remove_host(&self, session: &Session, host_id: i64) -> Result<()> {
        self.store.remove_host(session, host_id)?;
        self.connections.forget(host_id).await;
        self.secrets
            .delete(&SecretKey::SudoPassword { host: host_id })?;
        self.secrets
            .delete(&SecretKey::KeyPassphrase { host: host_id })?;
        Ok(())
    }

    /// Keeps the Steam account installs use (admins only) in the credential store; `None`
    /// forgets it, and installs go back to anonymous.
    pub fn set_steam_login(&self, session: &Session, login: Option<(&str, &str)>) -> Result<()> {
        self.store
            .actor(session)?
            .require_admin("set the Steam account")?;
        match login {
            None => Ok(self.secrets.delete(&SecretKey::SteamLogin)?),
            Some((user, password)) => {
                let one_line = |s: &str| !s.is_empty() && !s.contains(['\n', '\r', '\0']);
                if !one_line(user) || !one_line(password) {
                    return Err(Error::Invalid(
                        "the Steam account name and password must each be one non-empty line"
                            .into(),
                    ));
                }
                let text = Zeroizing::new(format!("{user}\n{password}\n"));
                Ok(self.secrets.set(&SecretKey::SteamLogin, text.as_bytes())?)
            }
        }
    }

    /// Asks a host whether Steam has a newer public build of the game than the installed
    /// one (steamcmd's app info, without installing) and keeps the answer for the host card.
    pub async fn check_game_update(&self, session: &Session, host_id: i64) -> Result<Host> {
        self.store
            .actor(session)?
            .require_admin("check for game updates")?;
        let host = self.ready_host(host_id)?;
        let conn = self
            .connections
            .get(&host)
            .await
            .map_err(|e| Error::Remote(connect_failure(e).message))?;
        let call = AgentCall::install_check(self.config.steamcmd_url.as_deref());
        let messages = agent::run(&conn, &call, b"", None)
            .await
            .map_err(|e| Error::Remote(e.to_string()))?;
        let check = messages
            .into_iter()
            .find_map(|m| match m {
                AgentMessage::UpdateCheck(c) => Some(c),
                _ => None,
            })
            .ok_or_else(|| Error::Remote("the agent did not report the public build".into()))?;
        self.store.set_public_build(host_id, &check.public_build)?;
        self.read_facts(&host)
            .await
            .map_err(|f| Error::Remote(f.message))?;
        self.store.host_by_id(host_id)
    }

    /// Forgets the Steam account: the credential store's copy at once, and the login
    /// steamcmd cached on every set-up host, as one job per host (returned).
    pub fn forget_steam_account(self: &Arc<Self>, session: &Session) -> Result<Vec<Job>> {
        let me = self
            .store
            .actor(session)?
            .require_admin("forget the Steam account")?;
        self.secrets.delete(&SecretKey::SteamLogin)?;
        let mut jobs = Vec::new();
        for host in self.store.hosts(session)? {
            if host.state != HostState::Ready {
                continue;
            }
            let app = self.clone();
            let host_id = host.id;
            jobs.push(self.jobs.submit(
                NewJob::on_host(
                    JobKind::ForgetSteamLogin,
                    me.id,
                    host_id,
                    format!("host {}", host.name),
                ),
                move |ctx| async move {
                    let host = app.store.host_by_id(host_id)?;
                    let conn = app.connection(&host, Some(&ctx)).await?;
                    agent::run(&conn, &AgentCall::forget_steam_login(), &[], Some(&ctx)).await?;
                    Ok(())
                },
            )?);
        }
        Ok(jobs)
    }

    /// Whether installs use a Steam account (its name), or go anonymous (`None`).
    pub fn steam_account(&self, session: &Session) -> Result<Option<String>> {
        self.store
            .actor(session)?
            .require_admin("see the Steam account")?;
        Ok(self.secrets.get(&SecretKey::SteamLogin)?.map(|text| {
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        }))
    }

    /// A host that actions may use: set up, so the app logs in as `left4me` there.
    fn ready_host(&self, host_id: i64) -> Result<Host> {
        let host = self.store.host_by_id(host_id)?;
        if host.state != HostState::Ready {
            return Err(Error::Conflict(format!(
                "host {:?} is not set up yet",
                host.name
            )));
        }
        Ok(host)
    }

    /// Reads a host's facts again.
    pub async fn refresh_host(&self, session: &Session, host_id: i64) -> Result<Host> {
        self.store.actor(session)?;
        let host = self.store.host_by_id(host_id)?;
        self.read_facts(&host)
            .await
            .map_err(|f| Error::Remote(f.message))?;
        self.store.host_by_id(host_id)
    }

    /// Installs or updates the base game on a host, as a job. `guard_code` is the Steam
    /// Guard code Steam asked for when an install with the Steam account last failed with
    /// `steam_guard_code_needed` (it reaches the agent on stdin, never a command line).
    pub fn install_game(
        self: &Arc<Self>,
        session: &Session,
        host_id: i64,
        validate: bool,
        guard_code: Option<&str>,
    ) -> Result<Job> {
        let me = self
            .store
            .actor(session)?
            .require_admin("install the game")?;
        let host = self.ready_host(host_id)?;
        let guard_code = match guard_code.map(str::trim) {
            None | Some("") => None,
            Some(code) if code.len() <= 16 && code.chars().all(|c| c.is_ascii_alphanumeric()) => {
                if self.secrets.get(&SecretKey::SteamLogin)?.is_none() {
                    return Err(Error::Invalid(
                        "a Steam Guard code is for an install with a Steam account; none is set"
                            .into(),
                    ));
                }
                Some(Zeroizing::new(code.to_ascii_uppercase()))
            }
            Some(_) => {
                return Err(Error::Invalid(
                    "a Steam Guard code is a few letters and digits, as Steam sent it".into(),
                ));
            }
        };
        let app = self.clone();
        self.jobs.submit(
            NewJob::on_host(
                JobKind::Install,
                me.id,
                host_id,
                format!("host {}", host.name),
            ),
            move |ctx| async move {
                let host = app.store.host_by_id(host_id)?;
                let conn = app.connection(&host, Some(&ctx)).await?;
                let login = app
                    .secrets
                    .get(&SecretKey::SteamLogin)
                    .map_err(|e| JobFailure::failed(crate::error::chain(&e)))?;
                ctx.say(match login {
                    Some(_) => "installing with the Steam account from the credential store",
                    None => "installing anonymously",
                });
                let call = AgentCall::install(
                    validate,
                    app.config.steamcmd_url.as_deref(),
                    login.is_some(),
                );
                let mut stdin = Zeroizing::new(login.map(|l| l.to_vec()).unwrap_or_default());
                if let Some(code) = &guard_code {
                    ctx.say("with the Steam Guard code given");
                    stdin.extend_from_slice(code.as_bytes());
                    stdin.push(b'\n');
                }
                agent::run(&conn, &call, &stdin, Some(&ctx)).await?;
                app.read_facts(&host).await?;
                Ok(())
            },
        )
    }

    // ---- overlays ---------------------------------------------------------------------

    /// Packs a folder from this computer and sends it into an overlay on a host, replacing
    /// what the overlay held there, as a job. Refused by the host while a running server
    /// uses the overlay.
    pub fn upload_overlay(
        self: &Arc<Self>,
        session: &Session,
        overlay_id: i64,
        host_id: i64,
        folder: &std::path::Path,
    ) -> Result<Job> {
        let me = self.store.actor(session)?;
        let overlay = self.store.overlay(session, overlay_id)?;
        let host = self.ready_host(host_id)?;
        let packed = crate::pack::pack_folder(folder)
            .map_err(|e| Error::Invalid(format!("cannot pack {}: {e}", folder.display())))?;
        self.store
            .set_upload_summary(session, overlay_id, packed.files, packed.bytes)?;
        let app = self.clone();
        self.jobs.submit(
            NewJob::on_host(
                JobKind::OverlayFill,
                me.id,
                host_id,
                format!("overlay {} on {}", overlay.name, host.name),
            ),
            move |ctx| async move {
                let host = app.store.host_by_id(host_id)?;
                let conn = app.connection(&host, Some(&ctx)).await?;
                ctx.say(&format!(
                    "sending {} files ({} bytes) into {}",
                    packed.files, packed.bytes, overlay.host_name
                ));
                let messages = agent::run(
                    &conn,
                    &AgentCall::overlay_import(&overlay.host_name),
                    &packed.archive,
                    Some(&ctx),
                )
                .await?;
                app.record_fill(&ctx, overlay.id, host_id, &messages)?;
                Ok(())
            },
        )
    }

    /// Fills an overlay on a host from its source (the Workshop items it lists), as a job.
    pub fn fill_overlay(
        self: &Arc<Self>,
        session: &Session,
        overlay_id: i64,
        host_id: i64,
    ) -> Result<Job> {
        let me = self.store.actor(session)?;
        let overlay = self.store.overlay(session, overlay_id)?;
        if overlay.global {
            me.require_admin("fill global overlays")?;
        }
        if !matches!(
            overlay.source,
            crate::overlays::OverlaySource::Workshop { .. }
                | crate::overlays::OverlaySource::Script { .. }
        ) {
            return Err(Error::Invalid(format!(
                "overlay {:?} is filled by {}, not by the host",
                overlay.name,
                match overlay.source {
                    crate::overlays::OverlaySource::Upload { .. } => "uploading a folder",
                    _ => "hand",
                }
            )));
        }
        let host = self.ready_host(host_id)?;
        let app = self.clone();
        self.jobs.submit(
            NewJob::on_host(
                JobKind::OverlayFill,
                me.id,
                host_id,
                format!("overlay {} on {}", overlay.name, host.name),
            ),
            move |ctx| async move {
                let host = app.store.host_by_id(host_id)?;
                let conn = app.connection(&host, Some(&ctx)).await?;
                app.run_fill(&ctx, &conn, host_id, &overlay).await
            },
        )
    }

    async fn run_fill(
        &self,
        ctx: &JobCtx,
        conn: &Connection,
        host_id: i64,
        overlay: &crate::overlays::Overlay,
    ) -> std::result::Result<(), JobFailure> {
        let messages = match &overlay.source {
            crate::overlays::OverlaySource::Workshop { items, collections } => {
                ctx.say(&format!(
                    "filling {} from the Workshop: {} items, {} collections",
                    overlay.host_name,
                    items.len(),
                    collections.len()
                ));
                let call = AgentCall::overlay_workshop(
                    &overlay.host_name,
                    items,
                    collections,
                    self.config.workshop_api.as_deref(),
                );
                agent::run(conn, &call, b"", Some(ctx)).await?
            }
            crate::overlays::OverlaySource::Script { script } => {
                ctx.say(&format!("filling {} by its script", overlay.host_name));
                let call = AgentCall::overlay_script(&overlay.host_name);
                agent::run(conn, &call, script.as_bytes(), Some(ctx)).await?
            }
            _ => {
                return Err(JobFailure::failed(format!(
                    "overlay {:?} has no source the host can fill it from",
                    overlay.name
                )));
            }
        };
        self.record_fill(ctx, overlay.id, host_id, &messages)
    }

    /// Records a finished fill; says when its servers will see it.
    fn record_fill(
        &self,
        ctx: &JobCtx,
        overlay_id: i64,
        host_id: i64,
        messages: &[AgentMessage],
    ) -> std::result::Result<(), JobFailure> {
        let pending = messages.iter().any(|m| match m {
            AgentMessage::OverlayFilled(f) => f.pending,
            AgentMessage::WorkshopDone(d) => d.pending,
            _ => false,
        });
        if pending {
            ctx.say(
                "a running server uses this overlay: the new content is staged, and each server \
                 that uses it switches at its next start or restart",
            );
        }
        self.store.record_fill(overlay_id, host_id, pending)?;
        Ok(())
    }

    /// Fills an overlay again on every host that has it (a refresh of its source), one job
    /// per host. Running servers keep what they have until their next start or restart.
    pub fn refresh_overlay(
        self: &Arc<Self>,
        session: &Session,
        overlay_id: i64,
    ) -> Result<Vec<Job>> {
        let overlay = self.store.overlay(session, overlay_id)?;
        if overlay.hosts.is_empty() {
            return Err(Error::Conflict(format!(
                "overlay {:?} is on no host yet: it is filled at the first start of a server that uses it",
                overlay.name
            )));
        }
        overlay
            .hosts
            .iter()
            .map(|h| self.fill_overlay(session, overlay_id, h.host_id))
            .collect()
    }

    /// The caller's servers that will switch to a refreshed overlay at their next start or
    /// restart: they use it on a host where a new version waits.
    pub fn pending_restarts(
        &self,
        session: &Session,
        overlay_id: i64,
    ) -> Result<Vec<crate::servers::Server>> {
        let overlay = self.store.overlay(session, overlay_id)?;
        let waiting: Vec<i64> = overlay
            .hosts
            .iter()
            .filter(|h| h.pending)
            .map(|h| h.host_id)
            .collect();
        let mut servers = Vec::new();
        for server in self.store.servers(session)? {
            if !waiting.contains(&server.host_id) {
                continue;
            }
            let uses = self
                .store
                .blueprint(session, server.blueprint_id)?
                .overlays
                .contains(&overlay.name);
            if uses {
                servers.push(server);
            }
        }
        Ok(servers)
    }

    async fn sync_overlays(
        &self,
        conn: &Connection,
        host_id: i64,
    ) -> std::result::Result<(), JobFailure> {
        let messages = agent::run(conn, &AgentCall::overlay_list(), b"", None).await?;
        let listed: Vec<(String, bool)> = messages
            .into_iter()
            .filter_map(|m| match m {
                AgentMessage::Overlays(list) => Some(list.overlays),
                _ => None,
            })
            .flatten()
            .map(|o| (o.name, o.pending))
            .collect();
        self.store.sync_pending(host_id, &listed)?;
        Ok(())
    }

    /// Makes sure every overlay of `spec` exists on the host: empty ones are created, ones
    /// with content must have been filled.
    async fn ensure_overlays(
        &self,
        ctx: &JobCtx,
        conn: &Connection,
        host: &Host,
        spec: &left4me_protocol::InstanceSpec,
    ) -> std::result::Result<(), JobFailure> {
        if spec.overlays.is_empty() {
            return Ok(());
        }
        // Read what the host has only once the start before this one is done filling.
        let lock = self.overlay_checks.get(host.id);
        let _turn = lock.lock().await;
        let messages = agent::run(conn, &AgentCall::overlay_list(), b"", None).await?;
        let present: Vec<String> = messages
            .into_iter()
            .find_map(|m| match m {
                AgentMessage::Overlays(list) => {
                    Some(list.overlays.into_iter().map(|o| o.name).collect())
                }
                _ => None,
            })
            .unwrap_or_default();
        for name in &spec.overlays {
            if present.iter().any(|p| p == name.as_str()) {
                continue;
            }
            match self.store.overlay_by_host_name(name.as_str())? {
                Some((_, _, crate::overlays::OverlaySource::Empty)) => {
                    ctx.say(&format!(
                        "creating the empty overlay {name} on {}",
                        host.name
                    ));
                    agent::run(conn, &AgentCall::overlay_create(name), b"", Some(ctx)).await?;
                }
                Some((
                    id,
                    _,
                    crate::overlays::OverlaySource::Workshop { .. }
                    | crate::overlays::OverlaySource::Script { .. },
                )) => {
                    let overlay = self.store.overlay_by_id(id)?;
                    ctx.say(&format!("overlay {name} is not on {} yet", host.name));
                    self.run_fill(ctx, conn, host.id, &overlay).await?;
                }
                Some((_, overlay, _)) => {
                    return Err(JobFailure::failed(format!(
                        "overlay {overlay:?} has no content on host {:?} yet: fill it there first",
                        host.name
                    )));
                }
                None => {
                    return Err(JobFailure::failed(format!(
                        "overlay {name} is missing on host {:?}",
                        host.name
                    )));
                }
            }
        }
        Ok(())
    }

    // ---- servers ----------------------------------------------------------------------

    pub fn start_server(self: &Arc<Self>, session: &Session, id: i64) -> Result<Job> {
        self.server_job(session, id, ServerAction::Start)
    }

    pub fn stop_server(self: &Arc<Self>, session: &Session, id: i64) -> Result<Job> {
        self.server_job(session, id, ServerAction::Stop)
    }

    pub fn restart_server(self: &Arc<Self>, session: &Session, id: i64) -> Result<Job> {
        self.server_job(session, id, ServerAction::Restart)
    }

    /// Deletes the server on its host, then from the model.
    pub fn delete_server(self: &Arc<Self>, session: &Session, id: i64) -> Result<Job> {
        self.server_job(session, id, ServerAction::Delete)
    }

    fn server_job(
        self: &Arc<Self>,
        session: &Session,
        id: i64,
        action: ServerAction,
    ) -> Result<Job> {
        let target = self.store.server_target(session, id)?;
        let host = self.ready_host(target.host_id)?;
        let kind = match action {
            ServerAction::Start => JobKind::Start,
            ServerAction::Stop => JobKind::Stop,
            ServerAction::Restart => JobKind::Restart,
            ServerAction::Delete => JobKind::Delete,
        };
        let app = self.clone();
        self.jobs.submit(
            NewJob::on_server(
                kind,
                target.owner,
                host.id,
                id,
                format!("server {} on {}", target.name, host.name),
            ),
            move |ctx| async move { app.run_server_action(&ctx, id, action).await },
        )
    }

    async fn run_server_action(
        &self,
        ctx: &JobCtx,
        id: i64,
        action: ServerAction,
    ) -> std::result::Result<(), JobFailure> {
        let target = self
            .store
            .server_target_by_id(id)?
            .ok_or_else(|| JobFailure::failed("the server no longer exists"))?;
        let host = self.store.host_by_id(target.host_id)?;
        let conn = self.connection(&host, Some(ctx)).await?;
        match action {
            ServerAction::Start | ServerAction::Restart => {
                // The blueprint as it is now: edits since the last action apply here.
                let spec = self.store.current_spec(&target)?;
                self.ensure_overlays(ctx, &conn, &host, &spec).await?;
                let password = self.rcon_password(id)?;
                let mut stdin = Zeroizing::new(format!("{}\n", password.as_str()).into_bytes());
                stdin.extend_from_slice(spec.to_yaml().as_bytes());
                agent::run(
                    &conn,
                    &AgentCall::initialize(&target.name),
                    &stdin,
                    Some(ctx),
                )
                .await?;
                self.store.set_applied_spec(id, &spec)?;
                let call = match action {
                    ServerAction::Start => AgentCall::start(&target.name),
                    _ => AgentCall::restart(&target.name),
                };
                agent::run(&conn, &call, b"", Some(ctx)).await?;
                // Its mount applied any staged overlay versions: take the host's word.
                self.sync_overlays(&conn, host.id).await?;
            }
            ServerAction::Stop => {
                agent::run(&conn, &AgentCall::stop(&target.name), b"", Some(ctx)).await?;
            }
            ServerAction::Delete => {
                agent::run(&conn, &AgentCall::delete(&target.name), b"", Some(ctx)).await?;
                self.store.remove_server_row(id)?;
                self.secrets
                    .delete(&SecretKey::RconPassword { server: id })
                    .map_err(|e| JobFailure::failed(crate::error::chain(&e)))?;
            }
        }
        Ok(())
    }

    /// The server's RCON password, made on first use and kept in the credential store.
    fn rcon_password(&self, server: i64) -> std::result::Result<Zeroizing<String>, JobFailure> {
        let key = SecretKey::RconPassword { server };
        let secret_error =
            |e: crate::secrets::SecretsError| JobFailure::failed(crate::error::chain(&e));
        if let Some(bytes) = self.secrets.get(&key).map_err(secret_error)? {
            return Ok(Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()));
        }
        let password = random_password(24)
            .map_err(|e| JobFailure::failed(format!("no randomness for a password: {e}")))?;
        self.secrets
            .set(&key, password.as_bytes())
            .map_err(secret_error)?;
        Ok(password)
    }

    /// Every server of the caller with its live state: one `list` per host, all hosts at
    /// once.
    pub async fn statuses(self: &Arc<Self>, session: &Session) -> Result<Vec<ServerLive>> {
        let servers = self.store.servers(session)?;
        let mut by_host: HashMap<i64, Vec<(i64, ServerName)>> = HashMap::new();
        for server in &servers {
            by_host
                .entry(server.host_id)
                .or_default()
                .push((server.id, server.name.clone()));
        }
        let mut calls = tokio::task::JoinSet::new();
        for host_id in by_host.keys().copied() {
            let host = self.store.host_by_id(host_id)?;
            let app = self.clone();
            calls.spawn(async move {
                let conn = app.connection(&host, None).await.map_err(|f| f.message);
                list_on(host_id, conn).await
            });
        }
        let mut answers: HashMap<i64, std::result::Result<Vec<ServerStatus>, String>> =
            HashMap::new();
        while let Some(done) = calls.join_next().await {
            let (host_id, answer) = done.map_err(|e| Error::Remote(e.to_string()))?;
            answers.insert(host_id, answer);
        }
        Ok(servers
            .iter()
            .map(|server| {
                let (state, status, error) = match &answers[&server.host_id] {
                    Err(error) => (LiveState::Unreachable, None, Some(error.clone())),
                    Ok(list) => match list.iter().find(|s| s.name == server.name.as_str()) {
                        Some(status) => {
                            (LiveState::from_status(status), Some(status.clone()), None)
                        }
                        None => (LiveState::NotCreated, None, None),
                    },
                };
                ServerLive {
                    server_id: server.id,
                    host_id: server.host_id,
                    state,
                    status,
                    error,
                }
            })
            .collect())
    }

    /// Live state pushed every `period` while the receiver lives: the caller's servers, as
    /// [`App::statuses`] reads them. The first update comes at once.
    pub fn status_feed(
        self: &Arc<Self>,
        session: &Session,
        period: std::time::Duration,
    ) -> Result<mpsc::Receiver<Result<Vec<ServerLive>>>> {
        self.store.actor(session)?;
        let (tx, rx) = mpsc::channel(2);
        let app = self.clone();
        let session = session.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = tx.closed() => return,
                }
                let update = app.statuses(&session).await;
                // A session that lost its rights ends the feed after saying so.
                let last = matches!(update, Err(Error::Unauthenticated(_)));
                if tx.send(update).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// Streams a server's console log: the last `lines`, then new ones as they come. The
    /// remote `logs --follow` stops when the receiver is dropped.
    pub async fn follow_logs(
        &self,
        session: &Session,
        id: i64,
        lines: u32,
    ) -> Result<mpsc::Receiver<LogLine>> {
        let target = self.store.server_target(session, id)?;
        let host = self.store.host_by_id(target.host_id)?;
        let conn = self
            .connection(&host, None)
            .await
            .map_err(|f| Error::Remote(f.message))?;
        let mut exec = conn
            .exec(&AgentCall::logs(&target.name, lines, true).command_line())
            .await
            .map_err(remote_error)?;
        exec.close_stdin().await.map_err(remote_error)?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            let mut buffer = agent::LineBuffer::default();
            loop {
                tokio::select! {
                    event = exec.next() => match event {
                        Ok(Some(ssh::ExecEvent::Stdout(data))) => {
                            for line in buffer.push(&data) {
                                if let Ok(envelope) = left4me_protocol::Envelope::parse(&line) {
                                    if let AgentMessage::LogLine(log) = envelope.message {
                                        if tx.send(log).await.is_err() {
                                            let _ = exec.terminate().await;
                                            return;
                                        }
                                    }
                                }
                            }
                        }
                        Ok(Some(ssh::ExecEvent::Stderr(_))) => {}
                        Ok(None) | Err(_) => return,
                    },
                    () = tx.closed() => {
                        let _ = exec.terminate().await;
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Runs a console command on a running server and returns its answer.
    pub async fn rcon(&self, session: &Session, id: i64, command: &str) -> Result<String> {
        let target = self.store.server_target(session, id)?;
        if command.trim().is_empty() || command.contains(['\n', '\r', '\0']) {
            return Err(Error::Invalid(
                "an RCON command is one non-empty line".into(),
            ));
        }
        let host = self.store.host_by_id(target.host_id)?;
        let conn = self
            .connection(&host, None)
            .await
            .map_err(|f| Error::Remote(f.message))?;
        let messages = agent::run(&conn, &AgentCall::rcon(&target.name, command), b"", None)
            .await
            .map_err(|e| Error::Remote(crate::error::chain(&e)))?;
        messages
            .into_iter()
            .find_map(|m| match m {
                AgentMessage::RconAnswer(a) => Some(a.answer),
                _ => None,
            })
            .ok_or_else(|| Error::Remote("the agent gave no RCON answer".into()))
    }
}

async fn list_on(
    host_id: i64,
    conn: std::result::Result<Arc<Connection>, String>,
) -> (i64, std::result::Result<Vec<ServerStatus>, String>) {
    let answer = match conn {
        Err(e) => Err(e),
        Ok(conn) => agent::run(&conn, &AgentCall::list(), b"", None)
            .await
            .map_err(|e| crate::error::chain(&e))
            .map(|messages| {
                messages
                    .into_iter()
                    .find_map(|m| match m {
                        AgentMessage::Servers(list) => Some(list.servers),
                        _ => None,
                    })
                    .unwrap_or_default()
            }),
    };
    (host_id, answer)
}

/// Runs a plain command and returns its stdout; for the few steps before the agent exists.
async fn run_text(conn: &Connection, command: &str) -> std::result::Result<String, JobFailure> {
    let out = conn
        .run(command, b"")
        .await
        .map_err(|e| connect_failure(e.into()))?;
    if out.status != Some(0) {
        return Err(JobFailure::failed(format!(
            "`{command}` failed on the host: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The app's own account of a step: a job line inside a job, nothing outside one.
fn say(ctx: Option<&JobCtx>, text: &str) {
    if let Some(ctx) = ctx {
        ctx.say(text);
    }
}

fn connect_failure(err: ConnectError) -> JobFailure {
    match err {
        ConnectError::Ssh(ssh::SshError::Lost { address }) => JobFailure::interrupted(format!(
            "the connection to {address} was lost during the job; the next action reconnects"
        )),
        other => JobFailure::failed(crate::error::chain(&other)),
    }
}

/// Says plainly what sudo refused.
fn sudo_failure(failure: AgentFailure, user: &str) -> JobFailure {
    if let AgentFailure::Agent { message, exit, .. } = &failure {
        let refused = if message.contains("a password is required") {
            Some(format!(
                "sudo on the host needs {user}'s password: give it for the set-up"
            ))
        } else if message.contains("incorrect password")
            || message.contains("no password was provided")
        {
            Some(format!("sudo refused the password given for {user}"))
        } else if message.contains("is not in the sudoers file")
            || message.contains("not allowed to execute")
        {
            Some(format!("{user} may not use sudo on the host"))
        } else {
            None
        };
        if let Some(message) = refused {
            return JobFailure {
                state: left4me_protocol::JobState::Failed,
                message,
                exit_code: exit.map(|e| e as i32),
                code: None,
            };
        }
    }
    failure.into()
}

fn remote_error(err: ssh::SshError) -> Error {
    Error::Remote(crate::error::chain(&err))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A password of letters and digits, safe in `server.cfg` and on a command line.
fn random_password(len: usize) -> std::result::Result<Zeroizing<String>, getrandom::Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut password = Zeroizing::new(String::with_capacity(len));
    let mut byte = [0u8; 1];
    while password.len() < len {
        getrandom::fill(&mut byte)?;
        // Rejection sampling keeps every character equally likely.
        if (byte[0] as usize) < 256 - 256 % ALPHABET.len() {
            password.push(ALPHABET[byte[0] as usize % ALPHABET.len()] as char);
        }
    }
    Ok(password)
}
