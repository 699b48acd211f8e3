//! One app per data folder. Two apps on one database would each take the other's running
//! jobs for leftovers of a crash, so the second launch hands over to the first instead.
//!
//! The first app holds an exclusive lock on `instance.lock` in the data folder for as long
//! as it runs, and listens on a loopback port for "show your window". The port and a random
//! token are in `instance` beside it, readable by this user only (the folder is private),
//! so nobody else on the machine can knock. A later launch that cannot take the lock reads
//! them, knocks, and quits; it never opens the database. An app whose window is gone (it is
//! ending) answers the knock with "closing", and the later launch waits for its lock
//! instead: closing the app and opening it again at once opens it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LOCK_FILE: &str = "instance.lock";
const ADDRESS_FILE: &str = "instance";
/// How long a later launch waits for the first to answer (it may be starting) or to end (it
/// may be closing) before it says so.
const HANDOVER_WAIT: Duration = Duration::from_secs(10);
/// How long either side waits for the other on a knock.
const KNOCK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen for later launches: {0}")]
    Listen(#[source] std::io::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another left4me holds {dir} but does not answer; close it (or end its process) and \
         start again"
    )]
    NoAnswer { dir: PathBuf },
}

/// What a launch finds.
pub enum Claim {
    /// This app is the one for the folder; keep it alive as long as the app runs.
    First(Instance),
    /// Another app has the folder and was asked to show its window.
    Handed,
}

/// The lock and the listener of the app that owns the data folder.
pub struct Instance {
    _lock: File,
    listener: TcpListener,
    token: String,
}

/// Takes the data folder for this app, or asks the app that has it to show itself.
pub fn claim(dir: &Path) -> Result<Claim, InstanceError> {
    claim_within(dir, HANDOVER_WAIT)
}

/// [`claim`], waiting at most `wait` for the app that has the folder to answer or end.
fn claim_within(dir: &Path, wait: Duration) -> Result<Claim, InstanceError> {
    crate::store::create_private_dir(dir).map_err(|source| InstanceError::Lock {
        path: dir.to_path_buf(),
        source,
    })?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| InstanceError::Lock {
            path: lock_path.clone(),
            source,
        })?;
    let deadline = Instant::now() + wait;
    loop {
        match lock.try_lock() {
            Ok(()) => return listen(dir, lock).map(Claim::First),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(InstanceError::Lock {
                    path: lock_path,
                    source,
                });
            }
        }
        // Held: the app that holds it shows its window, or is starting (not listening yet),
        // or ending (its lock goes with its process).
        if knock_once(dir).is_ok() {
            return Ok(Claim::Handed);
        }
        if Instant::now() >= deadline {
            return Err(InstanceError::NoAnswer {
                dir: dir.to_path_buf(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn listen(dir: &Path, lock: File) -> Result<Instance, InstanceError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(InstanceError::Listen)?;
    let port = listener.local_addr().map_err(InstanceError::Listen)?.port();
    let token = random_token().map_err(InstanceError::Listen)?;
    // Whole or not at all: a later launch reads either the old file or this one.
    let path = dir.join(ADDRESS_FILE);
    let partial = dir.join(format!("{ADDRESS_FILE}.partial"));
    std::fs::write(&partial, format!("{port} {token}\n"))
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(|source| InstanceError::Write { path, source })?;
    Ok(Instance {
        _lock: lock,
        listener,
        token,
    })
}

/// Asks the app that holds the lock to show itself: Ok once it says its window is shown.
fn knock_once(dir: &Path) -> std::io::Result<()> {
    let text = std::fs::read_to_string(dir.join(ADDRESS_FILE))?;
    let (port, token) = text
        .trim()
        .split_once(' ')
        .and_then(|(port, token)| Some((port.parse::<u16>().ok()?, token)))
        .ok_or_else(|| std::io::Error::other("unreadable instance file"))?;
    let mut stream =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), KNOCK_TIMEOUT)?;
    stream.set_read_timeout(Some(KNOCK_TIMEOUT))?;
    writeln!(stream, "{token}")?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    match answer.trim() {
        "shown" => Ok(()),
        "closing" => Err(std::io::Error::other("the other app is ending")),
        _ => Err(std::io::Error::other("the other app refused the knock")),
    }
}

impl Instance {
    /// Answers later launches on a thread of its own: `show` runs for each one that knows
    /// the token, and says whether a window was shown (none once the app is ending). Holds
    /// the folder until the process ends.
    pub fn serve(self, show: impl Fn() -> bool + Send + 'static) {
        let spawned = std::thread::Builder::new()
            .name("instance".into())
            .spawn(move || {
                let Instance {
                    _lock,
                    listener,
                    token,
                } = self;
                for stream in listener.incoming().flatten() {
                    answer(stream, &token, &show);
                }
                drop(_lock);
            });
        if let Err(e) = spawned {
            log::warn!("later launches will not find this window: {e}");
        }
    }
}

/// Answers one knock: `show` runs when it carried the token.
fn answer(stream: TcpStream, token: &str, show: &dyn Fn() -> bool) {
    let _ = stream.set_read_timeout(Some(KNOCK_TIMEOUT));
    let mut line = String::new();
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    // A token is 32 hex digits; anything longer is not one.
    if BufReader::new(stream.take(64))
        .read_line(&mut line)
        .is_err()
    {
        return;
    }
    let said = if line.trim_end() != token {
        "refused"
    } else if show() {
        "shown"
    } else {
        "closing"
    };
    let _ = writeln!(writer, "{said}");
}

fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_second_launch_hands_over_to_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let Claim::First(first) = claim(dir.path()).unwrap() else {
            panic!("the first launch owns the folder");
        };
        let (shown, seen) = mpsc::channel();
        first.serve(move || shown.send(()).is_ok());
        assert!(matches!(claim(dir.path()).unwrap(), Claim::Handed));
        seen.recv_timeout(Duration::from_secs(5))
            .expect("the first app was asked to show itself");
        assert!(matches!(claim(dir.path()).unwrap(), Claim::Handed));
        seen.recv_timeout(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn other_folders_are_other_apps() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = claim(a.path()).unwrap();
        assert!(matches!(first, Claim::First(_)));
        assert!(matches!(claim(b.path()).unwrap(), Claim::First(_)));
    }

    #[test]
    fn the_folder_is_free_again_when_its_app_ends() {
        let dir = tempfile::tempdir().unwrap();
        let first = claim(dir.path()).unwrap();
        drop(first);
        // The address file of the app that ended is still there; it is replaced.
        assert!(dir.path().join(ADDRESS_FILE).exists());
        assert!(matches!(claim(dir.path()).unwrap(), Claim::First(_)));
    }

    #[test]
    fn a_knock_without_the_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let Claim::First(first) = claim(dir.path()).unwrap() else {
            panic!("the first launch owns the folder");
        };
        let port = first.listener.local_addr().unwrap().port();
        let (shown, seen) = mpsc::channel();
        first.serve(move || shown.send(()).is_ok());
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        writeln!(stream, "0123456789abcdef0123456789abcdef").unwrap();
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).unwrap();
        assert_eq!(answer, "refused\n");
        assert!(seen.recv_timeout(Duration::from_millis(300)).is_err());
    }

    #[test]
    fn a_launch_while_the_app_is_ending_waits_for_it_and_opens() {
        let dir = tempfile::tempdir().unwrap();
        let Claim::First(ending) = claim(dir.path()).unwrap() else {
            panic!("the first launch owns the folder");
        };
        // Its window is gone; its process ends a moment later, and its lock with it.
        let lock = ending._lock.try_clone().unwrap();
        ending.serve(|| false);
        let ended = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            lock.unlock().unwrap();
        });
        assert!(matches!(claim(dir.path()).unwrap(), Claim::First(_)));
        ended.join().unwrap();
    }

    #[test]
    fn a_holder_that_never_answers_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        // Holds the lock but does not serve: a hung app.
        let _hung = claim(dir.path()).unwrap();
        let err = match claim_within(dir.path(), Duration::from_secs(1)) {
            Err(e) => e,
            Ok(_) => panic!("a silent holder is not a handover"),
        };
        assert!(matches!(err, InstanceError::NoAnswer { .. }), "{err}");
    }
}
