//! Schedules: timed work a host does on its own, with the laptop closed (a restart that waits
//! for players to leave, a console command, a message to players, an update check). The app
//! writes a host's list; the host checks it, keeps it, and turns each schedule into a systemd
//! timer that runs `l4d2-agent schedule run <name>`. The checks here are shared by the window,
//! the app and the host (which also asks systemd to read each calendar before saving).

use crate::names::{OverlayName, ScheduleName, ServerName};
use serde::{Deserialize, Serialize};

/// The most schedules one host keeps.
pub const MAX_SCHEDULES: usize = 64;
/// How long a restart waits for the last player to leave, unless told otherwise.
pub const DEFAULT_DRAIN_MINUTES: u32 = 30;
/// The longest a restart may wait for players.
pub const MAX_DRAIN_MINUTES: u32 = 24 * 60;
/// The shortest time between two runs of one schedule.
pub const MIN_INTERVAL_SECS: u64 = 60;
/// Restarts closer together than this get a warning before they are saved.
pub const RESTART_WARNING_SECS: u64 = 3600;
const MAX_CALENDAR: usize = 200;
const MAX_COMMAND: usize = 500;
const MAX_MESSAGE: usize = 200;

/// One schedule of a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub name: ScheduleName,
    /// When it runs: a systemd calendar expression, such as `Mon..Fri *-*-* 04:00`,
    /// `daily` or `*:0/30` (see systemd.time(7)).
    pub calendar: String,
    /// The time zone the calendar is read in (`Europe/Berlin`); none: the host's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The server it acts on; none: every server on the host (for an update check, the
    /// host itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerName>,
    #[serde(flatten)]
    pub action: ScheduleAction,
}

/// What a schedule does. The tag is the `action` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ScheduleAction {
    /// Restart the server. With human players on, they are warned with `say` and the
    /// restart waits until the last one leaves, at most `drain_minutes` (0: at once).
    Restart {
        #[serde(default = "default_drain")]
        drain_minutes: u32,
    },
    /// Run a console command over RCON.
    Command { command: String },
    /// Tell the players something (`say`).
    Say { message: String },
    /// Ask Steam whether a newer build of the game is out, and tell it once per build.
    UpdateCheck,
    /// Update the game: the new build is made beside the one servers run, and each server
    /// switches to it at its next start (a restart schedule after it brings them over).
    /// `steam_user`: an account whose login steamcmd keeps on the host; none: anonymous.
    GameUpdate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        steam_user: Option<String>,
    },
    /// Fetch a Workshop overlay's items again: what changed is downloaded, and a running
    /// server that uses the overlay gets the new version at its next start.
    OverlayRefresh {
        overlay: OverlayName,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        items: Vec<u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        collections: Vec<u64>,
        /// The Steam Web API's address; Valve's when none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_url: Option<String>,
    },
    /// Back the server up (its own files and spec), then remove the backups that retention
    /// does not keep: the newest `keep_last`, and the newest of each of the last
    /// `keep_daily` days and `keep_weekly` weeks. All three 0: nothing is removed.
    Backup {
        #[serde(default)]
        keep_last: u32,
        #[serde(default)]
        keep_daily: u32,
        #[serde(default)]
        keep_weekly: u32,
    },
}

fn default_drain() -> u32 {
    DEFAULT_DRAIN_MINUTES
}

impl ScheduleAction {
    /// What it does, in a few words: "restart", "say".
    pub fn label(&self) -> &'static str {
        match self {
            Self::Restart { .. } => "restart",
            Self::Command { .. } => "console command",
            Self::Say { .. } => "message to players",
            Self::UpdateCheck => "update check",
            Self::GameUpdate { .. } => "game update",
            Self::OverlayRefresh { .. } => "overlay refresh",
            Self::Backup { .. } => "backup",
        }
    }

    /// Its label with "a" or "an": "an update check".
    pub fn with_article(&self) -> String {
        let label = self.label();
        let article = if label.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {label}")
    }

    /// Whether it stops the game.
    pub fn restarts(&self) -> bool {
        matches!(self, Self::Restart { .. })
    }
}

impl Schedule {
    /// The expression a timer's `OnCalendar=` gets: the calendar in its time zone.
    pub fn on_calendar(&self) -> String {
        on_calendar(&self.calendar, self.time_zone.as_deref())
    }

    /// Whether a run missed while the host was off is made up at boot: right for an
    /// update check, wrong for a restart or a message meant for a time of day.
    pub fn catches_up(&self) -> bool {
        matches!(
            self.action,
            ScheduleAction::UpdateCheck
                | ScheduleAction::GameUpdate { .. }
                | ScheduleAction::OverlayRefresh { .. }
                | ScheduleAction::Backup { .. }
        )
    }

    /// What it does, for people: "restart coop-1, waiting up to 30 min for players".
    pub fn describe(&self) -> String {
        let whom = match &self.server {
            Some(server) => server.to_string(),
            None => "every server".to_owned(),
        };
        match &self.action {
            ScheduleAction::Restart { drain_minutes: 0 } => format!("restart {whom} at once"),
            ScheduleAction::Restart { drain_minutes } => {
                format!("restart {whom}, waiting up to {drain_minutes} min for players to leave")
            }
            ScheduleAction::Command { command } => format!("run `{command}` on {whom}"),
            ScheduleAction::Say { message } => format!("say \"{message}\" on {whom}"),
            ScheduleAction::UpdateCheck => "check for a game update".to_owned(),
            ScheduleAction::GameUpdate { steam_user: None } => {
                "update the game (anonymously)".to_owned()
            }
            ScheduleAction::GameUpdate {
                steam_user: Some(user),
            } => format!("update the game as {user}"),
            ScheduleAction::OverlayRefresh { overlay, .. } => {
                format!("fetch overlay {overlay}'s Workshop items again")
            }
            ScheduleAction::Backup {
                keep_last,
                keep_daily,
                keep_weekly,
            } => {
                let kept: Vec<String> = [
                    (*keep_last, "last"),
                    (*keep_daily, "daily"),
                    (*keep_weekly, "weekly"),
                ]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{n} {what}"))
                .collect();
                if kept.is_empty() {
                    format!("back up {whom}, keeping every backup")
                } else {
                    format!("back up {whom}, keeping {}", kept.join(", "))
                }
            }
        }
    }

    /// Checks what systemd is not asked about: the characters of the calendar and the time
    /// zone (they go into a unit file, so `%`, quotes and line breaks are refused), the
    /// command or message, and the limits.
    pub fn check(&self) -> Result<(), String> {
        check_when(&self.calendar, self.time_zone.as_deref())?;
        match &self.action {
            ScheduleAction::Restart { drain_minutes } if *drain_minutes > MAX_DRAIN_MINUTES => {
                Err(format!(
                    "a restart waits at most {MAX_DRAIN_MINUTES} minutes for players, not {drain_minutes}"
                ))
            }
            ScheduleAction::Command { command } => {
                let command = command.trim();
                if command.is_empty() {
                    Err("the console command is empty".to_owned())
                } else if command.len() > MAX_COMMAND {
                    Err(format!(
                        "the console command is longer than {MAX_COMMAND} characters"
                    ))
                } else if command.chars().any(char::is_control) {
                    Err("the console command holds a line break or a control character".to_owned())
                } else {
                    Ok(())
                }
            }
            ScheduleAction::Say { message } => {
                let message = message.trim();
                if message.is_empty() {
                    Err("the message is empty".to_owned())
                } else if message.len() > MAX_MESSAGE {
                    Err(format!(
                        "the message is longer than {MAX_MESSAGE} characters"
                    ))
                } else if message
                    .chars()
                    .any(|c| c.is_control() || c == '"' || c == ';')
                {
                    // The console would end the message at a quote and run what follows a
                    // semicolon as a command of its own.
                    Err("the message must not hold a quote, a semicolon or a line break".to_owned())
                } else {
                    Ok(())
                }
            }
            ScheduleAction::GameUpdate {
                steam_user: Some(user),
            } if user.is_empty()
                || user.len() > 64
                || !user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) =>
            {
                Err(format!("{user:?} is not a Steam account name"))
            }
            ScheduleAction::OverlayRefresh {
                items, collections, ..
            } if items.is_empty() && collections.is_empty() => Err(
                "an overlay refresh needs the Workshop items or collections to fetch".to_owned(),
            ),
            ScheduleAction::OverlayRefresh {
                items, collections, ..
            } if items.len() + collections.len() > 1000 => {
                Err("an overlay refresh fetches at most 1000 items and collections".to_owned())
            }
            ScheduleAction::OverlayRefresh {
                api_url: Some(url), ..
            } if crate::notify::Endpoint::parse(url).is_err() => {
                Err(format!("the Workshop API address {url:?} is not a URL"))
            }
            ScheduleAction::Backup {
                keep_last,
                keep_daily,
                keep_weekly,
            } if [keep_last, keep_daily, keep_weekly]
                .iter()
                .any(|n| **n > 1000) =>
            {
                Err("a backup schedule keeps at most 1000 backups by each rule".to_owned())
            }
            ScheduleAction::UpdateCheck
            | ScheduleAction::GameUpdate { .. }
            | ScheduleAction::OverlayRefresh { .. }
                if self.server.is_some() =>
            {
                Err(format!(
                    "{} is for the whole host: leave the server out",
                    self.action.with_article()
                ))
            }
            _ => Ok(()),
        }
    }
}

/// A calendar in its time zone, as a timer's `OnCalendar=` takes it.
pub fn on_calendar(calendar: &str, time_zone: Option<&str>) -> String {
    match time_zone {
        Some(zone) => format!("{} {zone}", calendar.trim()),
        None => calendar.trim().to_owned(),
    }
}

/// Checks the characters of a calendar and a time zone: they go into a unit file, so `%`,
/// quotes and line breaks are refused. Whether systemd reads them is the host's to say.
pub fn check_when(calendar: &str, time_zone: Option<&str>) -> Result<(), String> {
    let calendar = calendar.trim();
    if calendar.is_empty() {
        return Err("the calendar is empty: say when it runs, e.g. `*-*-* 04:00`".to_owned());
    }
    if calendar.len() > MAX_CALENDAR {
        return Err(format!(
            "the calendar is longer than {MAX_CALENDAR} characters"
        ));
    }
    if let Some(bad) = calendar.chars().find(|c| {
        !(c.is_ascii_alphanumeric()
            || matches!(c, ' ' | '*' | '-' | ':' | '/' | ',' | '.' | '~' | '+' | '_'))
    }) {
        return Err(format!(
            "the calendar holds {bad:?}, which no calendar expression uses"
        ));
    }
    if let Some(zone) = time_zone {
        let fine = !zone.is_empty()
            && zone.len() <= 64
            && !zone.starts_with('/')
            && !zone.contains("..")
            && zone
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '+' | '-'));
        if !fine {
            return Err(format!(
                "{zone:?} is not a time zone name like Europe/Berlin"
            ));
        }
    }
    Ok(())
}

/// Checks a host's whole list: each schedule, their number and that names are unique. The
/// error names the schedule it is about.
pub fn check_all(schedules: &[Schedule]) -> Result<(), String> {
    if schedules.len() > MAX_SCHEDULES {
        return Err(format!(
            "a host keeps at most {MAX_SCHEDULES} schedules, not {}",
            schedules.len()
        ));
    }
    for (i, schedule) in schedules.iter().enumerate() {
        schedule
            .check()
            .map_err(|e| format!("schedule \"{}\": {e}", schedule.name))?;
        if schedules[..i].iter().any(|s| s.name == schedule.name) {
            return Err(format!("two schedules are named \"{}\"", schedule.name));
        }
    }
    Ok(())
}

/// Judges a calendar by its next runs (microseconds, ascending): an error when two come
/// closer than a minute, a warning when a restart comes more often than hourly.
pub fn judge_runs(next_runs: &[u64], restarts: bool) -> Result<Option<String>, String> {
    let shortest = next_runs
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]) / 1_000_000)
        .min();
    match shortest {
        Some(gap) if gap < MIN_INTERVAL_SECS => Err(format!(
            "it would run every {gap} s; schedules run at most once a minute"
        )),
        Some(gap) if restarts && gap < RESTART_WARNING_SECS => Ok(Some(format!(
            "this restarts the server every {} min: players are drained and dropped that often",
            gap / 60
        ))),
        _ => Ok(None),
    }
}

/// `schedule preview`: a calendar as the host reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulePreview {
    /// systemd's normalised form of the expression.
    pub normalized: String,
    /// The next runs, RFC 3339 in UTC.
    pub next_runs: Vec<String>,
    /// Something to confirm before saving (a restart more often than hourly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// `schedule list|set`: a host's schedules with their next runs and their last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleInfo>,
}

/// One schedule as its host runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    #[serde(flatten)]
    pub schedule: Schedule,
    /// The next runs, RFC 3339 in UTC (empty when the calendar has none left).
    pub next_runs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
}

/// `schedule run`: how one run went on one server (or on the host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRan {
    pub schedule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// When the run was due, RFC 3339 in UTC.
    pub slot: String,
    pub outcome: RunOutcome,
    pub detail: String,
}

/// How a schedule's last run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    /// The time it was due (RFC 3339, UTC); a run started by hand is due when it starts.
    pub slot: String,
    pub outcome: RunOutcome,
    /// What it did or why not, for people.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Done,
    /// Nothing done, for a reason that is not a fault (the server is stopped, busy, or this
    /// time's run happened already).
    Skipped,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(json: serde_json::Value) -> Schedule {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn schedules_read_with_their_defaults_and_write_back_the_same() {
        let nightly = schedule(serde_json::json!({
            "name": "nightly", "calendar": "*-*-* 04:00", "time_zone": "Europe/Berlin",
            "server": "coop-1", "action": "restart"
        }));
        assert_eq!(
            nightly.action,
            ScheduleAction::Restart {
                drain_minutes: DEFAULT_DRAIN_MINUTES
            }
        );
        assert_eq!(nightly.on_calendar(), "*-*-* 04:00 Europe/Berlin");
        assert!(!nightly.catches_up());
        let again: Schedule =
            serde_json::from_str(&serde_json::to_string(&nightly).unwrap()).unwrap();
        assert_eq!(again, nightly);
        assert_eq!(
            nightly.describe(),
            "restart coop-1, waiting up to 30 min for players to leave"
        );
        // A name that is not one is refused as the list is read.
        assert!(
            serde_json::from_value::<Schedule>(serde_json::json!({
                "name": "../x", "calendar": "daily", "action": "update_check"
            }))
            .is_err()
        );
    }

    #[test]
    fn what_would_break_a_unit_file_or_the_console_is_refused() {
        let base = |calendar: &str, zone: Option<&str>, action: serde_json::Value| {
            let mut json = action;
            json["name"] = "s".into();
            json["calendar"] = calendar.into();
            if let Some(zone) = zone {
                json["time_zone"] = zone.into();
            }
            schedule(json).check()
        };
        let restart = serde_json::json!({"action": "restart"});
        for (calendar, zone, action, expect) in [
            ("*-*-* 04:00", Some("Europe/Berlin"), restart.clone(), None),
            ("Mon..Fri *:0/30", None, restart.clone(), None),
            ("", None, restart.clone(), Some("the calendar is empty")),
            (
                "daily\nExecStart=/bin/sh",
                None,
                restart.clone(),
                Some("'\\n'"),
            ),
            ("daily %n", None, restart.clone(), Some("'%'")),
            (
                "daily",
                Some("../etc/passwd"),
                restart.clone(),
                Some("not a time zone"),
            ),
            (
                "daily",
                Some("Europe/Berlin\n"),
                restart.clone(),
                Some("not a time zone"),
            ),
            (
                "daily",
                None,
                serde_json::json!({"action": "restart", "drain_minutes": 100_000}),
                Some("at most 1440 minutes"),
            ),
            (
                "daily",
                None,
                serde_json::json!({"action": "say", "message": "bye; quit"}),
                Some("semicolon"),
            ),
            (
                "daily",
                None,
                serde_json::json!({"action": "say", "message": "restart at \"4\""}),
                Some("quote"),
            ),
            (
                "daily",
                None,
                serde_json::json!({"action": "command", "command": "sm_reload\nquit"}),
                Some("line break"),
            ),
            (
                "daily",
                None,
                serde_json::json!({"action": "command", "command": "  "}),
                Some("empty"),
            ),
        ] {
            let result = base(calendar, zone, action);
            match expect {
                None => assert_eq!(result, Ok(()), "{calendar:?}"),
                Some(part) => {
                    let err = result.expect_err(calendar);
                    assert!(err.contains(part), "{calendar:?}: {err}");
                }
            }
        }
        let host_wide = schedule(serde_json::json!({
            "name": "u", "calendar": "daily", "server": "coop-1", "action": "update_check"
        }));
        assert_eq!(
            host_wide.check().unwrap_err(),
            "an update check is for the whole host: leave the server out"
        );
        let update = schedule(serde_json::json!({
            "name": "u", "calendar": "daily", "server": "coop-1", "action": "game_update"
        }));
        assert_eq!(
            update.check().unwrap_err(),
            "a game update is for the whole host: leave the server out"
        );
        let as_user = schedule(serde_json::json!({
            "name": "u", "calendar": "daily", "action": "game_update", "steam_user": "owner; rm"
        }));
        assert!(
            as_user
                .check()
                .unwrap_err()
                .contains("not a Steam account name")
        );
        assert!(as_user.catches_up(), "a missed update is made up at boot");
        let refresh = |json: serde_json::Value| {
            let mut json = json;
            json["name"] = "r".into();
            json["calendar"] = "daily".into();
            json["action"] = "overlay_refresh".into();
            schedule(json).check()
        };
        assert_eq!(
            refresh(serde_json::json!({"overlay": "maps", "collections": [9]})),
            Ok(())
        );
        assert!(
            refresh(serde_json::json!({"overlay": "maps"}))
                .unwrap_err()
                .contains("needs the Workshop items")
        );
        assert!(
            refresh(serde_json::json!({"overlay": "maps", "items": [1], "api_url": "not a url"}))
                .unwrap_err()
                .contains("is not a URL")
        );
    }

    #[test]
    fn a_list_names_the_schedule_at_fault_and_its_names_are_unique() {
        let one = |name: &str, calendar: &str| {
            schedule(
                serde_json::json!({"name": name, "calendar": calendar, "action": "update_check"}),
            )
        };
        assert_eq!(check_all(&[one("a", "daily"), one("b", "weekly")]), Ok(()));
        assert_eq!(
            check_all(&[one("a", "daily"), one("b", "")]).unwrap_err(),
            "schedule \"b\": the calendar is empty: say when it runs, e.g. `*-*-* 04:00`"
        );
        assert_eq!(
            check_all(&[one("a", "daily"), one("a", "weekly")]).unwrap_err(),
            "two schedules are named \"a\""
        );
        let many: Vec<_> = (0..=MAX_SCHEDULES)
            .map(|i| one(&format!("s{i}"), "daily"))
            .collect();
        assert!(check_all(&many).unwrap_err().contains("at most 64"));
    }

    #[test]
    fn runs_closer_than_a_minute_are_refused_and_frequent_restarts_warned_of() {
        let s = 1_000_000;
        assert_eq!(judge_runs(&[0, 3600 * s, 7200 * s], true), Ok(None));
        assert_eq!(
            judge_runs(&[0, 30 * s], false).unwrap_err(),
            "it would run every 30 s; schedules run at most once a minute"
        );
        assert_eq!(
            judge_runs(&[0, 1800 * s, 3600 * s], true),
            Ok(Some(
                "this restarts the server every 30 min: players are drained and dropped that often"
                    .to_owned()
            ))
        );
        assert_eq!(judge_runs(&[0, 1800 * s], false), Ok(None), "a say");
        assert_eq!(judge_runs(&[0], true), Ok(None), "a single run");
    }
}
