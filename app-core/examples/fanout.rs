//! `cargo xtask bench fanout` runs this: the status refresh of 50 servers on 5 test hosts
//! through app-core (a `list` request to each host's kept `l4d2-agent serve` over its kept
//! SSH connection, all hosts at once),
//! beside what an expert's script does: one kept OpenSSH connection per host
//! (ControlMaster), all hosts asked at once, `l4d2-agent list --json` on each. Then where
//! one host's time goes. Prints figures; asserts nothing about time.
//!
//! Needs what the integration tests need: LEFT4ME_TEST_HOSTS (5 hosts), L4D2_AGENT_STATIC
//! and a Secret Service on the session bus.

#[path = "../tests/support/hosts.rs"]
#[allow(dead_code)]
mod support;

use app_core::servers::NewServer;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use testkit::TestHost;

const PER_HOST: usize = 10;

/// `command` as root on `host` over the kept connection at `control`.
fn spawn(host: &TestHost, control: &Path, command: &str) -> std::process::Child {
    host.ssh_command_multiplexed("root", control, command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn timed(runs: usize, mut work: impl FnMut()) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect()
}

/// The median of each phase over the agent's `timings:` lines (`phase=ms` each).
fn print_phases(lines: &[String]) {
    let mut phases: Vec<(String, Vec<f64>)> = Vec::new();
    for line in lines {
        for part in line.split_whitespace() {
            let (what, took) = part.split_once('=').unwrap();
            let took: f64 = took.parse().unwrap();
            match phases.iter_mut().find(|(w, _)| w == what) {
                Some((_, all)) => all.push(took),
                None => phases.push((what.to_owned(), vec![took])),
            }
        }
    }
    for (what, mut all) in phases {
        all.sort_by(f64::total_cmp);
        println!("    {what:<10} {:>7.2} ms", all[all.len() / 2]);
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rt = support::runtime();
    rt.block_on(async {
        let mut h = support::bring_up_hosts(tempfile::tempdir().unwrap()).await;
        // The tests' watch for secrets in command lines samples every process on every host
        // every few milliseconds: that load is the tests', not the app's.
        h.argv.finish();
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
        support::all_succeed(app, admin, &jobs, Duration::from_secs(120)).await;
        // Until every server answers A2S: the figures below include the live query.
        support::all_answer(app, admin, Duration::from_secs(120)).await;

        // More looks to profile what runs (`perf record` beside it); 20 for the figures.
        let runs: usize = std::env::var("LEFT4ME_BENCH_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(20);
        let mut fanout = Vec::new();
        let cpu_before = support::cpu_by_program();
        for _ in 0..runs {
            let start = Instant::now();
            let all = app.statuses(admin).await.unwrap();
            fanout.push(start.elapsed());
            assert_eq!(all.len(), names.len());
        }
        let cpu_after = support::cpu_by_program();

        // The expert's baseline: a kept OpenSSH connection per host, every host at once.
        let control = tempfile::tempdir().unwrap();
        let hosts: Vec<(&TestHost, PathBuf)> = h
            .hosts
            .iter()
            .take(5)
            .enumerate()
            .map(|(i, host)| (host, control.path().join(format!("h{i}"))))
            .collect();
        let hosts = &hosts;
        let ask_all = |command: &'static str| {
            move || {
                let asked: Vec<_> = hosts
                    .iter()
                    .map(|(host, path)| spawn(host, path, command))
                    .collect();
                for child in asked {
                    let out = child.wait_with_output().unwrap();
                    assert!(out.status.success(), "{out:?}");
                }
            }
        };
        ask_all("true")();
        let expert = timed(runs, ask_all("/opt/left4me/l4d2-agent list --json"));
        // The same with nothing to do: what a process per host and refresh costs alone.
        let spawning = timed(runs, ask_all("true"));

        // Where one host's time goes, over its kept connection.
        let (host, path) = &hosts[0];
        let one = |command: &'static str| {
            move || {
                let out = spawn(host, path, command).wait_with_output().unwrap();
                assert!(out.status.success(), "{out:?}");
            }
        };
        let channel = timed(runs, one("true"));
        let started = timed(runs, one("/opt/left4me/l4d2-agent --version"));
        let listed = timed(runs, one("/opt/left4me/l4d2-agent list --json"));

        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (fan, base) = (median(fanout), median(expert));
        println!("status refresh of {} servers on 5 hosts (figures, not assertions)", names.len());
        println!(
            "  app-core fan-out, warm (kept serve per host, in parallel)    median {:>7.1} ms  (n={runs}; goal <= 20 ms)",
            ms(fan)
        );
        println!(
            "  expert baseline: OpenSSH ControlMaster per host, in parallel median {:>7.1} ms  (n={runs})",
            ms(base)
        );
        println!(
            "  ratio                                                        {:>7.1}x  (goal >= 5x)",
            base.as_secs_f64() / fan.as_secs_f64()
        );
        println!(
            "  the same channels running `true`, in parallel                median {:>7.1} ms",
            ms(median(spawning))
        );
        // The machine's CPU time a refresh costs, by program (the hosts' processes are this
        // machine's too): what the 2 cores must do each look.
        let mut by_program: std::collections::HashMap<String, f64> = Default::default();
        for (pid, (program, after)) in &cpu_after {
            // Kernel workers are named by their work of the moment: one name for them all.
            let program = if program.starts_with("kworker/") { "kworker" } else { program };
            let before = cpu_before.get(pid).map_or(0.0, |(_, ms)| *ms);
            *by_program.entry(program.to_owned()).or_default() += (after - before) / runs as f64;
        }
        let mut spent: Vec<(String, f64)> = by_program.into_iter().filter(|(_, ms)| *ms >= 0.05).collect();
        spent.sort_by(|a, b| b.1.total_cmp(&a.1));
        println!(
            "  CPU time per refresh, all programs on this machine         {:>7.1} ms  (by program, mean of n={runs}):",
            spent.iter().map(|(_, ms)| ms).sum::<f64>()
        );
        for (program, ms) in spent.iter().take(8) {
            println!("    {program:<16} {ms:>7.2} ms");
        }
        println!("one host's {PER_HOST} servers, over a kept OpenSSH connection (medians, n={runs}):");
        println!("  a channel running `true`            {:>7.1} ms", ms(median(channel)));
        println!("  l4d2-agent --version (agent start)  {:>7.1} ms", ms(median(started)));
        println!("  l4d2-agent list --json              {:>7.1} ms", ms(median(listed)));
        // Inside the agent: its own marks (L4D2_AGENT_TIMINGS), medians of each phase.
        let mut lines = Vec::new();
        for _ in 0..runs {
            let out = spawn(host, path, "L4D2_AGENT_TIMINGS=1 /opt/left4me/l4d2-agent list --json")
                .wait_with_output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let line = stderr
                .lines()
                .find_map(|l| l.strip_prefix("timings: "))
                .unwrap_or_else(|| panic!("no timings line: {stderr}"));
            lines.push(line.to_owned());
        }
        println!("  inside list, by phase:");
        print_phases(&lines);

        // What the app does instead: the same list asked of a kept `serve` over the kept
        // connection, a request line and an answer line; the first request (which connects
        // to the bus) left out.
        let mut serve = host
            .ssh_command_multiplexed("root", path, "L4D2_AGENT_TIMINGS=1 /opt/left4me/l4d2-agent --json serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut requests = serve.stdin.take().unwrap();
        let mut answers = std::io::BufReader::new(serve.stdout.take().unwrap());
        let mut answer = String::new();
        let served = timed(runs + 1, || {
            use std::io::{BufRead, Write};
            requests.write_all(b"list\n").unwrap();
            answer.clear();
            answers.read_line(&mut answer).unwrap();
            assert!(answer.contains(r#""type":"servers""#), "{answer}");
        });
        drop(requests);
        let out = serve.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<String> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("timings: "))
            .skip(1)
            .map(str::to_owned)
            .collect();
        println!(
            "  list asked of a kept l4d2-agent serve {:>7.1} ms",
            ms(median(served[1..].to_vec()))
        );
        println!("  inside serve's list, by phase:");
        print_phases(&lines);
        for (host_index, name) in &names {
            h.hosts[*host_index].run("root", &format!("/opt/left4me/l4d2-agent delete {name} >/dev/null"));
        }
    });
}
