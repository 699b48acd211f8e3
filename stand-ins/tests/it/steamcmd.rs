use super::{Steamcmd, install};
use std::io::Write;
use std::process::Stdio;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The usual start of a command line: settings as the agent gives them and an install folder.
fn args(steamcmd: &Steamcmd, rest: &str) -> String {
    format!(
        "+@ShutdownOnFailedCommand 1 +@NoPromptForPassword 1 +force_install_dir {} {rest}",
        steamcmd.root().join("game").display()
    )
}

/// A login script, as the agent passes credentials: never on the command line.
fn login_script(steamcmd: &Steamcmd, line: &str) -> String {
    let script = steamcmd
        .root()
        .join(format!("login-{}.txt", line.replace(' ', "-")));
    std::fs::write(&script, format!("{line}\n")).unwrap();
    format!("+runscript {}", script.display())
}

#[test]
fn the_launcher_is_a_bash_script_running_an_i386_program_that_carries_its_own_cxx_runtime() {
    let steamcmd = Steamcmd::fresh();
    let script = std::fs::read_to_string(steamcmd.script()).unwrap();
    assert!(script.starts_with("#!/bin/bash\n"), "{script}");
    let program = std::fs::read(steamcmd.root().join("linux32/steamcmd")).unwrap();
    assert_eq!(&program[..5], b"\x7fELF\x01", "a 32-bit ELF file");
    assert_eq!(u16::from_le_bytes([program[18], program[19]]), 3, "EM_386");
    // Like Valve's: the loader, libc and libgcc_s of the host (lib32gcc-s1), not its C++.
    for needed in [&b"/lib/ld-linux.so.2"[..], b"libgcc_s.so.1", b"libc.so.6"] {
        assert!(program.windows(needed.len()).any(|w| w == needed));
    }
    assert!(!program.windows(14).any(|w| w == b"libstdc++.so.6"));
}

#[test]
fn the_first_run_updates_steamcmd_which_exits_42_and_the_launcher_starts_it_again() {
    let steamcmd = Steamcmd::fresh();
    let out = steamcmd.run("+quit");
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("[----] Update complete, launching Steamcmd...\n"),
        "{text}"
    );
    // The launcher says so on stderr; its stdout line has no line break yet.
    assert!(
        text.contains("\nUpdateUI: skip show logoRedirecting stderr to '"),
        "{text}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("]: Restarting steamcmd by request..."),
        "{out:?}"
    );
    assert!(text.ends_with("Unloading Steam API...OK\n"), "{text}");
    assert!(steamcmd.root().join("linux32/steamclient.so").is_file());
    // Later runs go straight to work, with the noise the real one prints.
    let text = stdout(&steamcmd.run("+quit"));
    assert!(!text.contains("Downloading update"), "{text}");
    assert!(
        text.contains(
            "UpdateUI: skip show logoSteam Console Client (c) Valve Corporation - version "
        )
    );
    assert!(text.contains(
        "Loading Steam API...IPC function call IClientUtils::GetSteamRealm took too long: 52 msec\nOK\n"
    ));
}

#[test]
fn anonymous_linux_install_fails_with_invalid_platform() {
    let steamcmd = Steamcmd::fresh();
    let out = steamcmd.run(&args(
        &steamcmd,
        "+login anonymous +app_update 222860 validate +quit",
    ));
    assert_eq!(out.status.code(), Some(8));
    let text = stdout(&out);
    assert!(
        text.contains("ERROR! Failed to install app '222860' (Invalid platform)"),
        "{text}"
    );
    assert!(!steamcmd.root().join("game/srcds_run").exists());
}

#[test]
fn a_failed_command_still_exits_0_without_shutdown_on_failure() {
    // steamcmd's own quirk: callers must read its output, not only its exit status.
    let steamcmd = Steamcmd::fresh();
    let out = steamcmd.run(&format!(
        "+force_install_dir {} +login anonymous +app_update 222860 +quit",
        steamcmd.root().join("game").display()
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
    let steamcmd = Steamcmd::fresh();
    let out = steamcmd.run(&args(
        &steamcmd,
        "+@sSteamCmdForcePlatformType windows +login anonymous +app_update 222860 +quit",
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
    assert!(text.contains("\"@sSteamCmdForcePlatformType\" = \"windows\"\n"));
    assert!(text.contains(" Update state (0x101) committing, progress: 0.00 (0 / 8915324133)\n"));
    assert!(text.contains("Success! App '222860' fully installed."));
}

#[test]
fn an_account_that_owns_the_game_installs_in_one_pass_and_its_login_is_cached() {
    let steamcmd = Steamcmd::fresh();
    steamcmd.steam("account someadmin not-a-real-password\n");
    let login = login_script(&steamcmd, "login someadmin not-a-real-password");
    let out = steamcmd.run(&args(
        &steamcmd,
        &format!("{login} +app_update 222860 +quit"),
    ));
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Logging in using username/password.\nLogging in user 'someadmin' [U:1:")
    );
    assert!(text.contains(
        "] to Steam Public...OK\nWaiting for client config...OK\nWaiting for user info...OK\n"
    ));
    // The script's commands are echoed, the password with them: whoever reads steamcmd's
    // output must keep it to itself.
    assert!(text.contains("\nlogin someadmin not-a-real-password\n"));
    assert!(steamcmd.root().join("game/srcds_run").is_file());
    assert!(
        std::fs::read_to_string(steamcmd.root().join("config/config.vdf"))
            .unwrap()
            .contains("\"someadmin\"")
    );

    // The name alone will do from now on, until the cache is gone.
    let name_only = login_script(&steamcmd, "login someadmin");
    let out = steamcmd.run(&args(
        &steamcmd,
        &format!("{name_only} +app_update 222860 +quit"),
    ));
    assert!(out.status.success());
    assert!(stdout(&out).contains("Logging in using cached credentials.\n"));
    std::fs::remove_file(steamcmd.root().join("config/config.vdf")).unwrap();
    let out = steamcmd.run(&args(
        &steamcmd,
        &format!("{name_only} +app_update 222860 +quit"),
    ));
    assert_eq!(out.status.code(), Some(5));
    assert!(stdout(&out).contains(
        "Cached credentials not found.\nLogging in user 'someadmin' [U:1:0] to Steam Public...FAILED (Invalid Password)\n"
    ));
}

#[test]
fn a_wrong_password_and_a_rate_limit_end_the_login_line_and_exit_5() {
    let steamcmd = Steamcmd::fresh();
    steamcmd.steam("account alice right\nfail login rate-limit 1\n");
    let login = login_script(&steamcmd, "login alice wrong");
    let out = steamcmd.run(&args(
        &steamcmd,
        &format!("{login} +app_update 222860 +quit"),
    ));
    assert_eq!(out.status.code(), Some(5));
    assert!(stdout(&out).contains("to Steam Public...ERROR (Rate Limit Exceeded)\n"));
    let out = steamcmd.run(&args(
        &steamcmd,
        &format!("{login} +app_update 222860 +quit"),
    ));
    assert_eq!(out.status.code(), Some(5));
    assert!(stdout(&out).contains("to Steam Public...FAILED (Invalid Password)\n"));
}

#[test]
fn steam_guard_by_email_asks_for_the_code_at_a_prompt_without_a_line_break() {
    let steamcmd = Steamcmd::fresh();
    steamcmd.steam("account alice pw guard=email code=4H7KQ\n");
    let login = login_script(&steamcmd, "login alice pw");
    // Nobody to answer: the prompt, then the refusal on the same line.
    let out = steamcmd.run(&args(
        &steamcmd,
        &format!("{login} +app_update 222860 +quit"),
    ));
    assert_eq!(out.status.code(), Some(5));
    let text = stdout(&out);
    assert!(text.contains(
        "to Steam Public...\nThis computer has not been authenticated for your account using Steam Guard.\n"
    ), "{text}");
    assert!(
        text.contains("\nSteam Guard code:FAILED (Account Logon Denied)\n"),
        "{text}"
    );

    // A wrong code given with the login is refused and asked again.
    let wrong = login_script(&steamcmd, "login alice pw AAAAA");
    let text = stdout(&steamcmd.run(&args(
        &steamcmd,
        &format!("{wrong} +app_update 222860 +quit"),
    )));
    assert!(text.contains("Steam Guard code provided.\n"));
    assert!(
        text.contains("That Steam Guard code was invalid.\nPlease check your email"),
        "{text}"
    );

    // Typed at the prompt, where the real one reads it.
    let mut child = steamcmd
        .command(&format!(
            "+@ShutdownOnFailedCommand 1 +force_install_dir {} {login} +app_update 222860 +quit",
            steamcmd.root().join("game").display()
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"4H7KQ\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("Success! App '222860' fully installed."));
    // Cached now: no code is asked again.
    let text = stdout(&steamcmd.run(&args(
        &steamcmd,
        &format!("{login} +app_update 222860 +quit"),
    )));
    assert!(!text.contains("Steam Guard"), "{text}");
}

#[test]
fn an_authenticator_code_is_asked_for_and_a_mismatch_refused() {
    let steamcmd = Steamcmd::fresh();
    steamcmd.steam("account bob pw guard=twofactor code=77777\n");
    let login = login_script(&steamcmd, "login bob pw");
    let text = stdout(&steamcmd.run(&args(
        &steamcmd,
        &format!("{login} +app_update 222860 +quit"),
    )));
    assert!(text.contains(
        "Enter the current code from your Steam Guard Mobile Authenticator app\nTwo-factor code:FAILED (Account logon denied, need two-factor code)\n"
    ), "{text}");
    let wrong = login_script(&steamcmd, "login bob pw 12345");
    let out = steamcmd.run(&args(
        &steamcmd,
        &format!("{wrong} +app_update 222860 +quit"),
    ));
    assert_eq!(out.status.code(), Some(5));
    assert!(stdout(&out).contains("to Steam Public...FAILED (Two-factor code mismatch)\n"));
    let right = login_script(&steamcmd, "login bob pw 77777");
    assert!(
        steamcmd
            .run(&args(
                &steamcmd,
                &format!("{right} +app_update 222860 +quit")
            ))
            .status
            .success()
    );
}

#[test]
fn a_mobile_confirmation_is_waited_for() {
    let steamcmd = Steamcmd::fresh();
    steamcmd.steam("account carol pw guard=mobile approve-after=1200\n");
    let login = login_script(&steamcmd, "login carol pw");
    let out = steamcmd.run(&args(
        &steamcmd,
        &format!("{login} +app_update 222860 +quit"),
    ));
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(
        "to Steam Public...This account is protected by a Steam Guard mobile authenticator.\nPlease confirm the login in the Steam Mobile app on your phone.\n\nWaiting for confirmation...\n"
    ), "{text}");
    assert!(
        text.contains("\nWaiting for confirmation...OK\nWaiting for client config...OK\n"),
        "{text}"
    );
}

#[test]
fn a_transient_0x602_clears_on_the_next_run_and_a_small_disk_ends_in_0x202() {
    let steamcmd = Steamcmd::fresh();
    steamcmd.steam("account alice pw\nfail update 0x602 1\n");
    let login = login_script(&steamcmd, "login alice pw");
    let run = || {
        steamcmd.run(&args(
            &steamcmd,
            &format!("{login} +app_update 222860 +quit"),
        ))
    };
    let out = run();
    assert_eq!(out.status.code(), Some(8));
    assert!(stdout(&out).contains("\nError! App '222860' state is 0x602 after update job.\n"));
    assert!(run().status.success());

    let small = Steamcmd::fresh();
    small.steam("account alice pw\ndisk-free 1000000\n");
    let login = login_script(&small, "login alice pw");
    let out = small.run(&args(&small, &format!("{login} +app_update 222860 +quit")));
    assert_eq!(out.status.code(), Some(8));
    assert!(stdout(&out).contains("\nError! App '222860' state is 0x202 after update job.\n"));
}

#[test]
fn app_info_print_names_the_public_build_from_a_cache_that_goes_stale() {
    let steamcmd = Steamcmd::fresh();
    steamcmd.steam("build 100\n");
    let check = "+login anonymous +app_info_update 1 +app_info_print 222860 +quit";
    let text = stdout(&steamcmd.run(check));
    assert!(text.contains("AppID : 222860, change number : "), "{text}");
    assert!(
        text.contains(
            "\t\t\"branches\"\n\t\t{\n\t\t\t\"public\"\n\t\t\t{\n\t\t\t\t\"buildid\"\t\t\"100\"\n"
        ),
        "{text}"
    );
    // Published anew: the cache still names the old build until it is removed.
    steamcmd.steam("build 101\n");
    assert!(stdout(&steamcmd.run(check)).contains("\"buildid\"\t\t\"100\""));
    std::fs::remove_file(steamcmd.root().join("appcache/appinfo.vdf")).unwrap();
    assert!(stdout(&steamcmd.run(check)).contains("\"buildid\"\t\t\"101\""));
}

#[test]
fn a_crash_at_exit_after_success_is_reported_by_the_launcher_and_loses_the_buffered_output() {
    let steamcmd = Steamcmd::fresh();
    steamcmd.run("+quit");
    let out = steamcmd
        .command(&args(
            &steamcmd,
            "+@sSteamCmdForcePlatformType windows +login anonymous +app_update 222860 +quit",
        ))
        .env("STAND_IN_STEAMCMD_CRASH_AT_EXIT", "1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(139),
        "bash passes on the signal as 128 + 11"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Segmentation fault"),
        "{out:?}"
    );
    // The install is complete all the same.
    assert!(
        steamcmd
            .root()
            .join("game/steamapps/appmanifest_222860.acf")
            .is_file()
    );
}

#[test]
fn an_unchanged_build_is_already_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path());
    let steamcmd = Steamcmd::fresh();
    let out = steamcmd.run(&format!(
        "+force_install_dir {} +login anonymous +app_update 222860 +quit",
        dir.path().display()
    ));
    assert!(stdout(&out).contains("Success! App '222860' already up to date."));
}

#[test]
fn on_a_pipe_progress_waits_for_4_kib_and_exit_writes_it_out() {
    use std::io::Read;
    let steamcmd = Steamcmd::fresh();
    steamcmd.run("+quit");
    let release = steamcmd.root().join("release");
    let mut child = steamcmd
        .command(&format!(
            "+@sSteamCmdForcePlatformType windows +force_install_dir {} +login anonymous +app_update 222860 +quit",
            steamcmd.root().join("server").display()
        ))
        .env("STAND_IN_STEAMCMD_HOLD", &release)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Held after its first progress line: a few hundred bytes printed, none of them on the
    // pipe yet.
    let held = steamcmd.root().join("release.held");
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

#[test]
fn a_download_writes_its_bytes_into_the_pak_files_and_a_second_platform_keeps_them() {
    let steamcmd = Steamcmd::fresh();
    let bytes = (256 << 20) + 3 * (1 << 20);
    steamcmd.steam(&format!("download {bytes} 1073741824\n"));
    let game = steamcmd.root().join("game");
    let pass = |platform: &str| {
        let out = steamcmd.run(&args(
            &steamcmd,
            &format!(
                "+@sSteamCmdForcePlatformType {platform} +login anonymous +app_update 222860 +quit"
            ),
        ));
        let text = stdout(&out);
        assert!(out.status.success(), "{text}");
        text
    };
    let text = pass("windows");
    assert!(
        text.contains(&format!(
            " Update state (0x61) downloading, progress: 100.00 ({bytes} / {bytes})"
        )),
        "{text}"
    );
    let paks = game.join("left4dead2");
    let sizes = || {
        (
            std::fs::metadata(paks.join("pak01_000.vpk")).unwrap().len(),
            std::fs::metadata(paks.join("pak01_001.vpk")).unwrap().len(),
        )
    };
    assert_eq!(sizes(), (256 << 20, 3 << 20));
    // Bytes that do not compress, as the real content: no run of zeros.
    let head = std::fs::read(paks.join("pak01_001.vpk")).unwrap();
    assert!(!head.windows(64).any(|w| w.iter().all(|b| *b == 0)));
    let modified = std::fs::metadata(paks.join("pak01_000.vpk"))
        .unwrap()
        .modified()
        .unwrap();
    pass("linux");
    assert_eq!(sizes(), (256 << 20, 3 << 20));
    assert_eq!(
        std::fs::metadata(paks.join("pak01_000.vpk"))
            .unwrap()
            .modified()
            .unwrap(),
        modified,
        "the shared content is not fetched again"
    );
}
