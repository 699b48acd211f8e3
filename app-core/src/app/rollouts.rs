//! Game updates rolled across a host's servers. The host keeps and runs the rollout (it
//! goes on with this app closed), so the app only reads it (`rollout status`) and passes
//! on the admin's word: start (or go on), pause, roll back. Each answers with the host's
//! builds as they are after it.

use super::App;
use crate::accounts::Session;
use crate::agent::{self, AgentFailure};
use crate::error::{Error, Result};
use crate::remote::AgentCall;
use left4me_protocol::rollout::{Builds, CHECK_SECONDS, DEFAULT_CHECK_SECONDS, MAX_DRAIN_MINUTES};
use left4me_protocol::{AgentErrorCode, AgentMessage, ServerName};

/// The host's refusal keeps its words: bad input, no such rollout, or one that cannot
/// change now.
fn failure(e: AgentFailure) -> Error {
    match e {
        AgentFailure::Agent { code, message, .. } => match code {
            AgentErrorCode::InvalidInput => Error::Invalid(message),
            AgentErrorCode::NotFound => Error::NotFound(message),
            AgentErrorCode::Busy => Error::Conflict(message),
            _ => Error::Remote(message),
        },
        e => Error::Remote(crate::error::chain(&e)),
    }
}

/// What the admin may ask of a rollout's pace, checked before the host is asked.
fn check_pace(drain_minutes: Option<u32>, check_seconds: Option<u32>) -> Result<()> {
    if drain_minutes.is_some_and(|m| m > MAX_DRAIN_MINUTES) {
        return Err(Error::Invalid(format!(
            "the wait for players is at most {MAX_DRAIN_MINUTES} minutes (a day)"
        )));
    }
    match check_seconds {
        Some(s) if !CHECK_SECONDS.contains(&s) => Err(Error::Invalid(format!(
            "the canary is watched for {} to {} seconds (default {DEFAULT_CHECK_SECONDS})",
            CHECK_SECONDS.start(),
            CHECK_SECONDS.end()
        ))),
        _ => Ok(()),
    }
}

impl App {
    async fn rollout_call(&self, host_id: i64, call: AgentCall) -> Result<Builds> {
        let host = self.store.host_by_id(host_id)?;
        let conn = self
            .connection(&host, None)
            .await
            .map_err(|f| Error::Remote(f.message))?;
        agent::run(&conn, &call, b"", None)
            .await
            .map_err(failure)?
            .into_iter()
            .find_map(|m| match m {
                AgentMessage::Builds(builds) => Some(builds),
                _ => None,
            })
            .ok_or_else(|| Error::Remote(format!("{} did not list its builds", host.name)))
    }

    /// A host's game builds, which servers run which, and its rollout.
    pub async fn host_builds(&self, session: &Session, host_id: i64) -> Result<Builds> {
        self.store.actor(session)?;
        self.rollout_call(host_id, AgentCall::rollout_status())
            .await
    }

    /// Starts a rollout of the host's current build, or goes on with a paused or held one.
    pub async fn start_rollout(
        &self,
        session: &Session,
        host_id: i64,
        canary: Option<ServerName>,
        drain_minutes: Option<u32>,
        check_seconds: Option<u32>,
    ) -> Result<Builds> {
        self.store
            .actor(session)?
            .require_admin("roll out updates")?;
        check_pace(drain_minutes, check_seconds)?;
        let call = AgentCall::rollout_start(canary.as_ref(), drain_minutes, check_seconds);
        self.rollout_call(host_id, call).await
    }

    pub async fn pause_rollout(&self, session: &Session, host_id: i64) -> Result<Builds> {
        self.store
            .actor(session)?
            .require_admin("roll out updates")?;
        self.rollout_call(host_id, AgentCall::rollout_pause()).await
    }

    pub async fn roll_back(&self, session: &Session, host_id: i64) -> Result<Builds> {
        self.store
            .actor(session)?
            .require_admin("roll out updates")?;
        self.rollout_call(host_id, AgentCall::rollout_back()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pace_out_of_bounds_is_refused_with_its_bounds() {
        assert!(check_pace(None, None).is_ok());
        assert!(check_pace(Some(0), Some(60)).is_ok());
        assert!(check_pace(Some(MAX_DRAIN_MINUTES), Some(3600)).is_ok());
        assert_eq!(
            check_pace(Some(MAX_DRAIN_MINUTES + 1), None)
                .unwrap_err()
                .to_string(),
            "the wait for players is at most 1440 minutes (a day)"
        );
        for seconds in [0, 9, 3601] {
            assert_eq!(
                check_pace(None, Some(seconds)).unwrap_err().to_string(),
                "the canary is watched for 10 to 3600 seconds (default 180)"
            );
        }
    }
}
