//! An agent killed with SIGKILL in the middle of an operation leaves state that the next run
//! repairs: the same command run again converges to the same end state, with no leaked
//! mounts and no half-written files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const SPEC: &str = "port: 27015\noverlays: [maps]\nlaunch:\n  map: c1m1_hotel\n  max_players: 8\n  tickrate: 30\ncvars:\n  hostname: Killed midway\n";

fn agent(root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_l4d2-agent"));
    command
        .arg("--root")
        .arg(root)
        .args(["--owner-account", "daemon", "--game-account", "nobody"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Starts `args`, kills it with SIGKILL after `delay`, and reaps it.
fn kill_after(root: &Path, args: &[&str], delay: Duration) {
    use std::os::unix::process::CommandExt;
    let mut child = agent(root, args).process_group(0).spawn().unwrap();
    std::thread::sleep(delay);
    // The agent and what it forked (its helpers hold copies of its lock), as a unit's stop
    // kills its whole cgroup; then until none of them is left.
    let group = child.id() as libc::pid_t;
    // SAFETY: signals the process group this test made.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let _ = child.wait();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // SAFETY: probes the same process group.
    while unsafe { libc::kill(-group, 0) } == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[track_caller]
fn ok(root: &Path, args: &[&str]) {
    let out = agent(root, args).stderr(Stdio::piped()).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed after an interrupted run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mounts_below(root: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(root.to_str().unwrap()))
        .map(str::to_owned)
        .collect()
}

#[test]
#[ignore = "needs root to mount: run `cargo xtask test`"]
fn operations_killed_midway_converge_when_run_again() {
    let _turn = super::mount_turn();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Laid out as `setup` does: the state root root's, the owner's folders daemon's.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(root.join("installation/left4dead2/maps")).unwrap();
    std::fs::write(
        root.join("installation/left4dead2/maps/c1m1_hotel.bsp"),
        "VBSP",
    )
    .unwrap();
    for owned in ["installation", "overlays", "servers", "home"] {
        std::fs::create_dir_all(root.join(owned)).unwrap();
        let status = Command::new("chown")
            .args(["-R", "daemon:daemon"])
            .arg(root.join(owned))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let spec = root.join("spec.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let spec = spec.to_str().unwrap();
    ok(root, &["overlay", "create", "maps"]);

    // Kill points from before the process runs to after it is done, most of them midway.
    for step in 0..24u64 {
        let delay = Duration::from_micros(step * 350);
        // initialize, killed, then run again: a complete tree with the whole spec.
        kill_after(root, &["initialize", "coop-1", "-f", spec], delay);
        ok(root, &["initialize", "coop-1", "-f", spec]);
        let written = std::fs::read_to_string(root.join("servers/coop-1.yaml")).unwrap();
        assert!(written.contains("hostname: Killed midway"), "{written}");

        // mount, killed, then mounted for real: exactly one of each mount.
        kill_after(root, &["mount", "coop-1"], delay);
        ok(root, &["mount", "coop-1"]);
        let mounts = mounts_below(root);
        assert_eq!(mounts.len(), 3, "step {step}: {mounts:#?}");
        assert!(
            root.join("runtime/coop-1/merged/left4dead2/maps/c1m1_hotel.bsp")
                .is_file()
        );

        // umount, killed, then again: nothing left mounted.
        kill_after(root, &["umount", "coop-1"], delay);
        ok(root, &["umount", "coop-1"]);
        assert_eq!(mounts_below(root), Vec::<String>::new(), "step {step}");

        // delete of a mounted server, killed, then again: gone, nothing mounted.
        ok(root, &["mount", "coop-1"]);
        kill_after(root, &["delete", "coop-1"], delay);
        ok(root, &["delete", "coop-1"]);
        assert!(!root.join("runtime/coop-1").exists(), "step {step}");
        assert_eq!(mounts_below(root), Vec::<String>::new(), "step {step}");
        // No temporary files survive anywhere in the tree.
        let leftovers = Command::new("find")
            .arg(root)
            .args(["-name", "*.tmp"])
            .output()
            .unwrap();
        assert!(
            leftovers.stdout.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&leftovers.stdout)
        );
    }
}
