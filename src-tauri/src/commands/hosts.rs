//! Hosts: add, first contact, set-up, install, facts, removal.

use crate::state::AppState;
use app_core::app::SetupLogin;
use left4me_protocol::agent::NotifyTested;
use left4me_protocol::command::{
    AddHost, AddNotificationTarget, CheckGameUpdate, ConfirmHostKey, DeleteSchedule,
    DismissHostEvents, FetchHostKey, ForgetSteamAccount, HostBuilds, HostEvents, HostSchedules,
    Hosts, InstallGame, NotificationTargets, PauseRollout, PreviewSchedule, RefreshHost,
    RemoveHost, RemoveNotificationTarget, RestartWithChanges, RollBack, SaveSchedule,
    SetSteamLogin, SetUpHost, StartRollout, SteamAccount, StopRollout, TestNotifications,
};
use left4me_protocol::model::{Host, HostEventsReport, HostKeyOffer, NotifyTargetInfo};
use left4me_protocol::rollout::Builds;
use left4me_protocol::schedule::{ScheduleList, SchedulePreview};
use left4me_protocol::{ErrorCode, IpcError, Job};
use zeroize::Zeroizing;

pub fn hosts(state: &AppState, Hosts {}: Hosts) -> Result<Vec<Host>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().hosts(&session)?)
}

pub fn add_host(state: &AppState, AddHost { host }: AddHost) -> Result<Host, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().add_host(&session, host)?)
}

pub async fn fetch_host_key(
    state: &AppState,
    FetchHostKey { host_id }: FetchHostKey,
) -> Result<HostKeyOffer, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.fetch_host_key(&session, host_id).await?)
}

pub fn confirm_host_key(
    state: &AppState,
    ConfirmHostKey { host_id, key }: ConfirmHostKey,
) -> Result<Host, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().confirm_host_key(&session, host_id, &key)?)
}

pub async fn set_up_host(
    state: &AppState,
    SetUpHost { request }: SetUpHost,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    let login = match request.login {
        left4me_protocol::model::SetupLogin::Password { password } => {
            SetupLogin::Password(Zeroizing::new(password))
        }
        left4me_protocol::model::SetupLogin::KeyFile { path, passphrase } => SetupLogin::KeyFile {
            path: path.into(),
            passphrase: passphrase.map(Zeroizing::new),
        },
        left4me_protocol::model::SetupLogin::Agent => {
            match app_core::ssh::Credential::agent_from_env() {
                Some(app_core::ssh::Credential::Agent(socket)) => SetupLogin::Agent(socket),
                _ => {
                    return Err(IpcError::new(
                        ErrorCode::InvalidInput,
                        "the app was started without an ssh-agent (SSH_AUTH_SOCK)",
                    ));
                }
            }
        }
    };
    Ok(app.set_up_host(
        &session,
        request.host_id,
        login,
        request.sudo_password.map(Zeroizing::new),
        request.remember,
    )?)
}

pub async fn install_game(
    state: &AppState,
    InstallGame {
        host_id,
        validate,
        guard_code,
    }: InstallGame,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    let guard_code = guard_code.map(Zeroizing::new);
    Ok(app.install_game(
        &session,
        host_id,
        validate,
        guard_code.as_deref().map(|c| c.as_str()),
    )?)
}

/// Whether Steam has a newer public build than the host's install.
pub async fn check_game_update(
    state: &AppState,
    CheckGameUpdate { host_id }: CheckGameUpdate,
) -> Result<Host, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.check_game_update(&session, host_id).await?)
}

pub async fn refresh_host(
    state: &AppState,
    RefreshHost { host_id }: RefreshHost,
) -> Result<Host, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.refresh_host(&session, host_id).await?)
}

pub async fn remove_host(
    state: &AppState,
    RemoveHost { host_id }: RemoveHost,
) -> Result<(), IpcError> {
    let (app, session) = state.session()?;
    Ok(app.remove_host(&session, host_id).await?)
}

/// The Steam account installs use; `None` for anonymous installs.
pub fn steam_account(
    state: &AppState,
    SteamAccount {}: SteamAccount,
) -> Result<Option<String>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.steam_account(&session)?)
}

/// Forgets the Steam account here and the login steamcmd cached on every set-up host.
pub fn forget_steam_account(
    state: &AppState,
    ForgetSteamAccount {}: ForgetSteamAccount,
) -> Result<Vec<Job>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.forget_steam_account(&session)?)
}

/// Keeps a Steam account for installs in the credential store, or forgets it (`None`).
pub fn set_steam_login(
    state: &AppState,
    SetSteamLogin { user, password }: SetSteamLogin,
) -> Result<(), IpcError> {
    let (app, session) = state.session()?;
    let password = password.map(Zeroizing::new);
    let login = user.as_deref().zip(password.as_ref().map(|p| p.as_str()));
    Ok(app.set_steam_login(&session, login)?)
}

pub fn host_events(
    state: &AppState,
    HostEvents { all }: HostEvents,
) -> Result<HostEventsReport, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().host_events(&session, all)?)
}

pub fn dismiss_host_events(
    state: &AppState,
    DismissHostEvents { up_to }: DismissHostEvents,
) -> Result<(), IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().dismiss_host_events(&session, up_to)?)
}

pub fn notification_targets(
    state: &AppState,
    NotificationTargets {}: NotificationTargets,
) -> Result<Vec<NotifyTargetInfo>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.store().notification_targets(&session)?)
}

pub fn add_notification_target(
    state: &AppState,
    AddNotificationTarget { target }: AddNotificationTarget,
) -> Result<Vec<NotifyTargetInfo>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.add_notification_target(&session, target)?)
}

pub fn remove_notification_target(
    state: &AppState,
    RemoveNotificationTarget { target_id }: RemoveNotificationTarget,
) -> Result<Vec<NotifyTargetInfo>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.remove_notification_target(&session, target_id)?)
}

/// Sent from the host, so it proves the host can reach each target.
pub async fn test_notifications(
    state: &AppState,
    TestNotifications { host_id }: TestNotifications,
) -> Result<Vec<NotifyTested>, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.test_notifications(&session, host_id).await?)
}

/// Read from the host, which keeps and runs them.
pub async fn host_schedules(
    state: &AppState,
    HostSchedules { host_id }: HostSchedules,
) -> Result<ScheduleList, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.host_schedules(&session, host_id).await?)
}

pub async fn preview_schedule(
    state: &AppState,
    PreviewSchedule {
        host_id,
        calendar,
        time_zone,
        restart,
    }: PreviewSchedule,
) -> Result<SchedulePreview, IpcError> {
    let (app, session) = state.session()?;
    Ok(app
        .preview_schedule(&session, host_id, &calendar, time_zone.as_deref(), restart)
        .await?)
}

pub async fn save_schedule(
    state: &AppState,
    SaveSchedule {
        host_id,
        schedule,
        replaces,
    }: SaveSchedule,
) -> Result<ScheduleList, IpcError> {
    let (app, session) = state.session()?;
    Ok(app
        .save_schedule(&session, host_id, schedule, replaces)
        .await?)
}

pub async fn delete_schedule(
    state: &AppState,
    DeleteSchedule { host_id, name }: DeleteSchedule,
) -> Result<ScheduleList, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.delete_schedule(&session, host_id, name).await?)
}

/// Read from the host, which keeps the rollout and runs it.
pub async fn host_builds(
    state: &AppState,
    HostBuilds { host_id }: HostBuilds,
) -> Result<Builds, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.host_builds(&session, host_id).await?)
}

pub async fn start_rollout(
    state: &AppState,
    StartRollout {
        host_id,
        canary,
        drain_minutes,
        check_seconds,
    }: StartRollout,
) -> Result<Builds, IpcError> {
    let (app, session) = state.session()?;
    Ok(app
        .start_rollout(&session, host_id, canary, drain_minutes, check_seconds)
        .await?)
}

pub async fn pause_rollout(
    state: &AppState,
    PauseRollout { host_id }: PauseRollout,
) -> Result<Builds, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.pause_rollout(&session, host_id).await?)
}

pub async fn roll_back(
    state: &AppState,
    RollBack { host_id }: RollBack,
) -> Result<Builds, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.roll_back(&session, host_id).await?)
}

pub async fn restart_with_changes(
    state: &AppState,
    RestartWithChanges {
        host_id,
        canary,
        drain_minutes,
        check_seconds,
    }: RestartWithChanges,
) -> Result<Job, IpcError> {
    let (app, session) = state.session()?;
    Ok(app
        .restart_with_changes(&session, host_id, canary, drain_minutes, check_seconds)
        .await?)
}

pub async fn stop_rollout(
    state: &AppState,
    StopRollout { host_id }: StopRollout,
) -> Result<Builds, IpcError> {
    let (app, session) = state.session()?;
    Ok(app.stop_rollout(&session, host_id).await?)
}
