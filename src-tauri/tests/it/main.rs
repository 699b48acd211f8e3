//! Integration tests of the desktop app.

/// The real window: the app binary under Xvfb, driven by WebDriver through tauri-driver and
/// WebKitWebDriver.
mod window;
