//! The agent's JSON output: every document or JSON Lines record is an [`Envelope`] that
//! carries the protocol version and a `type` tag.
//!
//! Compatibility rule: adding a message type or an optional field keeps
//! [`PROTOCOL_VERSION`]; anything a reader of the old version would misread bumps it.
//! Readers skip message types they do not know ([`AgentMessage::Unknown`]).

use serde::{Deserialize, Serialize};

/// The version of the agent wire format spoken by this build.
pub const PROTOCOL_VERSION: u32 = 1;

/// One message on the wire: `{"v":1,"type":"version",…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    #[serde(flatten)]
    pub message: AgentMessage,
}

impl Envelope {
    pub fn new(message: AgentMessage) -> Self {
        Self {
            v: PROTOCOL_VERSION,
            message,
        }
    }

    /// Serialises to one line of JSON without a trailing newline.
    pub fn to_line(&self) -> String {
        // Serialising these plain types cannot fail: no maps with non-string keys, no floats
        // that JSON cannot carry.
        serde_json::to_string(self).expect("envelope serialises to JSON")
    }

    /// Parses one line, refusing a protocol version newer than this build understands.
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            v: u32,
        }
        let VersionOnly { v } = serde_json::from_str(line).map_err(ParseError::Json)?;
        if v > PROTOCOL_VERSION {
            return Err(ParseError::UnsupportedVersion {
                found: v,
                supported: PROTOCOL_VERSION,
            });
        }
        serde_json::from_str(line).map_err(ParseError::Json)
    }
}

/// What an agent message says. The tag is the `type` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    Version(VersionReport),
    /// `facts`: what the host is and has.
    Facts(HostFacts),
    Error(AgentError),
    /// A write command finished; `changed` is false when there was nothing to do.
    Done(DoneReport),
    /// `list`: the servers initialised on the host.
    Servers(ServerList),
    /// `overlay list`: the overlays on the host.
    Overlays(OverlayList),
    /// `status <name>`: one server's state.
    Status(ServerStatus),
    /// `install`: one of steamcmd's progress lines (a stream of these precedes `installed`).
    InstallProgress(InstallProgress),
    /// `install`: a step between progress lines worth telling (a wait, a retry).
    InstallNotice(InstallNotice),
    /// `install` finished.
    Installed(Installed),
    /// `install --check`: whether Steam has a newer public build.
    UpdateCheck(UpdateCheck),
    /// `logs`: one line of a server's console (JSON Lines, oldest first).
    LogLine(LogLine),
    /// `rcon`: a console command's answer.
    RconAnswer(RconAnswer),
    /// `overlay import|script`: the overlay's new content is in place, or staged.
    OverlayFilled(OverlayFilled),
    /// `overlay script`: a line the script printed.
    ScriptLine(ScriptLine),
    /// `overlay workshop`: bytes of one item's download so far.
    WorkshopProgress(WorkshopProgress),
    /// `overlay workshop`: one item finished (downloaded, unchanged or failed).
    WorkshopItem(WorkshopItem),
    /// `overlay workshop` finished; failed items are listed, the others are in place.
    WorkshopDone(WorkshopDone),
    /// `events`: the host's outbox after the sequence number asked for.
    Events(HostEvents),
    /// `notify list|set`: the notification targets, without their secrets.
    NotifyTargets(NotifyTargets),
    /// `notify test`: one target's answer to a test message (a record per target).
    NotifyTested(NotifyTested),
    /// `schedule list|set`: the host's schedules, their next runs and their last.
    Schedules(crate::schedule::ScheduleList),
    /// `schedule preview`: a calendar's next runs as the host reads it.
    SchedulePreview(crate::schedule::SchedulePreview),
    /// `schedule run`: how a run went on one server (a record per server).
    ScheduleRan(crate::schedule::ScheduleRan),
    /// `backup create|verify`: one backup of a server.
    Backup(crate::backup::BackupInfo),
    /// `backup list`: a server's backups.
    Backups(crate::backup::BackupList),
    /// `backup prune`: what retention kept and removed.
    BackupPruned(crate::backup::BackupPruned),
    /// `rollout status|start|pause|back`: the host's builds, which servers run which, and
    /// its game update rollout.
    Builds(crate::rollout::Builds),
    /// A message type added by a newer agent; readers ignore it.
    #[serde(other)]
    Unknown,
}

/// The answer to `l4d2-agent version --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionReport {
    /// The agent's package version, e.g. `0.1.0`.
    pub agent_version: String,
    /// CPU architecture the binary was built for (`x86_64`).
    pub arch: String,
    /// Whether the binary needs no shared libraries on the host.
    pub static_binary: bool,
    /// What this agent can do beyond the contract's commands, for the app to check.
    #[serde(default)]
    pub features: Vec<String>,
}

/// `l4d2-agent facts`: the host as the app shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HostFacts {
    /// `PRETTY_NAME` from os-release, e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub os: String,
    pub kernel: String,
    pub arch: String,
    /// The CPU model as /proc/cpuinfo names it.
    pub cpu: String,
    pub cpus: u32,
    pub memory_bytes: u64,
    /// Free and total bytes of the file system that holds the left4me root.
    pub disk_free_bytes: u64,
    pub disk_total_bytes: u64,
    /// The base install's Steam build id; absent until the game is installed.
    pub installed_build: Option<String>,
    pub agent_version: String,
    /// Whether the host can run the game; None from an agent that did not say.
    #[serde(default)]
    pub readiness: Option<GameReadiness>,
    /// The physical cores, numbered from 0, each with the CPU numbers of its hardware
    /// threads: what a server can be pinned to. Empty from an agent that did not say.
    #[serde(default)]
    pub cores: Vec<Vec<u32>>,
    /// Why servers on this host cannot be pinned to cores (its cgroup version or
    /// controllers); None where they can.
    #[serde(default)]
    pub pinning_refused: Option<String>,
}

/// What the game needs from a host, as `facts` found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GameReadiness {
    /// The i386 loader, libstdc++ and libgcc_s that the 32-bit `srcds_linux` links to.
    pub runtime_32bit: bool,
    /// Whether `setup` found, by mounting them, that the kernel layers overlayfs over
    /// idmapped mounts; None when it has not probed the running kernel.
    pub mounts_probed: Option<bool>,
    /// Each thing that stands in the way, in a sentence that says how to fix it. Empty when
    /// the host can run the game.
    pub problems: Vec<String>,
}

impl GameReadiness {
    pub fn can_run_game(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The outcome of a write command such as `initialize`, `mount` or `overlay create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneReport {
    /// The command, e.g. `initialize`.
    pub action: String,
    /// What it acted on, e.g. the server's name.
    pub target: String,
    /// Whether anything changed on the host.
    pub changed: bool,
}

/// `list`: every server on the host with its state, as `status` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerList {
    pub servers: Vec<ServerStatus>,
    /// The newest sequence number in the host's outbox (`events`), so a reader knows
    /// whether there is anything new to read; absent from agents without an outbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_last: Option<u64>,
}

/// One server's state: systemd's view, its mounts, and the game's own answer when it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub name: String,
    pub port: u16,
    /// The map the spec starts with (the live one is in `live`).
    pub map: String,
    /// Overlays from top to bottom.
    pub overlays: Vec<String>,
    /// systemd's ActiveState: `active`, `inactive`, `failed`, `activating`, …
    pub active_state: String,
    /// systemd's SubState: `running`, `dead`, `auto-restart`, …
    pub sub_state: String,
    /// How the last run ended: `success`, `exit-code`, `start-limit-hit`, …
    pub result: String,
    pub main_pid: Option<u32>,
    /// When it last became active, as systemd prints it.
    pub since: Option<String>,
    /// How often systemd restarted it after a crash.
    pub restarts: u32,
    pub mounted: bool,
    /// The build id of the base install, when it is installed.
    pub installed_build: Option<String>,
    /// The server's A2S_INFO answer, when it runs and answers.
    pub live: Option<LiveInfo>,
    /// It runs, and a restart would change it: its spec changed since it started in what
    /// only a start applies (not its limits, which reach it at once), or one of its overlays
    /// has new content since it mounted it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart_applies: bool,
    /// `status` of one running server: its cgroup's figures and its limits in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Box<crate::limits::Usage>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveInfo {
    pub name: String,
    pub map: String,
    pub players: u8,
    pub max_players: u8,
    /// The game's version (`PatchVersion`), as A2S_INFO tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Who is on, from A2S_PLAYER; asked only when `players` is not zero.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub player_list: Vec<LivePlayer>,
}

/// One entry of a server's A2S_PLAYER answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivePlayer {
    /// Empty while the player is still connecting.
    pub name: String,
    pub score: i32,
    /// Seconds since the player connected.
    pub seconds: u32,
}

/// steamcmd's progress, as it reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallProgress {
    /// Which steamcmd run this is (anonymous installs take two), from 1.
    pub pass: u32,
    pub passes: u32,
    /// The platform steamcmd was told to fetch in this pass.
    pub platform: String,
    /// steamcmd's update state, e.g. 0x61.
    pub state_code: u32,
    /// Its name, e.g. `downloading`, `verifying update`.
    pub state: String,
    pub percent: f64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// `install --check`: the installed build against Steam's public one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateCheck {
    /// None until the game is installed.
    pub installed_build: Option<String>,
    /// The public branch's build id, as Steam's app info gives it now.
    pub public_build: String,
    /// Whether installing now would change the game: a newer build, or none yet.
    pub update_available: bool,
}

/// What an install is doing between progress lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallNotice {
    pub kind: InstallNoticeKind,
    /// The same for people.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallNoticeKind {
    /// The login waits for the owner's approval in the Steam app on their phone.
    WaitingForApproval,
    /// The owner approved the login.
    Approved,
    /// steamcmd failed in a way that often clears; it runs again shortly.
    Retrying,
    /// Anonymous installs need the Windows files first: more passes follow.
    PlatformWorkaround,
    /// Servers run from the install: the update is built beside it, for their next start.
    BuildingBeside,
    /// A notice from a newer agent.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// The build id of the base install now.
    pub build: String,
    /// The build before, if the game was installed.
    pub previous_build: Option<String>,
    /// Whether the build changed: servers pick it up at their next restart.
    pub changed: bool,
    /// Whether steamcmd's Steam client library was put where the servers load it from;
    /// without it they run without Steam (no VAC, not listed on the master server).
    #[serde(default = "yes")]
    pub steam_client: bool,
    /// Servers had the install mounted, so the update was built beside it: each switches
    /// to it at its next start, and the others keep the build they run until then.
    #[serde(default)]
    pub pending: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptLine {
    /// `stdout` or `stderr`.
    pub stream: String,
    pub line: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkshopProgress {
    pub id: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// What became of one Workshop item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkshopItem {
    pub id: u64,
    pub title: String,
    /// Its VPK's name in `left4dead2/addons/`, when it has one.
    pub file: Option<String>,
    pub bytes: u64,
    pub outcome: WorkshopOutcome,
    /// Why it failed.
    pub reason: Option<String>,
    /// Items finished so far, of all items.
    pub items_done: u32,
    pub items_total: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkshopOutcome {
    Downloaded,
    /// `time_updated` did not change since the last download: kept.
    Unchanged,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkshopDone {
    pub overlay: String,
    pub downloaded: u32,
    pub unchanged: u32,
    /// Items removed because they are no longer listed.
    pub removed: u32,
    pub failed: Vec<WorkshopFailure>,
    /// The overlay's size now.
    pub bytes: u64,
    /// Staged for the next start of its servers (one of them runs now).
    #[serde(default)]
    pub pending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkshopFailure {
    /// An item's id, or a collection's.
    pub id: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RconAnswer {
    pub command: String,
    pub answer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When journald received it, RFC 3339 in UTC with microseconds.
    pub timestamp: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayList {
    pub overlays: Vec<OverlaySummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlaySummary {
    pub name: String,
    /// Regular files in it.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
    /// New content is staged beside it, for the next start of a server that uses it.
    #[serde(default)]
    pub pending: bool,
    /// The mounted servers that run an older version of it than their next start would
    /// mount: all that use it while new content is staged, and afterwards those mounted
    /// before it was applied. Each switches at its next start or restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub behind: Vec<String>,
}

/// An overlay was filled (imported, or made by its script).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayFilled {
    pub overlay: String,
    /// A running server uses the overlay, so the new content was staged beside the old; each
    /// server that uses it switches at its next start or restart.
    pub pending: bool,
    pub bytes: u64,
}

/// `events`: what the host's outbox holds after the sequence number asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEvents {
    /// Oldest first.
    pub events: Vec<crate::events::HostEvent>,
    /// The oldest event the host still keeps (0 while it keeps none): a reader whose last
    /// seen event is older missed the ones between, dropped by retention.
    pub first_kept: u64,
    /// The newest sequence number the host has given (0 before its first event).
    pub last: u64,
    /// How long the host keeps events.
    pub retention: Retention,
}

/// The outbox keeps events for `days`, and at most `events` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub days: u32,
    pub events: u32,
}

/// Where a host sends notifications, as the app gives them to `notify set` on stdin.
/// Secrets live only here (and in the host's 0600 copy); `Debug` leaves them out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyTarget {
    /// A name for people and for `notify test <name>`: lower-case letters, digits and `-`.
    pub name: String,
    pub kind: NotifyKind,
    /// Discord: the webhook URL (its token is in it). Webhook: where to POST. ntfy: the
    /// topic's URL. Gotify: the server's URL.
    pub url: String,
    /// Webhook: the shared secret that signs each body (HMAC-SHA256). ntfy: an access token
    /// (optional). Gotify: the application token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl std::fmt::Debug for NotifyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyTarget")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &"<secret>")
            .field("secret", &self.secret.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    /// A Discord channel's webhook: messages as embeds.
    Discord,
    /// Any HTTPS endpoint: the event as JSON, signed with the shared secret.
    Webhook,
    /// An ntfy topic (ntfy.sh or self-hosted).
    Ntfy,
    /// A Gotify server.
    Gotify,
}

impl NotifyKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Discord => "Discord",
            Self::Webhook => "webhook",
            Self::Ntfy => "ntfy",
            Self::Gotify => "Gotify",
        }
    }
}

/// `notify list|set`: the targets, each with only the scheme and host of its URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyTargets {
    pub targets: Vec<NotifyTargetSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyTargetSummary {
    pub name: String,
    pub kind: NotifyKind,
    /// `https://discord.com`: where messages go, without path or token.
    pub endpoint: String,
}

/// `notify test`: how one target took the test message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyTested {
    pub target: String,
    pub delivered: bool,
    /// The target's answer (`HTTP 204`), or why it was not delivered.
    pub detail: String,
}

/// A failed command, as the last record of its output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentError {
    pub code: AgentErrorCode,
    pub message: String,
}

/// The kinds of failure a caller may branch on. Everything else is `Failed` with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentErrorCode {
    /// The command line or an input file was rejected before anything changed.
    InvalidInput,
    /// The named server or overlay does not exist.
    NotFound,
    /// Another operation holds the server's lock; try again.
    Busy,
    /// The agent lacks a permission it needs (not run as root or as `left4me`).
    PermissionDenied,
    /// The command started and failed; the message says where.
    Failed,
    /// `install`: Steam refused the login (wrong password, no such account, …).
    SteamLoginRefused,
    /// `install`: Steam wants a Steam Guard code for a login from this host; give it with
    /// the login and install again.
    SteamGuardCodeNeeded,
    /// `install`: the Steam Guard code given was wrong or expired.
    SteamGuardCodeRejected,
    /// `install`: the login was not approved in the Steam app in time.
    SteamGuardNotConfirmed,
    /// `install`: Steam refuses logins from this host for a while (Rate Limit Exceeded).
    SteamRateLimited,
    /// `install`: the Steam account does not own the game.
    SteamNoSubscription,
    /// `install`: anonymous Linux installs are refused; an account that owns the game is
    /// needed.
    SteamInvalidPlatform,
    /// There is not enough disk space.
    DiskFull,
    /// `install`: Steam could not be reached, also after retries.
    SteamUnreachable,
    /// `install`: steamcmd printed nothing for too long and was stopped.
    SteamcmdSilent,
    /// `install`: steamcmd cannot run on this host (its 32-bit runtime, a missing file).
    SteamcmdCannotRun,
    /// `install`: steamcmd failed in a way it did not explain; the message quotes it.
    SteamcmdFailed,
    /// A code from a newer agent that this app does not know.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("agent output is not a protocol message: {0}")]
    Json(#[source] serde_json::Error),
    #[error("agent speaks protocol version {found}, this app understands up to {supported}")]
    UnsupportedVersion { found: u32, supported: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_report_has_version_and_type_tag() {
        let line = Envelope::new(AgentMessage::Version(VersionReport {
            agent_version: "0.1.0".into(),
            arch: "x86_64".into(),
            static_binary: true,
            features: vec!["mounts".into()],
        }))
        .to_line();
        assert_eq!(
            line,
            r#"{"v":1,"type":"version","agent_version":"0.1.0","arch":"x86_64","static_binary":true,"features":["mounts"]}"#
        );
        let back = Envelope::parse(&line).unwrap();
        assert!(matches!(back.message, AgentMessage::Version(ref r) if r.static_binary));
    }

    #[test]
    fn error_codes_from_a_newer_agent_are_read_as_unknown() {
        let env =
            Envelope::parse(r#"{"v":1,"type":"error","code":"from_the_future","message":"x"}"#)
                .unwrap();
        assert!(matches!(
            env.message,
            AgentMessage::Error(AgentError {
                code: AgentErrorCode::Unknown,
                ..
            })
        ));
        let line = Envelope::new(AgentMessage::Error(AgentError {
            code: AgentErrorCode::SteamGuardCodeNeeded,
            message: "m".into(),
        }))
        .to_line();
        assert!(
            line.contains(r#""code":"steam_guard_code_needed""#),
            "{line}"
        );
    }

    #[test]
    fn unknown_message_types_are_skippable() {
        let env = Envelope::parse(r#"{"v":1,"type":"from_the_future","x":[1,2]}"#).unwrap();
        assert_eq!(env.message, AgentMessage::Unknown);
    }

    #[test]
    fn newer_protocol_versions_are_refused() {
        let err = Envelope::parse(r#"{"v":2,"type":"version"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "agent speaks protocol version 2, this app understands up to 1"
        );
    }

    #[test]
    fn errors_carry_a_closed_code() {
        let env = Envelope::parse(
            r#"{"v":1,"type":"error","code":"not_found","message":"no server named x"}"#,
        )
        .unwrap();
        assert_eq!(
            env.message,
            AgentMessage::Error(AgentError {
                code: AgentErrorCode::NotFound,
                message: "no server named x".into()
            })
        );
    }
}
