//! What the host does on its own, with no app connected: a server's crash is recorded in
//! the host's outbox with its cause and last console lines and sent to a Discord-shaped
//! webhook from the host; a crash loop becomes one more message, sent through a 429.

use crate::on_hosts::{
    AGENT, Cleanup, RCON_PASSWORD, prepared_hosts, spec, take_turn, wait_for_status,
};
use std::time::Duration;
use testkit::TestHost;

/// The harness's address on the test hosts' bridge.
const HARNESS: &str = "10.213.77.1";
const TOKEN: &str = "webhook-token-7f3e1c";
const SIGNING: &str = "signing-secret-51aa";

fn events_after(host: &TestHost, after: u64) -> serde_json::Value {
    let text = host.run("left4me", &format!("{AGENT} events --after {after} --json"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Waits until the outbox holds an event after `after` that `check` accepts.
#[track_caller]
pub(crate) fn wait_for_event(
    host: &TestHost,
    after: u64,
    within: Duration,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let events = events_after(host, after);
        if let Some(found) = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| check(e))
        {
            return found.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: no such event: {events}",
            host.name
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn crashes_are_recorded_and_notified_from_the_host_and_a_crash_loop_is_one_message() {
    let _turn = take_turn();
    let host = &prepared_hosts()[1];
    let agent = |command: &str| host.run("left4me", &format!("{AGENT} {command}"));
    let _cleanup = Cleanup(host, &["delete auto-1", "overlay delete auto-1"]);
    // The targets go with the test, passed or failed: later tests crash servers too.
    struct Forget<'a>(&'a TestHost);
    impl Drop for Forget<'_> {
        fn drop(&mut self) {
            let _ = self.0.ssh(
                "left4me",
                "rm -rf /var/lib/left4me/automation/notify.json /var/lib/left4me/automation/outgoing",
            );
        }
    }
    let _forget = Forget(host);
    // The third message (the test, the crash, then the give-up) is answered 429 first.
    let receiver = testkit::Receiver::start(HARNESS, &[3]);
    let url = format!("{}/api/webhooks/1093/{TOKEN}", receiver.base);
    // And a generic webhook, which signs what it sends with the shared secret.
    let hooks = testkit::Receiver::start(HARNESS, &[]);
    let targets = format!(
        r#"{{"targets":[{{"name":"ops","kind":"discord","url":"{url}"}},{{"name":"hooks","kind":"webhook","url":"{}/left4me","secret":"{SIGNING}"}}]}}"#,
        hooks.base
    );

    // A target outside the host's network must be https; a refused list changes nothing.
    let refused = host.ssh_with_input(
        "left4me",
        &format!("{AGENT} notify set"),
        r#"{"targets":[{"name":"ops","kind":"discord","url":"http://discord.example/api/webhooks/1/x"}]}"#,
    );
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("use https"),
        "{refused:?}"
    );
    let set = host.run_with_input("left4me", &format!("{AGENT} notify set"), targets);
    assert_eq!(
        set,
        format!(
            "ops: Discord at {}\nhooks: webhook at {}\n",
            receiver.base, hooks.base
        )
    );
    let mode = host.run(
        "root",
        "stat -c '%a %U' /var/lib/left4me/automation/notify.json",
    );
    assert_eq!(mode.trim(), "600 left4me");
    // The test goes out from the host.
    let tested = agent("notify test");
    assert_eq!(
        tested,
        "ops: delivered (HTTP 204)\nhooks: delivered (HTTP 204)\n"
    );
    // The receiver can trust the body: the signature covers the timestamp and the bytes.
    let signed = &hooks.delivered()[0];
    let stamp: u64 = signed
        .header("x-left4me-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        signed.header("x-left4me-signature").unwrap(),
        format!(
            "sha256={}",
            l4d2_agent::notify::sign(SIGNING, stamp, &signed.body)
        )
    );
    assert_eq!(signed.json()["test"], true, "{}", signed.json());
    let test_message = &receiver.delivered()[0];
    assert_eq!(test_message.path, format!("/api/webhooks/1093/{TOKEN}"));
    assert!(
        test_message.json()["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .starts_with("Test from left4me on "),
        "{}",
        test_message.json()
    );

    let before = events_after(host, 0)["last"].as_u64().unwrap();
    agent("overlay create auto-1");
    host.run_with_input(
        "left4me",
        &format!("{AGENT} initialize auto-1 -f - --rcon-password-stdin"),
        format!("{RCON_PASSWORD}\n{}", spec(27050, "auto-1", "c1m1_hotel")),
    );
    agent("start auto-1");
    wait_for_status(host, "auto-1", Duration::from_secs(20), |s| {
        s["live"]["map"] == "c1m1_hotel"
    });

    // The game dies of SIGSEGV; systemd starts it again, and the host tells at once.
    let _ = host.ssh("left4me", &format!("{AGENT} rcon auto-1 stand_in_crash"));
    let crash = wait_for_event(host, before, Duration::from_secs(20), |e| {
        e["kind"] == "crashed"
    });
    assert_eq!(crash["server"], "auto-1", "{crash}");
    assert_eq!(
        crash["cause"],
        serde_json::json!({"how": "signal", "signal": "SIGSEGV"}),
        "{crash}"
    );
    let lines: Vec<&str> = crash["last_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        lines.last(),
        Some(&"Segmentation fault (core dumped)"),
        "{crash}"
    );
    assert!(
        lines.contains(&"Map c1m1_hotel loaded, tickrate 30"),
        "{crash}"
    );
    let delivered = receiver.wait_for(2, Duration::from_secs(20));
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    let embed = &delivered[1].json()["embeds"][0];
    assert_eq!(
        embed["title"],
        format!("auto-1 crashed on {}", host.name),
        "{embed}"
    );
    let description = embed["description"].as_str().unwrap();
    assert!(
        description.starts_with("The game was killed by SIGSEGV (a segmentation fault)"),
        "{description}"
    );
    assert!(
        description.contains("Segmentation fault (core dumped)"),
        "{description}"
    );
    wait_for_status(host, "auto-1", Duration::from_secs(20), |s| {
        s["live"]["map"] == "c1m1_hotel"
    });

    // Now it crashes at every start until systemd gives up: one more message, after the
    // receiver's 429, which says how many crashes there were.
    // (Written through the game's tree, as a plugin would: the tree stays mounted across
    // crash restarts.)
    host.run(
        "root",
        "runuser -u left4me-game -- touch /var/lib/left4me/runtime/auto-1/merged/left4dead2/stand-in-crash-on-start",
    );
    let _ = host.ssh("left4me", &format!("{AGENT} rcon auto-1 stand_in_crash"));
    let gave_up = wait_for_event(host, before, Duration::from_secs(90), |e| {
        e["kind"] == "gave_up"
    });
    let crashes = gave_up["crashes"].as_u64().unwrap();
    assert!(crashes >= 5, "{gave_up}");
    let delivered = receiver.wait_for(3, Duration::from_secs(30));
    assert_eq!(delivered.len(), 3, "{delivered:?}");
    let embed = &delivered[2].json()["embeds"][0];
    assert_eq!(
        embed["title"],
        format!("auto-1 stopped after crashing repeatedly on {}", host.name),
        "{embed}"
    );
    assert!(
        embed["description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("It crashed {crashes} times in a row")),
        "{embed}"
    );
    let received = receiver.received();
    assert_eq!(received[2].status, 429, "{received:?}");
    assert_eq!(
        received[2].body, received[3].body,
        "the retry sends the same message"
    );
    // Every crash is in the outbox, in order, and the give-up last.
    let events = events_after(host, before);
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.last(), Some(&"gave_up"), "{events}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "crashed").count() as u64,
        crashes,
        "{events}"
    );
    // Nothing else goes out: the held-back crashes went into the give-up message.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.delivered().len(), 3);
    let queue = host.run("root", "ls -A /var/lib/left4me/automation/outgoing");
    assert_eq!(queue, "", "messages left waiting");
    // The hook started as root wrote nothing as root: the outbox and its queue are
    // left4me's, as they were.
    let owners = host.run(
        "root",
        "stat -c '%U %a %n' /var/lib/left4me/automation/events.jsonl /var/lib/left4me/automation/events.seq /var/lib/left4me/automation/outgoing",
    );
    assert_eq!(
        owners,
        "left4me 600 /var/lib/left4me/automation/events.jsonl\n\
         left4me 600 /var/lib/left4me/automation/events.seq\n\
         left4me 700 /var/lib/left4me/automation/outgoing\n"
    );
    // For people, the same events.
    let human = agent(&format!("events --after {before}"));
    assert!(
        human.contains("auto-1 crashed: The game was killed by SIGSEGV"),
        "{human}"
    );
    assert!(
        human.contains("         | Segmentation fault (core dumped)\n"),
        "{human}"
    );

    // The webhook's token is a secret: it is in no log of the host's.
    let journal = host.run("root", "journalctl --no-pager -o verbose");
    assert!(
        !journal.contains(TOKEN),
        "{}: the token was logged",
        host.name
    );
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn a_hung_server_is_found_by_the_hosts_timer_reported_and_restarted_as_its_spec_asks() {
    let _turn = take_turn();
    let host = &prepared_hosts()[2];
    let agent = |command: &str| host.run("left4me", &format!("{AGENT} {command}"));
    let _cleanup = Cleanup(host, &["delete hang-1"]);
    let before = events_after(host, 0)["last"].as_u64().unwrap();
    host.run_with_input(
        "left4me",
        &format!("{AGENT} initialize hang-1 -f - --rcon-password-stdin"),
        format!(
            "{RCON_PASSWORD}\n{}restart_when_hung: true\n",
            spec(27060, "", "c1m1_hotel")
        ),
    );
    agent("start hang-1");
    let first = wait_for_status(host, "hang-1", Duration::from_secs(20), |s| {
        s["live"]["map"] == "c1m1_hotel"
    });
    // Deadlocked: the process lives, but nothing is answered, `quit` and SIGINT included.
    let _ = host.ssh(
        "left4me",
        &format!("timeout 5 {AGENT} rcon hang-1 stand_in_hang"),
    );
    let hung_status = host.ssh(
        "left4me",
        &format!("timeout 10 {AGENT} status hang-1 --json"),
    );
    let text = String::from_utf8_lossy(&hung_status.stdout);
    assert!(text.contains("\"active_state\":\"active\""), "{text}");
    assert!(
        text.contains("\"live\":null"),
        "a hung server answers nothing: {text}"
    );
    // left4me-watch.timer, every 15 s, after the server's first minute.
    let hung = wait_for_event(host, before, Duration::from_secs(180), |e| {
        e["kind"] == "hung"
    });
    assert_eq!(hung["server"], "hang-1", "{hung}");
    assert_eq!(hung["misses"], 3, "{hung}");
    assert_eq!(hung["restarted"], true, "{hung}");
    // The restart had to kill it (it ignored `quit` and SIGINT); it answers again, as a
    // new process.
    let again = wait_for_status(host, "hang-1", Duration::from_secs(60), |s| {
        s["live"]["map"] == "c1m1_hotel"
    });
    assert_ne!(again["main_pid"], first["main_pid"], "{again}");
    let human = agent(&format!("events --after {before}"));
    assert!(
        human.contains("hang-1 stopped answering: Its process runs, but it answered none of the host's last 3 queries"),
        "{human}"
    );
    assert!(human.contains("The host restarted it."), "{human}");
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn a_crash_keeps_its_last_console_line_when_journald_reads_it_after_the_console_is_gone() {
    let _turn = take_turn();
    let host = &prepared_hosts()[0];
    let agent = |command: &str| host.run("left4me", &format!("{AGENT} {command}"));
    let _cleanup = Cleanup(host, &["delete late-1"]);
    host.run_with_input(
        "left4me",
        &format!("{AGENT} initialize late-1 -f - --rcon-password-stdin"),
        format!("{RCON_PASSWORD}\n{}", spec(27074, "", "c1m1_hotel")),
    );
    agent("start late-1");
    wait_for_status(host, "late-1", Duration::from_secs(20), |s| {
        s["live"]["map"] == "c1m1_hotel"
    });
    let before = events_after(host, 0)["last"].as_u64().unwrap();
    // A busy host: journald gets to the game's last line only after the console process
    // that sent it has exited and been reaped (journald stopped for a while, longer than
    // it keeps what it knows of a process).
    host.run(
        "root",
        &format!(
            "journald=$(pidof systemd-journald); kill -STOP $journald; \
             timeout 5 runuser -u left4me -- {AGENT} rcon late-1 stand_in_crash; \
             sleep 7; kill -CONT $journald; true"
        ),
    );
    let crash = wait_for_event(host, before, Duration::from_secs(30), |e| {
        e["kind"] == "crashed"
    });
    assert_eq!(crash["server"], "late-1", "{crash}");
    assert_eq!(
        crash["last_lines"].as_array().unwrap().last().unwrap(),
        "Segmentation fault (core dumped)",
        "{crash}"
    );
    let logs = agent("logs late-1 --lines 3");
    assert!(logs.contains("Segmentation fault (core dumped)"), "{logs}");
}
