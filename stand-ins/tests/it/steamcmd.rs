use super::{install, steamcmd};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn anonymous_linux_install_fails_with_invalid_platform() {
    let dir = tempfile::tempdir().unwrap();
    let out = steamcmd(&format!(
        "+@ShutdownOnFailedCommand 1 +force_install_dir {} +login anonymous +app_update 222860 validate +quit",
        dir.path().display()
    ));
    assert_eq!(out.status.code(), Some(8));
    let text = stdout(&out);
    assert!(
        text.contains("ERROR! Failed to install app '222860' (Invalid platform)"),
        "{text}"
    );
    assert!(!dir.path().join("srcds_run").exists());
}

#[test]
fn a_failed_command_still_exits_0_without_shutdown_on_failure() {
    // steamcmd's own quirk: callers must read its output, not only its exit status.
    let dir = tempfile::tempdir().unwrap();
    let out = steamcmd(&format!(
        "+force_install_dir {} +login anonymous +app_update 222860 +quit",
        dir.path().display()
    ));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("(Invalid platform)"));
}

#[test]
fn two_pass_install_lays_out_a_runnable_tree() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path());
    let server = dir.path().join("srcds_run");
    use std::os::unix::fs::PermissionsExt;
    assert!(server.metadata().unwrap().permissions().mode() & 0o111 != 0);
    assert!(dir.path().join("left4dead2/maps/c1m1_hotel.bsp").is_file());
    // Launched as the real server is: a POSIX sh script, then an i386 program that needs
    // the 32-bit loader and C++ runtime, then the engine in bin/.
    let script = std::fs::read_to_string(&server).unwrap();
    assert!(script.starts_with("#!/bin/sh\n"), "{script}");
    assert!(script.contains("exec $HL $PARAMS"));
    let linux = std::fs::read(dir.path().join("srcds_linux")).unwrap();
    assert_eq!(&linux[..5], b"\x7fELF\x01", "a 32-bit ELF file");
    assert_eq!(
        u16::from_le_bytes([linux[18], linux[19]]),
        3,
        "for i386 (EM_386)"
    );
    for needed in [
        &b"/lib/ld-linux.so.2"[..],
        b"libstdc++.so.6",
        b"libgcc_s.so.1",
    ] {
        assert!(
            linux.windows(needed.len()).any(|w| w == needed),
            "srcds_linux names {}",
            String::from_utf8_lossy(needed)
        );
    }
    assert!(dir.path().join("bin/srcds_stand_in").is_file());
    let manifest =
        std::fs::read_to_string(dir.path().join("steamapps/appmanifest_222860.acf")).unwrap();
    assert!(
        manifest.contains("\"buildid\"\t\t\"16075386\""),
        "{manifest}"
    );
}

#[test]
fn progress_lines_have_steamcmds_format() {
    let dir = tempfile::tempdir().unwrap();
    let out = steamcmd(&format!(
        "+@sSteamCmdForcePlatformType windows +force_install_dir {} +login anonymous +app_update 222860 +quit",
        dir.path().display()
    ));
    let text = stdout(&out);
    let downloading: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(" Update state (0x61) downloading, progress: "))
        .collect();
    assert!(downloading.len() >= 10, "{text}");
    let last = downloading.last().unwrap();
    assert_eq!(
        *last,
        " Update state (0x61) downloading, progress: 100.00 (8915324133 / 8915324133)"
    );
    assert!(text.contains("Success! App '222860' fully installed."));
}

#[test]
fn an_account_that_owns_the_game_installs_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("login.txt");
    // Credentials in a script file, as the agent passes them: never on the command line.
    std::fs::write(&script, "login someadmin not-a-real-password\n").unwrap();
    let out = steamcmd(&format!(
        "+@ShutdownOnFailedCommand 1 +force_install_dir {} +runscript {} +app_update 222860 +quit",
        dir.path().join("server").display(),
        script.display()
    ));
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("Logging in user 'someadmin' to Steam Public..."));
    assert!(dir.path().join("server/srcds_run").is_file());
}

#[test]
fn an_unchanged_build_is_already_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path());
    let out = steamcmd(&format!(
        "+force_install_dir {} +login anonymous +app_update 222860 +quit",
        dir.path().display()
    ));
    assert!(stdout(&out).contains("Success! App '222860' already up to date."));
}

#[test]
fn on_a_pipe_progress_waits_for_4_kib_and_exit_writes_it_out() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_steamcmd"))
        .args(
            format!(
                "+@sSteamCmdForcePlatformType windows +force_install_dir {} +login anonymous +app_update 222860 +quit",
                dir.path().join("server").display()
            )
            .split_whitespace(),
        )
        .env("STAND_IN_STEAMCMD_STEP_MS", "0")
        .env("STAND_IN_STEAMCMD_HOLD", &release)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Held after its first progress line: a few hundred bytes printed, none of them on the
    // pipe yet.
    let held = dir.path().join("release.held");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !held.exists() {
        assert!(std::time::Instant::now() < deadline, "never held");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut stdout = child.stdout.take().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stdout);
    // SAFETY: makes our own pipe's end non-blocking.
    unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
    let mut buf = [0u8; 4096];
    let early = stdout.read(&mut buf);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "progress reached the pipe before 4 KiB gathered: {early:?}"
    );
    // SAFETY: back to blocking reads on our own pipe.
    unsafe { libc::fcntl(fd, libc::F_SETFL, 0) };
    std::fs::write(&release, b"").unwrap();
    let mut text = String::new();
    stdout.read_to_string(&mut text).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        text.contains(" Update state (0x61) downloading, progress: ")
            && text.ends_with("Unloading Steam API...OK\n"),
        "{text}"
    );
}
