//! Controlling `left4me-server@<name>.service` through `systemctl`, behind a trait so the
//! command logic can be tested without systemd and then for real on the test hosts.

use left4me_protocol::ServerName;
use left4me_protocol::time::rfc3339;
use std::collections::{HashMap, HashSet};
use std::process::Command;

/// The unit that runs a server.
pub fn unit(name: &ServerName) -> String {
    format!("left4me-server@{name}.service")
}

/// The unit that mounts a server's game tree; the server's unit pulls it in.
pub fn mount_unit(name: &ServerName) -> String {
    format!("left4me-mount@{name}.service")
}

/// What systemd says about a unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitState {
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    pub main_pid: u32,
    /// When it last became active, RFC 3339 in UTC.
    pub since: Option<String>,
    pub restarts: u32,
    /// How its last run ended (`success`, `exit-code`, `start-limit-hit`, …).
    pub result: String,
}

impl UnitState {
    pub fn is_active(&self) -> bool {
        matches!(
            self.active_state.as_str(),
            "active" | "activating" | "reloading"
        )
    }

    /// Parses `systemctl show` output (`Key=value` lines).
    pub fn parse(text: &str) -> UnitState {
        let mut state = UnitState::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "LoadState" => state.load_state = value.to_owned(),
                "ActiveState" => state.active_state = value.to_owned(),
                "SubState" => state.sub_state = value.to_owned(),
                "MainPID" => state.main_pid = value.parse().unwrap_or(0),
                // `--timestamp=unix` prints `@<seconds>`; 0 or empty means never.
                "ActiveEnterTimestamp" => {
                    state.since = value
                        .strip_prefix('@')
                        .and_then(|secs| secs.parse::<u64>().ok())
                        .filter(|secs| *secs > 0)
                        .map(|secs| rfc3339(secs * 1_000_000));
                }
                "NRestarts" => state.restarts = value.parse().unwrap_or(0),
                "Result" => state.result = value.to_owned(),
                _ => {}
            }
        }
        state
    }
}

#[derive(Debug, thiserror::Error)]
#[error("systemctl {action} {unit} failed: {message}")]
pub struct SystemdError {
    pub action: String,
    pub unit: String,
    pub message: String,
}

pub trait Systemd {
    /// `start`, `stop`, `restart` or `reset-failed` of one unit.
    fn control(&self, action: &str, unit: &str) -> Result<(), SystemdError>;
    fn show(&self, unit: &str) -> Result<UnitState, SystemdError>;
    /// [`Self::show`] of several units, in their order.
    fn show_many(&self, units: &[String]) -> Vec<Result<UnitState, SystemdError>> {
        units.iter().map(|unit| self.show(unit)).collect()
    }
    fn daemon_reload(&self) -> Result<(), SystemdError>;
    /// The last error the agent logged from `unit` since `since` (seconds since the epoch),
    /// without its `l4d2-agent: ` prefix: why a mount step failed.
    fn agent_error(&self, unit: &str, since: u64) -> Option<String>;
}

/// The agent's error line among a unit's log lines, the last one.
pub fn agent_error_in(lines: &str) -> Option<String> {
    lines
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("l4d2-agent: "))
        .map(|l| l.trim().to_owned())
}

/// The real thing: `systemctl` on this host.
pub struct Systemctl;

fn systemctl(args: &[&str], action: &str, unit: &str) -> Result<String, SystemdError> {
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .map_err(|e| SystemdError {
            action: action.to_owned(),
            unit: unit.to_owned(),
            message: format!("cannot run systemctl: {e}"),
        })?;
    if !out.status.success() {
        let message = String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        return Err(SystemdError {
            action: action.to_owned(),
            unit: unit.to_owned(),
            message,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Systemd for Systemctl {
    fn control(&self, action: &str, unit: &str) -> Result<(), SystemdError> {
        systemctl(&[action, unit], action, unit).map(drop)
    }

    /// Asks systemd over the system bus, which takes well under a millisecond; falls back to
    /// `systemctl show` where the bus cannot be reached.
    fn show(&self, unit: &str) -> Result<UnitState, SystemdError> {
        if let Ok(state) = show_over_dbus(unit) {
            return Ok(state);
        }
        let text = systemctl(
            &[
                "show",
                unit,
                "--timestamp=unix",
                "-p",
                "LoadState,ActiveState,SubState,MainPID,ActiveEnterTimestamp,NRestarts,Result",
            ],
            "show",
            unit,
        )?;
        Ok(UnitState::parse(&text))
    }

    /// Every unit's properties asked on one bus connection, all at once; a unit the bus
    /// could not tell about is asked again alone.
    fn show_many(&self, units: &[String]) -> Vec<Result<UnitState, SystemdError>> {
        let told = show_many_over_dbus(units).unwrap_or_default();
        units
            .iter()
            .enumerate()
            .map(|(i, unit)| match told.get(i) {
                Some(Ok(state)) => Ok(state.clone()),
                _ => self.show(unit),
            })
            .collect()
    }

    fn daemon_reload(&self) -> Result<(), SystemdError> {
        systemctl(&["daemon-reload"], "daemon-reload", "").map(drop)
    }

    fn agent_error(&self, unit: &str, since: u64) -> Option<String> {
        let out = Command::new("journalctl")
            .args(["--no-pager", "-q", "-o", "cat", "-u", unit])
            .arg(format!("--since=@{since}"))
            .output()
            .ok()?;
        agent_error_in(&String::from_utf8_lossy(&out.stdout))
    }
}

/// A fake [`Systemd`]: units that follow start/stop like systemd's would, and a log of the
/// calls. `fail_start` makes a unit fail as soon as it starts (a crash before it is seen).
#[derive(Default)]
pub struct Recording {
    state: std::sync::Mutex<RecordingState>,
}

#[derive(Default)]
struct RecordingState {
    active: std::collections::BTreeMap<String, String>,
    calls: Vec<String>,
    fail_start: Option<String>,
}

impl Recording {
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn set_state(&self, unit: &str, active_state: &str) {
        let mut state = self.state.lock().unwrap();
        state
            .active
            .insert(unit.to_owned(), active_state.to_owned());
    }

    pub fn fail_start(&self, unit: &str) {
        self.state.lock().unwrap().fail_start = Some(unit.to_owned());
    }
}

impl Systemd for Recording {
    fn control(&self, action: &str, unit: &str) -> Result<(), SystemdError> {
        let mut state = self.state.lock().unwrap();
        state.calls.push(format!("{action} {unit}"));
        // A server unit pulls in its mount unit: when that fails, so does the start.
        let mount = unit.replace("left4me-server@", "left4me-mount@");
        if action == "start" && mount != unit && state.fail_start.as_deref() == Some(&mount) {
            state.active.insert(mount, "failed".to_owned());
            return Err(SystemdError {
                action: action.to_owned(),
                unit: unit.to_owned(),
                message: format!("A dependency job for {unit} failed."),
            });
        }
        let next = match action {
            "start" if state.fail_start.as_deref() == Some(unit) => "failed",
            "start" => "active",
            "stop" => "inactive",
            "reset-failed" => "inactive",
            _ => return Ok(()),
        };
        state.active.insert(unit.to_owned(), next.to_owned());
        Ok(())
    }

    fn show(&self, unit: &str) -> Result<UnitState, SystemdError> {
        let state = self.state.lock().unwrap();
        let active = state
            .active
            .get(unit)
            .cloned()
            .unwrap_or_else(|| "inactive".to_owned());
        Ok(UnitState {
            load_state: "loaded".to_owned(),
            result: if active == "failed" {
                "exit-code"
            } else {
                "success"
            }
            .to_owned(),
            active_state: active,
            ..UnitState::default()
        })
    }

    fn daemon_reload(&self) -> Result<(), SystemdError> {
        self.state
            .lock()
            .unwrap()
            .calls
            .push("daemon-reload".to_owned());
        Ok(())
    }

    fn agent_error(&self, unit: &str, _since: u64) -> Option<String> {
        let state = self.state.lock().unwrap();
        (state.fail_start.as_deref() == Some(unit)).then(|| format!("{unit} was made to fail"))
    }
}

fn show_over_dbus(unit: &str) -> std::io::Result<UnitState> {
    show_many_over_dbus(std::slice::from_ref(&unit.to_owned()))?
        .pop()
        .expect("one answer per unit")
}

/// What [`UnitState`] holds beyond the unit list's states, in the order `unit_state`
/// reads them.
const PROPERTIES: [(&str, &str); 4] = [
    ("Unit", "ActiveEnterTimestamp"),
    ("Service", "MainPID"),
    ("Service", "NRestarts"),
    ("Service", "Result"),
];

/// Whether this process keeps its bus connection between [`Systemd::show_many`] calls,
/// with what systemd told on it ([`keep_bus`]).
static KEEP_BUS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Has this process keep its bus connection between calls (`serve`, which answers many):
/// it subscribes to systemd's signals about the units it reads, and asks again only about
/// those whose properties changed since.
pub fn keep_bus() {
    KEEP_BUS.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// A kept bus connection and what it was told.
struct KeptBus {
    bus: crate::dbus::Bus,
    /// Whether systemd sends its signals to it (`Subscribe` answered).
    watching: bool,
    /// The unit paths a signal match was added for.
    watched: HashSet<String>,
    /// The last properties read of each watched unit, by path, with its states then.
    known: HashMap<String, UnitState>,
}

thread_local! {
    static KEPT: std::cell::RefCell<Option<KeptBus>> = const { std::cell::RefCell::new(None) };
}

/// Two rounds on one connection: the states of those of `units` systemd has loaded, in one
/// answer (asking for a unit that is not loaded would load it, which is slow), then the
/// other properties of the loaded ones, every call sent before a reply is read. On a kept
/// connection ([`keep_bus`]) the second round asks only about units whose properties
/// changed since they were last read (systemd's signals say which), or whose states differ.
fn show_many_over_dbus(units: &[String]) -> std::io::Result<Vec<std::io::Result<UnitState>>> {
    use crate::dbus::{Bus, Call, ListedUnit, listed_units, property_value};
    if units.is_empty() {
        // No patterns would list every unit.
        return Ok(Vec::new());
    }
    if units.iter().any(|u| u.contains(['*', '?', '[', ']', '\\'])) {
        return Err(std::io::Error::other("a unit name is not its own pattern"));
    }
    let keep = KEEP_BUS.load(std::sync::atomic::Ordering::Relaxed);
    let mut kept = match KEPT.take() {
        Some(kept) => kept,
        None => {
            let mut bus = Bus::system()?;
            let watching = keep && bus.calls(&[Call::subscribe()]).remove(0).is_ok();
            KeptBus {
                bus,
                watching,
                watched: HashSet::new(),
                known: HashMap::new(),
            }
        }
    };
    // Unit names are patterns that match themselves (checked above). Signals sent before
    // the list's answer are read before it.
    let patterns: Vec<&str> = units.iter().map(String::as_str).collect();
    let listed = listed_units(kept.bus.calls(&[Call::list_units(&patterns)]).remove(0)?)?;
    let changed = kept.bus.take_changed();
    // What is known of a unit no longer loaded is not trusted when it is loaded again.
    kept.known
        .retain(|path, _| listed.iter().any(|l| &l.path == path));
    let found: Vec<Option<&ListedUnit>> = units
        .iter()
        .map(|unit| listed.iter().find(|l| &l.name == unit))
        .collect();
    let ask: Vec<&ListedUnit> = found
        .iter()
        .flatten()
        .copied()
        .filter(|l| {
            !kept.watching
                || changed.contains(&l.path)
                || kept.known.get(&l.path).is_none_or(|k| {
                    (&k.load_state, &k.active_state, &k.sub_state)
                        != (&l.load_state, &l.active_state, &l.sub_state)
                })
        })
        .collect();
    // A unit's signals are asked for before its properties are read: a change after the
    // reading is told.
    let mut calls: Vec<Call> = Vec::new();
    if kept.watching {
        for l in &ask {
            if kept.watched.insert(l.path.clone()) {
                calls.push(Call::watch(&l.path));
            }
        }
    }
    let watches = calls.len();
    calls.extend(ask.iter().flat_map(|l| {
        PROPERTIES.iter().map(|(interface, property)| {
            Call::get_property(
                &l.path,
                &format!("org.freedesktop.systemd1.{interface}"),
                property,
            )
        })
    }));
    let mut answers = kept.bus.calls(&calls);
    if answers[..watches].iter().any(Result::is_err) {
        // The bus refused a match (it limits them per connection): without signals, every
        // unit is read each time, on this connection still.
        kept.watching = false;
        kept.known.clear();
    }
    let healthy = answers[watches..].iter().all(Result::is_ok);
    let mut values = answers.drain(watches..).map(|r| r.and_then(property_value));
    let mut read: HashMap<&str, std::io::Result<UnitState>> = HashMap::new();
    for l in &ask {
        let state = unit_state(l, values.by_ref().take(PROPERTIES.len()).collect());
        if let (true, Ok(state)) = (kept.watching, &state) {
            kept.known.insert(l.path.clone(), state.clone());
        }
        read.insert(l.path.as_str(), state);
    }
    let states = found
        .into_iter()
        .map(|found| match found {
            Some(listed) => match read.remove(listed.path.as_str()) {
                Some(state) => state,
                None => kept.known.get(&listed.path).cloned().ok_or_else(|| {
                    std::io::Error::other("D-Bus: a unit's properties were not read")
                }),
            },
            // Not loaded: inactive, and nothing to report about a last run.
            None => Ok(UnitState {
                load_state: "not-loaded".to_owned(),
                active_state: "inactive".to_owned(),
                sub_state: "dead".to_owned(),
                result: "success".to_owned(),
                ..UnitState::default()
            }),
        })
        .collect();
    if keep && healthy {
        KEPT.set(Some(kept));
    }
    Ok(states)
}

fn unit_state(
    listed: &crate::dbus::ListedUnit,
    got: Vec<std::io::Result<crate::dbus::Value>>,
) -> std::io::Result<UnitState> {
    let mut got = got.into_iter();
    let mut next = || {
        got.next()
            .unwrap_or_else(|| Err(std::io::Error::other("D-Bus: a property went unanswered")))
    };
    let text = |v: crate::dbus::Value| v.as_str().unwrap_or_default().to_owned();
    let number = |v: crate::dbus::Value| v.as_u64().unwrap_or_default();
    let since = number(next()?);
    Ok(UnitState {
        load_state: listed.load_state.clone(),
        active_state: listed.active_state.clone(),
        sub_state: listed.sub_state.clone(),
        main_pid: number(next()?) as u32,
        restarts: number(next()?) as u32,
        result: text(next()?),
        since: (since > 0).then(|| rfc3339(since)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_last_error_is_found_among_a_units_lines() {
        let lines = "Starting left4me game tree of server x...\nl4d2-agent: cannot mount server \"x\": one\nl4d2-agent: cannot mount server \"x\": two\nleft4me-mount@x.service: Main process exited\n";
        assert_eq!(
            agent_error_in(lines).as_deref(),
            Some("cannot mount server \"x\": two")
        );
        assert_eq!(agent_error_in("nothing\n"), None);
    }

    #[test]
    fn show_output_is_parsed() {
        let state = UnitState::parse(
            "LoadState=loaded\nActiveState=failed\nSubState=failed\nMainPID=0\nActiveEnterTimestamp=@1795689296\nNRestarts=4\nResult=start-limit-hit\n",
        );
        assert_eq!(state.active_state, "failed");
        assert_eq!(state.result, "start-limit-hit");
        assert_eq!(state.restarts, 4);
        assert_eq!(state.since.as_deref(), Some("2026-11-26T10:34:56.000000Z"));
        assert!(!state.is_active());
    }
}
