//! What deserves a desktop notification while the app runs: a server that starts
//! crash-looping or gives up, a host that stops answering, a job that fails. Each new fleet
//! state is compared with the last one, so a lasting condition is told once; the first
//! state the app sees only sets the baseline (the dashboard shows what already was).

use left4me_protocol::{Job, JobState, LiveState, ServerLive};
use std::collections::{HashMap, HashSet};

/// One desktop notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub body: String,
}

/// A server's live state with the names a person reads.
pub struct Named<'a> {
    pub live: &'a ServerLive,
    pub server: &'a str,
    pub host: &'a str,
}

/// The fleet as last seen.
#[derive(Default)]
pub struct FleetWatch {
    primed: bool,
    servers: HashMap<i64, LiveState>,
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
            let before = self.servers.insert(live.server_id, live.state);
            if live.state == LiveState::Unreachable {
                unreachable.insert(live.host_id, (named.host, live.error.as_deref()));
                continue;
            }
            answering.insert(live.host_id);
            if !self.primed || before == Some(live.state) {
                continue;
            }
            let status = live.status.as_ref();
            let ended = status.map_or("unknown", |s| s.result.as_str());
            match live.state {
                LiveState::CrashLooping => notices.push(Notice {
                    title: format!("{} is crash-looping", named.server),
                    body: format!(
                        "On {}: restarted {} times after crashes; the last run ended: {ended}.",
                        named.host,
                        status.map_or(0, |s| s.restarts)
                    ),
                }),
                LiveState::Failed => notices.push(Notice {
                    title: format!("{} has stopped", named.server),
                    body: format!(
                        "On {}: it failed and was given up; the last run ended: {ended}.",
                        named.host
                    ),
                }),
                _ => {}
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
                let names: Vec<(String, String)> = lives
                    .iter()
                    .map(|l| {
                        (
                            format!("coop-{}", l.server_id),
                            format!("host-{}", l.host_id),
                        )
                    })
                    .collect();
                let named: Vec<Named<'_>> = lives
                    .iter()
                    .zip(&names)
                    .map(|(live, (server, host))| Named { live, server, host })
                    .collect();
                watch.update(&named).into_iter().map(|n| n.title).collect()
            })
            .collect()
    }

    use LiveState::*;

    #[test]
    fn a_crash_loop_is_told_once_when_it_starts() {
        assert_eq!(
            titles(&[
                &[(1, 1, Running)],
                &[(1, 1, CrashLooping)],
                &[(1, 1, CrashLooping)],
                &[(1, 1, Failed)],
                &[(1, 1, Running)],
                &[(1, 1, CrashLooping)],
            ]),
            [
                vec![],
                vec!["coop-1 is crash-looping".to_owned()],
                vec![],
                vec!["coop-1 has stopped".to_owned()],
                vec![],
                vec!["coop-1 is crash-looping".to_owned()],
            ]
        );
    }

    #[test]
    fn what_already_was_at_the_first_look_is_not_news() {
        assert_eq!(
            titles(&[
                &[(1, 1, CrashLooping), (2, 2, Unreachable)],
                &[(1, 1, CrashLooping), (2, 2, Unreachable)]
            ]),
            [Vec::<String>::new(), vec![]]
        );
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
