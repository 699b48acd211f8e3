//! Integration tests of the `l4d2-agent` binary as people and the app call it.

/// Crashes recorded in the host's outbox and notified from the host, on the test hosts.
mod automation;
/// Backups taken while the game writes, restored exactly, here and on another host.
mod backups;
/// Server and overlay commands: exit codes, messages, JSON, files on disk.
mod commands;
/// The example script overlays, with their download source faked.
mod examples;
/// Fetching steamcmd from a (local) download server.
mod fetch;
/// What `left4me` and the game account can make root do for them, on the test hosts.
mod hostile;
/// `install` with the stand-in steamcmd against a temporary root.
mod install;
/// Agents killed midway, and the runs that repair after them.
mod interrupted;
/// The modules' dependencies run one way.
mod layering;
/// Resource limits on the unit and its cgroup, on the test hosts.
mod limits;
/// Real overlayfs and idmapped mounts, and the mount-cycle regression.
mod mounts;
/// The notifier against local receivers: retries, refusals, one at a time.
mod notify;
/// The agent on the test hosts: setup, systemd, A2S, crash loops, privileges.
mod on_hosts;
/// A game update rolled across running servers, canary first; a failed canary holds it.
mod rollout;
/// What the game needs from a host: the 32-bit runtime set-up installs, or refuses without.
mod runtime;
/// Schedules fired by real timers on the test hosts: drains, due times, root's checks.
mod schedules;
/// `overlay script` and `fetch`.
mod script;
/// The shipped static binary, in an empty root.
mod static_binary;
/// The corpus of steamcmd transcripts through the agent's reading of them.
mod transcripts;
/// `--version`, `version`, `version --json`, and the exit policy.
mod version;
/// `overlay workshop` against a fake Steam Web API.
mod workshop;

/// Tests that mount on this machine take turns, so one can compare the whole mount table
/// before and after without seeing another's mounts.
pub fn mount_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}
