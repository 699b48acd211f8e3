//! Integration tests of the desktop app.

/// The real window: the app binary under Xvfb, driven by WebDriver through tauri-driver and
/// WebKitWebDriver.
#[path = "../support/window.rs"]
mod support;

/// First run, login, accounts, the own password, overlays edited and waiting for restarts.
mod window;

use fantoccini::Client;
use std::path::Path;
use support::{Driver, Xvfb};

/// The app under test in a fresh data folder, in a window on its own Xvfb.
async fn open_window() -> (tempfile::TempDir, Xvfb, Driver, Client) {
    open_window_with(&[]).await
}

/// `open_window` with `env` set for the app.
async fn open_window_with(env: &[(&str, String)]) -> (tempfile::TempDir, Xvfb, Driver, Client) {
    support::open_app(Path::new(env!("CARGO_BIN_EXE_left4me")), env).await
}

/// The whole flow in the window against a real test host.
mod flow;

/// The `.deb` installed into a clean Debian root, its app set up a test host there.
mod package;

/// One app per data folder, and the close that asks while jobs run.
mod desktop;

/// A notification service that records what the app raises.
mod notifications;

/// The local vault, on a computer without an OS credential store.
mod vault;
