//! Running `l4d2-agent … --json` on a host and reading its protocol messages.

use crate::jobs::{JobCtx, JobFailure};
use crate::remote::AgentCall;
use crate::ssh::{Connection, Exec, ExecEvent, SshError};
use left4me_protocol::JobState;
use left4me_protocol::agent::{AgentError, AgentErrorCode};
use left4me_protocol::{AgentMessage, Envelope};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AgentFailure {
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The agent ran and reported an error.
    #[error("{message}")]
    Agent {
        code: AgentErrorCode,
        message: String,
        exit: Option<u32>,
    },
    /// The agent ended without a protocol error but not with success.
    #[error("{0}")]
    Broken(String),
    #[error("cancelled")]
    Cancelled,
}

impl From<AgentFailure> for JobFailure {
    fn from(failure: AgentFailure) -> Self {
        match failure {
            AgentFailure::Ssh(SshError::Lost { address }) => JobFailure::interrupted(format!(
                "the connection to {address} was lost during the job; the next action reconnects"
            )),
            AgentFailure::Ssh(err) => JobFailure::failed(crate::error::chain(&err)),
            AgentFailure::Agent {
                code,
                message,
                exit,
            } => JobFailure {
                state: JobState::Failed,
                message,
                exit_code: exit.map(|e| e as i32),
                code: Some(code),
            },
            AgentFailure::Broken(message) => JobFailure::failed(message),
            AgentFailure::Cancelled => JobFailure::cancelled(),
        }
    }
}

/// Runs `call` with `stdin`; returns its messages. With a job, progress and output lines
/// become job events as they arrive, and cancelling the job stops the remote command.
pub async fn run(
    conn: &Connection,
    call: &AgentCall,
    stdin: &[u8],
    job: Option<&JobCtx>,
) -> Result<Vec<AgentMessage>, AgentFailure> {
    run_line(conn, &call.command_line(), stdin, job).await
}

/// [`run`] for a command line built elsewhere (by [`crate::remote`]): the set-up runs the
/// uploaded agent through sudo.
pub async fn run_line(
    conn: &Connection,
    command_line: &str,
    stdin: &[u8],
    job: Option<&JobCtx>,
) -> Result<Vec<AgentMessage>, AgentFailure> {
    run_fed(conn, command_line, stdin, job).await
}

/// [`run_line`] with its stdin read from `input` a piece at a time, so a file of any size
/// (a backup's archive) is sent without being held in memory.
pub async fn run_fed(
    conn: &Connection,
    command_line: &str,
    mut input: impl std::io::Read,
    job: Option<&JobCtx>,
) -> Result<Vec<AgentMessage>, AgentFailure> {
    let mut exec = conn.exec(command_line).await?;
    let mut piece = vec![0u8; 64 * 1024];
    loop {
        let n = input
            .read(&mut piece)
            .map_err(|e| AgentFailure::Broken(format!("cannot read what to send: {e}")))?;
        if n == 0 {
            break;
        }
        exec.send_stdin(&piece[..n]).await?;
    }
    exec.close_stdin().await?;
    let mut messages = Vec::new();
    let mut stdout = LineBuffer::default();
    let mut stderr = LineBuffer::default();
    let mut cancelled = false;
    let mut last_stderr = None;
    loop {
        let event = match job {
            Some(job) if !cancelled => tokio::select! {
                event = exec.next() => event?,
                () = job.cancelled() => {
                    cancelled = true;
                    job.say("cancelling: sending SIGTERM to the remote command");
                    exec.terminate().await?;
                    continue;
                }
            },
            _ => exec.next().await?,
        };
        match event {
            Some(ExecEvent::Stdout(data)) => {
                for line in stdout.push(&data) {
                    handle_line(&line, &mut messages, job)?;
                }
            }
            Some(ExecEvent::Stderr(data)) => {
                for line in stderr.push(&data) {
                    if let Some(job) = job {
                        job.line("stderr", &line);
                    }
                    if !line.trim().is_empty() {
                        last_stderr = Some(line);
                    }
                }
            }
            None => break,
        }
    }
    if let Some(line) = stdout.rest() {
        handle_line(&line, &mut messages, job)?;
    }
    if let Some(line) = stderr.rest() {
        if let Some(job) = job {
            job.line("stderr", &line);
        }
        last_stderr = Some(line);
    }
    if cancelled {
        return Err(AgentFailure::Cancelled);
    }
    let status = exec.exit_status();
    if status.is_none() {
        // No exit status: the command was killed, or the connection went. Keepalives notice
        // a dead connection a moment later.
        for _ in 0..20 {
            if conn.is_closed() {
                return Err(SshError::Lost {
                    address: conn.endpoint().address.clone(),
                }
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if let Some(AgentMessage::Error(AgentError { code, message })) = messages
        .iter()
        .rev()
        .find(|m| matches!(m, AgentMessage::Error(_)))
        .cloned()
    {
        return Err(AgentFailure::Agent {
            code,
            message,
            exit: status,
        });
    }
    match status {
        Some(0) => Ok(messages),
        Some(127) => Err(AgentFailure::Broken(format!(
            "the agent is not installed on {} (exit 127): set the host up",
            conn.endpoint().address
        ))),
        Some(code) => Err(AgentFailure::Agent {
            code: AgentErrorCode::Failed,
            message: match last_stderr {
                Some(line) => format!("exit code {code}: {line}"),
                None => format!("the command failed with exit code {code} without saying why"),
            },
            exit: Some(code),
        }),
        None => Err(AgentFailure::Broken(
            "the agent was killed before it finished".into(),
        )),
    }
}

fn handle_line(
    line: &str,
    messages: &mut Vec<AgentMessage>,
    job: Option<&JobCtx>,
) -> Result<(), AgentFailure> {
    if line.trim().is_empty() {
        return Ok(());
    }
    let envelope =
        Envelope::parse(line).map_err(|e| AgentFailure::Broken(format!("{e}: {line:?}")))?;
    if let Some(job) = job {
        match &envelope.message {
            AgentMessage::InstallProgress(progress) => job.progress(progress),
            AgentMessage::InstallNotice(notice) => job.line("stdout", &notice.message),
            AgentMessage::LogLine(log) => job.line("stdout", &log.message),
            AgentMessage::Done(done) => job.line(
                "stdout",
                &format!(
                    "{} {}: {}",
                    done.action,
                    done.target,
                    if done.changed {
                        "done"
                    } else {
                        "nothing to do"
                    }
                ),
            ),
            AgentMessage::Installed(installed) => {
                job.line(
                    "stdout",
                    &format!(
                        "installed build {}{}",
                        installed.build,
                        if installed.pending {
                            ": built beside the install running servers use; each switches at its next start"
                        } else if installed.changed {
                            ""
                        } else {
                            " (up to date)"
                        }
                    ),
                );
                if !installed.steam_client {
                    job.line(
                        "stderr",
                        "steamcmd's steamclient.so was not found: servers on this host run without Steam (no VAC, no master-server listing)",
                    );
                }
            }
            AgentMessage::WorkshopProgress(p) => {
                job.event(left4me_protocol::JobEventData::WorkshopProgress(p.clone()))
            }
            AgentMessage::WorkshopItem(item) => {
                let what = match (&item.outcome, &item.reason) {
                    (_, Some(reason)) => format!("failed: {reason}"),
                    (left4me_protocol::agent::WorkshopOutcome::Unchanged, _) => "unchanged".into(),
                    _ => "downloaded".into(),
                };
                job.line(
                    "stdout",
                    &format!(
                        "[{}/{}] workshop item {} {}: {what}",
                        item.items_done, item.items_total, item.id, item.title
                    ),
                );
                job.event(left4me_protocol::JobEventData::WorkshopItem(item.clone()));
            }
            AgentMessage::WorkshopDone(done) => job.line(
                "stdout",
                &format!(
                    "overlay {}: {} downloaded, {} unchanged, {} removed, {} failed",
                    done.overlay,
                    done.downloaded,
                    done.unchanged,
                    done.removed,
                    done.failed.len()
                ),
            ),
            AgentMessage::ScriptLine(line) => job.line(&line.stream, &line.line),
            AgentMessage::Error(error) => job.line("stderr", &error.message),
            _ => {}
        }
    }
    if !matches!(
        envelope.message,
        AgentMessage::InstallProgress(_) | AgentMessage::WorkshopProgress(_)
    ) {
        messages.push(envelope.message);
    }
    Ok(())
}

/// How long a session's answer may take before the session counts as stuck and goes.
const SESSION_ANSWER: Duration = Duration::from_secs(30);

/// A kept `l4d2-agent serve` on a host: each look at the host is a request line on its
/// channel and an answer line back, so no process or channel is started for it. It ends
/// with its connection (sshd closes its stdin, and it exits).
pub struct Session {
    /// The connection it runs on: one made again after a loss needs a new session.
    on: std::sync::Weak<Connection>,
    exec: Exec,
    stdout: LineBuffer,
}

impl Session {
    pub async fn open(conn: &std::sync::Arc<Connection>) -> Result<Session, AgentFailure> {
        Ok(Session {
            on: std::sync::Arc::downgrade(conn),
            exec: conn.exec(&AgentCall::serve().command_line()).await?,
            stdout: LineBuffer::default(),
        })
    }

    /// Whether it runs on `conn`.
    pub fn runs_on(&self, conn: &std::sync::Arc<Connection>) -> bool {
        std::ptr::eq(self.on.as_ptr(), std::sync::Arc::as_ptr(conn))
    }

    /// Sends `request` and reads its answer: the message, or the agent's error. Anything
    /// else (the session ended, a line that is not the protocol's, no answer in time)
    /// leaves the session unusable, and the caller drops it.
    pub async fn ask(&mut self, request: &str) -> Result<AgentMessage, AgentFailure> {
        self.exec
            .send_stdin(format!("{request}\n").as_bytes())
            .await?;
        let mut last_stderr = String::new();
        let answer = tokio::time::timeout(SESSION_ANSWER, async {
            loop {
                match self.exec.next().await? {
                    Some(ExecEvent::Stdout(data)) => {
                        if let Some(line) = self
                            .stdout
                            .push(&data)
                            .into_iter()
                            .find(|l| !l.trim().is_empty())
                        {
                            return Ok(line);
                        }
                    }
                    Some(ExecEvent::Stderr(data)) => {
                        if let Some(line) = String::from_utf8_lossy(&data).lines().last() {
                            last_stderr = line.trim().to_owned();
                        }
                    }
                    None => {
                        return Err(AgentFailure::Broken(format!(
                            "the agent's session ended (exit status {:?}){}",
                            self.exec.exit_status(),
                            if last_stderr.is_empty() {
                                String::new()
                            } else {
                                format!(": {last_stderr}")
                            }
                        )));
                    }
                }
            }
        })
        .await
        .map_err(|_| {
            AgentFailure::Broken(format!(
                "the agent's session did not answer {request:?} in {} s",
                SESSION_ANSWER.as_secs()
            ))
        })??;
        match Envelope::parse(&answer)
            .map_err(|e| AgentFailure::Broken(format!("{e}: {answer:?}")))?
            .message
        {
            AgentMessage::Error(AgentError { code, message }) => Err(AgentFailure::Agent {
                code,
                message,
                exit: None,
            }),
            message => Ok(message),
        }
    }
}

/// Splits a byte stream into lines; a line cut between two reads is joined.
#[derive(Default)]
pub(crate) struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    pub fn push(&mut self, data: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(data);
        let mut lines = Vec::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            lines.push(
                String::from_utf8_lossy(&line[..end])
                    .trim_end_matches('\r')
                    .to_owned(),
            );
        }
        lines
    }

    pub fn rest(&mut self) -> Option<String> {
        (!self.pending.is_empty())
            .then(|| String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_reads_are_joined() {
        let mut buffer = LineBuffer::default();
        assert_eq!(buffer.push(b"{\"v\":1,"), Vec::<String>::new());
        assert_eq!(
            buffer.push(b"\"x\":2}\nsecond\r\nthi"),
            ["{\"v\":1,\"x\":2}", "second"]
        );
        assert_eq!(buffer.rest().as_deref(), Some("thi"));
        assert_eq!(buffer.rest(), None);
    }
}
