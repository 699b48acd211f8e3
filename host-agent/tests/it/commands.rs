//! The server and overlay commands through the binary, as admins and the app run them:
//! exit codes, messages, JSON, and what they leave on disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SPEC: &str = "\
port: 27015
overlays: [sourcemod]
launch:
  map: c1m1_hotel
  max_players: 8
  tickrate: 30
cvars:
  hostname: Friday coop
";

/// The account running the tests, used as both owner and game account: chown to oneself
/// needs no privilege.
pub(crate) fn me() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap()
        .to_owned();
    std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find(|l| l.split(':').nth(2) == Some(uid.as_str()))
        .map(|l| l.split(':').next().unwrap().to_owned())
        .expect("the test user is in /etc/passwd")
}

pub(crate) struct Agent {
    root: tempfile::TempDir,
}

impl Agent {
    pub(crate) fn new() -> Agent {
        Agent {
            root: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    pub(crate) fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let me = me();
        let mut child = Command::new(env!("CARGO_BIN_EXE_l4d2-agent"))
            .arg("--root")
            .arg(self.root())
            .args(["--owner-account", &me, "--game-account", &me])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            std::io::Write::write_all(&mut input, text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    pub(crate) fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Every path below the root, for "nothing changed" checks.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![self.root().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                found.push(path.strip_prefix(self.root()).unwrap().to_path_buf());
                if entry.file_type().unwrap().is_dir() {
                    stack.push(path);
                }
            }
        }
        found.sort();
        found
    }
}

#[track_caller]
fn check_refused(agent: &Agent, args: &[&str], stdin: Option<&str>, code: i32, expect: &str) {
    let before = agent.files();
    let out = agent.run(args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(
        stderr.contains(expect),
        "{args:?}: expected {expect:?} in {stderr:?}"
    );
    assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr:?}");
    assert_eq!(agent.files(), before, "{args:?} changed files");
}

#[test]
fn bad_input_is_refused_with_exit_2_and_changes_nothing() {
    let agent = Agent::new();
    agent.ok(&["overlay", "create", "sourcemod"], None);
    let init = |name: &'static str| ["initialize", name, "-f", "-"];
    check_refused(
        &agent,
        &init("../etc"),
        Some(SPEC),
        2,
        "invalid server name \"../etc\"",
    );
    check_refused(
        &agent,
        &init("Coop"),
        Some(SPEC),
        2,
        "invalid server name \"Coop\"",
    );
    check_refused(
        &agent,
        &init("coop-1"),
        Some(&SPEC.replace("27015", "80")),
        2,
        "spec: port 80 is outside 1024-65535",
    );
    check_refused(
        &agent,
        &init("coop-1"),
        Some(&SPEC.replace("sourcemod", "nonexistent")),
        2,
        "spec: overlay \"nonexistent\" does not exist on this host",
    );
    check_refused(
        &agent,
        &init("coop-1"),
        Some(&SPEC.replace("Friday coop", "\"x; quit\"")),
        2,
        "semicolons are not allowed",
    );
    check_refused(
        &agent,
        &init("coop-1"),
        Some("port: [\n"),
        2,
        "spec is not valid YAML",
    );
    check_refused(
        &agent,
        &["initialize", "coop-1", "-f", "/nonexistent/spec.yaml"],
        None,
        2,
        "cannot read spec /nonexistent/spec.yaml",
    );
    check_refused(
        &agent,
        &["overlay", "create", "../x"],
        None,
        2,
        "invalid overlay name",
    );
    check_refused(
        &agent,
        &["umount", "ghost"],
        None,
        3,
        "server \"ghost\" does not exist",
    );
    check_refused(
        &agent,
        &["mount", "ghost"],
        None,
        3,
        "server \"ghost\" does not exist",
    );
}

#[test]
fn initialize_declares_the_server_and_is_idempotent() {
    let agent = Agent::new();
    agent.ok(&["overlay", "create", "sourcemod"], None);
    let first = agent.ok(&["--json", "initialize", "coop-1", "-f", "-"], Some(SPEC));
    assert_eq!(
        first,
        "{\"v\":1,\"type\":\"done\",\"action\":\"initialize\",\"target\":\"coop-1\",\"changed\":true}\n"
    );
    // The owner's declaration; the runtime tree is root's, made at the first mount.
    let spec = std::fs::read_to_string(agent.root().join("servers/coop-1.yaml")).unwrap();
    assert!(spec.contains("hostname: Friday coop"), "{spec}");
    assert!(!agent.root().join("runtime/coop-1").exists());

    let again = agent.ok(&["initialize", "coop-1", "-f", "-"], Some(SPEC));
    assert_eq!(again, "initialize coop-1: nothing to change\n");

    // A changed blueprint reaches the host by initialising again.
    let changed = SPEC.replace("c1m1_hotel", "c2m1_highway");
    assert_eq!(
        agent.ok(&["initialize", "coop-1", "-f", "-"], Some(&changed)),
        "initialize coop-1: done\n"
    );
    let spec = std::fs::read_to_string(agent.root().join("servers/coop-1.yaml")).unwrap();
    assert!(spec.contains("map: c2m1_highway"), "{spec}");
}

#[test]
fn ports_are_not_shared_between_servers() {
    let agent = Agent::new();
    agent.ok(&["overlay", "create", "sourcemod"], None);
    agent.ok(&["initialize", "coop-1", "-f", "-"], Some(SPEC));
    check_refused(
        &agent,
        &["initialize", "coop-2", "-f", "-"],
        Some(SPEC),
        2,
        "spec: port 27015 is already used by server \"coop-1\"",
    );
    // Re-initialising a server with its own port is fine.
    agent.ok(&["initialize", "coop-1", "-f", "-"], Some(SPEC));
}

#[test]
fn list_shows_servers_for_people_and_the_app() {
    let agent = Agent::new();
    assert_eq!(agent.ok(&["list"], None), "no servers on this host\n");
    agent.ok(&["overlay", "create", "sourcemod"], None);
    agent.ok(&["initialize", "coop-1", "-f", "-"], Some(SPEC));
    agent.ok(
        &["initialize", "versus-2", "-f", "-"],
        Some(&SPEC.replace("27015", "27016").replace("[sourcemod]", "[]")),
    );
    assert_eq!(
        agent.ok(&["list"], None),
        "NAME      PORT   STATE     MAP         PLAYERS  MOUNTED  OVERLAYS\ncoop-1    27015  inactive  c1m1_hotel  -        no       sourcemod\nversus-2  27016  inactive  c1m1_hotel  -        no\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&agent.ok(&["list", "--json"], None)).unwrap();
    assert_eq!(json["type"], "servers");
    assert_eq!(json["servers"][0]["name"], "coop-1");
    assert_eq!(json["servers"][0]["overlays"][0], "sourcemod");
    assert_eq!(json["servers"][1]["mounted"], false);
}

#[test]
fn delete_removes_everything_and_a_missing_server_is_success() {
    let agent = Agent::new();
    agent.ok(&["overlay", "create", "sourcemod"], None);
    agent.ok(&["initialize", "coop-1", "-f", "-"], Some(SPEC));
    assert_eq!(
        agent.ok(&["delete", "coop-1"], None),
        "delete coop-1: done\n"
    );
    assert!(!agent.root().join("runtime/coop-1").exists());
    assert!(!agent.root().join("etc/coop-1.env").exists());
    assert_eq!(
        agent.ok(&["delete", "coop-1"], None),
        "delete coop-1: nothing to change\n"
    );
    assert_eq!(
        agent.ok(&["delete", "never-was"], None),
        "delete never-was: nothing to change\n"
    );
}

#[test]
fn overlays_in_use_cannot_be_deleted() {
    let agent = Agent::new();
    agent.ok(&["overlay", "create", "sourcemod"], None);
    agent.ok(&["overlay", "create", "maps"], None);
    std::fs::write(agent.root().join("overlays/maps/a.vpk"), vec![0u8; 2048]).unwrap();
    agent.ok(&["initialize", "coop-1", "-f", "-"], Some(SPEC));
    assert_eq!(
        agent.ok(&["overlay", "list"], None),
        "NAME       FILES  SIZE\nmaps       1      2.0 KiB\nsourcemod  0      0 B\n"
    );
    check_refused(
        &agent,
        &["overlay", "delete", "sourcemod"],
        None,
        2,
        "overlay \"sourcemod\" is used by server coop-1",
    );
    agent.ok(&["overlay", "delete", "maps"], None);
    assert!(!agent.root().join("overlays/maps").exists());
}

#[test]
fn a_second_agent_on_the_same_server_is_told_it_is_busy() {
    let agent = Agent::new();
    agent.ok(&["overlay", "create", "sourcemod"], None);
    agent.ok(&["initialize", "coop-1", "-f", "-"], Some(SPEC));
    let held = l4d2_agent::lock::Lock::try_acquire(&agent.root().join("servers/.coop-1.lock"))
        .ok()
        .unwrap();
    check_refused(
        &agent,
        &["initialize", "coop-1", "-f", "-"],
        Some(&SPEC.replace("c1m1_hotel", "c2m1_highway")),
        4,
        "server \"coop-1\" is busy",
    );
    drop(held);
    agent.ok(&["initialize", "coop-1", "-f", "-"], Some(SPEC));
}

#[test]
#[ignore = "needs root to mount: run `cargo xtask test`"]
fn mount_renders_server_cfg_and_umount_leaves_nothing_mounted() {
    let _turn = super::mount_turn();
    let agent = Agent::new();
    agent.ok(&["overlay", "create", "sourcemod"], None);
    std::fs::create_dir_all(agent.root().join("installation/left4dead2/maps")).unwrap();
    std::fs::write(
        agent
            .root()
            .join("installation/left4dead2/maps/c1m1_hotel.bsp"),
        "VBSP",
    )
    .unwrap();
    let spec = agent.root().join("coop-1.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    agent.ok(
        &[
            "initialize",
            "coop-1",
            "-f",
            spec.to_str().unwrap(),
            "--rcon-password-stdin",
        ],
        Some("rcon-test-password\n"),
    );
    assert_eq!(agent.ok(&["mount", "coop-1"], None), "mount coop-1: done\n");
    assert_eq!(
        agent.ok(&["mount", "coop-1"], None),
        "mount coop-1: nothing to change\n"
    );
    let merged = agent.root().join("runtime/coop-1/merged");
    assert!(merged.join("left4dead2/maps/c1m1_hotel.bsp").is_file());
    let cfg = std::fs::read_to_string(merged.join("left4dead2/cfg/server.cfg")).unwrap();
    assert!(cfg.contains("hostname \"Friday coop\""), "{cfg}");
    assert!(
        cfg.contains("rcon_password \"rcon-test-password\""),
        "{cfg}"
    );
    let listed = agent.ok(&["list"], None);
    assert!(listed.contains("c1m1_hotel  -        yes"), "{listed}");
    // The unit's environment, written by root from the spec at the mount.
    let env = std::fs::read_to_string(agent.root().join("etc/coop-1.env")).unwrap();
    assert!(
        env.contains("SRCDS_ARGS=-game left4dead2 -ip 0.0.0.0 -port 27015 "),
        "{env}"
    );
    assert!(env.contains(" +clientport "), "{env}");
    assert!(env.contains("+exec server.cfg +map c1m1_hotel\n"), "{env}");
    // And which spec it started from, for `status` to tell a change that waits for a restart.
    let spec = std::fs::read_to_string(agent.root().join("servers/coop-1.yaml")).unwrap();
    let spec = left4me_protocol::InstanceSpec::from_yaml(&spec).unwrap();
    assert!(
        env.ends_with(&format!(
            "\nLEFT4ME_SPEC={}\n",
            l4d2_agent::server::start_digest(&spec)
        )),
        "{env}"
    );
    // Root's tree but for the game's upper layer; overlayfs's work folder is root's alone.
    let runtime = agent.root().join("runtime/coop-1");
    for (dir, mode) in [
        ("", 0o755),
        ("merged", 0o755),
        ("idmap", 0o755),
        ("work", 0o700),
        ("upper", 0o755),
    ] {
        let meta = std::fs::symlink_metadata(runtime.join(dir)).unwrap();
        assert!(meta.is_dir(), "{dir}");
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
            mode,
            "{dir}"
        );
    }
    assert_eq!(
        agent.ok(&["umount", "coop-1"], None),
        "umount coop-1: done\n"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(agent.root().to_str().unwrap()), "{mounts}");
    // delete unmounts by itself.
    agent.ok(&["mount", "coop-1"], None);
    agent.ok(&["delete", "coop-1"], None);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(agent.root().to_str().unwrap()), "{mounts}");
    assert!(
        agent
            .root()
            .join("installation/left4dead2/maps/c1m1_hotel.bsp")
            .is_file()
    );
}

#[test]
fn the_rcon_password_is_kept_apart_from_the_spec() {
    use std::os::unix::fs::PermissionsExt;
    let agent = Agent::new();
    agent.ok(&["overlay", "create", "sourcemod"], None);
    let spec = agent.root().join("coop-1.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let spec = spec.to_str().unwrap();
    check_refused(
        &agent,
        &["initialize", "coop-1", "-f", "-", "--rcon-password-stdin"],
        Some("no-newline-after-the-password"),
        2,
        "the password must be one line ending in a newline",
    );
    check_refused(
        &agent,
        &["initialize", "coop-1", "-f", spec, "--rcon-password-stdin"],
        Some("short\n"),
        2,
        "RCON password: use 8 to 64 printable characters",
    );
    check_refused(
        &agent,
        &["initialize", "coop-1", "-f", spec, "--rcon-password-stdin"],
        Some("has\"quote-in-it\n"),
        2,
        "RCON password",
    );
    agent.ok(
        &["initialize", "coop-1", "-f", spec, "--rcon-password-stdin"],
        Some("hunter2-but-longer\n"),
    );
    let file = agent.root().join("servers/coop-1.rcon");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "hunter2-but-longer"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let spec_text = std::fs::read_to_string(agent.root().join("servers/coop-1.yaml")).unwrap();
    assert!(!spec_text.contains("hunter2"), "{spec_text}");
    // Both on stdin, as the app sends them: the password line, then the spec.
    agent.ok(
        &["initialize", "coop-1", "-f", "-", "--rcon-password-stdin"],
        Some(&format!("changed-password\n{SPEC}")),
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "changed-password");
    agent.ok(&["delete", "coop-1"], None);
    assert!(!file.exists());
}

#[test]
fn json_outputs_match_their_snapshots() {
    // UPDATE_EXPECT=1 cargo test rewrites the snapshots after a deliberate change.
    let agent = Agent::new();
    agent.ok(&["overlay", "create", "sourcemod"], None);
    std::fs::write(agent.root().join("overlays/sourcemod/a.cfg"), "x").unwrap();
    let init = agent.ok(&["--json", "initialize", "coop-1", "-f", "-"], Some(SPEC));
    let list = agent.ok(&["list", "--json"], None);
    let status = agent.ok(&["status", "coop-1", "--json"], None);
    let overlays = agent.ok(&["overlay", "list", "--json"], None);
    let missing = agent.run(&["status", "ghost", "--json"], None);
    let all = format!(
        "{init}{list}{status}{overlays}{}",
        String::from_utf8_lossy(&missing.stdout)
    );
    expect_test::expect_file!["snapshots/json-outputs.jsonl"].assert_eq(&all);
}

#[test]
fn root_steps_refuse_links_and_folders_others_can_change_and_change_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let agent = Agent::new();
    agent.ok(&["overlay", "create", "sourcemod"], None);
    agent.ok(&["initialize", "coop-1", "-f", "-"], Some(SPEC));
    // A spec planted as a link to another file: root reads the owner's files without
    // following links.
    let spec = agent.root().join("servers/coop-1.yaml");
    let elsewhere = agent.root().join("elsewhere.yaml");
    std::fs::rename(&spec, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &spec).unwrap();
    check_refused(
        &agent,
        &["mount", "coop-1"],
        None,
        1,
        "servers/coop-1.yaml is a symlink, which the agent does not follow here",
    );
    std::fs::remove_file(&spec).unwrap();
    std::fs::rename(&elsewhere, &spec).unwrap();
    // A state root that others can write: nothing root does there can be trusted.
    std::fs::set_permissions(agent.root(), std::fs::Permissions::from_mode(0o777)).unwrap();
    check_refused(
        &agent,
        &["mount", "coop-1"],
        None,
        1,
        "can be changed by accounts other than root",
    );
    check_refused(
        &agent,
        &["delete", "coop-1"],
        None,
        1,
        "can be changed by accounts other than root",
    );
    std::fs::set_permissions(agent.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn initialize_picks_free_client_and_sourcetv_ports_and_refuses_clashes() {
    let agent = Agent::new();
    agent.ok(&["overlay", "create", "sourcemod"], None);
    let ports = |name: &str| {
        let text =
            std::fs::read_to_string(agent.root().join(format!("servers/{name}.yaml"))).unwrap();
        let spec = left4me_protocol::InstanceSpec::from_yaml(&text).unwrap();
        (spec.port, spec.client_port.unwrap(), spec.tv_port.unwrap())
    };
    agent.ok(&["initialize", "coop-1", "-f", "-"], Some(SPEC));
    agent.ok(
        &["initialize", "coop-2", "-f", "-"],
        Some(&SPEC.replace("27015", "27016")),
    );
    let (one, two) = (ports("coop-1"), ports("coop-2"));
    let all = [one.0, one.1, one.2, two.0, two.1, two.2];
    assert_eq!(
        all.iter().collect::<std::collections::BTreeSet<_>>().len(),
        6,
        "{all:?}"
    );
    assert!(one.1 >= 28015 && one.2 >= 29015, "{one:?}");
    // Initialising again keeps the ports the server has.
    agent.ok(&["initialize", "coop-1", "-f", "-"], Some(SPEC));
    assert_eq!(ports("coop-1"), one);
    // Another server's client port is taken, and so is a port in use on this host.
    check_refused(
        &agent,
        &["initialize", "coop-3", "-f", "-"],
        Some(&SPEC.replace("27015", &one.1.to_string())),
        2,
        &format!("spec: port {} is already used by server \"coop-1\"", one.1),
    );
    let busy = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let busy = busy.local_addr().unwrap().port();
    check_refused(
        &agent,
        &["initialize", "coop-3", "-f", "-"],
        Some(&SPEC.replace("27015", &format!("27017\ntv_port: {busy}"))),
        2,
        &format!("spec: port {busy} is in use on this host (a UDP socket of uid"),
    );
}
