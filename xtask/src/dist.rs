//! `cargo xtask dist`: the app's Linux packages, a `.deb` and an `.rpm`, each carrying the
//! built UI, the icons, a desktop entry and the static `l4d2-agent` the app deploys to hosts.
//!
//! The bundling is the Tauri CLI's (`tauri build`), taken from the npm registry at the
//! version [`TAURI_CLI_VERSION`] into a tool folder outside the clone. The settings are
//! `src-tauri/tauri.conf.json`'s `bundle` section; `src-tauri/tauri.dist.conf.json` adds the
//! agent as a resource, staged in `src-tauri/resources/` just before (a plain `cargo build`
//! of the app must not need it). AppImage is left out: its bundler downloads its tools at
//! build time, from outside the package registries.

use crate::cmd::Cmd;
use crate::setup::{self, Needs};
use crate::{Result, tasks, workspace};
use std::path::{Path, PathBuf};

/// The Tauri CLI release the bundle settings are written against.
pub const TAURI_CLI_VERSION: &str = "2.12.5";

/// The agent's name among the app's resources; the app looks for it there
/// (`src-tauri/src/state.rs`).
const AGENT_RESOURCE: &str = "l4d2-agent-x86_64";

/// How the packaged app is compiled.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// What users install.
    Release,
    /// The same package from the debug build the tests already compiled: the package test
    /// checks the package's shape and behaviour, not its speed.
    Debug,
}

/// The packages one `dist` made.
pub struct Packages {
    pub deb: PathBuf,
    pub rpm: PathBuf,
}

pub fn main(args: &[String]) -> Result {
    let profile = match args {
        [] => Profile::Release,
        [flag] if flag == "--debug" => Profile::Debug,
        _ => return Err("usage: cargo xtask dist [--debug]".into()),
    };
    let packages = build(profile)?;
    for path in [&packages.deb, &packages.rpm] {
        let size = std::fs::metadata(path)?.len();
        println!("{} ({:.1} MiB)", path.display(), size as f64 / 1048576.0);
    }
    Ok(())
}

/// Builds the UI, the static agent and the app, and bundles them.
pub fn build(profile: Profile) -> Result<Packages> {
    setup::ensure(Needs {
        window_tests: false,
        stand_ins: false,
        ..Needs::ALL
    })?;
    let tauri = tauri_cli()?;
    tasks::ui()?;
    let agent = tasks::agent()?;
    let app = workspace::root().join("src-tauri");
    let staged = app.join("resources");
    std::fs::create_dir_all(&staged)?;
    // A copy, not a link: the bundler follows links, but a stale link would ship a stale agent.
    std::fs::copy(&agent, staged.join(AGENT_RESOURCE))?;
    let bundles = workspace::target_dir()
        .join(match profile {
            Profile::Release => "release",
            Profile::Debug => "debug",
        })
        .join("bundle");
    // Packages of an earlier version must not be mistaken for this one's.
    for kind in ["deb", "rpm"] {
        let _ = std::fs::remove_dir_all(bundles.join(kind));
    }
    let mut build = Cmd::new(&tauri)
        .args(["build", "--bundles", "deb,rpm", "--ci"])
        .args(["--config", "tauri.dist.conf.json"])
        .current_dir(&app)
        .env("CARGO_TARGET_DIR", workspace::target_dir());
    if profile == Profile::Debug {
        build = build.arg("--debug");
    }
    build.run()?;
    let packages = Packages {
        deb: only_file(&bundles.join("deb"), "deb")?,
        rpm: only_file(&bundles.join("rpm"), "rpm")?,
    };
    check_deb(&packages.deb)?;
    Ok(packages)
}

/// The one file ending in `.ext` in `dir`.
fn only_file(dir: &Path, ext: &str) -> Result<PathBuf> {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("the bundler left no {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .collect();
    match <[PathBuf; 1]>::try_from(found) {
        Ok([path]) => Ok(path),
        Err(found) => Err(format!(
            "expected one .{ext} in {}, found {}",
            dir.display(),
            found.len()
        )
        .into()),
    }
}

/// Refuses a `.deb` that lacks what the installed app needs to set up a host.
fn check_deb(deb: &Path) -> Result {
    let listing = Cmd::new("dpkg-deb")
        .arg("--contents")
        .arg(deb)
        .read()
        .ok_or("cannot list the .deb's contents")?;
    let wanted = [
        "usr/bin/left4me".to_owned(),
        format!("usr/lib/left4me/{AGENT_RESOURCE}"),
        "usr/share/applications/left4me.desktop".to_owned(),
    ];
    for path in &wanted {
        // `dpkg-deb --contents` prints `tar -tv`'s lines, the path last.
        let listed = |line: &str| {
            line.split_whitespace()
                .last()
                .is_some_and(|p| p.trim_start_matches("./") == path)
        };
        if !listing.lines().any(listed) {
            return Err(format!("{} lacks {path}", deb.display()).into());
        }
    }
    Ok(())
}

/// The Tauri CLI at [`TAURI_CLI_VERSION`], installed from the npm registry once (its
/// package carries a prebuilt binary; `cargo install tauri-cli` would compile for long).
pub fn tauri_cli() -> Result<PathBuf> {
    let dir = tools_dir().join(format!("tauri-cli-{TAURI_CLI_VERSION}"));
    let bin = dir.join("node_modules/.bin/tauri");
    if bin.exists() {
        return Ok(bin);
    }
    if crate::cmd::which("npm").is_none() {
        setup::ensure_packages(&["npm"])?;
    }
    eprintln!("installing the Tauri CLI {TAURI_CLI_VERSION} from the npm registry");
    Cmd::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(format!("@tauri-apps/cli@{TAURI_CLI_VERSION}"))
        .run()?;
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("npm installed no {}", bin.display()).into())
    }
}

/// Tools kept outside the clone, beside the test hosts' images.
fn tools_dir() -> PathBuf {
    crate::hosts::cache_dir().join("tools")
}
