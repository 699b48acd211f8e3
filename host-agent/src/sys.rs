//! The system calls behind the agent's mount logic, behind a small trait: [`Linux`] makes
//! them, [`Recording`] keeps an in-memory mount table and a log of calls, so the logic in
//! `mounts` is unit-tested without root and then tested for real.
//!
//! [`Linux`] mounts by descriptor: a layer is opened without following a link and must
//! belong to the account its id mapping maps from; a mount target is opened through folders
//! only root can change, and the new mount is moved onto that very folder.

use crate::dir::{Dir, DirError};
use crate::mountinfo::{self, Mount};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How an idmapped mount shows ownership: files owned by `from` on disk appear owned by
/// `to` (for uids and gids alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub from_uid: u32,
    pub to_uid: u32,
    pub from_gid: u32,
    pub to_gid: u32,
}

/// A failed system call, with what it was called on.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}", target.display())]
pub struct SysError {
    pub op: &'static str,
    pub target: PathBuf,
    #[source]
    pub source: io::Error,
}

impl SysError {
    fn new(op: &'static str, target: &Path, source: io::Error) -> Self {
        Self {
            op,
            target: target.to_path_buf(),
            source,
        }
    }

    /// A path the agent refused to use, or could not open.
    fn unsafe_path(target: &Path, source: DirError) -> Self {
        let kind = match &source {
            DirError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::PermissionDenied,
        };
        Self::new("use", target, io::Error::new(kind, source))
    }
}

/// The mount table could not be read: the one wording of that failure.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the mount table")]
pub struct TableUnreadable(#[source] pub SysError);

/// The folder `path`, reached through folders only root can change.
fn trusted(path: &Path) -> Result<Dir, SysError> {
    Dir::open_trusted(path).map_err(|e| SysError::unsafe_path(path, e))
}

/// Checks that the folder holding `path` can be changed by root alone, so that the kernel's
/// own lookup of `path` meets nothing another account planted.
fn trusted_parent(path: &Path) -> Result<Dir, SysError> {
    trusted(path.parent().unwrap_or(Path::new("/")))
}

/// The mount operations the agent needs.
pub trait Mounter {
    /// The calling process's mount table, from `/proc/self/mountinfo`.
    fn mountinfo(&self) -> Result<Vec<Mount>, SysError>;
    /// [`Mounter::mountinfo`] for callers that report a failure as [`TableUnreadable`].
    fn mount_table(&self) -> Result<Vec<Mount>, TableUnreadable> {
        self.mountinfo().map_err(TableUnreadable)
    }
    /// Bind-mounts `source` at `target` through the id mapping `map`.
    fn bind_idmapped(&self, source: &Path, target: &Path, map: IdMap) -> Result<(), SysError>;
    /// Mounts an overlayfs at `target`; `lower` is listed top first.
    fn mount_overlay(
        &self,
        lower: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<(), SysError>;
    /// Unmounts the topmost mount at `target`.
    fn unmount(&self, target: &Path) -> Result<(), SysError>;
}

/// The real thing.
pub struct Linux;

impl Mounter for Linux {
    fn mountinfo(&self) -> Result<Vec<Mount>, SysError> {
        mountinfo::read().map_err(|e| SysError::new("read", Path::new(mountinfo::PATH), e))
    }

    fn bind_idmapped(&self, source: &Path, target: &Path, map: IdMap) -> Result<(), SysError> {
        // The layer: reached without a link, and the owner's (the account mapped from).
        let layer = Dir::open_no_follow(source)
            .and_then(|dir| dir.check_owner(map.from_uid).map(|()| dir))
            .map_err(|e| SysError::unsafe_path(source, e))?;
        let target_dir = trusted(target)?;
        let userns = user_namespace(map).map_err(|e| SysError::new("idmap", target, e))?;
        let empty = c"";
        // SAFETY: plain syscalls on owned descriptors and an empty NUL-terminated path; the
        // returned descriptor is taken into an OwnedFd at once.
        unsafe {
            let tree = libc::syscall(
                libc::SYS_open_tree,
                layer.as_fd().as_raw_fd(),
                empty.as_ptr(),
                (libc::AT_EMPTY_PATH
                    | libc::OPEN_TREE_CLONE as i32
                    | libc::OPEN_TREE_CLOEXEC as i32) as libc::c_uint,
            );
            if tree < 0 {
                return Err(SysError::new(
                    "open_tree",
                    source,
                    io::Error::last_os_error(),
                ));
            }
            let tree = OwnedFd::from_raw_fd(tree as i32);
            let attr = libc::mount_attr {
                attr_set: libc::MOUNT_ATTR_IDMAP,
                attr_clr: 0,
                propagation: 0,
                userns_fd: userns.as_raw_fd() as u64,
            };
            if libc::syscall(
                libc::SYS_mount_setattr,
                tree.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_EMPTY_PATH as libc::c_uint,
                &attr as *const libc::mount_attr,
                std::mem::size_of::<libc::mount_attr>(),
            ) < 0
            {
                return Err(SysError::new(
                    "mount_setattr(MOUNT_ATTR_IDMAP)",
                    source,
                    io::Error::last_os_error(),
                ));
            }
            move_mount_onto(&tree, &target_dir, target)
        }
    }

    fn mount_overlay(
        &self,
        lower: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<(), SysError> {
        let options = overlay_options(lower, upper, work)
            .map_err(|e| SysError::new("mount overlay", target, e))?;
        // overlayfs looks the layers up by path, as root: every folder on those paths must
        // be root's alone. The layers' own folders are mount points (the idmapped binds) and
        // the upper layer the game's; none of them can be replaced by another account.
        for layer in lower.iter().map(PathBuf::as_path).chain([upper]) {
            let parent = trusted_parent(layer)?;
            let name = layer.file_name().unwrap_or_default().to_string_lossy();
            parent
                .open_dir(&name)
                .and_then(|found| {
                    found.ok_or_else(|| DirError::NotDir {
                        path: layer.to_path_buf(),
                    })
                })
                .map_err(|e| SysError::unsafe_path(layer, e))?;
        }
        trusted(work)?;
        let target_dir = trusted(target)?;
        let fs =
            fs_open_overlay(&options).map_err(|e| SysError::new("mount overlay", target, e))?;
        move_mount_onto(&fs, &target_dir, target)
    }

    fn unmount(&self, target: &Path) -> Result<(), SysError> {
        trusted_parent(target)?;
        let target_c = c_path(target)?;
        // A process forked at the wrong moment holds a copy of a mount's descriptor until it
        // execs (close-on-exec does not apply to fork): a mount is busy for that moment. A
        // few short retries outlast it; a tree still in use after them is reported.
        let mut tries = 0;
        loop {
            // SAFETY: a valid NUL-terminated path.
            let rc = unsafe { libc::umount2(target_c.as_ptr(), libc::UMOUNT_NOFOLLOW) };
            if rc == 0 {
                return Ok(());
            }
            let error = io::Error::last_os_error();
            tries += 1;
            if error.raw_os_error() != Some(libc::EBUSY) || tries > 10 {
                return Err(SysError::new("umount", target, error));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Moves the detached mount `tree` onto the folder `onto` holds open.
fn move_mount_onto(tree: &OwnedFd, onto: &Dir, target: &Path) -> Result<(), SysError> {
    let empty = c"";
    // SAFETY: owned descriptors and an empty NUL-terminated path.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            onto.as_fd().as_raw_fd(),
            empty.as_ptr(),
            (libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH) as libc::c_uint,
        )
    };
    if rc < 0 {
        return Err(SysError::new(
            "move_mount",
            target,
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// A detached overlayfs mount with `options` (`lowerdir=…,upperdir=…,workdir=…`), made with
/// the mount API (fsopen, fsconfig, fsmount) so that it can be moved onto a descriptor. The
/// kernel's own explanation of a failure is kept in the error.
fn fs_open_overlay(options: &str) -> io::Result<OwnedFd> {
    let fail = |fs: Option<&OwnedFd>| {
        let error = io::Error::last_os_error();
        let said = fs.map(kernel_log).unwrap_or_default();
        if said.is_empty() {
            error
        } else {
            io::Error::new(error.kind(), format!("{error} ({said})"))
        }
    };
    // SAFETY: constant NUL-terminated strings; the descriptor is owned at once.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), libc::FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(fail(None));
    }
    // SAFETY: fsopen just returned this descriptor.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as i32) };
    let mut settings = vec![("source".to_owned(), "overlay".to_owned())];
    for option in options.split(',') {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        settings.push((key.to_owned(), value.to_owned()));
    }
    for (key, value) in settings {
        let key = CString::new(key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let value =
            CString::new(value).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: an owned descriptor and NUL-terminated strings.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                libc::FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        };
        if rc < 0 {
            return Err(fail(Some(&fs)));
        }
    }
    // SAFETY: an owned descriptor; no strings.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if rc < 0 {
        return Err(fail(Some(&fs)));
    }
    // SAFETY: an owned descriptor; the returned one is owned at once.
    let mount =
        unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), libc::FSMOUNT_CLOEXEC, 0) };
    if mount < 0 {
        return Err(fail(Some(&fs)));
    }
    // SAFETY: fsmount just returned this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(mount as i32) })
}

/// What the kernel logged on a filesystem context (its error messages), one line.
fn kernel_log(fs: &OwnedFd) -> String {
    let mut lines = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        // SAFETY: reads into a buffer of the given size from an owned descriptor.
        let n = unsafe { libc::read(fs.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf[..n as usize]);
        // Lines start with "e " (error), "w " (warning) or "i " (information).
        lines.push(line.get(2..).unwrap_or_default().trim().to_owned());
    }
    lines.join("; ")
}

/// The option string of an overlay mount. Paths that overlayfs's option syntax cannot carry
/// (`,` `:` `\` or a newline in them) are refused rather than escaped.
pub fn overlay_options(lower: &[PathBuf], upper: &Path, work: &Path) -> io::Result<String> {
    let text = |p: &Path| -> io::Result<String> {
        let s = p.to_str().ok_or_else(|| invalid(p, "is not UTF-8"))?;
        if s.contains([',', ':', '\\', '\n']) {
            return Err(invalid(p, "contains ',', ':', '\\' or a line break"));
        }
        Ok(s.to_owned())
    };
    let lower = lower
        .iter()
        .map(|p| text(p))
        .collect::<io::Result<Vec<_>>>()?
        .join(":");
    let options = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        text(upper)?,
        text(work)?
    );
    // mount(2) takes one page of options.
    if options.len() >= 4096 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "overlay options are {} bytes, more than a page: use fewer overlays or a shorter --root",
                options.len()
            ),
        ));
    }
    Ok(options)
}

fn invalid(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("path {} {why}", path.display()),
    )
}

fn c_path(path: &Path) -> Result<CString, SysError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        SysError::new(
            "path",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "contains a NUL byte"),
        )
    })
}

/// A user namespace whose id mapping is `map`, as a descriptor for `MOUNT_ATTR_IDMAP`.
///
/// A forked child unshares into a new user namespace and waits; the parent writes the child's
/// uid_map and gid_map, opens its namespace and tells it to exit. The child makes only
/// async-signal-safe calls, so this is sound in a multi-threaded process.
fn user_namespace(map: IdMap) -> io::Result<OwnedFd> {
    // A child forked by another thread meanwhile would inherit copies of these pipes (close-
    // on-exec does not apply to fork); one fork at a time, and explicit bytes rather than
    // end-of-file, keep the handshake exact.
    static FORK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = FORK.lock().unwrap_or_else(|p| p.into_inner());
    let (ready_r, ready_w) = pipe()?;
    let (release_r, release_w) = pipe()?;
    // SAFETY: getpid cannot fail.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the child only makes async-signal-safe system calls, then _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: async-signal-safe calls on descriptors this process owns.
        unsafe {
            // The helper needs only its two pipe ends: the copies of the agent's other
            // descriptors it was forked with (the server's lock among them) are closed at
            // once, so a killed agent's lock is free as soon as the agent is gone, not when
            // the helper notices.
            close_all_but(&[ready_w.as_raw_fd(), release_r.as_raw_fd()]);
            // If the agent is killed, the helper must not outlive it.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            libc::close(ready_r.as_raw_fd());
            libc::close(release_w.as_raw_fd());
            let ok: u8 = u8::from(libc::unshare(libc::CLONE_NEWUSER) == 0);
            libc::write(ready_w.as_raw_fd(), (&ok as *const u8).cast(), 1);
            let mut byte = 0u8;
            libc::read(release_r.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
            libc::_exit(0);
        }
    }
    drop(ready_w);
    drop(release_r);
    let result = (|| {
        let mut ok = [0u8; 1];
        let mut ready = std::fs::File::from(ready_r);
        io::Read::read_exact(&mut ready, &mut ok)?;
        if ok[0] != 1 {
            return Err(io::Error::other(
                "unshare(CLONE_NEWUSER) failed: user namespaces are not available",
            ));
        }
        let proc = PathBuf::from(format!("/proc/{pid}"));
        std::fs::write(
            proc.join("uid_map"),
            format!("{} {} 1\n", map.from_uid, map.to_uid),
        )?;
        std::fs::write(
            proc.join("gid_map"),
            format!("{} {} 1\n", map.from_gid, map.to_gid),
        )?;
        let ns = std::fs::File::open(proc.join("ns/user"))?;
        Ok(OwnedFd::from(ns))
    })();
    // SAFETY: writing one byte from a valid buffer to our pipe.
    unsafe { libc::write(release_w.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    drop(release_w);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    result
}

/// Closes every descriptor above stderr except `keep`; async-signal-safe, for a forked child.
///
/// # Safety
/// Closes descriptors behind the back of whatever owns them: only for a child about to
/// `_exit`.
unsafe fn close_all_but(keep: &[libc::c_int]) {
    let mut from: libc::c_uint = 3;
    let mut kept: [libc::c_int; 2] = [-1; 2];
    for (slot, fd) in kept.iter_mut().zip(keep) {
        *slot = *fd;
    }
    if kept[0] > kept[1] {
        kept.swap(0, 1);
    }
    for fd in kept.into_iter().filter(|fd| *fd >= 3) {
        let fd = fd as libc::c_uint;
        if fd > from {
            // SAFETY: close_range on our own descriptor table.
            unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0) };
        }
        from = fd + 1;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, from, libc::c_uint::MAX, 0) };
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the array with two new descriptors on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A fake [`Mounter`]: an in-memory mount table and the list of calls made.
#[derive(Default)]
pub struct Recording {
    state: Mutex<RecordingState>,
}

#[derive(Default)]
struct RecordingState {
    table: Vec<Mount>,
    calls: Vec<String>,
    next_id: u32,
    fail_on: Option<PathBuf>,
}

impl Recording {
    /// The calls made so far, one line each.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Makes every operation on `target` fail with EBUSY.
    pub fn fail_on(&self, target: &Path) {
        self.state.lock().unwrap().fail_on = Some(target.to_path_buf());
    }

    /// Adds a mount as if someone else had made it (a leak from an earlier bug, say).
    pub fn preexisting(&self, target: &Path, fs_type: &str) {
        self.push(target, fs_type, "preexisting");
    }

    fn push(&self, target: &Path, fs_type: &str, source: &str) {
        let mut state = self.state.lock().unwrap();
        state.next_id += 1;
        let id = state.next_id;
        state.table.push(Mount {
            id,
            parent: 1,
            root: PathBuf::from("/"),
            target: target.to_path_buf(),
            fs_type: fs_type.to_owned(),
            source: source.to_owned(),
        });
    }

    fn record(&self, call: String, target: &Path) -> Result<(), SysError> {
        let mut state = self.state.lock().unwrap();
        state.calls.push(call);
        if state.fail_on.as_deref() == Some(target) {
            return Err(SysError::new(
                "recorded",
                target,
                io::Error::from_raw_os_error(libc::EBUSY),
            ));
        }
        Ok(())
    }
}

impl Mounter for Recording {
    fn mountinfo(&self) -> Result<Vec<Mount>, SysError> {
        Ok(self.state.lock().unwrap().table.clone())
    }

    fn bind_idmapped(&self, source: &Path, target: &Path, map: IdMap) -> Result<(), SysError> {
        self.record(
            format!(
                "bind-idmapped {} {} {}:{}",
                source.display(),
                target.display(),
                map.from_uid,
                map.to_uid
            ),
            target,
        )?;
        self.push(target, "ext4", &source.display().to_string());
        Ok(())
    }

    fn mount_overlay(
        &self,
        lower: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<(), SysError> {
        let options = overlay_options(lower, upper, work)
            .map_err(|e| SysError::new("mount overlay", target, e))?;
        self.record(
            format!("mount-overlay {} {options}", target.display()),
            target,
        )?;
        self.push(target, "overlay", "overlay");
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), SysError> {
        self.record(format!("unmount {}", target.display()), target)?;
        let mut state = self.state.lock().unwrap();
        match state.table.iter().rposition(|m| m.target == target) {
            Some(at) => {
                state.table.remove(at);
                Ok(())
            }
            None => Err(SysError::new(
                "umount",
                target,
                io::Error::from_raw_os_error(libc::EINVAL),
            )),
        }
    }
}
