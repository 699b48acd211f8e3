//! Many servers on one host, as an admin runs them: the app hands out each one's client and
//! SourceTV ports, and two, then ten, servers on the first test host start side by side,
//! bind where the agent looks (the host's name maps to 127.0.1.1, as on stock Debian),
//! answer A2S and RCON, and stream their consoles. Meanwhile the third host, stripped of the
//! 32-bit runtime and of its package source, is refused by the app's set-up with the reason,
//! and set up once the source is back.

use crate::hosts_turn;
use crate::life::{draft, wait_live};
use crate::support::{all_succeed, bring_up_hosts, runtime, wait_job};
use app_core::app::SetupLogin;
use app_core::servers::NewServer;
use left4me_protocol::JobState;
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
#[ignore = "needs the test hosts and a Secret Service: cargo xtask test"]
fn two_then_ten_servers_on_one_host_get_their_own_ports_and_all_answer() {
    let _turn = hosts_turn();
    let rt = runtime();
    rt.block_on(async {
        let h = bring_up_hosts(tempfile::tempdir().unwrap()).await;
        let (app, admin) = (&h.app, &h.admin);
        let store = app.store();
        let host = &h.hosts[0];
        assert_eq!(
            host.run("root", "getent hosts \"$(hostname)\"")
                .split_whitespace()
                .next(),
            Some("127.0.1.1"),
            "the test host resolves its name as stock Debian does"
        );
        // A host without the game's runtime, and nowhere to get it from.
        let bare = &h.hosts[2];
        bare.run(
            "root",
            "DEBIAN_FRONTEND=noninteractive apt-get -q -y purge lib32gcc-s1 lib32stdc++6 \
             libc6-i386 >/dev/null 2>&1; dpkg --remove-architecture i386 2>/dev/null; \
             mv /etc/apt/sources.list /etc/apt/sources.list.away && apt-get -q update >/dev/null",
        );
        let login = || SetupLogin::KeyFile {
            path: bare.key.clone(),
            passphrase: None,
        };
        let job = app
            .set_up_host(admin, h.host_ids[2], login(), None, false)
            .unwrap();
        let job = wait_job(app, admin, &job, Duration::from_secs(120)).await;
        assert_eq!(job.state, JobState::Failed, "{job:?}");
        let error = job.error.unwrap_or_default();
        for words in [
            "lacks the 32-bit runtime",
            "Unable to locate package lib32gcc-s1",
            "sudo apt-get install lib32gcc-s1 lib32stdc++6",
        ] {
            assert!(error.contains(words), "{words:?} in {error}");
        }
        bare.run(
            "root",
            "mv /etc/apt/sources.list.away /etc/apt/sources.list",
        );
        let job = app
            .set_up_host(admin, h.host_ids[2], login(), None, false)
            .unwrap();
        all_succeed(app, admin, &[job], Duration::from_secs(120)).await;
        let facts = store.host(admin, h.host_ids[2]).unwrap().facts.unwrap();
        let readiness = facts.readiness.unwrap();
        assert!(readiness.runtime_32bit, "{readiness:?}");

        let blueprint = store
            .create_blueprint(
                admin,
                draft("fleet", &[], "c1m1_hotel", &[("hostname", "fleet")]),
            )
            .unwrap();

        let mut servers = Vec::new();
        for batch in [2, 8] {
            let from = servers.len();
            for i in from..from + batch {
                servers.push(
                    store
                        .create_server(
                            admin,
                            NewServer {
                                name: format!("fleet-{i}"),
                                host_id: h.host_ids[0],
                                blueprint_id: blueprint.id,
                                port: 27015 + i as u16,
                            },
                        )
                        .unwrap(),
                );
            }
            // Every port the host will see is its server's alone.
            let mut seen = BTreeSet::new();
            for s in &servers {
                let s = store.server(admin, s.id).unwrap();
                for port in [Some(s.port), s.client_port, s.tv_port] {
                    let port = port.expect("the app hands out client and SourceTV ports");
                    assert!(seen.insert(port), "port {port} handed out twice");
                }
            }
            let starts: Vec<_> = servers[from..]
                .iter()
                .map(|s| app.start_server(admin, s.id).unwrap())
                .collect();
            all_succeed(app, admin, &starts, Duration::from_secs(120)).await;
            for s in &servers {
                let live = wait_live(app, admin, s.id, "c1m1_hotel").await;
                assert_eq!(live.status.unwrap().live.unwrap().name, "fleet");
            }
        }

        // Each server's sockets are where they were put: RCON on every address of its game
        // port (not the 127.0.1.1 the host's name gives), its client and SourceTV ports.
        let sockets = host.run("root", "ss -Hlntu");
        for s in &servers {
            let s = store.server(admin, s.id).unwrap();
            for (proto, port) in [
                ("tcp", s.port),
                ("udp", s.port),
                ("udp", s.client_port.unwrap()),
                ("udp", s.tv_port.unwrap()),
            ] {
                assert!(
                    sockets.lines().any(|l| l.starts_with(proto)
                        && l.split_whitespace().nth(4) == Some(&format!("0.0.0.0:{port}"))),
                    "{proto} 0.0.0.0:{port} in\n{sockets}"
                );
            }
        }

        // RCON answers for each, and each console streams what the server prints.
        for s in &servers {
            let answer = app.rcon(admin, s.id, "status").await.unwrap();
            assert!(answer.contains("hostname: fleet"), "{answer}");
            // A few lines of history too: the follow may begin after the line is printed.
            let mut logs = app.follow_logs(admin, s.id, 20).await.unwrap();
            app.rcon(admin, s.id, "stand_in_flood 1 100").await.unwrap();
            loop {
                let line = tokio::time::timeout(Duration::from_secs(15), logs.recv())
                    .await
                    .unwrap_or_else(|_| panic!("{}: no console line", s.name))
                    .expect("the log stream ended");
                if line.message == "flood 1 of 1" {
                    break;
                }
            }
        }

        // Deleted, they leave the host's ports and runtime folders free.
        let deletes: Vec<_> = servers
            .iter()
            .map(|s| app.delete_server(admin, s.id).unwrap())
            .collect();
        all_succeed(app, admin, &deletes, Duration::from_secs(60)).await;
        assert_eq!(
            host.run(
                "root",
                "ls -A /var/lib/left4me/runtime /run/left4me 2>/dev/null; true"
            ),
            "/run/left4me:\n\n/var/lib/left4me/runtime:\n"
        );
    });
}
