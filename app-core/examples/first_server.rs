//! `cargo xtask bench first` runs this: from "Add host" to the first server answering A2S on
//! a fresh test host, through app-core as the window drives it, with the stand-in steamcmd
//! downloading a 1 GiB install at a fixed rate. Prints each step's time and what is left
//! once the download's own time is taken away; asserts nothing about time.
//!
//! Needs a freshly booted test host (LEFT4ME_TEST_HOSTS), L4D2_AGENT_STATIC and a Secret
//! Service on the session bus. `LEFT4ME_BENCH_DOWNLOAD_MIB_S` sets the rate (100 unless set).

#[path = "../tests/support/hosts.rs"]
#[allow(dead_code)]
mod support;

use app_core::app::SetupLogin;
use app_core::hosts::NewHost;
use app_core::servers::NewServer;
use left4me_protocol::{Job, JobEventData};
use std::time::{Duration, Instant};

const DOWNLOAD_BYTES: u64 = 1 << 30;

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// When the job's events of the download came: the first and the last progress line of
/// state `downloading`, in ms since the epoch.
fn download_span(
    app: &app_core::app::App,
    admin: &app_core::Session,
    job: &Job,
) -> Option<(i64, i64)> {
    let at: Vec<i64> = app
        .jobs()
        .events(admin, job.id)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.data {
            JobEventData::Progress(p) if p.state == "downloading" => Some(e.at_ms),
            _ => None,
        })
        .collect();
    Some((*at.first()?, *at.last()?))
}

fn main() {
    let rate_mib: u64 = std::env::var("LEFT4ME_BENCH_DOWNLOAD_MIB_S")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100);
    let rate = rate_mib << 20;
    let download = Duration::from_secs_f64(DOWNLOAD_BYTES as f64 / rate as f64);
    let rt = support::runtime();
    rt.block_on(async {
        let host = testkit::hosts().into_iter().next().expect("a test host");
        // An account that owns the game: one pass, one download (an anonymous install takes
        // a Windows pass first).
        let steam = format!("account bench-owner bench-password\ndownload {DOWNLOAD_BYTES} {rate}\n");
        let steamcmd = testkit::FileServer::start(
            "10.213.77.1",
            "/steamcmd_linux.tar.gz",
            Some(testkit::steamcmd_tarball_with(&steam)),
        );
        let workshop = testkit::workshop::FakeWorkshop::start("10.213.77.1");
        let dir = tempfile::tempdir().unwrap();
        let app = support::open_app(dir.path(), &steamcmd.url, &workshop.url);
        let store = app.store();
        let admin = store.create_first_admin("admin", "admin password").unwrap();
        app.set_steam_login(&admin, Some(("bench-owner", "bench-password")))
            .unwrap();
        let blueprint = store
            .create_blueprint(&admin, left4me_protocol::model::BlueprintDraft::coop("Coop"))
            .unwrap();

        let start = Instant::now();
        // Each step's name and when it ended.
        let mut steps: Vec<(&str, Instant)> = Vec::new();
        let added = store
            .add_host(
                &admin,
                NewHost {
                    name: host.name.clone(),
                    address: host.address.clone(),
                    port: 22,
                    admin_user: "admin".into(),
                    bind_address: None,
                },
            )
            .unwrap();
        let offer = app.fetch_host_key(&admin, added.id).await.unwrap();
        store.confirm_host_key(&admin, added.id, &offer.key).unwrap();
        steps.push(("add the host, fetch and confirm its key", Instant::now()));
        let login = SetupLogin::KeyFile {
            path: host.key.clone(),
            passphrase: None,
        };
        let job = app.set_up_host(&admin, added.id, login, None, false).unwrap();
        let job = support::wait_job(&app, &admin, &job, Duration::from_secs(300)).await;
        support::assert_succeeded(&app, &admin, &job);
        steps.push(("set up (agent, account, units)", Instant::now()));
        let job = app.install_game(&admin, added.id, false, None).unwrap();
        let install = support::wait_job(&app, &admin, &job, Duration::from_secs(900)).await;
        support::assert_succeeded(&app, &admin, &install);
        steps.push(("install the game", Instant::now()));
        let server = store
            .create_server(
                &admin,
                NewServer {
                    name: "first".into(),
                    host_id: added.id,
                    blueprint_id: blueprint.id,
                    port: 27015,
                },
            )
            .unwrap();
        steps.push(("create the server", Instant::now()));
        let job = app.start_server(&admin, server.id).unwrap();
        let job = support::wait_job(&app, &admin, &job, Duration::from_secs(120)).await;
        support::assert_succeeded(&app, &admin, &job);
        steps.push(("start it (its start job)", Instant::now()));
        support::all_answer(&app, &admin, Duration::from_secs(120)).await;
        steps.push(("until the status shows its A2S answer", Instant::now()));
        let total = start.elapsed();

        println!(
            "from \"Add host\" to the first server answering A2S, fresh test host, 1 GiB install at {rate_mib} MiB/s (figures, not assertions)"
        );
        let mut before = start;
        let mut install_took = Duration::ZERO;
        for (name, ended) in &steps {
            let took = *ended - before;
            before = *ended;
            if *name == "install the game" {
                install_took = took;
            }
            println!("  {name:<42} {:>7.2} s", secs(took));
        }
        // The install's own timeline, from its job's events.
        let at = |ms: Option<i64>| ms.unwrap_or_default();
        let (began, ended) = (at(install.started_ms), at(install.finished_ms));
        if let Some((first, last)) = download_span(&app, &admin, &install) {
            let ms = |a: i64, b: i64| (b - a) as f64 / 1000.0;
            println!("  the install, by its job's events:");
            println!("    before the download (steamcmd fetched, updated, logged in) {:>7.2} s", ms(began, first));
            println!("    the download (first to last progress line)             {:>7.2} s", ms(first, last));
            println!("    after it (verify, commit, the agent's own)             {:>7.2} s", ms(last, ended));
            println!(
                "    queued before it ran                                    {:>7.2} s",
                ms(install.created_ms, began)
            );
        }
        println!("  total                                      {:>7.2} s", secs(total));
        println!(
            "  of which the download itself ({} MiB at {rate_mib} MiB/s)    {:>7.2} s",
            DOWNLOAD_BYTES >> 20,
            secs(download)
        );
        println!(
            "  beyond the download                        {:>7.2} s   (goal <= 5 s; the install job took {:.2} s)",
            secs(total) - secs(download),
            secs(install_took)
        );
        drop(workshop);
    });
}
