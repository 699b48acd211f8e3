//! Where a command's time goes, for `cargo xtask bench`: with `L4D2_AGENT_TIMINGS` set in
//! its environment, the agent writes one `timings:` line on stderr at its end, each phase
//! marked with [`mark`] and the milliseconds since the mark before it. Without it, a mark
//! costs one check of a flag.

use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Phases {
    since: Instant,
    marks: Vec<(&'static str, Duration)>,
}

static PHASES: Mutex<Option<Phases>> = Mutex::new(None);

/// Starts recording when the environment asks for it.
pub fn begin() {
    if std::env::var_os("L4D2_AGENT_TIMINGS").is_some() {
        *PHASES.lock().unwrap_or_else(|e| e.into_inner()) = Some(Phases {
            since: Instant::now(),
            marks: Vec::new(),
        });
    }
}

/// Ends the phase `what`: the time since the last mark goes to it.
pub fn mark(what: &'static str) {
    if let Some(phases) = PHASES.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        let now = Instant::now();
        phases.marks.push((what, now - phases.since));
        phases.since = now;
    }
}

/// Writes the line, if recording.
pub fn end() {
    if let Some(phases) = PHASES.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let parts: Vec<String> = phases
            .marks
            .iter()
            .map(|(what, took)| format!("{what}={:.2}", took.as_secs_f64() * 1000.0))
            .collect();
        eprintln!("timings: {}", parts.join(" "));
    }
}
