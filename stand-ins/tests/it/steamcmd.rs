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
