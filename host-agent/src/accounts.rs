//! The two accounts of a host: the owner of installs and overlays (`left4me`, also the
//! app's login) and the unprivileged account that runs the game. Read from /etc/passwd
//! directly: a static binary has no NSS. Root hands work on their files to them
//! ([`run_as`]), and turns into the owner for the commands that are not root's ([`switch_to`]).

use crate::error::AgentError;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub const OWNER: &str = "left4me";
pub const GAME: &str = "left4me-game";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// Looks `name` up in a passwd file.
pub fn lookup_in(passwd: &str, name: &str) -> Option<Account> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 4 && fields[0] == name).then(|| {
            Some(Account {
                uid: fields[2].parse().ok()?,
                gid: fields[3].parse().ok()?,
            })
        })?
    })
}

pub fn lookup(name: &str) -> Result<Account, AgentError> {
    let path = Path::new("/etc/passwd");
    let passwd = std::fs::read_to_string(path).map_err(crate::error::io_context("read", path))?;
    lookup_in(&passwd, name).ok_or_else(|| {
        AgentError::failed(
            format!("account {name:?} does not exist"),
            "run `l4d2-agent setup` on this host first",
        )
    })
}

/// An account for people: `uid 997 (left4me-game)`, or the bare uid when it has no name.
pub fn describe(uid: u32) -> String {
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() >= 3 && fields[2] == uid.to_string()).then(|| fields[0].to_owned())
            })
        });
    match name {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

/// The home folder /etc/passwd gives `name`.
pub fn home_in(passwd: &str, name: &str) -> Option<PathBuf> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 6 && fields[0] == name).then(|| PathBuf::from(fields[5]))
    })
}

/// The groups /etc/group lists `name` in, besides its own.
pub fn groups_in(group: &str, name: &str) -> Vec<u32> {
    group
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 4 && fields[3].split(',').any(|m| m == name))
                .then(|| fields[2].parse().ok())?
        })
        .collect()
}

fn euid_and_egid() -> (u32, u32) {
    // SAFETY: these calls cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// Makes this process the account `name` for the rest of its life: its groups, gid and uid,
/// and `HOME`, `USER` and `LOGNAME`. Root runs the commands that are not root's this way, so
/// that what they write belongs to the owner and nothing they touch is touched as root.
pub fn switch_to(name: &str) -> Result<(), AgentError> {
    let account = lookup(name)?;
    let read = |path: &str| {
        std::fs::read_to_string(path).map_err(crate::error::io_context("read", Path::new(path)))
    };
    let passwd = read("/etc/passwd")?;
    let mut groups = groups_in(&read("/etc/group")?, name);
    groups.push(account.gid);
    let failed = |e| AgentError::failed(format!("cannot become the account {name:?}"), e);
    // SAFETY: plain system calls with a valid array; this runs before any thread starts.
    unsafe {
        if libc::setgroups(groups.len(), groups.as_ptr()) < 0
            || libc::setresgid(account.gid, account.gid, account.gid) < 0
            || libc::setresuid(account.uid, account.uid, account.uid) < 0
        {
            return Err(failed(std::io::Error::last_os_error()));
        }
    }
    if euid_and_egid() != (account.uid, account.gid) {
        return Err(failed(std::io::Error::other("the ids did not change")));
    }
    if let Some(home) = home_in(&passwd, name) {
        // SAFETY: single-threaded at this point (before any command runs).
        unsafe { std::env::set_var("HOME", home) };
    }
    // SAFETY: as above.
    unsafe {
        std::env::set_var("USER", name);
        std::env::set_var("LOGNAME", name);
    }
    Ok(())
}

/// Runs `work` as `account` (its uid and gid, no other groups) in a forked child and returns
/// what it returned. Root hands the parts of its steps that touch a less trusted account's
/// files to that account, so a link or a swapped folder planted there leads only where that
/// account could go itself. Runs `work` right here when this process already is `account`.
pub fn run_as(
    account: Account,
    work: impl FnOnce() -> Result<(), AgentError>,
) -> Result<(), AgentError> {
    if euid_and_egid() == (account.uid, account.gid) {
        return work();
    }
    // A forked child holds only the thread that forked: a lock another thread held (the
    // allocator's, say) would never be released in it.
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    if threads != 1 {
        return Err(AgentError::failed(
            "cannot act as another account",
            format!("the agent runs {threads} threads"),
        ));
    }
    let (read, write) = pipe().map_err(|e| AgentError::failed("cannot make a pipe", e))?;
    // SAFETY: this process has one thread, so the child may run ordinary code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(AgentError::failed(
            "cannot fork",
            std::io::Error::last_os_error(),
        ));
    }
    if pid == 0 {
        drop(read);
        let code = in_child(account, &write, work);
        // SAFETY: ends the child without running the parent's exit handlers or flushing its
        // buffers a second time.
        unsafe { libc::_exit(code) };
    }
    drop(write);
    let mut message = String::new();
    let _ = std::fs::File::from(read)
        .take(64 * 1024)
        .read_to_string(&mut message);
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        return Ok(());
    }
    if message.is_empty() {
        message = format!("the step run as uid {} ended abnormally", account.uid);
    }
    Err(
        match libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status) as u8) {
            Some(crate::error::exit::INVALID) => AgentError::Invalid(message),
            Some(crate::error::exit::BUSY) => AgentError::InUse(message),
            _ => AgentError::Relayed(message),
        },
    )
}

/// The forked child of [`run_as`]: nothing of root's left but this pipe, then the account's
/// ids, then the work. Returns the exit code.
fn in_child(
    account: Account,
    report: &OwnedFd,
    work: impl FnOnce() -> Result<(), AgentError>,
) -> i32 {
    let fd = report.as_raw_fd() as u32;
    let write = |text: &str| {
        // SAFETY: writes from a valid buffer to our pipe.
        unsafe { libc::write(fd as i32, text.as_ptr().cast(), text.len()) };
    };
    // SAFETY: plain system calls; the descriptors closed are root's, unused by the work,
    // which opens what it needs as the account.
    unsafe {
        if fd > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, fd - 1, 0u32);
        }
        libc::syscall(libc::SYS_close_range, fd + 1, u32::MAX, 0u32);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::setgroups(0, std::ptr::null()) < 0
            || libc::setresgid(account.gid, account.gid, account.gid) < 0
            || libc::setresuid(account.uid, account.uid, account.uid) < 0
        {
            write(&format!(
                "cannot become uid {}: {}",
                account.uid,
                std::io::Error::last_os_error()
            ));
            return 1;
        }
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    match result {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            write(&crate::error::chain(&e));
            i32::from(e.exit_code())
        }
        Err(_) => 101,
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the array with two new descriptors on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_accounts_by_name() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nleft4me:x:998:997::/var/lib/left4me:/bin/bash\nleft4me-game:x:997:996::/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(
            lookup_in(passwd, "left4me"),
            Some(Account { uid: 998, gid: 997 })
        );
        assert_eq!(
            lookup_in(passwd, "left4me-game"),
            Some(Account { uid: 997, gid: 996 })
        );
        assert_eq!(lookup_in(passwd, "left4"), None);
        assert_eq!(
            home_in(passwd, "left4me").as_deref(),
            Some(Path::new("/var/lib/left4me"))
        );
    }

    #[test]
    fn groups_list_their_members() {
        let group =
            "root:x:0:\nsystemd-journal:x:101:left4me,other\nadm:x:4:syslog\nleft4me:x:997:\n";
        assert_eq!(groups_in(group, "left4me"), [101]);
        assert_eq!(groups_in(group, "left"), Vec::<u32>::new());
    }

    #[test]
    fn work_as_oneself_runs_in_place_and_reports_its_error() {
        let (uid, gid) = euid_and_egid();
        let me = Account { uid, gid };
        assert!(run_as(me, || Ok(())).is_ok());
        let err = run_as(me, || Err(AgentError::Invalid("no".to_owned()))).unwrap_err();
        assert!(matches!(err, AgentError::Invalid(_)));
    }
}
