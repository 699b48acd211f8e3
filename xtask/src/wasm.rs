//! Compiling the UI for wasm32: with rustup's wasm32 target where rustup has or can add it
//! (an ordinary developer machine), else with Debian's `rustc-web` and `-Zbuild-std`
//! (machines whose rustup cannot download targets). Detected, never assumed.

use crate::cmd::Cmd;
use crate::{Result, setup, workspace};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const TARGET: &str = "wasm32-unknown-unknown";

/// Forces a toolchain: `rustup` or `debian`.
const FORCE_ENV: &str = "LEFT4ME_WASM_TOOLCHAIN";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Toolchain {
    /// rustup's active toolchain with its wasm32 target.
    Rustup,
    /// Debian's rustc-web in /usr/bin, building std from source.
    Debian,
}

impl Toolchain {
    /// Finds (and if need be installs) a toolchain that can build for wasm32. Decided once
    /// per xtask run.
    pub fn get() -> Result<Toolchain> {
        static CHOSEN: OnceLock<Toolchain> = OnceLock::new();
        if let Some(chosen) = CHOSEN.get() {
            return Ok(*chosen);
        }
        let chosen = detect()?;
        eprintln!("wasm32 toolchain: {chosen:?}");
        Ok(*CHOSEN.get_or_init(|| chosen))
    }

    /// `cargo <subcommand>` for a wasm crate (`left4me-ui`, the benchmark floor's page) on
    /// wasm32, with the toolchain's set-up.
    pub fn cargo(self, subcommand: &str, package: &str) -> Cmd {
        let common = |cmd: Cmd| {
            cmd.arg(subcommand)
                .args(["--package", package, "--target", TARGET])
                .arg("--target-dir")
                .arg(self.target_dir())
                .current_dir(&workspace::root())
        };
        match self {
            Toolchain::Rustup => common(Cmd::new(setup::cargo())),
            Toolchain::Debian => common(
                Cmd::new("/usr/bin/cargo")
                    // rustup's proxies and the variables `cargo run` set would pull in the
                    // other compiler; build-std needs cargo and rustc of one release.
                    .env("PATH", crate::cmd::path_with_first(Path::new("/usr/bin")))
                    .env("RUSTC", "/usr/bin/rustc")
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", "wasm-ld")
                    .env_remove("RUSTUP_TOOLCHAIN")
                    .env_remove("CARGO")
                    .env_remove("RUSTDOC")
                    .env_remove("RUSTC_WRAPPER")
                    .env_remove("RUSTC_WORKSPACE_WRAPPER"),
            )
            .arg("-Zbuild-std=std,panic_abort"),
        }
    }

    /// Where this toolchain's wasm32 builds go. Debian's compiler gets its own folder: the two
    /// compilers' artifacts do not mix.
    pub fn target_dir(self) -> PathBuf {
        match self {
            Toolchain::Rustup => workspace::target_dir(),
            Toolchain::Debian => workspace::target_dir().join("wasm-debian"),
        }
    }
}

fn detect() -> Result<Toolchain> {
    match std::env::var(FORCE_ENV).as_deref() {
        Ok("rustup") => return Ok(Toolchain::Rustup),
        Ok("debian") => return debian(),
        Ok(other) => return Err(format!("{FORCE_ENV}={other:?}: use rustup or debian").into()),
        Err(_) => {}
    }
    if rustup_has_target() {
        return Ok(Toolchain::Rustup);
    }
    if crate::cmd::which("rustup").is_some() && rustup_add_target() {
        return Ok(Toolchain::Rustup);
    }
    debian().map_err(|e| {
        format!(
            "no wasm32 toolchain: rustup cannot add {TARGET}, and Debian's rustc-web is not \
             available ({e})"
        )
        .into()
    })
}

fn rustup_has_target() -> bool {
    Cmd::new("rustup")
        .args(["target", "list", "--installed"])
        .read()
        .is_some_and(|out| out.lines().any(|l| l.trim() == TARGET))
}

/// Tries `rustup target add`, giving up after two minutes: without internet it may hang.
fn rustup_add_target() -> bool {
    eprintln!("$ rustup target add {TARGET}");
    let Ok(mut child) = std::process::Command::new("rustup")
        .args(["target", "add", TARGET])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success() && rustup_has_target(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                eprintln!("rustup could not add {TARGET} in time");
                return false;
            }
        }
    }
}

fn debian() -> Result<Toolchain> {
    setup::ensure_packages(setup::DEBIAN_WASM_PACKAGES)?;
    for needed in [
        "/usr/bin/cargo",
        "/usr/bin/rustc",
        "/usr/lib/rustlib/src/rust/library",
    ] {
        if !Path::new(needed).exists() {
            return Err(format!("{needed} is missing").into());
        }
    }
    Ok(Toolchain::Debian)
}
