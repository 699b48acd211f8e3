//! A server's lifecycle on its host, each action a job on the server's lane: start and
//! restart (with the blueprint as it is now, its overlays made present first), stop and
//! delete.

use super::App;
use crate::accounts::Session;
use crate::agent;
use crate::error::Result;
use crate::jobs::{JobCtx, JobFailure, NewJob};
use crate::remote::AgentCall;
use crate::secrets::SecretKey;
use crate::servers::ServerTarget;
use crate::ssh::Connection;
use left4me_protocol::model::{Host, LimitsNow};
use left4me_protocol::{Job, JobKind};
use std::sync::Arc;
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy)]
enum ServerAction {
    Start,
    Stop,
    Restart,
    Delete,
}

impl ServerAction {
    fn kind(self) -> JobKind {
        match self {
            Self::Start => JobKind::Start,
            Self::Stop => JobKind::Stop,
            Self::Restart => JobKind::Restart,
            Self::Delete => JobKind::Delete,
        }
    }
}

impl App {
    pub fn start_server(self: &Arc<Self>, session: &Session, id: i64) -> Result<Job> {
        self.server_job(session, id, ServerAction::Start)
    }

    pub fn stop_server(self: &Arc<Self>, session: &Session, id: i64) -> Result<Job> {
        self.server_job(session, id, ServerAction::Stop)
    }

    pub fn restart_server(self: &Arc<Self>, session: &Session, id: i64) -> Result<Job> {
        self.server_job(session, id, ServerAction::Restart)
    }

    /// Deletes the server on its host, then from the model.
    pub fn delete_server(self: &Arc<Self>, session: &Session, id: i64) -> Result<Job> {
        self.server_job(session, id, ServerAction::Delete)
    }

    fn server_job(
        self: &Arc<Self>,
        session: &Session,
        id: i64,
        action: ServerAction,
    ) -> Result<Job> {
        let target = self.store.server_target(session, id)?;
        let host = self.ready_host(target.host_id)?;
        let app = self.clone();
        self.jobs.submit(
            NewJob::on_server(
                action.kind(),
                target.owner,
                host.id,
                id,
                format!("server {} on {}", target.name, host.name),
            ),
            move |ctx| async move { app.run_server_action(&ctx, id, action).await },
        )
    }

    async fn run_server_action(
        &self,
        ctx: &JobCtx,
        id: i64,
        action: ServerAction,
    ) -> std::result::Result<(), JobFailure> {
        let (target, host, conn) = self.server_job_target(ctx, id).await?;
        match action {
            ServerAction::Start | ServerAction::Restart => {
                self.declare_on_host(ctx, &conn, &host, &target).await?;
                let call = match action {
                    ServerAction::Start => AgentCall::start(&target.name),
                    _ => AgentCall::restart(&target.name),
                };
                agent::run(&conn, &call, b"", Some(ctx)).await?;
                // Its mount applied any staged overlay versions: take the host's word.
                self.sync_overlays(&conn, host.id).await?;
            }
            ServerAction::Stop => {
                agent::run(&conn, &AgentCall::stop(&target.name), b"", Some(ctx)).await?;
            }
            ServerAction::Delete => {
                agent::run(&conn, &AgentCall::delete(&target.name), b"", Some(ctx)).await?;
                self.forget_server(id)?;
            }
        }
        Ok(())
    }

    /// Gives the caller's servers of `blueprint_id` its new limits now where they are the
    /// only change since their host last heard (systemd sets them at once on a running
    /// unit; a stopped one starts with them), a job each; servers with other changes get
    /// the limits at their restart, with the rest.
    pub fn apply_limits_now(
        self: &Arc<Self>,
        session: &Session,
        blueprint_id: i64,
    ) -> Result<LimitsNow> {
        let servers = self.store.servers(session)?;
        self.give_limits(
            session,
            servers
                .into_iter()
                .filter(|s| s.blueprint_id == blueprint_id),
        )
    }

    /// [`App::apply_limits_now`] for one server (its cores were picked again).
    pub fn apply_server_limits_now(
        self: &Arc<Self>,
        session: &Session,
        server_id: i64,
    ) -> Result<LimitsNow> {
        let server = self.store.server(session, server_id)?;
        self.give_limits(session, std::iter::once(server))
    }

    fn give_limits(
        self: &Arc<Self>,
        session: &Session,
        servers: impl Iterator<Item = crate::servers::Server>,
    ) -> Result<LimitsNow> {
        let mut said = LimitsNow::default();
        for server in servers {
            if !server.pending_changes {
                continue;
            }
            let target = self.store.server_target(session, server.id)?;
            if !self.only_limits_changed(&target)? {
                said.at_restart.push(server.name.to_string());
                continue;
            }
            let host = self.ready_host(target.host_id)?;
            let (app, id) = (self.clone(), server.id);
            self.jobs.submit(
                NewJob::on_server(
                    JobKind::Limits,
                    target.owner,
                    host.id,
                    id,
                    format!("server {} on {}", target.name, host.name),
                ),
                move |ctx| async move {
                    let (target, host, conn) = app.server_job_target(&ctx, id).await?;
                    // Other changes may have come since: then they all wait for the restart.
                    if !app.only_limits_changed(&target)? {
                        ctx.say("other changes came meanwhile: the limits wait for the restart");
                        return Ok(());
                    }
                    app.declare_on_host(&ctx, &conn, &host, &target).await
                },
            )?;
            said.now.push(server.name.to_string());
        }
        Ok(said)
    }

    /// Whether the server's spec differs from what its host last received in its limits
    /// alone.
    fn only_limits_changed(&self, target: &ServerTarget) -> Result<bool> {
        let current = self.store.current_spec(target)?;
        Ok(match self.store.applied_spec(target.id)? {
            Some(mut applied) if applied.limits != current.limits => {
                applied.limits = current.limits.clone();
                applied == current
            }
            _ => false,
        })
    }

    /// Removes a server from the model, and its RCON password from the credential store.
    pub(super) fn forget_server(&self, id: i64) -> Result<()> {
        self.store.remove_server_row(id)?;
        self.secrets
            .delete(&SecretKey::RconPassword { server: id })?;
        Ok(())
    }

    /// Hands the server's host its spec from the blueprint as it is now (edits since the
    /// last action apply here), its overlays made present first, and its RCON password.
    pub(super) async fn declare_on_host(
        &self,
        ctx: &JobCtx,
        conn: &Connection,
        host: &Host,
        target: &ServerTarget,
    ) -> std::result::Result<(), JobFailure> {
        let spec = self.store.current_spec(target)?;
        self.ensure_overlays(ctx, conn, host, &spec).await?;
        let password = self.rcon_password(target.id)?;
        let mut stdin = Zeroizing::new(format!("{}\n", password.as_str()).into_bytes());
        stdin.extend_from_slice(spec.to_yaml().as_bytes());
        agent::run(
            conn,
            &AgentCall::initialize(&target.name),
            &stdin,
            Some(ctx),
        )
        .await?;
        self.store.set_applied_spec(target.id, &spec)?;
        Ok(())
    }

    /// The server as it is when a job's turn comes (it may be gone, or on another host), its
    /// host and a connection there.
    pub(super) async fn server_job_target(
        &self,
        ctx: &JobCtx,
        id: i64,
    ) -> std::result::Result<(ServerTarget, Host, Arc<Connection>), JobFailure> {
        let target = self
            .store
            .server_target_by_id(id)?
            .ok_or_else(|| JobFailure::failed("the server no longer exists"))?;
        let host = self.store.host_by_id(target.host_id)?;
        let conn = self.connection(&host, Some(ctx)).await?;
        Ok((target, host, conn))
    }

    /// The server's RCON password, made on first use and kept in the credential store.
    fn rcon_password(&self, server: i64) -> std::result::Result<Zeroizing<String>, JobFailure> {
        let key = SecretKey::RconPassword { server };
        if let Some(password) = self.secret_text(&key)? {
            return Ok(password);
        }
        let password = random_password(24)
            .map_err(|e| JobFailure::failed(format!("no randomness for a password: {e}")))?;
        self.secrets.set(&key, password.as_bytes())?;
        Ok(password)
    }
}

/// A password of letters and digits, safe in `server.cfg` and on a command line.
fn random_password(len: usize) -> std::result::Result<Zeroizing<String>, getrandom::Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut password = Zeroizing::new(String::with_capacity(len));
    let mut byte = [0u8; 1];
    while password.len() < len {
        getrandom::fill(&mut byte)?;
        // Rejection sampling keeps every character equally likely.
        if (byte[0] as usize) < 256 - 256 % ALPHABET.len() {
            password.push(ALPHABET[byte[0] as usize % ALPHABET.len()] as char);
        }
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcon_passwords_are_long_plain_and_different() {
        let a = random_password(24).unwrap();
        let b = random_password(24).unwrap();
        assert_eq!(a.len(), 24);
        assert!(
            a.bytes().all(|c| c.is_ascii_alphanumeric()),
            "{}",
            a.as_str()
        );
        assert_ne!(a.as_str(), b.as_str());
    }
}
