//! Whether this host can run the game. L4D2's dedicated server is an i386 program: it needs
//! an x86 machine and the 32-bit runtime its `srcds_linux` links to (the i386 loader,
//! libstdc++ and libgcc_s). left4me layers each server's tree with overlayfs over idmapped
//! mounts, which older kernels (Debian 11's 5.10, for one) cannot do. And an install takes
//! about 10 GB.
//!
//! `setup` checks each of these before it changes anything, installs the runtime where the
//! host's package manager can, probes the mounts for real (as root, in a folder of its own)
//! and records the probe for `facts`, which runs unprivileged and reports them all.

use crate::dir::Dir;
use crate::error::AgentError;
use crate::sys::{IdMap, Mounter};
use left4me_protocol::agent::GameReadiness;
use std::path::Path;
use std::process::{Command, Stdio};

/// The Debian and Ubuntu packages of the 32-bit runtime (they bring `libc6-i386`, the loader).
pub const RUNTIME_PACKAGES: &[&str] = &["lib32gcc-s1", "lib32stdc++6"];
/// Roughly what the base install takes.
pub const INSTALL_BYTES: u64 = 10_000_000_000;
/// Where `setup` records its probe of the mounts, in root's configuration folder.
const PROBE_RECORD: &str = "host-probe";
/// Where the 32-bit libraries live: Debian's multilib and multiarch folders, and the other
/// distributions' 32-bit ones. Every candidate is checked to be an i386 ELF file.
const LIB32_DIRS: &[&str] = &[
    "/usr/lib32",
    "/usr/lib/i386-linux-gnu",
    "/lib32",
    "/lib/i386-linux-gnu",
    "/usr/lib",
];
const LOADER: &str = "/lib/ld-linux.so.2";

/// The machine's hardware name, as `uname -m` says it.
pub fn machine() -> String {
    // SAFETY: uname fills the zeroed struct; its fields are NUL-terminated.
    unsafe {
        let mut name: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut name) != 0 {
            return std::env::consts::ARCH.to_owned();
        }
        std::ffi::CStr::from_ptr(name.machine.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// The running kernel's release, as `uname -r` says it.
pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The refusal for a machine L4D2 does not exist for.
pub fn check_machine() -> Result<(), AgentError> {
    match machine().as_str() {
        "x86_64" => Ok(()),
        other => Err(AgentError::failed(
            format!("this host cannot run Left 4 Dead 2: it is {other}"),
            "the game's dedicated server exists only for x86 (i386) Linux; use an x86-64 host",
        )),
    }
}

/// Whether `path` is an i386 ELF file (following links, as the loader does).
fn is_i386_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok()
        && header.starts_with(b"\x7fELF\x01")
        && u16::from_le_bytes([header[18], header[19]]) == 3
}

/// What of the 32-bit runtime is missing, by file name; empty when it is all there.
pub fn runtime_missing() -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !is_i386_elf(Path::new(LOADER)) {
        missing.push(LOADER);
    }
    for library in ["libstdc++.so.6", "libgcc_s.so.1"] {
        if !LIB32_DIRS
            .iter()
            .any(|dir| is_i386_elf(&Path::new(dir).join(library)))
        {
            missing.push(library);
        }
    }
    missing
}

fn install_command() -> String {
    format!(
        "sudo dpkg --add-architecture i386 && sudo apt-get update && sudo apt-get install {}",
        RUNTIME_PACKAGES.join(" ")
    )
}

/// Installs the 32-bit runtime with apt when it is missing; returns whether it did. Where
/// it cannot, it leaves the host as it found it (the i386 architecture it added is removed
/// again) and says what is missing, why, and the command that would add it.
pub fn ensure_runtime() -> Result<bool, AgentError> {
    let missing = runtime_missing();
    if missing.is_empty() {
        return Ok(false);
    }
    let lacking = format!(
        "this host lacks the 32-bit runtime the game needs ({})",
        missing.join(", ")
    );
    if !on_path("apt-get") || !on_path("dpkg") {
        return Err(AgentError::failed(
            lacking,
            "this host has no apt, so setup cannot install it: install the i386 C library, \
             libstdc++ and libgcc_s with the host's package manager, then run setup again",
        ));
    }
    let foreign = run_quiet("dpkg", &["--print-foreign-architectures"]).unwrap_or_default();
    let added = !foreign.lines().any(|l| l.trim() == "i386");
    let attempt = || -> Result<(), String> {
        if added {
            run_quiet("dpkg", &["--add-architecture", "i386"])?;
        }
        // A failed refresh (a mirror down) is not yet fatal: the lists may still do.
        let update = run_quiet("apt-get", &["-q", "update"]);
        let mut install = vec![
            "-q",
            "-y",
            "--no-install-recommends",
            // Another apt (unattended-upgrades) may hold the lock for a while.
            "-o",
            "DPkg::Lock::Timeout=120",
            "install",
        ];
        install.extend_from_slice(RUNTIME_PACKAGES);
        run_quiet("apt-get", &install).map_err(|e| match update {
            Err(u) => format!("{e} (and the package lists could not be refreshed: {u})"),
            Ok(_) => e,
        })?;
        Ok(())
    };
    if let Err(why) = attempt() {
        if added {
            let _ = run_quiet("dpkg", &["--remove-architecture", "i386"]);
        }
        return Err(AgentError::failed(
            lacking,
            format!(
                "apt could not install {}: {why}; add a package source that has them and run \
                 setup again, or install them yourself: {}",
                RUNTIME_PACKAGES.join(" "),
                install_command()
            ),
        ));
    }
    let still = runtime_missing();
    if !still.is_empty() {
        return Err(AgentError::failed(
            lacking,
            format!(
                "apt installed {} but {} is still missing",
                RUNTIME_PACKAGES.join(" "),
                still.join(", ")
            ),
        ));
    }
    Ok(true)
}

fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        .to_str()
        .unwrap_or_default()
        .split(':')
        .any(|dir| {
            std::fs::metadata(Path::new(dir).join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs a package tool with no input and its output captured; on failure, its last error
/// line (apt's `E:` lines) or its status.
fn run_quiet(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    // apt's first error is its reason; later ones repeat it in other words.
    let reason = stderr
        .lines()
        .find(|l| l.starts_with("E: "))
        .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
        .map(|l| l.trim_start_matches("E: ").trim().to_owned())
        .unwrap_or_else(|| format!("{program} {}", out.status));
    Err(reason)
}

/// Lays an overlayfs over an idmapped bind, as every server's start does, in a root-only
/// folder made for it in `parent` (on the file system that will hold the servers), checks
/// that a file shows through with its owner mapped, and takes it all down again.
pub fn probe_mounts(sys: &dyn Mounter, parent: &Dir) -> Result<(), String> {
    const NOBODY: u32 = 65534;
    let name = format!(".left4me-probe.{}", std::process::id());
    let (probe, _) = parent
        .ensure_dir(&name, 0o700, (0, 0))
        .map_err(|e| e.to_string())?;
    let result = (|| -> Result<(), String> {
        let (lower, _) = probe
            .ensure_dir("lower", 0o755, (NOBODY, NOBODY))
            .map_err(|e| e.to_string())?;
        lower
            .write_file("marker", b"probe\n", 0o644)
            .map_err(|e| e.to_string())?;
        std::os::unix::fs::chown(lower.join("marker"), Some(NOBODY), Some(NOBODY))
            .map_err(|e| e.to_string())?;
        for (dir, mode) in [
            ("layer", 0o755),
            ("upper", 0o755),
            ("work", 0o700),
            ("merged", 0o755),
        ] {
            probe
                .ensure_dir(dir, mode, (0, 0))
                .map_err(|e| e.to_string())?;
        }
        let map = IdMap {
            from_uid: NOBODY,
            to_uid: NOBODY - 1,
            from_gid: NOBODY,
            to_gid: NOBODY - 1,
        };
        let at = |dir: &str| probe.join(dir);
        sys.bind_idmapped(&at("lower"), &at("layer"), map)
            .map_err(|e| crate::error::chain(&e))?;
        let overlay = sys
            .mount_overlay(&[at("layer")], &at("upper"), &at("work"), &at("merged"))
            .map_err(|e| crate::error::chain(&e));
        let seen = overlay.as_ref().ok().map(|()| {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(at("merged").join("marker")).map(|m| m.uid())
        });
        if overlay.is_ok() {
            let _ = sys.unmount(&at("merged"));
        }
        let _ = sys.unmount(&at("layer"));
        overlay?;
        match seen {
            Some(Ok(uid)) if uid == NOBODY - 1 => Ok(()),
            Some(Ok(uid)) => Err(format!(
                "the idmapped layer shows its files as uid {uid}, not {}",
                NOBODY - 1
            )),
            Some(Err(e)) => Err(format!("the overlay does not show the layer's files: {e}")),
            None => Ok(()),
        }
    })();
    let removed = parent.remove_tree(&name).map_err(|e| e.to_string());
    result.and(removed.map(|_| ()))
}

/// Probes the mounts and refuses a host that cannot do them, recording the outcome.
pub fn check_mounts(sys: &dyn Mounter, parent: &Dir) -> Result<(), AgentError> {
    probe_mounts(sys, parent).map_err(|why| {
        AgentError::failed(
            format!(
                "this host's kernel ({}) cannot layer overlayfs over idmapped mounts, which \
                 every server's start needs",
                kernel()
            ),
            format!(
                "{why}; run left4me on a newer kernel (Debian 12's 6.1 and Ubuntu 24.04's 6.8 \
                 can)"
            ),
        )
    })
}

/// Writes the probe's outcome for `facts`, tied to the kernel it ran on.
pub fn record_probe(etc: &Dir) -> Result<bool, AgentError> {
    etc.ensure_file(
        PROBE_RECORD,
        format!("kernel {}\noverlay-over-idmap ok\n", kernel()).as_bytes(),
        0o644,
    )
    .map_err(|e| AgentError::failed("cannot record the host's probe", e))
}

/// Whether `setup` probed the mounts on the running kernel: None if it has not (yet).
fn recorded_probe(etc: &Path) -> Option<bool> {
    let text = std::fs::read_to_string(etc.join(PROBE_RECORD)).ok()?;
    let kernel_then = text.lines().find_map(|l| l.strip_prefix("kernel "))?;
    (kernel_then == kernel()).then(|| text.contains("overlay-over-idmap ok"))
}

/// Everything above, as `facts` reports it. `installed` skips the disk check: the install is
/// already there.
pub fn assess(etc: &Path, disk_free: u64, installed: bool) -> GameReadiness {
    let arch = machine();
    let mut problems = Vec::new();
    if arch != "x86_64" {
        problems.push(format!(
            "Left 4 Dead 2's server exists only for x86; this host is {arch}"
        ));
    }
    let missing = runtime_missing();
    if !missing.is_empty() {
        problems.push(format!(
            "the 32-bit runtime is missing ({}): `sudo l4d2-agent setup` installs it, or: {}",
            missing.join(", "),
            install_command()
        ));
    }
    let mounts = recorded_probe(etc);
    match mounts {
        None => problems.push(format!(
            "overlayfs over idmapped mounts has not been probed on kernel {}: run \
             `sudo l4d2-agent setup`",
            kernel()
        )),
        Some(false) => problems.push(format!(
            "kernel {} cannot layer overlayfs over idmapped mounts",
            kernel()
        )),
        Some(true) => {}
    }
    if !installed && disk_free < INSTALL_BYTES {
        problems.push(format!(
            "{:.1} GB free where the game goes; an install needs about {} GB",
            disk_free as f64 / 1e9,
            INSTALL_BYTES / 1_000_000_000
        ));
    }
    GameReadiness {
        runtime_32bit: missing.is_empty(),
        mounts_probed: mounts,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_i386_elf_files_count_as_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let mut i386 = b"\x7fELF\x01\x01\x01".to_vec();
        i386.resize(18, 0);
        i386.extend_from_slice(&3u16.to_le_bytes());
        assert!(is_i386_elf(&file("i386", &i386)));
        let mut amd64 = b"\x7fELF\x02\x01\x01".to_vec();
        amd64.resize(18, 0);
        amd64.extend_from_slice(&62u16.to_le_bytes());
        assert!(!is_i386_elf(&file("amd64", &amd64)));
        assert!(!is_i386_elf(&file("short", b"\x7fELF\x01")));
        assert!(!is_i386_elf(&file(
            "script",
            b"#!/bin/sh\necho hello there\n"
        )));
        assert!(!is_i386_elf(&dir.path().join("absent")));
    }

    #[test]
    fn a_probe_of_another_kernel_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(recorded_probe(dir.path()), None);
        std::fs::write(
            dir.path().join(PROBE_RECORD),
            format!("kernel {}\noverlay-over-idmap ok\n", kernel()),
        )
        .unwrap();
        assert_eq!(recorded_probe(dir.path()), Some(true));
        std::fs::write(
            dir.path().join(PROBE_RECORD),
            "kernel 5.10.0-0-amd64\noverlay-over-idmap ok\n",
        )
        .unwrap();
        assert_eq!(recorded_probe(dir.path()), None);
    }

    #[test]
    fn too_little_disk_is_a_problem_only_before_the_install() {
        let dir = tempfile::tempdir().unwrap();
        let small = assess(dir.path(), 3_000_000_000, false);
        assert!(
            small.problems.iter().any(|p| p.contains("3.0 GB free")),
            "{:?}",
            small.problems
        );
        let installed = assess(dir.path(), 3_000_000_000, true);
        assert!(!installed.problems.iter().any(|p| p.contains("GB free")));
    }
}
