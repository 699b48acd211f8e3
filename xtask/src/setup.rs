//! Installs what the tasks need and this machine lacks: Debian/Ubuntu packages (as root; as
//! another user it prints the exact apt command and stops) and cargo tools at the versions
//! the workspace pins. Everything is checked first, so a set-up machine is left untouched.

use crate::cmd::Cmd;
use crate::{Result, workspace};
use std::path::PathBuf;

/// What a task is about to do.
#[derive(Clone, Copy)]
pub struct Needs {
    /// Compile the Tauri app (WebKitGTK and friends).
    pub app: bool,
    /// Build the UI bundle (a wasm32 toolchain and wasm-bindgen).
    pub ui: bool,
    /// Drive the real window in tests (Xvfb, WebKitWebDriver, tauri-driver).
    pub window_tests: bool,
    /// Build the stand-ins (the i386 `srcds_linux` needs a C++ compiler for i386).
    pub stand_ins: bool,
}

impl Needs {
    pub const ALL: Needs = Needs {
        app: true,
        ui: true,
        window_tests: true,
        stand_ins: true,
    };
}

const APP_PACKAGES: &[&str] = &[
    "build-essential",
    "pkg-config",
    "libwebkit2gtk-4.1-dev",
    "libgtk-3-dev",
    "libsoup-3.0-dev",
    "librsvg2-dev",
];

const WINDOW_TEST_PACKAGES: &[&str] = &[
    // The real Secret Service the keyring tests use, and a tool to look into it.
    "gnome-keyring",
    "libsecret-tools",
    "xvfb",
    "webkit2gtk-driver",
    "dbus",
    "at-spi2-core",
    "fonts-dejavu-core",
    // Types into the desktop's own dialogs (the folder picker), as a person does.
    "xdotool",
];

/// g++ for i386 and the i386 C++ libraries: the stand-in `srcds_linux` is built with them,
/// and the stand-ins' own tests run it on this machine.
const STAND_IN_PACKAGES: &[&str] = &["g++-multilib"];

/// Debian's wasm-capable Rust: rustc/cargo with the standard library's sources, for
/// `-Zbuild-std`, and the wasm linker. Used when rustup cannot provide the wasm32 target.
pub const DEBIAN_WASM_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "rust-web-llvm",
    "rust-web-clippy",
    "lld",
];

/// The tauri-driver release the window tests are written against.
const TAURI_DRIVER_VERSION: &str = "2.1.0";

pub fn ensure(needs: Needs) -> Result {
    let mut packages = Vec::new();
    if needs.app {
        packages.extend_from_slice(APP_PACKAGES);
    }
    if needs.window_tests {
        packages.extend_from_slice(WINDOW_TEST_PACKAGES);
    }
    if needs.stand_ins {
        packages.extend_from_slice(STAND_IN_PACKAGES);
    }
    ensure_packages(&packages)?;
    if needs.ui {
        crate::wasm::Toolchain::get()?;
        let version = workspace::locked_version("wasm-bindgen")?;
        ensure_cargo_tool("wasm-bindgen-cli", &version, false)?;
    }
    if needs.window_tests {
        ensure_cargo_tool("tauri-driver", TAURI_DRIVER_VERSION, true)?;
    }
    Ok(())
}

/// Installs the Debian packages among `packages` that are missing.
pub fn ensure_packages(packages: &[&str]) -> Result {
    if packages.is_empty() {
        return Ok(());
    }
    if crate::cmd::which("dpkg-query").is_none() {
        return Err(format!(
            "this machine has no apt; install the equivalents of these Debian packages and \
             run again: {}",
            packages.join(" ")
        )
        .into());
    }
    // dpkg-query exits 1 when it knows some names not at all; what it printed still counts.
    let status = Cmd::new("dpkg-query")
        .args(["-W", "-f=${Package} ${db:Status-Abbrev}\n"])
        .args(packages)
        .stdout_any()
        .unwrap_or_default();
    let installed: Vec<&str> = status
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, state)| state.starts_with("ii"))
        .map(|(name, _)| name)
        .collect();
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !installed.contains(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!(
        "apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() {
        return Err(format!(
            "these packages are missing; install them and run again:\n\n  \
             sudo apt-get update && sudo {install}\n"
        )
        .into());
    }
    eprintln!("installing missing packages: {}", missing.join(" "));
    Cmd::new("apt-get")
        .args(["update", "-qq"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    Cmd::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
}

/// Installs `package` at `version` with `cargo install` unless that version is installed.
fn ensure_cargo_tool(package: &str, version: &str, locked: bool) -> Result {
    let listing = Cmd::new(cargo()).args(["install", "--list"]).read();
    let wanted = format!("{package} v{version}:");
    if listing.is_some_and(|l| l.lines().any(|line| line == wanted)) {
        return Ok(());
    }
    eprintln!("installing {package} {version} (compiles once, then it is cached)");
    let mut cmd = Cmd::new(cargo())
        .args(["install", package, "--version", version])
        // Our target dir is for the workspace; installs build in a temporary one.
        .env_remove("CARGO_TARGET_DIR");
    if locked {
        cmd = cmd.arg("--locked");
    }
    cmd.run()
}

/// Where `cargo install` puts binaries.
pub fn cargo_bin(name: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    home.join("bin").join(name)
}

/// The cargo that runs this xtask.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| "cargo".into())
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
