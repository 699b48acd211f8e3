//! Faults: a connection cut mid-job, a changed host key, the app killed mid-job.

use crate::hosts_turn;
use crate::support::{assert_succeeded, bring_up_hosts, runtime, wait_job};
use app_core::Store;
use app_core::jobs::{JobFilter, Jobs};
use left4me_protocol::{JobEventData, JobState};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
#[ignore = "needs the test hosts and a Secret Service: cargo xtask test"]
fn a_cut_connection_interrupts_the_job_and_a_changed_host_key_is_refused() {
    let _turn = hosts_turn();
    runtime().block_on(async {
        let h = bring_up_hosts(tempfile::tempdir().unwrap()).await;
        let (app, admin) = (&h.app, &h.admin);
        let host = &h.hosts[1];
        let host_id = h.host_ids[1];

        // Cancelling a running install stops it on the host.
        let job = app.install_game(admin, host_id, true, None).unwrap();
        wait_progress(app, admin, job.id).await;
        app.jobs().cancel(admin, job.id).unwrap();
        let job = wait_job(app, admin, &job, Duration::from_secs(60)).await;
        assert_eq!(job.state, JobState::Cancelled, "{job:?}");
        let running = "pgrep -f '[l]4d2-agent --json install|[s]teamcmd' || true";
        let deadline = Instant::now() + Duration::from_secs(10);
        while !host.run("root", running).is_empty() {
            assert!(Instant::now() < deadline, "the install still runs on the host");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // A validating install takes a few seconds of steamcmd progress; cut the
        // connection while it runs.
        let job = app.install_game(admin, host_id, true, None).unwrap();
        wait_progress(app, admin, job.id).await;
        host.run("root", "pkill -KILL -f '^sshd: left4me'");
        let job = wait_job(app, admin, &job, Duration::from_secs(60)).await;
        assert_eq!(job.state, JobState::Interrupted, "{job:?}");
        assert_eq!(
            job.error.as_deref(),
            Some(format!("the connection to {} was lost during the job; the next action reconnects", host.address).as_str())
        );
        // The next action reconnects and succeeds.
        let retry = app.install_game(admin, host_id, false, None).unwrap();
        let retry = wait_job(app, admin, &retry, Duration::from_secs(120)).await;
        assert_succeeded(app, admin, &retry);

        // The host gets a new key (reinstalled, or someone in between): refused before login.
        host.run(
            "root",
            "cp /etc/ssh/ssh_host_ed25519_key /root/k.bak && cp /etc/ssh/ssh_host_ed25519_key.pub /root/k.pub.bak \
             && rm /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key \
             && systemctl restart ssh",
        );
        host.run("root", "pkill -KILL -f '^sshd: left4me' || true");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let job = app.install_game(admin, host_id, false, None).unwrap();
        let job = wait_job(app, admin, &job, Duration::from_secs(60)).await;
        host.run(
            "root",
            "mv /root/k.bak /etc/ssh/ssh_host_ed25519_key && mv /root/k.pub.bak /etc/ssh/ssh_host_ed25519_key.pub && systemctl restart ssh",
        );
        assert_eq!(job.state, JobState::Failed);
        let error = job.error.unwrap();
        assert!(
            error.starts_with(&format!("the host key of {}:22 has changed: the confirmed key is SHA256:", host.address)),
            "{error}"
        );
        // With the old key back, the host answers again.
        let job = app.install_game(admin, host_id, false, None).unwrap();
        assert_succeeded(app, admin, &wait_job(app, admin, &job, Duration::from_secs(120)).await);
    });
}

/// Waits until a running install has reported some of steamcmd's progress.
async fn wait_progress(app: &app_core::app::App, admin: &app_core::Session, job: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let progress = app
            .jobs()
            .events(admin, job)
            .unwrap()
            .iter()
            .filter(|e| matches!(e.data, JobEventData::Progress(_)))
            .count();
        if progress > 3 {
            return;
        }
        assert!(Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The example `busy_job` runs a job that writes events without pause; it is killed with
/// SIGKILL mid-write.
#[test]
fn the_app_killed_mid_job_leaves_an_intact_database_and_an_interrupted_job() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("left4me.db");
    let examples = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples");
    let mut child = std::process::Command::new(examples.join("busy_job"))
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the busy_job example: a whole `cargo test` builds it (or `cargo build --example busy_job`)");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let id: i64 = line
        .trim()
        .strip_prefix("running job ")
        .unwrap()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();

    let store = Arc::new(Store::open(&db).unwrap());
    let check: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let session = store.login("admin", "admin password").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let (tx, _) = tokio::sync::broadcast::channel(16);
    let jobs = Jobs::start(store, tx).unwrap();
    let job = jobs.job(&session, id).unwrap();
    assert_eq!(job.state, JobState::Interrupted);
    assert_eq!(
        job.error.as_deref(),
        Some("the app stopped while the job was running")
    );
    let events = jobs.events(&session, id).unwrap();
    assert!(events.len() > 100, "{} events", events.len());
    // Every stored event is whole and in order.
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event.data,
            JobEventData::Line {
                stream: "stdout".into(),
                text: format!("line {i}")
            }
        );
    }
    assert_eq!(jobs.jobs(&session, &JobFilter::default()).unwrap().len(), 1);
}

#[test]
#[ignore = "needs the test hosts and a Secret Service: cargo xtask test"]
fn an_agent_of_another_protocol_is_replaced_when_the_set_up_login_is_remembered() {
    use app_core::blueprints::BlueprintDraft;
    use app_core::servers::NewServer;
    use left4me_protocol::{LaunchParams, MapName};
    let _turn = hosts_turn();
    runtime().block_on(async {
        let h = bring_up_hosts(tempfile::tempdir().unwrap()).await;
        let (app, admin) = (&h.app, &h.admin);
        let blueprint = app
            .store()
            .create_blueprint(admin, BlueprintDraft {
                name: "plain".into(),
                overlays: vec![],
                launch: LaunchParams { map: MapName::new("c1m1_hotel").unwrap(), max_players: 4, tickrate: 30, flags: vec![] },
                cvars: Default::default(),
                restart_when_hung: false,
                rollout_canary: false,
                limits: Default::default(),
            })
            .unwrap();
        // Host 1's set-up login was remembered (password); host 2's was not.
        let servers: Vec<i64> = h.host_ids[..2]
            .iter()
            .map(|host_id| {
                app.store()
                    .create_server(admin, NewServer { name: "proto".into(), host_id: *host_id, blueprint_id: blueprint.id, port: 27030 })
                    .unwrap()
                    .id
            })
            .collect();
        let old_agent = "#!/bin/sh\necho '{\"v\":0,\"type\":\"version\",\"agent_version\":\"0.0.1\",\"arch\":\"x86_64\",\"static_binary\":true}'\n";
        for host in &h.hosts[..2] {
            host.run_with_input(
                "root",
                "cat > /opt/left4me/l4d2-agent.old && chmod 755 /opt/left4me/l4d2-agent.old && mv /opt/left4me/l4d2-agent.old /opt/left4me/l4d2-agent && (pkill -KILL -f '^sshd: left4me' || true)",
                old_agent,
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;

        let job = app.start_server(admin, servers[0]).unwrap();
        let job = wait_job(app, admin, &job, Duration::from_secs(120)).await;
        assert_succeeded(app, admin, &job);
        let said = crate::support::job_lines(app, admin, job.id);
        assert!(
            said.iter().any(|l| l.contains("speaks protocol 0") && l.contains("deploying this app's agent again")),
            "{said:#?}"
        );
        let version = h.hosts[0].run("root", "/opt/left4me/l4d2-agent version --json");
        assert!(version.starts_with("{\"v\":1,"), "{version}");

        let job = app.start_server(admin, servers[1]).unwrap();
        let job = wait_job(app, admin, &job, Duration::from_secs(60)).await;
        assert_eq!(job.state, JobState::Failed);
        let error = job.error.unwrap();
        assert!(error.contains("speaks protocol 0") && error.contains("set the host up again"), "{error}");
        app.stop_server(admin, servers[0]).unwrap();
    });
}
