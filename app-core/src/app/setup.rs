//! Setting a host up: upload the agent with the admin's login, have it set the host up
//! through sudo, and from then on log in as `left4me` with the app's key. The same steps
//! replace an agent that speaks another protocol when the set-up login was remembered.

use super::login::{SetupLogin, choose_sudo_password, credential, redeploy_login, remembered};
use super::{App, connect_failure, say};
use crate::agent::{self, AgentFailure};
use crate::connections::{APP_ACCOUNT, ConnectError};
use crate::error::{Error, Result};
use crate::hosts::Host;
use crate::jobs::{JobCtx, JobFailure, NewJob};
use crate::remote;
use crate::secrets::SecretKey;
use crate::ssh::{Connection, Credential, Endpoint};
use left4me_protocol::{Job, JobKind};
use sha2::Digest;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use zeroize::Zeroizing;

impl App {
    /// Deploys the agent and sets the host up, as a job. `sudo_password` is sudo's (None:
    /// the one remembered for this host, else passwordless sudo); with `remember` it is kept
    /// in the OS credential store for the next set-up.
    pub fn set_up_host(
        self: &Arc<Self>,
        session: &crate::Session,
        host_id: i64,
        login: SetupLogin,
        sudo_password: Option<Zeroizing<String>>,
        remember: bool,
    ) -> Result<Job> {
        let me = self.store.actor(session)?.require_admin("set hosts up")?;
        let host = self.store.host_by_id(host_id)?;
        if host.host_key.is_none() {
            return Err(Error::Conflict(format!(
                "confirm the host key of {:?} before setting it up",
                host.name
            )));
        }
        let app = self.clone();
        self.jobs.submit(
            NewJob::on_host(
                JobKind::SetUp,
                me.id,
                host_id,
                format!("host {}", host.name),
            ),
            move |ctx| async move {
                app.run_set_up(Some(&ctx), host_id, login, sudo_password, remember)
                    .await
            },
        )
    }

    async fn run_set_up(
        &self,
        ctx: Option<&JobCtx>,
        host_id: i64,
        login: SetupLogin,
        sudo_password: Option<Zeroizing<String>>,
        remember: bool,
    ) -> std::result::Result<(), JobFailure> {
        let host = self.store.host_by_id(host_id)?;
        let host_key = crate::connections::confirmed_key(&host).map_err(connect_failure)?;
        let endpoint = Endpoint {
            address: host.address.clone(),
            port: host.port,
            user: host.admin_user.clone(),
        };
        let remembered_login = remembered(&login);
        let key_passphrase = match &login {
            SetupLogin::KeyFile { passphrase, .. } => passphrase.clone(),
            _ => None,
        };
        let (credential, login_password) = credential(login)?;
        let sudo_password = choose_sudo_password(sudo_password, login_password, || {
            self.secret_text(&SecretKey::SudoPassword { host: host_id })
        })?;

        say(ctx, &format!("connecting to {endpoint} for the set-up"));
        let conn = Connection::open(&endpoint, &host_key, &credential)
            .await
            .map_err(|e| connect_failure(e.into()))?;
        let arch = run_text(&conn, remote::ARCH).await?;
        let binary =
            agent_for(arch.trim(), &self.config.agent_binaries).map_err(JobFailure::failed)?;
        let path = upload_agent(&conn, ctx, arch.trim(), binary).await?;
        say(
            ctx,
            "checksum verified on the host; running the agent's set-up with sudo",
        );
        let line = remote::sudo_setup(&path, &self.public_key(), sudo_password.is_some());
        let stdin = sudo_password
            .as_ref()
            .map(|p| Zeroizing::new(format!("{}\n", p.as_str())))
            .unwrap_or_default();
        agent::run_line(&conn, &line, stdin.as_bytes(), ctx)
            .await
            .map_err(|failure| sudo_failure(failure, &host.admin_user))?;
        conn.close().await;

        if remember {
            let keep = |key: SecretKey, secret: &str| self.secrets.set(&key, secret.as_bytes());
            if let Some(password) = &sudo_password {
                keep(SecretKey::SudoPassword { host: host_id }, password)?;
            }
            if let Some(passphrase) = &key_passphrase {
                keep(SecretKey::KeyPassphrase { host: host_id }, passphrase)?;
            }
            self.store
                .set_host_setup_login(host_id, &remembered_login)?;
            say(
                ctx,
                "the set-up login is remembered (its secrets in this computer's credential \
                 store): an outdated agent will be replaced without asking",
            );
        }
        self.store.set_host_ready(host_id)?;
        self.connections.forget(host_id).await;
        say(
            ctx,
            &format!("logging in as {APP_ACCOUNT} with the app's key"),
        );
        let host = self.store.host_by_id(host_id)?;
        let facts = self.read_facts(&host).await?;
        say(
            ctx,
            &format!(
                "{}: {}, kernel {}, {} CPUs, game {}",
                host.name,
                facts.os,
                facts.kernel,
                facts.cpus,
                facts.installed_build.as_deref().unwrap_or("not installed")
            ),
        );
        Ok(())
    }

    /// Sets the host up again with its remembered login, when its agent speaks another
    /// protocol (`mismatch`); without a remembered login the mismatch is the answer.
    pub(super) async fn redeploy(
        &self,
        host: &Host,
        ctx: Option<&JobCtx>,
        mismatch: ConnectError,
    ) -> std::result::Result<Arc<Connection>, JobFailure> {
        let Some(remembered) = self.store.host_setup_login(host.id)? else {
            return Err(connect_failure(mismatch));
        };
        let agent_socket = match Credential::agent_from_env() {
            Some(Credential::Agent(socket)) => Some(socket),
            _ => None,
        };
        let login = redeploy_login(remembered, host.id, agent_socket, |key| {
            self.secret_text(&key)
        })?;
        let Some(login) = login else {
            return Err(connect_failure(mismatch));
        };
        let lock = self.redeploys.get(host.id);
        let _redeploying = lock.lock().await;
        // Someone else may have redeployed while this call waited.
        if let Ok(conn) = self.connections.get(host).await {
            return Ok(conn);
        }
        say(
            ctx,
            &format!(
                "{}; deploying this app's agent again",
                crate::error::chain(&mismatch)
            ),
        );
        self.run_set_up(ctx, host.id, login, None, false).await?;
        self.connections.get(host).await.map_err(connect_failure)
    }
}

/// Sends the agent's binary into a private file in the host's `/tmp` and checks its
/// checksum there; returns the file's path.
async fn upload_agent(
    conn: &Connection,
    ctx: Option<&JobCtx>,
    arch: &str,
    binary: &std::path::Path,
) -> std::result::Result<String, JobFailure> {
    let bytes = tokio::fs::read(binary).await.map_err(|e| {
        JobFailure::failed(format!("cannot read the agent {}: {e}", binary.display()))
    })?;
    let sha256 = hex(&sha2::Sha256::digest(&bytes));
    say(
        ctx,
        &format!(
            "uploading the agent for {arch} ({} KiB, sha256 {sha256})",
            bytes.len() / 1024
        ),
    );
    let out = conn
        .run(remote::RECEIVE_AGENT, &bytes)
        .await
        .map_err(|e| connect_failure(e.into()))?;
    let answer = String::from_utf8_lossy(&out.stdout);
    let (remote_sum, path) = received(&answer).ok_or_else(|| {
        JobFailure::failed(format!(
            "the upload failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    })?;
    if remote_sum != sha256 {
        let _ = conn.run(&remote::remove_file(path), b"").await;
        return Err(JobFailure::failed(format!(
            "the uploaded agent is damaged: sha256 {remote_sum} on the host, {sha256} here"
        )));
    }
    Ok(path.to_owned())
}

/// Runs a plain command and returns its stdout; for the few steps before the agent exists.
async fn run_text(conn: &Connection, command: &str) -> std::result::Result<String, JobFailure> {
    let out = conn
        .run(command, b"")
        .await
        .map_err(|e| connect_failure(e.into()))?;
    if out.status != Some(0) {
        return Err(JobFailure::failed(format!(
            "`{command}` failed on the host: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The agent binary for a host of CPU architecture `arch`, or why there is none.
fn agent_for<'a>(
    arch: &str,
    binaries: &'a HashMap<String, PathBuf>,
) -> std::result::Result<&'a PathBuf, String> {
    if arch != "x86_64" {
        return Err(format!(
            "this host is {arch}: Left 4 Dead 2's dedicated server exists only for x86 \
             (i386) Linux, so left4me cannot run it there; use an x86-64 host"
        ));
    }
    binaries.get(arch).ok_or_else(|| {
        format!(
            "this app has no agent for {arch:?} hosts (it has: {})",
            binaries.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })
}

/// The checksum and path in [`remote::RECEIVE_AGENT`]'s answer, if it is one: a path of
/// plain characters where that command makes its files.
fn received(answer: &str) -> Option<(&str, &str)> {
    answer.trim().split_once("  ").filter(|(_, path)| {
        path.starts_with(remote::RECEIVED_PREFIX)
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    })
}

/// Says plainly what sudo refused.
fn sudo_failure(failure: AgentFailure, user: &str) -> JobFailure {
    if let AgentFailure::Agent { message, exit, .. } = &failure
        && let Some(message) = sudo_refusal(message, user)
    {
        return JobFailure {
            state: left4me_protocol::JobState::Failed,
            message,
            exit_code: exit.map(|e| e as i32),
            code: None,
        };
    }
    failure.into()
}

/// What sudo's complaint `message` means for the admin, if it is one of sudo's.
fn sudo_refusal(message: &str, user: &str) -> Option<String> {
    if message.contains("a password is required") {
        Some(format!(
            "sudo on the host needs {user}'s password: give it for the set-up"
        ))
    } else if message.contains("incorrect password") || message.contains("no password was provided")
    {
        Some(format!("sudo refused the password given for {user}"))
    } else if message.contains("is not in the sudoers file")
        || message.contains("not allowed to execute")
    {
        Some(format!("{user} may not use sudo on the host"))
    } else {
        None
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_x86_64_hosts_get_the_agent_this_app_has() {
        let binaries = HashMap::from([("x86_64".to_owned(), PathBuf::from("/opt/agent"))]);
        assert_eq!(
            agent_for("x86_64", &binaries),
            Ok(&PathBuf::from("/opt/agent"))
        );
        let arm = agent_for("aarch64", &binaries).unwrap_err();
        assert!(arm.starts_with("this host is aarch64: "), "{arm}");
        assert_eq!(
            agent_for("x86_64", &HashMap::new()).unwrap_err(),
            "this app has no agent for \"x86_64\" hosts (it has: )"
        );
    }

    #[test]
    fn only_a_plain_path_where_the_upload_goes_is_taken_from_the_host() {
        let table = [
            (
                "abc123  /tmp/l4d2-agent.Xy12ab\n",
                Some(("abc123", "/tmp/l4d2-agent.Xy12ab")),
            ),
            ("abc123  /etc/shadow\n", None),
            ("abc123  /tmp/l4d2-agent.x; rm -rf /\n", None),
            ("abc123  /tmp/l4d2-agent.$(id)\n", None),
            ("abc123 /tmp/l4d2-agent.Xy12ab\n", None),
            ("", None),
        ];
        for (answer, expected) in table {
            assert_eq!(received(answer), expected, "{answer:?}");
        }
    }

    #[test]
    fn sudo_complaints_are_said_plainly() {
        let table = [
            (
                "sudo: a password is required",
                Some("sudo on the host needs ann's password: give it for the set-up"),
            ),
            (
                "sudo: 1 incorrect password attempt",
                Some("sudo refused the password given for ann"),
            ),
            (
                "sudo: no password was provided",
                Some("sudo refused the password given for ann"),
            ),
            (
                "ann is not in the sudoers file.",
                Some("ann may not use sudo on the host"),
            ),
            (
                "Sorry, user ann is not allowed to execute '/tmp/x' as root",
                Some("ann may not use sudo on the host"),
            ),
            (
                "setup: cannot create /srv/left4me: No space left on device",
                None,
            ),
        ];
        for (message, expected) in table {
            assert_eq!(
                sudo_refusal(message, "ann").as_deref(),
                expected,
                "{message}"
            );
        }
    }
}
