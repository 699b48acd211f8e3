//! Jobs: every action on a host is one, recorded with all it printed.
//!
//! A job is queued in a lane: one lane per server and one per host (for set-up and
//! installs). Each lane runs its jobs one at a time in the order they came; lanes run in
//! parallel. A job's lines and progress are stored as job events and broadcast to
//! subscribers (the window) as they happen. When the app starts, jobs the last run left
//! queued or running are marked interrupted.

use crate::accounts::Session;
use crate::error::{Error, Result};
use crate::store::Store;
use left4me_protocol::agent::InstallProgress;
pub use left4me_protocol::model::JobFilter;
use left4me_protocol::{AppEvent, Job, JobEvent, JobEventData, JobKind, JobState};
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Which jobs must wait for each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Host(i64),
    Server(i64),
}

/// A new job's identity.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: JobKind,
    pub owner: Option<i64>,
    pub host_id: Option<i64>,
    pub server_id: Option<i64>,
    pub target: String,
    pub lane: Lane,
}

impl NewJob {
    /// A job on a host as a whole (set-up, install, overlay upload): the host's lane.
    pub fn on_host(kind: JobKind, owner: i64, host_id: i64, target: String) -> Self {
        Self {
            kind,
            owner: Some(owner),
            host_id: Some(host_id),
            server_id: None,
            target,
            lane: Lane::Host(host_id),
        }
    }

    /// A job on one server: the server's lane.
    pub fn on_server(
        kind: JobKind,
        owner: i64,
        host_id: i64,
        server_id: i64,
        target: String,
    ) -> Self {
        Self {
            kind,
            owner: Some(owner),
            host_id: Some(host_id),
            server_id: Some(server_id),
            target,
            lane: Lane::Server(server_id),
        }
    }
}

/// How a job ended when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    pub state: JobState,
    pub message: String,
    pub exit_code: Option<i32>,
    /// The agent's error code, when the agent reported the failure.
    pub code: Option<left4me_protocol::agent::AgentErrorCode>,
}

impl JobFailure {
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            state: JobState::Failed,
            message: message.into(),
            exit_code: None,
            code: None,
        }
    }

    pub fn interrupted(message: impl Into<String>) -> Self {
        Self {
            state: JobState::Interrupted,
            message: message.into(),
            exit_code: None,
            code: None,
        }
    }

    pub fn cancelled() -> Self {
        Self {
            state: JobState::Cancelled,
            message: "cancelled".into(),
            exit_code: None,
            code: None,
        }
    }
}

impl From<crate::secrets::SecretsError> for JobFailure {
    fn from(err: crate::secrets::SecretsError) -> Self {
        Self::failed(crate::error::chain(&err))
    }
}

impl From<Error> for JobFailure {
    fn from(err: Error) -> Self {
        Self::failed(crate::error::chain(&err))
    }
}

type Work = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The job engine.
pub struct Jobs {
    store: Arc<Store>,
    events: broadcast::Sender<AppEvent>,
    lanes: Mutex<HashMap<Lane, mpsc::UnboundedSender<Work>>>,
    running: Mutex<HashMap<i64, CancellationToken>>,
}

/// What a running job's work uses to report and to notice cancellation.
#[derive(Clone)]
pub struct JobCtx {
    pub id: i64,
    jobs: Arc<Jobs>,
    cancel: CancellationToken,
}

impl JobCtx {
    /// A line of output on `stream` (`stdout`, `stderr`, or `app` for the app's own words).
    pub fn line(&self, stream: &str, text: &str) {
        self.jobs.record(
            self.id,
            JobEventData::Line {
                stream: stream.to_owned(),
                text: text.to_owned(),
            },
        );
    }

    /// The app's own account of a step.
    pub fn say(&self, text: &str) {
        self.line("app", text);
    }

    pub fn progress(&self, progress: &InstallProgress) {
        self.jobs
            .record(self.id, JobEventData::Progress(progress.clone()));
    }

    /// Any other event: Workshop progress and items.
    pub fn event(&self, data: JobEventData) {
        self.jobs.record(self.id, data);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when someone cancels the job.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }
}

impl Jobs {
    /// Starts the engine; marks jobs an earlier run left behind as interrupted.
    pub fn start(store: Arc<Store>, events: broadcast::Sender<AppEvent>) -> Result<Arc<Self>> {
        let now = store.now_ms();
        store.conn().execute(
            "UPDATE jobs SET state = 'interrupted', finished_ms = ?1,
                 error = coalesce(error, 'the app stopped while the job was ' || state)
             WHERE state IN ('queued', 'running')",
            [now],
        )?;
        Ok(Arc::new(Self {
            store,
            events,
            lanes: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
        }))
    }

    pub fn subscribe(&self) -> broadcast::Receiver<AppEvent> {
        self.events.subscribe()
    }

    /// Tells the subscribers something that is not a job's (events read from a host).
    pub fn publish(&self, event: AppEvent) {
        let _ = self.events.send(event);
    }

    /// Queues `work` in its lane and returns the job as queued. Must be called inside a
    /// tokio runtime.
    pub fn submit<F, Fut>(self: &Arc<Self>, new: NewJob, work: F) -> Result<Job>
    where
        F: FnOnce(JobCtx) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<(), JobFailure>> + Send + 'static,
    {
        let id = {
            let conn = self.store.conn();
            conn.execute(
                "INSERT INTO jobs (owner_id, kind, host_id, server_id, target, state, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6)",
                params![
                    new.owner,
                    new.kind.as_str(),
                    new.host_id,
                    new.server_id,
                    new.target,
                    self.store.now_ms()
                ],
            )?;
            conn.last_insert_rowid()
        };
        let cancel = CancellationToken::new();
        self.lock_running().insert(id, cancel.clone());
        let job = self.load(id)?;
        let _ = self.events.send(AppEvent::Job(job.clone()));
        let ctx = JobCtx {
            id,
            jobs: self.clone(),
            cancel,
        };
        let run: Work = Box::pin(async move {
            let jobs = ctx.jobs.clone();
            if ctx.is_cancelled() {
                jobs.finish(id, Err(JobFailure::cancelled()));
                return;
            }
            jobs.set_running(id);
            // The work runs in its own task so that a panic in it fails the job instead of
            // silently stopping the lane.
            let outcome = tokio::spawn(work(ctx)).await.unwrap_or_else(|panic| {
                Err(JobFailure::failed(format!("the job crashed: {panic}")))
            });
            jobs.finish(id, outcome);
        });
        self.lane(new.lane)
            .send(run)
            .map_err(|_| Error::Conflict("the job queue has stopped".into()))?;
        Ok(job)
    }

    fn lane(&self, lane: Lane) -> mpsc::UnboundedSender<Work> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes
            .entry(lane)
            .or_insert_with(|| {
                let (tx, mut rx) = mpsc::unbounded_channel::<Work>();
                tokio::spawn(async move {
                    while let Some(work) = rx.recv().await {
                        work.await;
                    }
                });
                tx
            })
            .clone()
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<i64, CancellationToken>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancels a queued or running job the caller may see. A running job's remote command
    /// gets SIGTERM; a queued one never starts.
    pub fn cancel(&self, session: &Session, id: i64) -> Result<Job> {
        let job = self.job(session, id)?;
        if job.state.is_finished() {
            return Err(Error::Conflict(format!(
                "job {id} has already ended ({})",
                job.state.as_str()
            )));
        }
        if let Some(token) = self.lock_running().get(&id) {
            token.cancel();
        }
        Ok(job)
    }

    fn set_running(&self, id: i64) {
        let result = self.store.conn().execute(
            "UPDATE jobs SET state = 'running', started_ms = ?2 WHERE id = ?1",
            params![id, self.store.now_ms()],
        );
        self.announce(id, result);
    }

    fn finish(&self, id: i64, outcome: std::result::Result<(), JobFailure>) {
        self.lock_running().remove(&id);
        let (state, error, exit_code, code) = match outcome {
            Ok(()) => (JobState::Succeeded, None, None, None),
            Err(f) => (f.state, Some(f.message), f.exit_code, f.code),
        };
        let code = code.and_then(|c| serde_json::to_value(c).ok()?.as_str().map(str::to_owned));
        if let Some(error) = &error {
            self.record(
                id,
                JobEventData::Line {
                    stream: "app".into(),
                    text: format!("{}: {error}", state.as_str()),
                },
            );
        }
        let result = self.store.conn().execute(
            "UPDATE jobs SET state = ?2, finished_ms = ?3, error = ?4, exit_code = ?5, error_code = ?6 WHERE id = ?1",
            params![id, state.as_str(), self.store.now_ms(), error, exit_code, code],
        );
        self.announce(id, result);
    }

    fn announce(&self, id: i64, result: rusqlite::Result<usize>) {
        if let Err(err) = result {
            log::error!("cannot record job {id}: {err}");
            return;
        }
        if let Ok(job) = self.load(id) {
            if job.state.is_finished() {
                log_outcome(&job);
            }
            let _ = self.events.send(AppEvent::Job(job));
        }
    }

    fn record(&self, job_id: i64, data: JobEventData) {
        let at_ms = self.store.now_ms();
        let json = serde_json::to_string(&data).expect("job events serialise");
        let inserted = {
            let conn = self.store.conn();
            conn.execute(
                "INSERT INTO job_events (job_id, at_ms, kind, data) VALUES (?1, ?2, ?3, ?4)",
                params![job_id, at_ms, event_kind(&data), json],
            )
            .map(|_| conn.last_insert_rowid())
        };
        match inserted {
            Ok(id) => {
                let _ = self.events.send(AppEvent::JobEvent(JobEvent {
                    id,
                    job_id,
                    at_ms,
                    data,
                }));
            }
            Err(err) => log::error!("cannot record an event of job {job_id}: {err}"),
        }
    }

    fn load(&self, id: i64) -> Result<Job> {
        self.store
            .conn()
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                job_from_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("job {id} does not exist")))
    }

    /// A job the caller may see: their own, or any if they are an admin.
    pub fn job(&self, session: &Session, id: i64) -> Result<Job> {
        let me = self.store.actor(session)?;
        self.store
            .conn()
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1 AND (?2 OR owner_id = ?3)"),
                params![id, me.is_admin, me.id],
                job_from_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("job {id} does not exist")))
    }

    /// The caller's jobs (an admin's: everyone's), newest first, filtered.
    pub fn jobs(&self, session: &Session, filter: &JobFilter) -> Result<Vec<Job>> {
        let me = self.store.actor(session)?;
        let conn = self.store.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE (?1 OR owner_id = ?2)
               AND (?3 IS NULL OR host_id = ?3)
               AND (?4 IS NULL OR server_id = ?4)
               AND (?5 IS NULL OR state = ?5)
             ORDER BY id DESC LIMIT ?6"
        ))?;
        let jobs = stmt
            .query_map(
                params![
                    me.is_admin,
                    me.id,
                    filter.host_id,
                    filter.server_id,
                    filter.state.map(JobState::as_str),
                    filter.limit.unwrap_or(200)
                ],
                job_from_row,
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(jobs)
    }

    /// This run's jobs that have not ended, whoever started them, oldest first: what
    /// closing the app would cut.
    pub fn unfinished(&self) -> Result<Vec<Job>> {
        let conn = self.store.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('queued', 'running') ORDER BY id"
        ))?;
        let jobs = stmt
            .query_map([], job_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(jobs)
    }

    /// Everything a job printed, oldest first.
    pub fn events(&self, session: &Session, job_id: i64) -> Result<Vec<JobEvent>> {
        self.job(session, job_id)?;
        let conn = self.store.conn();
        let mut stmt =
            conn.prepare("SELECT id, at_ms, data FROM job_events WHERE job_id = ?1 ORDER BY id")?;
        let rows: Vec<(i64, i64, String)> = stmt
            .query_map([job_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, at_ms, data)| {
                Some(JobEvent {
                    id,
                    job_id,
                    at_ms,
                    data: serde_json::from_str(&data).ok()?,
                })
            })
            .collect())
    }
}

/// A job's end in the app's log: its kind, target and state, and why it failed.
fn log_outcome(job: &Job) {
    let what = format!("job {} ({} {})", job.id, job.kind.as_str(), job.target);
    match (job.state, &job.error) {
        (JobState::Succeeded, _) => log::info!("{what}: succeeded"),
        (state, Some(error)) => log::warn!("{what}: {}: {error}", state.as_str()),
        (state, None) => log::warn!("{what}: {}", state.as_str()),
    }
}

const JOB_COLUMNS: &str = "id, kind, state, host_id, server_id, target, created_ms, started_ms, finished_ms, exit_code, error, error_code";

fn job_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let text_error = |i, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown job {what}").into(),
        )
    };
    Ok(Job {
        id: r.get(0)?,
        kind: JobKind::parse(&r.get::<_, String>(1)?).ok_or_else(|| text_error(1, "kind"))?,
        state: JobState::parse(&r.get::<_, String>(2)?).ok_or_else(|| text_error(2, "state"))?,
        host_id: r.get(3)?,
        server_id: r.get(4)?,
        target: r.get(5)?,
        created_ms: r.get(6)?,
        started_ms: r.get(7)?,
        finished_ms: r.get(8)?,
        exit_code: r.get(9)?,
        error: r.get(10)?,
        error_code: r
            .get::<_, Option<String>>(11)?
            .and_then(|code| serde_json::from_value(serde_json::Value::String(code)).ok()),
    })
}

fn event_kind(data: &JobEventData) -> &'static str {
    match data {
        JobEventData::Line { .. } => "line",
        JobEventData::Progress(_) | JobEventData::WorkshopProgress(_) => "progress",
        JobEventData::WorkshopItem(_) => "item",
    }
}
