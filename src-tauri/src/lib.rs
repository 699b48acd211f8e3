//! The app's native shell: opens the window, holds app-core's state and exposes it to the
//! UI as thin commands and events, typed by `left4me_protocol`. Logic belongs in app-core.

mod closing;
mod commands;
mod logs;
mod notify;
mod rendering;
mod state;
mod window_state;

use app_core::instance::{self, Claim, Instance};
use state::AppState;
use tauri::Manager;

/// The smallest window the pages are laid out for (`tauri.conf.json` says the same).
const MIN_SIZE: (u32, u32) = (1024, 700);

/// Builds and runs the app until its last window closes. A launch while another app has
/// the same data folder shows that app's window and ends.
pub fn run() {
    if let Ok(dir) = app_core::paths::log_dir() {
        app_core::applog::install(&dir);
    }
    let instance = match app_core::paths::data_dir().map(|dir| instance::claim(&dir)) {
        Ok(Ok(Claim::First(instance))) => Some(instance),
        Ok(Ok(Claim::Handed)) => {
            log::info!("already running; its window was brought to the front");
            return;
        }
        Ok(Err(err)) => {
            log::error!("{err}");
            std::process::exit(1);
        }
        // The window says why there is no data folder.
        Err(_) => None,
    };
    log::info!(
        "left4me {} starting, data in {}",
        env!("CARGO_PKG_VERSION"),
        app_core::paths::data_dir().map_or_else(|e| e.to_string(), |d| d.display().to_string())
    );
    tauri::Builder::default()
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_dialog::init())
        .setup(move |app| {
            if let Some(instance) = instance {
                serve_later_launches(instance, app.handle().clone());
            }
            rendering::apply(app);
            if let Some(window) = app.get_webview_window("main") {
                window_state::WindowState::apply(&window, MIN_SIZE);
            }
            app.manage(window_state::WindowState::default());
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
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                closing::requested(window, api);
            }
            window
                .state::<window_state::WindowState>()
                .on_event(window, event);
        })
        .invoke_handler(commands::handle)
        .run(tauri::generate_context!())
        .unwrap_or_else(|err| {
            log::error!("cannot start the app: {err}");
            std::process::exit(1);
        });
}

/// Brings the window to the front for each later launch; once it is gone (the app is
/// ending), the later launch waits for this one to end and opens.
fn serve_later_launches(instance: Instance, handle: tauri::AppHandle) {
    instance.serve(move || {
        let Some(window) = handle.get_webview_window("main") else {
            return false;
        };
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        true
    });
}
