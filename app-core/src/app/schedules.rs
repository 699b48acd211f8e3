//! Schedules live on their host: it runs them with the app closed, so its list is the only
//! one. The app reads it (`schedule list`), and changes it by handing the host the whole
//! new list (`schedule set`), which the host checks (systemd reads each calendar) before it
//! saves anything. A host that cannot be reached cannot have its schedules changed.

use super::App;
use crate::accounts::Session;
use crate::agent::{self, AgentFailure};
use crate::error::{Error, Result};
use crate::remote::AgentCall;
use crate::ssh::Connection;
use left4me_protocol::schedule::{Schedule, ScheduleList, SchedulePreview};
use left4me_protocol::{AgentErrorCode, AgentMessage, ScheduleName};
use std::sync::Arc;

/// The host's refusal of bad input stays an input error, with its words.
fn failure(e: AgentFailure) -> Error {
    match e {
        AgentFailure::Agent {
            code: AgentErrorCode::InvalidInput,
            message,
            ..
        } => Error::Invalid(message),
        e => Error::Remote(crate::error::chain(&e)),
    }
}

/// The list a `schedule list|set` answered with.
fn listed(messages: Vec<AgentMessage>) -> Result<ScheduleList> {
    messages
        .into_iter()
        .find_map(|m| match m {
            AgentMessage::Schedules(list) => Some(list),
            _ => None,
        })
        .ok_or_else(|| Error::Remote("the host did not list its schedules".to_owned()))
}

impl App {
    async fn schedules_host(&self, host_id: i64) -> Result<Arc<Connection>> {
        let host = self.store.host_by_id(host_id)?;
        self.connection(&host, None)
            .await
            .map_err(|f| Error::Remote(f.message))
    }

    async fn read_schedules(conn: &Connection) -> Result<ScheduleList> {
        let messages = agent::run(conn, &AgentCall::schedule_list(), b"", None)
            .await
            .map_err(failure)?;
        listed(messages)
    }

    /// A host's schedules, with their next runs and how their last run went.
    pub async fn host_schedules(&self, session: &Session, host_id: i64) -> Result<ScheduleList> {
        self.store.actor(session)?;
        let conn = self.schedules_host(host_id).await?;
        Self::read_schedules(&conn).await
    }

    /// When a calendar runs next, read by the host's systemd in `time_zone`, with a warning
    /// for a restart more often than hourly.
    pub async fn preview_schedule(
        &self,
        session: &Session,
        host_id: i64,
        calendar: &str,
        time_zone: Option<&str>,
        restart: bool,
    ) -> Result<SchedulePreview> {
        self.store.actor(session)?;
        left4me_protocol::schedule::check_when(calendar, time_zone).map_err(Error::Invalid)?;
        let conn = self.schedules_host(host_id).await?;
        let call = AgentCall::schedule_preview(calendar, time_zone, restart);
        let messages = agent::run(&conn, &call, b"", None).await.map_err(failure)?;
        messages
            .into_iter()
            .find_map(|m| match m {
                AgentMessage::SchedulePreview(p) => Some(p),
                _ => None,
            })
            .ok_or_else(|| Error::Remote("the host did not read the calendar".to_owned()))
    }

    /// Adds `schedule` to its host's list, or puts it in place of the one named `replaces`.
    pub async fn save_schedule(
        &self,
        session: &Session,
        host_id: i64,
        schedule: Schedule,
        replaces: Option<ScheduleName>,
    ) -> Result<ScheduleList> {
        self.store
            .actor(session)?
            .require_admin("change schedules")?;
        schedule
            .check()
            .map_err(|e| Error::Invalid(format!("schedule \"{}\": {e}", schedule.name)))?;
        self.change_schedules(host_id, |list| {
            let at = match &replaces {
                Some(old) => Some(
                    list.iter()
                        .position(|s| &s.name == old)
                        .ok_or_else(|| Error::NotFound(format!("no schedule named \"{old}\"")))?,
                ),
                None => None,
            };
            let clash = list
                .iter()
                .enumerate()
                .any(|(i, s)| s.name == schedule.name && Some(i) != at);
            if clash {
                return Err(Error::Conflict(format!(
                    "this host already has a schedule named \"{}\"",
                    schedule.name
                )));
            }
            match at {
                Some(i) => list[i] = schedule,
                None => list.push(schedule),
            }
            Ok(())
        })
        .await
    }

    pub async fn delete_schedule(
        &self,
        session: &Session,
        host_id: i64,
        name: ScheduleName,
    ) -> Result<ScheduleList> {
        self.store
            .actor(session)?
            .require_admin("change schedules")?;
        self.change_schedules(host_id, |list| {
            let before = list.len();
            list.retain(|s| s.name != name);
            if list.len() == before {
                return Err(Error::NotFound(format!("no schedule named \"{name}\"")));
            }
            Ok(())
        })
        .await
    }

    /// Reads the host's list, changes it and hands it back whole; the host refuses what it
    /// cannot run, and then keeps what it had.
    async fn change_schedules(
        &self,
        host_id: i64,
        change: impl FnOnce(&mut Vec<Schedule>) -> Result<()>,
    ) -> Result<ScheduleList> {
        let conn = self.schedules_host(host_id).await?;
        let mut schedules: Vec<Schedule> = Self::read_schedules(&conn)
            .await?
            .schedules
            .into_iter()
            .map(|info| info.schedule)
            .collect();
        change(&mut schedules)?;
        let input = serde_json::to_vec(&serde_json::json!({ "schedules": schedules }))
            .expect("plain values serialise");
        let messages = agent::run(&conn, &AgentCall::schedule_set(), &input, None)
            .await
            .map_err(failure)?;
        listed(messages)
    }
}
