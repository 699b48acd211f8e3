//! What happens on a host while nobody watches: the records of the host's durable outbox
//! (`l4d2-agent events`), which the app reads when it connects ("while you were away") and
//! the host's notifier turns into messages. The words for people are here too, so the window
//! and a Discord message say the same thing.

use crate::schedule::RunOutcome;
use serde::{Deserialize, Serialize};

/// One entry of a host's outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEvent {
    /// Numbered from 1 on each host, without gaps; never reused.
    pub seq: u64,
    /// When it happened, RFC 3339 in UTC.
    pub at: String,
    /// The server it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(flatten)]
    pub what: EventKind,
}

/// What happened. The tag is the `kind` field; kinds added later read as `Unknown`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The server's game ended without being asked to; systemd starts it again unless its
    /// start limit stops it.
    Crashed {
        cause: StopCause,
        /// The last lines of its console before it ended, oldest first.
        #[serde(default)]
        last_lines: Vec<String>,
    },
    /// systemd stopped restarting the server: it crashed `crashes` times within the start
    /// limit's window. It stays stopped until someone starts it.
    GaveUp { crashes: u32 },
    /// The server's process ran but it answered no query `misses` looks in a row; the
    /// host restarted it when its spec asks for that.
    Hung { misses: u32, restarted: bool },
    /// A notification could not be delivered to a target and was dropped.
    NotificationFailed { target: String, reason: String },
    /// A schedule's run ended: done, skipped (the server was stopped or busy, or this
    /// time's run happened already) or failed.
    Schedule {
        schedule: String,
        /// When the run was due, RFC 3339 in UTC.
        slot: String,
        outcome: crate::schedule::RunOutcome,
        detail: String,
    },
    /// Steam has a newer build of the game than the host's install (told once per build).
    UpdateAvailable {
        installed: Option<String>,
        public: String,
    },
    /// A game update's rollout across the host's servers ended, or held on its canary (or
    /// a rolling restart that applies waiting changes: `kind`).
    Rollout {
        outcome: crate::rollout::RolloutOutcome,
        #[serde(default, rename = "rollout")]
        kind: crate::rollout::RolloutKind,
        build: String,
        detail: String,
    },
    #[serde(other)]
    Unknown,
}

/// Why a server's game ended, from what systemd saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum StopCause {
    /// The game exited with this status.
    Exited { status: i32 },
    /// The game was killed by a signal, e.g. `SIGSEGV`.
    Signal { signal: String },
    /// The kernel killed it for running out of its memory limit.
    OutOfMemory,
    /// It did not start or stop within systemd's timeout.
    Timeout,
    /// Another ending systemd names (its `Result`).
    Other { result: String },
}

impl StopCause {
    /// A short phrase: "was killed by SIGSEGV".
    pub fn describe(&self) -> String {
        match self {
            Self::Exited { status } => format!("exited with status {status}"),
            Self::Signal { signal } => {
                let what = match signal.as_str() {
                    "SIGSEGV" => " (a segmentation fault)",
                    "SIGABRT" => " (it aborted)",
                    "SIGKILL" => " (killed outright)",
                    "SIGBUS" => " (a bus error)",
                    "SIGFPE" => " (an arithmetic fault)",
                    "SIGILL" => " (an illegal instruction)",
                    _ => "",
                };
                format!("was killed by {signal}{what}")
            }
            Self::OutOfMemory => "was killed for running out of memory".to_owned(),
            Self::Timeout => "did not respond within systemd's timeout".to_owned(),
            Self::Other { result } => format!("ended: {result}"),
        }
    }
}

impl HostEvent {
    /// A one-line title for people, e.g. "coop-1 crashed".
    pub fn title(&self) -> String {
        let server = self.server.as_deref().unwrap_or("the host");
        match &self.what {
            EventKind::Crashed { .. } => format!("{server} crashed"),
            EventKind::GaveUp { .. } => format!("{server} stopped after crashing repeatedly"),
            EventKind::Hung { .. } => format!("{server} stopped answering"),
            EventKind::NotificationFailed { target, .. } => {
                format!("A notification to {target} could not be sent")
            }
            EventKind::Schedule {
                schedule, outcome, ..
            } => {
                let how = match outcome {
                    RunOutcome::Done => "ran",
                    RunOutcome::Skipped => "skipped its run",
                    RunOutcome::Failed => "failed",
                };
                match &self.server {
                    Some(server) => format!("Schedule \"{schedule}\" {how} ({server})"),
                    None => format!("Schedule \"{schedule}\" {how}"),
                }
            }
            EventKind::UpdateAvailable { .. } => "A game update is available".to_owned(),
            EventKind::Rollout {
                outcome,
                kind: crate::rollout::RolloutKind::Changes,
                ..
            } => match outcome {
                crate::rollout::RolloutOutcome::Done => {
                    "Waiting changes applied across the servers".to_owned()
                }
                crate::rollout::RolloutOutcome::Held => {
                    format!("Restart with changes held: {server} failed its check")
                }
                crate::rollout::RolloutOutcome::RolledBack => {
                    "Restart with changes stopped".to_owned()
                }
            },
            EventKind::Rollout { outcome, build, .. } => match outcome {
                crate::rollout::RolloutOutcome::Done => format!("Build {build} rolled out"),
                crate::rollout::RolloutOutcome::Held => {
                    format!("Build {build} held back: {server} failed its check")
                }
                crate::rollout::RolloutOutcome::RolledBack => {
                    format!("Build {build} rolled back")
                }
            },
            EventKind::Unknown => format!("Something happened on {server}"),
        }
    }

    /// The sentence under the title.
    pub fn detail(&self) -> String {
        match &self.what {
            EventKind::Crashed { cause, .. } => {
                format!("The game {}; systemd starts it again.", cause.describe())
            }
            EventKind::GaveUp { crashes } if *crashes > 1 => format!(
                "It crashed {crashes} times in a row, so systemd stopped restarting it. It stays stopped until you start it."
            ),
            EventKind::GaveUp { .. } => {
                "It failed and systemd did not start it again. It stays stopped until you start it."
                    .to_owned()
            }
            EventKind::Hung { misses, restarted } => format!(
                "Its process runs, but it answered none of the host's last {misses} queries (a hung game). {}",
                if *restarted {
                    "The host restarted it."
                } else {
                    "Restart it, or have its blueprint restart it when it hangs."
                }
            ),
            EventKind::NotificationFailed { reason, .. } => reason.clone(),
            EventKind::Schedule { detail, .. } | EventKind::Rollout { detail, .. } => {
                detail.clone()
            }
            EventKind::UpdateAvailable { installed, public } => format!(
                "Steam has build {public} of the game; this host has {}.",
                installed
                    .as_deref()
                    .map_or("none installed".to_owned(), |b| format!("build {b}"))
            ),
            EventKind::Unknown => "An event this app does not know; update the app.".to_owned(),
        }
    }

    /// Whether it is worth interrupting someone for.
    pub fn is_alert(&self) -> bool {
        matches!(
            self.what,
            EventKind::Crashed { .. }
                | EventKind::GaveUp { .. }
                | EventKind::Hung { .. }
                | EventKind::UpdateAvailable { .. }
                | EventKind::Rollout {
                    outcome: crate::rollout::RolloutOutcome::Held,
                    ..
                }
                | EventKind::Schedule {
                    outcome: RunOutcome::Failed,
                    ..
                }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_back_and_unknown_kinds_are_kept_as_unknown() {
        let event = HostEvent {
            seq: 7,
            at: "2026-11-30T18:00:00.000000Z".into(),
            server: Some("coop-1".into()),
            what: EventKind::Crashed {
                cause: StopCause::Signal {
                    signal: "SIGSEGV".into(),
                },
                last_lines: vec!["Segmentation fault".into()],
            },
        };
        let line = serde_json::to_string(&event).unwrap();
        assert_eq!(
            line,
            r#"{"seq":7,"at":"2026-11-30T18:00:00.000000Z","server":"coop-1","kind":"crashed","cause":{"how":"signal","signal":"SIGSEGV"},"last_lines":["Segmentation fault"]}"#
        );
        assert_eq!(serde_json::from_str::<HostEvent>(&line).unwrap(), event);
        let later: HostEvent =
            serde_json::from_str(r#"{"seq":8,"at":"x","kind":"from_the_future","n":1}"#).unwrap();
        assert_eq!(later.what, EventKind::Unknown);
        assert_eq!(later.title(), "Something happened on the host");
    }

    #[test]
    fn causes_read_as_sentences() {
        let cases = [
            (StopCause::Exited { status: 1 }, "exited with status 1"),
            (
                StopCause::Signal {
                    signal: "SIGSEGV".into(),
                },
                "was killed by SIGSEGV (a segmentation fault)",
            ),
            (
                StopCause::Signal {
                    signal: "SIGUSR1".into(),
                },
                "was killed by SIGUSR1",
            ),
            (
                StopCause::OutOfMemory,
                "was killed for running out of memory",
            ),
        ];
        for (cause, text) in cases {
            assert_eq!(cause.describe(), text);
        }
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;
    use crate::AppEvent;
    use crate::model::{HostEventRow, HostEventsReport};

    /// The window reads these from JavaScript values, a self-describing format like
    /// `serde_json::Value`: they must come back whole through one.
    #[test]
    fn rows_come_back_through_a_self_describing_value() {
        let row = HostEventRow {
            id: 3,
            host_id: 1,
            host: "box-1".into(),
            event: HostEvent {
                seq: 9,
                at: "2026-11-30T18:00:00.000000Z".into(),
                server: Some("coop-1".into()),
                what: EventKind::Crashed {
                    cause: StopCause::Exited { status: 139 },
                    last_lines: vec!["x".into()],
                },
            },
            dismissed: false,
        };
        let event = AppEvent::HostEvents {
            rows: vec![row.clone()],
        };
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(serde_json::from_value::<AppEvent>(value).unwrap(), event);
        let report = HostEventsReport {
            events: vec![row],
            missed: 0,
            retention_days: Some(30),
        };
        let value = serde_json::to_value(&report).unwrap();
        assert_eq!(
            serde_json::from_value::<HostEventsReport>(value).unwrap(),
            report
        );
    }
}
