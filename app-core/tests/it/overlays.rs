//! Overlay content on the test hosts through the app: Workshop overlays filled by the hosts'
//! agents from a fake Web API on this machine.

use crate::hosts_turn;
use crate::support::{assert_succeeded, bring_up_hosts, runtime, wait_job};
use app_core::blueprints::BlueprintDraft;
use app_core::overlays::{NewOverlay, OverlaySource};
use app_core::servers::NewServer;
use left4me_protocol::agent::WorkshopOutcome;
use left4me_protocol::{LaunchParams, MapName};
use std::time::Duration;
use testkit::workshop::FakeItem;

#[test]
#[ignore = "needs the test hosts and a Secret Service: cargo xtask test"]
fn a_workshop_overlay_is_filled_on_the_hosts_updated_and_used_by_servers() {
    let _turn = hosts_turn();
    runtime().block_on(async {
        let h = bring_up_hosts(tempfile::tempdir().unwrap()).await;
        let (app, admin) = (&h.app, &h.admin);
        let fake = &h.workshop;
        for id in 11..=16u64 {
            fake.item(
                id,
                FakeItem::vpk(
                    &format!("Campaign {id}"),
                    &format!("l4d2/campaign{id}.vpk"),
                    20_000 + id as usize,
                    1_700_000_000,
                ),
            );
        }
        let mut broken = FakeItem::vpk("Legacy upload", "l4d2/legacy.vpk", 1000, 1_600_000_000);
        broken.no_url = true;
        fake.item(17, broken);
        fake.collection(900, &[(16, 0), (11, 0)]);
        let overlay = app
            .store()
            .create_overlay(
                admin,
                NewOverlay {
                    name: "campaigns".into(),
                    global: true,
                    source: OverlaySource::Workshop {
                        items: vec![11, 12, 13, 14, 15, 17],
                        collections: vec![900],
                    },
                    description: "custom campaigns".into(),
                },
            )
            .unwrap();

        // Filled on host 1 by hand: 6 items arrive, the broken one is reported by id.
        let job = app.fill_overlay(admin, overlay.id, h.host_ids[0]).unwrap();
        let job = wait_job(app, admin, &job, Duration::from_secs(120)).await;
        assert_succeeded(app, admin, &job);
        let items = crate::support::job_items(app, admin, job.id);
        assert_eq!(items.len(), 7);
        let failed: Vec<_> = items
            .iter()
            .filter(|i| i.outcome == WorkshopOutcome::Failed)
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(
            (failed[0].id, failed[0].reason.as_deref()),
            (17, Some("it has no direct download (empty file_url)"))
        );
        let listing = h.hosts[0].run(
            "root",
            "ls /var/lib/left4me/overlays/campaigns/left4dead2/addons",
        );
        assert_eq!(listing.lines().count(), 6, "{listing}");

        // A server on host 2, where the overlay is not yet: its start fills it first.
        let blueprint = app
            .store()
            .create_blueprint(
                admin,
                BlueprintDraft {
                    overlays: vec!["campaigns".into()],
                    ..BlueprintDraft::coop("campaigns")
                },
            )
            .unwrap();
        let server = app
            .store()
            .create_server(
                admin,
                NewServer {
                    name: "custom".into(),
                    host_id: h.host_ids[1],
                    blueprint_id: blueprint.id,
                    port: 27040,
                },
            )
            .unwrap();
        let job = app.start_server(admin, server.id).unwrap();
        assert_succeeded(
            app,
            admin,
            &wait_job(app, admin, &job, Duration::from_secs(120)).await,
        );
        let merged = "ls /var/lib/left4me/runtime/custom/merged/left4dead2/addons";
        assert_eq!(h.hosts[1].run("root", merged).lines().count(), 6);

        // An item is updated on the Workshop and the admin refreshes the overlay: every host
        // that has it fills it again; only the changed item is fetched.
        let mut updated =
            FakeItem::vpk("Campaign 12", "l4d2/campaign12.vpk", 30_000, 1_700_000_900);
        updated.content[0] = 0x42;
        fake.item(12, updated.clone());
        let downloads_before = fake.downloads(13);
        let jobs = app.refresh_overlay(admin, overlay.id).unwrap();
        assert_eq!(
            jobs.len(),
            2,
            "host 1 (filled by hand) and host 2 (filled at the start)"
        );
        for job in &jobs {
            let job = wait_job(app, admin, job, Duration::from_secs(60)).await;
            assert_succeeded(app, admin, &job);
            let outcomes: Vec<_> = crate::support::job_items(app, admin, job.id)
                .into_iter()
                .map(|item| (item.id, item.outcome))
                .collect();
            assert!(
                outcomes.contains(&(12, WorkshopOutcome::Downloaded)),
                "{outcomes:?}"
            );
            assert_eq!(
                outcomes
                    .iter()
                    .filter(|(_, o)| *o == WorkshopOutcome::Unchanged)
                    .count(),
                5
            );
        }
        assert_eq!(
            fake.downloads(13),
            downloads_before,
            "unchanged items are not fetched again"
        );
        // The running server's tree did not change underneath it: the new version waits
        // beside the old on host 2, and the app says which servers a restart would switch.
        let on_hosts = app.store().overlay(admin, overlay.id).unwrap().hosts;
        let pending: Vec<(i64, bool)> = on_hosts.iter().map(|h| (h.host_id, h.pending)).collect();
        assert_eq!(pending, [(h.host_ids[0], false), (h.host_ids[1], true)]);
        assert_eq!(on_hosts[1].behind, [server.name.as_str()]);
        let restarts = app.pending_restarts(admin, overlay.id).unwrap();
        assert_eq!(
            restarts.iter().map(|s| s.id).collect::<Vec<_>>(),
            [server.id]
        );
        let size =
            "stat -c %s /var/lib/left4me/runtime/custom/merged/left4dead2/addons/campaign12.vpk";
        assert_eq!(h.hosts[1].run("root", size).trim(), "20012");
        // Its restart switches it; the old version goes once nothing can see it.
        let job = app.restart_server(admin, server.id).unwrap();
        assert_succeeded(
            app,
            admin,
            &wait_job(app, admin, &job, Duration::from_secs(60)).await,
        );
        assert_eq!(h.hosts[1].run("root", size).trim(), "30000");
        let on_hosts = app.store().overlay(admin, overlay.id).unwrap().hosts;
        assert!(on_hosts.iter().all(|h| !h.pending), "{on_hosts:?}");
        assert!(app.pending_restarts(admin, overlay.id).unwrap().is_empty());
        let beside = h.hosts[1].run("root", "ls -A /var/lib/left4me/overlays");
        assert!(
            !beside.contains(".next") && !beside.contains(".retired"),
            "{beside}"
        );
        let job = app.delete_server(admin, server.id).unwrap();
        assert_succeeded(
            app,
            admin,
            &wait_job(app, admin, &job, Duration::from_secs(60)).await,
        );
    });
}

#[test]
#[ignore = "needs the test hosts and a Secret Service: cargo xtask test"]
fn the_seeded_script_overlays_make_a_sourcemod_server() {
    use testkit::alliedmods;
    let _turn = hosts_turn();
    runtime().block_on(async {
        let h = bring_up_hosts(tempfile::tempdir().unwrap()).await;
        let (app, admin) = (&h.app, &h.admin);
        // The first run seeded the examples as global script overlays.
        let globals: Vec<_> = app
            .store()
            .overlays(admin)
            .unwrap()
            .into_iter()
            .filter(|o| o.global)
            .collect();
        let names: Vec<&str> = globals.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["admins", "competitive", "sourcemod"]);
        let sourcemod = globals.iter().find(|o| o.name == "sourcemod").unwrap();
        let OverlaySource::Script { script } = &sourcemod.source else {
            panic!("{sourcemod:?}")
        };
        assert!(script.contains("https://sm.alliedmods.net/smdrop/"));
        // Pointed at a fake of AlliedModders' drop folders on this machine.
        let drops = alliedmods::drops("10.213.77.1", alliedmods::SOURCEMOD_TARBALL);
        app.store()
            .update_overlay(
                admin,
                sourcemod.id,
                OverlaySource::Script {
                    script: alliedmods::sourcemod_script(script, &drops),
                },
                sourcemod.description.clone(),
            )
            .unwrap();

        let blueprint = app
            .store()
            .create_blueprint(
                admin,
                BlueprintDraft {
                    name: "modded".into(),
                    overlays: vec!["admins".into(), "sourcemod".into(), "competitive".into()],
                    launch: LaunchParams {
                        map: MapName::new("c5m1_waterfront").unwrap(),
                        max_players: 8,
                        tickrate: 30,
                        flags: vec![],
                    },
                    cvars: [("hostname".to_owned(), "modded".to_owned())].into(),
                    restart_when_hung: false,
                    rollout_canary: false,
                    limits: Default::default(),
                },
            )
            .unwrap();
        let server = app
            .store()
            .create_server(
                admin,
                NewServer {
                    name: "modded".into(),
                    host_id: h.host_ids[0],
                    blueprint_id: blueprint.id,
                    port: 27050,
                },
            )
            .unwrap();
        let twin = app
            .store()
            .create_server(
                admin,
                NewServer {
                    name: "modded-twin".into(),
                    host_id: h.host_ids[0],
                    blueprint_id: blueprint.id,
                    port: 27051,
                },
            )
            .unwrap();
        // Their first starts, at once, fill the three overlays on the host by their scripts:
        // each overlay once, by whichever start came first.
        let jobs = [
            app.start_server(admin, server.id).unwrap(),
            app.start_server(admin, twin.id).unwrap(),
        ];
        let mut fills = 0;
        for job in &jobs {
            let job = wait_job(app, admin, job, Duration::from_secs(180)).await;
            assert_succeeded(app, admin, &job);
            let lines = crate::support::job_lines(app, admin, job.id);
            fills += lines
                .iter()
                .filter(|l| *l == &format!("sourcemod: {}", alliedmods::SOURCEMOD_TARBALL))
                .count();
        }
        assert_eq!(fills, 1, "sourcemod was filled once");
        let job = app.delete_server(admin, twin.id).unwrap();
        assert_succeeded(
            app,
            admin,
            &wait_job(app, admin, &job, Duration::from_secs(60)).await,
        );

        // The stand-in game loads SourceMod when the tree has it; RCON shows its plugins.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let answer = loop {
            match app.rcon(admin, server.id, "sm plugins list").await {
                Ok(answer) => break answer,
                Err(e) => {
                    assert!(std::time::Instant::now() < deadline, "no RCON: {e}");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        };
        for plugin in alliedmods::PLUGINS {
            assert!(
                answer.contains(plugin.trim_end_matches(".smx")),
                "{plugin} missing from {answer}"
            );
        }
        let tree = "/var/lib/left4me/runtime/modded/merged/left4dead2";
        let host = &h.hosts[0];
        // The admins overlay lies above sourcemod's own list; the config overlay runs first.
        assert!(
            host.run(
                "root",
                &format!("cat {tree}/addons/sourcemod/configs/admins_simple.ini")
            )
            .contains("STEAM_1:0:0000001")
        );
        let server_cfg = host.run("root", &format!("cat {tree}/cfg/server.cfg"));
        assert!(
            server_cfg.contains("exec left4me.d/competitive.cfg\nhostname \"modded\""),
            "{server_cfg}"
        );
        let job = app.delete_server(admin, server.id).unwrap();
        assert_succeeded(
            app,
            admin,
            &wait_job(app, admin, &job, Duration::from_secs(60)).await,
        );
    });
}
