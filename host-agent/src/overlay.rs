//! `overlay list|create|delete`: the folders under `overlays/` that servers layer over the
//! base install. Overlay names are names, never paths.

use crate::error::{AgentError, io_context};
use crate::fsutil;
use crate::host::{Host, is_root};
use crate::layout::Layout;
use crate::server::users_of;
use left4me_protocol::OverlayName;
use left4me_protocol::agent::{DoneReport, OverlayFilled, OverlaySummary};
use std::path::{Path, PathBuf};

pub fn parse_name(name: &str) -> Result<OverlayName, AgentError> {
    OverlayName::new(name).map_err(|e| AgentError::Invalid(e.to_string()))
}

fn done(action: &str, name: &OverlayName, changed: bool) -> DoneReport {
    DoneReport {
        action: action.to_owned(),
        target: name.to_string(),
        changed,
    }
}

pub fn list(host: &Host<'_>) -> Result<Vec<OverlaySummary>, AgentError> {
    let dir = host.layout.overlays();
    let names = fsutil::named_entries(&dir, |n| OverlayName::new(n).ok())
        .map_err(io_context("read", &dir))?;
    Ok(names
        .into_iter()
        .map(|name| {
            let (files, bytes) = usage(&host.layout.overlay(&name));
            OverlaySummary {
                pending: staged(&host.layout, &name).is_dir(),
                name: name.to_string(),
                files,
                bytes,
            }
        })
        .collect())
}

/// Regular files below `dir` and their total size; symlinks are not followed.
pub(crate) fn usage(dir: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    (files, bytes)
}

pub fn create(host: &Host<'_>, name: &str) -> Result<DoneReport, AgentError> {
    let name = parse_name(name)?;
    let dir = host.layout.overlay(&name);
    if dir.is_dir() {
        return Ok(done("overlay create", &name, false));
    }
    let owner = host.owner()?;
    let overlays = host.layout.overlays();
    fsutil::create_dir(&overlays, 0o755).map_err(io_context("create", &overlays))?;
    fsutil::create_dir(&dir, 0o755).map_err(io_context("create", &dir))?;
    fsutil::chown(&dir, owner.uid, owner.gid).map_err(io_context("chown", &dir))?;
    Ok(done("overlay create", &name, true))
}

/// Deletes an overlay; refused while a server's spec names it.
pub fn delete(host: &Host<'_>, name: &str) -> Result<DoneReport, AgentError> {
    let name = parse_name(name)?;
    let dir = host.layout.overlay(&name);
    if !dir.exists() {
        return Ok(done("overlay delete", &name, false));
    }
    let users = users_of(host, &name)?;
    if !users.is_empty() {
        return Err(AgentError::Invalid(format!(
            "overlay {:?} is used by server{} {}",
            name.as_str(),
            if users.len() == 1 { "" } else { "s" },
            users.join(", ")
        )));
    }
    std::fs::remove_dir_all(&dir).map_err(io_context("remove", &dir))?;
    Ok(done("overlay delete", &name, true))
}

/// Replaces an overlay's content with a tar archive read from `archive`.
pub fn import(
    host: &Host<'_>,
    name: &str,
    archive: impl std::io::Read,
    max_bytes: u64,
) -> Result<OverlayFilled, AgentError> {
    let name = parse_name(name)?;
    let target = prepare_fill(host, &name)?;
    let unpacked = crate::import::import(&host.layout.overlay(&name), archive, max_bytes, &target)?;
    Ok(OverlayFilled {
        overlay: name.to_string(),
        pending: target.stage,
        bytes: unpacked.bytes,
    })
}

/// Where a fill's new content goes, and who owns it.
pub struct FillTarget {
    /// The account that must own the new files (None when not run as root).
    pub owner: Option<(u32, u32)>,
    /// A running server has the overlay mounted: its tree must not change underneath it, so
    /// the new content is staged beside the old and applied at a server's next mount.
    pub stage: bool,
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

/// The staged next content of an overlay, made by a fill while a server used it.
pub fn staged(layout: &Layout, name: &OverlayName) -> PathBuf {
    layout.overlays().join(format!(".{name}.next"))
}

/// Puts staged content in place before a server mounts the overlay. The old folder is moved
/// aside, not removed: running servers keep their mount of it until they stop. Skipped
/// while a fill holds the overlay (the server then starts with the current content).
pub fn apply_staged(layout: &Layout, name: &OverlayName) -> Result<bool, AgentError> {
    let next = staged(layout, name);
    if !next.is_dir() {
        return Ok(false);
    }
    let Ok(_lock) =
        crate::lock::Lock::try_acquire(&layout.overlays().join(format!(".{name}.lock")))
    else {
        return Ok(false);
    };
    let current = layout.overlay(name);
    if current.exists() {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let retired = layout.overlays().join(format!(".{name}.retired-{stamp}"));
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
