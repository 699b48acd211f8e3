//! The shipped agent: `cargo xtask agent`'s binary must run on any x86_64 Linux host, so it
//! may not need a dynamic loader or any shared library.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The binary built by `cargo xtask agent`; `cargo xtask test` passes its path.
fn static_agent() -> PathBuf {
    std::env::var_os("L4D2_AGENT_STATIC")
        .map(PathBuf::from)
        .expect(
            "L4D2_AGENT_STATIC names the binary from `cargo xtask agent` (run `cargo xtask test`)",
        )
}

/// Whether an ELF file asks for a program interpreter (the dynamic loader). A static or
/// static-pie executable has no PT_INTERP program header.
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not a 64-bit ELF file");
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let header = phoff + i * phentsize;
        u32::from_le_bytes(elf[header..header + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

#[test]
fn the_test_build_of_the_agent_is_dynamic() {
    // Guards the check itself: an ordinary cargo build asks for the dynamic loader.
    let elf = std::fs::read(env!("CARGO_BIN_EXE_l4d2-agent")).unwrap();
    assert!(has_interpreter(&elf) != cfg!(target_feature = "crt-static"));
}

#[test]
#[ignore = "needs the binary from `cargo xtask agent`: run `cargo xtask test`"]
fn shipped_agent_runs_in_an_empty_root() {
    let agent = static_agent();
    let elf = std::fs::read(&agent).unwrap();
    assert!(
        !has_interpreter(&elf),
        "{} needs a dynamic loader",
        agent.display()
    );

    // A root with nothing but the binary: no libc, no loader, no /proc.
    let root = tempfile::tempdir().unwrap();
    let inside = root.path().join("l4d2-agent");
    std::fs::copy(&agent, &inside).unwrap();
    let out = in_empty_root(root.path(), &["/l4d2-agent", "version", "--json"]);
    assert!(
        out.status.success(),
        "agent failed in an empty root: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["type"], "version");
    assert_eq!(doc["static_binary"], true);
    assert_eq!(doc["agent_version"], env!("CARGO_PKG_VERSION"));
}

/// Runs `argv` chrooted into `root`: directly as root, else in a user namespace.
fn in_empty_root(root: &Path, argv: &[&str]) -> std::process::Output {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    let mut cmd = if is_root {
        Command::new(which("chroot"))
    } else {
        let mut c = Command::new(which("unshare"));
        c.args(["--user", "--map-root-user", "chroot"]);
        c
    };
    cmd.arg(root)
        .args(argv)
        .env_clear()
        .output()
        .expect("run chroot")
}

/// The full path of `program` on PATH: with the environment cleared, Command would not find it.
fn which(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} not found on PATH"))
}
