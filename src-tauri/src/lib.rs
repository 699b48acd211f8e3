//! The app's native shell: opens the window, holds app-core's state and exposes it to the
//! UI as thin commands and events, typed by `left4me_protocol`. Logic belongs in app-core.

mod commands;
mod rendering;
mod state;

use state::AppState;
use tauri::Manager;

/// Builds and runs the app until its last window closes.
pub fn run() {
    tauri::Builder::default()
        .setup(|app| {
            rendering::apply(app);
            app.manage(AppState::default());
            // The engine opens while the window loads its page.
            let handle = app.handle().clone();
            let resources = app.path().resource_dir().ok();
            std::thread::Builder::new()
                .name("open-engine".into())
                .spawn(move || {
                    handle.state::<AppState>().open(resources);
                    commands::jobs::forward_events(handle);
                })?;
            Ok(())
        })
        .invoke_handler(commands::handle)
        .run(tauri::generate_context!())
        .unwrap_or_else(|err| {
            eprintln!("left4me: cannot start the app: {err}");
            std::process::exit(1);
        });
}
