//! The tasks behind `cargo xtask <task>`.

use crate::cmd::Cmd;
use crate::hosts;
use crate::setup::{self, Needs};
use crate::wasm::{self, Toolchain};
use crate::{Result, workspace};
use std::path::{Path, PathBuf};

/// Builds the UI bundle and the release app, then opens the window.
pub fn run() -> Result {
    setup::ensure(Needs {
        window_tests: false,
        stand_ins: false,
        ..Needs::ALL
    })?;
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        return Err(
            "no display: `cargo xtask run` opens a window, so run it in a desktop session \
                    (or set DISPLAY, e.g. to an Xvfb server)"
                .into(),
        );
    }
    ui()?;
    // The static agent the app deploys to hosts at their set-up.
    let agent = agent()?;
    cargo()
        .args(["build", "--release", "--package", "left4me-app"])
        .run()?;
    Cmd::new(workspace::target_dir().join("release/left4me"))
        .env("LEFT4ME_AGENT", &agent)
        .run()
}

/// Builds everything the tests need, boots the test hosts, then runs every test of the
/// workspace, including the ones that need the real window, the static agent and the hosts
/// (`--include-ignored`). The hosts are taken down afterwards, pass or fail.
///
/// Arguments before `--` go to `cargo test`, the rest to the test binaries. With
/// `LEFT4ME_TEST_HOSTS` already set, the hosts it names are used and left alone.
pub fn test(args: &[String]) -> Result {
    setup::ensure(Needs::ALL)?;
    // The package the package test installs into a clean Debian root, first: the bundler
    // builds the app with its own settings, and the tests' build follows.
    let packages = crate::dist::build(crate::dist::Profile::Debug)?;
    let desktop = crate::desktop::image()?;
    let agent = agent_and_stand_ins()?;
    let (cargo_args, harness_args) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &[][..]),
    };
    let secret_service = crate::secret_service::SecretService::start()?;
    let own_hosts = std::env::var_os(HOSTS_ENV).is_none();
    if own_hosts {
        hosts::up(TEST_HOSTS)?;
    }
    // --workspace: the UI's logic (forms, reducers, the log buffer) is tested natively too.
    let tests = cargo()
        .args(["test", "--workspace"])
        .args(cargo_args)
        .arg("--")
        .arg("--include-ignored")
        .args(harness_args)
        .env("L4D2_AGENT_STATIC", &agent)
        .env("LEFT4ME_DEB", &packages.deb)
        .env("LEFT4ME_DESKTOP_IMAGE", &desktop)
        .env("TAURI_DRIVER", setup::cargo_bin("tauri-driver"))
        .env("DBUS_SESSION_BUS_ADDRESS", &secret_service.address)
        .env(
            HOSTS_ENV,
            std::env::var_os(HOSTS_ENV).unwrap_or_else(|| hosts::inventory_path().into()),
        )
        .run();
    let down = if own_hosts { hosts::down() } else { Ok(()) };
    drop(secret_service);
    tests.and(down)
}

/// Names the inventory of the test hosts the tests use.
const HOSTS_ENV: &str = "LEFT4ME_TEST_HOSTS";
/// How many test hosts `cargo xtask test` boots.
const TEST_HOSTS: usize = 3;

/// `cargo fmt --check`, then clippy with warnings as errors on every crate: the native ones
/// for the host, the UI for wasm32, and the app for Windows.
pub fn lint() -> Result {
    setup::ensure(Needs {
        window_tests: false,
        ..Needs::ALL
    })?;
    cargo().args(["fmt", "--all", "--check"]).run()?;
    cargo()
        .args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .run()?;
    Toolchain::get()?
        .cargo("clippy", UI.package)
        .args(["--all-targets", "--", "-D", "warnings"])
        .run()?;
    windows()
}

const WINDOWS: &str = "x86_64-pc-windows-gnu";

/// The app and what it is built of, checked and linted for Windows: every platform-specific
/// piece must have its Windows side. Needs rustup's Windows target and Debian's MinGW
/// compiler for the C in the dependencies; a machine whose rustup cannot add the target
/// skips this, except in CI.
fn windows() -> Result {
    let added = crate::cmd::which("rustup").is_some()
        && Cmd::new("rustup")
            .args(["target", "add", WINDOWS])
            .run()
            .is_ok();
    if !added {
        let why = format!("rustup cannot add the {WINDOWS} target here");
        if std::env::var_os("CI").is_some() {
            return Err(why.into());
        }
        eprintln!("{why}: the Windows check is skipped");
        return Ok(());
    }
    setup::ensure_packages(&["gcc-mingw-w64-x86-64"])?;
    cargo()
        .args(["clippy", "--target", WINDOWS])
        .args(["--package", "left4me-app", "--package", "left4me-core"])
        .args(["--package", "left4me-protocol", "--", "-D", "warnings"])
        .run()
}

/// Builds `l4d2-agent` as one static x86_64 binary and returns its path: musl where rustup
/// has that target and its C compiler is here (or can be installed), else glibc with a static
/// C runtime. Says which it built.
pub fn agent() -> Result<PathBuf> {
    build_static(&["l4d2-agent"])
}

/// [`agent`], and beside it the stand-ins the test hosts run: `steamcmd_stand_in` (which
/// carries `steamcmd.sh`, the i386 `linux32/steamcmd`, `srcds_run` and `srcds_linux`, and
/// lays out a steamcmd folder with `--write-tree`) and `srcds_stand_in`, built the same way.
pub fn agent_and_stand_ins() -> Result<PathBuf> {
    setup::ensure(Needs {
        app: false,
        ui: false,
        window_tests: false,
        stand_ins: true,
    })?;
    build_static(&["l4d2-agent", "left4me-stand-ins"])
}

const MUSL: &str = "x86_64-unknown-linux-musl";
const GNU: &str = "x86_64-unknown-linux-gnu";
/// The C compiler cc-rs looks for when a dependency builds C for the musl target; Debian's
/// `musl-tools` has it.
const MUSL_GCC: &str = "x86_64-linux-musl-gcc";

/// How the static binaries are built on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StaticBuild {
    Musl,
    /// glibc with `+crt-static`: the target every rustup has.
    GlibcStatic,
}

impl StaticBuild {
    fn target(self) -> &'static str {
        match self {
            StaticBuild::Musl => MUSL,
            StaticBuild::GlibcStatic => GNU,
        }
    }
}

/// musl needs both rustup's target and a musl C compiler for the C in the dependencies.
fn choose_static(has_musl_target: bool, has_musl_gcc: bool) -> StaticBuild {
    if has_musl_target && has_musl_gcc {
        StaticBuild::Musl
    } else {
        StaticBuild::GlibcStatic
    }
}

fn detect_static() -> StaticBuild {
    let has_target = Cmd::new("rustup")
        .args(["target", "list", "--installed"])
        .read()
        .is_some_and(|out| out.lines().any(|l| l.trim() == MUSL));
    if !has_target {
        return StaticBuild::GlibcStatic;
    }
    let mut has_gcc = crate::cmd::which(MUSL_GCC).is_some();
    if !has_gcc && setup::is_root() && setup::ensure_packages(&["musl-tools"]).is_ok() {
        has_gcc = crate::cmd::which(MUSL_GCC).is_some();
    }
    let build = choose_static(true, has_gcc);
    if build == StaticBuild::GlibcStatic {
        eprintln!(
            "the {MUSL} target is installed but {MUSL_GCC} is not (Debian: musl-tools); \
             building with glibc and a static C runtime instead"
        );
    }
    build
}

fn build_static(packages: &[&str]) -> Result<PathBuf> {
    let build = detect_static();
    let target = build.target();
    let mut cargo = cargo().arg("build");
    for package in packages {
        cargo = cargo.args(["--package", package]);
    }
    cargo = cargo.args(["--bins", "--profile", "agent", "--target", target]);
    if build == StaticBuild::GlibcStatic {
        // With --target, RUSTFLAGS reach only the agent's own artifacts, not build scripts.
        let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
        flags.push_str(" -C target-feature=+crt-static");
        cargo = cargo.env("RUSTFLAGS", flags.trim());
    }
    cargo.run()?;
    let path = workspace::target_dir()
        .join(target)
        .join("agent/l4d2-agent");
    eprintln!(
        "built {} ({})",
        path.display(),
        match build {
            StaticBuild::Musl => "static, musl",
            StaticBuild::GlibcStatic => "static, glibc with +crt-static",
        }
    );
    Ok(path)
}

/// A Yew crate built for wasm32 into a bundle the Tauri shell embeds.
pub struct Bundle {
    pub package: &'static str,
    /// The crate's folder: `static/` in it is copied into the bundle, written to `dist/`.
    pub dir: &'static str,
    /// The name wasm-bindgen gives the JS and wasm files (`static/main.js` imports it).
    pub out_name: &'static str,
}

pub const UI: Bundle = Bundle {
    package: "left4me-ui",
    dir: "ui",
    out_name: "left4me_ui",
};

/// The benchmark floor's page (`cargo xtask bench ui`).
pub const FLOOR_UI: Bundle = Bundle {
    package: "left4me-floor-ui",
    dir: "bench/floor-ui",
    out_name: "floor_ui",
};

/// Builds the UI bundle into `ui/dist`.
pub fn ui() -> Result {
    bundle(&UI)
}

/// Builds a bundle for wasm32 into its `dist/`. The bundle is assembled beside `dist/` and
/// swapped in only if it differs, so an unchanged UI does not make cargo re-embed it.
pub fn bundle(bundle: &Bundle) -> Result {
    setup::ensure(Needs {
        app: false,
        window_tests: false,
        stand_ins: false,
        ..Needs::ALL
    })?;
    let toolchain = Toolchain::get()?;
    toolchain
        .cargo("build", bundle.package)
        .args(["--profile", "wasm"])
        .run()?;
    let wasm = toolchain
        .target_dir()
        .join(wasm::TARGET)
        .join(format!("wasm/{}.wasm", bundle.package));

    let ui = workspace::root().join(bundle.dir);
    let staging = ui.join(".dist-new");
    let dist = ui.join("dist");
    remove_dir_if_present(&staging)?;
    Cmd::new(setup::cargo_bin("wasm-bindgen"))
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--out-name",
            bundle.out_name,
        ])
        // The names are for debuggers; WebKit would parse and keep them.
        .args(["--remove-name-section", "--remove-producers-section"])
        .arg("--out-dir")
        .arg(&staging)
        .arg(&wasm)
        .run()?;
    for entry in std::fs::read_dir(ui.join("static"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), staging.join(entry.file_name()))?;
    }
    if same_files(&staging, &dist)? {
        remove_dir_if_present(&staging)?;
        eprintln!("{}/dist is up to date", bundle.dir);
        return Ok(());
    }
    let old = ui.join(".dist-old");
    remove_dir_if_present(&old)?;
    if dist.exists() {
        std::fs::rename(&dist, &old)?;
    }
    std::fs::rename(&staging, &dist)?;
    remove_dir_if_present(&old)?;
    eprintln!("wrote {}", dist.display());
    Ok(())
}

/// The cargo that runs this xtask, in the workspace root.
pub fn cargo() -> Cmd {
    Cmd::new(setup::cargo()).current_dir(&workspace::root())
}

fn remove_dir_if_present(dir: &Path) -> Result {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", dir.display()).into())
        }
        _ => Ok(()),
    }
}

/// Whether two flat folders hold the same file names with the same contents.
fn same_files(a: &Path, b: &Path) -> Result<bool> {
    let names = |dir: &Path| -> std::io::Result<Vec<_>> {
        let mut names = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<Vec<_>>>()?;
        names.sort();
        Ok(names)
    };
    let (Ok(left), Ok(right)) = (names(a), names(b)) else {
        return Ok(false);
    };
    if left != right {
        return Ok(false);
    }
    for name in left {
        if std::fs::read(a.join(&name))? != std::fs::read(b.join(&name))? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn musl_only_with_its_c_compiler() {
        for (target, gcc, want) in [
            (true, true, StaticBuild::Musl),
            (true, false, StaticBuild::GlibcStatic),
            (false, true, StaticBuild::GlibcStatic),
            (false, false, StaticBuild::GlibcStatic),
        ] {
            assert_eq!(
                choose_static(target, gcc),
                want,
                "target {target}, gcc {gcc}"
            );
        }
    }
}
