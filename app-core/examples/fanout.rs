//! `cargo xtask bench fanout` runs this: the status refresh of 50 servers on 5 test hosts
//! through app-core (one `list` per host over kept SSH connections, all hosts at once),
//! beside a baseline of one OpenSSH `ssh host l4d2-agent status` process per server.
//! Prints figures; asserts nothing about time.
//!
//! Needs what the integration tests need: LEFT4ME_TEST_HOSTS (5 hosts), L4D2_AGENT_STATIC
//! and a Secret Service on the session bus.

#[path = "../tests/support/hosts.rs"]
#[allow(dead_code)]
mod support;

use app_core::servers::NewServer;
use left4me_protocol::LiveState;
use std::time::{Duration, Instant};

const PER_HOST: usize = 10;

fn main() {
    let rt = support::runtime();
    rt.block_on(async {
        let h = support::bring_up_hosts(tempfile::tempdir().unwrap()).await;
        assert!(h.hosts.len() >= 5, "the benchmark wants 5 hosts");
        let (app, admin) = (&h.app, &h.admin);
        let store = app.store();
        let blueprint = store
            .create_blueprint(
                admin,
                left4me_protocol::model::BlueprintDraft::coop("bench"),
            )
            .unwrap();
        let mut names = Vec::new();
        let mut jobs = Vec::new();
        for (host_index, host_id) in h.host_ids.iter().take(5).enumerate() {
            for i in 0..PER_HOST {
                let name = format!("bench-{i}");
                let server = store
                    .create_server(
                        admin,
                        NewServer {
                            name: name.clone(),
                            host_id: *host_id,
                            blueprint_id: blueprint.id,
                            port: 27015 + i as u16,
                        },
                    )
                    .unwrap();
                jobs.push(app.start_server(admin, server.id).unwrap());
                names.push((host_index, name));
            }
        }
        for job in &jobs {
            let job = support::wait_job(app, admin, job, Duration::from_secs(120)).await;
            support::assert_succeeded(app, admin, &job);
        }
        // Until every server answers A2S: the figures below include the live query.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let all = app.statuses(admin).await.unwrap();
            let live = all
                .iter()
                .filter(|l| l.state == LiveState::Running && l.status.as_ref().is_some_and(|s| s.live.is_some()))
                .count();
            if live == all.len() {
                break;
            }
            assert!(Instant::now() < deadline, "only {live} of {} servers answer", all.len());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        let runs = 20;
        let mut fanout = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            let all = app.statuses(admin).await.unwrap();
            fanout.push(start.elapsed());
            assert_eq!(all.len(), names.len());
        }

        // The baseline: a new ssh process per server, one after another, as a script or a
        // panel without kept connections would do it.
        let mut baseline = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            for (host_index, name) in &names {
                let out = h.hosts[*host_index].ssh(
                    "root",
                    &format!("/opt/left4me/l4d2-agent status {name} --json"),
                );
                assert!(out.status.success());
            }
            baseline.push(start.elapsed());
        }
        let median = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (fan, base) = (median(fanout.clone()), median(baseline.clone()));
        println!("status refresh of {} servers on 5 hosts (figures, not assertions)", names.len());
        println!(
            "  app-core fan-out, warm (one list per host, in parallel)  median {:>8.1} ms  (n={runs})",
            ms(fan)
        );
        println!(
            "  baseline: one `ssh host l4d2-agent status` per server    median {:>8.1} ms  (n=3)",
            ms(base)
        );
        println!(
            "  ratio                                                    {:>8.1}x  (goal >= 10x)",
            base.as_secs_f64() / fan.as_secs_f64()
        );
        for (host_index, name) in &names {
            h.hosts[*host_index].run("root", &format!("/opt/left4me/l4d2-agent delete {name} >/dev/null"));
        }
    });
}
