//! `install` on this machine against a temporary `--root`, with the stand-in steamcmd: the
//! two-pass workaround, progress, build ids, and steamcmd's own words on failure.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The stand-in steamcmd that `cargo xtask agent` built beside the static agent.
fn stand_in_steamcmd() -> PathBuf {
    PathBuf::from(std::env::var_os("L4D2_AGENT_STATIC").expect(
        "L4D2_AGENT_STATIC names the binary from `cargo xtask agent` (run `cargo xtask test`)",
    ))
    .with_file_name("steamcmd")
}

fn install(root: &Path, steamcmd: &Path, extra: &[&str], build: &str) -> Output {
    install_command(root, steamcmd, extra, build)
        .output()
        .unwrap()
}

/// A shell script standing in for steamcmd, executable.
fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `install` with the stand-in's pauses off and the build id it reports.
fn install_command(root: &Path, steamcmd: &Path, extra: &[&str], build: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_l4d2-agent"));
    command
        .arg("--root")
        .arg(root)
        .arg("install")
        .arg("--steamcmd")
        .arg(steamcmd)
        .args(extra)
        .env("STAND_IN_STEAMCMD_STEP_MS", "0")
        .env("STAND_IN_STEAMCMD_BUILDID", build);
    command
}

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn progress_arrives_as_steamcmd_prints_it_though_steamcmd_block_buffers_a_pipe() {
    let root = tempfile::tempdir().unwrap();
    let release = root.path().join("release");
    let mut agent = install_command(root.path(), &stand_in_steamcmd(), &["--json"], "100")
        .env("STAND_IN_STEAMCMD_HOLD", &release)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // steamcmd prints one progress line and then waits: that line must reach the agent's
    // output on its own, not once steamcmd has printed 4 KiB or exited.
    let rx = testkit::lines_of(agent.stdout.take().unwrap());
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .map(|line| line.contains("\"type\":\"install_progress\""));
    std::fs::write(&release, b"").unwrap();
    let status = agent.wait().unwrap();
    assert_eq!(first, Ok(true), "no progress while steamcmd was held");
    assert!(status.success());
    let rest: Vec<String> = rx.iter().collect();
    assert!(
        rest.last()
            .is_some_and(|l| l.contains("\"type\":\"installed\"")),
        "{rest:?}"
    );
}

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn anonymous_install_takes_two_passes_and_records_the_build() {
    let root = tempfile::tempdir().unwrap();
    let out = install(root.path(), &stand_in_steamcmd(), &["--json"], "100");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let platforms: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "install_progress")
        .map(|r| r["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms.first(), Some(&"windows"));
    assert_eq!(platforms.last(), Some(&"linux"));
    assert_eq!(
        records.last().unwrap(),
        &serde_json::json!({"v": 1, "type": "installed", "build": "100", "previous_build": null, "changed": true, "steam_client": true})
    );
    assert!(root.path().join("installation/srcds_run").is_file());
    // steamcmd's Steam client library is in the install, where the game's home has it.
    assert_eq!(
        std::fs::read(root.path().join("installation/.steam/sdk32/steamclient.so")).unwrap(),
        b"stand-in steamclient.so\n"
    );

    // A new build: people read what it means.
    let out = install(root.path(), &stand_in_steamcmd(), &[], "101");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[pass 1/2 windows] downloading"), "{text}");
    assert!(
        text.ends_with("updated build 100 to 101: servers pick it up at their next restart\n"),
        "{text}"
    );
}

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn a_failing_steamcmd_is_reported_in_its_own_words() {
    let root = tempfile::tempdir().unwrap();
    // A steamcmd whose Windows pass only claims success (and leaves a manifest saying so), so
    // the Linux pass meets "Invalid platform".
    let wrapper = root.path().join("steamcmd-without-windows");
    write_script(
        &wrapper,
        &format!(
            "#!/bin/sh\ncase \"$*\" in *windows*)\n\
             for a; do [ \"$prev\" = +force_install_dir ] && d=$a; prev=$a; done\n\
             mkdir -p \"$d/steamapps\"\n\
             printf '\"AppState\"\\n{{\\n\\t\"StateFlags\"\\t\\t\"4\"\\n}}\\n' > \"$d/steamapps/appmanifest_222860.acf\"\n\
             echo \"Success! App '222860' fully installed.\"; exit 0;; esac\nexec {} \"$@\"\n",
            stand_in_steamcmd().display()
        ),
    );
    let out = install(root.path(), &wrapper, &[], "100");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "l4d2-agent: steamcmd failed (linux pass): ERROR! Failed to install app '222860' (Invalid platform)\n"
    );
    assert!(!root.path().join("installation/srcds_run").exists());
}

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn a_steamcmd_that_crashes_on_its_way_out_after_success_still_installs() {
    let root = tempfile::tempdir().unwrap();
    let out = install_command(root.path(), &stand_in_steamcmd(), &["--json"], "102")
        .env("STAND_IN_STEAMCMD_CRASH_AT_EXIT", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().last().is_some_and(
            |l| l.contains("\"type\":\"installed\"") && l.contains("\"build\":\"102\"")
        ),
        "{text}"
    );
}

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn a_steamcmd_that_fails_without_a_reason_is_reported_with_its_last_lines() {
    let root = tempfile::tempdir().unwrap();
    let odd = root.path().join("odd-steamcmd");
    write_script(
        &odd,
        "#!/bin/sh\necho 'Loading Steam API...OK'\necho 'Something unexpected happened'\nexit 3\n",
    );
    let out = install(root.path(), &odd, &[], "100");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "l4d2-agent: steamcmd failed (windows pass): it exited with exit status: 3 without \
         reporting success; its last lines: Loading Steam API...OK | Something unexpected happened\n"
    );
}

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn an_install_without_an_executable_srcds_linux_is_refused() {
    let root = tempfile::tempdir().unwrap();
    // A steamcmd that finishes, but leaves the engine binary without its execute bit.
    let wrapper = root.path().join("steamcmd-losing-modes");
    write_script(
        &wrapper,
        &format!(
            "#!/bin/sh\n{} \"$@\" || exit $?\nchmod -x {}/installation/srcds_linux 2>/dev/null\nexit 0\n",
            stand_in_steamcmd().display(),
            root.path().display()
        ),
    );
    let out = install(root.path(), &wrapper, &[], "100");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "l4d2-agent: steamcmd reported success, but the install's srcds_linux is not executable: \
         run the install again with --validate, which has steamcmd check every file\n"
    );
}
