//! The window's commands, one module per area, and the one place that pairs each
//! [`left4me_protocol::command`] type with its handler. A handler takes state and the
//! command's arguments, calls app-core and returns the command's `Answer` or an `IpcError`.
//! Handlers that queue jobs or talk to hosts are async: they run on the tokio runtime that
//! app-core's engine uses; the others run one at a time on a thread of their own (`worker`),
//! never on the window's main thread.

pub mod app;
pub mod auth;
pub mod content;
pub mod hosts;
pub mod jobs;
pub mod servers;
mod worker;

use crate::state::AppState;
use left4me_protocol::command::{self, Command};
use left4me_protocol::{ErrorCode, Event, IpcError};
use serde::Serialize;
use tauri::ipc::{Invoke, InvokeBody, InvokeError};
use tauri::{AppHandle, Emitter, Manager};

/// Registers the handlers: `sync`/`async` handlers take `(&AppState, Command)`, `events`
/// handlers `(&AppHandle, Command)` (they push events), and each returns
/// `Result<Command::Answer, IpcError>`, checked by the compiler. It fails to compile when a
/// handler is not named like its command or a command of the protocol has no handler.
macro_rules! handlers {
    ($($kind:tt $command:ident => $area:ident::$handler:ident,)*) => {
        /// Answers one `invoke` from the window; `false` for a command nobody registered.
        pub fn handle(invoke: Invoke) -> bool {
            let name = invoke.message.command();
            $(
                if name == <command::$command as Command>::NAME {
                    handlers!(@$kind invoke, command::$command, $area::$handler);
                    return true;
                }
            )*
            false
        }

        /// The commands answered here.
        pub const HANDLED: &[&str] = &[$(<command::$command as Command>::NAME),*];

        $(
            const _: () = assert!(
                same(<command::$command as Command>::NAME, stringify!($handler)),
                concat!(
                    stringify!($area::$handler), " is registered for ", stringify!($command),
                    ": name the handler like its command"
                ),
            );
        )*
    };
    (@sync $invoke:ident, $command:ty, $handler:path) => {{
        let Invoke { message, resolver, .. } = $invoke;
        let handle = message.webview_ref().app_handle().clone();
        let request = arguments::<$command>(message.payload());
        let answer = worker::run(move || {
            let state = handle.state::<AppState>();
            request.and_then(|request| $handler(&state, request))
        });
        resolver.respond_async(async move {
            let answer: Result<<$command as Command>::Answer, IpcError> =
                answer.await.unwrap_or_else(|| {
                    Err(IpcError::new(
                        ErrorCode::Internal,
                        format!(
                            "{} stopped unexpectedly (a bug in left4me)",
                            <$command as Command>::NAME
                        ),
                    ))
                });
            answer.map_err(InvokeError::from)
        });
    }};
    (@async $invoke:ident, $command:ty, $handler:path) => {{
        let Invoke { message, resolver, .. } = $invoke;
        let handle = message.webview_ref().app_handle().clone();
        let request = arguments::<$command>(message.payload());
        resolver.respond_async(async move {
            let state = handle.state::<AppState>();
            let answer: Result<<$command as Command>::Answer, IpcError> = match request {
                Ok(request) => $handler(&state, request).await,
                Err(err) => Err(err),
            };
            answer.map_err(InvokeError::from)
        });
    }};
    (@events $invoke:ident, $command:ty, $handler:path) => {{
        let Invoke { message, resolver, .. } = $invoke;
        let handle = message.webview_ref().app_handle().clone();
        let request = arguments::<$command>(message.payload());
        resolver.respond_async(async move {
            let answer: Result<<$command as Command>::Answer, IpcError> = match request {
                Ok(request) => $handler(&handle, request).await,
                Err(err) => Err(err),
            };
            answer.map_err(InvokeError::from)
        });
    }};
}

handlers! {
    sync AppFacts => app::app_facts,
    events CloseAnyway => app::close_anyway,
    sync SetNotifications => app::set_notifications,
    sync OpenLogFolder => app::open_log_folder,
    events PickFolder => app::pick_folder,
    sync SecretStore => app::secret_store,
    events CreateVault => app::create_vault,
    events UnlockVault => app::unlock_vault,
    sync MoveSecretsToOsStore => app::move_secrets_to_os_store,

    sync NeedsFirstAdmin => auth::needs_first_admin,
    sync CreateFirstAdmin => auth::create_first_admin,
    sync Login => auth::login,
    sync Logout => auth::logout,
    sync Me => auth::me,
    sync ChangePassword => auth::change_password,
    sync Users => auth::users,
    sync CreateUser => auth::create_user,
    sync SetUserDisabled => auth::set_user_disabled,
    sync SetUserAdmin => auth::set_user_admin,
    sync ResetPassword => auth::reset_password,

    sync Hosts => hosts::hosts,
    sync AddHost => hosts::add_host,
    async FetchHostKey => hosts::fetch_host_key,
    sync ConfirmHostKey => hosts::confirm_host_key,
    async SetUpHost => hosts::set_up_host,
    async InstallGame => hosts::install_game,
    async RefreshHost => hosts::refresh_host,
    async RemoveHost => hosts::remove_host,
    sync SteamAccount => hosts::steam_account,
    sync SetSteamLogin => hosts::set_steam_login,
    sync ForgetSteamAccount => hosts::forget_steam_account,
    async CheckGameUpdate => hosts::check_game_update,
    sync HostEvents => hosts::host_events,
    sync DismissHostEvents => hosts::dismiss_host_events,
    sync NotificationTargets => hosts::notification_targets,
    sync AddNotificationTarget => hosts::add_notification_target,
    sync RemoveNotificationTarget => hosts::remove_notification_target,
    async TestNotifications => hosts::test_notifications,
    async HostSchedules => hosts::host_schedules,
    async PreviewSchedule => hosts::preview_schedule,
    async SaveSchedule => hosts::save_schedule,
    async DeleteSchedule => hosts::delete_schedule,
    async HostBuilds => hosts::host_builds,
    async StartRollout => hosts::start_rollout,
    async PauseRollout => hosts::pause_rollout,
    async RollBack => hosts::roll_back,
    async RestartWithChanges => hosts::restart_with_changes,
    async StopRollout => hosts::stop_rollout,

    sync Overlays => content::overlays,
    sync CreateOverlay => content::create_overlay,
    sync UpdateOverlay => content::update_overlay,
    sync DeleteOverlay => content::delete_overlay,
    async UploadOverlay => content::upload_overlay,
    async FillOverlay => content::fill_overlay,
    async RefreshOverlay => content::refresh_overlay,
    sync PendingRestarts => content::pending_restarts,
    sync Blueprints => content::blueprints,
    sync CreateBlueprint => content::create_blueprint,
    sync UpdateBlueprint => content::update_blueprint,
    sync ApplyLimitsNow => content::apply_limits_now,
    sync ApplyServerLimitsNow => content::apply_server_limits_now,
    sync DeleteBlueprint => content::delete_blueprint,

    sync Servers => servers::servers,
    sync CreateServer => servers::create_server,
    sync ReassignServer => servers::reassign_server,
    sync PinServer => servers::pin_server,
    async StartServer => servers::start_server,
    async StopServer => servers::stop_server,
    async RestartServer => servers::restart_server,
    async DeleteServer => servers::delete_server,
    async Rcon => servers::rcon,
    async ServerUsage => servers::server_usage,
    async ServerBackups => servers::server_backups,
    async BackupServer => servers::backup_server,
    async RestoreServer => servers::restore_server,
    async RestoreAsNewServer => servers::restore_as_new_server,
    async FollowLogs => servers::follow_logs,
    async LogLines => servers::log_lines,
    sync StopLogs => servers::stop_logs,
    events WatchStatuses => servers::watch_statuses,
    sync UnwatchStatuses => servers::unwatch_statuses,

    sync Jobs => jobs::jobs,
    sync JobEvents => jobs::job_events,
    sync CancelJob => jobs::cancel_job,
}

const _: () = assert!(
    covers(HANDLED, command::COMMANDS) && covers(command::COMMANDS, HANDLED),
    "src-tauri's handlers! and left4me_protocol::command::COMMANDS differ: \
     register every command of the protocol once, and only those",
);

/// The command's arguments, or why they are not what it takes.
fn arguments<C: Command>(body: &InvokeBody) -> Result<C, IpcError> {
    let invalid = |why: String| {
        IpcError::new(
            ErrorCode::Internal,
            format!("invalid arguments for {}: {why}", C::NAME),
        )
    };
    match body {
        InvokeBody::Json(value) => C::deserialize(value).map_err(|e| invalid(e.to_string())),
        InvokeBody::Raw(_) => Err(invalid("raw bytes instead of JSON".into())),
    }
}

/// Pushes `payload` to the window as `event`.
pub fn emit<T: Serialize + Clone>(handle: &AppHandle, event: Event<T>, payload: T) -> bool {
    match handle.emit(event.name, payload) {
        Ok(()) => true,
        Err(e) => {
            // A payload that cannot be serialised is a bug worth a trace; a closed window
            // is not.
            log::warn!("cannot send {} to the window: {e}", event.name);
            false
        }
    }
}

/// Whether two names are the same; usable where the compiler checks the registrations.
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether every name of `names` is in `list`, and `list` has no more entries than that.
const fn covers(list: &[&str], names: &[&str]) -> bool {
    if list.len() != names.len() {
        return false;
    }
    let mut i = 0;
    while i < names.len() {
        let mut found = false;
        let mut j = 0;
        while j < list.len() {
            found |= same(list[j], names[i]);
            j += 1;
        }
        if !found {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_of_the_protocol_is_answered_here() {
        let missing: Vec<_> = command::COMMANDS
            .iter()
            .filter(|name| !HANDLED.contains(name))
            .collect();
        assert!(missing.is_empty(), "no handler for {missing:?}");
        let unknown: Vec<_> = HANDLED
            .iter()
            .filter(|name| !command::COMMANDS.contains(name))
            .collect();
        assert!(unknown.is_empty(), "not in the protocol: {unknown:?}");
        assert_eq!(
            HANDLED.len(),
            command::COMMANDS.len(),
            "one registered twice"
        );
    }

    #[test]
    fn names_compare_whole() {
        assert!(same("start_server", "start_server"));
        assert!(!same("start_server", "start_servers"));
        assert!(!same("stop_server", "start_server"));
        assert!(covers(&["a", "b"], &["b", "a"]));
        assert!(!covers(&["a", "a"], &["a", "b"]));
    }
}
