//! `overlay import <name>`: fills an overlay from a tar stream on stdin, so the app ships
//! overlay content without editing files on the host.
//!
//! The archive is unpacked into a fresh folder beside the overlay and swapped in only when
//! every entry passed: absolute paths, `..`, links that point outside the overlay, hard
//! links, devices and fifos are refused, and so is an archive larger than the size limit.
//! A refused or broken archive leaves the overlay as it was and no partial folder behind.

use crate::error::AgentError;
use crate::fill::{FillTarget, replace_content};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// The default size limit of one overlay's unpacked content.
pub const DEFAULT_MAX_BYTES: u64 = 16 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("archive entry {path:?}: {reason}")]
    Refused { path: String, reason: &'static str },
    #[error("archive unpacks to more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("cannot read the archive")]
    Read(#[source] std::io::Error),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What an import unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    pub files: u64,
    pub bytes: u64,
}

/// The path of an entry inside the overlay, or why it is refused.
pub fn entry_path(raw: &Path) -> Result<PathBuf, &'static str> {
    let mut clean = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err("absolute paths are refused"),
            Component::ParentDir => return Err("'..' is refused"),
        }
    }
    if clean.as_os_str().is_empty() {
        return Err("empty path");
    }
    Ok(clean)
}

/// Whether a symlink at `link` (relative to the overlay) pointing at `target` stays inside.
pub fn link_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = link.components().count() as i64 - 1;
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Unpacks a tar stream into `dest` (which must be new and empty), checking every entry.
pub fn unpack(reader: impl Read, dest: &Path, max_bytes: u64) -> Result<Unpacked, ImportError> {
    use std::os::unix::fs::PermissionsExt;
    let mut archive = tar::Archive::new(reader);
    let mut total = Unpacked { files: 0, bytes: 0 };
    for entry in archive.entries().map_err(ImportError::Read)? {
        let mut entry = entry.map_err(ImportError::Read)?;
        let raw = entry.path().map_err(ImportError::Read)?.into_owned();
        let shown = raw.display().to_string();
        let refused = |reason| ImportError::Refused {
            path: shown.clone(),
            reason,
        };
        // `tar -C folder -c .` starts with the folder itself as "./": nothing to unpack.
        if entry.header().entry_type().is_dir() && raw.components().all(|c| c == Component::CurDir)
        {
            continue;
        }
        let relative = entry_path(&raw).map_err(refused)?;
        let target = dest.join(&relative);
        let write_error = |source| ImportError::Write {
            path: target.clone(),
            source,
        };
        // Parents come from the archive or are made here; either way they are real folders,
        // never links (a link entry cannot be a parent: checked below).
        if let Some(parent) = target.parent() {
            ensure_real_dir(dest, parent).map_err(|e| match e {
                Some(reason) => refused(reason),
                None => write_error(std::io::Error::other("cannot create parent folder")),
            })?;
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(write_error)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                    .map_err(write_error)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.header().size().map_err(ImportError::Read)?;
                if total.bytes + size > max_bytes {
                    return Err(ImportError::TooLarge { limit: max_bytes });
                }
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(write_error)?;
                let copied = std::io::copy(&mut (&mut entry).take(size), &mut file)
                    .map_err(ImportError::Read)?;
                total.bytes += copied;
                total.files += 1;
                // Only the owner's execute bit survives: no setuid, no group/world writes.
                let mode = if mode & 0o100 != 0 { 0o755 } else { 0o644 };
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                    .map_err(write_error)?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(ImportError::Read)?
                    .ok_or_else(|| refused("symlink without a target"))?
                    .into_owned();
                if !link_stays_inside(&relative, &link) {
                    return Err(refused("links pointing outside the overlay are refused"));
                }
                std::os::unix::fs::symlink(&link, &target).map_err(write_error)?;
            }
            tar::EntryType::Link => return Err(refused("hard links are refused")),
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            _ => return Err(refused("only files, folders and symlinks are allowed")),
        }
    }
    Ok(total)
}

/// Checks a tree made by something other than an archive (an overlay's script) by the
/// rules an archive follows: only files, folders and links that stay inside; no more than
/// `max_bytes`; modes reduced to 0755/0644 as an import would. Returns its size.
pub fn check_tree(dir: &Path, max_bytes: u64) -> Result<u64, ImportError> {
    use std::os::unix::fs::PermissionsExt;
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries = std::fs::read_dir(&current).map_err(ImportError::Read)?;
        for entry in entries {
            let entry = entry.map_err(ImportError::Read)?;
            let path = entry.path();
            let relative = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
            let shown = relative.display().to_string();
            let refused = |reason| ImportError::Refused {
                path: shown.clone(),
                reason,
            };
            let meta = std::fs::symlink_metadata(&path).map_err(ImportError::Read)?;
            let kind = meta.file_type();
            let write_error = |source| ImportError::Write {
                path: path.clone(),
                source,
            };
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).map_err(ImportError::Read)?;
                if !link_stays_inside(&relative, &target) {
                    return Err(refused("links pointing outside the overlay are refused"));
                }
            } else if kind.is_dir() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(write_error)?;
                stack.push(path);
            } else if kind.is_file() {
                if meta.nlink() > 1 {
                    return Err(refused("hard links are refused"));
                }
                total += meta.len();
                if total > max_bytes {
                    return Err(ImportError::TooLarge { limit: max_bytes });
                }
                let mode = if meta.permissions().mode() & 0o100 != 0 {
                    0o755
                } else {
                    0o644
                };
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                    .map_err(write_error)?;
            } else {
                return Err(refused("only files, folders and symlinks are allowed"));
            }
        }
    }
    Ok(total)
}

/// Creates `dir` under `root` as real folders; refuses to go through a symlink.
fn ensure_real_dir(root: &Path, dir: &Path) -> Result<(), Option<&'static str>> {
    let relative = dir.strip_prefix(root).map_err(|_| None)?;
    let mut current = root.to_path_buf();
    for part in relative.components() {
        current.push(part);
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(Some("a path through a link or a file is refused")),
            Err(_) => std::fs::create_dir(&current).map_err(|_| None)?,
        }
    }
    Ok(())
}

/// Unpacks into a staging folder beside `overlay`, then swaps it in.
pub fn import(
    overlay: &Path,
    reader: impl Read,
    max_bytes: u64,
    target: &FillTarget,
) -> Result<Unpacked, AgentError> {
    replace_content(overlay, target, "imported", |staging| {
        unpack(reader, staging, max_bytes).map_err(|err| match err {
            ImportError::Refused { .. } | ImportError::TooLarge { .. } => {
                AgentError::Invalid(err.to_string())
            }
            other => AgentError::failed("cannot import the overlay", other),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar stream with raw entries, including ones tar-rs's builder would refuse to write.
    fn archive(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, kind, data, link) in entries {
            let mut header = tar::Header::new_old();
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            if let Some(link) = link {
                let field = &mut header.as_old_mut().linkname;
                field[..link.len()].copy_from_slice(link.as_bytes());
            }
            header.set_cksum();
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend_from_slice(&[0; 1024]);
        out
    }

    #[track_caller]
    fn check(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)], expect: &str) {
        let dir = tempfile::tempdir().unwrap();
        let overlay = dir.path().join("maps");
        std::fs::create_dir(&overlay).unwrap();
        std::fs::write(overlay.join("kept.vpk"), "old").unwrap();
        let err = import(&overlay, archive(entries).as_slice(), 1024, &NOW).unwrap_err();
        assert!(err.to_string().contains(expect), "{err}");
        // The overlay is as it was, and no staging folder is left (only the lock file).
        assert_eq!(
            std::fs::read_to_string(overlay.join("kept.vpk")).unwrap(),
            "old"
        );
        assert_eq!(names_in(dir.path()), ["maps"]);
        assert!(!dir.path().join("etc").exists());
    }

    use tar::EntryType::{Block, Directory, Link, Regular, Symlink};

    /// No server uses the overlay: the content is replaced at once, owned by whoever runs.
    const NOW: FillTarget = FillTarget {
        owner: None,
        stage: false,
    };

    #[test]
    fn hostile_archives_are_refused_and_change_nothing() {
        check(
            &[("/etc/passwd", Regular, b"x", None)],
            "absolute paths are refused",
        );
        check(
            &[("left4dead2/../../etc/x", Regular, b"x", None)],
            "'..' is refused",
        );
        check(
            &[("evil", Symlink, b"", Some("/etc"))],
            "outside the overlay",
        );
        check(
            &[("a/evil", Symlink, b"", Some("../../x"))],
            "outside the overlay",
        );
        check(
            &[
                ("dir", Symlink, b"", Some(".")),
                ("dir/x", Regular, b"x", None),
            ],
            "through a link",
        );
        check(&[("hard", Link, b"", Some("x"))], "hard links are refused");
        check(
            &[("dev", Block, b"", None)],
            "only files, folders and symlinks",
        );
        check(
            &[("big.vpk", Regular, &[0u8; 2000], None)],
            "more than 1024 bytes",
        );
        check(
            &[
                ("a.vpk", Regular, &[0u8; 600], None),
                ("b.vpk", Regular, &[0u8; 600], None),
            ],
            "more than 1024 bytes",
        );
    }

    #[test]
    fn a_good_archive_replaces_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let overlay = dir.path().join("maps");
        std::fs::create_dir(&overlay).unwrap();
        std::fs::write(overlay.join("old.vpk"), "old").unwrap();
        // As `tar -C folder -c .` writes it: the folder itself first, then "./"-paths.
        let tar = archive(&[
            ("./", Directory, b"", None),
            ("./left4dead2/", Directory, b"", None),
            ("./left4dead2/addons/map.vpk", Regular, b"VPK", None),
            (
                "left4dead2/cfg/link.cfg",
                Symlink,
                b"",
                Some("../addons/map.vpk"),
            ),
        ]);
        let unpacked = import(&overlay, tar.as_slice(), 1024, &NOW).unwrap();
        assert_eq!(unpacked, Unpacked { files: 1, bytes: 3 });
        assert!(!overlay.join("old.vpk").exists());
        assert_eq!(
            std::fs::read_to_string(overlay.join("left4dead2/cfg/link.cfg")).unwrap(),
            "VPK"
        );
        assert_eq!(names_in(dir.path()), ["maps"]);
    }

    /// The names in `dir`, lock files left out.
    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".lock"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn link_targets_are_resolved_lexically() {
        assert!(link_stays_inside(Path::new("a/b/l"), Path::new("../c")));
        assert!(link_stays_inside(Path::new("a/l"), Path::new("../c")));
        assert!(!link_stays_inside(Path::new("l"), Path::new("../c")));
        assert!(!link_stays_inside(Path::new("a/l"), Path::new("/c")));
        assert!(!link_stays_inside(Path::new("a/l"), Path::new("../../c")));
    }
}
