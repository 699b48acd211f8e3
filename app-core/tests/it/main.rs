//! Integration tests of app-core against real files.

/// Accounts, login and its rate limits.
mod accounts;
/// Faults: cut connections, changed host keys, a killed app.
mod faults;
/// Ten servers on one host, with the ports the app hands out.
mod fleet;
/// The job engine: lanes, states, cancellation, events.
mod jobs;
/// The whole life through app-core on the test hosts.
mod life;
/// The model's rules: scoping to the logged-in user, blueprints, overlays, servers.
mod model;
/// Overlay content on the hosts: Workshop overlays.
mod overlays;
/// The OS credential store.
mod secrets;
/// SSH with russh against the test hosts' sshd.
mod ssh;
/// The SQLite store: a real file in a temporary folder.
mod store;
/// Bringing the test hosts up through the app (shared with the fan-out benchmark).
#[path = "../support/hosts.rs"]
mod support;

/// Tests that use the test hosts take turns: they share accounts and sshd.
pub fn hosts_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}
