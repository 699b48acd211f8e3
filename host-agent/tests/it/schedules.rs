//! Schedules on a test host, with no app connected: systemd reads every calendar before it
//! is saved, a real timer fires the schedule, the restart waits for the players to leave,
//! and a second start for the same due time does nothing. Root refuses a list the owner
//! tampered with.

use crate::on_hosts::{
    AGENT, Cleanup, RCON_PASSWORD, prepared_hosts, spec, take_turn, wait_for_status,
};
use left4me_protocol::time::rfc3339;
use std::time::Duration;
use testkit::TestHost;

const TIMER: &str = "/usr/local/lib/systemd/system/left4me-schedule-nightly.timer";

fn set(host: &TestHost, schedules: &str) -> std::process::Output {
    host.ssh_with_input(
        "left4me",
        &format!("{AGENT} schedule set"),
        format!(r#"{{"schedules":[{schedules}]}}"#),
    )
}

#[track_caller]
fn refused(host: &TestHost, schedules: &str, why: &str) {
    let out = set(host, schedules);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{schedules}: {out:?}");
    assert!(stderr.contains(why), "{schedules}: {stderr}");
}

fn console(host: &TestHost, server: &str) -> String {
    host.run("left4me", &format!("{AGENT} logs {server} -n 200"))
}

/// The host's clock, in seconds since the epoch.
fn host_now(host: &TestHost) -> u64 {
    host.run("root", "date +%s").trim().parse().unwrap()
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn a_schedule_restarts_its_server_from_a_timer_only_once_the_players_have_left() {
    let _turn = take_turn();
    let host = &prepared_hosts()[0];
    let agent = |command: &str| host.run("left4me", &format!("{AGENT} {command}"));
    let _cleanup = Cleanup(host, &["delete sched-1"]);
    struct Unschedule<'a>(&'a TestHost);
    impl Drop for Unschedule<'_> {
        fn drop(&mut self) {
            let _ = set(self.0, "");
        }
    }
    let _unschedule = Unschedule(host);

    host.run_with_input(
        "left4me",
        &format!("{AGENT} initialize sched-1 -f - --rcon-password-stdin"),
        format!("{RCON_PASSWORD}\n{}", spec(27070, "", "c1m1_hotel")),
    );
    agent("start sched-1");
    wait_for_status(host, "sched-1", Duration::from_secs(20), |s| {
        s["live"]["map"] == "c1m1_hotel"
    });
    // Two players join (the stand-in reads them from its tree as it starts).
    host.run(
        "root",
        "runuser -u left4me-game -- sh -c 'printf \"Zoey\\nFrancis\\n\" > /var/lib/left4me/runtime/sched-1/merged/left4dead2/stand-in-players.txt'",
    );
    agent("restart sched-1");
    let before = wait_for_status(host, "sched-1", Duration::from_secs(20), |s| {
        s["live"]["players"] == 2
    });

    // Bad input is refused with its reason, and nothing is saved.
    let at_once =
        r#"{"name":"nightly","calendar":"*-*-* 04:00","server":"sched-1","action":"restart"}"#;
    refused(
        host,
        &at_once.replace("*-*-* 04:00", "*:*:0/20"),
        "schedules run at most once a minute",
    );
    refused(
        host,
        &at_once.replace(r#""server""#, r#""time_zone":"Mars/Olympus","server""#),
        "this host does not know the time zone Mars/Olympus",
    );
    refused(
        host,
        &at_once.replace("*-*-* 04:00", "fortnightly"),
        "systemd cannot read the calendar \"fortnightly\"",
    );
    refused(
        host,
        &at_once.replace("sched-1", "nowhere"),
        "there is no server \"nowhere\" on this host",
    );
    refused(
        host,
        r#"{"name":"maps","calendar":"daily","action":"overlay_refresh","overlay":"nope","items":[1]}"#,
        "there is no overlay \"nope\" on this host",
    );
    assert_eq!(agent("schedule list"), "no schedules\n");
    assert!(
        !host
            .ssh("root", &format!("test -e {TIMER}"))
            .status
            .success()
    );

    // The preview is systemd's reading, in the time zone given (Tokyo has no summer time).
    let preview: serde_json::Value = serde_json::from_str(&agent(
        "schedule preview '*-*-* 04:00' --time-zone Asia/Tokyo --count 3 --json",
    ))
    .unwrap();
    let runs = preview["next_runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{preview}");
    assert!(
        runs.iter()
            .all(|r| r.as_str().unwrap().ends_with("T19:00:00.000000Z")),
        "{preview}"
    );
    assert_eq!(preview["normalized"], "*-*-* 04:00:00 Asia/Tokyo");
    let often = agent("schedule preview '*:0/20' --restart");
    assert!(
        often.contains("warning: this restarts the server every 20 min"),
        "{often}"
    );

    // Due 25 seconds from now on the host's clock, with 5 minutes for the players to go.
    let due = host_now(host) + 25;
    let calendar = rfc3339(due * 1_000_000)[..19].replace('T', " ");
    let nightly = format!(
        r#"{{"name":"nightly","calendar":"{calendar}","time_zone":"UTC","server":"sched-1","action":"restart","drain_minutes":5}}"#
    );
    let out = set(host, &nightly);
    assert!(out.status.success(), "{out:?}");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("restart sched-1, waiting up to 5 min for players to leave"),
        "{listed}"
    );
    // Root wrote the timer from the checked list, and systemd runs it.
    let timer = host.run("root", &format!("cat {TIMER}"));
    assert!(
        timer.contains(&format!("\nOnCalendar={calendar} UTC\n")),
        "{timer}"
    );
    assert_eq!(
        host.run("root", "systemctl is-active left4me-schedule-nightly.timer")
            .trim(),
        "active"
    );
    let events_before: u64 = serde_json::from_str::<serde_json::Value>(&agent("events --json"))
        .unwrap()["last"]
        .as_u64()
        .unwrap();

    // The timer fires: the players are told, and the server keeps running while they play.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !console(host, "sched-1").contains("Console: Scheduled: this server restarts when the last player leaves, at the latest in 5 minutes.") {
        assert!(
            std::time::Instant::now() < deadline,
            "no warning: {}",
            console(host, "sched-1")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    agent("rcon sched-1 kick Zoey");
    std::thread::sleep(Duration::from_secs(7));
    let waiting = wait_for_status(host, "sched-1", Duration::from_secs(5), |s| {
        s["live"]["players"] == 1
    });
    assert_eq!(
        waiting["main_pid"], before["main_pid"],
        "one player is still on"
    );
    // The last one leaves: the restart comes at the next count.
    agent("rcon sched-1 kick Francis");
    let ran =
        crate::automation::wait_for_event(host, events_before, Duration::from_secs(60), |e| {
            e["kind"] == "schedule"
        });
    assert_eq!(ran["outcome"], "done", "{ran}");
    assert_eq!(ran["server"], "sched-1", "{ran}");
    assert_eq!(ran["schedule"], "nightly", "{ran}");
    // The run knew the time it was due from its timer, to the second.
    assert_eq!(ran["slot"], rfc3339(due * 1_000_000), "{ran}");
    assert!(
        ran["detail"]
            .as_str()
            .unwrap()
            .starts_with("restarted after the last player left"),
        "{ran}"
    );
    let after = wait_for_status(host, "sched-1", Duration::from_secs(30), |s| {
        s["live"]["map"] == "c1m1_hotel"
    });
    assert_ne!(after["main_pid"], before["main_pid"], "{after}");

    // A second start for the same due time (a replay, a hand) does nothing.
    let trigger = due * 1_000_000 + 400_000;
    let again = host.run(
        "left4me",
        &format!("TRIGGER_TIMER_REALTIME_USEC={trigger} {AGENT} schedule run nightly"),
    );
    assert!(
        again.contains(&format!(
            "skipped: its run due at {} happened already",
            rfc3339(due * 1_000_000)
        )),
        "{again}"
    );
    let still = wait_for_status(host, "sched-1", Duration::from_secs(5), |s| {
        s["live"]["map"] == "c1m1_hotel"
    });
    assert_eq!(still["main_pid"], after["main_pid"], "{still}");
    let list = agent("schedule list");
    assert!(
        list.contains("done: restarted after the last player left"),
        "{list}"
    );

    // Two starts of one time at once: one acts, the other says why not.
    // (A message of its own: the journal keeps earlier runs' lines of a server so named.)
    let say = format!(
        r#"{{"name":"hello","calendar":"*-*-* 03:00","server":"sched-1","action":"say","message":"Have fun {due}"}}"#
    );
    let nightly = nightly.replace(&format!("{calendar}\""), "*-*-* 04:00\"");
    let out = set(host, &format!("{nightly},{say}"));
    assert!(out.status.success(), "{out:?}");
    let both = host.run(
        "left4me",
        &format!(
            "for i in 1 2; do TRIGGER_TIMER_REALTIME_USEC=1796007600100000 {AGENT} schedule run hello & done; wait"
        ),
    );
    assert_eq!(
        both.matches(&format!("done: said \"Have fun {due}\""))
            .count(),
        1,
        "{both}"
    );
    assert_eq!(both.matches("skipped: ").count(), 1, "{both}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        console(host, "sched-1")
            .matches(&format!("Console: Have fun {due}"))
            .count(),
        1
    );

    // Root checks the owner's list again: a line smuggled into a calendar changes no timer.
    let before_tamper = host.run("root", &format!("cat {TIMER}"));
    host.run_with_input(
        "left4me",
        "cat > /var/lib/left4me/automation/schedules.json",
        r#"{"schedules":[{"name":"nightly","calendar":"daily\nExecStart=/bin/sh","action":"update_check"}]}"#,
    );
    let tampered = host.ssh("left4me", &format!("sudo -n {AGENT} privileged schedules"));
    assert_eq!(tampered.status.code(), Some(2), "{tampered:?}");
    assert_eq!(host.run("root", &format!("cat {TIMER}")), before_tamper);

    // An update check, for the whole host: a newer build is told once, from the host.
    let receiver = testkit::Receiver::start("10.213.77.1", &[]);
    struct Forget<'a>(&'a TestHost);
    impl Drop for Forget<'_> {
        fn drop(&mut self) {
            let _ = self.0.ssh(
                "left4me",
                "rm -rf /opt/left4me/steamcmd/current /opt/left4me/steamcmd/away /var/lib/left4me/automation/notify.json /var/lib/left4me/automation/outgoing /var/lib/left4me/automation/update-told.json",
            );
        }
    }
    let _forget = Forget(host);
    drop(Forget(host));
    host.run_with_input(
        "left4me",
        &format!("{AGENT} notify set"),
        format!(
            r#"{{"targets":[{{"name":"ops","kind":"discord","url":"{}/api/webhooks/7/t"}}]}}"#,
            receiver.base
        ),
    );
    let updates = r#"{"name":"updates","calendar":"Sun 03:00","action":"update_check"},{"name":"game-update","calendar":"Sun 04:00","action":"game_update"}"#;
    let out = set(host, &format!("{nightly},{say},{updates}"));
    assert!(out.status.success(), "{out:?}");
    // steamcmd where the agent fetches it on a host, publishing a new build.
    host.run(
        "left4me",
        "cp -a tools/steamcmd /opt/left4me/steamcmd/current",
    );
    let check = |build: &str| {
        host.run(
            "left4me",
            &format!(
                "STAND_IN_STEAMCMD_STEP_MS=0 STAND_IN_STEAMCMD_BUILDID={build} {AGENT} schedule run updates"
            ),
        )
    };
    let newer = check("17000001");
    assert!(
        newer.contains("done: Steam has build 17000001; this host has build 16075386"),
        "{newer}"
    );
    let told = receiver.wait_for(1, Duration::from_secs(30));
    assert_eq!(
        told[0].json()["embeds"][0]["title"],
        format!("A game update is available on {}", host.name),
        "{told:?}"
    );
    // Asked again, the same build is not told twice.
    assert!(check("17000001").contains("done: Steam has build 17000001"));
    let current = check("16075386");
    assert!(
        current.contains("done: the game is up to date (build 16075386)"),
        "{current}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.delivered().len(), 1, "{:?}", receiver.delivered());

    // A game update on a schedule: a failure is told from the host.
    host.run(
        "left4me",
        "mv /opt/left4me/steamcmd/current /opt/left4me/steamcmd/away",
    );
    let failed = host.ssh("left4me", &format!("{AGENT} schedule run game-update"));
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    let said = String::from_utf8_lossy(&failed.stdout);
    assert!(
        said.contains("FAILED: there is no steamcmd on this host: install the game first"),
        "{said}"
    );
    let told = receiver.wait_for(2, Duration::from_secs(30));
    assert_eq!(
        told[1].json()["embeds"][0]["title"],
        format!("Schedule \"game-update\" failed on {}", host.name),
        "{told:?}"
    );
    host.run(
        "left4me",
        "mv /opt/left4me/steamcmd/away /opt/left4me/steamcmd/current",
    );
    // With steamcmd, the new build is made; published back, the old one returns.
    let update = |build: &str| {
        host.run(
            "left4me",
            &format!(
                "STAND_IN_STEAMCMD_STEP_MS=0 STAND_IN_STEAMCMD_BUILDID={build} {AGENT} schedule run game-update"
            ),
        )
    };
    // sched-1 runs: the host rolls the new build out to it, waiting for its players.
    let updated = update("17000001");
    assert!(
        updated.contains(
            "done: updated the game to build 17000001; its rollout began with canary sched-1"
        ),
        "{updated}"
    );
    // While it is open, another update waits.
    let waits = update("17000002");
    assert!(
        waits.contains("skipped: the rollout of build 17000001 is running"),
        "{waits}"
    );
    // Rolled back (its drain is called off): the old build is the host's again, and a
    // schedule does not bring the rolled back build back.
    agent("rollout back");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !agent("rollout status").contains("rolled back") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            agent("rollout status")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(agent("facts").contains("game build  16075386"));
    let again = update("17000001");
    assert!(
        again.contains("skipped: build 17000001 was rolled back on this host"),
        "{again}"
    );
    assert!(
        update("16075386").contains("done: the game is up to date (build 16075386)"),
        "the test hosts' build again"
    );

    // Deleting the server takes its schedules and their timers with it.
    agent("delete sched-1");
    let left = agent("schedule list");
    assert!(
        !left.contains("nightly") && !left.contains("hello"),
        "{left}"
    );
    assert!(
        left.contains("updates") && left.contains("game-update"),
        "{left}"
    );
    let out = set(host, "");
    assert!(out.status.success(), "{out:?}");
    assert!(
        !host
            .ssh("root", &format!("test -e {TIMER}"))
            .status
            .success()
    );
    let timers = host.run("root", "systemctl list-timers --all --no-legend");
    assert!(!timers.contains("left4me-schedule-"), "{timers}");
}
