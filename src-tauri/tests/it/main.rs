//! Integration tests of the desktop app.

/// The real window: the app binary under Xvfb, driven by WebDriver through tauri-driver and
/// WebKitWebDriver.
mod window;

/// The whole flow in the window against a real test host.
mod flow;
