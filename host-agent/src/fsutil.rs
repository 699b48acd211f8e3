//! File writes that are either complete or absent (temp file, mode, fsync, rename), and
//! the plain questions asked of folders: their named entries, their size, their disk's room.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes `contents` to `path` atomically with `mode`; a crash leaves the old file or the
/// new one, never half of either. Callers must be the only writer of `path` (they hold its
/// server's lock, or run as the one `setup`): the temporary file has a fixed name, so that a
/// writer killed midway leaves at most one, which the next write removes.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = path.with_file_name(format!(".{name}.tmp"));
    // A leftover of a killed writer, or a name planted here: removed, never opened.
    let _ = std::fs::remove_file(&temp);
    write_through(&temp, path, contents, mode)
}

/// [`write_atomic`] for a file that several processes may write at once (`backup list`
/// writes a missing summary while `backup create` writes the same one): each writes a
/// temporary file of its own (`.<name>.<pid>-<n>.tmp`) and the last rename wins, whole.
pub fn write_shared(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let temp = path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()));
    write_through(&temp, path, contents, mode)
}

/// Writes `contents` to the new file `temp`, then renames it to `path`.
fn write_through(temp: &Path, path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let result = (|| {
        // A new file only: a link at the name is never followed.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(temp)?;
        // The umask may have narrowed the mode given at creation.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(temp, path)?;
        // Persist the rename itself.
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        std::fs::File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(temp);
    }
    result
}

/// Reads at most `limit` bytes of the file at `path` without following a link at its name;
/// `None` when there is no such file. For the files an account keeps for itself (the
/// automation folder's), which a link must not redirect.
pub fn read_no_follow(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(file) => {
            let mut bytes = Vec::new();
            file.take(limit).read_to_end(&mut bytes)?;
            Ok(Some(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates `dir` (and parents) with `mode`; an existing folder is left as it is (its owner
/// may be another account, as `upper/` belongs to the game once mounted).
pub fn create_dir(dir: &Path, mode: u32) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

/// The names in `dir` that `parse` accepts, sorted; a missing folder has none. Names it
/// refuses (temporary files, strays) are not the agent's and are skipped.
pub fn named_entries<N: Ord>(
    dir: &Path,
    parse: impl Fn(&str) -> Option<N>,
) -> std::io::Result<Vec<N>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names: Vec<N> = entries
        .flatten()
        .filter_map(|e| parse(&e.file_name().to_string_lossy()))
        .collect();
    names.sort();
    Ok(names)
}

/// Sets the owner of `path` (not following a final symlink).
pub fn chown(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
}

/// Regular files below `dir` and their total size; symlinks are not followed.
pub fn usage(dir: &Path) -> (u64, u64) {
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

/// The root may not exist before set-up; the disk that will hold it is its nearest parent.
fn existing_ancestor(path: &Path) -> &Path {
    path.ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
}

/// The bytes free for this account and the bytes in all on the disk that holds (or will
/// hold) `path`.
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    disk(existing_ancestor(path))
}

/// The bytes free for this account on the disk that holds (or will hold) `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    disk_space(path).map(|(free, _)| free)
}

fn disk(path: &Path) -> Option<(u64, u64)> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid C string and stat a writable statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let unit = stat.f_frsize as u64;
    Some((stat.f_bavail as u64 * unit, stat.f_blocks as u64 * unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.yaml");
        write_atomic(&path, b"one", 0o640).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// `backup list` writes a missing summary while `backup create` writes the same one:
    /// two writers of one file must both succeed, the file whole either way.
    #[test]
    fn two_writers_of_one_file_both_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("20261201T112805Z.json");
        std::thread::scope(|s| {
            for contents in [b"first writer".as_slice(), b"second writer".as_slice()] {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..300 {
                        write_shared(path, contents, 0o600).unwrap();
                    }
                });
            }
        });
        let written = std::fs::read(&path).unwrap();
        assert!(written == b"first writer" || written == b"second writer");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
