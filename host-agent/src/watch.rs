//! `watch`: finds servers whose game runs but no longer answers (a hung server: a deadlocked
//! plugin, a stuck map change). systemd cannot see it, since the process lives, so
//! `left4me-watch.timer` runs this every 15 seconds as `left4me`: each running server gets an
//! A2S_INFO query, and one that has been up for [`GRACE`] and misses [`MISSES`] looks in a
//! row is recorded in the outbox and notified once, and restarted when its spec asks for it
//! (`restart_when_hung`), through a schedule's drain and held against schedules. What it counts is kept in `automation/watch.json`.

use crate::AgentError;
use crate::error::io_context;
use crate::events::now_micros;
use crate::fsutil::write_atomic;
use crate::host::Host;
use crate::systemd::{Systemd, unit};
use left4me_protocol::events::EventKind;
use left4me_protocol::{InstanceSpec, ServerName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a server has after it is first seen running before its silence counts: a real
/// one loads its map first.
pub const GRACE: Duration = Duration::from_secs(60);
/// Looks in a row without an answer that make a server hung.
pub const MISSES: u32 = 3;
const STATE: &str = "watch.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    servers: BTreeMap<String, Seen>,
}

/// One server's process as the watch knows it.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
struct Seen {
    pid: u32,
    /// When this process was first seen running (microseconds since the epoch).
    since: u64,
    misses: u32,
    /// Whether its hang was told already (once per process).
    told: bool,
}

/// What to do about one server after a look.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Nothing: it answered, it is young, or its hang was told already.
    Fine,
    /// It missed a look, not enough yet.
    Missed(u32),
    /// Hung: tell it (and restart it when asked).
    Hung(u32),
}

/// The next state of a server seen running as `pid` at `now`, and what to do.
fn judge(before: Option<&Seen>, pid: u32, now: u64, answered: bool) -> (Seen, Verdict) {
    let mut seen = match before {
        Some(seen) if seen.pid == pid => seen.clone(),
        _ => Seen {
            pid,
            since: now,
            misses: 0,
            told: false,
        },
    };
    if answered {
        seen.misses = 0;
        seen.told = false;
        return (seen, Verdict::Fine);
    }
    if now.saturating_sub(seen.since) < GRACE.as_micros() as u64 {
        return (seen, Verdict::Fine);
    }
    seen.misses += 1;
    if seen.misses < MISSES {
        let misses = seen.misses;
        return (seen, Verdict::Missed(misses));
    }
    if seen.told {
        return (seen, Verdict::Fine);
    }
    seen.told = true;
    let misses = seen.misses;
    (seen, Verdict::Hung(misses))
}

/// Whether the server answers A2S_INFO within a second, asked twice.
fn answers(spec: &left4me_protocol::InstanceSpec) -> bool {
    let addr = (crate::server::query_ip(spec), spec.port).into();
    let Ok(client) = crate::a2s::Client::new(addr, Duration::from_secs(1)) else {
        return false;
    };
    (0..2).any(|_| client.info().is_ok())
}

/// One look at every running server; returns how many were found hung.
pub fn watch(host: &Host<'_>, systemd: &dyn Systemd, hostname: &str) -> Result<u32, AgentError> {
    let automation = host.layout.automation();
    let path = automation.join(STATE);
    let before: State = crate::fsutil::read_no_follow(&path, 1 << 20)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let mut after = State::default();
    let mut hung = 0;
    for (name, spec) in crate::server::list_specs(host)? {
        let Ok(state) = systemd.show(&unit(&name)) else {
            continue;
        };
        if state.active_state != "active" || state.sub_state != "running" || state.main_pid == 0 {
            continue;
        }
        let previous = before.servers.get(name.as_str());
        let (seen, verdict) = judge(previous, state.main_pid, now_micros(), answers(&spec));
        after.servers.insert(name.to_string(), seen);
        let Verdict::Hung(misses) = verdict else {
            continue;
        };
        hung += 1;
        let restarted =
            spec.restart_when_hung && restart(host, systemd, &automation, &name, &spec)?;
        crate::notify::tell(
            &automation,
            Some(name.as_str()),
            EventKind::Hung { misses, restarted },
            hostname,
        )?;
    }
    let text = serde_json::to_vec(&after).map_err(|e| AgentError::failed("", e))?;
    write_atomic(&path, &text, 0o600).map_err(io_context("write", &path))?;
    Ok(hung)
}

/// How long a hung server's restart waits for players it finds on it: it stopped answering,
/// so normally it finds none to count and goes on after the drain's few silent looks, but
/// one that came back with players on gets the drain's countdown.
const DRAIN: Duration = Duration::from_secs(5 * 60);

/// Restarts a hung server through the drain a schedule's restart goes through, held against
/// schedules (one acting on it now has it, and the watch leaves it alone). Whether it was
/// restarted.
fn restart(
    host: &Host<'_>,
    systemd: &dyn Systemd,
    automation: &std::path::Path,
    name: &ServerName,
    spec: &InstanceSpec,
) -> Result<bool, AgentError> {
    let Some(_held) = crate::schedule::hold_server(automation, name)? else {
        return Ok(false);
    };
    let mut players = crate::service::LivePlayers::new(host, name, spec);
    crate::drain::drain(
        &mut players,
        &crate::drain::Wall(std::time::Instant::now()),
        DRAIN,
        "restarts",
    );
    Ok(crate::service::control(
        host,
        systemd,
        crate::service::Action::Restart,
        name.as_str(),
    )
    .is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn a_server_is_hung_after_its_grace_and_three_silent_looks_and_told_once() {
        let t0 = 1_000 * S;
        let (seen, verdict) = judge(None, 42, t0, false);
        assert_eq!(verdict, Verdict::Fine, "young");
        let (seen, verdict) = judge(Some(&seen), 42, t0 + 61 * S, false);
        assert_eq!(verdict, Verdict::Missed(1));
        let (seen, verdict) = judge(Some(&seen), 42, t0 + 76 * S, false);
        assert_eq!(verdict, Verdict::Missed(2));
        let (seen, verdict) = judge(Some(&seen), 42, t0 + 91 * S, false);
        assert_eq!(verdict, Verdict::Hung(3));
        let (seen, verdict) = judge(Some(&seen), 42, t0 + 106 * S, false);
        assert_eq!(verdict, Verdict::Fine, "told once");
        // It answers again: the count starts over.
        let (seen, verdict) = judge(Some(&seen), 42, t0 + 121 * S, true);
        assert_eq!((verdict, seen.misses, seen.told), (Verdict::Fine, 0, false));
        // A new process (a restart) gets its grace again.
        let (_, verdict) = judge(Some(&seen), 43, t0 + 136 * S, false);
        assert_eq!(verdict, Verdict::Fine);
    }
}
