//! `install` on this machine against a temporary `--root`, with the stand-in steamcmd:
//! the platform workaround only when Steam asks for it, progress, build ids, Steam Guard and
//! a cached login, retries, and every failure classified in its own words.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh stand-in steamcmd folder in `root` (it updates itself on its first run, as the
/// real one does), with the stand-in Steam set up by `steam` (see `stand_ins::steam`).
fn stand_in_steamcmd(root: &Path, steam: &str) -> PathBuf {
    let script = testkit::steamcmd_tree(&root.join("steamcmd"));
    std::fs::write(root.join("steamcmd/stand-in-steam.conf"), steam).unwrap();
    script
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
        .env("HOME", root)
        .env("STAND_IN_STEAMCMD_STEP_MS", "0")
        .env("STAND_IN_STEAMCMD_BUILDID", build);
    command
}

/// A login file as admins write it: private, one value per line.
fn login_file(root: &Path, lines: &str) -> PathBuf {
    let path = root.join(format!("login-{}.txt", lines.len()));
    std::fs::write(&path, lines).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The JSON records of an `install --json` run.
fn records(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The error code of the run's last record.
fn error_code(out: &Output) -> String {
    let records = records(out);
    let last = records.last().expect("a last record");
    assert_eq!(last["type"], "error", "{last}");
    last["code"].as_str().unwrap().to_owned()
}

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn progress_arrives_as_steamcmd_prints_it_though_steamcmd_block_buffers_a_pipe() {
    let root = tempfile::tempdir().unwrap();
    let release = root.path().join("release");
    let steamcmd = stand_in_steamcmd(root.path(), "");
    let mut agent = install_command(root.path(), &steamcmd, &["--json"], "100")
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
fn anonymous_installs_take_the_windows_pass_only_when_steam_asks_and_updates_go_linux_only() {
    let root = tempfile::tempdir().unwrap();
    let steamcmd = stand_in_steamcmd(root.path(), "");
    let out = install(root.path(), &steamcmd, &["--json"], "100");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = records(&out);
    let passes: Vec<(u64, &str)> = records
        .iter()
        .filter(|r| r["type"] == "install_progress")
        .map(|r| (r["pass"].as_u64().unwrap(), r["platform"].as_str().unwrap()))
        .collect();
    assert_eq!(
        passes.first(),
        Some(&(1, "linux")),
        "refused: Invalid platform"
    );
    assert!(passes.contains(&(2, "windows")));
    assert_eq!(passes.last(), Some(&(3, "linux")));
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "install_notice" && r["kind"] == "platform_workaround")
    );
    assert_eq!(
        records.last().unwrap(),
        &serde_json::json!({"v": 1, "type": "installed", "build": "100", "previous_build": null, "changed": true, "steam_client": true, "pending": false})
    );
    assert!(root.path().join("installation/srcds_run").is_file());
    // steamcmd's Steam client library is in the install, where the game's home has it.
    assert_eq!(
        std::fs::read(root.path().join("installation/.steam/sdk32/steamclient.so")).unwrap(),
        b"stand-in steamclient.so\n"
    );

    // A new build over an install that has the Linux files: one Linux pass, and people
    // read what it means.
    let out = install(root.path(), &steamcmd, &[], "101");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[pass 1/1 linux] downloading"), "{text}");
    assert!(!text.contains("windows"), "{text}");
    assert!(
        text.ends_with("updated build 100 to 101: servers pick it up at their next restart\n"),
        "{text}"
    );
}

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn a_refusal_is_classified_and_explained_in_steams_terms() {
    let root = tempfile::tempdir().unwrap();
    let steamcmd = stand_in_steamcmd(root.path(), "");
    // A steamcmd whose Windows pass only claims success (and leaves a manifest saying so), so
    // every Linux pass meets "Invalid platform".
    let wrapper = root.path().join("steamcmd-without-windows");
    write_script(
        &wrapper,
        &format!(
            "#!/bin/sh\ncase \"$*\" in *windows*)\n\
             for a; do [ \"$prev\" = +force_install_dir ] && d=$a; prev=$a; done\n\
             mkdir -p \"$d/steamapps\"\n\
             printf '\"AppState\"\\n{{\\n\\t\"StateFlags\"\\t\\t\"4\"\\n}}\\n' > \"$d/steamapps/appmanifest_222860.acf\"\n\
             echo \"Success! App '222860' fully installed.\"; exit 0;; esac\nexec {} \"$@\"\n",
            steamcmd.display()
        ),
    );
    let out = install(root.path(), &wrapper, &[], "100");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "l4d2-agent: Steam refuses anonymous Linux installs of the L4D2 server (Invalid \
         platform); log in with a Steam account that owns L4D2\n"
    );
    let out = install(root.path(), &wrapper, &["--json"], "100");
    assert_eq!(error_code(&out), "steam_invalid_platform");
    assert!(!root.path().join("installation/srcds_run").exists());
}

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn a_steamcmd_that_crashes_on_its_way_out_after_success_still_installs() {
    let root = tempfile::tempdir().unwrap();
    let steamcmd = stand_in_steamcmd(root.path(), "account owner pw\n");
    let login = login_file(root.path(), "owner\npw\n");
    let out = install_command(
        root.path(),
        &steamcmd,
        &["--json", "--steam-login-file", login.to_str().unwrap()],
        "102",
    )
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
        "#!/bin/sh\necho 'Loading Steam API...OK'\necho 'login owner hunter2'\necho 'Something unexpected happened'\nexit 3\n",
    );
    let out = install(root.path(), &odd, &[], "100");
    assert_eq!(out.status.code(), Some(1));
    // The echoed login is left out of what is shown.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "l4d2-agent: steamcmd exited with status 3 without reporting success; its last lines: \
         Loading Steam API...OK | Something unexpected happened\n"
    );
    let out = install(root.path(), &odd, &["--json"], "100");
    assert_eq!(error_code(&out), "steamcmd_failed");
}

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn an_install_without_an_executable_srcds_linux_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let steamcmd = stand_in_steamcmd(root.path(), "");
    // A steamcmd that finishes, but leaves the engine binary without its execute bit.
    let wrapper = root.path().join("steamcmd-losing-modes");
    write_script(
        &wrapper,
        &format!(
            "#!/bin/sh\n{} \"$@\" || exit $?\nchmod -x {}/installation/srcds_linux 2>/dev/null\nexit 0\n",
            steamcmd.display(),
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

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn steam_guard_asks_for_a_code_once_and_the_cached_login_needs_only_the_name() {
    let root = tempfile::tempdir().unwrap();
    let password = "correct-horse-7f3a";
    let steamcmd = stand_in_steamcmd(
        root.path(),
        &format!("account owner {password} guard=email code=4H7KQ\n"),
    );
    let first = login_file(root.path(), &format!("owner\n{password}\n"));
    fn login(file: &Path) -> [&str; 3] {
        ["--json", "--steam-login-file", file.to_str().unwrap()]
    }
    let out = install(root.path(), &steamcmd, &login(&first), "100");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(error_code(&out), "steam_guard_code_needed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("the code it e-mailed to the account's owner"),
        "{text}"
    );
    assert!(!text.contains(password) && !String::from_utf8_lossy(&out.stderr).contains(password));
    assert!(!root.path().join("installation/srcds_run").exists());

    let wrong = login_file(root.path(), &format!("owner\n{password}\nZZZZZ\n"));
    let out = install(root.path(), &steamcmd, &login(&wrong), "100");
    assert_eq!(error_code(&out), "steam_guard_code_rejected");

    let with_code = login_file(root.path(), &format!("owner\n{password}\n4H7KQ\n"));
    let out = install(root.path(), &steamcmd, &login(&with_code), "100");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The login was made in one Linux pass, and steamcmd keeps it in its own folder.
    assert!(
        records(&out)
            .iter()
            .filter(|r| r["type"] == "install_progress")
            .all(|r| r["passes"] == 1)
    );
    assert!(root.path().join("steamcmd/config/config.vdf").is_file());

    // From now on the account name is enough.
    let name_only = login_file(root.path(), "owner\n");
    let out = install(root.path(), &steamcmd, &login(&name_only), "101");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Once steamcmd is told to forget it, the name alone is refused before steamcmd runs.
    let forget = |root: &Path| {
        Command::new(env!("CARGO_BIN_EXE_l4d2-agent"))
            .arg("--root")
            .arg(root)
            .args(["forget-steam-login", "--json", "--steamcmd"])
            .arg(&steamcmd)
            .env("HOME", root)
            .output()
            .unwrap()
    };
    let out = forget(root.path());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"changed\":true"),
        "{out:?}"
    );
    assert!(!root.path().join("steamcmd/config/config.vdf").exists());
    assert!(String::from_utf8_lossy(&forget(root.path()).stdout).contains("\"changed\":false"));
    let out = install(root.path(), &steamcmd, &login(&name_only), "101");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("no saved login for 'owner'; give the password too"),
        "{out:?}"
    );
}

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn a_login_waiting_for_approval_in_the_steam_app_is_told_and_bounded() {
    let root = tempfile::tempdir().unwrap();
    let steamcmd = stand_in_steamcmd(
        root.path(),
        "account owner pw guard=mobile approve-after=1500\naccount other pw guard=mobile approve-after=never\n",
    );
    let owner = login_file(root.path(), "owner\npw\n");
    let out = install(
        root.path(),
        &steamcmd,
        &["--json", "--steam-login-file", owner.to_str().unwrap()],
        "100",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let kinds: Vec<String> = records(&out)
        .iter()
        .filter(|r| r["type"] == "install_notice")
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["waiting_for_approval", "approved"]);

    // Never approved: ended after the approval timeout, and steamcmd with it.
    let other = login_file(root.path(), "other\npw\n");
    let out = install(
        root.path(),
        &steamcmd,
        &[
            "--json",
            "--approval-timeout",
            "2",
            "--steam-login-file",
            other.to_str().unwrap(),
        ],
        "100",
    );
    assert_eq!(error_code(&out), "steam_guard_not_confirmed");
    let left = Command::new("pgrep")
        .args(["-f", "steamcmd_stand_in"])
        .output()
        .unwrap();
    let ours = String::from_utf8_lossy(&left.stdout)
        .lines()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.contains(&root.path().display().to_string()))
        })
        .count();
    assert_eq!(ours, 0, "steamcmd outlived the install");
}

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn network_failures_are_retried_and_others_are_not() {
    let root = tempfile::tempdir().unwrap();
    let steamcmd = stand_in_steamcmd(
        root.path(),
        "account owner pw\nfail update 0x602 1\nfail login rate-limit 1\n",
    );
    let owner = login_file(root.path(), "owner\npw\n");
    let args = ["--json", "--steam-login-file", owner.to_str().unwrap()];
    // The rate limit comes first: not retried (it would only make it last longer).
    let out = install(root.path(), &steamcmd, &args, "100");
    assert_eq!(error_code(&out), "steam_rate_limited");
    let last = records(&out).pop().unwrap();
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("wait about 30 minutes"),
        "{last}"
    );
    // Then 0x602 once: retried, and the install completes.
    let out = install(root.path(), &steamcmd, &args, "100");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let retry = records(&out)
        .into_iter()
        .find(|r| r["type"] == "install_notice" && r["kind"] == "retrying")
        .expect("a retry notice");
    assert!(
        retry["message"]
            .as_str()
            .unwrap()
            .contains("state is 0x602 after update job"),
        "{retry}"
    );
}

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn a_small_disk_and_a_silent_steamcmd_are_reported_as_such() {
    let root = tempfile::tempdir().unwrap();
    let steamcmd = stand_in_steamcmd(root.path(), "account owner pw\ndisk-free 1000\n");
    let owner = login_file(root.path(), "owner\npw\n");
    let out = install(
        root.path(),
        &steamcmd,
        &["--json", "--steam-login-file", owner.to_str().unwrap()],
        "100",
    );
    assert_eq!(error_code(&out), "disk_full");
    let message = records(&out).pop().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(" free in ") && message.contains("and the game needs 8.3 GiB"),
        "{message}"
    );

    let quiet = root.path().join("quiet-steamcmd");
    write_script(
        &quiet,
        "#!/bin/sh\necho 'Loading Steam API...OK'\nsleep 60\n",
    );
    let out = install(
        root.path(),
        &quiet,
        &["--json", "--silence-timeout", "1"],
        "100",
    );
    assert_eq!(error_code(&out), "steamcmd_silent");
}

#[test]
#[ignore = "needs the stand-in steamcmd from `cargo xtask agent`: run `cargo xtask test`"]
fn an_update_check_sees_a_new_public_build_through_steamcmds_stale_cache() {
    let root = tempfile::tempdir().unwrap();
    let steamcmd = stand_in_steamcmd(root.path(), "");
    let check = |build: &str, json: bool| {
        let mut args = vec!["--check"];
        if json {
            args.push("--json");
        }
        install(root.path(), &steamcmd, &args, build)
    };
    let out = check("100", false);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "the game is not installed; Steam's public build is 100\n"
    );
    // Nothing was installed by the check.
    assert!(!root.path().join("installation/srcds_run").exists());
    assert!(install(root.path(), &steamcmd, &[], "100").status.success());
    assert_eq!(
        String::from_utf8_lossy(&check("100", false).stdout),
        "build 100 is the public build: up to date\n"
    );
    // A new build is published; steamcmd's own cache still names 100, and the check
    // clears it first.
    assert!(root.path().join("steamcmd/appcache/appinfo.vdf").is_file());
    let out = check("101", true);
    assert_eq!(
        records(&out).pop().unwrap(),
        serde_json::json!({"v": 1, "type": "update_check", "installed_build": "100", "public_build": "101", "update_available": true})
    );
    // And the install is as it was.
    let manifest = std::fs::read_to_string(
        root.path()
            .join("installation/steamapps/appmanifest_222860.acf"),
    )
    .unwrap();
    assert!(manifest.contains("\"buildid\"\t\t\"100\""), "{manifest}");
}
