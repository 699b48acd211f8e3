//! What systemd runs when a server's game ends: `hook stopped <name>` (the server unit's
//! `ExecStopPost=`, started as root, which becomes `left4me` before this runs) and
//! `hook gave-up <name>` (`left4me-gave-up@<name>.service`, the unit's `OnFailure=`, as
//! `left4me`). Each records what happened in the outbox and queues its notification.

use crate::AgentError;
use crate::layout::Layout;
use crate::systemd::{Systemd, unit};
use left4me_protocol::ServerName;
use left4me_protocol::events::{EventKind, StopCause};

/// How many console lines a crash report quotes.
pub const LAST_LINES: usize = 15;

/// Why the game ended, from what systemd tells `ExecStopPost=` (`$SERVICE_RESULT`,
/// `$EXIT_CODE`, `$EXIT_STATUS`); `None` for an ending that was asked for. The console
/// passes a game killed by a signal on as 128 + the signal, as a shell would.
pub fn stop_cause(result: &str, exit_code: &str, exit_status: &str) -> Option<StopCause> {
    match (result, exit_code) {
        ("success", _) | ("", _) => None,
        ("oom-kill", _) => Some(StopCause::OutOfMemory),
        ("timeout", _) => Some(StopCause::Timeout),
        (_, "exited") => match exit_status.parse::<i32>() {
            Ok(status) if (129..=159).contains(&status) => Some(StopCause::Signal {
                signal: signal_name(status - 128),
            }),
            Ok(status) => Some(StopCause::Exited { status }),
            Err(_) => Some(StopCause::Other {
                result: result.to_owned(),
            }),
        },
        (_, "killed" | "dumped") => Some(StopCause::Signal {
            signal: match exit_status.parse::<i32>() {
                Ok(n) => signal_name(n),
                Err(_) => format!("SIG{}", exit_status.trim_start_matches("SIG")),
            },
        }),
        _ => Some(StopCause::Other {
            result: result.to_owned(),
        }),
    }
}

fn signal_name(n: i32) -> String {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    match usize::try_from(n - 1).ok().and_then(|i| NAMES.get(i)) {
        Some(name) => format!("SIG{name}"),
        None => format!("signal {n}"),
    }
}

/// `hook stopped <name>`: records a crash (with the console's last lines) when the game
/// ended on its own.
pub fn stopped(layout: &Layout, name: &ServerName, host: &str) -> Result<(), AgentError> {
    let var = |key| std::env::var(key).unwrap_or_default();
    let Some(cause) = stop_cause(
        &var("SERVICE_RESULT"),
        &var("EXIT_CODE"),
        &var("EXIT_STATUS"),
    ) else {
        return Ok(());
    };
    let run = var("INVOCATION_ID");
    let last_lines = if run.is_empty() {
        Vec::new()
    } else {
        crate::logs::last_lines_of_run(name, &run, LAST_LINES)
    };
    record(layout, name, EventKind::Crashed { cause, last_lines }, host)
}

/// `hook gave-up <name>`: records that systemd stopped restarting the server.
pub fn gave_up(
    layout: &Layout,
    systemd: &dyn Systemd,
    name: &ServerName,
    host: &str,
) -> Result<(), AgentError> {
    // Every restart systemd made or tried since the server was last started followed a
    // crash, the one its start limit refused included.
    let restarts = systemd.show(&unit(name)).map_or(0, |state| state.restarts);
    record(
        layout,
        name,
        EventKind::GaveUp {
            crashes: restarts.max(1),
        },
        host,
    )
}

fn record(
    layout: &Layout,
    name: &ServerName,
    what: EventKind,
    host: &str,
) -> Result<(), AgentError> {
    crate::notify::tell(&layout.automation(), Some(name.as_str()), what, host).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_are_told_apart() {
        let signal = |s: &str| {
            Some(StopCause::Signal {
                signal: s.to_owned(),
            })
        };
        let cases = [
            (("success", "exited", "0"), None),
            (
                ("exit-code", "exited", "1"),
                Some(StopCause::Exited { status: 1 }),
            ),
            (("exit-code", "exited", "139"), signal("SIGSEGV")),
            (("exit-code", "exited", "134"), signal("SIGABRT")),
            (("signal", "killed", "KILL"), signal("SIGKILL")),
            (("core-dump", "dumped", "SEGV"), signal("SIGSEGV")),
            (("oom-kill", "killed", "KILL"), Some(StopCause::OutOfMemory)),
            (("timeout", "killed", "TERM"), Some(StopCause::Timeout)),
            (
                ("watchdog", "", ""),
                Some(StopCause::Other {
                    result: "watchdog".into(),
                }),
            ),
        ];
        for ((result, code, status), want) in cases {
            assert_eq!(
                stop_cause(result, code, status),
                want,
                "{result} {code} {status}"
            );
        }
    }
}
