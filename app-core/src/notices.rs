//! What deserves a desktop notification while the app runs: a server that crashed or that
//! systemd gave up on (the events its host recorded, read as they come and, after the app
//! was closed, all at once), a host that stops answering, a job that fails. A host's
//! silence is told once until it answers again; the first state the app sees only sets the
//! baseline (the dashboard shows what already was).

use left4me_protocol::model::HostEventRow;
use left4me_protocol::{Job, JobState, LiveState, ServerLive};
use std::collections::{HashMap, HashSet};

/// One desktop notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub body: String,
}

/// A server's live state with its host's name, as a person reads it.
pub struct Named<'a> {
    pub live: &'a ServerLive,
    pub host: &'a str,
}

/// The fleet as last seen: which hosts answer. (Servers' crashes are told from their
/// hosts' events, which see every crash, not only those a look happens to catch.)
#[derive(Default)]
pub struct FleetWatch {
    primed: bool,
    /// Hosts already reported as not answering, until they answer again.
    silent: HashSet<i64>,
}

impl FleetWatch {
    /// The notices `now` gives against the last state seen.
    pub fn update(&mut self, now: &[Named<'_>]) -> Vec<Notice> {
        let mut notices = Vec::new();
        let mut unreachable: HashMap<i64, (&str, Option<&str>)> = HashMap::new();
        let mut answering = HashSet::new();
        for named in now {
            let live = named.live;
            if live.state == LiveState::Unreachable {
                unreachable.insert(live.host_id, (named.host, live.error.as_deref()));
            } else {
                answering.insert(live.host_id);
            }
        }
        self.silent.retain(|host| !answering.contains(host));
        let mut hosts: Vec<_> = unreachable.into_iter().collect();
        hosts.sort_by_key(|(id, _)| *id);
        for (host_id, (host, error)) in hosts {
            if self.silent.insert(host_id) && self.primed {
                notices.push(Notice {
                    title: format!("{host} does not answer"),
                    body: error.unwrap_or("The host could not be reached.").to_owned(),
                });
            }
        }
        self.primed = true;
        notices
    }
}

/// The notices for events just read from hosts: one per crash or give-up, or one for all
/// of them when there are more than [`AT_ONCE`] (a week away, a crash loop).
pub fn host_event_notices(rows: &[HostEventRow]) -> Vec<Notice> {
    let alerts: Vec<&HostEventRow> = rows.iter().filter(|r| r.event.is_alert()).collect();
    if alerts.len() > AT_ONCE {
        let mut hosts: Vec<&str> = alerts.iter().map(|r| r.host.as_str()).collect();
        hosts.sort_unstable();
        hosts.dedup();
        return vec![Notice {
            title: format!("{} things happened on {}", alerts.len(), hosts.join(", ")),
            body: alerts
                .iter()
                .take(AT_ONCE)
                .map(|r| r.event.title())
                .collect::<Vec<_>>()
                .join("; ")
                + "; … See the dashboard.",
        }];
    }
    alerts
        .iter()
        .map(|r| Notice {
            title: format!("{} ({})", r.event.title(), r.host),
            body: r.event.detail(),
        })
        .collect()
}

/// The most host events told one by one.
pub const AT_ONCE: usize = 3;

/// The notice for a job that just ended, if it failed.
pub fn job_notice(job: &Job) -> Option<Notice> {
    if job.state != JobState::Failed {
        return None;
    }
    Some(Notice {
        title: format!("{} failed ({})", job.kind.doing(), job.target),
        body: job
            .error
            .clone()
            .unwrap_or_else(|| "See the jobs list for its log.".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use left4me_protocol::JobKind;
    use left4me_protocol::agent::ServerStatus;

    fn live(server_id: i64, host_id: i64, state: LiveState) -> ServerLive {
        ServerLive {
            server_id,
            host_id,
            state,
            status: (state != LiveState::Unreachable).then(|| ServerStatus {
                name: format!("s{server_id}"),
                port: 27015,
                map: "c1m1_hotel".into(),
                overlays: Vec::new(),
                active_state: "activating".into(),
                sub_state: "auto-restart".into(),
                result: "exit-code".into(),
                main_pid: None,
                since: None,
                restarts: 4,
                mounted: true,
                installed_build: None,
                live: None,
                restart_applies: false,
                usage: None,
            }),
            error: (state == LiveState::Unreachable).then(|| "cannot reach 10.0.0.9:22".into()),
        }
    }

    /// Feeds the states in turn; returns the titles each step raised.
    fn titles(steps: &[&[(i64, i64, LiveState)]]) -> Vec<Vec<String>> {
        let mut watch = FleetWatch::default();
        steps
            .iter()
            .map(|step| {
                let lives: Vec<ServerLive> = step
                    .iter()
                    .map(|&(s, h, state)| live(s, h, state))
                    .collect();
                let hosts: Vec<String> = lives
                    .iter()
                    .map(|l| format!("host-{}", l.host_id))
                    .collect();
                let named: Vec<Named<'_>> = lives
                    .iter()
                    .zip(&hosts)
                    .map(|(live, host)| Named { live, host })
                    .collect();
                watch.update(&named).into_iter().map(|n| n.title).collect()
            })
            .collect()
    }

    use LiveState::*;

    #[test]
    fn server_states_are_not_news_here_and_a_first_look_sets_the_baseline() {
        assert_eq!(
            titles(&[
                &[(1, 1, Running), (2, 2, Unreachable)],
                &[(1, 1, CrashLooping), (2, 2, Unreachable)],
                &[(1, 1, Failed), (2, 2, Unreachable)],
            ]),
            [Vec::<String>::new(), vec![], vec![]]
        );
    }

    #[test]
    fn host_events_are_told_one_by_one_or_all_at_once() {
        use left4me_protocol::events::{EventKind, HostEvent, StopCause};
        let row = |seq: u64, what: EventKind| HostEventRow {
            id: seq as i64,
            host_id: 1,
            host: "box-1".into(),
            event: HostEvent {
                seq,
                at: "2026-11-30T18:00:00.000000Z".into(),
                server: Some("coop-1".into()),
                what,
            },
            dismissed: false,
        };
        let crash = |seq| {
            row(
                seq,
                EventKind::Crashed {
                    cause: StopCause::Exited { status: 1 },
                    last_lines: vec![],
                },
            )
        };
        let failed = row(
            9,
            EventKind::NotificationFailed {
                target: "ops".into(),
                reason: "HTTP 404".into(),
            },
        );
        assert_eq!(
            host_event_notices(&[crash(1), failed.clone()]),
            [Notice {
                title: "coop-1 crashed (box-1)".into(),
                body: "The game exited with status 1; systemd starts it again.".into()
            }]
        );
        let many: Vec<HostEventRow> = (1..=5).map(crash).collect();
        let told = host_event_notices(&many);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].title, "5 things happened on box-1");
        assert!(told[0].body.ends_with("See the dashboard."));
        assert_eq!(host_event_notices(&[failed]), []);
    }

    #[test]
    fn a_silent_host_is_told_once_for_all_its_servers_until_it_answers() {
        assert_eq!(
            titles(&[
                &[(1, 7, Running), (2, 7, Running)],
                &[(1, 7, Unreachable), (2, 7, Unreachable)],
                &[(1, 7, Unreachable), (2, 7, Unreachable)],
                &[(1, 7, Running), (2, 7, Running)],
                &[(1, 7, Unreachable), (2, 7, Unreachable)],
            ]),
            [
                vec![],
                vec!["host-7 does not answer".to_owned()],
                vec![],
                vec![],
                vec!["host-7 does not answer".to_owned()],
            ]
        );
    }

    #[test]
    fn only_failed_jobs_are_news() {
        let mut job = Job {
            id: 1,
            kind: JobKind::Install,
            state: JobState::Failed,
            host_id: Some(1),
            server_id: None,
            target: "host-1".into(),
            created_ms: 0,
            started_ms: None,
            finished_ms: None,
            exit_code: Some(1),
            error: Some("Steam Guard: the code was wrong".into()),
            error_code: None,
        };
        assert_eq!(
            job_notice(&job),
            Some(Notice {
                title: "Installing the game failed (host-1)".into(),
                body: "Steam Guard: the code was wrong".into()
            })
        );
        for state in [
            JobState::Succeeded,
            JobState::Cancelled,
            JobState::Interrupted,
            JobState::Running,
        ] {
            job.state = state;
            assert_eq!(job_notice(&job), None, "{state:?}");
        }
    }
}
