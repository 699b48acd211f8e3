//! Filling an overlay: every way of giving an overlay new content (a tar import, Workshop
//! items, a script's result, steamcmd's own tarball) goes through here.
//!
//! An overlay's content changes whole or not at all, and never under a running server. A
//! fill builds the new content beside the overlay (`.<name>.import`), then swaps it in, or,
//! when a running server has the overlay mounted, stages it whole as `.<name>.next`. A
//! server's next mount applies what was staged (`apply_staged`), moving the old folder aside
//! as `.<name>.retired-<stamp>` for servers still running on it, and retired folders are
//! removed once no mounted server can see them (`remove_retired`). One fill of an overlay
//! at a time: they hold `.<name>.lock`.

use crate::error::{AgentError, io_context};
use crate::fsutil;
use crate::host::{Host, is_root};
use crate::layout::Layout;
use crate::lock::{Lock, LockError};
use left4me_protocol::OverlayName;
use std::path::{Path, PathBuf};

/// Where a fill's new content goes, and who owns it.
pub struct FillTarget {
    /// The account that must own the new files (None when not run as root).
    pub owner: Option<(u32, u32)>,
    /// A running server has the overlay mounted: its tree must not change underneath it, so
    /// the new content is staged beside the old and applied at a server's next mount.
    pub stage: bool,
}

/// The folder `.<name>.<what>` beside the overlay folder `overlay`.
fn beside(overlay: &Path, what: &str) -> PathBuf {
    let parent = overlay.parent().expect("overlays live in a folder");
    let name = overlay.file_name().unwrap_or_default().to_string_lossy();
    parent.join(format!(".{name}.{what}"))
}

/// Before an overlay's content is replaced.
pub fn prepare_fill(host: &Host<'_>, name: &OverlayName) -> Result<FillTarget, AgentError> {
    let table = host.mount_table()?;
    let runtimes = host.layout.runtimes();
    let stage = table.iter().any(|m| {
        m.target.starts_with(&runtimes)
            && m.target.file_name() == Some(std::ffi::OsStr::new(name.as_str()))
            && m.target.parent().and_then(|p| p.file_name()) == Some(std::ffi::OsStr::new("idmap"))
    });
    let owner = if is_root() {
        let owner = host.owner()?;
        Some((owner.uid, owner.gid))
    } else {
        None
    };
    let overlays = host.layout.overlays();
    fsutil::create_dir(&overlays, 0o755).map_err(io_context("create", &overlays))?;
    Ok(FillTarget { owner, stage })
}

/// Builds an overlay's new content with `build` in a fresh staging folder beside it, then
/// swaps it in (or, with `target.stage`, leaves it complete as `.<name>.next` for the next
/// mount); on failure the overlay stays as it was and no staging folder is left. `build`
/// may read the current content (to reuse what did not change). One filling of an overlay
/// at a time: `what` says who holds it in the error.
pub fn replace_content<T>(
    overlay: &Path,
    target: &FillTarget,
    what: &str,
    build: impl FnOnce(&Path) -> Result<T, AgentError>,
) -> Result<T, AgentError> {
    let owner = target.owner;
    let name = overlay.file_name().unwrap_or_default().to_string_lossy();
    // The fixed names below belong to the lock's holder; what a killed run left in them is
    // cleared first.
    let _lock = Lock::try_acquire(&beside(overlay, "lock")).map_err(|e| match e {
        LockError::Busy => AgentError::InUse(format!(
            "overlay \"{name}\" is being {what} by another agent"
        )),
        LockError::Io(e) => AgentError::failed("cannot lock the overlay", e),
    })?;
    let staging = beside(overlay, "import");
    let old = beside(overlay, "old");
    let _ = std::fs::remove_dir_all(&staging);
    let _ = std::fs::remove_dir_all(&old);
    fsutil::create_dir(&staging, 0o755).map_err(io_context("create", &staging))?;
    let built = match build(&staging) {
        Ok(built) => built,
        Err(err) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(err);
        }
    };
    if let Some((uid, gid)) = owner
        && let Err(e) = chown_tree(&staging, uid, gid)
    {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(AgentError::failed(
            "cannot give the new files to left4me",
            e,
        ));
    }
    // Content staged earlier is superseded either way.
    let next = beside(overlay, "next");
    let _ = std::fs::remove_dir_all(&next);
    if target.stage {
        std::fs::rename(&staging, &next).map_err(io_context("stage", &next))?;
        return Ok(built);
    }
    if overlay.exists() {
        std::fs::rename(overlay, &old).map_err(io_context("move aside", overlay))?;
    }
    std::fs::rename(&staging, overlay).map_err(io_context("install", overlay))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(built)
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    fsutil::chown(dir, uid, gid)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            chown_tree(&entry.path(), uid, gid)?;
        } else {
            fsutil::chown(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// The staged next content of an overlay, made by a fill while a server used it.
pub fn staged(layout: &Layout, name: &OverlayName) -> PathBuf {
    beside(&layout.overlay(name), "next")
}

/// Puts staged content in place before a server mounts the overlay. The old folder is moved
/// aside, not removed: running servers keep their mount of it until they stop. Skipped
/// while a fill holds the overlay (the server then starts with the current content).
pub fn apply_staged(layout: &Layout, name: &OverlayName) -> Result<bool, AgentError> {
    let current = layout.overlay(name);
    let next = beside(&current, "next");
    if !next.is_dir() {
        return Ok(false);
    }
    let Ok(_lock) = Lock::try_acquire(&beside(&current, "lock")) else {
        return Ok(false);
    };
    if current.exists() {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let retired = beside(&current, &format!("retired-{stamp}"));
        std::fs::rename(&current, &retired).map_err(io_context("move aside", &current))?;
    }
    std::fs::rename(&next, &current).map_err(io_context("apply", &next))?;
    Ok(true)
}

/// Removes an overlay's retired folders once no mounted server can still see one.
pub fn remove_retired(layout: &Layout, name: &OverlayName) {
    let prefix = format!(".{name}.retired-");
    if let Ok(entries) = std::fs::read_dir(layout.overlays()) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}
