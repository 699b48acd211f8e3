//! The host's durable outbox: what happened while nobody watched (a crash, a server systemd
//! gave up on, a notification that could not be sent), one JSON line per event in
//! `automation/events.jsonl`, numbered without gaps. The app reads what it has not seen when
//! it connects (`l4d2-agent events --after N`); the notifier reads it too.
//!
//! It is the owner's file, written only as `left4me` (root's hooks become `left4me` first).
//! Writers take the folder's lock; each event is appended and synced before the writer
//! says it is recorded, so a crash of the writer loses at most the event it was writing,
//! and a torn last line is skipped by readers and closed off by the next writer. Events
//! older than [`RETENTION`]'s days, or beyond its count, are dropped by the writer that
//! finds them; the sequence numbers go on from the highest ever given (kept in
//! `events.seq`), so a reader can tell what it missed.

use crate::error::io_context;
use crate::fsutil::{read_no_follow, write_atomic};
use crate::lock::Lock;
use left4me_protocol::agent::{HostEvents, Retention};
use left4me_protocol::events::{EventKind, HostEvent};
use left4me_protocol::time::rfc3339;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::AgentError;

/// How long and how many events a host keeps.
pub const RETENTION: Retention = Retention {
    days: 30,
    events: 5000,
};

const EVENTS: &str = "events.jsonl";
const SEQ: &str = "events.seq";
/// Far more than [`RETENTION`]'s events take (a crash's is at most a few KiB).
const MAX_FILE: u64 = 256 << 20;

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The outbox in the owner's automation folder.
pub struct Outbox {
    dir: PathBuf,
    retention: Retention,
}

impl Outbox {
    pub fn new(dir: &Path) -> Self {
        Self::with_retention(dir, RETENTION)
    }

    pub fn with_retention(dir: &Path, retention: Retention) -> Self {
        Self {
            dir: dir.to_path_buf(),
            retention,
        }
    }

    /// Records one event, stamped `at` (microseconds since the epoch); returns it.
    pub fn record(
        &self,
        server: Option<&str>,
        what: EventKind,
        at: u64,
    ) -> Result<HostEvent, AgentError> {
        let _lock = self.lock()?;
        let (events, torn) = self.read_all()?;
        let seq = events
            .last()
            .map_or(0, |e| e.seq)
            .max(self.read_seq())
            .saturating_add(1);
        let event = HostEvent {
            seq,
            at: rfc3339(at),
            server: server.map(str::to_owned),
            what,
        };
        let path = self.dir.join(EVENTS);
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)?;
            let mut line = if torn { "\n".to_owned() } else { String::new() };
            line.push_str(&serde_json::to_string(&event).map_err(std::io::Error::other)?);
            line.push('\n');
            file.write_all(line.as_bytes())?;
            file.sync_all()
        };
        write().map_err(io_context("write", &path))?;
        let seq_path = self.dir.join(SEQ);
        write_atomic(&seq_path, format!("{seq}\n").as_bytes(), 0o600)
            .map_err(io_context("write", &seq_path))?;
        let kept = self.to_keep(&events, at);
        if kept < events.len() {
            let mut text = String::new();
            for e in events[events.len() - kept..].iter().chain([&event]) {
                text.push_str(&serde_json::to_string(e).map_err(|e| AgentError::failed("", e))?);
                text.push('\n');
            }
            write_atomic(&path, text.as_bytes(), 0o600).map_err(io_context("write", &path))?;
        }
        Ok(event)
    }

    /// The events after `after`, oldest first, with what the outbox keeps.
    pub fn after(&self, after: u64) -> Result<HostEvents, AgentError> {
        if !self.dir.join(EVENTS).exists() {
            return Ok(HostEvents {
                events: Vec::new(),
                first_kept: 0,
                last: self.read_seq(),
                retention: self.retention,
            });
        }
        let _lock = self.lock()?;
        let (events, _) = self.read_all()?;
        Ok(HostEvents {
            first_kept: events.first().map_or(0, |e| e.seq),
            last: events.last().map_or(0, |e| e.seq).max(self.read_seq()),
            events: events.into_iter().filter(|e| e.seq > after).collect(),
            retention: self.retention,
        })
    }

    /// The newest sequence number given, read without the lock: what `list` reports so the
    /// app knows whether to read the outbox.
    pub fn last(&self) -> u64 {
        self.read_seq()
    }

    /// How many of `events` (the newest) stay when one more is added at `now`.
    fn to_keep(&self, events: &[HostEvent], now: u64) -> usize {
        let horizon = now.saturating_sub(u64::from(self.retention.days) * 86_400_000_000);
        let horizon = rfc3339(horizon);
        let young = events.iter().rev().take_while(|e| e.at >= horizon).count();
        young.min((self.retention.events as usize).saturating_sub(1))
    }

    fn lock(&self) -> Result<Lock, AgentError> {
        Lock::wait_for_dir(&self.dir).map_err(io_context("lock", &self.dir))
    }

    /// Every whole event in the file, and whether its last line is torn (no newline).
    fn read_all(&self) -> Result<(Vec<HostEvent>, bool), AgentError> {
        let path = self.dir.join(EVENTS);
        let Some(bytes) = read_no_follow(&path, MAX_FILE).map_err(io_context("read", &path))?
        else {
            return Ok((Vec::new(), false));
        };
        let text = String::from_utf8_lossy(&bytes);
        let torn = !text.is_empty() && !text.ends_with('\n');
        let events = text
            .lines()
            .filter_map(|line| serde_json::from_str::<HostEvent>(line).ok())
            .collect();
        Ok((events, torn))
    }

    fn read_seq(&self) -> u64 {
        read_no_follow(&self.dir.join(SEQ), 32)
            .ok()
            .flatten()
            .and_then(|t| String::from_utf8_lossy(&t).trim().parse().ok())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use left4me_protocol::events::StopCause;

    const DAY: u64 = 86_400_000_000;
    const T0: u64 = 1_795_000_000_000_000;

    fn crash() -> EventKind {
        EventKind::Crashed {
            cause: StopCause::Exited { status: 1 },
            last_lines: vec![],
        }
    }

    #[test]
    fn events_are_numbered_and_read_after_a_point() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path());
        assert_eq!(outbox.after(0).unwrap().last, 0);
        for i in 0..3 {
            let e = outbox.record(Some("coop-1"), crash(), T0 + i).unwrap();
            assert_eq!(e.seq, i + 1);
        }
        let read = outbox.after(1).unwrap();
        assert_eq!(
            read.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!((read.first_kept, read.last), (1, 3));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(EVENTS))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_closed_off() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path());
        outbox.record(None, crash(), T0).unwrap();
        let path = dir.path().join(EVENTS);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(br#"{"seq":2,"at":"2026-"#).unwrap();
        assert_eq!(outbox.after(0).unwrap().events.len(), 1);
        let next = outbox.record(None, crash(), T0 + 1).unwrap();
        assert_eq!(next.seq, 2);
        assert_eq!(
            outbox
                .after(0)
                .unwrap()
                .events
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            [1, 2]
        );
    }

    #[test]
    fn retention_drops_the_oldest_and_numbers_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::with_retention(dir.path(), Retention { days: 2, events: 3 });
        for i in 0..5 {
            outbox.record(None, crash(), T0 + i).unwrap();
        }
        let read = outbox.after(0).unwrap();
        assert_eq!(
            read.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert_eq!(read.first_kept, 3);
        // Three days later, everything before is too old: only the new one stays.
        let late = outbox.record(None, crash(), T0 + 3 * DAY).unwrap();
        assert_eq!(late.seq, 6);
        let read = outbox.after(2).unwrap();
        assert_eq!(read.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [6]);
        assert_eq!((read.first_kept, read.last), (6, 6));
        // With the file gone too, the numbers still go on.
        std::fs::remove_file(dir.path().join(EVENTS)).unwrap();
        assert_eq!(outbox.after(0).unwrap().last, 6);
        assert_eq!(outbox.record(None, crash(), T0 + 3 * DAY).unwrap().seq, 7);
    }

    #[test]
    fn the_file_is_not_followed_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "kept\n").unwrap();
        let inbox = dir.path().join("box");
        std::fs::create_dir(&inbox).unwrap();
        std::os::unix::fs::symlink(&elsewhere, inbox.join(EVENTS)).unwrap();
        assert!(Outbox::new(&inbox).record(None, crash(), T0).is_err());
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "kept\n");
    }
}
