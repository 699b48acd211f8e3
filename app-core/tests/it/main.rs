//! Integration tests of app-core against real files.

/// Accounts, login and its rate limits.
mod accounts;
/// The job engine: lanes, states, cancellation, events.
mod jobs;
/// The model's rules: scoping to the logged-in user, blueprints, overlays, servers.
mod model;
/// The OS credential store.
mod secrets;
/// SSH with russh against the test hosts' sshd.
mod ssh;
/// The SQLite store: a real file in a temporary folder.
mod store;
