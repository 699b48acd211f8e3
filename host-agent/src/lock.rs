//! One operation at a time per server: an exclusive `flock` on the server's lock file,
//! taken without waiting, so a second caller fails fast with "busy". The kernel drops the
//! lock when the process dies, so a killed agent never leaves a stale lock.

use std::os::fd::AsRawFd;
use std::path::Path;

pub struct Lock {
    _file: std::fs::File,
}

pub enum LockError {
    Busy,
    Io(std::io::Error),
}

impl Lock {
    /// Locks the file at `path`, made if missing (never through a link).
    pub fn try_acquire(path: &Path) -> Result<Lock, LockError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(LockError::Io)?;
        Self::try_file(file)
    }

    /// Locks the folder at `dir` itself (a folder can be `flock`ed, so nothing is made in
    /// it), waiting for the holder: for short sections that must not run twice at once.
    pub fn wait_for_dir(dir: &Path) -> std::io::Result<Lock> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(dir)?;
        loop {
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Lock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// Locks an open file.
    pub fn try_file(file: std::fs::File) -> Result<Lock, LockError> {
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Lock { _file: file });
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Err(LockError::Busy)
        } else {
            Err(LockError::Io(err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let first = Lock::try_acquire(&path).ok().unwrap();
        assert!(matches!(Lock::try_acquire(&path), Err(LockError::Busy)));
        drop(first);
        assert!(Lock::try_acquire(&path).is_ok());
    }
}
