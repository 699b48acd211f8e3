//! The agent on real hosts: systemd as PID 1, sshd, journald and kernel overlayfs in the test
//! hosts `cargo xtask test` boots. Each host is set up the way a user would: the agent is
//! uploaded over SSH and `setup` runs once with sudo; the base install comes from the
//! stand-in steamcmd, and the game is the stand-in srcds_run.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use testkit::TestHost;

pub(crate) const AGENT: &str = "/opt/left4me/l4d2-agent";
pub(crate) const RCON_PASSWORD: &str = "rcon-on-test-hosts-5d1c";

/// The tests below share the hosts; they take turns.
pub(crate) fn take_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// The static binaries `cargo xtask agent` built: the agent and, beside it, the stand-ins.
fn binary(name: &str) -> PathBuf {
    testkit::static_binary(name)
}

/// Every host, set up once per test run: agent uploaded, `setup` run, base game installed.
pub(crate) fn prepared_hosts() -> &'static [TestHost] {
    static HOSTS: OnceLock<Vec<TestHost>> = OnceLock::new();
    HOSTS.get_or_init(|| {
        let hosts = testkit::hosts();
        std::thread::scope(|scope| {
            for host in &hosts {
                scope.spawn(move || prepare(host));
            }
        });
        hosts
    })
}

fn prepare(host: &TestHost) {
    // The admin's sudo account uploads the agent and runs its set-up once.
    host.upload("admin", &binary("l4d2-agent"), "/tmp/l4d2-agent");
    let key = host.public_key();
    host.run(
        "admin",
        &format!("sudo /tmp/l4d2-agent setup --authorize-key '{key}'"),
    );
    // Running it again changes nothing.
    let again = host.run(
        "admin",
        &format!("sudo /tmp/l4d2-agent setup --authorize-key '{key}' --json"),
    );
    assert!(
        again.contains("\"changed\":false"),
        "{}: {again}",
        host.name
    );

    // From now on the app's account, with its own key.
    host.run("left4me", "mkdir -p tools");
    host.upload(
        "left4me",
        &binary("steamcmd_stand_in"),
        "tools/steamcmd_stand_in",
    );
    host.upload("left4me", &binary("srcds_stand_in"), "tools/srcds_stand_in");
    // A steamcmd folder as Valve's tarball unpacks: steamcmd.sh runs the i386 linux32/steamcmd.
    host.run(
        "left4me",
        "rm -rf tools/steamcmd && tools/steamcmd_stand_in --write-tree tools/steamcmd",
    );
    // Anonymous: on a fresh host Steam refuses the Linux pass ("Invalid platform"), and the
    // agent works around it with a Windows pass first; an install that has the Linux files
    // (a host kept from an earlier run) is updated with the Linux pass alone.
    let fresh = host
        .ssh(
            "left4me",
            "test -e /var/lib/left4me/installation/steamapps/appmanifest_222860.acf",
        )
        .status
        .code()
        == Some(1);
    let lines = host.run(
        "left4me",
        &format!("STAND_IN_STEAMCMD_STEP_MS=5 {AGENT} install --steamcmd tools/steamcmd/steamcmd.sh --validate --json"),
    );
    let records: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let progress: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["type"] == "install_progress")
        .collect();
    assert!(progress.len() > 20, "{}: {lines}", host.name);
    if fresh {
        assert!(
            progress
                .iter()
                .any(|p| p["platform"] == "windows" && p["pass"] == 2 && p["passes"] == 3),
            "{}: {lines}",
            host.name
        );
    } else {
        assert!(
            progress
                .iter()
                .all(|p| p["platform"] == "linux" && p["passes"] == 1)
        );
    }
    assert!(
        progress
            .iter()
            .any(|p| p["state"] == "downloading" && p["percent"] == 100.0)
    );
    let last = records.last().unwrap();
    assert_eq!(last["type"], "installed", "{last}");
    assert_eq!(last["build"], "16075386", "{last}");
    // For people: one line per state and tenth, then the outcome.
    let again = host.run(
        "left4me",
        &format!(
            "STAND_IN_STEAMCMD_STEP_MS=0 {AGENT} install --steamcmd tools/steamcmd/steamcmd.sh"
        ),
    );
    assert!(again.ends_with("build 16075386 is up to date\n"), "{again}");
}

/// A small overlay as the app ships it: a tar stream.
pub(crate) fn overlay_tar() -> Vec<u8> {
    overlay_tar_with("sm_show_activity 1\n")
}

fn overlay_tar_with(cfg: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(cfg.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "left4dead2/cfg/sourcemod.cfg", cfg.as_bytes())
        .unwrap();
    builder.into_inner().unwrap()
}

pub(crate) fn spec(port: u16, overlays: &str, map: &str) -> String {
    format!(
        "port: {port}\noverlays: [{overlays}]\nlaunch:\n  map: {map}\n  max_players: 8\n  tickrate: 30\ncvars:\n  hostname: Test {port}\n"
    )
}

pub(crate) fn status(host: &TestHost, name: &str) -> serde_json::Value {
    let text = host.run("left4me", &format!("{AGENT} status {name} --json"));
    serde_json::from_str(&text).unwrap()
}

/// Polls `status` until `check` holds, for at most `within`.
#[track_caller]
pub(crate) fn wait_for_status(
    host: &TestHost,
    name: &str,
    within: Duration,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let status = status(host, name);
        if check(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {name} never reached the wanted state: {status}",
            host.name
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Agent commands run when a test ends, passed or failed, so the next test finds a clean host.
pub(crate) struct Cleanup<'a>(pub(crate) &'a TestHost, pub(crate) &'a [&'a str]);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for command in self.1 {
            let _ = self.0.ssh("left4me", &format!("{AGENT} {command}"));
        }
    }
}

pub(crate) fn mount_table(host: &TestHost) -> String {
    // logind mounts /run/user/<uid> for each SSH login, this one's too: not ours to compare.
    host.run("root", "grep -v ' /run/user/' /proc/self/mountinfo")
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn servers_run_under_systemd_and_answer_a2s_on_every_host() {
    let _turn = take_turn();
    let hosts = prepared_hosts();
    std::thread::scope(|scope| {
        for host in hosts {
            scope.spawn(move || lifecycle(host));
        }
    });
}

fn lifecycle(host: &TestHost) {
    let agent = |command: &str| host.run("left4me", &format!("{AGENT} {command}"));
    // Overlay content arrives as a tar stream through the agent.
    let imported = host.run_with_input(
        "left4me",
        &format!("{AGENT} overlay import sourcemod"),
        overlay_tar(),
    );
    assert_eq!(imported, "overlay sourcemod: 0.0 MiB, in place\n");
    let before = mount_table(host);
    let maps = ["c1m1_hotel", "c2m1_highway", "c5m1_waterfront"];
    for (i, map) in maps.iter().enumerate() {
        let name = format!("life-{}", i + 1);
        let port = 27015 + i as u16;
        // The spec from a file, the RCON password on stdin: never on a command line.
        host.run_with_input(
            "left4me",
            &format!("cat > {name}.yaml"),
            spec(port, "sourcemod", map),
        );
        host.run_with_input(
            "left4me",
            &format!("{AGENT} initialize {name} -f {name}.yaml --rcon-password-stdin"),
            format!("{RCON_PASSWORD}\n"),
        );
        assert_eq!(
            agent(&format!("start {name}")),
            format!("start {name}: done\n")
        );
    }
    for (i, map) in maps.iter().enumerate() {
        let name = format!("life-{}", i + 1);
        let status = wait_for_status(host, &name, Duration::from_secs(20), |s| {
            s["live"]["map"] == *map
        });
        assert_eq!(status["active_state"], "active", "{status}");
        assert_eq!(status["mounted"], true, "{status}");
        assert_eq!(status["installed_build"], "16075386", "{status}");
        assert_eq!(
            status["live"]["name"],
            format!("Test {}", 27015 + i),
            "{status}"
        );
        // The game runs as the unprivileged account, in the merged tree.
        let pid = status["main_pid"].as_u64().unwrap();
        let owner = host.run("root", &format!("stat -c %U /proc/{pid}"));
        assert_eq!(owner.trim(), "left4me-game", "{}", host.name);
    }
    // One `serve` process answers each request line with a line: `list` as `list` says it,
    // a request it does not know with an error, after which it goes on.
    let served = host.run_with_input(
        "left4me",
        &format!("{AGENT} --json serve"),
        "list\nfrobnicate\nlist\n",
    );
    let answers: Vec<serde_json::Value> = served
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 3, "{}: {served}", host.name);
    let listed: serde_json::Value = serde_json::from_str(&agent("--json list")).unwrap();
    let names = |list: &serde_json::Value| -> Vec<(String, String)> {
        list["servers"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: not a list: {list}", host.name))
            .iter()
            .map(|s| (s["name"].to_string(), s["active_state"].to_string()))
            .collect()
    };
    assert_eq!(names(&answers[0]), names(&listed), "{}", host.name);
    assert_eq!(names(&answers[2]), names(&listed), "{}", host.name);
    assert_eq!(answers[1]["type"], "error", "{}", answers[1]);
    assert_eq!(answers[1]["code"], "invalid_input", "{}", answers[1]);

    // An RCON console through the agent, with the password it keeps.
    let status_text = agent("rcon life-2 status");
    assert!(
        status_text.contains("hostname: Test 27016"),
        "{}: {status_text}",
        host.name
    );
    // The install brought steamcmd's Steam client library where srcds, with the home the
    // unit gives it, loads it: Steam is up and VAC on.
    assert!(
        status_text.contains(" secure "),
        "{}: the server runs without Steam: {status_text}",
        host.name
    );
    assert_eq!(agent("rcon life-2 changelevel c4m1_milltown_a"), "");
    wait_for_status(host, "life-2", Duration::from_secs(10), |s| {
        s["live"]["map"] == "c4m1_milltown_a"
    });
    let answer = agent("--json rcon life-2 frobnicate");
    assert!(
        answer.contains(r#""answer":"Unknown command \"frobnicate\"\n""#),
        "{answer}"
    );

    // The console reaches journald, and `logs` reads it back as left4me.
    let logs = agent("logs life-1 --lines 50");
    assert!(
        logs.contains(" Map c1m1_hotel loaded, tickrate 30\n"),
        "{}: {logs}",
        host.name
    );
    let json = agent("logs life-1 --lines 50 --json");
    let line = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["message"] == "Map c1m1_hotel loaded, tickrate 30")
        .unwrap_or_else(|| panic!("{}: {json}", host.name));
    assert_eq!(line["type"], "log_line");
    // --follow streams until it is interrupted.
    let follow = host.ssh(
        "left4me",
        &format!("timeout 2 {AGENT} logs life-1 --lines 3 --follow"),
    );
    assert_eq!(follow.status.code(), Some(124), "{follow:?}");
    assert_eq!(String::from_utf8_lossy(&follow.stdout).lines().count(), 3);
    assert!(line["timestamp"].as_str().unwrap().ends_with('Z'), "{line}");

    // The game sees the overlay's files, owned by itself through the idmapped mount.
    let seen = host.run(
        "root",
        "stat -c '%U %n' /var/lib/left4me/runtime/life-1/merged/left4dead2/cfg/sourcemod.cfg",
    );
    assert_eq!(
        seen.trim_end(),
        "left4me-game /var/lib/left4me/runtime/life-1/merged/left4dead2/cfg/sourcemod.cfg"
    );
    // An overlay in use is not replaced underneath a running server: the new version is
    // staged, and a server switches to it at its next start or restart.
    let staged = host.run_with_input(
        "left4me",
        &format!("{AGENT} overlay import sourcemod"),
        overlay_tar_with("sm_show_activity 13\n"),
    );
    assert_eq!(
        staged,
        "overlay sourcemod: 0.0 MiB, staged: its servers switch at their next start or restart\n"
    );
    assert!(agent("overlay list --json").contains("\"pending\":true"));
    // Every running server that uses it runs the old version until its next start.
    let behind = || {
        let list: serde_json::Value =
            serde_json::from_str(agent("overlay list --json").trim()).unwrap();
        let overlays = list["overlays"].as_array().unwrap();
        let sourcemod = overlays.iter().find(|o| o["name"] == "sourcemod").unwrap();
        sourcemod["behind"].clone()
    };
    assert_eq!(behind(), serde_json::json!(["life-1", "life-2", "life-3"]));
    let seen_cfg = "cat /var/lib/left4me/runtime/life-1/merged/left4dead2/cfg/sourcemod.cfg";
    assert_eq!(host.run("root", seen_cfg), "sm_show_activity 1\n");

    // A kept `serve` (which reads again only what systemd says changed) sees the restart
    // below: its next answer has the new main PID.
    let mut serve = host
        .ssh_command("left4me", &format!("{AGENT} --json serve"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut requests = serve.stdin.take().unwrap();
    let mut answers = std::io::BufReader::new(serve.stdout.take().unwrap());
    let mut served_pid = |name: &str| {
        use std::io::{BufRead, Write};
        requests.write_all(b"list\n").unwrap();
        let mut answer = String::new();
        answers.read_line(&mut answer).unwrap();
        let list: serde_json::Value = serde_json::from_str(&answer).unwrap();
        list["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["main_pid"].clone())
            .unwrap_or_else(|| panic!("{}: no {name} in {answer}", host.name))
    };
    let pid_before = served_pid("life-1");
    assert_eq!(pid_before, status(host, "life-1")["main_pid"]);
    served_pid("life-1");

    // A changed blueprint applies on the next restart (and so does the staged overlay).
    host.run_with_input(
        "left4me",
        &format!("{AGENT} initialize life-1 -f -"),
        spec(27015, "sourcemod", "c3m1_plankcountry"),
    );
    agent("restart life-1");
    let restarted = wait_for_status(host, "life-1", Duration::from_secs(20), |s| {
        s["live"]["map"] == "c3m1_plankcountry"
    });
    let pid_after = served_pid("life-1");
    assert_ne!(pid_after, pid_before, "{}", host.name);
    assert_eq!(pid_after, restarted["main_pid"], "{}", host.name);
    drop(requests);
    serve.wait().unwrap();
    assert_eq!(host.run("root", seen_cfg), "sm_show_activity 13\n");
    assert!(agent("overlay list --json").contains("\"pending\":false"));
    // life-2 started before the switch and still sees the version it mounted (as does
    // life-3), and the host says so.
    assert_eq!(behind(), serde_json::json!(["life-2", "life-3"]));
    assert_eq!(
        host.run(
            "root",
            "cat /var/lib/left4me/runtime/life-2/merged/left4dead2/cfg/sourcemod.cfg"
        ),
        "sm_show_activity 1\n"
    );

    assert_eq!(agent("stop life-2"), "stop life-2: done\n");
    assert_eq!(agent("stop life-2"), "stop life-2: nothing to change\n");
    let stopped = status(host, "life-2");
    assert_eq!(stopped["active_state"], "inactive", "{stopped}");
    assert_eq!(stopped["mounted"], false, "{stopped}");

    // The password is in no log and no spec.
    let journal = host.run("root", "journalctl --no-pager -o cat");
    assert!(
        !journal.contains(RCON_PASSWORD),
        "{}: the RCON password was logged",
        host.name
    );
    assert!(
        !host
            .run("root", "cat /var/lib/left4me/servers/*.yaml")
            .contains(RCON_PASSWORD)
    );

    for name in ["life-1", "life-2", "life-3"] {
        assert_eq!(
            agent(&format!("delete {name}")),
            format!("delete {name}: done\n")
        );
    }
    assert_eq!(agent("list"), "no servers on this host\n");
    assert_eq!(
        mount_table(host),
        before,
        "{}: mounts left behind",
        host.name
    );
    agent("overlay delete sourcemod");
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn start_stop_cycles_leave_the_mount_table_unchanged() {
    let _turn = take_turn();
    let host = &prepared_hosts()[0];
    host.run_with_input(
        "left4me",
        &format!("{AGENT} initialize cycles -f -"),
        spec(27030, "", "c1m1_hotel"),
    );
    let before = mount_table(host);
    host.run(
        "left4me",
        &format!("for i in $(seq 200); do {AGENT} start cycles >/dev/null && {AGENT} stop cycles >/dev/null || exit 1; done"),
    );
    assert_eq!(mount_table(host), before);
    host.run("left4me", &format!("{AGENT} delete cycles"));
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn a_crashing_server_is_stopped_by_its_start_limit_and_says_so() {
    let _turn = take_turn();
    let host = &prepared_hosts()[1];
    let agent = |command: &str| host.run("left4me", &format!("{AGENT} {command}"));
    let _cleanup = Cleanup(host, &["delete crashy", "overlay delete crashy"]);
    agent("overlay create crashy");
    host.run(
        "left4me",
        "mkdir -p /var/lib/left4me/overlays/crashy/left4dead2 && touch /var/lib/left4me/overlays/crashy/left4dead2/stand-in-crash-on-start",
    );
    host.run_with_input(
        "left4me",
        &format!("{AGENT} initialize crashy -f -"),
        spec(27040, "crashy", "c1m1_hotel"),
    );
    let _ = host.ssh("left4me", &format!("{AGENT} start crashy"));
    // The game tree's unit stops right after, once nothing needs it.
    let status = wait_for_status(host, "crashy", Duration::from_secs(60), |s| {
        s["active_state"] == "failed" && s["mounted"] == false
    });
    // Five starts in the limit's window: the first and four restarts, then systemd gives up.
    assert!(status["restarts"].as_u64().unwrap() >= 4, "{status}");
    assert_eq!(status["mounted"], false, "{status}");
    let human = agent("status crashy");
    assert!(human.contains("crashy: failed"), "{human}");
    assert!(human.contains("crash loop"), "{human}");
    let journal = host.run(
        "root",
        "journalctl -u left4me-server@crashy.service -o cat --no-pager",
    );
    assert!(journal.contains("Segmentation fault"), "{journal}");
    assert!(
        journal.contains("Start request repeated too quickly"),
        "{journal}"
    );
    agent("delete crashy");
    agent("overlay delete crashy");
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn the_left4me_account_gets_exactly_the_privileges_it_needs() {
    let _turn = take_turn();
    let host = &prepared_hosts()[2];
    // It cannot control other units, directly or through the agent's sudo rule.
    assert!(!host.ssh("left4me", "systemctl stop ssh").status.success());
    let out = host.ssh("left4me", &format!("sudo -n {AGENT} privileged stop ssh"));
    assert_eq!(out.status.code(), Some(3), "{:?}", out);
    let out = host.ssh(
        "left4me",
        &format!("sudo -n {AGENT} privileged stop x ssh.service"),
    );
    assert_eq!(out.status.code(), Some(2), "{:?}", out);
    let out = host.ssh(
        "left4me",
        &format!("sudo -n {AGENT} privileged stop ../../ssh"),
    );
    assert_eq!(out.status.code(), Some(2), "{:?}", out);
    assert_eq!(host.run("root", "systemctl is-active ssh").trim(), "active");
    // Nothing else runs as root for it.
    assert!(
        !host
            .ssh("left4me", "sudo -n mount -t tmpfs x /mnt")
            .status
            .success()
    );
    assert!(
        !host
            .ssh("left4me", &format!("sudo -n {AGENT} setup"))
            .status
            .success()
    );
    // The game account cannot change the install or the overlays.
    host.run("left4me", &format!("{AGENT} overlay create guarded"));
    for path in [
        "/var/lib/left4me/installation/srcds_run",
        "/var/lib/left4me/installation/planted",
        "/var/lib/left4me/overlays/guarded/planted",
    ] {
        let out = host.ssh(
            "root",
            &format!("runuser -u left4me-game -- sh -c 'echo x >> {path}'"),
        );
        assert!(
            !out.status.success(),
            "{}: the game account wrote {path}",
            host.name
        );
    }
    host.run("left4me", &format!("{AGENT} overlay delete guarded"));
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn an_owned_steam_account_installs_in_one_pass_without_exposing_its_password() {
    let _turn = take_turn();
    let host = &prepared_hosts()[2];
    let secret = "not-a-real-password-7f3a";
    host.run_with_input(
        "left4me",
        "cat > tools/steamcmd/stand-in-steam.conf",
        format!("account someadmin {secret}\n"),
    );
    let out = host.run_with_input(
        "left4me",
        &format!("STAND_IN_STEAMCMD_STEP_MS=0 {AGENT} install --steamcmd tools/steamcmd/steamcmd.sh --steam-login-stdin --validate --json"),
        format!("someadmin\n{secret}\n"),
    );
    assert!(!out.contains(secret));
    let passes: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["type"] == "install_progress")
        .collect();
    assert!(!passes.is_empty());
    assert!(
        passes
            .iter()
            .all(|p| p["passes"] == 1 && p["platform"] == "linux")
    );
    // The login script is gone, and nothing logged the password.
    assert_eq!(
        host.run("left4me", "ls -A /var/lib/left4me/home/.steam-login"),
        ""
    );
    let journal = host.run("root", "journalctl --no-pager -o cat");
    assert!(!journal.contains(secret));
    // A login file must be private.
    host.run_with_input(
        "left4me",
        "cat > login.txt && chmod 644 login.txt",
        format!("someadmin\n{secret}\n"),
    );
    let out = host.ssh(
        "left4me",
        &format!(
            "{AGENT} install --steamcmd tools/steamcmd/steamcmd.sh --steam-login-file login.txt"
        ),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must have mode 0600"));
    host.run("left4me", "rm login.txt");
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn steamcmd_is_fetched_when_the_host_has_none() {
    let _turn = take_turn();
    let host = &prepared_hosts()[1];
    let tarball = testkit::steamcmd_tarball();
    // Served from this machine's address on the hosts' bridge.
    let server = testkit::FileServer::start("10.213.77.1", "/steamcmd_linux.tar.gz", Some(tarball));
    host.run("root", "rm -rf /opt/left4me/steamcmd/current");
    let out = host.run(
        "left4me",
        &format!(
            "STAND_IN_STEAMCMD_STEP_MS=0 {AGENT} install --steamcmd-url {}",
            server.url
        ),
    );
    assert!(out.ends_with("build 16075386 is up to date\n"), "{out}");
    assert_eq!(server.requests(), 1);
    let owner = host.run(
        "root",
        "stat -c %U /opt/left4me/steamcmd/current/steamcmd.sh",
    );
    assert_eq!(owner.trim(), "left4me");
    // Found next time: no second download.
    host.run(
        "left4me",
        &format!(
            "STAND_IN_STEAMCMD_STEP_MS=0 {AGENT} install --steamcmd-url {}",
            server.url
        ),
    );
    assert_eq!(server.requests(), 1);
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn setup_moves_a_host_of_the_earlier_layout_to_the_new_one() {
    let _turn = take_turn();
    let host = &prepared_hosts()[1];
    let agent = |command: &str| host.run("left4me", &format!("{AGENT} {command}"));
    let _cleanup = Cleanup(host, &["delete upgraded"]);
    host.run_with_input(
        "left4me",
        &format!("{AGENT} initialize upgraded -f - --rcon-password-stdin"),
        format!("{RCON_PASSWORD}\n{}", spec(27050, "", "c1m1_hotel")),
    );
    agent("start upgraded");
    agent("stop upgraded");
    // What an agent before the root-owned layout left: the state root as left4me's home, the
    // spec in the runtime folder, the RCON password and environment in an /etc/left4me of
    // left4me's, and left4me's runtime folders (and no automation folder yet).
    host.run(
        "root",
        "set -e; L=/var/lib/left4me; cd $L
         rm -rf automation home/automation
         for f in home/.[!.]* home/*; do if [ -e \"$f\" ]; then mv \"$f\" .; fi; done; rmdir home
         sed -i 's#^left4me:\\([^:]*:[^:]*:[^:]*:[^:]*:\\)[^:]*#left4me:\\1/var/lib/left4me#' /etc/passwd
         mv servers/upgraded.yaml runtime/upgraded/spec.yaml
         mv servers/upgraded.rcon /etc/left4me/upgraded.rcon
         rm -rf servers
         chown left4me:left4me $L runtime runtime/upgraded runtime/upgraded/merged \
             runtime/upgraded/idmap runtime/upgraded/idmap/_installation \
             runtime/upgraded/spec.yaml /etc/left4me /etc/left4me/upgraded.env \
             /etc/left4me/upgraded.rcon
         chown left4me-game:left4me-game runtime/upgraded/work",
    );
    let key = host.public_key();
    let setup = format!("sudo /tmp/l4d2-agent setup --authorize-key '{key}' --json");
    assert!(host.run("admin", &setup).contains("\"changed\":true"));
    assert!(host.run("admin", &setup).contains("\"changed\":false"));
    // Root's folders are root's, left4me's its own, and its key still lets the app in.
    let owners = host.run(
        "root",
        "cd /var/lib/left4me; stat -c '%n %U %a' . runtime runtime/upgraded runtime/upgraded/upper \
         home servers servers/upgraded.yaml servers/upgraded.rcon /etc/left4me; \
         ls -A runtime/upgraded; ls -A /etc/left4me; getent passwd left4me | cut -d: -f6",
    );
    assert_eq!(
        owners,
        ". root 755\nruntime root 755\nruntime/upgraded root 755\nruntime/upgraded/upper left4me-game 755\n\
         home left4me 700\nservers left4me 755\nservers/upgraded.yaml left4me 644\n\
         servers/upgraded.rcon left4me 600\n/etc/left4me root 755\nupper\nwork\n\
         host-probe\n/var/lib/left4me/home\n"
    );
    // The server runs as before, with its password.
    assert_eq!(agent("start upgraded"), "start upgraded: done\n");
    assert!(agent("rcon upgraded status").contains("hostname: Test 27050"));
    agent("delete upgraded");
    assert_eq!(agent("list"), "no servers on this host\n");
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn console_lines_reach_logs_follow_as_printed_and_a_stop_ends_the_game_cleanly() {
    let _turn = take_turn();
    let host = &prepared_hosts()[0];
    let agent = |command: &str| host.run("left4me", &format!("{AGENT} {command}"));
    let _cleanup = Cleanup(host, &["delete live-log"]);
    host.run_with_input(
        "left4me",
        &format!("{AGENT} initialize live-log -f - --rcon-password-stdin"),
        format!("{RCON_PASSWORD}\n{}", spec(27060, "", "c1m1_hotel")),
    );
    agent("start live-log");
    wait_for_status(host, "live-log", Duration::from_secs(20), |s| {
        s["live"]["map"] == "c1m1_hotel"
    });
    // The game block-buffers its console on a pipe (C stdio): a line it prints must still
    // reach a follower on its own, not once 4 KiB have gathered.
    let mut follower = host
        .ssh_command(
            "left4me",
            &format!("{AGENT} logs live-log --lines 0 --follow"),
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rx = testkit::lines_of(follower.stdout.take().unwrap());
    // Give the follower its connection, then have the server print one line.
    std::thread::sleep(Duration::from_millis(500));
    agent("rcon live-log say one line on its own");
    let deadline = Instant::now() + Duration::from_secs(10);
    let arrived = std::iter::from_fn(|| {
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
    })
    .any(|line| line.contains("Console: one line on its own"));
    let _ = follower.kill();
    let _ = follower.wait();
    let journal = host.run(
        "root",
        "journalctl -u left4me-server@live-log.service -o cat --no-pager",
    );
    assert!(
        arrived && journal.contains("Console: one line on its own"),
        "{}: the line stayed in the game's buffer: {journal}",
        host.name
    );
    // The live feed beside the journal serves left4me (and root), and nobody else: not the
    // admin's account, not the game's own.
    let read_feed = |user: &str, as_account: &str| {
        host.ssh(
            user,
            &format!(
                "{as_account} timeout 2 perl -MIO::Socket::UNIX -e '$| = 1; \
                 $s = IO::Socket::UNIX->new(\
                 Peer => \"/run/left4me/live-log/console.sock\") or die \"no connection\\n\"; \
                 print while <$s>'; true"
            ),
        )
    };
    let feed = String::from_utf8_lossy(&read_feed("left4me", "").stdout).into_owned();
    assert!(
        feed.starts_with("left4me-console 1 ") && feed.contains(" Console: one line on its own\n"),
        "{}: {feed}",
        host.name
    );
    for (user, as_account) in [("admin", ""), ("admin", "sudo -u left4me-game")] {
        let out = read_feed(user, as_account);
        assert!(
            out.stdout.is_empty(),
            "{}: {user} {as_account} read the console: {}",
            host.name,
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // A stop types `quit` on the console: the game shuts down cleanly, its last lines kept.
    assert_eq!(agent("stop live-log"), "stop live-log: done\n");
    let journal = host.run(
        "root",
        "journalctl -u left4me-server@live-log.service -o cat --no-pager",
    );
    assert!(
        journal.contains("Shutting down server"),
        "{}: the game did not shut down cleanly: {journal}",
        host.name
    );
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn a_server_that_drifts_off_its_port_is_stopped_and_the_start_says_why() {
    let _turn = take_turn();
    let host = &prepared_hosts()[2];
    let agent = |command: &str| host.run("left4me", &format!("{AGENT} {command}"));
    let _cleanup = Cleanup(host, &["delete drifter", "overlay delete drifts"]);
    // A game that moves to the next port when its own is taken, whatever -strictportbind says.
    agent("overlay create drifts");
    host.run(
        "left4me",
        "mkdir -p /var/lib/left4me/overlays/drifts/left4dead2 && \
         touch /var/lib/left4me/overlays/drifts/left4dead2/stand-in-drifts",
    );
    host.run_with_input(
        "left4me",
        &format!("{AGENT} initialize drifter -f -"),
        spec(27070, "drifts", "c1m1_hotel"),
    );
    // Something else takes the server's port after it was declared.
    host.run_with_input(
        "root",
        "sh -s",
        "setsid -f perl -MIO::Socket::INET -e '$0 = \"port-squatter\"; \
         my $s = IO::Socket::INET->new(LocalPort => 27070, Proto => \"udp\") or die; sleep 120' \
         </dev/null >/dev/null 2>&1; sleep 0.5",
    );
    let out = host.ssh("left4me", &format!("{AGENT} start drifter"));
    host.run("root", "pkill -f 'port-[s]quatter' || true");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "cannot start server \"drifter\": it bound port 27071 instead of its own port 27070 \
             (a UDP socket of uid 0 (root) holds it), so it was stopped"
        ),
        "{stderr}"
    );
    assert_eq!(status(host, "drifter")["active_state"], "inactive");
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn an_update_while_servers_run_is_built_beside_them_and_reaches_each_at_its_next_start() {
    let _turn = take_turn();
    let host = &prepared_hosts()[1];
    let agent = |command: &str| host.run("left4me", &format!("{AGENT} {command}"));
    let _cleanup = Cleanup(host, &["delete beside-a", "delete beside-b"]);
    for (name, port) in [("beside-a", 27050), ("beside-b", 27060)] {
        host.run_with_input(
            "left4me",
            &format!("{AGENT} initialize {name} -f -"),
            spec(port, "", "c1m1_hotel"),
        );
        agent(&format!("start {name}"));
    }
    // The install the servers run from, and every file of it (name, size, time).
    let current = "n=$(cat /var/lib/left4me/installs/current 2>/dev/null); \
                   if [ -n \"$n\" ]; then echo /var/lib/left4me/installs/$n; \
                   else echo /var/lib/left4me/installation; fi";
    let old = host.run("root", current).trim().to_owned();
    let fingerprint = |dir: &str| {
        host.run(
            "root",
            &format!("cd {dir} && find . -printf '%P %s %T@\\n' | sort | sha256sum"),
        )
    };
    let before = fingerprint(&old);
    let build_of = |server: &str| {
        host.run(
            "root",
            &format!(
                "grep buildid /var/lib/left4me/runtime/{server}/merged/steamapps/appmanifest_222860.acf"
            ),
        )
    };
    assert!(build_of("beside-a").contains("16075386"));

    let lines = host.run(
        "left4me",
        &format!(
            "STAND_IN_STEAMCMD_BUILDID=16075500 STAND_IN_STEAMCMD_STEP_MS=0 {AGENT} install --steamcmd tools/steamcmd/steamcmd.sh --json"
        ),
    );
    let records: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "install_notice" && r["kind"] == "building_beside"),
        "{lines}"
    );
    let last = records.last().unwrap();
    assert_eq!(last["build"], "16075500", "{last}");
    assert_eq!(last["pending"], true, "{last}");
    // Nothing the servers run from changed, and they still run the build they started with.
    assert_eq!(fingerprint(&old), before, "the running install changed");
    for server in ["beside-a", "beside-b"] {
        assert!(build_of(server).contains("16075386"), "{server}");
        assert_eq!(status(host, server)["active_state"], "active");
    }
    let new = host.run("root", current).trim().to_owned();
    assert_ne!(new, old);
    assert!(agent("facts").contains("game build  16075500"));

    // A restart takes the new build; the other server keeps the old one until its own.
    agent("restart beside-a");
    assert!(build_of("beside-a").contains("16075500"));
    assert!(build_of("beside-b").contains("16075386"));
    assert_eq!(fingerprint(&old), before);
    // Once nothing runs from the old install, it goes (not in the first seconds after the
    // switch, when a start that read the old pointer may still be binding it).
    std::thread::sleep(Duration::from_secs(11));
    agent("stop beside-b");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = host.run(
            "root",
            &format!("find {old} -mindepth 1 -maxdepth 1 2>/dev/null | wc -l"),
        );
        if left.trim() == "0" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the old install was kept"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    agent("start beside-b");
    assert!(build_of("beside-b").contains("16075500"));

    // Back to the install the other tests expect: the first folder, the default build.
    agent("delete beside-a");
    agent("delete beside-b");
    host.run(
        "root",
        "rm -rf /var/lib/left4me/installs/* /var/lib/left4me/installs/.install.lock",
    );
    host.run(
        "left4me",
        &format!(
            "STAND_IN_STEAMCMD_STEP_MS=0 {AGENT} install --steamcmd tools/steamcmd/steamcmd.sh"
        ),
    );
    assert!(agent("facts").contains("game build  16075386"));
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn steamcmds_failures_are_classified_retried_or_waited_for_on_a_host() {
    let _turn = take_turn();
    let host = &prepared_hosts()[2];
    let steam = |conf: &str| {
        host.run_with_input("left4me", "cat > tools/steamcmd/stand-in-steam.conf", conf);
    };
    // One install as the app runs it: the login on stdin, JSON out; its records.
    let install = |login: &str, extra: &str| -> Vec<serde_json::Value> {
        let out = host.ssh_with_input(
            "left4me",
            &format!(
                "STAND_IN_STEAMCMD_STEP_MS=0 {AGENT} install --steamcmd tools/steamcmd/steamcmd.sh --steam-login-stdin --validate --json {extra}"
            ),
            login,
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let last = |records: &[serde_json::Value]| records.last().cloned().unwrap();

    steam("account owner pw-7d1\nfail login rate-limit 1\nfail update 0x602 1\n");
    let refused = last(&install("owner\npw-7d1\n", ""));
    assert_eq!(refused["code"], "steam_rate_limited", "{refused}");
    // A lost download clears on the retry.
    let records = install("owner\npw-7d1\n", "");
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "install_notice" && r["kind"] == "retrying")
    );
    assert_eq!(last(&records)["type"], "installed");

    steam("account owner pw-7d1\ndisk-free 1000\n");
    let full = last(&install("owner\npw-7d1\n", ""));
    assert_eq!(full["code"], "disk_full", "{full}");
    assert!(
        full["message"].as_str().unwrap().contains(" free in "),
        "{full}"
    );

    steam(
        "account owner pw-7d1\nbuild 16075386\naccount phone pw-7d1 guard=mobile approve-after=1500\naccount never pw-7d1 guard=mobile approve-after=never\naccount mail pw-7d1 guard=email code=K9P2Q\n",
    );
    let records = install("phone\npw-7d1\n", "");
    let notices: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "install_notice")
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(notices, ["waiting_for_approval", "approved"]);
    assert_eq!(last(&records)["type"], "installed");
    let waited = last(&install("never\npw-7d1\n", "--approval-timeout 2"));
    assert_eq!(waited["code"], "steam_guard_not_confirmed", "{waited}");
    assert_eq!(
        host.run("root", "pgrep -u left4me -f steamcmd_stand_in || true"),
        "",
        "steamcmd outlived the install"
    );
    let needed = last(&install("mail\npw-7d1\n", ""));
    assert_eq!(needed["code"], "steam_guard_code_needed", "{needed}");
    assert_eq!(
        last(&install("mail\npw-7d1\nK9P2Q\n", ""))["type"],
        "installed"
    );
    // The password never reached a command line, the journal or the output.
    let journal = host.run("root", "journalctl --no-pager -o cat");
    assert!(!journal.contains("pw-7d1"));
    steam("");
}
