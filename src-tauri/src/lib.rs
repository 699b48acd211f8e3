//! The app's native shell: opens the window, holds app-core's state and exposes it to the
//! UI as thin commands. Logic belongs in app-core, not here.

mod commands;
mod state;

use state::AppState;

/// Builds and runs the app until its last window closes.
pub fn run() {
    tauri::Builder::default()
        .manage(AppState::open())
        .invoke_handler(tauri::generate_handler![commands::app::app_facts])
        .run(tauri::generate_context!())
        .unwrap_or_else(|err| {
            eprintln!("left4me: cannot start the app: {err}");
            std::process::exit(1);
        });
}
