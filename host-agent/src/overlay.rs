//! `overlay list|create|delete`: the folders under `overlays/` that servers layer over the
//! base install. Overlay names are names, never paths.

use crate::error::{AgentError, io_context};
use crate::fsutil;
use crate::host::Host;
use crate::layout::Layout;
use crate::mountinfo::{Mount, count_at, top_at};
use crate::names::overlay_name;
use crate::output::done;
use crate::server::{list_specs, users_of};
use left4me_protocol::agent::{DoneReport, OverlayFilled, OverlaySummary};
use left4me_protocol::{InstanceSpec, OverlayName, ServerName};

pub fn list(host: &Host<'_>) -> Result<Vec<OverlaySummary>, AgentError> {
    let dir = host.layout.overlays();
    let names = fsutil::named_entries(&dir, |n| OverlayName::new(n).ok())
        .map_err(io_context("read", &dir))?;
    let table = host.mount_table()?;
    let specs = list_specs(host)?;
    Ok(names
        .into_iter()
        .map(|name| {
            let (files, bytes) = fsutil::usage(&host.layout.overlay(&name));
            let pending = crate::fill::staged(&host.layout, &name).is_dir();
            OverlaySummary {
                behind: behind(&host.layout, &table, &specs, &name, pending),
                pending,
                name: name.to_string(),
                files,
                bytes,
            }
        })
        .collect())
}

/// The mounted servers that use overlay `name` and would see other content after a
/// restart: every one while new content is `pending`; else those whose layer of it is a
/// retired version (its folder was moved aside as `.<name>.retired-…` while they ran).
fn behind(
    layout: &Layout,
    table: &[Mount],
    specs: &[(ServerName, InstanceSpec)],
    name: &OverlayName,
    pending: bool,
) -> Vec<String> {
    specs
        .iter()
        .filter(|(_, spec)| spec.overlays.contains(name))
        .filter(|(server, _)| sees_old(layout, table, server, name, pending))
        .map(|(server, _)| server.to_string())
        .collect()
}

/// The overlays of a mounted server whose content changed since it mounted them (new
/// content staged, or its layer retired): its next start brings it.
pub fn behind_for(
    layout: &Layout,
    table: &[Mount],
    server: &ServerName,
    spec: &InstanceSpec,
) -> Vec<OverlayName> {
    spec.overlays
        .iter()
        .filter(|name| {
            let pending = crate::fill::staged(layout, name).is_dir();
            sees_old(layout, table, server, name, pending)
        })
        .cloned()
        .collect()
}

fn sees_old(
    layout: &Layout,
    table: &[Mount],
    server: &ServerName,
    name: &OverlayName,
    pending: bool,
) -> bool {
    let paths = layout.server(server);
    if count_at(table, &paths.merged()) == 0 {
        return false;
    }
    let retired = format!(".{name}.retired-");
    let layer = top_at(table, &paths.idmap(name)).and_then(|m| m.root.file_name());
    pending || layer.is_some_and(|f| f.to_string_lossy().starts_with(&retired))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A server's spec that layers `overlays`.
    fn spec(overlays: &str) -> InstanceSpec {
        InstanceSpec::from_yaml(&format!(
            "port: 27015\noverlays: [{overlays}]\nlaunch:\n  map: c2m1_highway\n  max_players: 8\n  tickrate: 30\n  flags: []\n"
        ))
        .unwrap()
    }

    /// A mountinfo line of `server` with overlay `maps` bound from `from`, as a test host's
    /// kernel writes it (the bound folder's path as the host side sees it).
    fn mounted(server: &str, from: &str) -> String {
        format!(
            "101 22 0:45 / /var/lib/left4me/runtime/{server}/merged rw - overlay overlay rw\n\
             102 22 254:0 /machines/h1/var/lib/left4me/overlays/{from} \
             /var/lib/left4me/runtime/{server}/idmap/maps rw idmapped - ext4 /dev/vda rw\n"
        )
    }

    #[test]
    fn servers_behind_are_those_on_a_retired_version_or_all_while_one_is_staged() {
        let layout = Layout::new(std::path::Path::new("/var/lib/left4me"));
        let maps = OverlayName::new("maps").unwrap();
        let specs: Vec<(ServerName, InstanceSpec)> = [
            ("a", spec("maps")),
            ("b", spec("maps, sm")),
            ("c", spec("sm")),
            ("d", spec("maps")),
        ]
        .into_iter()
        .map(|(n, s)| (ServerName::new(n).unwrap(), s))
        .collect();
        // a runs the current version, b one moved aside, c does not use it, d is stopped.
        let table = crate::mountinfo::parse(&format!(
            "{}{}{}",
            mounted("a", "maps"),
            mounted("b", ".maps.retired-1700000000"),
            mounted("c", "sm")
        ));
        let table_with = |pending| behind(&layout, &table, &specs, &maps, pending);
        assert_eq!(table_with(false), ["b"]);
        assert_eq!(table_with(true), ["a", "b"]);
        assert!(behind(&layout, &[], &specs, &maps, true).is_empty());
    }
}
