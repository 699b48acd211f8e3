//! The app's actions on hosts, one file per area as in src-tauri's `commands/<area>.rs`:
//! [`setup`] deploys the agent, [`hosts`] reads facts and installs the game, [`overlays`]
//! fills overlays, [`servers`] runs server lifecycles, [`live`] reads status, logs and RCON.
//!
//! [`login`] holds how a set-up logs in.
//!
//! Everything here is async and runs on the caller's tokio runtime. Every action that
//! changes a host is a job; a job on a host starts through [`App::host_job`], which opens
//! the host's connection through [`App::connection`] (redeploying an outdated agent).
//! The decisions these actions make are plain functions beside them, with table tests.

mod backups;
mod hosts;
mod live;
mod login;
mod notify;
mod overlays;
mod rollouts;
mod schedules;
mod servers;
mod setup;

pub use login::SetupLogin;

use crate::agent;
use crate::connections::{self, ConnectError, Connections};
use crate::error::{Error, Result};
use crate::hosts::{Host, HostState};
use crate::jobs::{JobCtx, JobFailure, Jobs, NewJob};
use crate::remote::AgentCall;
use crate::secrets::{SecretKey, Secrets};
use crate::ssh::{self, Connection};
use crate::store::Store;
use left4me_protocol::agent::HostFacts;
use left4me_protocol::{AgentMessage, AppEvent, Job};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::broadcast;
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
    /// How often a host's backups are looked at for copies this computer lacks (every ten
    /// minutes if unset).
    pub backup_pull_every: Option<std::time::Duration>,
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
    /// Hosts that could not take the notification targets lately.
    notify_retry: Backoff,
    /// When each host's backups were last looked at for copies this computer lacks.
    backup_pulls: backups::Pulls,
}

/// When a per-host step that failed may be tried again: a minute later.
#[derive(Default)]
struct Backoff(std::sync::Mutex<HashMap<i64, std::time::Instant>>);

impl Backoff {
    const WAIT: std::time::Duration = std::time::Duration::from_secs(60);

    fn due(&self, host_id: i64) -> bool {
        let failed = self.0.lock().unwrap_or_else(|p| p.into_inner());
        failed
            .get(&host_id)
            .is_none_or(|at| at.elapsed() >= Self::WAIT)
    }

    fn failed(&self, host_id: i64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host_id, std::time::Instant::now());
    }
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
            notify_retry: Backoff::default(),
            backup_pulls: backups::Pulls::default(),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where this install's secrets are kept.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
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

    /// Submits `work` as a job on the lane of `new`'s host. When the job's turn comes it
    /// reads the host again and opens its connection, then hands both to `work`.
    fn host_job<F, Fut>(self: &Arc<Self>, new: NewJob, work: F) -> Result<Job>
    where
        F: FnOnce(Arc<Self>, JobCtx, Host, Arc<Connection>) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<(), JobFailure>> + Send + 'static,
    {
        let host_id = new.host_id.expect("a host job names its host");
        let app = self.clone();
        self.jobs.submit(new, move |ctx| async move {
            let host = app.store.host_by_id(host_id)?;
            let conn = app.connection(&host, Some(&ctx)).await?;
            work(app, ctx, host, conn).await
        })
    }

    /// The host's connection as `left4me`. An agent that speaks another protocol is
    /// replaced first when the host's set-up login is remembered.
    async fn connection(
        &self,
        host: &Host,
        ctx: Option<&JobCtx>,
    ) -> std::result::Result<Arc<Connection>, JobFailure> {
        match self.connections.get(host).await {
            Err(mismatch @ ConnectError::AgentMismatch { .. }) => {
                self.redeploy(host, ctx, mismatch).await
            }
            other => other.map_err(connect_failure),
        }
    }

    /// A secret kept as text, for a job.
    fn secret_text(
        &self,
        key: &SecretKey,
    ) -> std::result::Result<Option<Zeroizing<String>>, JobFailure> {
        Ok(self.secrets.get_text(key)?)
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

    /// Reads the host's facts through the agent and keeps them.
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

fn remote_error(err: ssh::SshError) -> Error {
    Error::Remote(crate::error::chain(&err))
}
