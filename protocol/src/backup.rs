//! Backups of a server, as the agent reports them: what cannot be fetched again (its upper
//! layer, with the files the game deleted and the folders it replaced, and its spec), and
//! what it ran on (the game build, the version of each overlay), which can be.

use crate::names::{OverlayName, ServerName};
use serde::{Deserialize, Serialize};

/// Why a backup was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    /// Asked for by hand (`backup create`, or the window's button).
    Manual,
    /// Made by a schedule.
    Scheduled,
    /// The server as it was just before a restore replaced it: the restore's undo.
    BeforeRestore,
}

impl BackupKind {
    pub fn describe(self) -> &'static str {
        match self {
            BackupKind::Manual => "by hand",
            BackupKind::Scheduled => "scheduled",
            BackupKind::BeforeRestore => "before a restore",
        }
    }
}

/// An overlay the server ran on, and which content of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayUsed {
    pub name: OverlayName,
    /// A digest of the overlay's file names, sizes and times when the backup was made; a
    /// restore says when the overlay has changed since.
    pub version: String,
}

/// One backup of a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    pub server: ServerName,
    /// Its name on the host, from the time it was made: `20261130T211500Z`.
    pub id: String,
    /// When it was made (RFC 3339, UTC).
    pub created: String,
    pub kind: BackupKind,
    /// The archive's size.
    pub bytes: u64,
    /// Regular files in the upper layer, and their total size.
    pub files: u64,
    pub content_bytes: u64,
    /// The files the game had deleted from the layers below (whiteouts): a restore keeps
    /// them deleted.
    pub deleted: u64,
    /// The game build the server ran on; None before the game was installed.
    pub base_build: Option<String>,
    /// Top first, as its spec named them.
    pub overlays: Vec<OverlayUsed>,
}

/// `backup list`: a server's backups, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupList {
    pub backups: Vec<BackupInfo>,
}

/// `backup prune`: what retention kept and what it removed, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupPruned {
    pub server: ServerName,
    pub kept: Vec<String>,
    pub removed: Vec<String>,
}

/// How many backups retention keeps: the newest `last`, and the newest of each of the last
/// `daily` days and `weekly` ISO weeks that have one (a backup kept by any rule stays).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Retention {
    #[serde(default)]
    pub last: u32,
    #[serde(default)]
    pub daily: u32,
    #[serde(default)]
    pub weekly: u32,
}

impl Retention {
    /// Keeping nothing would remove every backup: refused.
    pub fn check(&self) -> Result<(), String> {
        if self.last == 0 && self.daily == 0 && self.weekly == 0 {
            return Err("retention keeps nothing: give --keep-last, --keep-daily or --keep-weekly (at least 1)".to_owned());
        }
        Ok(())
    }

    /// Which of `created` (RFC 3339 UTC times, newest first) to keep.
    pub fn keep(&self, created: &[&str]) -> Vec<bool> {
        let mut keep = vec![false; created.len()];
        for k in keep.iter_mut().take(self.last as usize) {
            *k = true;
        }
        let mut mark = |limit: u32, period: &dyn Fn(&str) -> Option<String>| {
            let mut seen = Vec::new();
            for (i, when) in created.iter().enumerate() {
                if seen.len() >= limit as usize {
                    break;
                }
                let Some(p) = period(when) else { continue };
                if !seen.contains(&p) {
                    seen.push(p);
                    keep[i] = true;
                }
            }
        };
        mark(self.daily, &|when| when.get(..10).map(str::to_owned));
        mark(self.weekly, &|when| iso_week(when));
        keep
    }
}

/// The ISO week (`2026-W49`) of an RFC 3339 date.
fn iso_week(when: &str) -> Option<String> {
    const DAY: u64 = 86_400_000_000;
    let day_of = |date: &str| {
        crate::time::parse_utc(&format!("{date} 00:00:00")).map(|us| (us / DAY) as i64)
    };
    let days = day_of(when.get(..10)?)?;
    // 1970-01-01 was a Thursday; ISO weekdays run Monday 1 to Sunday 7.
    let weekday = (days + 3).rem_euclid(7) + 1;
    // The week's Thursday decides its year.
    let thursday = u64::try_from(days - weekday + 4).ok()?;
    let year = crate::time::rfc3339(thursday * DAY).get(..4)?.to_owned();
    let ordinal = thursday as i64 - day_of(&format!("{year}-01-01"))?;
    Some(format!("{year}-W{:02}", ordinal / 7 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_weeks_follow_their_thursday() {
        // 2026-11-30 is a Monday; 2027-01-01 a Friday, still in 2026's week 53.
        assert_eq!(
            iso_week("2026-11-30T10:00:00Z").as_deref(),
            Some("2026-W49")
        );
        assert_eq!(
            iso_week("2026-11-29T23:59:59Z").as_deref(),
            Some("2026-W48")
        );
        assert_eq!(
            iso_week("2027-01-01T00:00:00Z").as_deref(),
            Some("2026-W53")
        );
        assert_eq!(
            iso_week("2025-12-29T00:00:00Z").as_deref(),
            Some("2026-W01")
        );
    }

    #[test]
    fn retention_keeps_the_last_and_the_newest_of_each_day_and_week() {
        let created = [
            "2026-11-30T12:00:00Z",
            "2026-11-30T06:00:00Z",
            "2026-11-29T12:00:00Z",
            "2026-11-28T12:00:00Z",
            "2026-11-21T12:00:00Z",
            "2026-11-14T12:00:00Z",
        ];
        let keep = |r: Retention| {
            r.keep(&created)
                .iter()
                .zip(created)
                .filter(|(k, _)| **k)
                .map(|(_, c)| &c[..13])
                .collect::<Vec<_>>()
        };
        let last = Retention {
            last: 2,
            ..Default::default()
        };
        assert_eq!(keep(last), ["2026-11-30T12", "2026-11-30T06"]);
        let daily = Retention {
            daily: 3,
            ..Default::default()
        };
        assert_eq!(
            keep(daily),
            ["2026-11-30T12", "2026-11-29T12", "2026-11-28T12"]
        );
        let weekly = Retention {
            weekly: 3,
            ..Default::default()
        };
        // Weeks 49, 48 (the 29th, its newest) and 47.
        assert_eq!(
            keep(weekly),
            ["2026-11-30T12", "2026-11-29T12", "2026-11-21T12"]
        );
        let both = Retention {
            last: 1,
            daily: 0,
            weekly: 4,
        };
        assert_eq!(
            keep(both),
            [
                "2026-11-30T12",
                "2026-11-29T12",
                "2026-11-21T12",
                "2026-11-14T12"
            ]
        );
        assert!(Retention::default().check().is_err());
    }
}
