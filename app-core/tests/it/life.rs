//! The whole life of hosts and servers, driven through app-core against the 3 test hosts:
//! real sshd, sudo, systemd, overlayfs, the stand-in steamcmd and game, the real Secret
//! Service, a real SQLite file.

use crate::hosts_turn;
use crate::support::{Harness, assert_succeeded, bring_up_hosts, runtime, wait_job};
use app_core::app::App;
use app_core::blueprints::BlueprintDraft;
use app_core::hosts::HostState;
use app_core::overlays::{NewOverlay, OverlaySource};
use app_core::secrets::{SecretKey, Secrets};
use app_core::servers::{NewServer, Server};
use app_core::{Error, Session};
use left4me_protocol::rollout::{RolloutKind, RolloutState};
use left4me_protocol::{
    AppEvent, Job, JobEventData, JobState, LaunchParams, LiveState, MapName, ServerName,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::SYSOP_PASSWORD;

pub(crate) fn draft(
    name: &str,
    overlays: &[&str],
    map: &str,
    cvars: &[(&str, &str)],
) -> BlueprintDraft {
    BlueprintDraft {
        name: name.into(),
        overlays: overlays.iter().map(|s| s.to_string()).collect(),
        launch: LaunchParams {
            map: MapName::new(map).unwrap(),
            max_players: 8,
            tickrate: 30,
            flags: vec![],
        },
        cvars: cvars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        restart_when_hung: false,
        rollout_canary: false,
        limits: Default::default(),
    }
}

pub(crate) async fn wait_live(
    app: &Arc<App>,
    session: &Session,
    server: i64,
    map: &str,
) -> left4me_protocol::ServerLive {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = app.statuses(session).await.unwrap();
        let live = all.into_iter().find(|l| l.server_id == server).unwrap();
        let seen = live
            .status
            .as_ref()
            .and_then(|s| s.live.as_ref())
            .map(|l| l.map.clone());
        if live.state == LiveState::Running && seen.as_deref() == Some(map) {
            return live;
        }
        assert!(
            Instant::now() < deadline,
            "server {server} not live on {map}: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
#[ignore = "needs the test hosts and a Secret Service: cargo xtask test"]
fn the_whole_life_on_three_hosts() {
    let _turn = hosts_turn();
    let rt = runtime();
    rt.block_on(async {
        let h = bring_up_hosts(tempfile::tempdir().unwrap()).await;
        hosts_are_ready_with_their_facts(&h);
        the_install_reported_steamcmds_progress(&h);
        let mut life = Life::begin(h);
        life.an_overlay_is_uploaded_to_every_host().await;
        life.blueprints_and_four_servers_are_made();
        life.every_server_starts_and_answers().await;
        life.live_state_also_arrives_as_a_feed().await;
        life.looks_at_a_host_go_to_one_kept_agent().await;
        life.the_uploaded_overlay_is_in_the_game_tree();
        life.logs_stream_whole_through_a_burst().await;
        life.rcon_answers_with_the_kept_password().await;
        life.a_crash_nobody_watched_is_read_at_the_next_look().await;
        life.an_edit_reaches_the_host_at_the_restart().await;
        life.a_reassignment_applies_at_the_restart().await;
        life.new_limits_alone_reach_a_running_server_at_once().await;
        life.changed_blueprints_restart_one_server_at_a_time().await;
        life.a_server_moves_to_another_host_through_a_backup().await;
        life.a_backup_made_on_the_host_is_copied_here_at_a_look()
            .await;
        life.another_user_sees_and_touches_nothing().await;
        life.every_server_stops_and_is_deleted().await;
        life.an_owned_steam_account_installs_in_one_pass().await;
        life.steam_guard_asks_for_a_code_and_takes_it().await;
        life.the_steam_account_is_forgotten_everywhere().await;
        life.no_secret_is_in_the_database_a_command_line_or_a_journal();
        life.facts_can_be_read_again().await;
    });
}

const STEAM_SECRET: &str = "steam-password-never-shown-4d1e";
const GUARD_CODE: &str = "Q7WX2";
/// steamcmd's login cache on a host.
const CACHED_LOGIN: &str = "/opt/left4me/steamcmd/current/config/config.vdf";

fn hosts_are_ready_with_their_facts(h: &Harness) {
    for id in &h.host_ids {
        let host = h.app.store().host(&h.admin, *id).unwrap();
        assert_eq!(host.state, HostState::Ready);
        let facts = host.facts.unwrap();
        assert!(facts.os.contains("Debian"), "{facts:?}");
        // Set-up gave the host what the 32-bit game needs, and probed its mounts.
        let readiness = facts
            .readiness
            .as_ref()
            .expect("the agent reports readiness");
        assert!(readiness.runtime_32bit, "{facts:?}");
        assert_eq!(readiness.mounts_probed, Some(true), "{facts:?}");
        assert_eq!(facts.installed_build.as_deref(), Some("16075386"));
    }
}

fn the_install_reported_steamcmds_progress(h: &Harness) {
    let (app, admin) = (&h.app, &h.admin);
    let installs = app.jobs().jobs(admin, &Default::default()).unwrap();
    let install = installs
        .iter()
        .find(|j| j.kind == left4me_protocol::JobKind::Install)
        .unwrap();
    let progress = app
        .jobs()
        .events(admin, install.id)
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.data, JobEventData::Progress(_)))
        .count();
    assert!(progress > 10, "{progress} progress events");
}

/// What the steps share: the booted hosts, the user alice and what she made.
struct Life {
    h: Harness,
    alice: Session,
    coop: i64,
    versus: i64,
    servers: Vec<Server>,
    rcon_passwords: Vec<Vec<u8>>,
}

impl Life {
    fn begin(h: Harness) -> Self {
        let store = h.app.store();
        store
            .create_user(&h.admin, "alice", "alice password", false)
            .unwrap();
        let alice = store.login("alice", "alice password").unwrap();
        Self {
            h,
            alice,
            coop: 0,
            versus: 0,
            servers: Vec::new(),
            rcon_passwords: Vec::new(),
        }
    }

    /// A user's overlay, uploaded from a folder on "this computer" to every host.
    async fn an_overlay_is_uploaded_to_every_host(&mut self) {
        let (h, app, alice) = (&self.h, &self.h.app, &self.alice);
        let store = app.store();
        let maps = store
            .create_overlay(
                alice,
                NewOverlay {
                    name: "maps".into(),
                    global: false,
                    source: OverlaySource::Empty,
                    description: String::new(),
                },
            )
            .unwrap();
        let folder = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(folder.path().join("left4dead2/cfg")).unwrap();
        std::fs::write(
            folder.path().join("left4dead2/cfg/from-alice.cfg"),
            "echo alice\n",
        )
        .unwrap();
        let uploads: Vec<Job> = h
            .host_ids
            .iter()
            .map(|id| {
                app.upload_overlay(alice, maps.id, *id, folder.path())
                    .unwrap()
            })
            .collect();
        for job in &uploads {
            let job = wait_job(app, alice, job, Duration::from_secs(60)).await;
            assert_succeeded(app, alice, &job);
        }
        store
            .create_overlay(
                alice,
                NewOverlay {
                    name: "scratch".into(),
                    global: false,
                    source: OverlaySource::Empty,
                    description: String::new(),
                },
            )
            .unwrap();
    }

    /// Two servers on the first host, one on each other host; a port taken is refused.
    fn blueprints_and_four_servers_are_made(&mut self) {
        let (h, alice) = (&self.h, &self.alice);
        let store = h.app.store();
        let coop = store
            .create_blueprint(
                alice,
                draft(
                    "coop",
                    &["maps", "scratch"],
                    "c2m1_highway",
                    &[("hostname", "alice coop")],
                ),
            )
            .unwrap();
        let versus = store
            .create_blueprint(alice, draft("versus", &[], "c5m1_waterfront", &[]))
            .unwrap();
        for (i, (host, port)) in [
            (h.host_ids[0], 27015),
            (h.host_ids[0], 27016),
            (h.host_ids[1], 27015),
            (h.host_ids[2], 27015),
        ]
        .into_iter()
        .enumerate()
        {
            let s = store
                .create_server(
                    alice,
                    NewServer {
                        name: format!("coop-{i}"),
                        host_id: host,
                        blueprint_id: coop.id,
                        port,
                    },
                )
                .unwrap();
            self.servers.push(s);
        }
        let err = store
            .create_server(
                alice,
                NewServer {
                    name: "clash".into(),
                    host_id: h.host_ids[0],
                    blueprint_id: coop.id,
                    port: 27016,
                },
            )
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)));
        (self.coop, self.versus) = (coop.id, versus.id);
    }

    async fn every_server_starts_and_answers(&self) {
        let (app, alice) = (&self.h.app, &self.alice);
        let starts: Vec<Job> = self
            .servers
            .iter()
            .map(|s| app.start_server(alice, s.id).unwrap())
            .collect();
        for job in &starts {
            let job = wait_job(app, alice, job, Duration::from_secs(60)).await;
            assert_succeeded(app, alice, &job);
        }
        for s in &self.servers {
            let live = wait_live(app, alice, s.id, "c2m1_highway").await;
            let info = live.status.unwrap().live.unwrap();
            assert_eq!(info.max_players, 8);
        }
    }

    /// The same state arrives as a feed, without asking.
    async fn live_state_also_arrives_as_a_feed(&self) {
        let mut feed = self
            .h
            .app
            .status_feed(&self.alice, Duration::from_millis(200))
            .unwrap();
        for _ in 0..2 {
            let update = tokio::time::timeout(Duration::from_secs(10), feed.recv())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(update.len(), self.servers.len());
            assert!(
                update.iter().all(|l| l.state == LiveState::Running),
                "{update:?}"
            );
        }
    }

    /// Each host answers looks from one `l4d2-agent serve` kept on the app's connection,
    /// the same process look after look; when it is gone, the look is still answered and
    /// the next starts another.
    async fn looks_at_a_host_go_to_one_kept_agent(&self) {
        let (app, alice) = (&self.h.app, &self.alice);
        let serving = |host: &testkit::TestHost| -> Vec<String> {
            host.run(
                "root",
                "pgrep -u left4me -f 'l4d2-agent --json serve' || true",
            )
            .lines()
            .map(str::to_owned)
            .collect()
        };
        app.statuses(alice).await.unwrap();
        let first: Vec<Vec<String>> = self.h.hosts.iter().map(serving).collect();
        for (host, pids) in self.h.hosts.iter().zip(&first) {
            assert_eq!(pids.len(), 1, "{}: {pids:?}", host.name);
        }
        for _ in 0..3 {
            app.statuses(alice).await.unwrap();
        }
        let again: Vec<Vec<String>> = self.h.hosts.iter().map(serving).collect();
        assert_eq!(again, first, "a look started another agent");

        let host = &self.h.hosts[0];
        host.run("root", &format!("kill {}", first[0][0]));
        let all = app.statuses(alice).await.unwrap();
        assert!(
            all.iter().all(|l| l.state == LiveState::Running),
            "the look after the session went: {all:?}"
        );
        app.statuses(alice).await.unwrap();
        let next = serving(host);
        assert_eq!(next.len(), 1, "{next:?}");
        assert_ne!(next, first[0], "no new session");
    }

    fn the_uploaded_overlay_is_in_the_game_tree(&self) {
        let cfg = self.h.hosts[0].run(
            "root",
            "cat /var/lib/left4me/runtime/coop-0/merged/left4dead2/cfg/from-alice.cfg",
        );
        assert_eq!(cfg, "echo alice\n");
    }

    /// Logs stream to a subscriber. A burst above journald's default limit (10000 lines in
    /// 30 s, scaled by free disk) reaches the journal and the subscriber whole, in order.
    async fn logs_stream_whole_through_a_burst(&self) {
        let (h, app, alice, first) = (&self.h, &self.h.app, &self.alice, &self.servers[0]);
        let mut logs = app.follow_logs(alice, first.id, 20).await.unwrap();
        let line = tokio::time::timeout(Duration::from_secs(15), logs.recv())
            .await
            .expect("a log line")
            .unwrap();
        assert!(!line.message.is_empty());

        const BURST: u64 = 60_000;
        let answer = app
            .rcon(alice, first.id, &format!("stand_in_flood {BURST} 30000"))
            .await
            .unwrap();
        assert!(answer.contains("flooding"), "{answer}");
        let mut next = 1;
        while next <= BURST {
            let line = tokio::time::timeout(Duration::from_secs(30), logs.recv())
                .await
                .unwrap_or_else(|_| panic!("the log stopped at flood line {next}"))
                .expect("the log stream ended");
            if let Some(n) = line.message.strip_prefix("flood ") {
                assert_eq!(n, format!("{next} of {BURST}"), "a flood line lost");
                next += 1;
            }
        }
        let kept = h.hosts[0].run(
            "root",
            "journalctl -u left4me-server@coop-0 -o cat | grep -c '^flood '",
        );
        assert_eq!(kept.trim(), BURST.to_string(), "flood lines in the journal");
    }

    /// RCON through the agent, with the password only the keyring and the host know.
    async fn rcon_answers_with_the_kept_password(&self) {
        let first = &self.servers[0];
        let answer = self
            .h
            .app
            .rcon(&self.alice, first.id, "status")
            .await
            .unwrap();
        assert!(answer.contains("alice coop"), "{answer}");
    }

    /// A server crashes while the app does not look (no feed runs): the host records it,
    /// and the next look reads it, keeps it and tells the window, once.
    async fn a_crash_nobody_watched_is_read_at_the_next_look(&self) {
        let (h, app, alice, first) = (&self.h, &self.h.app, &self.alice, &self.servers[0]);
        let at = h
            .host_ids
            .iter()
            .position(|id| *id == first.host_id)
            .unwrap();
        let mut events = app.subscribe();
        // (As root: left4me takes only the app's key on these hosts.)
        let _ = h.hosts[at].ssh(
            "root",
            &format!(
                "runuser -u left4me -- /opt/left4me/l4d2-agent rcon {} stand_in_crash",
                first.name
            ),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let crash = loop {
            app.statuses(alice).await.unwrap();
            let report = app.store().host_events(alice, false).unwrap();
            if let Some(row) = report
                .events
                .into_iter()
                .find(|r| r.event.server.as_deref() == Some(first.name.as_str()))
            {
                break row;
            }
            assert!(Instant::now() < deadline, "the crash was never read");
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        assert_eq!(crash.host_id, first.host_id);
        assert_eq!(crash.event.title(), format!("{} crashed", first.name));
        assert!(
            crash.event.detail().contains("SIGSEGV"),
            "{}",
            crash.event.detail()
        );
        let told = loop {
            match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
                Ok(Ok(AppEvent::HostEvents { rows })) => break rows,
                Ok(Ok(_)) => continue,
                other => panic!("the window was not told: {other:?}"),
            }
        };
        // (The hosts' outboxes may hold what other suites did on them before.)
        assert!(told.contains(&crash), "{told:?}");
        // Later looks read nothing new; systemd has started the server again.
        app.statuses(alice).await.unwrap();
        let kept = app.store().host_events(alice, true).unwrap().events;
        assert_eq!(
            kept.iter()
                .filter(|r| r.event.server.as_deref() == Some(first.name.as_str()))
                .count(),
            1,
            "{kept:?}"
        );
        wait_live(app, alice, first.id, "c2m1_highway").await;
    }

    /// An edit reaches the host at the next restart, not before.
    async fn an_edit_reaches_the_host_at_the_restart(&self) {
        let (h, app, alice, first) = (&self.h, &self.h.app, &self.alice, &self.servers[0]);
        let store = app.store();
        let mut edited = draft(
            "coop",
            &["maps", "scratch"],
            "c2m1_highway",
            &[("hostname", "alice coop"), ("sv_consistency", "1")],
        );
        edited.launch.max_players = 4;
        store.update_blueprint(alice, self.coop, edited).unwrap();
        assert!(store.server(alice, first.id).unwrap().pending_changes);
        let server_cfg = "cat /var/lib/left4me/runtime/coop-0/merged/left4dead2/cfg/server.cfg";
        assert!(
            !h.hosts[0]
                .run("root", server_cfg)
                .contains("sv_consistency")
        );
        let job = app.restart_server(alice, first.id).unwrap();
        let job = wait_job(app, alice, &job, Duration::from_secs(60)).await;
        assert_succeeded(app, alice, &job);
        assert!(
            h.hosts[0]
                .run("root", server_cfg)
                .contains("sv_consistency")
        );
        assert!(!store.server(alice, first.id).unwrap().pending_changes);
        let live = wait_live(app, alice, first.id, "c2m1_highway").await;
        assert_eq!(live.status.unwrap().live.unwrap().max_players, 4);
    }

    /// A blueprint edit that changes only the limits reaches its running server at once
    /// (same process); with another change too, the limits wait for the restart.
    async fn new_limits_alone_reach_a_running_server_at_once(&self) {
        let (h, app, alice, second) = (&self.h, &self.h.app, &self.alice, &self.servers[1]);
        let store = app.store();
        let unit = "left4me-server@coop-1.service";
        let shown = |property: &str| {
            h.hosts[0]
                .run(
                    "root",
                    &format!("systemctl show -p {property} --value {unit}"),
                )
                .trim()
                .to_owned()
        };
        let pid = shown("MainPID");
        let mut limited = draft("versus", &[], "c5m1_waterfront", &[]);
        limited.limits.tasks_max = Some(300);
        store
            .update_blueprint(alice, self.versus, limited.clone())
            .unwrap();
        assert!(store.server(alice, second.id).unwrap().pending_changes);
        let said = app.apply_limits_now(alice, self.versus).unwrap();
        assert_eq!(said.now, ["coop-1"], "{said:?}");
        assert!(said.at_restart.is_empty(), "{said:?}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while shown("TasksMax") != "300" || store.server(alice, second.id).unwrap().pending_changes
        {
            assert!(
                Instant::now() < deadline,
                "TasksMax is {}",
                shown("TasksMax")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(shown("MainPID"), pid, "the server was restarted");

        let mut moved_on = draft("versus", &[], "c5m2_park", &[]);
        moved_on.limits.tasks_max = Some(400);
        store
            .update_blueprint(alice, self.versus, moved_on)
            .unwrap();
        let said = app.apply_limits_now(alice, self.versus).unwrap();
        assert!(said.now.is_empty(), "{said:?}");
        assert_eq!(said.at_restart, ["coop-1"], "{said:?}");
        assert_eq!(shown("TasksMax"), "300");
        assert!(store.server(alice, second.id).unwrap().pending_changes);
        // As it was: nothing waits.
        store.update_blueprint(alice, self.versus, limited).unwrap();
        assert!(!store.server(alice, second.id).unwrap().pending_changes);
    }

    /// The blueprints of the two servers running on the first host change: an admin has the
    /// app hand them their new specs and the host restart them one at a time (the named one
    /// first, then the other); the same blueprint's server on another host keeps waiting.
    async fn changed_blueprints_restart_one_server_at_a_time(&self) {
        let (h, app, alice, admin) = (&self.h, &self.h.app, &self.alice, &self.h.admin);
        let store = app.store();
        let host = h.host_ids[0];
        let mut coop = draft(
            "coop",
            &["maps", "scratch"],
            "c2m1_highway",
            &[("hostname", "alice coop friday"), ("sv_consistency", "1")],
        );
        coop.launch.max_players = 4;
        store.update_blueprint(alice, self.coop, coop).unwrap();
        let mut versus = draft(
            "versus",
            &[],
            "c5m1_waterfront",
            &[("hostname", "alice versus")],
        );
        versus.limits.tasks_max = Some(300);
        store.update_blueprint(alice, self.versus, versus).unwrap();
        let builds = app.host_builds(alice, host).await.unwrap();
        let waiting: Vec<(&str, &[String])> = builds
            .waiting
            .iter()
            .map(|w| (w.server.as_str(), w.changes.as_slice()))
            .collect();
        let blueprint = ["its blueprint changed".to_owned()];
        assert_eq!(
            waiting,
            [("coop-0", &blueprint[..]), ("coop-1", &blueprint[..])]
        );
        let err = app
            .restart_with_changes(alice, host, None, None, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
        let pid = |name: &str| {
            h.hosts[0]
                .run(
                    "root",
                    &format!("systemctl show -p MainPID --value left4me-server@{name}.service"),
                )
                .trim()
                .to_owned()
        };
        let before = [pid("coop-0"), pid("coop-1")];
        let canary = ServerName::new("coop-1").unwrap();
        let job = app
            .restart_with_changes(admin, host, Some(canary), Some(0), Some(10))
            .await
            .unwrap();
        assert_succeeded(
            app,
            admin,
            &wait_job(app, admin, &job, Duration::from_secs(60)).await,
        );
        // The host goes on alone.
        let deadline = Instant::now() + Duration::from_secs(120);
        let done =
            loop {
                let builds = app.host_builds(alice, host).await.unwrap();
                if builds.rollout.as_ref().is_some_and(|r| {
                    r.kind == RolloutKind::Changes && r.state == RolloutState::Done
                }) {
                    break builds;
                }
                assert!(Instant::now() < deadline, "{:?}", builds.rollout);
                tokio::time::sleep(Duration::from_secs(1)).await;
            };
        let rollout = done.rollout.as_ref().unwrap();
        assert_eq!(rollout.canary.as_str(), "coop-1");
        let restarted: Vec<&str> = rollout.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(restarted, ["coop-0", "coop-1"]);
        assert!(done.waiting.is_empty(), "{:?}", done.waiting);
        assert_ne!(pid("coop-0"), before[0]);
        assert_ne!(pid("coop-1"), before[1]);
        let server_cfg = "cat /var/lib/left4me/runtime/coop-0/merged/left4dead2/cfg/server.cfg";
        assert!(
            h.hosts[0]
                .run("root", server_cfg)
                .contains("alice coop friday")
        );
        for server in &self.servers[..2] {
            assert!(!store.server(alice, server.id).unwrap().pending_changes);
        }
        assert!(
            store
                .server(alice, self.servers[2].id)
                .unwrap()
                .pending_changes
        );
        let err = app
            .restart_with_changes(admin, host, None, None, None)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("has changes waiting for a restart"),
            "{err}"
        );
    }

    /// A backup of coop-0 (a file its plugins wrote, a file of its overlay it deleted)
    /// becomes a new server on another host: the same files, the deletion kept. Bad input
    /// changes nothing; a backup that is not there leaves no half-made server behind.
    async fn a_server_moves_to_another_host_through_a_backup(&mut self) {
        let (app, alice) = (self.h.app.clone(), self.alice.clone());
        let (source, there) = (self.servers[0].clone(), self.h.host_ids[1]);
        let tree = "/var/lib/left4me/runtime/coop-0/merged/left4dead2/cfg";
        self.h.hosts[0].run(
            "root",
            &format!(
                "runuser -u left4me-game -- sh -c 'echo \"banid 0 STEAM_1:0:42\" > {tree}/banned_user.cfg && rm {tree}/from-alice.cfg'"
            ),
        );
        let job = app.backup_server(&alice, source.id).unwrap();
        assert_succeeded(
            &app,
            &alice,
            &wait_job(&app, &alice, &job, Duration::from_secs(60)).await,
        );
        let backup = app.server_backups(&alice, source.id).await.unwrap()[0]
            .info
            .id
            .clone();
        let new = |name: &str, port| NewServer {
            name: name.into(),
            host_id: there,
            blueprint_id: self.coop,
            port,
        };
        let before = app.store().servers(&alice).unwrap().len();
        // coop-2 has port 27015 there.
        let err = app
            .restore_as_new_server(&alice, source.id, &backup, new("coop-moved", 27015))
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        let err = app
            .restore_as_new_server(&alice, source.id, "../x", new("coop-moved", 27017))
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        assert_eq!(app.store().servers(&alice).unwrap().len(), before);
        let ghost = app
            .restore_as_new_server(
                &alice,
                source.id,
                "20990101T000000Z",
                new("coop-ghost", 27017),
            )
            .unwrap();
        let ghost = wait_job(&app, &alice, &ghost, Duration::from_secs(60)).await;
        assert_eq!(ghost.state, JobState::Failed, "{ghost:?}");
        assert!(
            ghost
                .error
                .as_deref()
                .is_some_and(|e| e.contains("has no backup 20990101T000000Z of coop-0")),
            "{ghost:?}"
        );
        assert_eq!(app.store().servers(&alice).unwrap().len(), before);
        let listed = self.h.hosts[1].run("root", "/opt/left4me/l4d2-agent list");
        assert!(!listed.contains("coop-ghost"), "{listed}");

        let job = app
            .restore_as_new_server(&alice, source.id, &backup, new("coop-moved", 27017))
            .unwrap();
        assert_succeeded(
            &app,
            &alice,
            &wait_job(&app, &alice, &job, Duration::from_secs(120)).await,
        );
        let moved = app
            .store()
            .servers(&alice)
            .unwrap()
            .into_iter()
            .find(|s| s.name.as_str() == "coop-moved")
            .expect("the new server");
        assert_eq!(moved.host_id, there);
        let job = app.start_server(&alice, moved.id).unwrap();
        assert_succeeded(
            &app,
            &alice,
            &wait_job(&app, &alice, &job, Duration::from_secs(60)).await,
        );
        wait_live(&app, &alice, moved.id, "c2m1_highway").await;
        let moved_tree = "/var/lib/left4me/runtime/coop-moved/merged/left4dead2/cfg";
        let files = self.h.hosts[1].run(
            "root",
            &format!(
                "cat {moved_tree}/banned_user.cfg; test -e {moved_tree}/from-alice.cfg && echo still there; \
                 test -e /var/lib/left4me/runtime/coop-2/merged/left4dead2/cfg/from-alice.cfg && echo the overlay has it"
            ),
        );
        assert_eq!(files, "banid 0 STEAM_1:0:42\nthe overlay has it\n");
        self.servers.push(moved);
    }

    /// A backup the host made on its own (as a schedule does) is copied here at a look
    /// at the host; a copy whose backup the host's retention removed goes.
    async fn a_backup_made_on_the_host_is_copied_here_at_a_look(&self) {
        let (h, app, alice, first) = (&self.h, &self.h.app, &self.alice, &self.servers[0]);
        let host = app.store().host(&h.admin, h.host_ids[0]).unwrap();
        let dir = app
            .store()
            .path()
            .parent()
            .unwrap()
            .join("backups")
            .join(&host.name)
            .join("coop-0");
        let gone = dir.join("20200101T000000Z.tar.gz");
        std::fs::write(&gone, b"a backup long pruned on the host").unwrap();
        h.hosts[0].run(
            "root",
            "/opt/left4me/l4d2-agent backup create coop-0 --scheduled",
        );
        let newest = app.server_backups(alice, first.id).await.unwrap()[0].clone();
        assert!(!newest.on_this_computer, "{newest:?}");
        let copy = dir.join(format!("{}.tar.gz", newest.info.id));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !copy.is_file() || gone.exists() {
            assert!(
                Instant::now() < deadline,
                "no copy of {} here, or the pruned one stayed",
                newest.info.id
            );
            app.statuses(alice).await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(std::fs::metadata(&copy).unwrap().len(), newest.info.bytes);
        let listed = app.server_backups(alice, first.id).await.unwrap();
        assert!(listed.iter().all(|b| b.on_this_computer), "{listed:?}");
    }

    /// Reassigned to another blueprint: applied at its restart. A blueprint with servers
    /// cannot be deleted.
    async fn a_reassignment_applies_at_the_restart(&self) {
        let (app, alice, second) = (&self.h.app, &self.alice, &self.servers[1]);
        let store = app.store();
        store
            .reassign_server(alice, second.id, self.versus)
            .unwrap();
        let job = app.restart_server(alice, second.id).unwrap();
        assert_succeeded(
            app,
            alice,
            &wait_job(app, alice, &job, Duration::from_secs(60)).await,
        );
        wait_live(app, alice, second.id, "c5m1_waterfront").await;

        let err = store.delete_blueprint(alice, self.coop).unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    }

    async fn another_user_sees_and_touches_nothing(&self) {
        let (app, first) = (&self.h.app, &self.servers[0]);
        let store = app.store();
        store
            .create_user(&self.h.admin, "bob", "bobs password", false)
            .unwrap();
        let bob = store.login("bob", "bobs password").unwrap();
        assert!(app.statuses(&bob).await.unwrap().is_empty());
        assert!(matches!(
            app.stop_server(&bob, first.id).unwrap_err(),
            Error::NotFound(_)
        ));
        assert!(matches!(
            app.rcon(&bob, first.id, "status").await.unwrap_err(),
            Error::NotFound(_)
        ));
    }

    /// Stop, then delete everything; the RCON passwords are kept aside first, for the
    /// search for secrets at the end.
    async fn every_server_stops_and_is_deleted(&mut self) {
        let (h, app, alice) = (&self.h, &self.h.app, &self.alice);
        let store = app.store();
        let secrets = Secrets::os(&store.install_id().unwrap()).unwrap();
        self.rcon_passwords = self
            .servers
            .iter()
            .map(|s| {
                secrets
                    .get(&SecretKey::RconPassword { server: s.id })
                    .unwrap()
                    .unwrap()
                    .to_vec()
            })
            .collect();
        let stops: Vec<Job> = self
            .servers
            .iter()
            .map(|s| app.stop_server(alice, s.id).unwrap())
            .collect();
        for job in &stops {
            assert_succeeded(
                app,
                alice,
                &wait_job(app, alice, job, Duration::from_secs(60)).await,
            );
        }
        for live in app.statuses(alice).await.unwrap() {
            assert_eq!(live.state, LiveState::Stopped, "{live:?}");
        }
        let deletes: Vec<Job> = self
            .servers
            .iter()
            .map(|s| app.delete_server(alice, s.id).unwrap())
            .collect();
        for job in &deletes {
            assert_succeeded(
                app,
                alice,
                &wait_job(app, alice, job, Duration::from_secs(60)).await,
            );
        }
        assert!(store.servers(alice).unwrap().is_empty());
        for host in &h.hosts {
            assert_eq!(host.run("root", "ls /var/lib/left4me/runtime"), "");
        }
        store.delete_blueprint(alice, self.coop).unwrap();
    }

    /// An owned Steam account, kept in the credential store, installs in one pass. (The
    /// stand-in Steam knows it; the earlier installs fetched steamcmd to the host.)
    async fn an_owned_steam_account_installs_in_one_pass(&self) {
        let (h, app, admin) = (&self.h, &self.h.app, &self.h.admin);
        let steam_conf = "/opt/left4me/steamcmd/current/stand-in-steam.conf";
        h.hosts[2].run_with_input(
            "root",
            &format!("cat > {steam_conf}"),
            format!(
                "account someadmin {STEAM_SECRET}\naccount guarded {STEAM_SECRET} guard=email code={GUARD_CODE}\n"
            ),
        );
        let err = app
            .set_steam_login(&self.alice, Some(("someadmin", STEAM_SECRET)))
            .unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
        assert_eq!(app.steam_account(admin).unwrap(), None);
        app.set_steam_login(admin, Some(("someadmin", STEAM_SECRET)))
            .unwrap();
        assert_eq!(
            app.steam_account(admin).unwrap().as_deref(),
            Some("someadmin")
        );
        let job = app.install_game(admin, h.host_ids[2], true, None).unwrap();
        let job = wait_job(app, admin, &job, Duration::from_secs(120)).await;
        assert_succeeded(app, admin, &job);
        let events = app.jobs().events(admin, job.id).unwrap();
        assert!(events.iter().any(|e| matches!(&e.data, JobEventData::Line { text, .. } if text == "installing with the Steam account from the credential store")));
        assert!(events.iter().all(|e| match &e.data {
            JobEventData::Progress(p) => p.passes == 1 && p.platform == "linux",
            _ => true,
        }));
    }

    /// An account with Steam Guard: the install says a code is needed, and goes through
    /// with the code the admin gives.
    async fn steam_guard_asks_for_a_code_and_takes_it(&self) {
        let (h, app, admin) = (&self.h, &self.h.app, &self.h.admin);
        app.set_steam_login(admin, Some(("guarded", STEAM_SECRET)))
            .unwrap();
        let err = app
            .install_game(admin, h.host_ids[2], false, Some("no spaces!"))
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        let job = app.install_game(admin, h.host_ids[2], false, None).unwrap();
        let job = wait_job(app, admin, &job, Duration::from_secs(120)).await;
        assert_eq!(job.state, left4me_protocol::JobState::Failed, "{job:?}");
        assert_eq!(
            job.error_code,
            Some(left4me_protocol::agent::AgentErrorCode::SteamGuardCodeNeeded),
            "{job:?}"
        );
        assert!(
            job.error
                .as_deref()
                .unwrap_or_default()
                .contains("the code it e-mailed"),
            "{job:?}"
        );
        let job = app
            .install_game(admin, h.host_ids[2], false, Some(GUARD_CODE))
            .unwrap();
        assert_succeeded(
            app,
            admin,
            &wait_job(app, admin, &job, Duration::from_secs(120)).await,
        );
        assert!(
            h.hosts[2]
                .run("root", &format!("cat {CACHED_LOGIN}"))
                .contains("\"guarded\"")
        );
    }

    /// Forgotten: here at once, and on every set-up host by a job.
    async fn the_steam_account_is_forgotten_everywhere(&self) {
        let (h, app, admin) = (&self.h, &self.h.app, &self.h.admin);
        let jobs = app.forget_steam_account(admin).unwrap();
        assert_eq!(jobs.len(), h.host_ids.len());
        for job in &jobs {
            assert_succeeded(
                app,
                admin,
                &wait_job(app, admin, job, Duration::from_secs(60)).await,
            );
        }
        assert_eq!(app.steam_account(admin).unwrap(), None);
        assert_eq!(
            h.hosts[2].run(
                "root",
                &format!("test -e {CACHED_LOGIN} && echo kept || echo gone")
            ),
            "gone\n"
        );
    }

    /// No secret in the database file or its WAL: not the sudo password, not the RCON
    /// passwords, not the app's private key. Nor in any command line seen here or on the
    /// hosts during the whole run, nor in the hosts' journals.
    fn no_secret_is_in_the_database_a_command_line_or_a_journal(&mut self) {
        let h = &mut self.h;
        let secrets = Secrets::os(&h.app.store().install_id().unwrap()).unwrap();
        let app_key = secrets.get(&SecretKey::AppSshKey).unwrap().unwrap();
        let key_body: String = String::from_utf8_lossy(&app_key)
            .lines()
            .nth(1)
            .unwrap()
            .to_owned();
        let mut needles: Vec<Vec<u8>> = vec![
            SYSOP_PASSWORD.as_bytes().to_vec(),
            key_body.into_bytes(),
            STEAM_SECRET.as_bytes().to_vec(),
        ];
        needles.extend(self.rcon_passwords.iter().cloned());
        assert!(
            secrets
                .get(&SecretKey::SudoPassword {
                    host: h.host_ids[0]
                })
                .unwrap()
                .is_some(),
            "remembered as asked"
        );
        for file in ["left4me.db", "left4me.db-wal"] {
            let Ok(bytes) = std::fs::read(h.dir.path().join(file)) else {
                continue;
            };
            for needle in &needles {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                    "a secret is in {file}"
                );
            }
        }
        let argv = h.argv.finish();
        // The sampler did see the set-up running through sudo, and the servers running.
        assert!(
            argv.contains("--json setup --authorize-key"),
            "the sampler missed the set-up"
        );
        assert!(
            argv.contains("srcds_run"),
            "the sampler missed the game servers"
        );
        for needle in &needles {
            let needle = String::from_utf8_lossy(needle);
            assert!(
                !argv.contains(needle.as_ref()),
                "a secret was in a command line"
            );
            for host in &h.hosts {
                let journal = host.run("root", "journalctl -q -o cat --no-pager");
                assert!(
                    !journal.contains(needle.as_ref()),
                    "a secret is in {}'s journal",
                    host.name
                );
            }
        }
    }

    async fn facts_can_be_read_again(&self) {
        let (h, app, admin) = (&self.h, &self.h.app, &self.h.admin);
        let host = app.refresh_host(admin, h.host_ids[0]).await.unwrap();
        assert_eq!(
            host.facts.unwrap().installed_build.as_deref(),
            Some("16075386")
        );
    }
}
