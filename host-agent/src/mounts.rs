//! A server's mount stack: every lower layer (its overlays, then the base install) bound
//! through an idmapped mount under `runtime/<n>/idmap/`, and an overlayfs at
//! `runtime/<n>/merged` with `upper/` and `work/` on top.
//!
//! Both directions read the mount table first and act only on the difference, so running
//! them twice changes nothing, and a thousand mount/unmount cycles leave the table exactly as
//! it was. Unmounting removes every mount at or below the server's folder, newest first,
//! which also clears stacks leaked by an earlier agent.

use crate::layout::ServerPaths;
use crate::mountinfo::{self, Mount};
use crate::sys::{IdMap, Mounter, SysError, TableUnreadable};
use std::path::{Path, PathBuf};

/// What a server's game tree is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// `(source, target)` of each idmapped bind, top layer first.
    pub binds: Vec<(PathBuf, PathBuf)>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

impl Stack {
    /// The stack of a server whose overlays are `overlays` (top first) over `installation`.
    pub fn new(
        server: &ServerPaths,
        overlays: &[(PathBuf, left4me_protocol::OverlayName)],
        installation: &Path,
    ) -> Self {
        let mut binds: Vec<(PathBuf, PathBuf)> = overlays
            .iter()
            .map(|(source, name)| (source.clone(), server.idmap(name)))
            .collect();
        binds.push((installation.to_path_buf(), server.idmap_installation()));
        Stack {
            binds,
            upper: server.upper(),
            work: server.work(),
            merged: server.merged(),
        }
    }

    fn lower(&self) -> Vec<PathBuf> {
        self.binds
            .iter()
            .map(|(_, target)| target.clone())
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(transparent)]
    Table(#[from] TableUnreadable),
    #[error("cannot mount {}", target.display())]
    Mount {
        target: PathBuf,
        #[source]
        source: SysError,
    },
    #[error("cannot unmount {}", target.display())]
    Unmount {
        target: PathBuf,
        #[source]
        source: SysError,
    },
    #[error("{} stays mounted after {tries} unmounts", target.display())]
    Stuck { target: PathBuf, tries: usize },
}

/// Mounts what is missing of `stack`; returns whether anything changed.
///
/// A merged tree that is already an overlay is left alone (a running server keeps its tree;
/// a changed spec applies at the next start). Extra mounts stacked on a target are removed.
pub fn mount(sys: &dyn Mounter, stack: &Stack, map: IdMap) -> Result<bool, MountError> {
    let table = sys.mount_table()?;
    let mut changed = false;
    for (source, target) in &stack.binds {
        changed |= trim_to_one(sys, &table, target)?;
        if mountinfo::count_at(&table, target) == 0 {
            sys.bind_idmapped(source, target, map)
                .map_err(|source| MountError::Mount {
                    target: target.clone(),
                    source,
                })?;
            changed = true;
        }
    }
    changed |= trim_to_one(sys, &table, &stack.merged)?;
    let merged_is_overlay =
        mountinfo::top_at(&table, &stack.merged).is_some_and(|m| m.fs_type == "overlay");
    if !merged_is_overlay {
        sys.mount_overlay(&stack.lower(), &stack.upper, &stack.work, &stack.merged)
            .map_err(|source| MountError::Mount {
                target: stack.merged.clone(),
                source,
            })?;
        changed = true;
    }
    Ok(changed)
}

/// Unmounts the game tree of the server in `server`: everything at or below `merged/` and
/// `idmap/`, newest first. Mounts of the folder itself (systemd's read-write bind in the
/// service's namespace) are not the agent's and stay. Returns whether anything changed.
pub fn unmount_server(sys: &dyn Mounter, server: &ServerPaths) -> Result<bool, MountError> {
    unmount_below(sys, &[server.merged(), server.idmap_dir()])
}

/// Unmounts every mount at or below any of `dirs`, newest first.
fn unmount_below(sys: &dyn Mounter, dirs: &[PathBuf]) -> Result<bool, MountError> {
    let mut changed = false;
    // Each pass unmounts the newest mount below `dir`; bounded so a mount that refuses to
    // go cannot loop forever.
    let limit = 1 + sys
        .mount_table()?
        .iter()
        .filter(|m| is_below(&m.target, dirs))
        .count();
    for _ in 0..limit {
        let table = sys.mount_table()?;
        let Some(newest) = newest_below(&table, dirs) else {
            return Ok(changed);
        };
        let target = newest.target.clone();
        sys.unmount(&target).map_err(|source| MountError::Unmount {
            target: target.clone(),
            source,
        })?;
        changed = true;
    }
    let table = sys.mount_table()?;
    match newest_below(&table, dirs) {
        None => Ok(changed),
        Some(left) => Err(MountError::Stuck {
            target: left.target.clone(),
            tries: limit,
        }),
    }
}

/// Whether any part of the server's game tree is mounted in `table`.
pub fn is_mounted(table: &[Mount], server: &ServerPaths) -> bool {
    newest_below(table, &[server.merged(), server.idmap_dir()]).is_some()
}

/// Whether any part of the server's game tree is mounted in this process's namespace.
pub fn any_mounted(sys: &dyn Mounter, server: &ServerPaths) -> Result<bool, MountError> {
    let table = sys.mount_table()?;
    Ok(is_mounted(&table, server))
}

fn is_below(target: &Path, dirs: &[PathBuf]) -> bool {
    dirs.iter().any(|dir| target.starts_with(dir))
}

fn newest_below<'a>(table: &'a [Mount], dirs: &[PathBuf]) -> Option<&'a Mount> {
    // mountinfo lists mounts in the order they were made: the last one is the newest, and a
    // mount made on top of another comes after it.
    table.iter().rev().find(|m| is_below(&m.target, dirs))
}

/// Removes mounts stacked on `target` beyond the first.
fn trim_to_one(sys: &dyn Mounter, table: &[Mount], target: &Path) -> Result<bool, MountError> {
    let extra = mountinfo::count_at(table, target).saturating_sub(1);
    for _ in 0..extra {
        sys.unmount(target).map_err(|source| MountError::Unmount {
            target: target.to_path_buf(),
            source,
        })?;
    }
    Ok(extra > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;
    use crate::sys::Recording;
    use left4me_protocol::{OverlayName, ServerName};

    const MAP: IdMap = IdMap {
        from_uid: 900,
        to_uid: 901,
        from_gid: 900,
        to_gid: 901,
    };

    fn stack() -> (Layout, ServerPaths, Stack) {
        let layout = Layout::new(Path::new("/srv/l4m"));
        let server = layout.server(&ServerName::new("coop-1").unwrap());
        let overlays: Vec<(PathBuf, OverlayName)> = ["sourcemod", "maps"]
            .iter()
            .map(|n| {
                let name = OverlayName::new(*n).unwrap();
                (layout.overlay(&name), name)
            })
            .collect();
        let stack = Stack::new(&server, &overlays, &layout.installation());
        (layout, server, stack)
    }

    #[test]
    fn mounting_binds_each_layer_then_the_overlay_in_spec_order() {
        let (_, _, stack) = stack();
        let sys = Recording::default();
        assert!(mount(&sys, &stack, MAP).unwrap());
        assert_eq!(
            sys.calls(),
            [
                "bind-idmapped /srv/l4m/overlays/sourcemod /srv/l4m/runtime/coop-1/idmap/sourcemod 900:901",
                "bind-idmapped /srv/l4m/overlays/maps /srv/l4m/runtime/coop-1/idmap/maps 900:901",
                "bind-idmapped /srv/l4m/installation /srv/l4m/runtime/coop-1/idmap/_installation 900:901",
                "mount-overlay /srv/l4m/runtime/coop-1/merged lowerdir=/srv/l4m/runtime/coop-1/idmap/sourcemod:/srv/l4m/runtime/coop-1/idmap/maps:/srv/l4m/runtime/coop-1/idmap/_installation,upperdir=/srv/l4m/runtime/coop-1/upper,workdir=/srv/l4m/runtime/coop-1/work",
            ]
        );
    }

    #[test]
    fn mounting_twice_changes_nothing() {
        let (_, _, stack) = stack();
        let sys = Recording::default();
        mount(&sys, &stack, MAP).unwrap();
        let before = sys.calls().len();
        assert!(!mount(&sys, &stack, MAP).unwrap());
        assert_eq!(sys.calls().len(), before);
    }

    #[test]
    fn unmounting_goes_newest_first_and_twice_changes_nothing() {
        let (_, server, stack) = stack();
        let sys = Recording::default();
        mount(&sys, &stack, MAP).unwrap();
        assert!(unmount_server(&sys, &server).unwrap());
        let calls = sys.calls();
        assert_eq!(
            &calls[4..],
            [
                "unmount /srv/l4m/runtime/coop-1/merged",
                "unmount /srv/l4m/runtime/coop-1/idmap/_installation",
                "unmount /srv/l4m/runtime/coop-1/idmap/maps",
                "unmount /srv/l4m/runtime/coop-1/idmap/sourcemod",
            ]
        );
        assert!(!unmount_server(&sys, &server).unwrap());
        assert!(sys.mountinfo().unwrap().is_empty());
    }

    #[test]
    fn leaked_stacked_binds_are_trimmed_not_added_to() {
        // What the original project left behind: the same bind stacked on itself.
        let (_, server, stack) = stack();
        let sys = Recording::default();
        let leaked = server.idmap(&OverlayName::new("maps").unwrap());
        sys.preexisting(&leaked, "ext4");
        sys.preexisting(&leaked, "ext4");
        mount(&sys, &stack, MAP).unwrap();
        let table = sys.mountinfo().unwrap();
        assert_eq!(mountinfo::count_at(&table, &leaked), 1);
        unmount_server(&sys, &server).unwrap();
        assert!(sys.mountinfo().unwrap().is_empty());
    }

    #[test]
    fn a_failing_unmount_is_reported_with_its_target() {
        let (_, server, stack) = stack();
        let sys = Recording::default();
        mount(&sys, &stack, MAP).unwrap();
        sys.fail_on(&stack.merged);
        let err = unmount_server(&sys, &server).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot unmount /srv/l4m/runtime/coop-1/merged"
        );
    }

    #[test]
    fn mounts_of_other_servers_and_of_systemd_are_left_alone() {
        let (layout, server, stack) = stack();
        let sys = Recording::default();
        let other = layout.server(&ServerName::new("coop-10").unwrap());
        sys.preexisting(&other.merged(), "overlay");
        // systemd's read-write bind of the server folder in the service's namespace.
        sys.preexisting(server.dir(), "ext4");
        mount(&sys, &stack, MAP).unwrap();
        unmount_server(&sys, &server).unwrap();
        // `coop-10` starts with `coop-1` as text, not as a path.
        assert_eq!(sys.mountinfo().unwrap().len(), 2);
    }
}
