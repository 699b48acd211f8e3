//! A game update rolled across three running servers on a test host, with no app connected:
//! the canary first, each of the others restarted only once its players have left, the old
//! build removed at the end; then a build that breaks SourceMod's signatures fails its
//! canary, which goes back to the old build while the rollout holds, and is rolled back.
//! The same rolling restart applies the changes that wait for a next start (a changed spec,
//! an overlay with new content) to the servers that have them, and holds on a broken one.

use crate::on_hosts::{
    AGENT, Cleanup, RCON_PASSWORD, prepared_hosts, spec, status, take_turn, wait_for_status,
};
use std::time::{Duration, Instant};
use testkit::TestHost;

const SERVERS: [(&str, u16); 3] = [("roll-a", 27110), ("roll-b", 27120), ("roll-c", 27130)];

fn rollout(host: &TestHost) -> serde_json::Value {
    let text = host.run("left4me", &format!("{AGENT} rollout status --json"));
    serde_json::from_str(&text).unwrap()
}

/// Waits until the rollout satisfies `done`, saying where it stands if it never does.
fn wait_for_rollout(
    host: &TestHost,
    within: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let now = rollout(host);
        if done(&now["rollout"]) {
            return now;
        }
        assert!(Instant::now() < deadline, "the rollout stands at {now:#}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn step<'v>(rollout: &'v serde_json::Value, server: &str) -> &'v str {
    rollout["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == server)
        .and_then(|s| s["step"].as_str())
        .unwrap_or("")
}

fn build_of(host: &TestHost, server: &str) -> String {
    host.run(
        "root",
        &format!(
            "sed -n 's/.*\"buildid\"[[:space:]]*\"\\([0-9]*\\)\".*/\\1/p' \
             /var/lib/left4me/runtime/{server}/merged/steamapps/appmanifest_222860.acf"
        ),
    )
    .trim()
    .to_owned()
}

/// Writes a file into a server's tree as its game would (into its upper layer).
fn game_writes(host: &TestHost, server: &str, path: &str, text: &str) {
    let full = format!("/var/lib/left4me/runtime/{server}/merged/left4dead2/{path}");
    host.run(
        "root",
        &format!(
            "runuser -u left4me-game -- sh -c 'mkdir -p \"$(dirname {full})\" && printf \"{text}\" > {full}'"
        ),
    );
}

fn update_to(host: &TestHost, build: &str, patch: &str, extra: &str) {
    host.run(
        "left4me",
        &format!(
            "STAND_IN_STEAMCMD_BUILDID={build} STAND_IN_STEAMCMD_PATCH={patch} {extra} \
             STAND_IN_STEAMCMD_STEP_MS=0 {AGENT} install --steamcmd tools/steamcmd/steamcmd.sh"
        ),
    );
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn a_game_update_rolls_across_the_servers_canary_first_and_a_failed_canary_holds_it() {
    let _turn = take_turn();
    let host = &prepared_hosts()[2];
    let agent = |command: &str| host.run("left4me", &format!("{AGENT} {command}"));
    let _cleanup = Cleanup(host, &["delete roll-a", "delete roll-b", "delete roll-c"]);
    struct Reinstall<'a>(&'a TestHost);
    impl Drop for Reinstall<'_> {
        fn drop(&mut self) {
            // Back to the install the other tests expect: the first folder, the default build.
            for name in ["roll-a", "roll-b", "roll-c"] {
                self.0.ssh("left4me", &format!("{AGENT} delete {name}"));
            }
            self.0.run(
                "root",
                "rm -rf /var/lib/left4me/installs/* /var/lib/left4me/installs/.install.lock \
                 /var/lib/left4me/automation/rollout",
            );
            self.0.run(
                "left4me",
                &format!(
                    "STAND_IN_STEAMCMD_STEP_MS=0 {AGENT} install --steamcmd tools/steamcmd/steamcmd.sh"
                ),
            );
        }
    }
    let _reinstall = Reinstall(host);
    // A rollout another test on this host finished leaves its record: this one starts with
    // none (the tests take their turns in any order).
    host.run("root", "rm -f /var/lib/left4me/installs/rollout.json");
    for (name, port) in SERVERS {
        host.run_with_input(
            "left4me",
            &format!("{AGENT} initialize {name} -f - --rcon-password-stdin"),
            format!("{RCON_PASSWORD}\n{}", spec(port, "", "c1m1_hotel")),
        );
        agent(&format!("start {name}"));
    }
    // Players on two of them; the third is empty, so it is the canary.
    for (name, players) in [("roll-a", "Zoey\\nFrancis\\n"), ("roll-b", "Louis\\n")] {
        game_writes(host, name, "stand-in-players.txt", players);
        agent(&format!("restart {name}"));
    }
    let pid = |name: &str| status(host, name)["main_pid"].clone();
    let before: Vec<_> = SERVERS
        .iter()
        .map(|(name, _)| {
            wait_for_status(host, name, Duration::from_secs(20), |s| {
                s["live"]["version"] == "2.2.4.3"
            });
            pid(name)
        })
        .collect();
    let old_build = build_of(host, "roll-a");

    // Nothing to roll out yet.
    let out = host.ssh("left4me", &format!("{AGENT} rollout start"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("nothing to roll out: every running server runs build"),
        "{out:?}"
    );

    update_to(host, "16075500", "2.2.4.4", "");
    for (i, (name, _)) in SERVERS.iter().enumerate() {
        assert_eq!(build_of(host, name), old_build, "{name} changed build");
        assert_eq!(pid(name), before[i]);
    }
    // A bad option is refused and starts nothing.
    let out = host.ssh(
        "left4me",
        &format!("{AGENT} rollout start --canary nowhere"),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the canary nowhere is not a running server"),
        "{out:?}"
    );
    assert!(rollout(host)["rollout"].is_null());

    let started: serde_json::Value = serde_json::from_str(&agent(
        "rollout start --drain-minutes 10 --check-seconds 10 --json",
    ))
    .unwrap();
    assert_eq!(started["rollout"]["canary"], "roll-c", "{started:#}");
    assert_eq!(started["rollout"]["to_version"], "2.2.4.4");

    // The canary moves and passes its check; the others wait for their players.
    let now = wait_for_rollout(host, Duration::from_secs(90), |r| {
        step(r, "roll-c") == "moved"
    });
    let canary = now["rollout"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "roll-c")
        .unwrap();
    assert!(
        canary["detail"]
            .as_str()
            .unwrap()
            .contains("checked for 10 s: version 2.2.4.4, no SourceMod errors, no crash"),
        "{now:#}"
    );
    assert_eq!(build_of(host, "roll-c"), "16075500");
    wait_for_rollout(host, Duration::from_secs(30), |r| {
        step(r, "roll-a") == "draining"
    });
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(pid("roll-a"), before[0], "roll-a restarted with players on");
    assert_eq!(pid("roll-b"), before[1], "roll-b went before its turn");
    assert_eq!(build_of(host, "roll-a"), old_build);
    // Its players leave: it goes, and then roll-b waits for its own.
    agent("rcon roll-a kick Zoey");
    agent("rcon roll-a kick Francis");
    wait_for_rollout(host, Duration::from_secs(60), |r| {
        step(r, "roll-a") == "moved"
    });
    assert_eq!(build_of(host, "roll-a"), "16075500");
    wait_for_rollout(host, Duration::from_secs(30), |r| {
        step(r, "roll-b") == "draining"
    });
    assert_eq!(pid("roll-b"), before[1]);
    agent("rcon roll-b kick Louis");
    let done = wait_for_rollout(host, Duration::from_secs(60), |r| r["state"] == "done");
    assert_eq!(build_of(host, "roll-b"), "16075500");
    let answered = wait_for_status(host, "roll-b", Duration::from_secs(20), |s| {
        s["live"]["version"] == "2.2.4.4"
    });
    assert_ne!(answered["main_pid"], before[1]);
    for server in done["rollout"]["servers"].as_array().unwrap() {
        assert!(server["downtime_ms"].as_u64().unwrap() > 0, "{done:#}");
    }
    // The old build goes once nothing runs it.
    let builds = done["builds"].as_array().unwrap();
    assert!(builds.iter().all(|b| b["build"] == "16075500"), "{done:#}");
    let events: serde_json::Value = serde_json::from_str(&agent("events --json")).unwrap();
    let last = events["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "rollout", "{last}");
    assert_eq!(last["outcome"], "done", "{last}");

    // A build that moved the functions SourceMod's plugins find by signature: the canary
    // logs it, goes back, and the rollout holds. The canary is roll-a this time, though
    // roll-c is emptier: its blueprint asks its servers to go first (its players are not
    // waited for).
    game_writes(host, "roll-a", "addons/metamod.vdf", "\"Plugin\" {}\\n");
    game_writes(
        host,
        "roll-a",
        "addons/sourcemod/plugins/l4d2_stagger.smx",
        "FFPS",
    );
    host.run_with_input(
        "left4me",
        &format!("{AGENT} initialize roll-a -f - --rcon-password-stdin"),
        format!(
            "{RCON_PASSWORD}\n{}rollout_canary: true\n",
            spec(SERVERS[0].1, "", "c1m1_hotel")
        ),
    );
    agent("restart roll-a");
    let a_before = wait_for_status(host, "roll-a", Duration::from_secs(20), |s| {
        s["live"]["version"] == "2.2.4.4"
    })["main_pid"]
        .clone();
    let others: Vec<_> = ["roll-b", "roll-c"].iter().map(|n| pid(n)).collect();
    update_to(
        host,
        "16075600",
        "2.2.4.5",
        "STAND_IN_STEAMCMD_SIGNATURES=moved",
    );
    agent("rollout start --drain-minutes 0 --check-seconds 10");
    let held = wait_for_rollout(host, Duration::from_secs(90), |r| r["state"] == "held");
    assert_eq!(held["rollout"]["canary"], "roll-a", "{held:#}");
    let reason = held["rollout"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("roll-a failed its check on build 16075600: SourceMod's error log says \"[SM] Exception reported: Failed to find signature: CTerrorPlayer::OnStaggered\""),
        "{reason}"
    );
    assert!(reason.contains("It is back on build 16075500"), "{reason}");
    assert_eq!(step(&held["rollout"], "roll-a"), "failed");
    assert_eq!(build_of(host, "roll-a"), "16075500");
    let back = wait_for_status(host, "roll-a", Duration::from_secs(20), |s| {
        s["live"]["version"] == "2.2.4.4"
    });
    assert_ne!(back["main_pid"], a_before);
    let others_now: Vec<_> = ["roll-b", "roll-c"].iter().map(|n| pid(n)).collect();
    assert_eq!(others_now, others, "a server moved while the rollout held");
    // A restart by hand while it holds keeps the old build.
    agent("restart roll-b");
    assert_eq!(build_of(host, "roll-b"), "16075500");
    let events: serde_json::Value = serde_json::from_str(&agent("events --json")).unwrap();
    let last = events["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["outcome"], "held", "{last}");
    assert_eq!(last["server"], "roll-a", "{last}");

    // Rolled back: new mounts use the old build again, and the new one goes.
    agent("rollout back");
    let rolled = wait_for_rollout(host, Duration::from_secs(60), |r| {
        r["state"] == "rolled_back"
    });
    assert!(
        agent("facts").contains("game build  16075500"),
        "{rolled:#}"
    );
    agent("restart roll-c");
    assert_eq!(build_of(host, "roll-c"), "16075500");
    let deadline = Instant::now() + Duration::from_secs(30);
    while rollout(host)["builds"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["build"] == "16075600")
    {
        assert!(Instant::now() < deadline, "build 16075600 was kept");
        std::thread::sleep(Duration::from_secs(3));
        agent("restart roll-c");
    }
}

/// A tar of `files` (path under the overlay, content), as `overlay import` reads it.
fn overlay_with(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, path, text.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

const CHANGED: [(&str, u16); 3] = [("chg-a", 27140), ("chg-b", 27150), ("chg-c", 27160)];

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn waiting_changes_roll_across_the_servers_that_have_them_and_a_broken_one_holds_it() {
    let _turn = take_turn();
    let host = &prepared_hosts()[2];
    let agent = |command: &str| host.run("left4me", &format!("{AGENT} {command}"));
    let _cleanup = Cleanup(
        host,
        &[
            "delete chg-a",
            "delete chg-b",
            "delete chg-c",
            "overlay delete chg-mods",
        ],
    );
    let import = |files: &[(&str, &str)]| {
        host.run_with_input(
            "left4me",
            &format!("{AGENT} overlay import chg-mods"),
            overlay_with(files),
        )
    };
    import(&[("left4dead2/cfg/mods.cfg", "sm_mods 1\n")]);
    let declare = |name: &str, spec: String| {
        host.run_with_input(
            "left4me",
            &format!("{AGENT} initialize {name} -f - --rcon-password-stdin"),
            format!("{RCON_PASSWORD}\n{spec}"),
        );
    };
    for (name, port) in CHANGED {
        let overlays = if name == "chg-c" { "" } else { "chg-mods" };
        declare(name, spec(port, overlays, "c1m1_hotel"));
        agent(&format!("start {name}"));
    }
    // A player on chg-a, so chg-b (empty) goes first.
    game_writes(host, "chg-a", "stand-in-players.txt", "Ellis\\n");
    agent("restart chg-a");
    let pid = |name: &str| status(host, name)["main_pid"].clone();
    for (name, _) in CHANGED {
        wait_for_status(host, name, Duration::from_secs(20), |s| {
            s["live"].is_object()
        });
    }
    // Nothing waits yet.
    assert!(
        CHANGED
            .iter()
            .all(|(n, _)| status(host, n)["restart_applies"].is_null())
    );
    let out = host.ssh("left4me", &format!("{AGENT} rollout start --changes"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "nothing to restart: no running server has changes waiting for its next start"
        ),
        "{out:?}"
    );

    // chg-a gets a new name from its blueprint; the overlay both chg-a and chg-b use gets new
    // content, staged while they run. chg-c has nothing waiting.
    declare(
        "chg-a",
        spec(CHANGED[0].1, "chg-mods", "c1m1_hotel")
            .replace("hostname: Test 27140", "hostname: Friday Night"),
    );
    import(&[("left4dead2/cfg/mods.cfg", "sm_mods 2\n")]);
    let applies: Vec<bool> = CHANGED
        .iter()
        .map(|(n, _)| status(host, n)["restart_applies"] == true)
        .collect();
    assert_eq!(applies, [true, true, false]);
    let before: Vec<_> = CHANGED.iter().map(|(n, _)| pid(n)).collect();

    let started: serde_json::Value = serde_json::from_str(&agent(
        "rollout start --changes --drain-minutes 10 --check-seconds 10 --json",
    ))
    .unwrap();
    let r = &started["rollout"];
    assert_eq!(r["kind"], "changes", "{started:#}");
    assert_eq!(r["canary"], "chg-b", "{started:#}");
    let details: Vec<(&str, &str)> = r["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["detail"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        details,
        [
            (
                "chg-a",
                "its spec changed; overlay chg-mods has new content"
            ),
            ("chg-b", "overlay chg-mods has new content"),
        ]
    );
    // Neither a build rollout nor a roll back while it is open.
    let out = host.ssh("left4me", &format!("{AGENT} rollout start"));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("the rollout of the waiting changes is running"),
        "{out:?}"
    );
    let out = host.ssh("left4me", &format!("{AGENT} rollout back"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no old spec to go back to"),
        "{out:?}"
    );

    // The canary restarts and passes; chg-a waits for its player.
    wait_for_rollout(host, Duration::from_secs(60), |r| {
        step(r, "chg-b") == "moved"
    });
    let mods = |name: &str| {
        host.run(
            "root",
            &format!("cat /var/lib/left4me/runtime/{name}/merged/left4dead2/cfg/mods.cfg"),
        )
    };
    assert_eq!(mods("chg-b"), "sm_mods 2\n");
    wait_for_rollout(host, Duration::from_secs(30), |r| {
        step(r, "chg-a") == "draining"
    });
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(pid("chg-a"), before[0], "chg-a restarted with a player on");
    assert_eq!(mods("chg-a"), "sm_mods 1\n");
    agent("rcon chg-a kick Ellis");
    let done = wait_for_rollout(host, Duration::from_secs(60), |r| r["state"] == "done");
    assert_eq!(done["rollout"]["servers"][0]["step"], "moved", "{done:#}");
    let a = wait_for_status(host, "chg-a", Duration::from_secs(20), |s| {
        s["live"]["name"] == "Friday Night"
    });
    assert_ne!(a["main_pid"], before[0]);
    assert_eq!(mods("chg-a"), "sm_mods 2\n");
    assert_eq!(pid("chg-c"), before[2], "chg-c had nothing waiting");
    assert!(
        CHANGED
            .iter()
            .all(|(n, _)| status(host, n)["restart_applies"].is_null())
    );
    // The same build throughout, and it stays.
    assert_eq!(done["builds"].as_array().unwrap().len(), 1, "{done:#}");
    let events: serde_json::Value = serde_json::from_str(&agent("events --json")).unwrap();
    let last = events["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["kind"], &last["rollout"], &last["outcome"]),
        (
            &serde_json::json!("rollout"),
            &serde_json::json!("changes"),
            &serde_json::json!("done")
        ),
        "{last}"
    );

    // An overlay refresh that breaks the game: the canary does not come back up, the rollout
    // holds, and the other server keeps running as it was until the rollout is stopped.
    import(&[
        ("left4dead2/cfg/mods.cfg", "sm_mods 3\n"),
        ("left4dead2/stand-in-crash-on-start", ""),
    ]);
    let a_before = pid("chg-a");
    agent("rollout start --changes --canary chg-b --drain-minutes 0 --check-seconds 10");
    let held = wait_for_rollout(host, Duration::from_secs(60), |r| r["state"] == "held");
    let reason = held["rollout"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("chg-b failed its check after its restart with its changes: it did not start again: cannot start server \"chg-b\""),
        "{reason}"
    );
    assert_eq!(step(&held["rollout"], "chg-b"), "failed");
    assert_eq!(step(&held["rollout"], "chg-a"), "waiting");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        pid("chg-a"),
        a_before,
        "chg-a restarted while the rollout held"
    );
    assert_eq!(mods("chg-a"), "sm_mods 2\n");
    let events: serde_json::Value = serde_json::from_str(&agent("events --json")).unwrap();
    let told = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["kind"] == "rollout")
        .unwrap()
        .clone();
    assert_eq!(
        (&told["outcome"], &told["server"]),
        (&serde_json::json!("held"), &serde_json::json!("chg-b")),
        "{told}"
    );
    let stopped: serde_json::Value = serde_json::from_str(&agent("rollout stop --json")).unwrap();
    assert_eq!(stopped["rollout"]["state"], "stopped", "{stopped:#}");
    // chg-a keeps its change waiting.
    assert_eq!(status(host, "chg-a")["restart_applies"], true);
}
