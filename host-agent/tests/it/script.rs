//! `overlay script` and `fetch`: a script fills an overlay in an empty folder, and only
//! a successful one replaces what the overlay held.

use crate::commands::Agent;

fn records(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const GOOD: &str = r#"set -eu
echo "filling $LEFT4ME_OVERLAY_NAME"
test "$PWD" = "$LEFT4ME_OVERLAY_DIR"
test -z "$(ls -A)"
mkdir -p left4dead2/cfg
printf 'sv_cheats 0\n' > left4dead2/cfg/extra.cfg
env | sort > env.txt
echo "to stderr" >&2
"#;

#[test]
fn a_script_fills_an_overlay_in_an_empty_folder_with_a_documented_environment() {
    let agent = Agent::new();
    let out = agent.ok(&["--json", "overlay", "script", "cfgs"], Some(GOOD));
    let all = records(&out);
    let lines: Vec<(String, String)> = all
        .iter()
        .filter(|r| r["type"] == "script_line")
        .map(|r| {
            (
                r["stream"].as_str().unwrap().to_owned(),
                r["line"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        lines.contains(&("stdout".into(), "filling cfgs".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("stderr".into(), "to stderr".into())),
        "{lines:?}"
    );
    assert_eq!(all.last().unwrap()["type"], "overlay_filled");
    assert_eq!(all.last().unwrap()["pending"], false);
    let overlay = agent.root().join("overlays/cfgs");
    assert_eq!(
        std::fs::read_to_string(overlay.join("left4dead2/cfg/extra.cfg")).unwrap(),
        "sv_cheats 0\n"
    );
    // The whole environment: what the documentation promises, nothing inherited.
    let env = std::fs::read_to_string(overlay.join("env.txt")).unwrap();
    let names: Vec<&str> = env
        .lines()
        .map(|l| l.split('=').next().unwrap())
        .filter(|n| *n != "PWD" && *n != "SHLVL" && *n != "OLDPWD" && *n != "_")
        .collect();
    assert_eq!(
        names,
        [
            "HOME",
            "LANG",
            "LEFT4ME_AGENT",
            "LEFT4ME_GAME_DIR",
            "LEFT4ME_OVERLAY_DIR",
            "LEFT4ME_OVERLAY_NAME",
            "PATH",
            "TMPDIR"
        ]
    );
    // Nothing is left beside the overlay.
    let mut beside: Vec<String> = std::fs::read_dir(agent.root().join("overlays"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    beside.sort();
    assert_eq!(beside, ["cfgs"]);
}

#[test]
fn a_failing_slow_or_escaping_script_leaves_the_overlay_as_it_was() {
    let agent = Agent::new();
    agent.ok(
        &["overlay", "script", "cfgs"],
        Some("mkdir -p left4dead2 && echo v1 > left4dead2/version.txt\n"),
    );
    let before = agent.files();
    let check = |script: &str, args: &[&str], code: i32, expect: &str| {
        let mut all = vec!["overlay", "script", "cfgs"];
        all.extend_from_slice(args);
        let out = agent.run(&all, Some(script));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{script}: {stderr}");
        assert!(
            stderr.contains(expect),
            "{script}: expected {expect:?} in {stderr}"
        );
        assert_eq!(agent.files(), before, "{script} changed something");
    };
    check(
        "echo partial > half.txt\nexit 3\n",
        &[],
        1,
        "the script failed (exit code 3); the overlay is unchanged",
    );
    check(
        "echo started\nsleep 30 &\nsleep 30\n",
        &["--timeout", "1"],
        1,
        "ran longer than its limit of 1 s and was stopped",
    );
    check(
        "ln -s /etc/shadow leak\n",
        &[],
        2,
        "links pointing outside the overlay are refused",
    );
    check(
        "head -c 5000 /dev/zero > big.bin\n",
        &["--max-bytes", "4096"],
        2,
        "more than 4096 bytes",
    );
    check("", &[], 2, "the script on stdin is empty");
    assert_eq!(
        std::fs::read_to_string(agent.root().join("overlays/cfgs/left4dead2/version.txt")).unwrap(),
        "v1\n"
    );
    // The background sleep of the slow script was stopped with it.
    let running = std::process::Command::new("pgrep")
        .args(["-f", "^sleep 30$"])
        .output()
        .unwrap();
    assert!(
        running.stdout.is_empty(),
        "the script's children outlived its time limit"
    );
}

#[test]
fn fetch_downloads_whole_files_for_scripts() {
    let agent = Agent::new();
    let server = testkit::FileServer::start(
        "127.0.0.1",
        "/drop/file.tar.gz",
        Some(b"tarball bytes".to_vec()),
    );
    let target = agent.root().join("got.tar.gz");
    agent.ok(&["fetch", &server.url, target.to_str().unwrap()], None);
    assert_eq!(std::fs::read(&target).unwrap(), b"tarball bytes");
    let missing = testkit::FileServer::start("127.0.0.1", "/nothing", None);
    let out = agent.run(
        &[
            "fetch",
            &missing.url,
            agent.root().join("x").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 404"));
    assert!(!agent.root().join("x").exists() && !agent.root().join(".x.part").exists());
}
