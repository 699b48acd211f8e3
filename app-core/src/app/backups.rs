//! A server's backups: made and kept on its host (`l4d2-agent backup`), listed and restored
//! from the window, and copied to this computer after each backup the app makes, a second
//! place for the data (`backups/<host>/<server>/<id>.tar.gz` in the data folder, written to
//! a partial file and renamed once whole).

use super::App;
use crate::accounts::Session;
use crate::agent::{self, AgentFailure};
use crate::error::{Error, Result};
use crate::jobs::{JobCtx, JobFailure, NewJob};
use crate::remote::AgentCall;
use crate::servers::ServerTarget;
use crate::ssh::{Connection, ExecEvent};
use left4me_protocol::backup::BackupInfo;
use left4me_protocol::model::{Host, NewServer, ServerBackup};
use left4me_protocol::{AgentErrorCode, AgentMessage, Job, JobKind};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// The host's refusal of bad input (a damaged backup) stays an input error, with its words.
fn failure(e: AgentFailure) -> Error {
    match e {
        AgentFailure::Agent {
            code: AgentErrorCode::InvalidInput | AgentErrorCode::NotFound,
            message,
            ..
        } => Error::Invalid(message),
        e => Error::Remote(crate::error::chain(&e)),
    }
}

/// How often a host's backups are looked at for copies this computer lacks, unless the
/// app's configuration says otherwise.
const PULL_EVERY: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// When each host's backups were last looked at, and whether a look still runs.
#[derive(Default)]
pub(super) struct Pulls(
    std::sync::Mutex<std::collections::HashMap<i64, (std::time::Instant, bool)>>,
);

impl Pulls {
    /// Whether a look at the host's backups may begin now, `every` after the last one
    /// began; if so, it has begun.
    fn begin(&self, host_id: i64, every: std::time::Duration) -> bool {
        let mut pulls = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match pulls.get(&host_id) {
            Some((at, running)) if *running || at.elapsed() < every => false,
            _ => {
                pulls.insert(host_id, (std::time::Instant::now(), true));
                true
            }
        }
    }

    fn end(&self, host_id: i64) {
        if let Some(pull) = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&host_id)
        {
            pull.1 = false;
        }
    }
}

/// The copies here that the host's retention has removed there: older than the oldest
/// backup the host still has. A host that lists none removes nothing: its backups are
/// gone (a lost disk, a wiped host), and the copies here are what is left of them.
fn pruned_copies(here: &[String], on_host: &[String]) -> Vec<String> {
    let Some(oldest) = on_host.iter().min() else {
        return Vec::new();
    };
    here.iter()
        .filter(|id| *id < oldest && !on_host.contains(id))
        .cloned()
        .collect()
}

const COPY_SUFFIX: &str = ".tar.gz";

/// Where this computer keeps its copy of backup `id` in a server's folder of copies.
fn copy_of(dir: &std::path::Path, id: &str) -> PathBuf {
    dir.join(format!("{id}{COPY_SUFFIX}"))
}

/// Whether `id` is a backup's name as hosts give them (`20261130T211500Z`, maybe `-2`):
/// nothing else becomes part of a path here.
fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 24
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'T' || b == b'Z' || b == b'-')
}

impl App {
    /// Where this computer keeps copies of a server's backups.
    fn local_backups(&self, host: &str, server: &str) -> PathBuf {
        let data = self
            .store
            .path()
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default();
        data.join("backups").join(host).join(server)
    }

    /// The server's backups on its host, newest first.
    pub async fn server_backups(&self, session: &Session, id: i64) -> Result<Vec<ServerBackup>> {
        let target = self.store.server_target(session, id)?;
        let host = self.store.host_by_id(target.host_id)?;
        let conn = self
            .connection(&host, None)
            .await
            .map_err(|f| Error::Remote(f.message))?;
        let backups = list(&conn, &target).await?;
        let here = self.local_backups(&host.name, target.name.as_str());
        Ok(backups
            .into_iter()
            .map(|info| ServerBackup {
                on_this_computer: plain_id(&info.id) && copy_of(&here, &info.id).is_file(),
                info,
            })
            .collect())
    }

    /// Backs the server up on its host, then copies the backup to this computer.
    pub fn backup_server(self: &Arc<Self>, session: &Session, id: i64) -> Result<Job> {
        let target = self.store.server_target(session, id)?;
        let host = self.ready_host(target.host_id)?;
        let app = self.clone();
        self.jobs.submit(
            NewJob::on_server(
                JobKind::Backup,
                target.owner,
                host.id,
                id,
                format!("server {} on {}", target.name, host.name),
            ),
            move |ctx| async move { app.run_backup(&ctx, id).await },
        )
    }

    async fn run_backup(&self, ctx: &JobCtx, id: i64) -> std::result::Result<(), JobFailure> {
        let (target, host, conn) = self.server_job_target(ctx, id).await?;
        let messages = agent::run(
            &conn,
            &AgentCall::backup_create(&target.name),
            b"",
            Some(ctx),
        )
        .await?;
        let made = messages
            .into_iter()
            .find_map(|m| match m {
                AgentMessage::Backup(info) => Some(info),
                _ => None,
            })
            .ok_or_else(|| JobFailure::failed("the host did not say which backup it made"))?;
        ctx.say(&format!(
            "backup {} made on {}: {}, {} files; copying it to this computer",
            made.id,
            host.name,
            left4me_protocol::units::human_bytes(made.bytes),
            made.files
        ));
        let dir = self.local_backups(&host.name, target.name.as_str());
        let bytes = copy_here(&conn, &target, &made, &dir).await?;
        ctx.say(&format!("copied to {} ({bytes} bytes)", dir.display()));
        Ok(())
    }

    /// Puts backup `backup_id` in place of the server's files, as a job.
    pub fn restore_server(
        self: &Arc<Self>,
        session: &Session,
        id: i64,
        backup_id: &str,
    ) -> Result<Job> {
        if !plain_id(backup_id) {
            return Err(Error::Invalid(format!(
                "{backup_id:?} is not a backup's name"
            )));
        }
        let target = self.store.server_target(session, id)?;
        let host = self.ready_host(target.host_id)?;
        let app = self.clone();
        let backup_id = backup_id.to_owned();
        self.jobs.submit(
            NewJob::on_server(
                JobKind::Restore,
                target.owner,
                host.id,
                id,
                format!(
                    "server {} on {} from backup {backup_id}",
                    target.name, host.name
                ),
            ),
            move |ctx| async move {
                let (target, _, conn) = app.server_job_target(&ctx, id).await?;
                let call = AgentCall::backup_restore(&target.name, &backup_id);
                agent::run(&conn, &call, b"", Some(&ctx)).await?;
                Ok(())
            },
        )
    }

    /// Copies the backups this computer lacks of `servers` on `host` (scheduled ones, and
    /// those made on the host by hand), in the background, at most every ten minutes per
    /// host ([`PULL_EVERY`]); copies of backups the host's retention removed go here too.
    pub(super) fn pull_backup_copies_now_and_then(
        self: &Arc<Self>,
        host: Host,
        conn: Arc<Connection>,
        servers: Vec<i64>,
    ) {
        let every = self.config.backup_pull_every.unwrap_or(PULL_EVERY);
        if servers.is_empty() || !self.backup_pulls.begin(host.id, every) {
            return;
        }
        let app = self.clone();
        tokio::spawn(async move {
            app.pull_backup_copies(&host, &conn, &servers).await;
            app.backup_pulls.end(host.id);
        });
    }

    async fn pull_backup_copies(&self, host: &Host, conn: &Connection, servers: &[i64]) {
        for id in servers {
            let Ok(Some(target)) = self.store.server_target_by_id(*id) else {
                continue;
            };
            let backups = match list(conn, &target).await {
                Ok(backups) => backups,
                Err(e) => {
                    log::warn!(
                        "cannot list the backups of {} on {}: {e}",
                        target.name,
                        host.name
                    );
                    continue;
                }
            };
            let dir = self.local_backups(&host.name, target.name.as_str());
            for made in backups.iter().filter(|b| plain_id(&b.id)) {
                if copy_of(&dir, &made.id).is_file() {
                    continue;
                }
                match copy_here(conn, &target, made, &dir).await {
                    Ok(bytes) => log::info!(
                        "copied backup {} of {} on {} here ({bytes} bytes)",
                        made.id,
                        target.name,
                        host.name
                    ),
                    Err(e) => {
                        log::warn!(
                            "cannot copy backup {} of {} on {} here: {}",
                            made.id,
                            target.name,
                            host.name,
                            e.message
                        );
                        break;
                    }
                }
            }
            let here: Vec<String> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let id = name.strip_suffix(COPY_SUFFIX)?;
                    plain_id(id).then(|| id.to_owned())
                })
                .collect();
            let on_host: Vec<String> = backups.into_iter().map(|b| b.id).collect();
            for id in pruned_copies(&here, &on_host) {
                match std::fs::remove_file(copy_of(&dir, &id)) {
                    Ok(()) => log::info!(
                        "removed the copy of backup {id} of {}: {} no longer keeps it",
                        target.name,
                        host.name
                    ),
                    Err(e) => log::warn!("cannot remove the copy of backup {id}: {e}"),
                }
            }
        }
    }

    /// Makes a new server from backup `backup_id` of server `source`, on the same host or
    /// another, as a job: the new server is declared like any other (its blueprint, port
    /// and name), its own files come from the backup. To another host the archive goes
    /// through this computer's copy (made first if missing), so a backup copied here earlier
    /// can bring back a server whose host is gone. It is left stopped; a failure removes
    /// it again.
    pub fn restore_as_new_server(
        self: &Arc<Self>,
        session: &Session,
        source: i64,
        backup_id: &str,
        new: NewServer,
    ) -> Result<Job> {
        if !plain_id(backup_id) {
            return Err(Error::Invalid(format!(
                "{backup_id:?} is not a backup's name"
            )));
        }
        let from = self.store.server_target(session, source)?;
        let from_host = self.store.host_by_id(from.host_id)?;
        let host = self.ready_host(new.host_id)?;
        let server = self.store.create_server(session, new)?;
        let app = self.clone();
        let backup_id = backup_id.to_owned();
        let job = self.jobs.submit(
            NewJob::on_server(
                JobKind::Restore,
                from.owner,
                host.id,
                server.id,
                format!(
                    "server {} on {} from backup {backup_id} of {} on {}",
                    server.name, host.name, from.name, from_host.name
                ),
            ),
            move |ctx| async move {
                let made = app
                    .run_restore_as_new(&ctx, server.id, &from, &from_host, &backup_id)
                    .await;
                if made.is_err() {
                    app.forget_half_made(&ctx, server.id).await;
                }
                made
            },
        );
        if job.is_err() {
            let _ = self.store.remove_server_row(server.id);
        }
        job
    }

    async fn run_restore_as_new(
        &self,
        ctx: &JobCtx,
        id: i64,
        from: &ServerTarget,
        from_host: &Host,
        backup_id: &str,
    ) -> std::result::Result<(), JobFailure> {
        let (target, host, conn) = self.server_job_target(ctx, id).await?;
        self.declare_on_host(ctx, &conn, &host, &target).await?;
        if host.id == from_host.id {
            let call = AgentCall::backup_restore_from(&target.name, backup_id, &from.name);
            agent::run(&conn, &call, b"", Some(ctx)).await?;
            return Ok(());
        }
        let dir = self.local_backups(&from_host.name, from.name.as_str());
        let archive = copy_of(&dir, backup_id);
        if !archive.is_file() {
            ctx.say(&format!(
                "copying backup {backup_id} of {} from {} to this computer",
                from.name, from_host.name
            ));
            let source = self.connection(from_host, Some(ctx)).await?;
            let made = list(&source, from)
                .await
                .map_err(|e| JobFailure::failed(e.to_string()))?
                .into_iter()
                .find(|b| b.id == backup_id)
                .ok_or_else(|| {
                    JobFailure::failed(format!(
                        "{} has no backup {backup_id} of {}",
                        from_host.name, from.name
                    ))
                })?;
            copy_here(&source, from, &made, &dir).await?;
        }
        ctx.say(&format!("sending {} to {}", archive.display(), host.name));
        let file = std::fs::File::open(&archive)
            .map_err(|e| JobFailure::failed(format!("cannot read {}: {e}", archive.display())))?;
        let call = AgentCall::backup_put(&target.name);
        let kept = agent::run_fed(&conn, &call.command_line(), file, Some(ctx))
            .await?
            .into_iter()
            .find_map(|m| match m {
                AgentMessage::Backup(info) => Some(info),
                _ => None,
            })
            .ok_or_else(|| JobFailure::failed("the host did not say which backup it kept"))?;
        let call = AgentCall::backup_restore(&target.name, &kept.id);
        agent::run(&conn, &call, b"", Some(ctx)).await?;
        Ok(())
    }

    /// Removes a server whose making failed: from its host (what was declared there, and
    /// the backup it was given) and from the model.
    async fn forget_half_made(&self, ctx: &JobCtx, id: i64) {
        if let Ok(Some(target)) = self.store.server_target_by_id(id) {
            if let Ok(host) = self.store.host_by_id(target.host_id)
                && let Ok(conn) = self.connection(&host, Some(ctx)).await
                && let Err(e) = agent::run(&conn, &AgentCall::delete(&target.name), b"", None).await
            {
                ctx.say(&format!(
                    "could not remove {} from {}: {}",
                    target.name,
                    host.name,
                    crate::error::chain(&e)
                ));
            }
            if let Err(e) = self.forget_server(id) {
                log::warn!("cannot forget the half-made server {}: {e}", target.name);
            }
            ctx.say(&format!("{} was not made", target.name));
        }
    }
}

async fn list(conn: &Connection, target: &ServerTarget) -> Result<Vec<BackupInfo>> {
    let messages = agent::run(conn, &AgentCall::backup_list(&target.name), b"", None)
        .await
        .map_err(failure)?;
    messages
        .into_iter()
        .find_map(|m| match m {
            AgentMessage::Backups(list) => Some(list.backups),
            _ => None,
        })
        .ok_or_else(|| Error::Remote("the host did not list the backups".to_owned()))
}

/// Streams backup `made` from the host into `dir`, through a partial file renamed once the
/// host ended well and the size is the archive's.
async fn copy_here(
    conn: &Connection,
    target: &ServerTarget,
    made: &BackupInfo,
    dir: &std::path::Path,
) -> std::result::Result<u64, JobFailure> {
    if !plain_id(&made.id) {
        return Err(JobFailure::failed(format!(
            "the host named the backup {:?}",
            made.id
        )));
    }
    let local = |e: std::io::Error| {
        JobFailure::failed(format!("cannot keep the copy in {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(local)?;
    let partial = dir.join(format!(".{}.partial", made.id));
    let ssh = |e: crate::ssh::SshError| JobFailure::from(AgentFailure::from(e));
    let result = async {
        let mut file = std::fs::File::create(&partial).map_err(local)?;
        let mut exec = conn
            .exec(&AgentCall::backup_get(&target.name, &made.id).command_line())
            .await
            .map_err(ssh)?;
        exec.close_stdin().await.map_err(ssh)?;
        let mut bytes = 0u64;
        let mut said = Vec::new();
        while let Some(event) = exec.next().await.map_err(ssh)? {
            match event {
                ExecEvent::Stdout(data) => {
                    bytes += data.len() as u64;
                    file.write_all(&data).map_err(local)?;
                }
                ExecEvent::Stderr(data) => said.extend_from_slice(&data),
            }
        }
        if exec.exit_status() != Some(0) || bytes != made.bytes {
            return Err(JobFailure::failed(format!(
                "the copy to this computer failed ({bytes} of {} bytes): {}",
                made.bytes,
                String::from_utf8_lossy(&said).trim()
            )));
        }
        file.sync_all().map_err(local)?;
        std::fs::rename(&partial, copy_of(dir, &made.id)).map_err(local)?;
        Ok(bytes)
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_go_once_the_hosts_retention_removed_them_and_never_when_it_lists_none() {
        let ids = |all: &[&str]| all.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let here = ids(&[
            "20261120T050000Z",
            "20261125T050000Z",
            "20261128T050000Z",
            "20261128T050000Z-2",
            "20261130T050000Z",
        ]);
        assert_eq!(
            pruned_copies(&here, &ids(&["20261128T050000Z", "20261130T050000Z"])),
            ids(&["20261120T050000Z", "20261125T050000Z"])
        );
        // Newer than the host's oldest: kept (made by hand here, or not listed yet).
        assert!(pruned_copies(&here, &ids(&["20261101T000000Z"])).is_empty());
        assert!(pruned_copies(&here, &[]).is_empty());
    }

    #[test]
    fn only_plain_backup_names_become_paths() {
        assert!(plain_id("20261130T211500Z"));
        assert!(plain_id("20261130T211500Z-2"));
        for bad in ["", "../x", "a/b", "x.tar.gz", "20261130T211500Z\n"] {
            assert!(!plain_id(bad), "{bad:?}");
        }
    }
}
