//! The window's commands, typed once: each is a struct of its arguments that names the
//! command and its answer. The UI sends one (`ipc::call`) and src-tauri answers it with the
//! handler registered for that type, so a renamed argument or a changed answer fails to
//! compile on both sides instead of failing in a window test.
//!
//! On the wire a command is Tauri's `invoke(NAME, arguments)`: the arguments are the
//! struct's fields in camelCase (`serverId`), as Tauri's own commands take them; the answer
//! is `Result<Answer, IpcError>`.

use crate::agent::{NotifyTarget, NotifyTested};
use crate::ipc::{AppFacts as Facts, Job, JobEvent};
use crate::limits::Usage;
use crate::model::ServerBackup;
use crate::model::{
    Blueprint, BlueprintDraft, Host, HostEventsReport, HostKeyOffer, JobFilter, LimitsNow, LogPoll,
    NewHost, NewOverlay, NewServer, NotifyTargetInfo, Overlay, OverlaySource, Server, SetupRequest,
    User,
};
use crate::names::{ScheduleName, ServerName};
use crate::rollout::Builds;
use crate::schedule::{Schedule, ScheduleList, SchedulePreview};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A command the window sends: its arguments are the implementing struct.
pub trait Command: Serialize + DeserializeOwned {
    /// What the window invokes; the handler in src-tauri is a function of this name.
    const NAME: &'static str;
    /// What the command answers when it succeeds.
    type Answer: Serialize + DeserializeOwned;
}

/// Declares each command's struct and its [`Command`] impl, and lists their names in
/// [`COMMANDS`].
macro_rules! commands {
    ($(
        $(#[$doc:meta])*
        $name:literal => $command:ident { $($field:ident: $ty:ty),* $(,)? } -> $answer:ty;
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
            #[serde(rename_all = "camelCase")]
            pub struct $command { $(pub $field: $ty),* }

            impl Command for $command {
                const NAME: &'static str = $name;
                type Answer = $answer;
            }
        )*

        /// Every command's name; src-tauri fails to compile unless it answers each.
        pub const COMMANDS: &[&str] = &[$($name),*];

        /// Each command's type name beside its name, for the test that they agree.
        #[cfg(test)]
        const TYPE_NAMES: &[(&str, &str)] = &[$((stringify!($command), $name)),*];
    };
}

commands! {
    // The app.
    /// Facts about the app, for the About screen.
    "app_facts" => AppFacts {} -> Facts;
    /// Closes the window although jobs run ([`crate::ipc::CLOSE_EVENT`]); they are cut, and
    /// the next start marks them interrupted.
    "close_anyway" => CloseAnyway {} -> ();
    /// Turns the desktop notifications on or off, for this app on this computer.
    "set_notifications" => SetNotifications { enabled: bool } -> ();
    /// Opens the folder of the app's log in the desktop's file manager.
    "open_log_folder" => OpenLogFolder {} -> ();
    /// Asks for a folder on this computer with the desktop's own dialog; `None` when the
    /// user cancels.
    "pick_folder" => PickFolder { title: String } -> Option<String>;
    /// Where the secrets are kept, asked before anything else: a locked vault or no
    /// credential store at all must be dealt with first.
    "secret_store" => SecretStore {} -> crate::ipc::SecretStore;
    /// Makes the local vault, when no OS credential store answers, and starts the app on it.
    "create_vault" => CreateVault { passphrase: String } -> ();
    /// Opens the local vault with its passphrase and starts the app on it.
    "unlock_vault" => UnlockVault { passphrase: String } -> ();
    /// Moves the vault's secrets into the OS credential store, which answers now, and
    /// removes the vault; returns how many moved.
    "move_secrets_to_os_store" => MoveSecretsToOsStore {} -> usize;

    // First run, login and accounts.
    /// Whether nobody has an account yet (the first run).
    "needs_first_admin" => NeedsFirstAdmin {} -> bool;
    /// Creates the first admin and logs in as them.
    "create_first_admin" => CreateFirstAdmin { username: String, password: String } -> User;
    "login" => Login { username: String, password: String } -> User;
    "logout" => Logout {} -> ();
    /// The logged-in account, or `None` at the login screen.
    "me" => Me {} -> Option<User>;
    /// Changes the logged-in user's own password; `current` must be right.
    "change_password" => ChangePassword { current: String, new: String } -> ();
    /// Every account (admins only).
    "users" => Users {} -> Vec<User>;
    "create_user" => CreateUser { username: String, password: String, is_admin: bool } -> User;
    "set_user_disabled" => SetUserDisabled { user_id: i64, disabled: bool } -> User;
    "set_user_admin" => SetUserAdmin { user_id: i64, is_admin: bool } -> User;
    /// Sets another account's password (admins only).
    "reset_password" => ResetPassword { user_id: i64, password: String } -> User;

    // Hosts.
    "hosts" => Hosts {} -> Vec<Host>;
    "add_host" => AddHost { host: NewHost } -> Host;
    /// The host's key on first contact, for the admin to compare and confirm.
    "fetch_host_key" => FetchHostKey { host_id: i64 } -> HostKeyOffer;
    "confirm_host_key" => ConfirmHostKey { host_id: i64, key: String } -> Host;
    /// Deploys the agent and sets the host up, as a job.
    "set_up_host" => SetUpHost { request: SetupRequest } -> Job;
    /// Installs or updates the game, as a job; `guard_code` answers Steam Guard.
    "install_game" => InstallGame { host_id: i64, validate: bool, guard_code: Option<String> } -> Job;
    /// Reads the host's facts again.
    "refresh_host" => RefreshHost { host_id: i64 } -> Host;
    "remove_host" => RemoveHost { host_id: i64 } -> ();
    /// The Steam account installs use; `None` for anonymous installs.
    "steam_account" => SteamAccount {} -> Option<String>;
    /// Keeps a Steam account for installs in the credential store, or forgets it (`None`).
    "set_steam_login" => SetSteamLogin { user: Option<String>, password: Option<String> } -> ();
    /// Forgets the Steam account here and the login steamcmd cached on every set-up host.
    "forget_steam_account" => ForgetSteamAccount {} -> Vec<Job>;
    /// Whether Steam has a newer public build than the host's install.
    "check_game_update" => CheckGameUpdate { host_id: i64 } -> Host;
    /// What the hosts recorded on their own, newest first: the ones not yet dismissed, or
    /// the last 200 with `all`.
    "host_events" => HostEvents { all: bool } -> HostEventsReport;
    /// Marks the events up to `up_to` (an id) as seen; later ones stay.
    "dismiss_host_events" => DismissHostEvents { up_to: i64 } -> ();
    /// Where every host sends its notifications (admins only).
    "notification_targets" => NotificationTargets {} -> Vec<NotifyTargetInfo>;
    /// Adds a target after checking it; its URL and secret go to the credential store and
    /// to each host's 0600 file, never to the database. Answers the new list.
    "add_notification_target" => AddNotificationTarget { target: NotifyTarget } -> Vec<NotifyTargetInfo>;
    "remove_notification_target" => RemoveNotificationTarget { target_id: i64 } -> Vec<NotifyTargetInfo>;
    /// Gives the host the current targets and has it send each a test message, which proves
    /// the host can reach them; answers how each took it.
    "test_notifications" => TestNotifications { host_id: i64 } -> Vec<NotifyTested>;

    /// A host's schedules, as the host keeps and runs them, with their next and last runs.
    "host_schedules" => HostSchedules { host_id: i64 } -> ScheduleList;
    /// When a calendar runs next, read by the host in `time_zone`; `restart` adds the
    /// warning for restarts more often than hourly.
    "preview_schedule" => PreviewSchedule { host_id: i64, calendar: String, time_zone: Option<String>, restart: bool } -> SchedulePreview;
    /// Adds a schedule to its host, or puts it in place of the one named `replaces`; the
    /// host checks it before it saves anything (admins only).
    "save_schedule" => SaveSchedule { host_id: i64, schedule: Schedule, replaces: Option<ScheduleName> } -> ScheduleList;
    "delete_schedule" => DeleteSchedule { host_id: i64, name: ScheduleName } -> ScheduleList;

    /// A host's game builds, which servers run which, and its rollout (the last one, if
    /// none is open).
    "host_builds" => HostBuilds { host_id: i64 } -> Builds;
    /// Rolls the host's current build out to its running servers on older ones, or goes on
    /// with a paused or held rollout (admins only). The host does the work, also with the
    /// app closed.
    "start_rollout" => StartRollout { host_id: i64, canary: Option<ServerName>, drain_minutes: Option<u32>, check_seconds: Option<u32> } -> Builds;
    /// Stops the host's rollout before its next server (admins only).
    "pause_rollout" => PauseRollout { host_id: i64 } -> Builds;
    /// Puts every server the rollout moved back on its old build and drops the new one
    /// (admins only).
    "roll_back" => RollBack { host_id: i64 } -> Builds;
    /// Hands the host's running servers with pending changes their new specs, then has the
    /// host restart each one with its changes the way a rollout does: a canary first, each
    /// once its players have left (admins only).
    "restart_with_changes" => RestartWithChanges { host_id: i64, canary: Option<ServerName>, drain_minutes: Option<u32>, check_seconds: Option<u32> } -> Job;
    /// Ends a restart with changes before its next server (admins only).
    "stop_rollout" => StopRollout { host_id: i64 } -> Builds;

    // Overlays and blueprints.
    "overlays" => Overlays {} -> Vec<Overlay>;
    "create_overlay" => CreateOverlay { overlay: NewOverlay } -> Overlay;
    /// Changes what fills an overlay and its description; the name stays.
    "update_overlay" => UpdateOverlay { overlay_id: i64, source: OverlaySource, description: String } -> Overlay;
    "delete_overlay" => DeleteOverlay { overlay_id: i64 } -> ();
    /// Uploads a folder of this computer into the overlay on a host, as a job.
    "upload_overlay" => UploadOverlay { overlay_id: i64, host_id: i64, folder: String } -> Job;
    /// Fills an overlay on a host from its source, as a job.
    "fill_overlay" => FillOverlay { overlay_id: i64, host_id: i64 } -> Job;
    /// Fills an overlay again on every host that has it; one job per host.
    "refresh_overlay" => RefreshOverlay { overlay_id: i64 } -> Vec<Job>;
    /// The user's servers that switch to a refreshed overlay at their next start or restart.
    "pending_restarts" => PendingRestarts { overlay_id: i64 } -> Vec<Server>;
    "blueprints" => Blueprints {} -> Vec<Blueprint>;
    "create_blueprint" => CreateBlueprint { draft: BlueprintDraft } -> Blueprint;
    "update_blueprint" => UpdateBlueprint { blueprint_id: i64, draft: BlueprintDraft } -> Blueprint;
    "delete_blueprint" => DeleteBlueprint { blueprint_id: i64 } -> ();
    /// Gives the blueprint's servers its new limits now where nothing else changed (at once
    /// while they run); the others get them at their restart.
    "apply_limits_now" => ApplyLimitsNow { blueprint_id: i64 } -> LimitsNow;
    /// The same for one server, after its cores were picked again.
    "apply_server_limits_now" => ApplyServerLimitsNow { server_id: i64 } -> LimitsNow;

    // Servers.
    "servers" => Servers {} -> Vec<Server>;
    "create_server" => CreateServer { server: NewServer } -> Server;
    /// Links the server to another blueprint; its next start applies it.
    "reassign_server" => ReassignServer { server_id: i64, blueprint_id: i64 } -> Server;
    /// Pins the server to these physical cores of its host (none: unpinned); its next
    /// start or restart applies it.
    "pin_server" => PinServer { server_id: i64, cores: Vec<u32> } -> Server;
    "start_server" => StartServer { server_id: i64 } -> Job;
    "stop_server" => StopServer { server_id: i64 } -> Job;
    "restart_server" => RestartServer { server_id: i64 } -> Job;
    /// Deletes the server on its host, then from the model, as a job.
    "delete_server" => DeleteServer { server_id: i64 } -> Job;
    /// The server's backups on its host, newest first, each with whether this computer
    /// keeps a copy.
    "server_backups" => ServerBackups { server_id: i64 } -> Vec<ServerBackup>;
    /// Backs the server up on its host (running or not) and copies the backup here, as a
    /// job.
    "backup_server" => BackupServer { server_id: i64 } -> Job;
    /// Puts one of the server's backups in place of its files, as a job: the host checks it
    /// whole first, keeps the server as it was as a backup, and starts it again if it ran.
    "restore_server" => RestoreServer { server_id: i64, backup_id: String } -> Job;
    /// Makes a new server (`server`: its name, host, blueprint and port) from one of this
    /// server's backups, on the same host or another, as a job; it is left stopped.
    "restore_as_new_server" => RestoreAsNewServer { server_id: i64, backup_id: String, server: NewServer } -> Job;
    /// Runs an RCON command on the server and answers what it printed.
    "rcon" => Rcon { server_id: i64, command: String } -> String;
    /// A running server's resource figures and limits in force, from its host; none while
    /// it is stopped.
    "server_usage" => ServerUsage { server_id: i64 } -> Option<Usage>;
    /// Starts following the server's log: the last `lines`, then new ones, read with
    /// `log_lines` until `stop_logs`. Answers the follow's id. A newer follow of the same
    /// server ends the older one.
    "follow_logs" => FollowLogs { server_id: i64, lines: u32 } -> u64;
    /// The followed log's lines that came since the last call (at most 5,000), as soon as
    /// there is one; none after 20 s of quiet. The window asks again once it has drawn them,
    /// so a flood never queues more than one answer ahead of the screen.
    "log_lines" => LogLines { follow: u64 } -> LogPoll;
    "stop_logs" => StopLogs { follow: u64 } -> ();
    /// Pushes every server's live state as [`STATUS_EVENT`](crate::ipc::STATUS_EVENT)s,
    /// every `period_ms` (at least 500), until `unwatch_statuses` or logout.
    "watch_statuses" => WatchStatuses { period_ms: u64 } -> ();
    "unwatch_statuses" => UnwatchStatuses {} -> ();

    // Jobs.
    "jobs" => Jobs { filter: JobFilter } -> Vec<Job>;
    /// What a job printed and reported so far.
    "job_events" => JobEvents { job_id: i64 } -> Vec<JobEvent>;
    "cancel_job" => CancelJob { job_id: i64 } -> Job;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_command_has_a_name_of_its_own() {
        let mut names = COMMANDS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len(), "a name is used twice");
    }

    #[test]
    fn each_name_is_its_type_name_in_snake_case() {
        for (type_name, name) in TYPE_NAMES {
            let mut snake = String::new();
            for c in type_name.chars() {
                if c.is_ascii_uppercase() && !snake.is_empty() {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            assert_eq!(&snake, name, "{type_name}");
        }
    }

    /// The arguments as Tauri takes them: one key per argument, in camelCase.
    fn check(command: impl Command, expect: serde_json::Value) {
        assert_eq!(serde_json::to_value(&command).unwrap(), expect);
    }

    #[test]
    fn arguments_keep_the_keys_tauri_expects() {
        check(Servers {}, json!({}));
        check(StartServer { server_id: 7 }, json!({ "serverId": 7 }));
        check(
            InstallGame {
                host_id: 2,
                validate: true,
                guard_code: None,
            },
            json!({ "hostId": 2, "validate": true, "guardCode": null }),
        );
        check(
            WatchStatuses { period_ms: 2000 },
            json!({ "periodMs": 2000 }),
        );
        check(
            ChangePassword {
                current: "old password".into(),
                new: "new password".into(),
            },
            json!({ "current": "old password", "new": "new password" }),
        );
        check(
            UpdateOverlay {
                overlay_id: 3,
                source: OverlaySource::Script {
                    script: "true".into(),
                },
                description: String::new(),
            },
            json!({
                "overlayId": 3,
                "source": { "kind": "script", "script": "true" },
                "description": ""
            }),
        );
        // Nested types keep their own (snake_case) fields.
        check(
            Jobs {
                filter: JobFilter {
                    limit: Some(200),
                    ..JobFilter::default()
                },
            },
            json!({ "filter": { "host_id": null, "server_id": null, "state": null, "limit": 200 } }),
        );
    }

    #[test]
    fn a_missing_optional_argument_reads_as_none() {
        let install: InstallGame =
            serde_json::from_value(json!({ "hostId": 2, "validate": false })).unwrap();
        assert_eq!(install.guard_code, None);
    }
}
