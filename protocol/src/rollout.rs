//! A game update rolled across a host's servers: one canary first, drained, restarted on
//! the new build and checked; then the rest, each once it empties or at its deadline. The
//! host keeps the rollout (`installs/rollout.json`), and the same record says which build
//! each server mounts at its next start, so a server not yet moved (or moved back) stays
//! on the build it ran, whoever starts it.
//!
//! The same rolling restart applies the changes that wait for a server's next start (a
//! changed blueprint, an overlay with new content): a rollout of [`RolloutKind::Changes`]
//! keeps every server on the build it runs, and has no build to go back to, so it is
//! stopped rather than rolled back.

use crate::names::ServerName;
use serde::{Deserialize, Serialize};

/// The folder number of an install: 0 is the first install (`installation/`), `n` is
/// `installs/<n>`.
pub type InstallNumber = u32;

/// How long a restart waits for a server to empty, unless the admin says otherwise.
pub const DEFAULT_DRAIN_MINUTES: u32 = 30;
/// How long the canary is watched on the new build before the rest follow.
pub const DEFAULT_CHECK_SECONDS: u32 = 180;
/// The longest drain a rollout takes: a day.
pub const MAX_DRAIN_MINUTES: u32 = 24 * 60;
/// How long the canary may be watched: from 10 seconds to an hour.
pub const CHECK_SECONDS: std::ops::RangeInclusive<u32> = 10..=3600;

/// What a rollout brings to each server at its restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutKind {
    /// A new game build.
    #[default]
    Build,
    /// The changes that wait for its next start, on the build it runs.
    Changes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    #[serde(default)]
    pub kind: RolloutKind,
    /// The install new mounts used before: servers that are not listed stay on it until
    /// the canary has passed.
    pub from: InstallNumber,
    /// The new build's install.
    pub to: InstallNumber,
    /// The new build's Steam build id and `PatchVersion` (what A2S tells).
    pub to_build: Option<String>,
    pub to_version: Option<String>,
    pub canary: ServerName,
    pub drain_minutes: u32,
    pub check_seconds: u32,
    pub state: RolloutState,
    /// What the admin asked for last; the runner acts on it between steps.
    pub wanted: Wanted,
    pub servers: Vec<RolloutServer>,
    /// Why it is held, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339 times.
    pub started: String,
    pub updated: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    Running,
    /// Stopped between two servers at the admin's word; a start goes on.
    Paused,
    /// The canary failed its check and is back on its old build; nothing moves until the
    /// admin starts it again or rolls it back.
    Held,
    /// Every server runs the new build.
    Done,
    /// Every server is back on the build it ran, and the new build is gone.
    RolledBack,
    /// A rollout of changes stopped at the admin's word: the servers not restarted yet keep
    /// their changes for their next start.
    Stopped,
}

impl RolloutState {
    /// Whether the rollout still decides which build servers mount.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Running | Self::Paused | Self::Held)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Held => "held",
            Self::Done => "done",
            Self::RolledBack => "rolled back",
            Self::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wanted {
    Run,
    Pause,
    Back,
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutServer {
    pub name: ServerName,
    /// The install it ran when the rollout began, and goes back to.
    pub from: InstallNumber,
    pub step: Step,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// From its stop to its first A2S answer on the new build, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Its turn has not come.
    Waiting,
    /// Waiting for its players to leave.
    Draining,
    /// Stopped and starting on the new build.
    Restarting,
    /// The canary on the new build, watched.
    Checking,
    /// Runs the new build (or was stopped, and starts on it).
    Moved,
    /// Failed its check, and went back to its old build.
    Failed,
    /// Went back to its old build when the rollout was rolled back.
    Back,
}

impl Step {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Draining => "waiting for its players to leave",
            Self::Restarting => "restarting",
            Self::Checking => "being checked",
            Self::Moved => "on the new build",
            Self::Failed => "failed its check",
            Self::Back => "back on its old build",
        }
    }

    /// Whether the server mounts the new build at its next start.
    fn on_new_build(self) -> bool {
        matches!(self, Self::Restarting | Self::Checking | Self::Moved)
    }
}

impl Rollout {
    /// The install `server` mounts at its next start while the rollout is open; `None`
    /// when the rollout leaves it to `installs/current`.
    pub fn install_for(&self, server: &str) -> Option<InstallNumber> {
        if !self.state.is_open() {
            return None;
        }
        let listed = self.servers.iter().find(|s| s.name.as_str() == server);
        if self.kind == RolloutKind::Changes {
            // Each restarts on the build it runs; the others are not its business.
            return listed.map(|s| s.from);
        }
        match listed {
            Some(s) if s.step.on_new_build() => Some(self.to),
            Some(s) => Some(s.from),
            // Not in the rollout (stopped when it began, or made since): the new build
            // once the canary has passed on it, the old one until then.
            None if self.canary_passed() => Some(self.to),
            None => Some(self.from),
        }
    }

    /// Whether the canary runs the new build and passed its check.
    pub fn canary_passed(&self) -> bool {
        self.server(&self.canary)
            .is_some_and(|s| s.step == Step::Moved)
    }

    pub fn server(&self, name: &ServerName) -> Option<&RolloutServer> {
        self.servers.iter().find(|s| &s.name == name)
    }

    /// "2 of 3 servers on build 16075500", or "2 of 3 servers restarted with their changes".
    pub fn progress(&self) -> String {
        let moved = self
            .servers
            .iter()
            .filter(|s| s.step == Step::Moved)
            .count();
        let plural = if self.servers.len() == 1 { "" } else { "s" };
        match self.kind {
            RolloutKind::Build => format!(
                "{moved} of {} server{plural} on build {}",
                self.servers.len(),
                self.to_build.as_deref().unwrap_or("?")
            ),
            RolloutKind::Changes => format!(
                "{moved} of {} server{plural} restarted with their changes",
                self.servers.len()
            ),
        }
    }

    /// What it brings: "build 16075500", or "the waiting changes".
    pub fn what(&self) -> String {
        match self.kind {
            RolloutKind::Build => format!("build {}", self.to_build.as_deref().unwrap_or("?")),
            RolloutKind::Changes => "the waiting changes".to_owned(),
        }
    }

    /// A server's step in words; a rollout of changes has no new build to be on.
    pub fn describe_step(&self, step: Step) -> &'static str {
        match (self.kind, step) {
            (RolloutKind::Changes, Step::Restarting) => "restarting with its changes",
            (RolloutKind::Changes, Step::Moved) => "restarted with its changes",
            (RolloutKind::Changes, Step::Failed) => "failed its check",
            _ => step.describe(),
        }
    }
}

/// One install of the game on a host, and the servers that run it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    pub install: InstallNumber,
    pub build: Option<String>,
    pub version: Option<String>,
    /// New mounts use it (outside a rollout).
    pub current: bool,
    pub servers: Vec<ServerName>,
}

/// `l4d2-agent rollout status`: the host's builds and its rollout, if any (an ended one is
/// kept until the next begins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Builds {
    pub builds: Vec<Build>,
    pub rollout: Option<Rollout>,
    /// The mounted servers whose next start would change them, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<Waiting>,
}

/// A server with changes that wait for its next start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub server: ServerName,
    /// In words: "its spec changed", "overlay maps has new content".
    pub changes: Vec<String>,
}

/// How a rollout ended or stopped, for the outbox and notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutOutcome {
    Done,
    Held,
    RolledBack,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(state: RolloutState, canary_step: Step) -> Rollout {
        let server = |name: &str, from, step| RolloutServer {
            name: ServerName::new(name).unwrap(),
            from,
            step,
            detail: None,
            downtime_ms: None,
        };
        Rollout {
            kind: RolloutKind::Build,
            from: 0,
            to: 2,
            to_build: Some("16075500".into()),
            to_version: Some("2.2.4.4".into()),
            canary: ServerName::new("a").unwrap(),
            drain_minutes: 5,
            check_seconds: 60,
            state,
            wanted: Wanted::Run,
            servers: vec![
                server("a", 0, canary_step),
                server("b", 1, Step::Waiting),
                server("c", 0, Step::Failed),
            ],
            reason: None,
            started: "2026-12-01T03:00:00Z".into(),
            updated: "2026-12-01T03:00:00Z".into(),
        }
    }

    #[test]
    fn a_server_mounts_the_new_build_only_once_its_turn_came() {
        let r = rollout(RolloutState::Running, Step::Checking);
        assert_eq!(r.install_for("a"), Some(2));
        // Each waiting or failed server keeps the build it ran.
        assert_eq!(r.install_for("b"), Some(1));
        assert_eq!(r.install_for("c"), Some(0));
        // Others wait for the canary.
        assert_eq!(r.install_for("new"), Some(0));
        let passed = rollout(RolloutState::Running, Step::Moved);
        assert_eq!(passed.install_for("new"), Some(2));
        assert_eq!(passed.progress(), "1 of 3 servers on build 16075500");
    }

    #[test]
    fn an_ended_rollout_leaves_mounts_to_the_current_install() {
        for state in [
            RolloutState::Done,
            RolloutState::RolledBack,
            RolloutState::Stopped,
        ] {
            assert_eq!(rollout(state, Step::Moved).install_for("b"), None);
        }
        assert_eq!(
            rollout(RolloutState::Held, Step::Failed).install_for("a"),
            Some(0)
        );
    }

    #[test]
    fn a_rollout_of_changes_keeps_each_server_on_its_build_and_leaves_the_others_alone() {
        let mut r = rollout(RolloutState::Running, Step::Moved);
        r.kind = RolloutKind::Changes;
        assert_eq!(r.install_for("a"), Some(0));
        assert_eq!(r.install_for("b"), Some(1));
        assert_eq!(r.install_for("new"), None);
        assert_eq!(r.progress(), "1 of 3 servers restarted with their changes");
        assert_eq!(r.describe_step(Step::Moved), "restarted with its changes");
        // Written before kinds existed: a build's.
        let mut old = serde_json::to_value(rollout(RolloutState::Running, Step::Moved)).unwrap();
        old.as_object_mut().unwrap().remove("kind");
        let read: Rollout = serde_json::from_value(old).unwrap();
        assert_eq!(read.kind, RolloutKind::Build);
    }
}
