//! The app's native shell: opens the window, holds app-core's state and exposes it to the
//! UI as thin commands and events. Logic belongs in app-core, not here.

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
        .invoke_handler(tauri::generate_handler![
            commands::app::app_facts,
            commands::auth::needs_first_admin,
            commands::auth::create_first_admin,
            commands::auth::login,
            commands::auth::logout,
            commands::auth::me,
            commands::auth::change_password,
            commands::auth::users,
            commands::auth::create_user,
            commands::auth::set_user_disabled,
            commands::auth::set_user_admin,
            commands::auth::reset_password,
            commands::hosts::hosts,
            commands::hosts::add_host,
            commands::hosts::fetch_host_key,
            commands::hosts::confirm_host_key,
            commands::hosts::set_up_host,
            commands::hosts::install_game,
            commands::hosts::refresh_host,
            commands::hosts::remove_host,
            commands::hosts::steam_account,
            commands::hosts::set_steam_login,
            commands::hosts::forget_steam_account,
            commands::hosts::check_game_update,
            commands::content::overlays,
            commands::content::create_overlay,
            commands::content::update_overlay,
            commands::content::delete_overlay,
            commands::content::upload_overlay,
            commands::content::fill_overlay,
            commands::content::refresh_overlay,
            commands::content::pending_restarts,
            commands::content::blueprints,
            commands::content::create_blueprint,
            commands::content::update_blueprint,
            commands::content::delete_blueprint,
            commands::servers::servers,
            commands::servers::create_server,
            commands::servers::reassign_server,
            commands::servers::start_server,
            commands::servers::stop_server,
            commands::servers::restart_server,
            commands::servers::delete_server,
            commands::servers::statuses,
            commands::servers::rcon,
            commands::servers::follow_logs,
            commands::servers::stop_logs,
            commands::servers::watch_statuses,
            commands::servers::unwatch_statuses,
            commands::jobs::jobs,
            commands::jobs::job_events,
            commands::jobs::cancel_job,
        ])
        .run(tauri::generate_context!())
        .unwrap_or_else(|err| {
            eprintln!("left4me: cannot start the app: {err}");
            std::process::exit(1);
        });
}
