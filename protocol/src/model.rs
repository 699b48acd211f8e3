//! The app's model as the window sees it: what app-core's calls take and return, carried
//! over Tauri's IPC. Validation and rules live in app-core; these are the shapes.

use crate::agent::HostFacts;
use crate::names::{OverlayName, ServerName};
use crate::spec::LaunchParams;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An account as admins see it; never carries the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_ms: i64,
}

/// A host: shared by every user of the install, managed by admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub port: u16,
    /// The account with sudo used for set-up.
    pub admin_user: String,
    /// The confirmed host key (OpenSSH format); None until the user confirmed one.
    pub host_key: Option<String>,
    pub state: HostState,
    pub facts: Option<HostFacts>,
    /// The address its servers bind (srcds's `-ip`); all of the host's when None.
    #[serde(default)]
    pub bind_address: Option<std::net::Ipv4Addr>,
    /// Steam's public build of the game when the app last checked; None until then.
    #[serde(default)]
    pub public_build: Option<String>,
}

impl Host {
    /// Whether Steam has a build other than the installed one (known after a check).
    pub fn update_available(&self) -> bool {
        let installed = self
            .facts
            .as_ref()
            .and_then(|f| f.installed_build.as_deref());
        matches!((installed, self.public_build.as_deref()), (Some(i), Some(p)) if i != p)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    /// Added; not yet set up.
    New,
    /// Set up: the agent is installed and the app logs in as `left4me`.
    Ready,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewHost {
    pub name: String,
    pub address: String,
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    pub admin_user: String,
    /// The address its servers bind; all of the host's when None.
    #[serde(default)]
    pub bind_address: Option<std::net::Ipv4Addr>,
}

fn default_ssh_port() -> u16 {
    22
}

/// A host's key on first contact, for the admin to compare and confirm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKeyOffer {
    /// `SHA256:…`, as `ssh-keygen -lf` prints it on the host.
    pub fingerprint: String,
    /// The key itself, OpenSSH format; confirming stores exactly this.
    pub key: String,
}

/// What fills an overlay. The content itself lives on the hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OverlaySource {
    /// Filled by hand through imports; starts empty.
    Empty,
    /// Steam Workshop items and collections.
    Workshop {
        #[serde(default)]
        items: Vec<u64>,
        #[serde(default)]
        collections: Vec<u64>,
    },
    /// A shell script run on the host in an empty folder.
    Script { script: String },
    /// A folder uploaded from this computer.
    Upload { files: u64, bytes: u64 },
}

impl OverlaySource {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Workshop { .. } => "workshop",
            Self::Script { .. } => "script",
            Self::Upload { .. } => "upload",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlay {
    pub id: i64,
    /// The name blueprints use.
    pub name: String,
    /// Shared by all users and managed by admins.
    pub global: bool,
    /// The folder's name on hosts.
    pub host_name: OverlayName,
    pub source: OverlaySource,
    pub description: String,
    /// The caller's blueprints that use it.
    pub used_by: Vec<String>,
    pub updated_ms: i64,
    /// The hosts that have its content.
    #[serde(default)]
    pub hosts: Vec<OverlayHost>,
}

/// An overlay's content on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayHost {
    pub host_id: i64,
    pub host: String,
    /// When the host last filled it.
    pub filled_ms: i64,
    /// A newer version waits there for the next start of the servers that use it.
    pub pending: bool,
    /// The servers there that run an older version than their next start would mount.
    #[serde(default)]
    pub behind: Vec<String>,
}

impl OverlayHost {
    /// A newer version than some of its servers run waits there for their restart.
    pub fn waits_for_restart(&self) -> bool {
        self.pending || !self.behind.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOverlay {
    pub name: String,
    /// Make it global (admins only).
    #[serde(default)]
    pub global: bool,
    pub source: OverlaySource,
    #[serde(default)]
    pub description: String,
}

/// A blueprint as the user writes it: overlays by name, top first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueprintDraft {
    pub name: String,
    #[serde(default)]
    pub overlays: Vec<String>,
    pub launch: LaunchParams,
    #[serde(default)]
    pub cvars: BTreeMap<String, String>,
    /// Whether the host restarts a server that hangs (runs, but answers nothing).
    #[serde(default)]
    pub restart_when_hung: bool,
    /// Whether its servers go first when a game update rolls across their host.
    #[serde(default)]
    pub rollout_canary: bool,
    /// The resource limits of its servers' units.
    #[serde(default)]
    pub limits: crate::limits::Limits,
}

impl BlueprintDraft {
    /// Where a new blueprint starts: the first campaign's first map for a full co-op lobby,
    /// nothing else set.
    pub fn coop(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            overlays: Vec::new(),
            launch: LaunchParams {
                map: crate::names::MapName::new("c1m1_hotel").expect("a valid map name"),
                max_players: 8,
                tickrate: 30,
                flags: Vec::new(),
            },
            cvars: BTreeMap::new(),
            restart_when_hung: false,
            rollout_canary: false,
            limits: Default::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blueprint {
    pub id: i64,
    pub name: String,
    /// Overlay names, top first.
    pub overlays: Vec<String>,
    pub launch: LaunchParams,
    pub cvars: BTreeMap<String, String>,
    #[serde(default)]
    pub restart_when_hung: bool,
    #[serde(default)]
    pub rollout_canary: bool,
    #[serde(default)]
    pub limits: crate::limits::Limits,
    /// The servers linked to it.
    pub servers: Vec<LinkedServer>,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedServer {
    pub id: i64,
    pub name: String,
    pub host: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    pub id: i64,
    pub name: ServerName,
    pub host_id: i64,
    pub host: String,
    pub blueprint_id: i64,
    pub blueprint: String,
    pub port: u16,
    /// The UDP port srcds uses as a client, and SourceTV's: handed out by the app when the
    /// server is created, so that no two servers on a host share one. None for servers made
    /// before, whose host picks them.
    #[serde(default)]
    pub client_port: Option<u16>,
    #[serde(default)]
    pub tv_port: Option<u16>,
    /// The host's physical cores this server is pinned to (its own choice, not its
    /// blueprint's: two servers of one blueprint want different cores). Empty: not pinned.
    #[serde(default)]
    pub cores: Vec<u32>,
    /// The blueprint changed since the host last received this server's spec; the next
    /// start or restart applies it.
    pub pending_changes: bool,
}

/// Where a blueprint's new limits went: servers whose only change was the limits get them
/// now (at once while they run, a job each); the others' limits wait for their restart,
/// with their other changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsNow {
    pub now: Vec<String>,
    pub at_restart: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewServer {
    pub name: String,
    pub host_id: i64,
    pub blueprint_id: i64,
    pub port: u16,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFilter {
    pub host_id: Option<i64>,
    pub server_id: Option<i64>,
    pub state: Option<crate::ipc::JobState>,
    pub limit: Option<u32>,
}

/// How the app logs in to a host for its set-up (before `left4me` exists there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum SetupLogin {
    /// The account's password, for SSH and for sudo.
    Password { password: String },
    /// A private key file on this computer, with its passphrase if it has one.
    KeyFile {
        path: String,
        passphrase: Option<String>,
    },
    /// The ssh-agent the app was started with.
    Agent,
}

/// Sets a host up: deploys the agent, runs its set-up with sudo, authorises the app's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupRequest {
    pub host_id: i64,
    pub login: SetupLogin,
    /// sudo's password if it differs from the login password (or the login is by key).
    pub sudo_password: Option<String>,
    /// Keep the sudo password in this computer's credential store for the next set-up.
    #[serde(default)]
    pub remember: bool,
}

/// Lines of a followed server log (`log_lines`), as many as came since the window last
/// asked: a flood of thousands of lines a second costs one answer a frame, not thousands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPoll {
    pub lines: Vec<crate::agent::LogLine>,
    /// The follow is over: its host connection ended, or `stop_logs` or a newer follow of
    /// the same server ended it. No more lines come.
    pub ended: bool,
}

/// Something a host recorded on its own (a crash, a server systemd gave up on, a
/// notification it could not send), as the app keeps it once read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEventRow {
    pub id: i64,
    pub host_id: i64,
    pub host: String,
    pub event: crate::events::HostEvent,
    /// Whether someone marked it as seen on the dashboard.
    pub dismissed: bool,
}

/// What happened on the hosts: "while you were away".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEventsReport {
    /// Newest first.
    pub events: Vec<HostEventRow>,
    /// Events the hosts dropped (their retention) before the app read them.
    pub missed: u64,
    /// How long the hosts keep events for the app to read, in days (the shortest of them);
    /// `None` before the app read any host's events.
    pub retention_days: Option<u32>,
}

/// A notification target as the window lists it: no URL past its origin, no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyTargetInfo {
    pub id: i64,
    pub name: String,
    pub kind: crate::agent::NotifyKind,
    /// `https://discord.com`: where messages go.
    pub endpoint: String,
}

/// One of a server's backups on its host, and whether this computer keeps a copy of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerBackup {
    #[serde(flatten)]
    pub info: crate::backup::BackupInfo,
    /// A copy is in the app's data folder (`backups/<host>/<server>/`).
    pub on_this_computer: bool,
}
