//! Game updates rolled across a host's servers. The host keeps and runs the rollout (it
//! goes on with this app closed), so the app only reads it (`rollout status`) and passes
//! on the admin's word: start (or go on), pause, roll back. Each answers with the host's
//! builds as they are after it.
//!
//! The same rolling restart applies the changes that wait for a server's next start: the
//! app first hands each running server its spec as the model has it now (a job, since
//! overlays may have to be filled for it), then has the host restart them one at a time.

use super::App;
use crate::accounts::Session;
use crate::agent::{self, AgentFailure};
use crate::error::{Error, Result};
use crate::jobs::{JobFailure, NewJob};
use crate::remote::AgentCall;
use left4me_protocol::rollout::{
    Builds, CHECK_SECONDS, DEFAULT_CHECK_SECONDS, MAX_DRAIN_MINUTES, Waiting,
};
use left4me_protocol::{AgentErrorCode, AgentMessage, Job, JobKind, ServerName};
use std::sync::Arc;

/// What the model adds to a server the host lists (or not) among those with changes waiting.
const BLUEPRINT_CHANGED: &str = "its blueprint changed";

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

    /// A host's game builds, which servers run which, and its rollout; among the servers
    /// with changes waiting, also the running ones whose blueprint changed since the host
    /// last received their spec.
    pub async fn host_builds(&self, session: &Session, host_id: i64) -> Result<Builds> {
        self.store.actor(session)?;
        let mut builds = self
            .rollout_call(host_id, AgentCall::rollout_status())
            .await?;
        let pending = self.pending_on(host_id, &builds)?;
        add_pending(
            &mut builds.waiting,
            pending.into_iter().map(|(_, name)| name),
        );
        Ok(builds)
    }

    /// The servers on the host, whoever owns them, that run (are mounted) and whose
    /// blueprint changed since the host received their spec: (id, name).
    fn pending_on(&self, host_id: i64, builds: &Builds) -> Result<Vec<(i64, ServerName)>> {
        let running = |name: &ServerName| builds.builds.iter().any(|b| b.servers.contains(name));
        let mut pending = Vec::new();
        for id in self.store.server_ids_on_host(host_id)? {
            let Some(target) = self.store.server_target_by_id(id)? else {
                continue;
            };
            if !running(&target.name) {
                continue;
            }
            let current = self.store.current_spec(&target)?;
            if self
                .store
                .applied_spec(id)?
                .is_some_and(|applied| applied != current)
            {
                pending.push((id, target.name));
            }
        }
        Ok(pending)
    }

    /// Hands the host's running servers with pending changes their specs as the model has
    /// them now (their overlays made present first), then has the host restart every
    /// running server with changes waiting, one at a time, as a rollout does. A job: the
    /// host's refusal (nothing waits, another rollout is open) fails it with the host's words.
    pub async fn restart_with_changes(
        self: &Arc<Self>,
        session: &Session,
        host_id: i64,
        canary: Option<ServerName>,
        drain_minutes: Option<u32>,
        check_seconds: Option<u32>,
    ) -> Result<Job> {
        let me = self.store.actor(session)?;
        me.require_admin("restart servers with their changes")?;
        check_pace(drain_minutes, check_seconds)?;
        let host = self.ready_host(host_id)?;
        let builds = self
            .rollout_call(host_id, AgentCall::rollout_status())
            .await?;
        if let Some(open) = builds.rollout.as_ref().filter(|r| r.state.is_open()) {
            return Err(Error::Conflict(format!(
                "the rollout of {} on {} is {}: wait for it to end first",
                open.what(),
                host.name,
                open.state.describe()
            )));
        }
        let pending = self.pending_on(host_id, &builds)?;
        if pending.is_empty() && builds.waiting.is_empty() {
            return Err(Error::Conflict(format!(
                "no running server on {} has changes waiting for a restart",
                host.name
            )));
        }
        let app = self.clone();
        self.jobs.submit(
            NewJob::on_host(
                JobKind::Changes,
                me.id,
                host_id,
                format!("servers on {}", host.name),
            ),
            move |ctx| async move {
                let host = app.store.host_by_id(host_id)?;
                let conn = app.connection(&host, Some(&ctx)).await?;
                for (id, name) in pending {
                    let Some(target) = app.store.server_target_by_id(id)? else {
                        continue;
                    };
                    ctx.say(&format!("handing {name} its changed spec"));
                    app.declare_on_host(&ctx, &conn, &host, &target).await?;
                }
                let call =
                    AgentCall::rollout_start(true, canary.as_ref(), drain_minutes, check_seconds);
                let messages = agent::run(&conn, &call, b"", Some(&ctx)).await?;
                let rollout = messages.into_iter().find_map(|m| match m {
                    AgentMessage::Builds(builds) => builds.rollout,
                    _ => None,
                });
                let Some(rollout) = rollout else {
                    return Err(JobFailure::failed(format!(
                        "{} did not say how its restart began",
                        host.name
                    )));
                };
                let names: Vec<&str> = rollout.servers.iter().map(|s| s.name.as_str()).collect();
                ctx.say(&format!(
                    "{} restarts {} one at a time, {} first; it goes on with this app closed",
                    host.name,
                    names.join(", "),
                    rollout.canary
                ));
                Ok(())
            },
        )
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
        let call = AgentCall::rollout_start(false, canary.as_ref(), drain_minutes, check_seconds);
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

    /// Ends a restart with changes before its next server.
    pub async fn stop_rollout(&self, session: &Session, host_id: i64) -> Result<Builds> {
        self.store
            .actor(session)?
            .require_admin("restart servers with their changes")?;
        self.rollout_call(host_id, AgentCall::rollout_stop()).await
    }
}

/// Adds the model's word to the host's list of servers with changes waiting, by name.
fn add_pending(waiting: &mut Vec<Waiting>, pending: impl IntoIterator<Item = ServerName>) {
    for server in pending {
        match waiting.iter_mut().find(|w| w.server == server) {
            Some(w) => w.changes.insert(0, BLUEPRINT_CHANGED.to_owned()),
            None => waiting.push(Waiting {
                server,
                changes: vec![BLUEPRINT_CHANGED.to_owned()],
            }),
        }
    }
    waiting.sort_by(|a, b| a.server.cmp(&b.server));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_models_pending_servers_join_the_hosts_list_by_name() {
        let name = |n: &str| ServerName::new(n).unwrap();
        let mut waiting = vec![Waiting {
            server: name("coop-b"),
            changes: vec!["overlay maps has new content".to_owned()],
        }];
        add_pending(&mut waiting, [name("coop-c"), name("coop-b")]);
        let said: Vec<(String, Vec<String>)> = waiting
            .into_iter()
            .map(|w| (w.server.to_string(), w.changes))
            .collect();
        assert_eq!(
            said,
            [
                (
                    "coop-b".to_owned(),
                    vec![
                        "its blueprint changed".to_owned(),
                        "overlay maps has new content".to_owned()
                    ]
                ),
                (
                    "coop-c".to_owned(),
                    vec!["its blueprint changed".to_owned()]
                ),
            ]
        );
    }

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
