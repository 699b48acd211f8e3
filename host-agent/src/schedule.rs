//! `schedule`: timed work the host does on its own. The app hands over the host's list
//! (`schedule set`, JSON on stdin); the owner keeps it in `automation/schedules.json`, and
//! root turns each schedule into a systemd timer, `left4me-schedule-<name>.timer`
//! (`privileged schedules`, through the sudo rule), which starts
//! `left4me-schedule@<name>.service` to run `schedule run <name>` as the owner.
//!
//! systemd reads every calendar before anything is saved (`systemd-analyze calendar`, in the
//! schedule's time zone), and shows the next runs. A run acts once per due time: it holds a
//! lock on its schedule while it works (a live process's `flock`, gone when it dies, so no
//! stale "running" flag can stick) and records the due time before it acts, so a second
//! start for the same time (a replay, a reload, a hand) does nothing. Each server is also
//! locked while a schedule works on it: a run that finds it busy says so and skips it. A
//! restart drains first (`drain`): players are told, and it waits for the last to leave.

use crate::AgentError;
use crate::drain;
use crate::error::io_context;
use crate::events::{Outbox, now_micros};
use crate::fsutil::{read_no_follow, write_atomic};
use crate::host::Host;
use crate::lock::{Lock, LockError};
use crate::systemd::{Systemd, unit};
use left4me_protocol::agent::DoneReport;
use left4me_protocol::events::EventKind;
use left4me_protocol::schedule::{
    self as rules, LastRun, RunOutcome, Schedule, ScheduleAction, ScheduleInfo, ScheduleList,
    SchedulePreview, ScheduleRan,
};
use left4me_protocol::time::{parse_utc, rfc3339};
use left4me_protocol::{ScheduleName, ServerName};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const FILE: &str = "schedules.json";
/// The runs' records and locks, in the automation folder.
const RUNS: &str = "schedule-runs";
/// The update check's memory of the build it told of.
const UPDATE_TOLD: &str = "update-told.json";
const MAX_FILE: u64 = 1 << 20;
/// Due times remembered per schedule (a replay comes soon after, if at all).
const SLOTS_KEPT: usize = 32;
/// How far before its start a timer's run looks for the due time it serves.
const SLOT_LOOKBACK_SECS: u64 = 300;
/// A timer's unit name: `left4me-schedule-<name>.timer`.
pub const TIMER_PREFIX: &str = "left4me-schedule-";

/// The host's list, as `schedules.json` holds it and `schedule set` reads it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Schedules {
    pub schedules: Vec<Schedule>,
}

/// A calendar as systemd reads it.
#[derive(Debug, PartialEq)]
pub struct Calendar {
    pub normalized: String,
    /// The next runs, microseconds since the epoch, ascending.
    pub next_runs: Vec<u64>,
}

/// Asks systemd for the next `count` runs of `expression` (after `after`, seconds since the
/// epoch, or now). Printed in UTC whatever the host's zone, so it reads the same everywhere.
pub fn analyze(expression: &str, count: u32, after: Option<u64>) -> Result<Calendar, String> {
    let mut command = Command::new("systemd-analyze");
    command
        .env("TZ", "UTC")
        .arg("calendar")
        .arg(format!("--iterations={count}"));
    if let Some(after) = after {
        command.arg(format!("--base-time=@{after}"));
    }
    let out = command
        .arg("--")
        .arg(expression)
        .output()
        .map_err(|e| format!("cannot run systemd-analyze: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    parse_analyze(&String::from_utf8_lossy(&out.stdout))
}

/// Reads `systemd-analyze calendar`'s answer (run with `TZ=UTC`).
fn parse_analyze(text: &str) -> Result<Calendar, String> {
    let mut normalized = None;
    let mut next_runs = Vec::new();
    for line in text.lines().map(str::trim) {
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        if key == "Normalized form" {
            normalized = Some(value.trim().to_owned());
        } else if key == "Next elapse" || key.starts_with("Iter. #") {
            // "Mon 2026-12-07 03:00:00 UTC", or "never".
            let words: Vec<&str> = value.split_whitespace().collect();
            if let [_, date, time, ..] = words.as_slice()
                && let Some(at) = parse_utc(&format!("{date} {time}"))
            {
                next_runs.push(at);
            }
        }
    }
    Ok(Calendar {
        normalized: normalized.ok_or("systemd-analyze printed no normalised form")?,
        next_runs,
    })
}

/// Why systemd would not read a calendar, in words that say what to change.
fn calendar_error(calendar: &str, time_zone: Option<&str>, said: &str) -> String {
    if let Some(zone) = time_zone
        && !Path::new("/usr/share/zoneinfo").join(zone).is_file()
    {
        return format!(
            "this host does not know the time zone {zone} (is the tzdata package installed?)"
        );
    }
    let said = said.lines().next().unwrap_or("").trim();
    format!(
        "systemd cannot read the calendar {calendar:?} ({said}); see `man systemd.time` for its form"
    )
}

/// Checks a calendar on this host: its characters, then systemd's reading, then how often
/// it runs. Returns the calendar with its next runs, and a warning to confirm.
fn check_calendar(
    calendar: &str,
    time_zone: Option<&str>,
    restarts: bool,
    count: u32,
    require_future: bool,
) -> Result<(Calendar, Option<String>), String> {
    rules::check_when(calendar, time_zone)?;
    let expression = rules::on_calendar(calendar, time_zone);
    let read = analyze(&expression, count.max(10), None)
        .map_err(|said| calendar_error(calendar, time_zone, &said))?;
    if read.next_runs.is_empty() && require_future {
        return Err(format!(
            "the calendar {calendar:?} has no run in the future"
        ));
    }
    let warning = rules::judge_runs(&read.next_runs, restarts)?;
    Ok((
        Calendar {
            normalized: read.normalized,
            next_runs: read.next_runs.into_iter().take(count as usize).collect(),
        },
        warning,
    ))
}

/// `schedule preview`: when a calendar runs next, as this host reads it.
pub fn preview(
    calendar: &str,
    time_zone: Option<&str>,
    restarts: bool,
    count: u32,
) -> Result<SchedulePreview, AgentError> {
    let (read, warning) = check_calendar(calendar, time_zone, restarts, count.clamp(1, 50), true)
        .map_err(AgentError::Invalid)?;
    Ok(SchedulePreview {
        normalized: read.normalized,
        next_runs: read.next_runs.into_iter().map(rfc3339).collect(),
        warning,
    })
}

/// The host's schedules, as the owner keeps them.
pub fn load(automation: &Path) -> Result<Schedules, AgentError> {
    let path = automation.join(FILE);
    match read_no_follow(&path, MAX_FILE).map_err(io_context("read", &path))? {
        None => Ok(Schedules::default()),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| AgentError::failed(format!("cannot read {}", path.display()), e)),
    }
}

/// Checks a whole list as `set` and root do: the shared rules, then systemd's reading of
/// each calendar. Those not in `kept` (new or changed ones) must also run again: a date in
/// the past is a mistake when typed, not when a one-off already ran. The error names the
/// schedule.
fn check_list(list: &Schedules, kept: &[Schedule]) -> Result<(), String> {
    rules::check_all(&list.schedules)?;
    for schedule in &list.schedules {
        check_calendar(
            &schedule.calendar,
            schedule.time_zone.as_deref(),
            schedule.action.restarts(),
            1,
            !kept.contains(schedule),
        )
        .map_err(|e| format!("schedule \"{}\": {e}", schedule.name))?;
    }
    Ok(())
}

/// `schedule set`: replaces the host's schedules with the list on stdin and has root make
/// their timers. Anything invalid is refused before a thing changes; if root cannot make
/// the timers, the list goes back to what they run.
pub fn set(host: &Host<'_>, input: impl std::io::Read) -> Result<ScheduleList, AgentError> {
    let mut text = String::new();
    input
        .take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| AgentError::Invalid(format!("schedule set: cannot read stdin: {e}")))?;
    if text.len() as u64 > MAX_FILE {
        return Err(AgentError::Invalid(
            "schedule set: the list is larger than 1 MiB".to_owned(),
        ));
    }
    let list: Schedules = serde_json::from_str(&text)
        .map_err(|e| AgentError::Invalid(format!("schedule set: the list is not valid: {e}")))?;
    let servers: Vec<ServerName> = crate::server::list_specs(host)?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    for schedule in &list.schedules {
        if let Some(server) = &schedule.server
            && !servers.contains(server)
        {
            return Err(AgentError::Invalid(format!(
                "schedule set: schedule \"{}\": there is no server \"{server}\" on this host",
                schedule.name
            )));
        }
    }
    for schedule in &list.schedules {
        if let ScheduleAction::OverlayRefresh { overlay, .. } = &schedule.action
            && !host.layout.overlay(overlay).is_dir()
        {
            return Err(AgentError::Invalid(format!(
                "schedule set: schedule \"{}\": there is no overlay \"{overlay}\" on this host",
                schedule.name
            )));
        }
    }
    let current = load(&host.layout.automation())?.schedules;
    check_list(&list, &current).map_err(|e| AgentError::Invalid(format!("schedule set: {e}")))?;
    store(host, &list)?;
    list_all(host)
}

/// A deleted server's schedules go with it (its timers too); answers whether it had any.
pub fn forget_server(host: &Host<'_>, server: &ServerName) -> Result<bool, AgentError> {
    let mut list = load(&host.layout.automation())?;
    let before = list.schedules.len();
    list.schedules.retain(|s| s.server.as_ref() != Some(server));
    if list.schedules.len() == before {
        return Ok(false);
    }
    store(host, &list)?;
    Ok(true)
}

/// Saves a checked list and has root make its timers; if root cannot, the list goes back
/// to what the timers run.
fn store(host: &Host<'_>, list: &Schedules) -> Result<(), AgentError> {
    let automation = host.layout.automation();
    let path = automation.join(FILE);
    let lock = automation.join("schedules.lock");
    let _turn = Lock::try_acquire(&lock).map_err(|e| match e {
        LockError::Busy => AgentError::Busy {
            what: "schedule list",
            name: crate::host::hostname(),
        },
        LockError::Io(e) => io_context("lock", &lock)(e),
    })?;
    let before = read_no_follow(&path, MAX_FILE).map_err(io_context("read", &path))?;
    let json = serde_json::to_vec_pretty(list).map_err(|e| AgentError::failed("", e))?;
    write_atomic(&path, &json, 0o600).map_err(io_context("write", &path))?;
    if let Err(e) = make_timers() {
        let restored = match before {
            Some(bytes) => write_atomic(&path, &bytes, 0o600),
            None => std::fs::remove_file(&path),
        };
        restored.map_err(io_context("restore", &path))?;
        return Err(e);
    }
    // The records of schedules no longer listed go too: one made again under the same name
    // starts afresh.
    let runs = automation.join(RUNS);
    for entry in std::fs::read_dir(&runs).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = file.strip_suffix(".json") else {
            continue;
        };
        if !list.schedules.iter().any(|s| s.name.as_str() == name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Has root make the timers of the list just saved.
fn make_timers() -> Result<DoneReport, AgentError> {
    if crate::host::is_root() {
        return privileged_timers(&crate::systemd::Systemctl);
    }
    crate::service::sudo_agent(&["privileged", "schedules"], "make the schedules' timers")
}

/// `schedule list`: the schedules with their next runs and how their last run ended.
pub fn list_all(host: &Host<'_>) -> Result<ScheduleList, AgentError> {
    let automation = host.layout.automation();
    let list = load(&automation)?;
    let schedules = list
        .schedules
        .into_iter()
        .map(|schedule| {
            let next_runs = analyze(&schedule.on_calendar(), 3, None)
                .map(|c| c.next_runs.into_iter().map(rfc3339).collect())
                .unwrap_or_default();
            let last_run = load_record(&automation.join(RUNS), &schedule.name).last;
            ScheduleInfo {
                schedule,
                next_runs,
                last_run,
            }
        })
        .collect();
    Ok(ScheduleList { schedules })
}

fn timer_name(name: &ScheduleName) -> String {
    format!("{TIMER_PREFIX}{name}.timer")
}

/// A schedule's timer unit. Everything in it was checked: the name is `[a-z0-9-]`, and the
/// calendar and zone hold no `%`, quote or line break.
fn timer_text(schedule: &Schedule) -> String {
    let name = &schedule.name;
    format!(
        "# left4me schedule \"{name}\" ({label}): written by `l4d2-agent schedule set` from\n\
         # the host's schedules (automation/schedules.json); changes here are replaced.\n\
         [Unit]\n\
         Description=left4me schedule {name} ({label})\n\
         \n\
         [Timer]\n\
         OnCalendar={calendar}\n\
         AccuracySec=1s\n\
         Persistent={persistent}\n\
         Unit=left4me-schedule@{name}.service\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n",
        label = schedule.action.label(),
        calendar = schedule.on_calendar(),
        persistent = if schedule.catches_up() { "yes" } else { "no" },
    )
}

/// `privileged schedules`: root makes one timer per schedule of the owner's list and removes
/// the timers of schedules no longer in it. The list is the owner's file, read without
/// following a link and checked again in full: root writes only what it checked, into its
/// own unit folder. An invalid list changes no timer.
pub fn privileged_timers(systemd: &dyn Systemd) -> Result<DoneReport, AgentError> {
    let layout = crate::layout::Layout::new(Path::new(crate::layout::DEFAULT_ROOT));
    let list = load(&layout.automation())?;
    check_list(&list, &list.schedules)
        .map_err(|e| AgentError::Invalid(format!("privileged schedules: {e}")))?;
    let units = crate::setup::system_dir(Path::new(crate::setup::UNIT_DIR))?;
    let failed = |e: crate::dir::DirError| AgentError::failed("cannot write the timers", e);
    let wanted: Vec<(String, String)> = list
        .schedules
        .iter()
        .map(|s| (timer_name(&s.name), timer_text(s)))
        .collect();
    let stale: Vec<String> = units
        .names()
        .map_err(failed)?
        .into_iter()
        .filter(|n| n.starts_with(TIMER_PREFIX) && n.ends_with(".timer"))
        .filter(|n| !wanted.iter().any(|(w, _)| w == n))
        .collect();
    let systemctl = |action: &str, timer: &str| {
        systemd
            .control(action, timer)
            .map_err(|e| AgentError::failed(format!("cannot {action} {timer}"), e))
    };
    for timer in &stale {
        systemctl("disable", timer)?;
        systemctl("stop", timer)?;
        units.remove_file(timer).map_err(failed)?;
    }
    let mut written = Vec::new();
    for (timer, text) in &wanted {
        if units
            .ensure_file(timer, text.as_bytes(), 0o644)
            .map_err(failed)?
        {
            written.push(timer.clone());
        }
    }
    if !stale.is_empty() || !written.is_empty() {
        systemd
            .daemon_reload()
            .map_err(|e| AgentError::failed("cannot reload systemd", e))?;
    }
    for (timer, _) in &wanted {
        let changed = written.contains(timer);
        if changed || !systemd.show(timer).is_ok_and(|s| s.is_active()) {
            systemctl("enable", timer)?;
            // A timer that ran on its old calendar takes the new one.
            systemctl(if changed { "restart" } else { "start" }, timer)?;
        }
    }
    Ok(crate::output::done(
        "schedules",
        &crate::host::hostname(),
        !stale.is_empty() || !written.is_empty(),
    ))
}

/// What a schedule remembers of its runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    /// The due times it ran for, oldest first (microseconds).
    slots: Vec<u64>,
    last: Option<LastRun>,
}

fn load_record(runs: &Path, name: &ScheduleName) -> Record {
    read_no_follow(&runs.join(format!("{name}.json")), MAX_FILE)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn save_record(runs: &Path, name: &ScheduleName, record: &Record) -> Result<(), AgentError> {
    let path = runs.join(format!("{name}.json"));
    let json = serde_json::to_vec(record).map_err(|e| AgentError::failed("", e))?;
    write_atomic(&path, &json, 0o600).map_err(io_context("write", &path))
}

/// When the timer that started this run elapsed (systemd ≥ 251 tells its services), in
/// microseconds; none for a run started by hand.
fn trigger_time() -> Option<u64> {
    std::env::var("TRIGGER_TIMER_REALTIME_USEC")
        .ok()?
        .parse()
        .ok()
}

/// The due time a run started at `trigger` serves: the calendar's latest time at or before
/// it (a timer elapses at its time or a little after, never before). A start long after
/// any due time (made up at boot) is its own.
fn slot_of(schedule: &Schedule, trigger: u64) -> u64 {
    let seconds = trigger / 1_000_000;
    analyze(
        &schedule.on_calendar(),
        10,
        Some(seconds.saturating_sub(SLOT_LOOKBACK_SECS)),
    )
    .ok()
    .and_then(|c| c.next_runs.into_iter().filter(|t| *t <= trigger).max())
    .unwrap_or(seconds * 1_000_000)
}

/// `schedule run <name>`: what its timer runs. Streams one record per server acted on, and
/// records each in the outbox (a failure is also notified).
pub fn run(
    host: &Host<'_>,
    systemd: &(dyn Systemd + Sync),
    name: &str,
    hostname: &str,
    report: &mut dyn FnMut(&ScheduleRan),
) -> Result<RunOutcome, AgentError> {
    let name = ScheduleName::new(name).map_err(|e| AgentError::Invalid(e.to_string()))?;
    let automation = host.layout.automation();
    let schedule = load(&automation)?
        .schedules
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| AgentError::NotFound {
            what: "schedule",
            name: name.to_string(),
        })?;
    let runs = automation.join(RUNS);
    crate::fsutil::create_dir(&runs, 0o700).map_err(io_context("create", &runs))?;
    let slot = trigger_time().map_or_else(now_micros, |t| slot_of(&schedule, t));
    let mut tell = |server: Option<&ServerName>, outcome: RunOutcome, detail: String| {
        let ran = ScheduleRan {
            schedule: name.to_string(),
            server: server.map(ToString::to_string),
            slot: rfc3339(slot),
            outcome,
            detail,
        };
        report(&ran);
        record_event(&automation, &ran, hostname)
    };

    let lock = runs.join(format!("{name}.lock"));
    let _running = match Lock::try_acquire(&lock) {
        Ok(lock) => lock,
        Err(LockError::Busy) => {
            tell(
                schedule.server.as_ref(),
                RunOutcome::Skipped,
                "its previous run is still going".to_owned(),
            )?;
            return Ok(RunOutcome::Skipped);
        }
        Err(LockError::Io(e)) => return Err(io_context("lock", &lock)(e)),
    };
    let mut record = load_record(&runs, &name);
    if record.slots.contains(&slot) {
        tell(
            schedule.server.as_ref(),
            RunOutcome::Skipped,
            format!("its run due at {} happened already", rfc3339(slot)),
        )?;
        return Ok(RunOutcome::Skipped);
    }
    // The due time is taken before anything is done: a run that dies midway is not
    // repeated by a second start for the same time.
    record.slots.push(slot);
    let excess = record.slots.len().saturating_sub(SLOTS_KEPT);
    record.slots.drain(..excess);
    save_record(&runs, &name, &record)?;

    let results: Vec<(Option<ServerName>, RunOutcome, String)> =
        if let ScheduleAction::UpdateCheck = schedule.action {
            let (outcome, detail) = update_check(host, hostname);
            vec![(None, outcome, detail)]
        } else if let ScheduleAction::GameUpdate { steam_user } = &schedule.action {
            let (outcome, detail) = game_update(host, systemd, steam_user.as_deref());
            vec![(None, outcome, detail)]
        } else if let ScheduleAction::OverlayRefresh {
            overlay,
            items,
            collections,
            api_url,
        } = &schedule.action
        {
            let (outcome, detail) =
                overlay_refresh(host, overlay, items, collections, api_url.as_deref());
            vec![(None, outcome, detail)]
        } else {
            let servers = match &schedule.server {
                Some(server) => vec![server.clone()],
                None => crate::server::list_specs(host)?
                    .into_iter()
                    .map(|(name, _)| name)
                    .collect(),
            };
            let (root, owner, game) = (
                host.layout.root().to_path_buf(),
                host.owner_account.clone(),
                host.game_account.clone(),
            );
            // Servers drain side by side: an hour-long wait on one does not hold the others.
            std::thread::scope(|scope| {
                let workers: Vec<_> = servers
                    .into_iter()
                    .map(|server| {
                        let (root, owner, game, runs) = (&root, &owner, &game, &runs);
                        let action = &schedule.action;
                        scope.spawn(move || {
                            let host = Host::new(root, owner, game);
                            let (outcome, detail) = act(&host, systemd, runs, action, &server);
                            (Some(server), outcome, detail)
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| {
                        w.join().unwrap_or((
                            None,
                            RunOutcome::Failed,
                            "the run's worker panicked".to_owned(),
                        ))
                    })
                    .collect()
            })
        };

    let mut worst = RunOutcome::Done;
    let mut details = Vec::new();
    for (server, outcome, detail) in results {
        if outcome == RunOutcome::Failed
            || (outcome == RunOutcome::Skipped && worst == RunOutcome::Done)
        {
            worst = outcome;
        }
        details.push(match &server {
            Some(server) if schedule.server.is_none() => format!("{server}: {detail}"),
            _ => detail.clone(),
        });
        tell(server.as_ref(), outcome, detail)?;
    }
    if details.is_empty() {
        worst = RunOutcome::Skipped;
        details.push("there is no server on this host".to_owned());
    }
    record.last = Some(LastRun {
        slot: rfc3339(slot),
        outcome: worst,
        detail: details.join("; "),
    });
    save_record(&runs, &name, &record)?;
    Ok(worst)
}

/// Records a run's end in the outbox; a failure is also notified.
fn record_event(automation: &Path, ran: &ScheduleRan, hostname: &str) -> Result<(), AgentError> {
    let what = EventKind::Schedule {
        schedule: ran.schedule.clone(),
        slot: ran.slot.clone(),
        outcome: ran.outcome,
        detail: ran.detail.clone(),
    };
    if ran.outcome == RunOutcome::Failed {
        crate::notify::tell(automation, ran.server.as_deref(), what, hostname).map(drop)
    } else {
        Outbox::new(automation)
            .record(ran.server.as_deref(), what, now_micros())
            .map(drop)
    }
}

/// The lock a schedule holds on a server while it acts on it.
fn server_lock(runs: &Path, server: &ServerName) -> std::path::PathBuf {
    runs.join(format!("server-{server}.lock"))
}

/// Holds `server` against schedules, as a schedule that acts on it does: `None` when one
/// is acting on it now. For others that restart it on their own (the hung-server watch).
pub fn hold_server(automation: &Path, server: &ServerName) -> Result<Option<Lock>, AgentError> {
    let runs = automation.join(RUNS);
    crate::fsutil::create_dir(&runs, 0o700).map_err(io_context("create", &runs))?;
    let lock = server_lock(&runs, server);
    match Lock::try_acquire(&lock) {
        Ok(held) => Ok(Some(held)),
        Err(LockError::Busy) => Ok(None),
        Err(LockError::Io(e)) => Err(io_context("lock", &lock)(e)),
    }
}

/// Does a schedule's action to one server, holding the server against other schedules.
fn act(
    host: &Host<'_>,
    systemd: &dyn Systemd,
    runs: &Path,
    action: &ScheduleAction,
    server: &ServerName,
) -> (RunOutcome, String) {
    let lock = server_lock(runs, server);
    let _held = match Lock::try_acquire(&lock) {
        Ok(lock) => lock,
        Err(LockError::Busy) => {
            return (
                RunOutcome::Skipped,
                format!("{server} is busy: another schedule is working on it"),
            );
        }
        Err(LockError::Io(e)) => {
            return (
                RunOutcome::Failed,
                format!("cannot lock {}: {e}", lock.display()),
            );
        }
    };
    let spec = match crate::server::read_spec(host, server) {
        Ok(spec) => spec,
        Err(AgentError::NotFound { .. }) => {
            return (
                RunOutcome::Skipped,
                format!("there is no server {server} on this host any more"),
            );
        }
        Err(e) => return (RunOutcome::Failed, e.to_string()),
    };
    match systemd.show(&unit(server)) {
        Ok(state) if state.is_active() => {}
        Ok(_) => {
            return (
                RunOutcome::Skipped,
                format!("{server} is not running, and a schedule does not start it"),
            );
        }
        Err(e) => return (RunOutcome::Failed, e.to_string()),
    }
    let busy_or_failed = |e: AgentError, what: &str| match e {
        AgentError::Busy { .. } => (
            RunOutcome::Skipped,
            format!("{server} is busy: another l4d2-agent is working on it"),
        ),
        e => (RunOutcome::Failed, format!("{what} failed: {e}")),
    };
    match action {
        ScheduleAction::Restart { drain_minutes } => {
            let mut players = crate::service::LivePlayers::new(host, server, &spec);
            let drained = drain::drain(
                &mut players,
                &drain::Wall(Instant::now()),
                Duration::from_secs(u64::from(*drain_minutes) * 60),
                "restarts",
            );
            match crate::service::control(
                host,
                systemd,
                crate::service::Action::Restart,
                server.as_str(),
            ) {
                Ok(_) => (
                    RunOutcome::Done,
                    format!("restarted {}", drained.describe()),
                ),
                Err(e) => busy_or_failed(e, "the restart"),
            }
        }
        ScheduleAction::Command { command } => {
            match crate::service::rcon(host, server.as_str(), std::slice::from_ref(command)) {
                Ok(answer) => {
                    let first = answer.answer.lines().next().unwrap_or("").trim();
                    let said = if first.is_empty() {
                        String::new()
                    } else {
                        format!(": {first}")
                    };
                    (RunOutcome::Done, format!("ran `{command}`{said}"))
                }
                Err(e) => busy_or_failed(e, "the command"),
            }
        }
        ScheduleAction::Say { message } => {
            match crate::service::rcon(host, server.as_str(), &[format!("say {message}")]) {
                Ok(_) => (RunOutcome::Done, format!("said \"{message}\"")),
                Err(e) => busy_or_failed(e, "the message"),
            }
        }
        ScheduleAction::Backup {
            keep_last,
            keep_daily,
            keep_weekly,
        } => {
            let made = match crate::backup::create(
                host,
                server.as_str(),
                left4me_protocol::backup::BackupKind::Scheduled,
            ) {
                Ok(made) => made,
                Err(e) => return busy_or_failed(e, "the backup"),
            };
            let retention = left4me_protocol::backup::Retention {
                last: *keep_last,
                daily: *keep_daily,
                weekly: *keep_weekly,
            };
            let size = left4me_protocol::units::human_bytes(made.bytes);
            if retention.check().is_err() {
                return (
                    RunOutcome::Done,
                    format!("made backup {} ({size})", made.id),
                );
            }
            match crate::backup::prune(host, server.as_str(), retention) {
                Ok(pruned) => (
                    RunOutcome::Done,
                    format!(
                        "made backup {} ({size}); {} kept, {} removed",
                        made.id,
                        pruned.kept.len(),
                        pruned.removed.len()
                    ),
                ),
                Err(e) => busy_or_failed(e, "removing old backups"),
            }
        }
        ScheduleAction::UpdateCheck
        | ScheduleAction::GameUpdate { .. }
        | ScheduleAction::OverlayRefresh { .. } => (
            RunOutcome::Failed,
            format!("{} is for the whole host", action.with_article()),
        ),
    }
}

/// Fetches a Workshop overlay's items again, as `overlay workshop` does: unchanged items are
/// kept, and a running server that uses the overlay gets the new version at its next start.
/// Items that could not be fetched make the run a failure (and are told), the others stay.
fn overlay_refresh(
    host: &Host<'_>,
    overlay: &left4me_protocol::OverlayName,
    items: &[u64],
    collections: &[u64],
    api_url: Option<&str>,
) -> (RunOutcome, String) {
    let request = crate::workshop::Request {
        items: items.to_vec(),
        collections: collections.to_vec(),
        api: api_url.unwrap_or(crate::workshop::DEFAULT_API).to_owned(),
        parallel: 4,
        max_bytes: crate::import::DEFAULT_MAX_BYTES,
        retries: 3,
        backoff: Duration::from_millis(500),
    };
    match crate::workshop::fill(host, overlay.as_str(), &request, &mut |_| {}) {
        Ok(done) => {
            let mut detail = format!(
                "{}: {} fetched anew, {} unchanged, {} removed",
                done.overlay, done.downloaded, done.unchanged, done.removed
            );
            if done.pending {
                detail.push_str("; its running servers get them at their next start");
            }
            if done.failed.is_empty() {
                (RunOutcome::Done, detail)
            } else {
                let ids: Vec<String> = done.failed.iter().map(|f| f.id.to_string()).collect();
                (
                    RunOutcome::Failed,
                    format!("{detail}; could not fetch {}", ids.join(", ")),
                )
            }
        }
        Err(e) => (
            RunOutcome::Failed,
            format!(
                "the refresh of {overlay} failed: {}",
                crate::error::chain(&e)
            ),
        ),
    }
}

/// The steamcmd `install` would use here, or why there is none.
fn steamcmd_here(host: &Host<'_>) -> Result<PathBuf, String> {
    match crate::install::find_steamcmd(None, &host.layout) {
        Ok(Some(path)) => Ok(path),
        Ok(None) => Err("there is no steamcmd on this host: install the game first".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Updates the game as `install` does, with nobody to ask for a Steam Guard code: the new
/// build is made beside the one running servers use, and rolled out to them (a canary
/// first, each once its players have left). Skipped while a rollout is open; a build rolled
/// back here before is built but not rolled out again.
fn game_update(
    host: &Host<'_>,
    systemd: &dyn Systemd,
    steam_user: Option<&str>,
) -> (RunOutcome, String) {
    let last = crate::layout::read_rollout(&host.layout.installs());
    if let Some(open) = last.as_ref().filter(|r| r.state.is_open()) {
        return (
            RunOutcome::Skipped,
            format!(
                "the rollout of {} is {}: the update waits until it is done or {}",
                open.what(),
                open.state.describe(),
                match open.kind {
                    left4me_protocol::rollout::RolloutKind::Build => "rolled back",
                    left4me_protocol::rollout::RolloutKind::Changes => "stopped",
                }
            ),
        );
    }
    let steamcmd = match steamcmd_here(host) {
        Ok(path) => path,
        Err(why) => return (RunOutcome::Failed, why),
    };
    // A build rolled back here is not brought back by a schedule: the admin starts it.
    if let Some(rolled_back) = last
        .filter(|r| r.state == left4me_protocol::rollout::RolloutState::RolledBack)
        .and_then(|r| r.to_build)
    {
        let limits = crate::install::Limits::default();
        match crate::install::check(&host.layout, &steamcmd, None, limits) {
            Ok(check) if check.public_build == rolled_back => {
                return (
                    RunOutcome::Skipped,
                    format!(
                        "build {rolled_back} was rolled back on this host: it is not installed \
                         again by a schedule (update and start its rollout by hand)"
                    ),
                );
            }
            Ok(_) => {}
            Err(e) => return (RunOutcome::Failed, format!("the update check failed: {e}")),
        }
    }
    let options = crate::install::Options {
        login: steam_user.map(|user| crate::install::SteamLogin {
            user: user.to_owned(),
            password: None,
            guard_code: None,
        }),
        validate: false,
        limits: crate::install::Limits::default(),
        ask_code: None,
    };
    match crate::install::install(&host.layout, &steamcmd, options, &mut |_| Ok(())) {
        Ok(done) if !done.changed => (
            RunOutcome::Done,
            format!("the game is up to date (build {})", done.build),
        ),
        Ok(done) if !done.pending => (
            RunOutcome::Done,
            format!("updated the game to build {}", done.build),
        ),
        Ok(done) => {
            match crate::rollout::start(host, systemd, &crate::rollout::StartOptions::default()) {
                Ok(builds) => (
                    RunOutcome::Done,
                    format!(
                        "updated the game to build {}; its rollout began with {}",
                        done.build,
                        builds
                            .rollout
                            .map_or("?".to_owned(), |r| format!("canary {}", r.canary))
                    ),
                ),
                Err(e) => (
                    RunOutcome::Done,
                    format!(
                        "updated the game to build {}; running servers switch to it at their \
                         next start (no rollout: {e})",
                        done.build
                    ),
                ),
            }
        }
        Err(e) => (
            RunOutcome::Failed,
            format!("the game update failed: {}", crate::error::chain(&e)),
        ),
    }
}

/// The build an update check told of last.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Told {
    build: Option<String>,
}

/// Asks Steam for the public build (anonymously; steamcmd as `install --check` runs it) and
/// tells a newer one once.
fn update_check(host: &Host<'_>, hostname: &str) -> (RunOutcome, String) {
    let steamcmd = match steamcmd_here(host) {
        Ok(path) => path,
        Err(why) => return (RunOutcome::Failed, why),
    };
    let check = match crate::install::check(
        &host.layout,
        &steamcmd,
        None,
        crate::install::Limits::default(),
    ) {
        Ok(check) => check,
        Err(e) => return (RunOutcome::Failed, format!("the update check failed: {e}")),
    };
    let installed = check.installed_build.clone();
    if !check.update_available {
        return (
            RunOutcome::Done,
            format!("the game is up to date (build {})", check.public_build),
        );
    }
    let path: PathBuf = host.layout.automation().join(UPDATE_TOLD);
    let told: Told = read_no_follow(&path, 4096)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if told.build.as_deref() != Some(check.public_build.as_str()) {
        let what = EventKind::UpdateAvailable {
            installed: installed.clone(),
            public: check.public_build.clone(),
        };
        let automation = host.layout.automation();
        if let Err(e) = crate::notify::tell(&automation, None, what, hostname) {
            return (RunOutcome::Failed, e.to_string());
        }
        let told = Told {
            build: Some(check.public_build.clone()),
        };
        let json = serde_json::to_vec(&told).unwrap_or_default();
        if let Err(e) = write_atomic(&path, &json, 0o600) {
            return (
                RunOutcome::Failed,
                format!("cannot write {}: {e}", path.display()),
            );
        }
    }
    (
        RunOutcome::Done,
        format!(
            "Steam has build {}; this host has {}",
            check.public_build,
            installed.map_or("none installed".to_owned(), |b| format!("build {b}"))
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemds_reading_of_a_calendar_is_parsed() {
        let text = "  Original form: Mon *-*-* 04:00 Europe/Berlin\n\
                    Normalized form: Mon *-*-* 04:00:00 Europe/Berlin\n\
                    \x20   Next elapse: Mon 2026-12-07 03:00:00 UTC\n\
                    \x20      From now: 6 days left\n\
                    \x20      Iter. #2: Mon 2026-12-14 03:00:00 UTC\n\
                    \x20      From now: 1 week 6 days left\n";
        let read = parse_analyze(text).unwrap();
        assert_eq!(read.normalized, "Mon *-*-* 04:00:00 Europe/Berlin");
        assert_eq!(
            read.next_runs
                .iter()
                .map(|t| rfc3339(*t))
                .collect::<Vec<_>>(),
            vec![
                "2026-12-07T03:00:00.000000Z".to_owned(),
                "2026-12-14T03:00:00.000000Z".to_owned()
            ]
        );
        let never = "  Original form: 2020-01-01\nNormalized form: 2020-01-01 00:00:00\n    Next elapse: never\n";
        assert_eq!(parse_analyze(never).unwrap().next_runs, Vec::<u64>::new());
    }

    #[test]
    fn a_timer_carries_only_checked_text() {
        let schedule: Schedule = serde_json::from_value(serde_json::json!({
            "name": "nightly", "calendar": "*-*-* 04:00", "time_zone": "Europe/Berlin",
            "server": "coop-1", "action": "restart"
        }))
        .unwrap();
        let text = timer_text(&schedule);
        assert!(
            text.contains("\nOnCalendar=*-*-* 04:00 Europe/Berlin\n"),
            "{text}"
        );
        assert!(text.contains("\nUnit=left4me-schedule@nightly.service\n"));
        assert!(
            text.contains("\nPersistent=no\n"),
            "a restart is not made up at boot"
        );
        assert!(!text.contains('%'));
    }
}
