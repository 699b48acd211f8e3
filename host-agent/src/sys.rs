//! The system calls behind the agent's mount logic, behind a small trait: [`Linux`] makes
//! them, [`Recording`] keeps an in-memory mount table and a log of calls, so the logic in
//! `mounts` is unit-tested without root and then tested for real.

use crate::mountinfo::{self, Mount};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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
}

/// The mount operations the agent needs.
pub trait Mounter {
    /// The calling process's mount table, from `/proc/self/mountinfo`.
    fn mountinfo(&self) -> Result<Vec<Mount>, SysError>;
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
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(|e| SysError::new("read", path, e))?;
        Ok(mountinfo::parse(&text))
    }

    fn bind_idmapped(&self, source: &Path, target: &Path, map: IdMap) -> Result<(), SysError> {
        let userns = user_namespace(map).map_err(|e| SysError::new("idmap", target, e))?;
        let source_c = c_path(source)?;
        let target_c = c_path(target)?;
        // SAFETY: plain syscalls on valid NUL-terminated paths and owned descriptors; the
        // returned descriptor is taken into an OwnedFd at once.
        unsafe {
            let tree = libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                source_c.as_ptr(),
                (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint,
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
            let empty = c"";
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
            if libc::syscall(
                libc::SYS_move_mount,
                tree.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_FDCWD,
                target_c.as_ptr(),
                libc::MOVE_MOUNT_F_EMPTY_PATH as libc::c_uint,
            ) < 0
            {
                return Err(SysError::new(
                    "move_mount",
                    target,
                    io::Error::last_os_error(),
                ));
            }
        }
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
        let target_c = c_path(target)?;
        let options_c = CString::new(options).expect("overlay options contain no NUL");
        // SAFETY: valid NUL-terminated strings; mount(2) copies them.
        let rc = unsafe {
            libc::mount(
                c"overlay".as_ptr(),
                target_c.as_ptr(),
                c"overlay".as_ptr(),
                0,
                options_c.as_ptr().cast(),
            )
        };
        if rc < 0 {
            return Err(SysError::new(
                "mount overlay",
                target,
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), SysError> {
        let target_c = c_path(target)?;
        // SAFETY: a valid NUL-terminated path.
        let rc = unsafe { libc::umount2(target_c.as_ptr(), libc::UMOUNT_NOFOLLOW) };
        if rc < 0 {
            return Err(SysError::new("umount", target, io::Error::last_os_error()));
        }
        Ok(())
    }
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
            // If the agent is killed, the helper must not outlive it: it holds copies of the
            // agent's descriptors, the server's lock among them.
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
