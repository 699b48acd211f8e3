//! Real mounts, as root, on this machine: the idmapped binds and the overlay of a server's
//! game tree, and the regression test for the original project's last bug.

use l4d2_agent::layout::{Layout, ServerPaths};
use l4d2_agent::mounts::{self, Stack};
use l4d2_agent::sys::{IdMap, Linux};
use left4me_protocol::{OverlayName, ServerName};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

/// The account that owns installs and overlays on disk, and the one that runs the game.
const OWNER: u32 = 4201;
const GAME: u32 = 4202;
const MAP: IdMap = IdMap {
    from_uid: OWNER,
    to_uid: GAME,
    from_gid: OWNER,
    to_gid: GAME,
};

/// A state tree with an install, two overlays and one server's runtime folders.
struct Tree {
    _dir: tempfile::TempDir,
    layout: Layout,
    stack: Stack,
    server: ServerPaths,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn chown_tree(path: &Path, uid: u32) {
    let status = Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    // The game account must be able to walk down to its tree.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let layout = Layout::new(dir.path());
    write(
        &layout.installation().join("left4dead2/cfg/server.cfg"),
        "hostname base\n",
    );
    write(
        &layout.installation().join("left4dead2/maps/c1m1_hotel.bsp"),
        "VBSP",
    );
    let sourcemod = OverlayName::new("sourcemod").unwrap();
    let maps = OverlayName::new("maps").unwrap();
    write(
        &layout.overlay(&sourcemod).join("left4dead2/cfg/server.cfg"),
        "hostname from-sourcemod\n",
    );
    write(
        &layout.overlay(&maps).join("left4dead2/cfg/server.cfg"),
        "hostname from-maps\n",
    );
    write(
        &layout.overlay(&maps).join("left4dead2/addons/map.vpk"),
        "VPK",
    );
    chown_tree(&layout.installation(), OWNER);
    chown_tree(&layout.overlays(), OWNER);

    let server = layout.server(&ServerName::new("coop-1").unwrap());
    let overlays = vec![
        (layout.overlay(&sourcemod), sourcemod.clone()),
        (layout.overlay(&maps), maps.clone()),
    ];
    let stack = Stack::new(&server, &overlays, &layout.installation());
    for (_, target) in &stack.binds {
        std::fs::create_dir_all(target).unwrap();
    }
    for dir in [&stack.upper, &stack.work, &stack.merged] {
        std::fs::create_dir_all(dir).unwrap();
    }
    chown_tree(&stack.upper, GAME);
    // overlayfs works in `work/` as root: root's alone.
    std::fs::set_permissions(&stack.work, std::fs::Permissions::from_mode(0o700)).unwrap();
    for dir in [layout.root(), &layout.runtimes(), server.dir()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    Tree {
        server: server.clone(),
        _dir: dir,
        layout,
        stack,
    }
}

fn mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

#[test]
#[ignore = "needs root to mount: run `cargo xtask test`"]
fn mount_cycles_leave_mountinfo_unchanged() {
    let _turn = super::mount_turn();
    let tree = tree();
    let before = mountinfo();
    for cycle in 0..1000 {
        assert!(
            mounts::mount(&Linux, &tree.stack, MAP).unwrap(),
            "cycle {cycle}"
        );
        // A second mount finds everything in place.
        assert!(
            !mounts::mount(&Linux, &tree.stack, MAP).unwrap(),
            "cycle {cycle}"
        );
        assert!(mounts::unmount_server(&Linux, &tree.server).unwrap());
        assert!(!mounts::unmount_server(&Linux, &tree.server).unwrap());
    }
    assert_eq!(mountinfo(), before);
}

#[test]
#[ignore = "needs root to mount: run `cargo xtask test`"]
fn merged_tree_layers_overlays_in_spec_order_and_copy_up_belongs_to_the_game() {
    let _turn = super::mount_turn();
    let tree = tree();
    mounts::mount(&Linux, &tree.stack, MAP).unwrap();
    let merged = &tree.stack.merged;
    let cfg = merged.join("left4dead2/cfg/server.cfg");
    // The first listed overlay wins; files of every layer are visible.
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        "hostname from-sourcemod\n"
    );
    assert!(merged.join("left4dead2/addons/map.vpk").is_file());
    assert!(merged.join("left4dead2/maps/c1m1_hotel.bsp").is_file());
    // Lower files owned by the owner account appear owned by the game account.
    assert_eq!(std::fs::metadata(&cfg).unwrap().uid(), GAME);

    // The game account edits a lower file: copy-up gives it a file of its own.
    let status = Command::new("sh")
        .arg("-c")
        .arg("echo 'sv_cheats 0' >> \"$1\"")
        .arg("sh")
        .arg(&cfg)
        .uid(GAME)
        .gid(GAME)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the game account could not write its tree"
    );
    let copied = tree.stack.upper.join("left4dead2/cfg/server.cfg");
    assert_eq!(std::fs::metadata(&copied).unwrap().uid(), GAME);
    assert_eq!(
        std::fs::read_to_string(&copied).unwrap(),
        "hostname from-sourcemod\nsv_cheats 0\n"
    );
    // The overlay itself is untouched.
    let original = tree
        .layout
        .overlay(&OverlayName::new("sourcemod").unwrap())
        .join("left4dead2/cfg/server.cfg");
    assert_eq!(
        std::fs::read_to_string(&original).unwrap(),
        "hostname from-sourcemod\n"
    );
    assert_eq!(std::fs::metadata(&original).unwrap().uid(), OWNER);
    mounts::unmount_server(&Linux, &tree.server).unwrap();
}

use std::os::unix::process::CommandExt;
