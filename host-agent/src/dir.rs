//! Folders held open by descriptor: how the steps that run as root reach what they act on
//! without following anything a less trusted account can plant.
//!
//! A path is walked from `/` one name at a time, each name looked up in the folder already
//! held open and never through a symlink. A folder root writes into must be *trusted* all the
//! way down: every folder on the way owned by root (or by the caller) and writable by nobody
//! else, so no other account can rename or replace anything on that path between root's check
//! and root's use. Below a trusted folder, what a less trusted account owns (its overlays, its
//! specs) is only read, through `openat2(RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH)`, and checked
//! to belong to that account. Files are written as new files (`O_EXCL`, never through a link)
//! and renamed into place; trees are removed through descriptors.
//!
//! This module imports nothing of the agent's, so every other module may use it.

use std::ffi::{CStr, CString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// What stopped the agent from reaching or changing a path safely.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("{} is a symlink, which the agent does not follow here", path.display())]
    Symlink { path: PathBuf },
    #[error("{} is not a folder", path.display())]
    NotDir { path: PathBuf },
    #[error("{} is not a regular file", path.display())]
    NotFile { path: PathBuf },
    #[error("{} belongs to uid {found}, not to uid {expected}", path.display())]
    Owner {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "{} can be changed by accounts other than root (owner uid {uid}, mode {mode:04o})",
        path.display()
    )]
    Untrusted { path: PathBuf, uid: u32, mode: u32 },
    #[error("{} is larger than {max} bytes", path.display())]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{} has more than {max} nested folders", path.display())]
    TooDeep { path: PathBuf, max: usize },
    #[error("cannot {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl DirError {
    fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        DirError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the path (or a folder on the way) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, DirError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// An open folder and the path it was reached by (for messages and the mount table).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// Whether every folder of a walk must be trusted, or only reached without symlinks.
#[derive(Clone, Copy, PartialEq)]
enum Walk {
    Trusted,
    NoFollow,
}

impl Dir {
    /// Opens the folder `path` (absolute) with every folder on the way, and `path` itself,
    /// trusted: owned by root or by the caller, writable by nobody else. A sticky folder on
    /// the way (like `/tmp`) may be writable by all: nobody else can rename what is not
    /// theirs in it, and the next folder must be trusted itself.
    pub fn open_trusted(path: &Path) -> Result<Dir, DirError> {
        walk(path, Walk::Trusted)
    }

    /// Opens the folder `path` (absolute) without following a symlink anywhere on the way.
    /// Folders on the way may belong to anyone: what is found was reachable by that path
    /// without a link, and only an account that can write the folder holding it can have put
    /// it there. Callers check who owns it.
    pub fn open_no_follow(path: &Path) -> Result<Dir, DirError> {
        walk(path, Walk::NoFollow)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in this folder.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Owner and mode (permission bits with setuid, setgid and sticky).
    pub fn owner_and_mode(&self) -> Result<(u32, u32, u32), DirError> {
        let st = fstat(self.fd.as_fd()).map_err(|e| DirError::io("inspect", &self.path, e))?;
        Ok((st.st_uid, st.st_gid, st.st_mode & 0o7777))
    }

    /// Requires this folder to belong to `uid`.
    pub fn check_owner(&self, uid: u32) -> Result<(), DirError> {
        let (found, _, _) = self.owner_and_mode()?;
        if found == uid {
            Ok(())
        } else {
            Err(DirError::Owner {
                path: self.path.clone(),
                found,
                expected: uid,
            })
        }
    }

    /// Requires this folder to be trusted (see [`Dir::open_trusted`]).
    pub fn check_trusted(&self) -> Result<(), DirError> {
        let st = fstat(self.fd.as_fd()).map_err(|e| DirError::io("inspect", &self.path, e))?;
        trusted(&st, &self.path, false)
    }

    /// The folder `name` in this one, not following a symlink; None when there is none.
    pub fn open_dir(&self, name: &str) -> Result<Option<Dir>, DirError> {
        let path = self.join(name);
        match open_dir_at(self.fd.as_fd(), name) {
            Ok(fd) => Ok(Some(Dir { fd, path })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(classify(self.fd.as_fd(), name, &path, e)),
        }
    }

    /// The folder `name` in this trusted folder, made if missing, owned by `owner` with
    /// `mode`; an existing one is given that owner and mode. Returns whether anything changed.
    pub fn ensure_dir(
        &self,
        name: &str,
        mode: u32,
        owner: (u32, u32),
    ) -> Result<(Dir, bool), DirError> {
        let path = self.join(name);
        let name_c = c_name(name, &path)?;
        let mut changed = false;
        let dir = match self.open_dir(name)? {
            Some(dir) => dir,
            None => {
                // SAFETY: a valid descriptor and NUL-terminated name.
                let rc = unsafe { libc::mkdirat(self.fd.as_raw_fd(), name_c.as_ptr(), 0o700) };
                if rc < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        return Err(DirError::io("create", &path, e));
                    }
                }
                changed = true;
                self.open_dir(name)?
                    .ok_or_else(|| DirError::io("open", &path, io::ErrorKind::NotFound.into()))?
            }
        };
        let (uid, gid, current) = dir.owner_and_mode()?;
        if (uid, gid) != owner {
            dir.chown(owner.0, owner.1)?;
            changed = true;
        }
        if current != mode {
            dir.chmod(mode)?;
            changed = true;
        }
        Ok((dir, changed))
    }

    /// The folder at `rel` below this one, never following a symlink and never leaving this
    /// folder; None when it does not exist.
    pub fn open_beneath(&self, rel: &Path) -> Result<Option<Dir>, DirError> {
        let path = self.path.join(rel);
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        match openat2_beneath(self.fd.as_fd(), rel, flags) {
            Ok(fd) => Ok(Some(Dir { fd, path })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(explain_beneath(&path, e)),
        }
    }

    /// The contents of the regular file at `rel` below this folder, read without following a
    /// symlink or leaving the folder; the file must belong to `owner` and hold at most `max`
    /// bytes. None when it does not exist.
    pub fn read_beneath(
        &self,
        rel: &Path,
        owner: u32,
        max: u64,
    ) -> Result<Option<Vec<u8>>, DirError> {
        let path = self.path.join(rel);
        let Some(file) = self.open_file_beneath(rel)? else {
            return Ok(None);
        };
        let st = fstat(file.as_fd()).map_err(|e| DirError::io("inspect", &path, e))?;
        if st.st_uid != owner {
            return Err(DirError::Owner {
                path,
                found: st.st_uid,
                expected: owner,
            });
        }
        if st.st_size as u64 > max {
            return Err(DirError::TooLarge { path, max });
        }
        let mut bytes = Vec::new();
        file.take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| DirError::io("read", &path, e))?;
        if bytes.len() as u64 > max {
            return Err(DirError::TooLarge { path, max });
        }
        Ok(Some(bytes))
    }

    /// The regular file at `rel` below this folder, opened for reading without following a
    /// symlink or leaving the folder; None when it does not exist. Callers check its owner.
    pub fn open_file_beneath(&self, rel: &Path) -> Result<Option<std::fs::File>, DirError> {
        let path = self.path.join(rel);
        // O_NONBLOCK: a FIFO planted in its place must not hang root.
        let flags =
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
        let fd = match openat2_beneath(self.fd.as_fd(), rel, flags) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(explain_beneath(&path, e)),
        };
        let st = fstat(fd.as_fd()).map_err(|e| DirError::io("inspect", &path, e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(DirError::NotFile { path });
        }
        Ok(Some(std::fs::File::from(fd)))
    }

    /// A new file `name` in this folder with `mode`, open for writing: made with `O_EXCL`,
    /// never through a link.
    pub fn create_file(&self, name: &str, mode: u32) -> Result<std::fs::File, DirError> {
        let path = self.join(name);
        let name_c = c_name(name, &path)?;
        // SAFETY: valid descriptor and name; the new descriptor is owned at once.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                name_c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(DirError::io("create", &path, io::Error::last_os_error()));
        }
        // SAFETY: a descriptor just opened and owned by nothing else.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        // SAFETY: a valid descriptor; the mode is set past the umask.
        if unsafe { libc::fchmod(file.as_raw_fd(), mode) } < 0 {
            return Err(DirError::io(
                "set the mode of",
                &path,
                io::Error::last_os_error(),
            ));
        }
        Ok(file)
    }

    /// A new symlink `name` in this folder pointing at `target`.
    pub fn symlink(&self, name: &str, target: &str) -> Result<(), DirError> {
        let path = self.join(name);
        let name_c = c_name(name, &path)?;
        let target_c = CString::new(target)
            .map_err(|_| DirError::io("link", &path, io::ErrorKind::InvalidInput.into()))?;
        // SAFETY: valid descriptor and NUL-terminated strings.
        if unsafe { libc::symlinkat(target_c.as_ptr(), self.fd.as_raw_fd(), name_c.as_ptr()) } < 0 {
            return Err(DirError::io("link", &path, io::Error::last_os_error()));
        }
        Ok(())
    }

    /// A new overlayfs whiteout `name` in this folder: a character device 0/0, which since
    /// Linux 5.8 any account may make.
    pub fn whiteout(&self, name: &str) -> Result<(), DirError> {
        let path = self.join(name);
        let name_c = c_name(name, &path)?;
        // SAFETY: valid descriptor and name.
        if unsafe { libc::mknodat(self.fd.as_raw_fd(), name_c.as_ptr(), libc::S_IFCHR, 0) } < 0 {
            return Err(DirError::io(
                "make the whiteout",
                &path,
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// The contents of the regular file `name` in this folder (not through a symlink); None
    /// when there is none.
    pub fn read_file(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>, DirError> {
        let (uid, _, _) = self.owner_and_mode()?;
        let path = self.join(name);
        match self.read_beneath(Path::new(name), uid, max) {
            // A file of another owner in a folder of ours is not what we wrote: read as absent,
            // so the caller writes its own in its place.
            Err(DirError::Owner { .. } | DirError::NotFile { .. } | DirError::Symlink { .. }) => {
                Ok(None)
            }
            Err(DirError::TooLarge { .. }) => Ok(None),
            other => other.map_err(|e| match e {
                DirError::Io { op, source, .. } => DirError::Io { op, path, source },
                e => e,
            }),
        }
    }

    /// Writes the file `name` in this folder whole or not at all, with `mode`: a new
    /// temporary file that nothing else can have opened (made with `O_EXCL`, never through a
    /// link), synced, then renamed over `name`.
    pub fn write_file(&self, name: &str, contents: &[u8], mode: u32) -> Result<(), DirError> {
        let path = self.join(name);
        // A fixed name, so that a writer killed midway leaves at most one, which the next
        // write removes (callers hold the lock that makes them the only writer).
        let temp = format!(".{name}.tmp");
        let temp_c = c_name(&temp, &path)?;
        let name_c = c_name(name, &path)?;
        let dirfd = self.fd.as_raw_fd();
        // A temporary file left by a killed writer, or planted by someone: removed, never used.
        // SAFETY: valid descriptor and NUL-terminated name.
        unsafe { libc::unlinkat(dirfd, temp_c.as_ptr(), 0) };
        let result = (|| {
            // SAFETY: valid descriptor and name; the new descriptor is owned at once.
            let fd = unsafe {
                libc::openat(
                    dirfd,
                    temp_c.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    mode as libc::c_uint,
                )
            };
            if fd < 0 {
                return Err(DirError::io("create", &path, io::Error::last_os_error()));
            }
            // SAFETY: openat just returned this descriptor.
            let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            // The umask may have narrowed the mode given at creation.
            // SAFETY: a valid descriptor.
            if unsafe { libc::fchmod(file.as_raw_fd(), mode) } < 0 {
                return Err(DirError::io(
                    "set the mode of",
                    &path,
                    io::Error::last_os_error(),
                ));
            }
            file.write_all(contents)
                .and_then(|()| file.sync_all())
                .map_err(|e| DirError::io("write", &path, e))?;
            // SAFETY: valid descriptors and names.
            if unsafe { libc::renameat(dirfd, temp_c.as_ptr(), dirfd, name_c.as_ptr()) } < 0 {
                return Err(DirError::io("write", &path, io::Error::last_os_error()));
            }
            // SAFETY: a valid descriptor.
            unsafe { libc::fsync(dirfd) };
            Ok(())
        })();
        if result.is_err() {
            // SAFETY: valid descriptor and name.
            unsafe { libc::unlinkat(dirfd, temp_c.as_ptr(), 0) };
        }
        result
    }

    /// Writes `name` unless it already holds exactly `contents` with `mode` and this folder's
    /// owner. Returns whether it wrote.
    pub fn ensure_file(&self, name: &str, contents: &[u8], mode: u32) -> Result<bool, DirError> {
        let limit = contents.len() as u64;
        if self.read_file(name, limit)?.as_deref() == Some(contents) {
            let path = self.join(name);
            let fd = openat2_beneath(
                self.fd.as_fd(),
                Path::new(name),
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
            .map_err(|e| explain_beneath(&path, e))?;
            let st = fstat(fd.as_fd()).map_err(|e| DirError::io("inspect", &path, e))?;
            if st.st_mode & 0o7777 == mode && st.st_nlink == 1 {
                return Ok(false);
            }
        }
        self.write_file(name, contents, mode)?;
        Ok(true)
    }

    /// Removes the file (or symlink) `name`; whether there was one.
    pub fn remove_file(&self, name: &str) -> Result<bool, DirError> {
        let path = self.join(name);
        let name_c = c_name(name, &path)?;
        // SAFETY: valid descriptor and name.
        if unsafe { libc::unlinkat(self.fd.as_raw_fd(), name_c.as_ptr(), 0) } < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::NotFound => Ok(false),
                _ => Err(DirError::io("remove", &path, e)),
            };
        }
        Ok(true)
    }

    /// Renames `name` to `to` within this folder, never replacing anything.
    pub fn rename_noreplace(&self, name: &str, to: &Dir, new: &str) -> Result<(), DirError> {
        self.rename_at(name, to, new, libc::RENAME_NOREPLACE, "move")
    }

    /// Swaps `a` and `b`, two names in this folder, in one step (`RENAME_EXCHANGE`).
    pub fn exchange(&self, a: &str, b: &str) -> Result<(), DirError> {
        self.rename_at(a, self, b, libc::RENAME_EXCHANGE, "swap")
    }

    /// `renameat2` of `name` here to `new` in `to`, with `flags`.
    fn rename_at(
        &self,
        name: &str,
        to: &Dir,
        new: &str,
        flags: libc::c_uint,
        op: &'static str,
    ) -> Result<(), DirError> {
        let path = self.join(name);
        let (from_c, to_c) = (c_name(name, &path)?, c_name(new, &to.join(new))?);
        // SAFETY: valid descriptors and names.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                self.fd.as_raw_fd(),
                from_c.as_ptr(),
                to.fd.as_raw_fd(),
                to_c.as_ptr(),
                flags,
            )
        };
        if rc < 0 {
            return Err(DirError::io(op, &path, io::Error::last_os_error()));
        }
        Ok(())
    }

    /// The extended attribute `name` of this folder; None when it has none.
    pub fn xattr(&self, name: &str) -> Result<Option<Vec<u8>>, DirError> {
        let name_c = CString::new(name).map_err(|_| {
            DirError::io(
                "read an attribute of",
                &self.path,
                io::ErrorKind::InvalidInput.into(),
            )
        })?;
        let mut value = vec![0u8; 4096];
        // SAFETY: a valid descriptor, a NUL-terminated name and a buffer of the given size.
        let n = unsafe {
            libc::fgetxattr(
                self.fd.as_raw_fd(),
                name_c.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
                _ => Err(DirError::io("read an attribute of", &self.path, e)),
            };
        }
        value.truncate(n as usize);
        Ok(Some(value))
    }

    /// Sets the extended attribute `name` of this folder.
    pub fn set_xattr(&self, name: &str, value: &[u8]) -> Result<(), DirError> {
        let name_c = CString::new(name).map_err(|_| {
            DirError::io(
                "set an attribute of",
                &self.path,
                io::ErrorKind::InvalidInput.into(),
            )
        })?;
        // SAFETY: a valid descriptor, a NUL-terminated name and a value of the given size.
        let rc = unsafe {
            libc::fsetxattr(
                self.fd.as_raw_fd(),
                name_c.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if rc < 0 {
            return Err(DirError::io(
                "set an attribute of",
                &self.path,
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Removes `name` and everything below it through descriptors, never following a symlink
    /// (a link is removed, not what it points to) and never leaving this filesystem. Returns
    /// whether there was anything.
    pub fn remove_tree(&self, name: &str) -> Result<bool, DirError> {
        /// Deeper than any game tree; a trap of endless folders ends in a clear error.
        const MAX_DEPTH: usize = 512;
        /// How often folders that were filled again while being emptied are listed again.
        const MAX_RELISTS: usize = 64;
        let mut relists = 0;
        let path = self.join(name);
        let dev = fstat(self.fd.as_fd())
            .map_err(|e| DirError::io("inspect", &self.path, e))?
            .st_dev;
        match lstat_at(self.fd.as_fd(), name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(DirError::io("inspect", &path, e)),
            Ok(_) => {}
        }
        // Depth-first with a stack of open folders: (folder, the names it still holds).
        let Some(top) = self.unlink_or_open(name, dev)? else {
            return Ok(true);
        };
        let mut stack: Vec<(Dir, Vec<String>)> = vec![top];
        while let Some((dir, mut names)) = stack.pop() {
            match names.pop() {
                Some(child) => {
                    let opened = dir.unlink_or_open(&child, dev)?;
                    stack.push((dir, names));
                    if let Some((sub, sub_names)) = opened {
                        if stack.len() >= MAX_DEPTH {
                            return Err(DirError::TooDeep {
                                path,
                                max: MAX_DEPTH,
                            });
                        }
                        stack.push((sub, sub_names));
                    }
                }
                None => {
                    // Emptied: remove it from its parent (or, for the top, from self).
                    let (parent, leaf) = match stack.last() {
                        Some((parent, _)) => (parent.fd.as_fd(), dir.leaf()),
                        None => (self.fd.as_fd(), name.to_owned()),
                    };
                    match rmdir_at(parent, &leaf) {
                        Ok(()) => {}
                        // Moved away meanwhile by whoever owns the folder: gone from here.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        // Swapped for a link or a file meanwhile: that goes instead.
                        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                            unlink_at(parent, &leaf)
                                .map_err(|e| DirError::io("remove", &dir.path, e))?;
                        }
                        // Filled again meanwhile: empty it again, a bounded number of times.
                        Err(e)
                            if e.raw_os_error() == Some(libc::ENOTEMPTY)
                                && relists < MAX_RELISTS =>
                        {
                            relists += 1;
                            let names = dir.names()?;
                            stack.push((dir, names));
                        }
                        Err(e) => return Err(DirError::io("remove", &dir.path, e)),
                    }
                }
            }
        }
        Ok(true)
    }

    /// For `remove_tree`: removes `name` if it is not a folder; else opens it and lists it.
    fn unlink_or_open(&self, name: &str, dev: u64) -> Result<Option<(Dir, Vec<String>)>, DirError> {
        let path = self.join(name);
        let st = match lstat_at(self.fd.as_fd(), name) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DirError::io("inspect", &path, e)),
        };
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            self.remove_file(name)?;
            return Ok(None);
        }
        let dir = match open_dir_at(self.fd.as_fd(), name) {
            Ok(fd) => Dir { fd, path },
            // Swapped for a link or a file since: remove that instead.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                self.remove_file(name)?;
                return Ok(None);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DirError::io("open", &path, e)),
        };
        let st = fstat(dir.fd.as_fd()).map_err(|e| DirError::io("inspect", &dir.path, e))?;
        if st.st_dev != dev {
            return Err(DirError::io(
                "remove",
                &dir.path,
                io::Error::other("something is mounted there"),
            ));
        }
        let names = dir.names()?;
        Ok(Some((dir, names)))
    }

    fn leaf(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The names in this folder.
    pub fn names(&self) -> Result<Vec<String>, DirError> {
        let err = |e| DirError::io("list", &self.path, e);
        // SAFETY: dup of a valid descriptor; fdopendir takes ownership of the duplicate.
        let dup = unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(err(io::Error::last_os_error()));
        }
        // SAFETY: dup is a valid descriptor of a folder, owned by the stream from here on.
        let stream = unsafe { libc::fdopendir(dup) };
        if stream.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so dup is still ours.
            unsafe { libc::close(dup) };
            return Err(err(e));
        }
        let mut names = Vec::new();
        // SAFETY: a valid stream; the duplicate shares its offset, so start from the top.
        unsafe { libc::rewinddir(stream) };
        loop {
            // SAFETY: a valid stream; the entry is read before the next call.
            let entry = unsafe { libc::readdir(stream) };
            if entry.is_null() {
                break;
            }
            // SAFETY: d_name is NUL-terminated within the entry.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
            let name = name.to_bytes();
            if name != b"." && name != b".." {
                names.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        // SAFETY: a valid stream, closed once (closing the duplicate).
        unsafe { libc::closedir(stream) };
        Ok(names)
    }

    pub fn chown(&self, uid: u32, gid: u32) -> Result<(), DirError> {
        // SAFETY: a valid descriptor.
        if unsafe { libc::fchown(self.fd.as_raw_fd(), uid, gid) } < 0 {
            return Err(DirError::io(
                "chown",
                &self.path,
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    pub fn chmod(&self, mode: u32) -> Result<(), DirError> {
        // SAFETY: a valid descriptor.
        if unsafe { libc::fchmod(self.fd.as_raw_fd(), mode) } < 0 {
            return Err(DirError::io(
                "set the mode of",
                &self.path,
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// A file in this folder to `flock`: made if missing (mode 0600), never through a link.
    pub fn lock_file(&self, name: &str) -> Result<std::fs::File, DirError> {
        let path = self.join(name);
        let name_c = c_name(name, &path)?;
        // SAFETY: valid descriptor and name; the new descriptor is owned at once.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                name_c.as_ptr(),
                libc::O_RDWR
                    | libc::O_CREAT
                    | libc::O_NOFOLLOW
                    | libc::O_NONBLOCK
                    | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(classify(self.fd.as_fd(), name, &path, e));
        }
        // SAFETY: openat just returned this descriptor.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let st = fstat(file.as_fd()).map_err(|e| DirError::io("inspect", &path, e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(DirError::NotFile { path });
        }
        Ok(file)
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn walk(path: &Path, mode: Walk) -> Result<Dir, DirError> {
    if !path.is_absolute() {
        return Err(DirError::io(
            "open",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not an absolute path"),
        ));
    }
    let root = Path::new("/");
    // SAFETY: a constant NUL-terminated path; the descriptor is owned at once.
    let fd = unsafe {
        libc::open(
            c"/".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(DirError::io("open", root, io::Error::last_os_error()));
    }
    // SAFETY: open just returned this descriptor.
    let mut dir = Dir {
        fd: unsafe { OwnedFd::from_raw_fd(fd) },
        path: root.to_path_buf(),
    };
    let mut components = path.components().peekable();
    while let Some(component) = components.next() {
        let name = match component {
            Component::RootDir | Component::CurDir => continue,
            Component::Normal(name) => name,
            Component::ParentDir | Component::Prefix(_) => {
                return Err(DirError::io(
                    "open",
                    path,
                    io::Error::new(io::ErrorKind::InvalidInput, "'..' in the path"),
                ));
            }
        };
        if mode == Walk::Trusted {
            let st = fstat(dir.fd.as_fd()).map_err(|e| DirError::io("inspect", &dir.path, e))?;
            trusted(&st, &dir.path, true)?;
        }
        let name = name.to_str().ok_or_else(|| {
            DirError::io(
                "open",
                path,
                io::Error::new(io::ErrorKind::InvalidInput, "not UTF-8"),
            )
        })?;
        let next = dir.join(name);
        let fd = open_dir_at(dir.fd.as_fd(), name)
            .map_err(|e| classify(dir.fd.as_fd(), name, &next, e))?;
        dir = Dir { fd, path: next };
        if components.peek().is_none() && mode == Walk::Trusted {
            dir.check_trusted()?;
        }
    }
    if mode == Walk::Trusted && dir.path == root {
        dir.check_trusted()?;
    }
    Ok(dir)
}

/// Whether a folder can be changed by nobody but root (or the caller). On the way to a
/// folder (`on_the_way`), a sticky folder may be writable by all.
fn trusted(st: &libc::stat, path: &Path, on_the_way: bool) -> Result<(), DirError> {
    let mode = st.st_mode & 0o7777;
    let owner_ok = st.st_uid == 0 || st.st_uid == euid();
    let group_writable = mode & 0o020 != 0 && st.st_gid != 0;
    let other_writable = mode & 0o002 != 0 && !(on_the_way && mode & 0o1000 != 0);
    if owner_ok && !group_writable && !other_writable {
        Ok(())
    } else {
        Err(DirError::Untrusted {
            path: path.to_path_buf(),
            uid: st.st_uid,
            mode,
        })
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

fn c_name(name: &str, path: &Path) -> Result<CString, DirError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(DirError::io(
            "open",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a plain name"),
        ));
    }
    CString::new(name).map_err(|_| {
        DirError::io(
            "open",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "contains a NUL byte"),
        )
    })
}

fn open_dir_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    let name_c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: valid descriptor and name; the new descriptor is owned at once.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name_c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat just returned this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Turns an `O_NOFOLLOW | O_DIRECTORY` failure into what was found instead.
fn classify(dir: BorrowedFd<'_>, name: &str, path: &Path, error: io::Error) -> DirError {
    if matches!(error.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR))
        && let Ok(st) = lstat_at(dir, name)
    {
        return match st.st_mode & libc::S_IFMT {
            libc::S_IFLNK => DirError::Symlink {
                path: path.to_path_buf(),
            },
            libc::S_IFDIR => DirError::io("open", path, error),
            _ => DirError::NotDir {
                path: path.to_path_buf(),
            },
        };
    }
    DirError::io("open", path, error)
}

fn explain_beneath(path: &Path, error: io::Error) -> DirError {
    match error.raw_os_error() {
        // RESOLVE_NO_SYMLINKS and O_NOFOLLOW both answer ELOOP for a link on the way.
        Some(libc::ELOOP) => DirError::Symlink {
            path: path.to_path_buf(),
        },
        Some(libc::ENOTDIR) => DirError::NotDir {
            path: path.to_path_buf(),
        },
        Some(libc::EXDEV) => {
            DirError::io("open", path, io::Error::other("the path leaves its folder"))
        }
        Some(libc::ENOSYS) => DirError::io(
            "open",
            path,
            io::Error::other("this kernel has no openat2 (Linux 5.6 or later is needed)"),
        ),
        _ => DirError::io("open", path, error),
    }
}

/// `openat2` below `dir`: no symlink (nor /proc magic link) anywhere on the way, and never
/// above `dir`.
fn openat2_beneath(dir: BorrowedFd<'_>, rel: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let rel_c = CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    /// `struct open_how` of openat2(2).
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: flags as u64,
        mode: 0,
        resolve: libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: valid descriptor, NUL-terminated path and a fully initialised open_how of the
    // size passed; the new descriptor is owned at once.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            rel_c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat2 just returned this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: fstat fills the zeroed struct for a valid descriptor.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd.as_raw_fd(), &mut st) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }
}

fn lstat_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<libc::stat> {
    let name_c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: fstatat fills the zeroed struct for a valid descriptor and name.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstatat(
            dir.as_raw_fd(),
            name_c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        ) < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }
}

fn unlink_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let name_c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: valid descriptor and name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name_c.as_ptr(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn rmdir_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let name_c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: valid descriptor and name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name_c.as_ptr(), libc::AT_REMOVEDIR) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn tempdir() -> (tempfile::TempDir, Dir) {
        let dir = tempfile::tempdir().unwrap();
        let open = Dir::open_no_follow(dir.path()).unwrap();
        (dir, open)
    }

    #[test]
    fn walks_refuse_a_symlink_anywhere_on_the_way() {
        let (tmp, _) = tempdir();
        std::fs::create_dir_all(tmp.path().join("real/below")).unwrap();
        symlink(tmp.path().join("real"), tmp.path().join("link")).unwrap();
        let err = Dir::open_no_follow(&tmp.path().join("link/below")).unwrap_err();
        assert!(matches!(err, DirError::Symlink { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{} is a symlink, which the agent does not follow here",
                tmp.path().join("link").display()
            )
        );
        assert!(Dir::open_no_follow(&tmp.path().join("real/below")).is_ok());
    }

    #[test]
    fn trusted_walks_refuse_a_folder_others_can_write() {
        let (tmp, _) = tempdir();
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::create_dir(open.join("inner")).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Dir::open_trusted(&open.join("inner")).unwrap_err();
        assert!(matches!(err, DirError::Untrusted { .. }), "{err}");
        // Sticky, like /tmp: fine on the way, not as the folder itself.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(Dir::open_trusted(&open.join("inner")).is_ok());
        assert!(Dir::open_trusted(&open).is_err());
    }

    #[test]
    fn reads_beneath_refuse_links_and_leaving_the_folder() {
        let (tmp, dir) = tempdir();
        std::fs::write(tmp.path().join("secret"), "root only").unwrap();
        std::fs::create_dir(tmp.path().join("inner")).unwrap();
        symlink(tmp.path().join("secret"), tmp.path().join("inner/spec")).unwrap();
        let inner = dir.open_dir("inner").unwrap().unwrap();
        let me = euid();
        let err = inner.read_beneath(Path::new("spec"), me, 100).unwrap_err();
        assert!(matches!(err, DirError::Symlink { .. }), "{err}");
        let err = inner
            .read_beneath(Path::new("../secret"), me, 100)
            .unwrap_err();
        assert!(matches!(err, DirError::Io { .. }), "{err}");
        assert_eq!(
            dir.read_beneath(Path::new("secret"), me, 100)
                .unwrap()
                .unwrap(),
            b"root only"
        );
        assert!(
            dir.read_beneath(Path::new("missing"), me, 100)
                .unwrap()
                .is_none()
        );
        let err = dir
            .read_beneath(Path::new("secret"), me + 1, 100)
            .unwrap_err();
        assert!(matches!(err, DirError::Owner { .. }), "{err}");
        let err = dir.read_beneath(Path::new("secret"), me, 4).unwrap_err();
        assert!(matches!(err, DirError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn writes_never_go_through_a_planted_temporary_file() {
        let (tmp, dir) = tempdir();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let temp = ".server.cfg.tmp";
        symlink(&victim, tmp.path().join(temp)).unwrap();
        std::fs::hard_link(&victim, tmp.path().join("server.cfg")).unwrap();
        dir.write_file("server.cfg", b"hostname x\n", 0o640)
            .unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(
            std::fs::read(tmp.path().join("server.cfg")).unwrap(),
            b"hostname x\n"
        );
        assert!(!tmp.path().join(temp).exists());
        assert!(
            !dir.ensure_file("server.cfg", b"hostname x\n", 0o640)
                .unwrap()
        );
        assert!(
            dir.ensure_file("server.cfg", b"hostname y\n", 0o640)
                .unwrap()
        );
    }

    #[test]
    fn removing_a_tree_removes_links_not_what_they_point_to() {
        let (tmp, dir) = tempdir();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "kept").unwrap();
        let tree = tmp.path().join("tree");
        std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
        std::fs::write(tree.join("a/b/c/file"), "x").unwrap();
        symlink(&outside, tree.join("a/escape")).unwrap();
        symlink(outside.join("keep"), tree.join("a/b/escape-file")).unwrap();
        assert!(dir.remove_tree("tree").unwrap());
        assert!(!tree.exists());
        assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"kept");
        assert!(!dir.remove_tree("tree").unwrap());
        // A link named like the tree is removed itself.
        symlink(&outside, &tree).unwrap();
        assert!(dir.remove_tree("tree").unwrap());
        assert!(outside.join("keep").exists());
    }

    #[test]
    fn ensure_dir_makes_and_fixes_folders_and_refuses_links() {
        let (tmp, dir) = tempdir();
        let me = (euid(), unsafe { libc::getegid() });
        let (_, changed) = dir.ensure_dir("made", 0o750, me).unwrap();
        assert!(changed);
        let mode = std::fs::metadata(tmp.path().join("made"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o750);
        assert!(!dir.ensure_dir("made", 0o750, me).unwrap().1);
        assert!(dir.ensure_dir("made", 0o755, me).unwrap().1);
        symlink(tmp.path().join("made"), tmp.path().join("link")).unwrap();
        let err = dir.ensure_dir("link", 0o755, me).unwrap_err();
        assert!(matches!(err, DirError::Symlink { .. }), "{err}");
    }
}
