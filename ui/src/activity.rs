//! The jobs this window has seen, kept current by the backend's `app-event`s: which are
//! running for each host and server (so an action cannot be started twice), and how far
//! each has got (steamcmd's stage and bytes, Workshop downloads). A `Reducible` shared by
//! context.

use left4me_protocol::agent::InstallProgress;
use left4me_protocol::units::human_bytes as bytes;
use left4me_protocol::{AppEvent, Job, JobEventData, JobKind};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use yew::prelude::*;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Activity {
    pub jobs: BTreeMap<i64, Job>,
    pub progress: HashMap<i64, Progress>,
    /// Each job's last line of output.
    pub last_line: HashMap<i64, String>,
    /// Grows when a job is queued, starts or ends: lists of jobs reload on it.
    pub revision: u64,
    /// Grows when the app reads new events from a host: their lists reload on it.
    pub host_events: u64,
}

/// How far a job has got, as a fraction and in words.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Install(InstallProgress),
    Workshop {
        items_done: u32,
        items_total: u32,
        /// Bytes of the items downloading now.
        downloading: HashMap<u64, (u64, u64)>,
    },
}

impl Progress {
    /// From 0 to 1.
    pub fn fraction(&self) -> f64 {
        match self {
            Progress::Install(p) => {
                // Two passes (anonymous installs) share the bar.
                let passes = f64::from(p.passes.max(1));
                let pass = f64::from(p.pass.clamp(1, p.passes.max(1)) - 1);
                ((pass + p.percent.clamp(0.0, 100.0) / 100.0) / passes).clamp(0.0, 1.0)
            }
            Progress::Workshop {
                items_done,
                items_total,
                downloading,
            } => {
                if *items_total == 0 {
                    return 0.0;
                }
                let partial: f64 = downloading
                    .values()
                    .map(|&(done, total)| done as f64 / total.max(1) as f64)
                    .sum();
                ((f64::from(*items_done) + partial) / f64::from(*items_total)).clamp(0.0, 1.0)
            }
        }
    }

    pub fn words(&self) -> String {
        match self {
            Progress::Install(p) => format!(
                "pass {} of {} ({}): {}, {} of {}",
                p.pass,
                p.passes,
                p.platform,
                p.state,
                bytes(p.bytes_done),
                bytes(p.bytes_total)
            ),
            Progress::Workshop {
                items_done,
                items_total,
                downloading,
            } => {
                let (done, total) = downloading
                    .values()
                    .fold((0, 0), |(d, t), &(a, b)| (d + a, t + b));
                if downloading.is_empty() {
                    format!("{items_done} of {items_total} Workshop items")
                } else {
                    format!(
                        "{items_done} of {items_total} Workshop items, downloading {} of {}",
                        bytes(done),
                        bytes(total)
                    )
                }
            }
        }
    }
}

pub enum ActivityAction {
    /// Jobs read from the backend.
    Loaded(Vec<Job>),
    Event(AppEvent),
}

impl Reducible for Activity {
    type Action = ActivityAction;

    fn reduce(self: Rc<Self>, action: ActivityAction) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            ActivityAction::Loaded(jobs) => {
                next.revision += 1;
                for job in jobs {
                    next.jobs.insert(job.id, job);
                }
            }
            ActivityAction::Event(AppEvent::Job(job)) => {
                next.revision += 1;
                if job.state.is_finished() {
                    next.progress.remove(&job.id);
                }
                next.jobs.insert(job.id, job);
            }
            ActivityAction::Event(AppEvent::HostEvents { .. }) => {
                next.host_events += 1;
            }
            ActivityAction::Event(AppEvent::JobEvent(event)) => {
                let id = event.job_id;
                match event.data {
                    JobEventData::Line { text, .. } => {
                        next.last_line.insert(id, text);
                    }
                    JobEventData::Progress(p) => {
                        next.progress.insert(id, Progress::Install(p));
                    }
                    data => {
                        let entry = next.progress.entry(id).or_insert(Progress::Workshop {
                            items_done: 0,
                            items_total: 0,
                            downloading: HashMap::new(),
                        });
                        if let Progress::Workshop {
                            items_done,
                            items_total,
                            downloading,
                        } = entry
                        {
                            match data {
                                JobEventData::WorkshopProgress(p) => {
                                    downloading.insert(p.id, (p.bytes_done, p.bytes_total));
                                }
                                JobEventData::WorkshopItem(item) => {
                                    *items_done = item.items_done;
                                    *items_total = item.items_total;
                                    downloading.remove(&item.id);
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
        Rc::new(next)
    }
}

impl Activity {
    /// The job queued or running for a server, if any.
    pub fn active_for_server(&self, server_id: i64) -> Option<&Job> {
        self.jobs
            .values()
            .rev()
            .find(|j| j.server_id == Some(server_id) && !j.state.is_finished())
    }

    /// The host-wide job (set-up, install, overlay fill) queued or running on a host.
    pub fn active_for_host(&self, host_id: i64) -> Option<&Job> {
        self.jobs
            .values()
            .rev()
            .find(|j| j.host_id == Some(host_id) && j.server_id.is_none() && !j.state.is_finished())
    }

    /// The newest job of a kind on a host, whatever its state.
    pub fn latest(&self, host_id: i64, kind: JobKind) -> Option<&Job> {
        self.jobs
            .values()
            .rev()
            .find(|j| j.host_id == Some(host_id) && j.kind == kind)
    }
}

pub type ActivityContext = UseReducerHandle<Activity>;

#[cfg(test)]
mod tests {
    use super::*;
    use left4me_protocol::agent::{WorkshopItem, WorkshopOutcome, WorkshopProgress};
    use left4me_protocol::{JobEvent, JobState};

    fn job(id: i64, kind: JobKind, state: JobState, host: i64, server: Option<i64>) -> Job {
        Job {
            id,
            kind,
            state,
            host_id: Some(host),
            server_id: server,
            target: "box".into(),
            created_ms: 0,
            started_ms: None,
            finished_ms: None,
            exit_code: None,
            error: None,
            error_code: None,
        }
    }

    fn event(job_id: i64, data: JobEventData) -> ActivityAction {
        ActivityAction::Event(AppEvent::JobEvent(JobEvent {
            id: 0,
            job_id,
            at_ms: 0,
            data,
        }))
    }

    fn install(pass: u32, percent: f64) -> InstallProgress {
        InstallProgress {
            pass,
            passes: 2,
            platform: "linux".into(),
            state_code: 0x61,
            state: "downloading".into(),
            percent,
            bytes_done: 3 << 30,
            bytes_total: 6 << 30,
        }
    }

    #[test]
    fn install_progress_shows_until_the_job_ends() {
        let mut a = Rc::new(Activity::default());
        a = a.reduce(ActivityAction::Event(AppEvent::Job(job(
            1,
            JobKind::Install,
            JobState::Running,
            7,
            None,
        ))));
        assert_eq!(a.active_for_host(7).map(|j| j.id), Some(1));
        a = a.reduce(event(1, JobEventData::Progress(install(2, 50.0))));
        let progress = &a.progress[&1];
        assert_eq!(progress.fraction(), 0.75);
        assert_eq!(
            progress.words(),
            "pass 2 of 2 (linux): downloading, 3.0 GiB of 6.0 GiB"
        );
        let revision = a.revision;
        a = a.reduce(ActivityAction::Event(AppEvent::Job(job(
            1,
            JobKind::Install,
            JobState::Succeeded,
            7,
            None,
        ))));
        assert!(a.revision > revision);
        assert_eq!(a.active_for_host(7), None);
        assert!(!a.progress.contains_key(&1));
        assert_eq!(
            a.latest(7, JobKind::Install).map(|j| j.state),
            Some(JobState::Succeeded)
        );
    }

    #[test]
    fn workshop_progress_counts_items_and_bytes() {
        let mut a = Rc::new(Activity::default());
        a = a.reduce(event(
            2,
            JobEventData::WorkshopProgress(WorkshopProgress {
                id: 10,
                bytes_done: 50,
                bytes_total: 100,
            }),
        ));
        a = a.reduce(event(
            2,
            JobEventData::WorkshopItem(WorkshopItem {
                id: 11,
                title: "map".into(),
                file: None,
                bytes: 1,
                outcome: WorkshopOutcome::Downloaded,
                reason: None,
                items_done: 1,
                items_total: 4,
            }),
        ));
        let progress = &a.progress[&2];
        assert_eq!(progress.fraction(), 1.5 / 4.0);
        assert_eq!(
            progress.words(),
            "1 of 4 Workshop items, downloading 50 B of 100 B"
        );
        a = a.reduce(event(
            2,
            JobEventData::Line {
                stream: "app".into(),
                text: "filling maps".into(),
            },
        ));
        assert_eq!(a.last_line[&2], "filling maps");
    }

    #[test]
    fn a_server_is_busy_while_its_job_is_queued_or_running() {
        let mut a = Rc::new(Activity::default());
        a = a.reduce(ActivityAction::Loaded(vec![
            job(1, JobKind::Start, JobState::Succeeded, 7, Some(3)),
            job(2, JobKind::Stop, JobState::Queued, 7, Some(3)),
        ]));
        assert_eq!(a.active_for_server(3).map(|j| j.kind), Some(JobKind::Stop));
        assert_eq!(
            a.active_for_host(7),
            None,
            "a server's job is not the host's"
        );
        assert_eq!(a.active_for_server(4), None);
    }
}
