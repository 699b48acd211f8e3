//! A running server's console as it is printed, beside the journal. journald tells its
//! readers about new entries at most every 250 ms (its post-change timer), so a follower of
//! the journal sees a line an eighth of a second late on average and up to a quarter late.
//! The console process therefore also keeps its recent lines in memory and serves them, and
//! every new one, on a unix socket in the unit's runtime folder (`/run/left4me/<server>/`).
//!
//! Every line has a number within its run (`seq`), and the run has an id; the console gives
//! the journal the same two as fields of each entry (`LEFT4ME_RUN`, `LEFT4ME_SEQ`), so that a
//! follower reading both shows each line once, whichever way it came first.
//!
//! The wire: a greeting `left4me-console 1 <run>\n`, then one record per line,
//! `<seq> <microseconds since the epoch> <text>\n` (the text holds no line break). Only root
//! and the owner's account are served (checked with `SO_PEERCRED`); a reader too slow to keep
//! up is dropped, never waited for: the game's console must not stall on it.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

const GREETING: &str = "left4me-console 1 ";
/// The socket's name in the unit's runtime folder.
pub const SOCKET: &str = "console.sock";
/// Where systemd makes the unit's runtime folder (`RuntimeDirectory=left4me/%i`).
const RUNTIME: &str = "/run/left4me";
/// The lines kept for a new reader: enough to cover the journal's lag many times over at a
/// flood of 10,000 lines a second, within a bounded amount of memory.
const RING_LINES: usize = 20_000;
const RING_BYTES: usize = 4 << 20;
/// What a reader may have waiting before it is dropped as too slow.
const MAX_PENDING: usize = 4 << 20;

pub fn socket_path(server: &str) -> PathBuf {
    Path::new(RUNTIME).join(server).join(SOCKET)
}

/// One console line as the feed carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub seq: u64,
    pub micros: u64,
    pub text: Vec<u8>,
}

impl Line {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("{} {} ", self.seq, self.micros).as_bytes());
        out.extend_from_slice(&self.text);
        out.push(b'\n');
    }

    fn decode(record: &[u8]) -> Option<Line> {
        let mut parts = record.splitn(3, |b| *b == b' ');
        let seq = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
        let micros = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
        Some(Line {
            seq,
            micros,
            text: parts.next()?.to_vec(),
        })
    }
}

struct Reader {
    stream: UnixStream,
    pending: Vec<u8>,
}

/// The console's side: the recent lines and the readers.
pub struct Feed {
    listener: UnixListener,
    run: String,
    allowed: Vec<u32>,
    ring: VecDeque<Line>,
    ring_bytes: usize,
    readers: Vec<Reader>,
}

impl Feed {
    /// Listens at `path` (in a folder of this process's own), serving the accounts `allowed`.
    pub fn listen(path: &Path, run: String, allowed: Vec<u32>) -> std::io::Result<Feed> {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        // Anyone may connect; only `allowed` are answered.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        Ok(Feed {
            listener,
            run,
            allowed,
            ring: VecDeque::new(),
            ring_bytes: 0,
            readers: Vec::new(),
        })
    }

    /// The descriptors to poll: the listener (readable: a reader is waiting), then each reader
    /// (readable: it hung up; writable, when something is pending: room to send more).
    pub fn poll_fds(&self) -> Vec<libc::pollfd> {
        let mut fds = vec![libc::pollfd {
            fd: self.listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        fds.extend(self.readers.iter().map(|r| libc::pollfd {
            fd: r.stream.as_raw_fd(),
            events: if r.pending.is_empty() {
                libc::POLLIN
            } else {
                libc::POLLIN | libc::POLLOUT
            },
            revents: 0,
        }));
        fds
    }

    /// After a poll of [`Feed::poll_fds`] (their `revents` in `polled`): drops the readers
    /// that hung up, takes new ones and sends what is pending.
    pub fn service(&mut self, polled: &[libc::pollfd]) {
        let mut index = 0;
        self.readers.retain(|reader| {
            index += 1;
            let events = polled.get(index).map_or(0, |p| p.revents);
            if events & (libc::POLLHUP | libc::POLLERR) != 0 {
                return false;
            }
            if events & libc::POLLIN != 0 {
                // Readers send nothing: readable means gone (or talking, which is ignored).
                let mut scratch = [0u8; 256];
                return !matches!((&reader.stream).read(&mut scratch), Ok(0));
            }
            true
        });
        while let Ok((stream, _)) = self.listener.accept() {
            if !peer_uid(&stream).is_some_and(|uid| self.allowed.contains(&uid)) {
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let mut pending = format!("{GREETING}{}\n", self.run).into_bytes();
            for line in &self.ring {
                line.encode(&mut pending);
            }
            self.readers.push(Reader { stream, pending });
        }
        self.flush();
    }

    /// Keeps a line and sends it to every reader.
    pub fn publish(&mut self, line: Line) {
        for reader in &mut self.readers {
            line.encode(&mut reader.pending);
        }
        self.ring_bytes += line.text.len();
        self.ring.push_back(line);
        while self.ring.len() > RING_LINES || self.ring_bytes > RING_BYTES {
            if let Some(old) = self.ring.pop_front() {
                self.ring_bytes -= old.text.len();
            }
        }
        self.flush();
    }

    fn flush(&mut self) {
        use std::io::Write;
        self.readers.retain_mut(|reader| {
            while !reader.pending.is_empty() {
                match reader.stream.write(&reader.pending) {
                    Ok(0) => return false,
                    Ok(n) => {
                        reader.pending.drain(..n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
            reader.pending.len() <= MAX_PENDING
        });
    }
}

fn peer_uid(stream: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: reads the peer's credentials into a struct of the given size.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cred.uid)
}

/// A reader's side: the feed of one running console.
pub struct Subscription {
    pub run: String,
    reader: BufReader<UnixStream>,
}

impl Subscription {
    /// Connects to a server's console; None when it is not running (or serves no feed).
    pub fn connect(path: &Path) -> Option<Subscription> {
        let stream = UnixStream::connect(path).ok()?;
        // A console that answers nothing (not ours, or stuck) is not waited for.
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .ok()?;
        let mut reader = BufReader::new(stream);
        let mut greeting = String::new();
        reader.by_ref().take(256).read_line(&mut greeting).ok()?;
        let run = greeting
            .strip_prefix(GREETING)?
            .trim_end_matches('\n')
            .to_owned();
        reader.get_ref().set_read_timeout(None).ok()?;
        Some(Subscription { run, reader })
    }

    /// The next line; None when the console has gone.
    pub fn next_line(&mut self) -> Option<Line> {
        let mut record = Vec::new();
        loop {
            record.clear();
            let n = self.reader.read_until(b'\n', &mut record).ok()?;
            if n == 0 || record.last() != Some(&b'\n') {
                return None;
            }
            record.pop();
            if let Some(line) = Line::decode(&record) {
                return Some(line);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, text: &str) -> Line {
        Line {
            seq,
            micros: 1_795_689_296_000_000 + seq,
            text: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_reader_gets_the_recent_lines_then_new_ones_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET);
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        let mut feed = Feed::listen(&path, "run-1".into(), vec![me]).unwrap();
        feed.publish(line(0, "before the reader"));
        feed.publish(line(1, "with spaces and \u{fffd} bytes"));
        let connecting = std::thread::spawn(move || Subscription::connect(&path).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(100));
        feed.service(&[]);
        let mut sub = connecting.join().unwrap();
        assert_eq!(sub.run, "run-1");
        feed.publish(line(2, "after"));
        assert_eq!(sub.next_line(), Some(line(0, "before the reader")));
        assert_eq!(
            sub.next_line(),
            Some(line(1, "with spaces and \u{fffd} bytes"))
        );
        assert_eq!(sub.next_line(), Some(line(2, "after")));
        drop(feed);
        assert_eq!(sub.next_line(), None, "the console went away");
    }

    #[test]
    fn other_accounts_are_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET);
        // Nobody's uid is allowed, so this process is not.
        let mut feed = Feed::listen(&path, "run-1".into(), vec![u32::MAX - 1]).unwrap();
        feed.publish(line(0, "secret console"));
        let stream = UnixStream::connect(&path).unwrap();
        feed.service(&[]);
        let mut got = Vec::new();
        let _ = (&stream).read_to_end(&mut got);
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    }

    #[test]
    fn the_ring_keeps_the_newest_lines_within_its_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET);
        let mut feed = Feed::listen(&path, "r".into(), vec![]).unwrap();
        for seq in 0..(RING_LINES as u64 + 10) {
            feed.publish(line(seq, "x"));
        }
        assert_eq!(feed.ring.len(), RING_LINES);
        assert_eq!(feed.ring.front().unwrap().seq, 10);
        let big = vec![b'y'; 1 << 20];
        for seq in 0..8 {
            feed.publish(Line {
                seq,
                micros: 0,
                text: big.clone(),
            });
        }
        assert!(feed.ring_bytes <= RING_BYTES);
    }
}
