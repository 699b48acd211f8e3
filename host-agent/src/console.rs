//! `l4d2-agent console -- <program> <args…>`: runs the game on a pseudo-terminal and copies
//! its console to stdout a line at a time. It is the server unit's main process.
//!
//! srcds writes its console with C stdio, which buffers 4 KiB at a time when stdout is a pipe
//! (and journald's stdout is one): lines would reach the journal late, in lumps, or never when
//! the server crashes. On a terminal, stdio flushes every line. So the game gets the
//! terminal's other end as its stdin, stdout and stderr, and this process copies what it
//! prints to its own stdout as soon as a line is complete.
//!
//! Each line goes to the journal with its run and number (journald's native protocol, when
//! stdout is the journal, as in the unit) and to the live feed ([`crate::live`]) that
//! `logs --follow` reads to see it without the journal's delay.
//!
//! The terminal is also the game's console input, which is how a stop ends the game the way it
//! expects: on SIGTERM (systemd's stop, sent to this process alone with `KillMode=mixed`) it
//! types `quit`; if the game is still running after [`QUIT_GRACE`], it sends SIGINT, which
//! srcds also takes as a request to shut down; the unit's stop timeout is the last resort.

use crate::error::AgentError;
use crate::live;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the game has to act on `quit` before it gets SIGINT.
pub const QUIT_GRACE: Duration = Duration::from_secs(10);
/// A partial line (a prompt, a line cut by a crash) is passed on after this long.
const PARTIAL_AFTER: Duration = Duration::from_millis(100);
/// Longer lines are passed on in pieces of this size, as journald would split them anyway.
const MAX_LINE: usize = 16 * 1024;
/// How long the console waits, after the game ended, for journald to take its last lines.
/// Far more than journald needs on a busy host; the restart waits this long at worst.
const SETTLE_WITHIN: Duration = Duration::from_secs(15);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Runs `command` on a pseudo-terminal until it exits, copying its console to stdout; returns
/// the exit status to pass on (128 + the signal for a game killed by one, as a shell would).
pub fn run(command: &[String]) -> Result<i32, AgentError> {
    let failed = |e: std::io::Error| AgentError::failed("cannot run the game on a terminal", e);
    if command.is_empty() {
        return Err(AgentError::Invalid(
            "console: give the program to run after --".to_owned(),
        ));
    }
    let args: Vec<CString> = command
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| AgentError::Invalid("console: an argument holds a NUL byte".to_owned()))?;
    let (master, slave) = crate::pty::open().map_err(failed)?;
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe {
        let handler = on_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGHUP, handler);
    }
    // SAFETY: this process has one thread; the child only makes async-signal-safe calls
    // before it execs.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(failed(std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: async-signal-safe calls on descriptors this process owns, then exec.
        unsafe {
            let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
            argv.push(std::ptr::null());
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            libc::setsid();
            libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0);
            for fd in 0..3 {
                libc::dup2(slave.as_raw_fd(), fd);
            }
            if slave.as_raw_fd() > 2 {
                libc::close(slave.as_raw_fd());
            }
            libc::execvp(argv[0], argv.as_ptr());
            let message = b"l4d2-agent console: cannot run the game\n";
            libc::write(2, message.as_ptr().cast(), message.len());
            libc::_exit(127);
        }
    }
    drop(slave);
    let mut sink = Sink::new();
    let status = copy_until_exit(&master, pid, &mut sink);
    sink.settle();
    Ok(status)
}

/// Where the console's lines go.
struct Sink {
    journal: Option<Journal>,
    feed: Option<live::Feed>,
    seq: u64,
}

impl Sink {
    /// As the unit runs it: the journal natively, and a feed in the unit's runtime folder
    /// for root and the owner. Run by hand: stdout only.
    fn new() -> Sink {
        let run = std::env::var("INVOCATION_ID")
            .ok()
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()))
            .unwrap_or_else(random_id);
        let identifier = std::env::var("LEFT4ME_SERVER")
            .map(|name| format!("left4me-{name}"))
            .unwrap_or_else(|_| "l4d2-agent".to_owned());
        let journal = stdout_is_journal()
            .then(|| Journal::connect(identifier, run.clone()))
            .flatten();
        let feed = std::env::var_os("RUNTIME_DIRECTORY").and_then(|dir| {
            let allowed = vec![0, crate::accounts::lookup(crate::accounts::OWNER).ok()?.uid];
            let path = std::path::Path::new(&dir).join(live::SOCKET);
            match live::Feed::listen(&path, run, allowed) {
                Ok(feed) => Some(feed),
                Err(e) => {
                    eprintln!(
                        "l4d2-agent console: no live feed at {}: {e}",
                        path.display()
                    );
                    None
                }
            }
        });
        Sink {
            journal,
            feed,
            seq: 0,
        }
    }

    fn emit(&mut self, line: &mut Vec<u8>) {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let seq = self.seq;
        self.seq += 1;
        let sent = self
            .journal
            .as_ref()
            .is_some_and(|journal| journal.send(seq, line).is_ok());
        if !sent {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line);
            let _ = out.write_all(b"\n");
            let _ = out.flush();
        }
        if let Some(feed) = &mut self.feed {
            let micros = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64);
            feed.publish(live::Line {
                seq,
                micros,
                text: std::mem::take(line),
            });
        }
        line.clear();
    }

    /// Waits until journald has taken the last lines, see [`Journal::wait_taken`].
    fn settle(&self) {
        if let Some(journal) = &self.journal {
            journal.wait_taken(SETTLE_WITHIN);
        }
    }
}

/// journald's native protocol: one datagram per entry, so each line carries fields of its
/// own. journald adds the unit, the process and the time as it does for the stream.
struct Journal {
    socket: UnixDatagram,
    identifier: String,
    run: String,
}

impl Journal {
    fn connect(identifier: String, run: String) -> Option<Journal> {
        let socket = UnixDatagram::unbound().ok()?;
        socket.connect("/run/systemd/journal/socket").ok()?;
        Some(Journal {
            socket,
            identifier,
            run,
        })
    }

    fn send(&self, seq: u64, text: &[u8]) -> std::io::Result<()> {
        let mut entry = format!(
            "PRIORITY=6\nSYSLOG_IDENTIFIER={}\nLEFT4ME_RUN={}\nLEFT4ME_SEQ={seq}\nMESSAGE\n",
            self.identifier, self.run
        )
        .into_bytes();
        // The binary-safe form: the message may hold any byte.
        entry.extend_from_slice(&(text.len() as u64).to_le_bytes());
        entry.extend_from_slice(text);
        entry.push(b'\n');
        self.socket.send(&entry).map(|_| ())
    }

    /// Waits, up to `within`, until journald has read every entry sent.
    ///
    /// journald learns which unit an entry belongs to from the sender's process when it
    /// reads the entry, not when it was sent: an entry it reads after this process has
    /// exited (a busy host, and the game's last line just before a crash is sent
    /// microseconds before the exit) lands without the unit, and `logs` and the crash report
    /// never see it. A datagram counts against its sender until the receiver has read it, so
    /// the socket's output queue is empty once journald has them all.
    fn wait_taken(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let mut queued: libc::c_int = 0;
            // SAFETY: SIOCOUTQ (the same request number as TIOCOUTQ) into an int we own.
            let asked =
                unsafe { libc::ioctl(self.socket.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
            if asked != 0 || queued == 0 || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Whether stdout is the journal's stream for this process (systemd names it in
/// `$JOURNAL_STREAM` as `device:inode`).
fn stdout_is_journal() -> bool {
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    // SAFETY: fstat of our own stdout into a zeroed struct.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(1, &mut stat) } != 0 {
        return false;
    }
    dev.parse() == Ok(stat.st_dev) && ino.parse() == Ok(stat.st_ino)
}

fn random_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|u| u.trim().replace('-', ""))
        .unwrap_or_else(|_| std::process::id().to_string())
}

/// Copies the terminal's output to `sink` line by line until the game has exited and its
/// output is drained; answers a stop request with `quit`, then SIGINT.
fn copy_until_exit(master: &OwnedFd, pid: libc::pid_t, sink: &mut Sink) -> i32 {
    let mut line: Vec<u8> = Vec::new();
    let mut partial_since: Option<Instant> = None;
    let mut quit_sent: Option<Instant> = None;
    let mut interrupted = false;
    let mut status: Option<i32> = None;
    let mut buf = [0u8; 8192];
    loop {
        if STOP.load(Ordering::SeqCst) && quit_sent.is_none() {
            // srcds reads console commands from its terminal.
            let quit = b"quit\n";
            // SAFETY: writes from a valid buffer to our descriptor.
            unsafe { libc::write(master.as_raw_fd(), quit.as_ptr().cast(), quit.len()) };
            quit_sent = Some(Instant::now());
        }
        if quit_sent.is_some_and(|sent| sent.elapsed() >= QUIT_GRACE) && !interrupted {
            // SAFETY: signals our own child.
            unsafe { libc::kill(pid, libc::SIGINT) };
            interrupted = true;
        }
        let mut fds = vec![libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(feed) = &sink.feed {
            fds.extend(feed.poll_fds());
        }
        // Woken by output, a reader or a signal (a stop request interrupts the poll); else
        // when a partial line or the quit's grace is due, and once a second at the latest
        // (a stop that came between the check above and the poll, a game that ended while
        // something it left holds the terminal): an idle console costs next to nothing.
        let mut wait = Duration::from_secs(1);
        if let Some(since) = partial_since {
            wait = wait.min(PARTIAL_AFTER.saturating_sub(since.elapsed()));
        }
        if let (Some(sent), false) = (quit_sent, interrupted) {
            wait = wait.min(QUIT_GRACE.saturating_sub(sent.elapsed()));
        }
        if quit_sent.is_some() {
            // Stopping: the game's end is looked for often.
            wait = wait.min(Duration::from_millis(50));
        }
        // SAFETY: polls valid descriptors, as many as the slice holds.
        let ready = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                wait.as_millis() as libc::c_int,
            )
        };
        if ready > 0
            && fds[1..].iter().any(|fd| fd.revents != 0)
            && let Some(feed) = &mut sink.feed
        {
            feed.service(&fds[1..]);
        }
        if ready > 0 && fds[0].revents != 0 {
            // SAFETY: reads into a buffer of the given size.
            let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                for &byte in &buf[..n as usize] {
                    if byte == b'\n' {
                        sink.emit(&mut line);
                    } else {
                        line.push(byte);
                        if line.len() >= MAX_LINE {
                            sink.emit(&mut line);
                        }
                    }
                }
                partial_since = if line.is_empty() {
                    None
                } else {
                    partial_since.or_else(|| Some(Instant::now()))
                };
                continue;
            }
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            // EIO (or end of file): every process holding the game's side has gone.
            break;
        }
        if ready < 0 {
            // Interrupted by a signal (a stop request): act on it at the top.
            continue;
        }
        if partial_since.is_some_and(|since| since.elapsed() >= PARTIAL_AFTER) {
            sink.emit(&mut line);
            partial_since = None;
        }
        if status.is_none() {
            status = reap(pid);
        }
        if status.is_some() {
            // The game has ended and nothing more came within a poll.
            break;
        }
    }
    if !line.is_empty() {
        sink.emit(&mut line);
    }
    status.or_else(|| wait(pid)).unwrap_or(1)
}

/// The exit status of the child if it has ended.
fn reap(pid: libc::pid_t) -> Option<i32> {
    let mut status = 0;
    // SAFETY: polls our own child.
    let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    (done == pid).then(|| decode(status))
}

fn wait(pid: libc::pid_t) -> Option<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, 0) };
        if done == pid {
            return Some(decode(status));
        }
        if done < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
}

fn decode(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}
