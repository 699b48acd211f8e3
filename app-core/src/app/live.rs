//! What the window watches, read without jobs: every server's live state (one `list` per
//! host, all hosts at once), a server's console log as it grows, and RCON commands.

use super::{App, remote_error};
use crate::accounts::Session;
use crate::agent;
use crate::error::{Error, Result};
use crate::remote::AgentCall;
use crate::servers::Server;
use crate::ssh::{self, Connection};
use left4me_protocol::agent::{LogLine, ServerList, ServerStatus};
use left4me_protocol::{AgentMessage, AppEvent, LiveState, ServerLive};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A host's answer to `list`, or why there is none.
type Listed = std::result::Result<Vec<ServerStatus>, String>;

impl App {
    /// Every server of the caller with its live state: one `list` per host, all hosts at
    /// once.
    pub async fn statuses(self: &Arc<Self>, session: &Session) -> Result<Vec<ServerLive>> {
        let servers = self.store.servers(session)?;
        let hosts: HashSet<i64> = servers.iter().map(|s| s.host_id).collect();
        let mut calls = tokio::task::JoinSet::new();
        for host_id in hosts {
            let host = self.store.host_by_id(host_id)?;
            let app = self.clone();
            let on_host: Vec<i64> = servers
                .iter()
                .filter(|s| s.host_id == host_id)
                .map(|s| s.id)
                .collect();
            calls.spawn(async move {
                let conn = app.connection(&host, None).await.map_err(|f| f.message);
                let (host_id, listed, events_last) = list_on(&app, host_id, conn.clone()).await;
                if let (Ok(conn), Some(last)) = (conn, events_last) {
                    app.read_host_events(host_id, &conn, last).await;
                    app.keep_notify_targets_current(host_id, &conn).await;
                    app.pull_backup_copies_now_and_then(host, conn, on_host);
                }
                (host_id, listed)
            });
        }
        let mut answers: HashMap<i64, Listed> = HashMap::new();
        while let Some(done) = calls.join_next().await {
            let (host_id, answer) = done.map_err(|e| Error::Remote(e.to_string()))?;
            answers.insert(host_id, answer);
        }
        Ok(servers
            .iter()
            .map(|server| live(server, &answers[&server.host_id]))
            .collect())
    }

    /// Reads what the host's outbox holds after what the app has read, when `last` (the
    /// host's newest) says there is more; keeps it and tells the window. A failure is
    /// logged and tried again at the next look.
    async fn read_host_events(&self, host_id: i64, conn: &Connection, last: u64) {
        let Ok(seen) = self.store.events_seen(host_id) else {
            return;
        };
        if last <= seen {
            return;
        }
        let read = match agent::run(conn, &AgentCall::events(seen), b"", None).await {
            Ok(messages) => messages.into_iter().find_map(|m| match m {
                AgentMessage::Events(read) => Some(read),
                _ => None,
            }),
            Err(e) => {
                log::warn!(
                    "cannot read host {host_id}'s events: {}",
                    crate::error::chain(&e)
                );
                return;
            }
        };
        let Some(read) = read else {
            return;
        };
        match self.store.record_host_events(host_id, &read) {
            Ok(fresh) if !fresh.is_empty() => {
                for row in &fresh {
                    log::info!("{}: {} {}", row.host, row.event.title(), row.event.detail());
                }
                self.jobs.publish(AppEvent::HostEvents { rows: fresh });
            }
            Ok(_) => {}
            Err(e) => log::warn!("cannot keep host {host_id}'s events: {e}"),
        }
    }

    /// Gives the host the current notification targets when it has older ones; a failure
    /// is logged and tried again at a look a minute later.
    async fn keep_notify_targets_current(&self, host_id: i64, conn: &Connection) {
        if !self.notify_retry.due(host_id) {
            return;
        }
        if let Err(e) = self.push_notify_targets(host_id, conn).await {
            log::warn!("cannot give host {host_id} its notification targets: {e}");
            self.notify_retry.failed(host_id);
        }
    }

    /// Live state pushed every `period` while the receiver lives: the caller's servers, as
    /// [`App::statuses`] reads them. The first update comes at once.
    pub fn status_feed(
        self: &Arc<Self>,
        session: &Session,
        period: std::time::Duration,
    ) -> Result<mpsc::Receiver<Result<Vec<ServerLive>>>> {
        self.store.actor(session)?;
        let (tx, rx) = mpsc::channel(2);
        let app = self.clone();
        let session = session.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = tx.closed() => return,
                }
                let update = app.statuses(&session).await;
                // A session that lost its rights ends the feed after saying so.
                let last = matches!(update, Err(Error::Unauthenticated(_)));
                if tx.send(update).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// Streams a server's console log: the last `lines`, then new ones as they come. The
    /// remote `logs --follow` stops when the receiver is dropped.
    pub async fn follow_logs(
        &self,
        session: &Session,
        id: i64,
        lines: u32,
    ) -> Result<mpsc::Receiver<LogLine>> {
        let target = self.store.server_target(session, id)?;
        let host = self.store.host_by_id(target.host_id)?;
        let conn = self
            .connection(&host, None)
            .await
            .map_err(|f| Error::Remote(f.message))?;
        let mut exec = conn
            .exec(&AgentCall::logs(&target.name, lines, true).command_line())
            .await
            .map_err(remote_error)?;
        exec.close_stdin().await.map_err(remote_error)?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            let mut buffer = agent::LineBuffer::default();
            loop {
                tokio::select! {
                    event = exec.next() => match event {
                        Ok(Some(ssh::ExecEvent::Stdout(data))) => {
                            for line in buffer.push(&data) {
                                if let Ok(envelope) = left4me_protocol::Envelope::parse(&line)
                                    && let AgentMessage::LogLine(log) = envelope.message
                                        && tx.send(log).await.is_err() {
                                            let _ = exec.terminate().await;
                                            return;
                                        }
                            }
                        }
                        Ok(Some(ssh::ExecEvent::Stderr(_))) => {}
                        Ok(None) | Err(_) => return,
                    },
                    () = tx.closed() => {
                        let _ = exec.terminate().await;
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Runs a console command on a running server and returns its answer.
    pub async fn rcon(&self, session: &Session, id: i64, command: &str) -> Result<String> {
        let target = self.store.server_target(session, id)?;
        if command.trim().is_empty() || command.contains(['\n', '\r', '\0']) {
            return Err(Error::Invalid(
                "an RCON command is one non-empty line".into(),
            ));
        }
        let host = self.store.host_by_id(target.host_id)?;
        let conn = self
            .connection(&host, None)
            .await
            .map_err(|f| Error::Remote(f.message))?;
        let messages = agent::run(&conn, &AgentCall::rcon(&target.name, command), b"", None)
            .await
            .map_err(|e| Error::Remote(crate::error::chain(&e)))?;
        messages
            .into_iter()
            .find_map(|m| match m {
                AgentMessage::RconAnswer(a) => Some(a.answer),
                _ => None,
            })
            .ok_or_else(|| Error::Remote("the agent gave no RCON answer".into()))
    }

    /// What a running server's cgroup shows (memory, out-of-memory kills, CPU time held
    /// back by a quota), its limits in force and its frame rate; none while it is stopped.
    pub async fn server_usage(
        &self,
        session: &Session,
        id: i64,
    ) -> Result<Option<left4me_protocol::limits::Usage>> {
        let target = self.store.server_target(session, id)?;
        let host = self.store.host_by_id(target.host_id)?;
        let conn = self
            .connection(&host, None)
            .await
            .map_err(|f| Error::Remote(f.message))?;
        let messages = agent::run(&conn, &AgentCall::status(&target.name), b"", None)
            .await
            .map_err(|e| Error::Remote(crate::error::chain(&e)))?;
        Ok(messages.into_iter().find_map(|m| match m {
            AgentMessage::Status(status) => status.usage.map(|u| *u),
            _ => None,
        }))
    }
}

/// A host's `list`, and the newest event in its outbox when it has one.
async fn list_on(
    app: &App,
    host_id: i64,
    conn: std::result::Result<Arc<Connection>, String>,
) -> (i64, Listed, Option<u64>) {
    let answer = match conn {
        Err(e) => Err(e),
        Ok(conn) => app
            .connections
            .list(host_id, &conn)
            .await
            .map_err(|e| crate::error::chain(&e))
            .map(|messages| {
                messages
                    .into_iter()
                    .find_map(|m| match m {
                        AgentMessage::Servers(list) => Some(list),
                        _ => None,
                    })
                    .unwrap_or(ServerList {
                        servers: Vec::new(),
                        events_last: None,
                    })
            }),
    };
    match answer {
        Ok(list) => (host_id, Ok(list.servers), list.events_last),
        Err(e) => (host_id, Err(e), None),
    }
}

/// A server's live state from its host's answer: unreachable with the reason, not created
/// there, or as the host lists it.
fn live(server: &Server, listed: &Listed) -> ServerLive {
    let (state, status, error) = match listed {
        Err(error) => (LiveState::Unreachable, None, Some(error.clone())),
        Ok(list) => match list.iter().find(|s| s.name == server.name.as_str()) {
            Some(status) => (LiveState::from_status(status), Some(status.clone()), None),
            None => (LiveState::NotCreated, None, None),
        },
    };
    ServerLive {
        server_id: server.id,
        host_id: server.host_id,
        state,
        status,
        error,
    }
}
