//! `overlay list|create|delete`: the folders under `overlays/` that servers layer over the
//! base install. Overlay names are names, never paths.

use crate::error::{AgentError, io_context};
use crate::fsutil;
use crate::host::Host;
use crate::names::overlay_name;
use crate::output::done;
use crate::server::users_of;
use left4me_protocol::OverlayName;
use left4me_protocol::agent::{DoneReport, OverlayFilled, OverlaySummary};

pub fn list(host: &Host<'_>) -> Result<Vec<OverlaySummary>, AgentError> {
    let dir = host.layout.overlays();
    let names = fsutil::named_entries(&dir, |n| OverlayName::new(n).ok())
        .map_err(io_context("read", &dir))?;
    Ok(names
        .into_iter()
        .map(|name| {
            let (files, bytes) = fsutil::usage(&host.layout.overlay(&name));
            OverlaySummary {
                pending: crate::fill::staged(&host.layout, &name).is_dir(),
                name: name.to_string(),
                files,
                bytes,
            }
        })
        .collect())
}

pub fn create(host: &Host<'_>, name: &str) -> Result<DoneReport, AgentError> {
    let name = overlay_name(name)?;
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
    let name = overlay_name(name)?;
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
    let name = overlay_name(name)?;
    let target = crate::fill::prepare_fill(host, &name)?;
    let unpacked = crate::import::import(&host.layout.overlay(&name), archive, max_bytes, &target)?;
    Ok(OverlayFilled {
        overlay: name.to_string(),
        pending: target.stage,
        bytes: unpacked.bytes,
    })
}
