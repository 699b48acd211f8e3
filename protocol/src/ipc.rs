//! Messages between the Tauri shell and the Yew UI: the events it pushes, typed by their
//! payloads, and what commands answer.
//!
//! Every command returns `Result<T, IpcError>`; the UI branches on [`ErrorCode`], never on
//! message text.

use serde::{Deserialize, Serialize};

/// A failed command as the UI receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpcError {
    pub code: ErrorCode,
    pub message: String,
}

impl IpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for IpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IpcError {}

/// What kind of failure an [`IpcError`] is; closed so the UI can match on it exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The UI runs outside the desktop app (a plain browser): there is no backend.
    NoBackend,
    /// The backend's answer did not have the expected shape (UI and app out of step).
    BadResponse,
    /// The input was rejected; nothing changed.
    InvalidInput,
    /// The thing asked for does not exist (or is not the caller's).
    NotFound,
    /// Valid, but the current state forbids it (a port taken, a blueprint in use).
    Conflict,
    /// The logged-in user may not do this.
    Forbidden,
    /// Not logged in, wrong credentials, or the account was disabled.
    Unauthenticated,
    /// Too many failed logins; wait before trying again.
    RateLimited,
    /// A host could not be reached or its agent failed; the message says which and why.
    Remote,
    /// The local database failed.
    Storage,
    /// Secrets are in the local vault, which is not open yet (or not made yet): the window
    /// asks for its passphrase ([`SecretStore`]).
    VaultLocked,
    /// Anything else; the message says what.
    Internal,
}

/// Where the app keeps its secrets, and what the window must ask for before it can start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SecretStore {
    /// The OS credential store, by its name ("Secret Service over D-Bus").
    Os { name: String },
    /// No OS credential store answers and no vault exists yet: the admin may make one.
    NoStore { reason: String },
    /// The local vault exists and waits for its passphrase; `reason` says why the OS store
    /// is not used, when it does not answer.
    Locked { reason: Option<String> },
    /// The local vault is open; `os_store` says whether the OS store now answers, so its
    /// secrets could move there.
    Vault { os_store: bool },
}

/// Facts about the running app, shown on the About screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppFacts {
    /// The app's package version.
    pub app_version: String,
    /// The agent protocol version this app speaks.
    pub protocol_version: u32,
    /// Absolute path of the app's SQLite file.
    pub database_path: String,
    /// The number of migrations applied to that file.
    pub schema_version: u32,
    /// Whether the app raises desktop notifications (crash loops, silent hosts, failed
    /// jobs).
    pub notifications: bool,
    /// The app's own log file, for bug reports.
    pub log_path: String,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    /// Cut short by something outside it: the app quit, or the host's connection was lost.
    Interrupted,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Interrupted,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Deploy the agent and set the host up.
    SetUp,
    /// Install or update the base game.
    Install,
    Start,
    Stop,
    Restart,
    Delete,
    /// Fill an overlay on a host (workshop, script, upload).
    OverlayFill,
    /// Forget the Steam login steamcmd cached on a host.
    ForgetSteamLogin,
    /// Back a server up on its host, and keep a copy on this computer.
    Backup,
    /// Put one of a server's backups in place of its files.
    Restore,
    /// Give a server its blueprint's new limits, in force at once while it runs.
    Limits,
    /// Hand a host's running servers their changed specs, and have the host restart them
    /// one at a time.
    Changes,
}

impl JobKind {
    /// What the job does, as a person says it: "Installing the game".
    pub fn doing(self) -> &'static str {
        match self {
            Self::SetUp => "Setting up",
            Self::Install => "Installing the game",
            Self::Start => "Starting",
            Self::Stop => "Stopping",
            Self::Restart => "Restarting",
            Self::Delete => "Deleting",
            Self::OverlayFill => "Filling an overlay",
            Self::ForgetSteamLogin => "Forgetting the Steam login",
            Self::Backup => "Backing up",
            Self::Restore => "Restoring",
            Self::Limits => "Setting limits",
            Self::Changes => "Restarting with changes",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SetUp => "set_up",
            Self::Install => "install",
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
            Self::Delete => "delete",
            Self::OverlayFill => "overlay_fill",
            Self::ForgetSteamLogin => "forget_steam_login",
            Self::Backup => "backup",
            Self::Restore => "restore",
            Self::Limits => "limits",
            Self::Changes => "changes",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::SetUp,
            Self::Install,
            Self::Start,
            Self::Stop,
            Self::Restart,
            Self::Delete,
            Self::OverlayFill,
            Self::ForgetSteamLogin,
            Self::Backup,
            Self::Restore,
            Self::Limits,
            Self::Changes,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: i64,
    pub kind: JobKind,
    pub state: JobState,
    pub host_id: Option<i64>,
    pub server_id: Option<i64>,
    /// What it acts on, in words (kept when the host or server is gone).
    pub target: String,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    /// The agent's exit code, when it ran and ended.
    pub exit_code: Option<i32>,
    /// Why it did not succeed.
    pub error: Option<String>,
    /// The agent's code for that failure, for the window to branch on (a Steam Guard code
    /// to ask for, …).
    #[serde(default)]
    pub error_code: Option<crate::agent::AgentErrorCode>,
}

/// One thing a job printed or reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    pub id: i64,
    pub job_id: i64,
    pub at_ms: i64,
    pub data: JobEventData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobEventData {
    /// A line of output: `stdout`/`stderr` of the remote command, or `app` for the app's
    /// own account of what it does.
    Line { stream: String, text: String },
    /// steamcmd's progress during an install.
    Progress(crate::agent::InstallProgress),
    /// Bytes of one Workshop item's download so far.
    WorkshopProgress(crate::agent::WorkshopProgress),
    /// One Workshop item finished: downloaded, unchanged or failed.
    WorkshopItem(crate::agent::WorkshopItem),
}

/// A server's live state as its host reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerLive {
    pub server_id: i64,
    pub host_id: i64,
    pub state: LiveState,
    /// The agent's full status, when the host answered and knows the server.
    pub status: Option<crate::agent::ServerStatus>,
    /// Why the state is `unreachable`.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveState {
    Running,
    Starting,
    Stopping,
    Stopped,
    /// systemd keeps restarting it after crashes.
    CrashLooping,
    /// It gave up: failed, or stopped by its start limit.
    Failed,
    /// Not on its host yet: it was never started.
    NotCreated,
    /// The host did not answer.
    Unreachable,
}

impl LiveState {
    /// Reads systemd's states as the agent reports them.
    pub fn from_status(status: &crate::agent::ServerStatus) -> Self {
        match (status.active_state.as_str(), status.sub_state.as_str()) {
            (_, "auto-restart") => Self::CrashLooping,
            ("active", _) | ("reloading", _) => Self::Running,
            ("activating", _) => Self::Starting,
            ("deactivating", _) => Self::Stopping,
            ("failed", _) => Self::Failed,
            _ => Self::Stopped,
        }
    }
}

/// What the app pushes to the window as it happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AppEvent {
    /// A job was queued, started or finished.
    Job(Job),
    /// A job printed or reported something.
    JobEvent(JobEvent),
    /// The app read events a host recorded on its own (newest first). (A struct variant:
    /// a tagged newtype variant cannot hold a sequence.)
    HostEvents {
        rows: Vec<crate::model::HostEventRow>,
    },
}

/// An event the app pushes to the window: its name, typed by its payload, so that the
/// emitter and the listener cannot disagree on either.
pub struct Event<T> {
    pub name: &'static str,
    payload: std::marker::PhantomData<fn() -> T>,
}

impl<T> Event<T> {
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            payload: std::marker::PhantomData,
        }
    }
}

impl<T> Clone for Event<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Event<T> {}

impl<T> PartialEq for Event<T> {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl<T> std::fmt::Debug for Event<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Jobs queued, started, ended and what they report, for the jobs the user may see.
pub const APP_EVENT: Event<AppEvent> = Event::new("app-event");
/// Every server's live state (`watch_statuses`), or why it could not be read.
pub const STATUS_EVENT: Event<Result<Vec<ServerLive>, IpcError>> = Event::new("server-status");

/// The window was asked to close while jobs had not ended; it stays open until the user
/// keeps it or closes it anyway (`close_anyway`).
pub const CLOSE_EVENT: Event<JobsToCut> = Event::new("close-requested");

/// The jobs closing the app would cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobsToCut {
    /// Those the logged-in user may see.
    pub jobs: Vec<Job>,
    /// How many more, of other accounts (or started before a logout).
    pub others: usize,
}

/// The events above, for the test that no two share a name.
pub const EVENTS: &[&str] = &[APP_EVENT.name, STATUS_EVENT.name, CLOSE_EVENT.name];

#[cfg(test)]
mod tests {
    #[test]
    fn every_event_has_a_name_of_its_own() {
        let mut names = super::EVENTS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), super::EVENTS.len());
    }
}
